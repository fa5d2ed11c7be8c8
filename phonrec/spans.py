"""Shared values at the bottom of the import graph: frame spans and the frames <-> seconds conversion.

Every stage that talks about "which frames carry which phone" (decoders, forced alignment, the
transcriber, the writers of TextGrid / ``.phn`` files) uses these; this module imports no phonrec
module, so any of them may import it.

Span convention (the same everywhere in phonrec, alignments included): a :class:`Span` covers
the frames of its run, ``[start, end)`` with ``end`` exclusive. For CTC output the blank frames
around a run belong to no span. The *emission time* of a phone, where the lecture's decoder
"places each emission at the final frame of its run", is ``span.end - 1``
(:attr:`Span.emission_frame`).

Times (:func:`frames_to_seconds`): a span boundary ``t`` is placed midway between the centres of
frames ``t - 1`` and ``t`` (``t * hop + 7.5 ms`` for 10-ms frames of 25-ms windows), where the
frame labels a model is trained on say the true boundary lies; boundary 0 is 0 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

DEFAULT_HOP_MS = 10.0


@dataclass(frozen=True)
class Span:
    """One phone occupying frames ``[start, end)`` (``end`` exclusive)."""

    phone: int
    start: int
    end: int

    @property
    def emission_frame(self) -> int:
        """The frame at which the phone is emitted: the final frame of its run (``end - 1``)."""
        return self.end - 1

    @property
    def num_frames(self) -> int:
        return self.end - self.start


#: The default analysis window (``phonrec.features.FeatureConfig.win_ms``; kept equal by a test).
DEFAULT_WIN_MS = 25.0


def boundary_offset_ms(frame_factor: int = 1, win_ms: float = DEFAULT_WIN_MS, hop_ms: float = DEFAULT_HOP_MS) -> float:
    """Where the boundary before output frame ``t`` lies, in ms after ``t * frame_factor * hop_ms``.

    A frame's training label is the phone at the centre of its analysis window
    (:func:`phonrec.data.segments.segments_to_frame_labels`): feature frame ``t`` at
    ``t * hop + win / 2``; an output frame of a model that stacks ``frame_factor`` feature frames
    takes the label of feature frame ``t * frame_factor + frame_factor // 2``
    (``phonrec.train.subsample_labels``). So when the label changes between output frames
    ``t - 1`` and ``t`` the true boundary lies between their centres, on average at their
    midpoint: ``win / 2 + (frame_factor // 2) * hop - frame_factor * hop / 2`` after
    ``t * frame_factor * hop`` (7.5 ms for 10-ms frames and 25-ms windows, also for 30-ms frames;
    12.5 ms for 20-ms frames).
    """
    return win_ms / 2 + (frame_factor // 2) * hop_ms - frame_factor * hop_ms / 2


def frames_to_seconds(frames: int | float, hop_ms: float = DEFAULT_HOP_MS, *, offset_ms: float | None = None) -> float:
    """The one conversion from a span boundary (a frame index) to seconds.

    Boundary ``t > 0`` (between output frames ``t - 1`` and ``t``) is at ``(t * hop_ms + offset_ms) / 1000``;
    boundary 0 is the start of the audio, ``0.0``. ``offset_ms`` defaults to
    :func:`boundary_offset_ms` for phonrec's default features (25-ms windows every 10 ms) and a
    model whose output frames are ``hop_ms`` long (frame factor ``round(hop_ms / 10)``): 7.5 ms for
    10-ms and 30-ms frames. Without it every boundary would come out 7.5 ms early (measured by
    ``bench/boundaries.py`` against flite's exact timings: mean signed error -7.7 ms).

    Args:
        frames: the boundary's frame index (fractional values are interpolated the same way).
        hop_ms: milliseconds per output frame.
        offset_ms: the offset of boundary ``t`` after ``t * hop_ms`` (``None``: the default above).
    """
    if frames <= 0:
        return 0.0
    if offset_ms is None:
        offset_ms = boundary_offset_ms(max(1, int(round(hop_ms / DEFAULT_HOP_MS))))
    return (frames * hop_ms + offset_ms) / 1000.0


def spans_to_seconds(spans: Sequence[Span], hop_ms: float = DEFAULT_HOP_MS) -> list[tuple[int, float, float]]:
    """Spans in frames -> ``(phone, start_s, end_s)`` through :func:`frames_to_seconds` (its default offset)."""
    return [(s.phone, frames_to_seconds(s.start, hop_ms), frames_to_seconds(s.end, hop_ms)) for s in spans]


def runs_to_spans(labels: Sequence[int] | np.ndarray, blank: int | None = None) -> list[Span]:
    """Per-frame labels ``(T,)`` -> one span per run of equal labels (runs of ``blank`` dropped)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], labels.size]
    return [Span(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends) if blank is None or labels[s] != blank]


def as_numpy_log_probs(
    log_probs: torch.Tensor | np.ndarray, length: int | None = None, *, name: str = "log_probs"
) -> np.ndarray:
    """Validate ``(T, K)`` log-probabilities and return the first ``length`` frames as float32 numpy.

    Raises:
        ValueError: wrong rank, empty class axis, ``length`` outside ``[0, T]`` or non-finite values
            other than ``-inf``.
    """
    if isinstance(log_probs, torch.Tensor):
        arr = log_probs.detach().to("cpu", torch.float32).numpy()
    else:
        arr = np.asarray(log_probs, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected shape (T, K), got {tuple(arr.shape)}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: expected K >= 1 classes, got shape {tuple(arr.shape)}")
    if length is not None:
        length = int(length)
        if not 0 <= length <= arr.shape[0]:
            raise ValueError(f"{name}: length {length} outside [0, T={arr.shape[0]}]")
        arr = arr[:length]
    if np.isnan(arr).any() or np.isposinf(arr).any():
        raise ValueError(f"{name}: contains NaN or +inf")
    return arr
