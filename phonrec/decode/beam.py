"""Phone-level search with a phone bigram: CTC prefix beam search and a Viterbi phone loop.

* :class:`phonrec.lm.PhoneBigram` — ``log P(cur | prev)`` over phone ids, with sentence boundaries.
* :func:`viterbi_phone_loop` — frame-level models: the best segmentation of the frames into
  phones (each ``>= min_duration`` frames, adjacent phones differ) under
  ``sum_t log_probs[t, phone_t] + sum_transitions (switch_penalty | bigram)``. This replaces
  greedy merge-repeats, whose short spurious runs insert phones.
* :func:`phone_beam_search` — CTC models: prefix beam search (sums over CTC paths of a prefix)
  with ``lm_weight * log P_bigram + insertion_bonus`` per emitted phone; frame-level models: the
  Viterbi phone loop with the bigram as transition scores.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

from phonrec.align import align_ctc
from phonrec.lm import PhoneBigram
from phonrec.spans import Span, as_numpy_log_probs, runs_to_spans

NEG_INF = -np.inf


def viterbi_phone_loop(
    log_probs: torch.Tensor | np.ndarray,
    length: int | None = None,
    min_duration: int = 3,
    switch_penalty: float = 0.0,
    *,
    transitions: np.ndarray | None = None,
    initial: np.ndarray | None = None,
    final: np.ndarray | None = None,
) -> list[Span]:
    """Best segmentation of frame-level output into phones (phone loop with minimum duration).

    Maximises ``sum_t log_probs[t, phone_t] + initial[first] + sum switch scores + final[last]``
    over label sequences made of runs of ``>= min_duration`` frames with adjacent runs different;
    a switch from ``a`` to ``b`` scores ``transitions[a, b]`` if given, else ``switch_penalty``
    (negative values discourage insertions). With fewer than ``min_duration`` frames the whole
    utterance is one phone.

    Args:
        log_probs: (T, K) frame-level log-probabilities.
        transitions: (K, K) log transition scores (diagonal ignored).
        initial, final: (K,) log scores of the first / last phone (default 0).

    Returns:
        spans tiling ``[0, T)``.
    """
    arr = as_numpy_log_probs(log_probs, length).astype(np.float64)
    T, K = arr.shape
    if min_duration < 1:
        raise ValueError(f"min_duration must be >= 1, got {min_duration}")
    if T == 0:
        return []
    if T < min_duration:
        return [Span(int(arr.sum(0).argmax()), 0, T)]
    trans = np.full((K, K), float(switch_penalty)) if transitions is None else np.asarray(transitions, np.float64)
    if trans.shape != (K, K):
        raise ValueError(f"transitions: expected ({K}, {K}), got {trans.shape}")
    trans = trans.copy()
    np.fill_diagonal(trans, NEG_INF)
    init = np.zeros(K) if initial is None else np.asarray(initial, np.float64)
    fin = np.zeros(K) if final is None else np.asarray(final, np.float64)
    if min_duration > 1:
        return _backtrace_min_duration(arr, min_duration, trans, init, fin)
    # min_duration == 1: one state per phone; back[t, k] = previous phone on entering, -1 = stayed
    V = init + arr[0]
    back = np.zeros((T, K), np.int64)
    for t in range(1, T):
        cand = V[:, None] + trans  # (prev, cur)
        prev = cand.argmax(0)
        enter = cand[prev, np.arange(K)]
        stay = V >= enter
        back[t] = np.where(stay, -1, prev)
        V = np.where(stay, V, enter) + arr[t]
    k = int((V + fin).argmax())
    labels = np.empty(T, np.int64)
    for t in range(T - 1, -1, -1):
        labels[t] = k
        if t > 0 and back[t, k] != -1:
            k = int(back[t, k])
    return runs_to_spans(labels)


def _backtrace_min_duration(
    arr: np.ndarray, d: int, trans: np.ndarray, init: np.ndarray, fin: np.ndarray
) -> list[Span]:
    """Phone loop Viterbi for ``d > 1``: states (frames-so-far capped at d, phone), (T, K) backpointers."""
    T, K = arr.shape
    V = np.full((d, K), NEG_INF)
    V[0] = init + arr[0]
    enter_prev = np.zeros((T, K), np.int64)
    stay_last = np.zeros((T, K), bool)  # state d-1 came from itself (not from d-2)
    for t in range(1, T):
        cand = V[d - 1][:, None] + trans
        prev = cand.argmax(0)
        enter_prev[t] = prev
        nV = np.empty_like(V)
        nV[0] = cand[prev, np.arange(K)]
        nV[1 : d - 1] = V[0 : d - 2]
        stay = V[d - 1] >= V[d - 2]
        stay_last[t] = stay
        nV[d - 1] = np.where(stay, V[d - 1], V[d - 2])
        V = nV + arr[t][None, :]
    k = int((V[d - 1] + fin).argmax())
    j = d - 1
    labels = np.empty(T, np.int64)
    for t in range(T - 1, -1, -1):
        labels[t] = k
        if t == 0:
            break
        if j == 0:
            k = int(enter_prev[t, k])
            j = d - 1
        elif j == d - 1:
            j = d - 1 if stay_last[t, k] else d - 2
        else:
            j -= 1
    return runs_to_spans(labels)


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def phone_beam_search(
    log_probs: torch.Tensor | np.ndarray,
    length: int | None = None,
    lm: PhoneBigram | None = None,
    blank: int | None = 0,
    beam: int = 8,
    *,
    lm_weight: float = 1.0,
    insertion_bonus: float = 0.0,
    min_duration: int = 1,
) -> list[Span]:
    """Phone decoding with a phone bigram.

    CTC (``blank`` set): prefix beam search. A prefix's acoustic score is the log of the summed
    probability of all CTC paths that collapse to it; each emitted phone adds
    ``lm_weight * lm.log_prob(prev, cur) + insertion_bonus`` and the end adds
    ``lm_weight * lm.log_prob(last, None)``. ``beam`` prefixes survive each frame, and each
    prefix is extended by its ``beam`` best phones. Spans come from a CTC forced alignment of the
    best prefix.

    Frame-level (``blank=None``): :func:`viterbi_phone_loop` with transition scores
    ``lm_weight * log P(b | a) + insertion_bonus`` (exact; ``beam`` is unused).

    Args:
        log_probs: (T, K) log-probabilities.
        lm: phone bigram over the same ``K`` ids (``None``: no LM).
    """
    arr = as_numpy_log_probs(log_probs, length).astype(np.float64)
    T, K = arr.shape
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    if lm is not None and lm.num_phones != K:
        raise ValueError(f"PhoneBigram has {lm.num_phones} phones, log_probs has K={K}")
    big = np.zeros((K + 1, K + 1)) if lm is None else lm_weight * lm.log_probs
    if blank is None:
        trans = big[:K, :K] + insertion_bonus
        return viterbi_phone_loop(
            arr, None, min_duration, transitions=trans, initial=big[K, :K] + insertion_bonus, final=big[:K, K]
        )
    if not 0 <= blank < K:
        raise ValueError(f"blank id {blank} outside [0, K={K})")
    if min_duration != 1:
        raise ValueError("min_duration applies to frame-level output only (blank=None)")
    if T == 0:
        return []
    ext_score = big[:, :K] + insertion_bonus  # (K+1 ctx, K) added per emission
    ext_score[:, blank] = NEG_INF
    nb = min(beam, K - 1)
    # prefix -> [log p(ending in blank), log p(ending in non-blank)]
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, NEG_INF]}
    lm_part: dict[tuple[int, ...], float] = {(): 0.0}
    for t in range(T):
        lp = arr[t]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            tot = _logaddexp(pb, pnb)
            last = prefix[-1] if prefix else None
            e = nxt[prefix]
            e[0] = _logaddexp(e[0], tot + lp[blank])
            if last is not None:
                e[1] = _logaddexp(e[1], pnb + lp[last])
            ctx = K if last is None else last
            cand = ext_score[ctx] + lp  # (K,)
            src = np.full(K, tot)
            if last is not None:
                src[last] = pb  # a repeat needs a blank in between
            cand = cand + src
            top = np.argpartition(-cand, nb - 1)[:nb] if nb < K else np.arange(K)
            for k in top.tolist():
                if cand[k] == NEG_INF:
                    continue
                np_ = prefix + (k,)
                lm_part[np_] = lm_part[prefix] + ext_score[ctx, k]
                en = nxt[np_]
                en[1] = _logaddexp(en[1], src[k] + lp[k])
        # rank by acoustic + LM
        ranked = sorted(nxt.items(), key=lambda kv: -(_logaddexp(*kv[1]) + lm_part[kv[0]]))
        beams = dict(ranked[:beam])
    best = max(beams, key=lambda p: _logaddexp(*beams[p]) + lm_part[p] + big[p[-1] if p else K, K])
    if not best:
        return []
    return align_ctc(arr.astype(np.float32), list(best), blank)
