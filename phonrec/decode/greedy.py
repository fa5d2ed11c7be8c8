"""Greedy (best-path) decoding of per-frame phone log-probabilities.

Two kinds of model output are handled:

* **CTC** (``blank`` given, ``<blank>`` is id 0 in phonrec): the arg-max symbol of every frame is
  taken, adjacent repeats are merged into one *run*, and runs of the blank are dropped.
* **frame-level** (``blank=None``): every frame belongs to exactly one phone; each run of equal
  arg-max symbols is one phone.

Spans follow the convention of :mod:`phonrec.spans` (``[start, end)``, CTC blanks belong to no
span, the emission frame is ``span.end - 1``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from phonrec.spans import Span, as_numpy_log_probs, runs_to_spans


def _check_blank(blank: int | None, num_classes: int) -> None:
    if blank is not None and not 0 <= blank < num_classes:
        raise ValueError(f"blank id {blank} outside [0, K={num_classes})")


def absorb_short_runs(labels: np.ndarray, log_probs: np.ndarray, min_duration: int) -> np.ndarray:
    """Relabel runs shorter than ``min_duration`` frames with a neighbouring run's phone.

    The shortest offending run goes first; it takes the label of whichever neighbour (left or right)
    has the larger summed log-probability over the run's frames; equal neighbours then merge.
    Repeats until every run is at least ``min_duration`` long or only one run is left.

    Args:
        labels: (T,) per-frame phone ids (modified copy is returned).
        log_probs: (T, K) the scores used to choose the neighbour.
    """
    labels = labels.copy()
    while True:
        spans = runs_to_spans(labels)
        if len(spans) <= 1:
            return labels
        i = min(range(len(spans)), key=lambda j: (spans[j].num_frames, j))
        s = spans[i]
        if s.num_frames >= min_duration:
            return labels
        cands = [spans[j].phone for j in (i - 1, i + 1) if 0 <= j < len(spans)]
        best = max(cands, key=lambda p: float(log_probs[s.start : s.end, p].sum()))
        labels[s.start : s.end] = best


def greedy(
    log_probs: torch.Tensor | np.ndarray,
    length: int | None = None,
    blank: int | None = None,
    min_duration: int = 1,
) -> list[Span]:
    """Best-path decoding: arg-max per frame, merge adjacent repeats, drop blanks.

    Args:
        log_probs: (T, K) per-frame log-probabilities (or any scores: only the arg-max matters).
        length: number of valid frames (``<= T``); ``None`` uses all ``T``.
        blank: the blank id for CTC output (phonrec uses 0); ``None`` for frame-level models.
        min_duration: frame-level models only: runs shorter than this many frames are absorbed into
            a neighbour (see :func:`absorb_short_runs`). ``1`` disables it.

    Returns:
        spans in time order; a span is the run of frames whose arg-max is its phone, so the
        emission frame of a CTC symbol is ``span.end - 1``.

    Example:
        >>> import torch
        >>> lp = torch.log(torch.tensor([[.1, .9], [.1, .9], [.9, .1], [.1, .9]]))
        >>> greedy(lp, blank=0)
        [Span(phone=1, start=0, end=2), Span(phone=1, start=3, end=4)]
    """
    arr = as_numpy_log_probs(log_probs, length)
    _check_blank(blank, arr.shape[1])
    if min_duration < 1:
        raise ValueError(f"min_duration must be >= 1, got {min_duration}")
    if blank is not None and min_duration != 1:
        raise ValueError("min_duration applies to frame-level models only (blank=None)")
    labels = arr.argmax(axis=1)
    if min_duration > 1:
        labels = absorb_short_runs(labels, arr, min_duration)
    return runs_to_spans(labels, blank)


def greedy_batch(
    log_probs: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | np.ndarray | Sequence[int],
    blank: int | None = None,
) -> list[list[Span]]:
    """:func:`greedy` for a padded batch, with the arg-max and run detection done for all at once.

    Args:
        log_probs: (B, T, K) log-probabilities, padded after each utterance's length.
        lengths: (B,) valid frames per utterance; frames at ``t >= lengths[b]`` are ignored.
        blank: blank id for CTC output, ``None`` for frame-level models.

    Returns:
        B lists of spans.
    """
    lp = log_probs if isinstance(log_probs, torch.Tensor) else torch.as_tensor(np.asarray(log_probs))
    if lp.dim() != 3:
        raise ValueError(f"log_probs: expected shape (B, T, K), got {tuple(lp.shape)}")
    B, T, K = lp.shape
    lens = torch.as_tensor(lengths, dtype=torch.long).reshape(-1).cpu()
    if lens.numel() != B:
        raise ValueError(f"lengths: expected {B} entries (one per utterance), got {lens.numel()}")
    if B and (int(lens.min()) < 0 or int(lens.max()) > T):
        raise ValueError(f"lengths must lie in [0, T={T}], got {lens.tolist()}")
    _check_blank(blank, K)
    labels = lp.detach().argmax(dim=-1).cpu()  # (B, T)
    valid = torch.arange(T)[None, :] < lens[:, None]  # (B, T)
    # a run starts at t when t is valid and (t == 0 or label changes)
    change = torch.ones(B, T, dtype=torch.bool)
    change[:, 1:] = labels[:, 1:] != labels[:, :-1]
    starts = change & valid
    if blank is not None:
        keep = starts & (labels != blank)
    else:
        keep = starts
    # end of the run starting at t: the next start (or the length)
    start_pos = torch.where(starts, torch.arange(T)[None, :], torch.full((B, T), T))
    # next start strictly after t: reverse cumulative min over the shifted positions
    shifted = torch.cat([start_pos[:, 1:], torch.full((B, 1), T)], dim=1)
    next_start = torch.flip(torch.cummin(torch.flip(shifted, [1]), dim=1).values, [1])
    ends = torch.minimum(next_start, lens[:, None])
    b_idx, t_idx = torch.nonzero(keep, as_tuple=True)
    phones = labels[b_idx, t_idx].tolist()
    e = ends[b_idx, t_idx].tolist()
    out: list[list[Span]] = [[] for _ in range(B)]
    for b, t, p, en in zip(b_idx.tolist(), t_idx.tolist(), phones, e):
        out[b].append(Span(p, t, en))
    return out
