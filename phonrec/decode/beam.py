"""Phone-level search with a phone bigram: CTC prefix beam search and a Viterbi phone loop.

* :class:`PhoneBigram` — ``log P(cur | prev)`` over phone ids, with sentence boundaries.
* :func:`viterbi_phone_loop` — frame-level models: the best segmentation of the frames into
  phones (each ``>= min_duration`` frames, adjacent phones differ) under
  ``sum_t log_probs[t, phone_t] + sum_transitions (switch_penalty | bigram)``. This replaces
  greedy merge-repeats, whose short spurious runs insert phones.
* :func:`phone_beam_search` — CTC models: prefix beam search (sums over CTC paths of a prefix)
  with ``lm_weight * log P_bigram + insertion_bonus`` per emitted phone; frame-level models: the
  Viterbi phone loop with the bigram as transition scores.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from phonrec.decode.greedy import Span, as_numpy_log_probs, runs_to_spans

NEG_INF = -np.inf


@dataclass
class PhoneBigram:
    """Phone bigram ``log P(cur | prev)`` (natural log).

    Attributes:
        log_probs: (K+1, K+1); row ``K`` is the start context ``<s>``, column ``K`` the end ``</s>``.
            Rows are distributions over the columns (phones plus ``</s>``); column ``K`` of row
            ``K`` (the empty sequence) is allowed.
    """

    log_probs: np.ndarray

    def __post_init__(self) -> None:
        a = np.asarray(self.log_probs, np.float64)
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
            raise ValueError(f"PhoneBigram.log_probs: expected (K+1, K+1), got {a.shape}")
        self.log_probs = a

    @property
    def num_phones(self) -> int:
        return self.log_probs.shape[0] - 1

    def log_prob(self, prev: int | None, cur: int | None) -> float:
        """``log P(cur | prev)``; ``prev=None`` is the sentence start, ``cur=None`` the end."""
        K = self.num_phones
        return float(self.log_probs[K if prev is None else prev, K if cur is None else cur])

    @classmethod
    def fit(
        cls,
        sequences: Iterable[Sequence[int]],
        num_phones: int,
        *,
        method: str = "witten_bell",
        k: float = 0.5,
        exclude: Sequence[int] = (),
    ) -> "PhoneBigram":
        """Estimate from phone-id sequences.

        Args:
            sequences: training phone strings (ids in ``[0, num_phones)``).
            num_phones: ``K`` (the model's classes, blank included if any).
            method: ``"add_k"`` (add ``k`` to every count) or ``"witten_bell"`` (interpolated with an
                add-one unigram).
            exclude: ids that are never predicted (e.g. the blank): probability 0.
        """
        K = num_phones
        counts = np.zeros((K + 1, K + 1))
        for i, seq in enumerate(sequences):
            seq = [int(x) for x in seq]
            for x in seq:
                if not 0 <= x < K or x in exclude:
                    raise ValueError(f"sequence {i}: phone id {x} outside [0, {K}) or excluded")
            ctx = [K] + seq
            nxt = seq + [K]
            np.add.at(counts, (np.array(ctx), np.array(nxt)), 1.0)
        allowed = np.ones(K + 1, bool)
        allowed[list(exclude)] = False
        if method == "add_k":
            if k <= 0:
                raise ValueError(f"k must be > 0, got {k}")
            p = (counts + k) * allowed[None, :]
        elif method == "witten_bell":
            uni = (counts.sum(0) + 1.0) * allowed
            uni /= uni.sum()
            tot = counts.sum(1, keepdims=True)
            types = (counts > 0).sum(1, keepdims=True)
            lam = np.where(tot > 0, tot / np.maximum(tot + types, 1e-12), 0.0)
            p = lam * counts / np.maximum(tot, 1e-12) + (1 - lam) * uni[None, :]
        else:
            raise ValueError(f"method must be 'add_k' or 'witten_bell', got {method!r}")
        p = p / p.sum(1, keepdims=True)
        with np.errstate(divide="ignore"):
            return cls(np.log(p))

    def save(self, path: str | Path) -> None:
        """JSON: ``{"num_phones": K, "log_probs": [[...]]}`` (``-inf`` written as null)."""
        rows = [[None if not math.isfinite(v) else v for v in row] for row in self.log_probs.tolist()]
        Path(path).write_text(json.dumps({"num_phones": self.num_phones, "log_probs": rows}), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "PhoneBigram":
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        try:
            a = np.array([[NEG_INF if v is None else v for v in row] for row in d["log_probs"]], np.float64)
        except (KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a PhoneBigram JSON file ({e})") from None
        if a.shape != (d.get("num_phones", -1) + 1,) * 2:
            raise ValueError(f"{path}: log_probs shape {a.shape} does not match num_phones {d.get('num_phones')}")
        return cls(a)


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
    from phonrec.align import align_ctc  # here: phonrec.align imports this package

    return align_ctc(arr.astype(np.float32), list(best), blank)
