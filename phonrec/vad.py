"""Energy speech/silence detection, and pause edges moved onto it.

A forced aligner places the edges of a pause (speech offset, speech onset) where its model's
posteriors change, which for a CTC model is where a spike starts or ends: tens of milliseconds from
where the signal's energy rises or falls, and it puts pauses where blanks are long, also where the
speaker went on talking. The signal itself knows better, so :func:`snap_pause_edges` drops the
pauses that are mostly speech and moves each remaining edge between silence and speech to the
nearest energy transition of the same direction within ``max_shift_ms`` (leaving it where it is when
there is none).

Energy: frames of ``win_ms`` every ``hop_ms``, ``10 log10(mean(x^2))`` dB. A frame is speech when its
energy is above ``floor + fraction * (peak - floor)``, ``floor`` and ``peak`` the 10th and 95th
percentiles of the file's frames (so the threshold follows the recording's level and noise). Frame
``i`` covers ``[i * hop, i * hop + win)``; a change between frames ``i - 1`` and ``i`` is placed
between their centres, at ``i * hop + (win - hop) / 2``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from phonrec.data.segments import Segment

#: set on the synthetic corpus' dev voices (docs/benchmarks.md, "Pauses snapped to the signal")
SNAP_MAX_SHIFT_MS = 50.0
VAD_FRACTION = 0.25
VAD_HOP_MS = 5.0
VAD_WIN_MS = 10.0
#: an edge is never moved closer than this to the far side of the interval it shrinks
MIN_INTERVAL_MS = 10.0


@dataclass(frozen=True)
class EnergyTrack:
    """Frame energies of one recording.

    Attributes:
        db: (N,) energy of each frame in dB.
        hop_ms: milliseconds between frame starts.
        win_ms: frame length in milliseconds.
    """

    db: np.ndarray
    hop_ms: float = VAD_HOP_MS
    win_ms: float = VAD_WIN_MS

    def speech(self, fraction: float = VAD_FRACTION) -> np.ndarray:
        """(N,) bool: frames above ``floor + fraction * (peak - floor)`` (module docstring)."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        if self.db.size == 0:
            return np.zeros(0, dtype=bool)
        floor, peak = np.percentile(self.db, 10), np.percentile(self.db, 95)
        return self.db >= floor + fraction * (peak - floor)

    def transitions(self, fraction: float = VAD_FRACTION) -> tuple[np.ndarray, np.ndarray]:
        """``(onsets, offsets)``: seconds where silence turns to speech and speech to silence."""
        mask = self.speech(fraction)
        change = np.flatnonzero(mask[1:] != mask[:-1]) + 1  # frame i differs from frame i - 1
        times = (change * self.hop_ms + (self.win_ms - self.hop_ms) / 2.0) / 1000.0
        rising = mask[change]
        return times[rising], times[~rising]


def energy_track(
    wave: np.ndarray | Iterable[np.ndarray],
    sample_rate: int,
    *,
    hop_ms: float = VAD_HOP_MS,
    win_ms: float = VAD_WIN_MS,
) -> EnergyTrack:
    """Frame energies of a mono waveform, given whole ((N,) samples) or as an iterable of consecutive
    (n,) blocks (a long file read piece by piece, :func:`file_energy_track`); a final part shorter
    than one window is not a frame."""
    hop, win = int(round(sample_rate * hop_ms / 1000.0)), int(round(sample_rate * win_ms / 1000.0))
    if hop < 1 or win < hop:
        raise ValueError(f"need win_ms >= hop_ms and a hop of at least one sample, got {win_ms}, {hop_ms}")
    blocks = [np.asarray(wave, dtype=np.float64)] if isinstance(wave, np.ndarray) else wave
    out: list[np.ndarray] = []
    carry = np.zeros(0, dtype=np.float64)
    for block in blocks:
        x = np.concatenate([carry, np.asarray(block, dtype=np.float64).reshape(-1)])
        n = 0 if x.size < win else (x.size - win) // hop + 1
        if n:
            frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n]
            out.append(10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12))
        carry = x[n * hop :]
    return EnergyTrack(np.concatenate(out) if out else np.zeros(0), hop_ms, win_ms)


def file_energy_track(path: str | Path, **kwargs: float) -> EnergyTrack:
    """:func:`energy_track` of an audio file at its own sample rate (channels averaged), read in
    blocks so that a long recording is never held whole."""
    info = sf.info(str(path))
    blocks = (b.mean(axis=1) if b.ndim > 1 else b for b in sf.blocks(str(path), blocksize=1 << 18, dtype="float32"))
    return energy_track(blocks, info.samplerate, **kwargs)


def snap_pause_edges(
    segments: Sequence[Segment],
    track: EnergyTrack,
    *,
    silence: str = "",
    max_shift_ms: float = SNAP_MAX_SHIFT_MS,
    fraction: float = VAD_FRACTION,
) -> list[Segment]:
    """Fit the pauses of an alignment to the recording's energy.

    1. A pause between two speech segments whose frames are at least half speech (by
       :meth:`EnergyTrack.speech`) is no pause: it is dropped and its neighbours meet at its middle.
    2. Every edge between a ``silence`` segment and a speech segment moves to the nearest energy
       transition of its direction (silence -> speech: an onset) within ``max_shift_ms``.

    Args:
        segments: intervals in time order that touch (each ``end`` is the next ``start``).
        track: the recording's energies (:func:`energy_track`).
        silence: the label of a pause.

    Returns:
        the speech segments in their order, with the pauses that remain; neither neighbour of a
        moved edge shrinks below :data:`MIN_INTERVAL_MS` (nor below its own length, when shorter),
        and the edges stay in order. Edges with no transition near them, and every edge between two
        speech segments, stay where they are. ``max_shift_ms = 0`` returns the segments unchanged.
    """
    if max_shift_ms < 0:
        raise ValueError(f"max_shift_ms must be >= 0, got {max_shift_ms}")
    out = list(segments)
    if len(out) < 2 or max_shift_ms == 0 or track.db.size == 0:
        return out
    mask = track.speech(fraction)
    frame_s = track.hop_ms / 1000.0
    k = 1
    while k < len(out) - 1:  # 1. pauses the signal says are speech
        pause, before, after = out[k], out[k - 1], out[k + 1]
        frames = mask[int(pause.start / frame_s) : int(np.ceil(pause.end / frame_s))]
        if pause.label == silence and before.label != silence and after.label != silence and frames.size:
            if frames.mean() >= 0.5:
                mid = 0.5 * (pause.start + pause.end)
                out[k - 1 : k + 2] = [replace(before, end=mid), replace(after, start=mid)]
                continue
        k += 1
    onsets, offsets = track.transitions(fraction)
    reach, gap = max_shift_ms / 1000.0, MIN_INTERVAL_MS / 1000.0
    for k in range(len(out) - 1):  # 2. pause edges onto the energy's rises and falls
        left, right = out[k], out[k + 1]
        if (left.label == silence) == (right.label == silence):
            continue
        candidates = onsets if left.label == silence else offsets
        edge = left.end
        near = candidates[np.abs(candidates - edge) <= reach + 1e-9]
        if near.size == 0:
            continue
        target = float(near[np.argmin(np.abs(near - edge))])
        lo = left.start + min(gap, left.end - left.start)
        hi = right.end - min(gap, right.end - right.start)
        new = min(max(target, lo), hi)
        out[k], out[k + 1] = replace(left, end=new), replace(right, start=new)
    return out
