"""Forced alignment: the best (Viterbi) path through a known phone-id sequence.

* :func:`align_ctc` — CTC output (blank id given): torchaudio's ``forced_align`` (CPU) finds the
  best CTC path; each target's span is the run of frames labelled with it (blanks belong to no
  span), the same convention as :func:`phonrec.decode.greedy.greedy` (see :mod:`phonrec.spans`).
* :func:`align_frames` — frame-level output: each target phone occupies ``>= min_duration``
  consecutive frames, in order, covering all ``T`` frames; an optional silence phone may be
  inserted at the edges (and, if asked, between phones).

The alignment score is the sum over frames of the log-probability of the frame's state symbol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from phonrec.data.segments import Segment
from phonrec.divergences import ctc_min_frames
from phonrec.phones import PhoneSet
from phonrec.spans import DEFAULT_HOP_MS, Span, as_numpy_log_probs, frames_to_seconds

NEG_INF = -np.inf


@dataclass(frozen=True)
class Alignment:
    """Spans plus the path log-probability (sum of the per-frame log-probs along the path)."""

    spans: list[Span]
    score: float


def _check_targets(targets: Sequence[int], num_classes: int, blank: int | None) -> list[int]:
    out = [int(x) for x in targets]
    for i, x in enumerate(out):
        if not 0 <= x < num_classes:
            raise ValueError(f"targets[{i}] = {x} outside [0, K={num_classes})")
        if blank is not None and x == blank:
            raise ValueError(f"targets[{i}] is the blank id {blank}; targets must be phones")
    return out


def align_ctc_scored(
    log_probs: torch.Tensor | np.ndarray, targets: Sequence[int], blank: int = 0, length: int | None = None
) -> Alignment:
    """:func:`align_ctc` plus the path log-probability."""
    arr = as_numpy_log_probs(log_probs, length)
    T, K = arr.shape
    if not 0 <= blank < K:
        raise ValueError(f"blank id {blank} outside [0, K={K})")
    tg = _check_targets(targets, K, blank)
    need = int(ctc_min_frames(torch.tensor([tg], dtype=torch.long), torch.tensor([len(tg)]))[0])
    if T < need:
        raise ValueError(f"cannot align {len(tg)} targets (needing {need} CTC frames) to {T} frames")
    if not tg:
        return Alignment([], float(arr[:, blank].sum()))
    import torchaudio.functional as taf

    lp = torch.from_numpy(np.ascontiguousarray(arr))[None]
    labels, frame_scores = taf.forced_align(lp, torch.tensor([tg], dtype=torch.int32), blank=blank)
    labels = labels[0].numpy()
    score = float(frame_scores[0].sum())
    if not np.isfinite(score):
        raise ValueError("no finite-probability CTC path exists for these targets")
    # map frames to target positions: a new target starts where a non-blank label begins a run
    spans: list[Span] = []
    prev = blank
    for t, lab in enumerate(labels.tolist()):
        if lab != blank and lab != prev:
            spans.append(Span(lab, t, t + 1))
        elif lab != blank:
            spans[-1] = Span(lab, spans[-1].start, t + 1)
        prev = lab
    if [s.phone for s in spans] != tg:  # the path must spell the targets exactly
        raise RuntimeError("internal error: CTC alignment does not spell the targets")
    return Alignment(spans, score)


def align_ctc(
    log_probs: torch.Tensor | np.ndarray, targets: Sequence[int], blank: int = 0, length: int | None = None
) -> list[Span]:
    """Viterbi CTC alignment of ``targets`` to ``log_probs``.

    Args:
        log_probs: (T, K) CTC log-probabilities.
        targets: (L,) phone ids (no blanks); a repeated phone needs a blank frame in between.
        blank: the blank id.
        length: valid frames (``None``: all ``T``).

    Returns:
        L spans, one per target in order; ``span`` is the run of frames carrying that target.

    Raises:
        ValueError: when ``T`` is too short for the targets (``L`` + number of adjacent repeats).
    """
    return align_ctc_scored(log_probs, targets, blank, length).spans


def align_frames_scored(
    log_probs: torch.Tensor | np.ndarray,
    targets: Sequence[int],
    min_duration: int = 1,
    *,
    optional_silence: int | None = None,
    silence_between: bool = False,
    length: int | None = None,
) -> Alignment:
    """:func:`align_frames` plus the path log-probability."""
    arr = as_numpy_log_probs(log_probs, length)
    T, K = arr.shape
    if min_duration < 1:
        raise ValueError(f"min_duration must be >= 1, got {min_duration}")
    tg = _check_targets(targets, K, None)
    if optional_silence is not None and not 0 <= optional_silence < K:
        raise ValueError(f"optional_silence id {optional_silence} outside [0, K={K})")
    if not tg:
        raise ValueError("align_frames needs at least one target")
    if T < len(tg) * min_duration:
        raise ValueError(f"cannot align {len(tg)} targets of >= {min_duration} frames each to {T} frames")
    d = min_duration
    # Linear state sequence. Each phone: d states (the last self-loops). Optional silence: one
    # self-looping state that may be skipped (predecessor two states back).
    sym: list[int] = []
    loop: list[bool] = []
    skippable: list[bool] = []  # state is an optional silence
    owner: list[int] = []  # output-span index (-1 .. for silences: ~target position)
    first_state: list[int] = []

    def add_sil(tag: int) -> None:
        sym.append(optional_silence)  # type: ignore[arg-type]
        loop.append(True)
        skippable.append(True)
        owner.append(tag)

    use_sil = optional_silence is not None
    if use_sil:
        add_sil(-1)
    for i, p in enumerate(tg):
        if use_sil and silence_between and i > 0:
            add_sil(-(i + 1))
        first_state.append(len(sym))
        for j in range(d):
            sym.append(p)
            loop.append(j == d - 1)
            skippable.append(False)
            owner.append(i)
    if use_sil:
        add_sil(-(len(tg) + 1))
    S = len(sym)
    sym_a = np.asarray(sym)
    loop_a = np.asarray(loop)
    skip_a = np.asarray(skippable)
    # s-2 -> s allowed when s-1 is an optional silence
    skip2_ok = np.zeros(S, dtype=bool)
    skip2_ok[2:] = skip_a[1:-1]
    em = arr[:, sym_a]  # (T, S)
    v = np.full(S, NEG_INF)
    v[0] = em[0, 0]
    if skip_a[0] and S > 1:
        v[1] = em[0, 1]
    choice = np.zeros((T, S), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    neg = np.full(S, NEG_INF)
    for t in range(1, T):
        stay = np.where(loop_a, v, NEG_INF)
        prev1 = np.concatenate(([NEG_INF], v[:-1]))
        prev2 = np.where(skip2_ok, np.concatenate(([NEG_INF, NEG_INF], v[:-2])) if S >= 2 else neg, NEG_INF)
        cand = np.stack([stay, prev1, prev2])
        c = cand.argmax(axis=0)
        choice[t] = c
        v = cand[c, np.arange(S)] + em[t]
    finals = [S - 1] + ([S - 2] if skip_a[-1] and S >= 2 else [])
    s = max(finals, key=lambda f: v[f])
    score = float(v[s])
    if not np.isfinite(score):
        raise ValueError("no finite-probability path through the targets")
    path = np.empty(T, dtype=np.int64)
    for t in range(T - 1, -1, -1):
        path[t] = s
        s -= int(choice[t, s])
    spans: list[Span] = []
    own = np.asarray(owner)[path]
    starts = np.flatnonzero(np.r_[True, own[1:] != own[:-1]])
    ends = np.r_[starts[1:], T]
    for st, en in zip(starts, ends):
        spans.append(Span(int(sym_a[path[st]]), int(st), int(en)))
    return Alignment(spans, score)


def align_frames(
    log_probs: torch.Tensor | np.ndarray,
    targets: Sequence[int],
    min_duration: int = 1,
    *,
    optional_silence: int | None = None,
    silence_between: bool = False,
    length: int | None = None,
) -> list[Span]:
    """Viterbi alignment of a phone sequence for frame-level models.

    Every target occupies ``>= min_duration`` consecutive frames, in order; together (with any
    inserted silences) they cover all frames.

    Args:
        log_probs: (T, K) frame-level log-probabilities.
        targets: (L,) phone ids.
        min_duration: fewest frames per target phone.
        optional_silence: a phone id (``sil``) that may be inserted, with any length >= 1, before the
            first and after the last target (and between targets when ``silence_between``).
        length: valid frames (``None``: all ``T``).

    Returns:
        spans in time order: one per target, plus one per inserted silence (phone =
        ``optional_silence``); consecutive spans tile ``[0, T)``.
    """
    return align_frames_scored(
        log_probs,
        targets,
        min_duration,
        optional_silence=optional_silence,
        silence_between=silence_between,
        length=length,
    ).spans


def expected_boundaries(
    log_probs: np.ndarray, targets: Sequence[int], min_duration: int, silence: int
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior-expected start and end (in frames, fractional) of every target phone.

    The state graph is :func:`phonrec.align.align_frames`' with ``optional_silence=silence`` and
    ``silence_between=True``: each phone ``min_duration`` chained states (the last self-loops), a
    skippable self-looping silence before, between and after the phones. Forward-backward over
    it gives each frame's posterior of belonging to unit ``<= u`` (units in order); summed over the
    frames that is the expected number of frames before the boundary after unit ``u``.

    Args:
        log_probs: (T, K) frame-level log-probabilities.
        targets: (L,) phone ids.

    Returns:
        ``(starts, ends)``, each (L,) in frames.
    """
    T = log_probs.shape[0]
    sym, loop, skip, unit = [silence], [True], [True], [0]
    phone_unit = []
    for i, p in enumerate(targets):
        if i:
            sym.append(silence), loop.append(True), skip.append(True), unit.append(unit[-1] + 1)
        u = unit[-1] + 1
        phone_unit.append(u)
        for j in range(min_duration):
            sym.append(p), loop.append(j == min_duration - 1), skip.append(False), unit.append(u)
    sym.append(silence), loop.append(True), skip.append(True), unit.append(unit[-1] + 1)
    S = len(sym)
    loop_a, skip_a = np.asarray(loop), np.asarray(skip)
    skip2 = np.zeros(S, dtype=bool)
    skip2[2:] = skip_a[1:-1]
    em = log_probs[:, np.asarray(sym)].astype(np.float64)  # (T, S)
    ninf = -np.inf

    def shift(x: np.ndarray, k: int) -> np.ndarray:  # x[s - k] at s (k > 0) or x[s + |k|] (k < 0)
        out = np.full_like(x, ninf)
        if k > 0:
            out[k:] = x[:-k]
        else:
            out[:k] = x[-k:]
        return out

    alpha = np.full((T, S), ninf)
    alpha[0, 0], alpha[0, 1] = em[0, 0], em[0, 1]
    for t in range(1, T):
        a = alpha[t - 1]
        cand = np.stack([np.where(loop_a, a, ninf), shift(a, 1), np.where(skip2, shift(a, 2), ninf)])
        alpha[t] = np.logaddexp.reduce(cand, axis=0) + em[t]
    beta = np.full((T, S), ninf)
    beta[T - 1, S - 1] = beta[T - 1, S - 2] = 0.0
    for t in range(T - 2, -1, -1):
        nb = beta[t + 1] + em[t + 1]
        to2 = np.where(shift(skip2, -2), shift(nb, -2), ninf)  # s -> s + 2 when s + 1 is a silence
        cand = np.stack([np.where(loop_a, nb, ninf), shift(nb, -1), to2])
        beta[t] = np.logaddexp.reduce(cand, axis=0)
    log_z = np.logaddexp.reduce(alpha[T - 1, [S - 2, S - 1]])
    if not np.isfinite(log_z):
        raise ValueError("no finite-probability path through the targets")
    gamma = np.exp(alpha + beta - log_z)  # (T, S)
    units = np.asarray(unit)
    occ = np.stack([gamma[:, units == u].sum(axis=1) for u in range(units.max() + 1)], axis=1)  # (T, U)
    before = np.concatenate([[0.0], np.cumsum(occ.sum(axis=0))])  # expected frames before unit u
    pu = np.asarray(phone_unit)
    return before[pu], before[pu + 1]


