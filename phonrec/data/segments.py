"""Timed phone segments (from flite, TIMIT .phn, TextGrid tiers) -> per-frame labels."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from phonrec.features import DEFAULT_WIN_MS, frame_center_seconds
from phonrec.spans import DEFAULT_HOP_MS


@dataclass(frozen=True)
class Segment:
    """A phone (or word) from ``start`` to ``end`` seconds, ``end`` exclusive."""

    label: str
    start: float
    end: float


def segments_to_frame_labels(
    segments: list[Segment],
    num_frames: int,
    *,
    fill: str = "sil",
    win_ms: float = DEFAULT_WIN_MS,
    hop_ms: float = DEFAULT_HOP_MS,
    source: str = "",
) -> list[str]:
    """One label per frame: the segment containing the frame's centre (``fill`` where none does).

    Args:
        segments: in time order, non-overlapping.
        num_frames: ``T`` of the feature matrix the labels must match.
        source: file or utterance named in errors.

    Raises:
        ValueError: when segments are out of order or overlap.
    """
    where = f"{source}: " if source else ""
    for a, b in zip(segments, segments[1:]):
        if b.start < a.end - 1e-6:
            raise ValueError(f"{where}segments overlap or are out of order: {a} then {b}")
    for s in segments:
        if s.end < s.start:
            raise ValueError(f"{where}segment ends before it starts: {s}")
    ends = [s.end for s in segments]
    labels = []
    for t in range(num_frames):
        c = frame_center_seconds(t, win_ms, hop_ms)
        i = bisect.bisect_right(ends, c)
        labels.append(segments[i].label if i < len(segments) and segments[i].start <= c else fill)
    return labels
