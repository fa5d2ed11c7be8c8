"""Acoustic models: per-frame phone log-probabilities from features."""

from phonrec.models.bilstm import BiLSTM, BiLSTMConfig

__all__ = ["BiLSTM", "BiLSTMConfig"]