#: :func:`refine_phone_edges` leaves alignments alone above this many trellis cells (frames x
#: states; a few float64 matrices of it, 80 MB each, at once): about a minute of speech at 10-ms frames.
MAX_EXPECTATION_CELLS = 10_000_000


def refine_phone_edges(
    bounds: Sequence[tuple[int, int]],
    log_probs: np.ndarray,
    targets: Sequence[int],
    min_duration: int,
    silence: int,
) -> list[tuple[float, float]]:
    """Viterbi intervals with each edge between two touching phones moved to its posterior
    expectation (:func:`expected_boundaries`): the middle of the expected end of the first and the
    expected start of the second, kept ``>= min_duration`` frames from the phones' other edges.
    Pauses stay where Viterbi put them (the expectation alone opens a sliver of silence between
    almost every two phones). Measured on unseen synthetic voices: 85.9 -> 87.2% (awb) and
    85.4 -> 86.3% (festival's voices) of boundaries within 20 ms (``docs/benchmarks.md``).

    Args:
        bounds: (L,) ``(start, end)`` frames of each target, from :func:`align_frames` with
            ``optional_silence=silence, silence_between=True`` and the same ``min_duration``.
        log_probs: (T, K) frame-level log-probabilities.
        targets: (L,) phone ids.

    Returns:
        (L,) ``(start, end)`` in fractional frames; unchanged when the trellis would exceed
        :data:`MAX_EXPECTATION_CELLS`.
    """
    out = [(float(a), float(b)) for a, b in bounds]
    states = len(targets) * (min_duration + 1) + 1
    if len(targets) < 2 or log_probs.shape[0] * states > MAX_EXPECTATION_CELLS:
        return out
    starts, ends = expected_boundaries(log_probs, targets, min_duration, silence)
    for k in range(len(out) - 1):
        if bounds[k][1] != bounds[k + 1][0]:
            continue  # a pause between them: Viterbi's edges stay
        lo, hi = out[k][0] + min_duration, bounds[k + 1][1] - min_duration
        cut = min(max((ends[k] + starts[k + 1]) / 2, lo), hi) if lo <= hi else out[k][1]
        out[k], out[k + 1] = (out[k][0], cut), (cut, out[k + 1][1])
    return out


