"""Acoustic features: framing, log-mel / Kaldi fbank / MFCC, deltas, CMVN, SpecAugment.

Framing is the same for every feature kind (Kaldi's ``snip_edges=True``): frame ``t`` covers
samples ``[t * hop, t * hop + win)``, so ``T = 1 + (N - win) // hop`` for ``N >= win``.
"""

from __future__ import annotations

DEFAULT_HOP_MS = 10.0
DEFAULT_WIN_MS = 25.0


def num_frames(num_samples: int, sample_rate: int = 16000, win_ms: float = DEFAULT_WIN_MS, hop_ms: float = DEFAULT_HOP_MS) -> int:
    """Number of frames for ``num_samples`` samples (0 when shorter than one window)."""
    win = int(round(sample_rate * win_ms / 1000))
    hop = int(round(sample_rate * hop_ms / 1000))
    return 0 if num_samples < win else 1 + (num_samples - win) // hop


def frame_center_seconds(frame: int, win_ms: float = DEFAULT_WIN_MS, hop_ms: float = DEFAULT_HOP_MS) -> float:
    """Time (s) of the centre of frame ``frame``: where a frame's label is read from a timed segment."""
    return (frame * hop_ms + win_ms / 2) / 1000.0


def frames_to_seconds(frames: int | float, hop_ms: float = DEFAULT_HOP_MS) -> float:
    """The one conversion from a frame index (span boundary) to seconds: ``frames * hop``."""
    return frames * hop_ms / 1000.0


def seconds_to_frames(seconds: float, hop_ms: float = DEFAULT_HOP_MS) -> int:
    """Inverse of :func:`frames_to_seconds`, rounded to the nearest frame boundary."""
    return int(round(seconds * 1000.0 / hop_ms))
