"""Spectral change, and the edges between phones moved onto it.

A forced aligner times a boundary between two phones where its model's posteriors change. At the
packaged model's 30-ms frames (and with a CTC model's spikes) that is a coarse, voice-dependent
guess; the signal's spectrum changes where the articulation does, so :func:`snap_phone_edges` moves
each edge between two phones to the strongest spectral change within ``max_shift_ms`` of it, with a
small cost per millisecond moved so that a flat stretch leaves the edge where the model put it.

Spectral change (:func:`spectral_change`): log-mel frames (:data:`N_MELS` filters, 25-ms windows every
:data:`HOP_MS`); the change at frame ``i`` is the Euclidean distance between the mean of the
``span`` frames before ``i`` and the mean of the ``span`` frames from ``i`` on, which is large where
one steady sound gives way to another and small inside a sound. That position lies between the
centres of frames ``i - 1`` and ``i``: ``i * hop + win / 2 - hop / 2``.

The settings (span 6 frames = 30 ms either side, reach 20 ms, 0.1 per ms) were chosen on the synthetic
corpus's dev voices (``docs/benchmarks.md``, "Phone edges on the spectral change").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from phonrec.data.segments import Segment
from phonrec.features import FeatureConfig, compute_features

HOP_MS = 5.0
WIN_MS = 25.0
N_MELS = 40
#: frames averaged on each side of a candidate boundary
SPAN = 6
#: a phone edge moves at most this far (ms)
PHONE_SNAP_MAX_SHIFT_MS = 20.0
#: the cost of moving an edge, in change units per millisecond
SHIFT_COST_PER_MS = 0.1
#: an edge is never moved closer than this to the far side of either phone it shrinks (ms)
MIN_PHONE_MS = 10.0


@dataclass(frozen=True)
class ChangeTrack:
    """How much the spectrum changes at each candidate boundary of one recording.

    Attributes:
        values: (N,) change at candidate ``i`` (0 where fewer than ``span`` frames lie on a side).
        hop_ms: milliseconds between candidates.
        offset_ms: the time of candidate 0; candidate ``i`` lies at ``offset_ms + i * hop_ms``.
    """

    values: np.ndarray
    hop_ms: float = HOP_MS
    offset_ms: float = WIN_MS / 2.0 - HOP_MS / 2.0

    def times(self) -> np.ndarray:
        """(N,) seconds of the candidates."""
        return (self.offset_ms + self.hop_ms * np.arange(self.values.size)) / 1000.0


def _mel_config(sample_rate: int) -> FeatureConfig:
    """The log-mel frames of :func:`spectral_change` at ``sample_rate`` (the FFT the next power of two
    that holds a window, so 44.1 and 48 kHz files work as 16 kHz ones do)."""
    win = int(round(sample_rate * WIN_MS / 1000.0))
    n_fft = 1 << max(win - 1, 1).bit_length()
    return FeatureConfig(sample_rate=sample_rate, n_mels=N_MELS, win_ms=WIN_MS, hop_ms=HOP_MS, n_fft=n_fft)


def change_of_frames(feats: np.ndarray, span: int = SPAN) -> np.ndarray:
    """Change between the means of ``span`` frames either side of each frame index.

    Args:
        feats: (T, D) feature frames.
        span: frames averaged on each side.

    Returns:
        (T,) ``out[i] = || mean(feats[i - span : i]) - mean(feats[i : i + span]) ||`` for
        ``span <= i <= T - span``, else 0.
    """
    if span < 1:
        raise ValueError(f"span must be >= 1, got {span}")
    feats = np.asarray(feats, dtype=np.float64)
    num = feats.shape[0]
    out = np.zeros(num)
    if num < 2 * span:
        return out
    cum = np.concatenate([np.zeros((1, feats.shape[1])), np.cumsum(feats, axis=0)])
    i = np.arange(span, num - span + 1)
    before = (cum[i] - cum[i - span]) / span
    after = (cum[i + span] - cum[i]) / span
    out[i] = np.linalg.norm(before - after, axis=1)
    return out


def spectral_change(wave: np.ndarray, sample_rate: int, *, span: int = SPAN) -> ChangeTrack:
    """The :class:`ChangeTrack` of a mono waveform ((N,) samples in [-1, 1]) at its own rate."""
    feats = compute_features(torch.as_tensor(np.asarray(wave, dtype=np.float32)), _mel_config(sample_rate))
    return ChangeTrack(change_of_frames(feats.numpy(), span))


def file_spectral_change(path: str | Path, *, span: int = SPAN, block_seconds: float = 60.0) -> ChangeTrack:
    """:func:`spectral_change` of an audio file at its own sample rate (channels averaged), read in
    overlapping blocks so that a long recording is never held whole; equal to the whole-file track."""
    info = sf.info(str(path))
    cfg = _mel_config(info.samplerate)
    hop, win = cfg.hop_length, cfg.win_length
    total = (info.frames - win) // hop + 1 if info.frames >= win else 0
    out = np.zeros(max(total, 0))
    step = max(int(block_seconds * info.samplerate) // hop, 4 * span) * hop  # samples between block starts
    overlap = win - hop + 2 * span * hop  # each block also holds the frames its edge candidates need
    first = 0  # global frame index of the block's first frame
    for block in sf.blocks(str(path), blocksize=step + overlap, overlap=overlap, dtype="float32"):
        mono = block.mean(axis=1) if block.ndim > 1 else block
        feats = compute_features(torch.from_numpy(np.ascontiguousarray(mono)), cfg).numpy()
        change = change_of_frames(feats, span)
        lo = 0 if first == 0 else span  # candidates this block sees with full context
        hi = feats.shape[0] - span + 1
        if hi > lo:
            out[first + lo : first + hi] = change[lo:hi]
        first += step // hop
    return ChangeTrack(out)


def snap_phone_edges(
    segments: Sequence[Segment],
    track: ChangeTrack,
    *,
    silence: str = "",
    max_shift_ms: float = PHONE_SNAP_MAX_SHIFT_MS,
    cost_per_ms: float = SHIFT_COST_PER_MS,
) -> list[Segment]:
    """Move every edge between two phones (neither of them ``silence``) to the candidate of
    ``track`` within ``max_shift_ms`` that maximises ``change - cost_per_ms * |shift in ms|``.

    Args:
        segments: intervals in time order that touch (each ``end`` is the next ``start``).
        track: the recording's :class:`ChangeTrack`.
        silence: the label of a pause (its edges are :func:`phonrec.vad.snap_pause_edges`' job).

    Returns:
        the segments with the same labels; a moved edge leaves each neighbour at least
        :data:`MIN_PHONE_MS` (or its own length, when shorter), edges stay in order, and an edge with
        no candidate in reach stays. ``max_shift_ms = 0`` returns the segments unchanged.
    """
    if max_shift_ms < 0 or cost_per_ms < 0:
        raise ValueError(f"max_shift_ms and cost_per_ms must be >= 0, got {max_shift_ms}, {cost_per_ms}")
    out = list(segments)
    if len(out) < 2 or max_shift_ms == 0 or track.values.size == 0:
        return out
    times = track.times()
    reach, gap = max_shift_ms / 1000.0, MIN_PHONE_MS / 1000.0
    for k in range(len(out) - 1):
        left, right = out[k], out[k + 1]
        if left.label == silence or right.label == silence:
            continue
        edge = left.end
        lo = max(edge - reach, left.start + min(gap, left.end - left.start))
        hi = min(edge + reach, right.end - min(gap, right.end - right.start))
        idx = np.flatnonzero((times >= lo - 1e-9) & (times <= hi + 1e-9) & (track.values > 0))
        if idx.size == 0:
            continue
        score = track.values[idx] - cost_per_ms * np.abs(times[idx] - edge) * 1000.0
        new = float(times[idx[np.argmax(score)]])
        out[k], out[k + 1] = replace(left, end=new), replace(right, start=new)
    return out