def align_batch(
    log_probs: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | np.ndarray | Sequence[int],
    targets: Sequence[Sequence[int]],
    blank: int | None,
    *,
    min_duration: int = 1,
    optional_silence: int | None = None,
) -> list[list[Span]]:
    """Align every utterance of a padded batch.

    Args:
        log_probs: (B, T, K) log-probabilities.
        lengths: (B,) valid frames.
        targets: B phone-id sequences.
        blank: blank id (CTC: :func:`align_ctc`) or ``None`` (frame-level: :func:`align_frames`
            with ``min_duration`` / ``optional_silence``).

    Raises:
        ValueError: naming the batch index whose targets cannot be aligned.
    """
    lp = (
        log_probs.detach().cpu().float().numpy()
        if isinstance(log_probs, torch.Tensor)
        else np.asarray(log_probs, np.float32)
    )
    if lp.ndim != 3:
        raise ValueError(f"log_probs: expected shape (B, T, K), got {lp.shape}")
    lens = np.asarray(lengths.cpu() if isinstance(lengths, torch.Tensor) else lengths).reshape(-1)
    if len(lens) != lp.shape[0] or len(targets) != lp.shape[0]:
        raise ValueError(f"batch of {lp.shape[0]}: got {len(lens)} lengths and {len(targets)} target sequences")
    out = []
    for b in range(lp.shape[0]):
        try:
            if blank is not None:
                out.append(align_ctc(lp[b], targets[b], blank, length=int(lens[b])))
            else:
                out.append(
                    align_frames(
                        lp[b], targets[b], min_duration, optional_silence=optional_silence, length=int(lens[b])
                    )
                )
        except ValueError as e:
            raise ValueError(f"batch item {b}: {e}") from None
    return out


def frame_labels_from_spans(spans: Sequence[Span], num_frames: int, fill: int | None = None) -> list[int]:
    """Spans -> one phone id per frame.

    Args:
        spans: in time order, non-overlapping, inside ``[0, num_frames)``.
        fill: id for frames no span covers (e.g. the blank of a CTC alignment). ``None`` extends
            spans instead: a gap takes the label of the span before it (leading frames take the
            first span's label), which turns a CTC alignment into dense frame targets.
    """
    if not spans:
        if fill is None:
            raise ValueError("no spans to extend over the frames (give fill=)")
        return [fill] * num_frames
    for a, b in zip(spans, spans[1:]):
        if b.start < a.end:
            raise ValueError(f"spans overlap or are out of order: {a} then {b}")
    if spans[0].start < 0 or spans[-1].end > num_frames:
        raise ValueError(f"spans exceed [0, {num_frames}): first {spans[0]}, last {spans[-1]}")
    labels = [spans[0].phone if fill is None else fill] * num_frames
    for i, s in enumerate(spans):
        stop = (spans[i + 1].start if i + 1 < len(spans) else num_frames) if fill is None else s.end
        labels[s.start : stop] = [s.phone] * (stop - s.start)
    return labels


def spans_to_segments(spans: Sequence[Span], phone_set: PhoneSet, hop_ms: float = DEFAULT_HOP_MS) -> list[Segment]:
    """Spans in frames -> :class:`phonrec.data.segments.Segment` (symbol, seconds)."""
    return [
        Segment(phone_set.symbols[s.phone], frames_to_seconds(s.start, hop_ms), frames_to_seconds(s.end, hop_ms))
        for s in spans
    ]


#: How far a CTC phone is widened over the blanks on each side (:func:`widen_ctc_frames`): 4 frames
#: of 10 ms, 1 of 30 ms. Counted in frames it was 120 ms at 30-ms frames, and the packaged model's
#: speech/silence boundaries were 3% within 20 ms of exact timings (bench/boundaries.py; 49% at 1 frame).
CTC_WIDEN_MS = 40.0


def widen_ctc_frames(hop_ms: float) -> int:
    """:data:`CTC_WIDEN_MS` in frames of ``hop_ms`` (at least one)."""
    return max(1, int(round(CTC_WIDEN_MS / hop_ms)))


def widen_ctc_spans(spans: Sequence[Span], num_frames: int, *, hop_ms: float) -> list[Span]:
    """Each CTC span (covering only its emitted frames) widened over the blank frames next to it.

    A phone takes up to ``max_extend`` blank frames on each side (:data:`CTC_WIDEN_MS` in frames
    of ``hop_ms`` ms, :func:`widen_ctc_frames`); a gap between two phones that is at most
    ``2 * max_extend`` frames long is split between them at its middle. The widened spans keep
    their order and phones and never overlap; what none covers (the rest of longer gaps, the
    leading/trailing blanks) is silence to the caller.
    """
    max_extend = widen_ctc_frames(hop_ms)
    out: list[Span] = []
    for i, s in enumerate(spans):
        prev_end = spans[i - 1].end if i else None
        next_start = spans[i + 1].start if i + 1 < len(spans) else None
        lo = s.start - max_extend if prev_end is None else max(s.start - max_extend, (prev_end + s.start + 1) // 2)
        hi = s.end + max_extend if next_start is None else min(s.end + max_extend, (s.end + next_start + 1) // 2)
        out.append(Span(s.phone, max(0, lo), min(num_frames, hi)))
    return out


def ctc_frame_labels(spans: Sequence[Span], num_frames: int, silence: int, *, hop_ms: float) -> list[int]:
    """Dense frame labels from a CTC alignment (model frames of ``hop_ms``), whose phones cover only
    their emitted frames: the spans widened by :func:`widen_ctc_spans`, ``silence`` on every frame
    none of them covers."""
    labels = [silence] * num_frames
    for s in widen_ctc_spans(spans, num_frames, hop_ms=hop_ms):
        labels[s.start : s.end] = [s.phone] * (s.end - s.start)
    return labels
