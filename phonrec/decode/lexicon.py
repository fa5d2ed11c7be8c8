"""Dictionary-constrained decoding: only phone strings that spell a sequence of lexicon words.

The search is a frame-synchronous Viterbi (token passing) over the states of a pronunciation
prefix tree. Only the active states (those that survived pruning) are stored and updated, as
numpy arrays of node ids, scores and word-exit records; their children come from a CSR child
list and word exits only from their word-end entries, so the work per frame grows with the
number of active states, not with the size of the lexicon.

Objective (what :class:`LexiconDecoder` maximises and what :attr:`Hypothesis.score` reports)::

    score = sum_t log_probs'[t, symbol of the path at t]      (acoustic: best path, not a sum over paths)
          + word_penalty * (number of words)                   (silence is not a word)
          + lm_weight * sum_i log P_LM(w_i | w_{i-1})          (w_0 = <s>, and a final log P(</s> | w_n))

``log_probs'`` is ``log_probs`` for CTC output and ``log_probs - log(priors)`` for frame-level
output when ``priors`` are given. A path is:

* CTC (the phone set has ``<blank>``): the usual CTC path — every phone of the word string is
  emitted on one or more consecutive frames, blanks may occur anywhere between phones, and two
  equal phones in a row (inside a word or across a word boundary) need at least one blank
  between them.
* frame-level (no ``<blank>``): every phone occupies ``>= min_duration`` consecutive frames; all
  frames belong to some phone.

With ``silence`` in the phone set, one silence phone may be inserted before, between and after
words (it is not a word: no penalty, no LM score, and it leaves the LM history unchanged).

Search: tokens in the same tree state are recombined (only the best survives), and all word-end
tokens of one frame are recombined at the tree root. Without an LM or with a unigram LM this is
exact (the best path under the objective is found when ``beam=inf``). With a bigram LM each
token carries the history word of its best predecessor (the usual single-tree approximation), so
the search may miss the optimum, while the reported score is always the exact objective of the
returned words: the final phone string is re-aligned (:mod:`phonrec.align`) and rescored.
Pruning: states more than ``beam`` below the best state of the frame are dropped, and at most
``max_active`` states are kept when that is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch

from phonrec.align import align_ctc_scored, align_frames_scored
from phonrec.lexicon import Lexicon
from phonrec.lm import WordLM
from phonrec.phones import PhoneSet
from phonrec.spans import Span, as_numpy_log_probs

NEG_INF = -np.inf


# --------------------------------------------------------------------------------------------
# prefix tree
# --------------------------------------------------------------------------------------------
@dataclass
class PrefixTree:
    """Pronunciation prefix tree; node ids ``0..N-1`` exclude the root.

    :meth:`build` numbers the nodes breadth-first: the children of a node are consecutive ids,
    ordered by phone, except that the child with the node's own phone (there is at most one)
    comes last. So a node's children with other phones are one id range (the search expands
    them without a child list).

    Attributes:
        parent: (N,) parent node id, ``-1`` for children of the root.
        phone: (N,) phone id of each node.
        ent_node, ent_word: (E,) word-end entries: node id and word index (``-1``: the silence
            pseudo-word); homophones share a node, several pronunciations give several entries.
        words: word strings indexed by ``ent_word``.
    """

    parent: np.ndarray
    phone: np.ndarray
    ent_node: np.ndarray
    ent_word: np.ndarray
    words: list[str]

    @classmethod
    def build(cls, lexicon: Lexicon, phone_set: PhoneSet, silence_id: int | None) -> "PrefixTree":
        words = lexicon.words
        child: dict[tuple[int, int], int] = {}
        parent: list[int] = []
        phone: list[int] = []
        ent_node: list[int] = []
        ent_word: list[int] = []
        ids = {s: i for i, s in enumerate(phone_set.symbols)}

        def insert(pron: Sequence[int]) -> int:
            node = -1
            for p in pron:
                nxt = child.get((node, p))
                if nxt is None:
                    nxt = len(parent)
                    child[(node, p)] = nxt
                    parent.append(node)
                    phone.append(p)
                node = nxt
            return node

        for wi, w in enumerate(words):
            for pron in lexicon.entries[w]:
                try:
                    pid = [ids[p] for p in pron]
                except KeyError as e:
                    raise ValueError(
                        f"lexicon word {w!r}: phone {e.args[0]!r} is not in the {len(phone_set)}-symbol phone set"
                    ) from None
                if phone_set.blank_id is not None and phone_set.blank_id in pid:
                    raise ValueError(f"lexicon word {w!r} spells the blank symbol")
                ent_node.append(insert(pid))
                ent_word.append(wi)
        if silence_id is not None:
            ent_node.append(insert([silence_id]))
            ent_word.append(-1)
        par, ph = np.array(parent, np.int64), np.array(phone, np.int64)
        new = _breadth_first(par, ph)
        old = np.empty_like(new)
        old[new] = np.arange(new.size)
        par = par.take(old)
        return cls(
            np.where(par >= 0, new.take(np.maximum(par, 0)), -1),
            ph.take(old),
            new.take(np.array(ent_node, np.int64)),
            np.array(ent_word, np.int64),
            words,
        )

    def __len__(self) -> int:
        return int(self.parent.size)

    def node_phones(self, node: int) -> list[int]:
        out = []
        while node != -1:
            out.append(int(self.phone[node]))
            node = int(self.parent[node])
        return out[::-1]


def _breadth_first(parent: np.ndarray, phone: np.ndarray) -> np.ndarray:
    """New ids (N,) of the nodes of a tree (parent (N,), ``-1``: a root child; phone (N,)) in :class:`PrefixTree` order.

    Level by level; within a level by the parent's new id, then phone, the child with the
    parent's phone last.
    """
    n = parent.size
    new = np.empty(n, np.int64)
    inner = np.flatnonzero(parent >= 0)
    same = np.zeros(n, bool)
    same[inner] = phone.take(inner) == phone.take(parent.take(inner))
    ptr, order = _csr(parent.take(inner), n)
    kids = inner.take(order)
    level = np.flatnonzero(parent < 0)
    level = level[np.argsort(phone.take(level), kind="stable")]
    nxt = 0
    while level.size:
        new[level] = np.arange(nxt, nxt + level.size)
        nxt += level.size
        zero = np.zeros(level.size)
        ch = _expand(ptr, kids, _Active(level, zero, zero.astype(np.int64))).ids
        level = ch[np.lexsort((phone.take(ch), same.take(ch), new.take(parent.take(ch))))]
    return new


@dataclass(frozen=True)
class Hypothesis:
    """One decoded word string.

    Attributes:
        words: the words (upper-case), silence excluded.
        phones: the phone ids spelled (chosen pronunciations plus inserted silences).
        spans: one span per phone of ``phones`` (Viterbi alignment of that phone string).
        score: the objective (module docstring) = ``acoustic + word_penalty*len(words) + lm_weight*lm``.
        acoustic: best-path log-probability of ``phones``; ``lm``: LM log-probability of ``words``.
    """

    words: list[str]
    phones: list[int]
    spans: list[Span]
    score: float
    acoustic: float = 0.0
    lm: float = 0.0


class _Active(NamedTuple):
    """States of one kind (a row of :class:`_States`), candidate paths, or word exits.

    Attributes:
        ids: (M,) node ids (entry ids for word exits).
        score: (M,) float64 best-path scores (``-inf``: inactive).
        rec: (M,) int64 word-exit record of each path (``-1``: no word yet). The LM history of a
            path is a function of its record (:meth:`_Workspace.hist`).
    """

    ids: np.ndarray
    score: np.ndarray
    rec: np.ndarray


_EMPTY = _Active(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int64))


def _csr(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Group items ``0..M-1`` by ``keys`` (M,) in ``[0, n)``.

    Returns:
        (n+1,) offsets and (M,) item ids: the items of key ``k`` are ``ids[ptr[k]:ptr[k+1]]``, ascending.
    """
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=ptr[1:])
    return ptr, np.argsort(keys, kind="stable").astype(np.int64)


def _take(st: _Active, idx: np.ndarray) -> _Active:
    """The states at positions ``idx`` (K,) of ``st``."""
    return _Active(st.ids.take(idx), st.score.take(idx), st.rec.take(idx))


def _select(st: _Active, mask: np.ndarray) -> _Active:
    """The states of ``st`` where ``mask`` (M,) is true (``nonzero`` + ``take``: far faster than boolean indexing)."""
    return _take(st, mask.nonzero()[0])


def _expand(ptr: np.ndarray, items: np.ndarray, st: _Active) -> _Active:
    """All CSR items (children or word-end entries) of the states ``st``, each with its state's score and record.

    Args:
        ptr, items: (N+1,) offsets and grouped item ids (:func:`_csr`).
        st: (M,) states.
    Returns:
        (sum of the states' item counts,) items, grouped by state in the order of ``st``.
    """
    start = ptr.take(st.ids)
    cnt = ptr.take(st.ids + 1) - start
    has = (cnt > 0).nonzero()[0]
    if has.size == 0:
        return _EMPTY
    return _gather_items(items, start.take(has), cnt.take(has), has, st)


def _expand_range(first: np.ndarray, st: _Active, cnt: np.ndarray, ok: np.ndarray) -> _Active:
    """Like :func:`_expand` of ``_select(st, ok)`` when the items of node ``n`` are the ids ``first[n] ..
    first[n] + cnt - 1``, given the states' item counts ``cnt`` (M,) int64.

    Only the states with items are looked up in ``first``, and there is no item list to gather from.
    """
    has = (ok & (cnt > 0)).nonzero()[0]
    if has.size == 0:
        return _EMPTY
    return _gather_items(None, first.take(st.ids.take(has)), cnt.take(has), has, st)


def _gather_items(
    items: np.ndarray | None, start: np.ndarray, cnt: np.ndarray, has: np.ndarray, st: _Active
) -> _Active:
    """The items ``items[start[i] : start[i] + cnt[i]]`` (cnt > 0; ``items=None``: the identity) of the
    states ``st[has[i]]``, in that order."""
    end = cnt.cumsum()
    total = int(end[-1])
    # owner[k]: which of the states ``has`` output item k belongs to (np.repeat is much slower)
    step = np.zeros(total, np.int64)
    step[end[:-1]] = 1
    owner = step.cumsum()
    pos = (start - end + cnt).take(owner)  # CSR position minus output position
    pos += np.arange(total)
    src = has.take(owner)
    return _Active(pos if items is None else items.take(pos), st.score.take(src), st.rec.take(src))


def _const(ids: np.ndarray, score: float | np.ndarray, rec: int | np.ndarray) -> _Active:
    """(M,) states ``ids`` with scores/records broadcast from scalars or (M,) arrays, ``-inf`` scores dropped."""
    s = np.full(ids.shape, score, np.float64) if np.ndim(score) == 0 else np.asarray(score, np.float64)
    r = np.full(ids.shape, rec, np.int64) if np.ndim(rec) == 0 else np.asarray(rec, np.int64)
    keep = s > NEG_INF
    return _Active(ids, s, r) if keep.all() else _select(_Active(ids, s, r), keep)


def _best_exit(ex: _Active, allowed: np.ndarray | None = None, ent: np.ndarray | None = None) -> int:
    """Position in ``ex`` (K,) of the best finite exit among ``allowed`` (K,) (ties: lowest entry id); -1 if none.

    ``ent``: when ``ex.ids`` are node ids, the (N,) entry id of each node (looked up at the ties only).
    """
    tot = ex.score if allowed is None else np.where(allowed, ex.score, NEG_INF)
    if tot.size == 0:
        return -1
    mx = tot.max()
    if not math.isfinite(mx):
        return -1
    ties = (tot == mx).nonzero()[0]
    if ties.size == 1:
        return int(ties[0])
    ids = ex.ids.take(ties)
    return int(ties[np.argmin(ids if ent is None else ent.take(ids))])


class _States(NamedTuple):
    """The active tree nodes and the scores of their C states.

    CTC: row 0 is the phone state, row 1 the blank-after-phone state of each node. Frame-level
    output: row k (k < d-1) holds the paths that have spent k+1 frames in the node's phone, row
    d-1 those that have spent >= d frames (they may leave the phone).

    Attributes:
        ids: (M,) distinct node ids.
        score: (C, M) float64 best-path scores (``-inf``: that state is inactive).
        rec: (C, M) int64 word-exit records of the paths (as :attr:`_Active.rec`).
    """

    ids: np.ndarray
    score: np.ndarray
    rec: np.ndarray


def _row(st: _States, c: int) -> _Active:
    """Row ``c`` of ``st`` as (M,) states, inactive ones included (score ``-inf``)."""
    return _Active(st.ids, st.score[c], st.rec[c])


def _compact(st: _States) -> _States:
    """Drop the nodes whose states are all inactive."""
    keep = (st.score > NEG_INF).any(axis=0).nonzero()[0]
    if keep.size == st.ids.size:
        return st
    return _States(st.ids.take(keep), st.score.take(keep, axis=1), st.rec.take(keep, axis=1))


def _first_max(cands: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise best of (score (m,), rec (m,)) candidates; the earliest candidate wins ties."""
    s = np.stack([c[0] for c in cands])
    k = s.argmax(axis=0)
    cols = np.arange(s.shape[1])
    return s[k, cols], np.stack([c[1] for c in cands])[k, cols]


def _best_of(a: _Active, b: _Active) -> _Active:
    """Elementwise best of two (M,) state rows over the same nodes; ``a`` wins ties.

    (``maximum`` and an arithmetic select: several times faster than ``np.where`` on such masks.)
    """
    better = b.score > a.score
    return _Active(a.ids, np.maximum(a.score, b.score), a.rec + better * (b.rec - a.rec))


class _Workspace:
    """Per-utterance search state: the word-exit records and the node-slot scratch of :meth:`enter`.

    A record ``r`` is one word exit: entry ``rec_ent[r]``, the record ``rec_prev[r]`` of the path
    before it, and the LM history after it.
    """

    def __init__(self, n_nodes: int, max_records: int, bos: int) -> None:
        self.rec_ent: list[int] = []
        self.rec_prev: list[int] = []
        self._hist = np.empty(max_records + 1, np.int64)  # history of record r at r + 1
        self._hist[0] = bos
        self._slot = np.full(n_nodes, -1, np.int64)  # scratch: all -1 between calls of enter

    def add_rec(self, ent: int, prev: int, hist: int) -> int:
        self.rec_ent.append(ent)
        self.rec_prev.append(prev)
        self._hist[len(self.rec_ent)] = hist
        return len(self.rec_ent) - 1

    def hist(self, rec: np.ndarray) -> np.ndarray:
        """(M,) LM histories of paths with records ``rec`` (M,)."""
        return self._hist[rec + 1]

    def enter(
        self, ids: np.ndarray, pre: np.ndarray, post: np.ndarray, rec: np.ndarray, cands: _Active, c_add: np.ndarray
    ) -> _States:
        """Recombine candidate paths into row 0 (phone states) of the nodes ``ids``.

        Per node the better score before emission wins (the current one on ties), as in a dense
        Viterbi step; candidate nodes not in ``ids`` are appended (their other rows inactive).

        Args:
            ids: (M,) distinct nodes; pre: (C, M) their scores before emission (read only);
                post: (C, M) the same plus emission, and rec: (C, M) records (both updated in place).
            cands: (K,) candidates for distinct nodes, scores before emission; c_add: (K,) their emission.
        """
        if cands.ids.size == 0:
            return _States(ids, post, rec)
        slot = self._slot
        slot[ids] = np.arange(ids.size)
        pos = slot.take(cands.ids)
        slot[ids] = -1
        old = (pos >= 0).nonzero()[0]
        if old.size:
            p = pos.take(old)
            v = cands.score.take(old)
            win = (v > pre[0].take(p)).nonzero()[0]
            w = old.take(win)
            p = p.take(win)
            post[0, p] = cands.score.take(w) + c_add.take(w)
            rec[0, p] = cands.rec.take(w)
        new = (pos < 0).nonzero()[0]
        if new.size == 0:
            return _States(ids, post, rec)
        add_s = np.full((post.shape[0], new.size), NEG_INF)
        add_s[0] = cands.score.take(new) + c_add.take(new)
        add_r = np.full((post.shape[0], new.size), -1, np.int64)
        add_r[0] = cands.rec.take(new)
        return _States(
            np.concatenate([ids, cands.ids.take(new)]),
            np.concatenate([post, add_s], axis=1),
            np.concatenate([rec, add_r], axis=1),
        )


class LexiconDecoder:
    """Lexicon-constrained Viterbi search over per-frame phone log-probabilities.

    Args:
        lexicon: words and their pronunciations (phone symbols of ``phone_set``).
        phone_set: the model's phone inventory. A set with ``<blank>`` (id 0,
            :attr:`PhoneSet.blank_id`) means CTC output; one without means frame-level output.
        beam: log-probability beam: states below ``best - beam`` at a frame are dropped
            (``math.inf``: exact search for no LM / unigram LM).
        max_active: keep at most this many states per frame (``None``: no limit).
        word_penalty: added once per word (negative values discourage insertions).
        silence: symbol of the optional inter-word silence (``None`` or absent from the phone set:
            no silence).
        lm: optional :class:`phonrec.lm.WordLM`; ``lm_weight`` scales its log-probabilities.
        min_duration: frame-level output: fewest frames per phone.
        priors: frame-level output: (K,) phone priors; ``log(priors)`` is subtracted from the
            log-probabilities (posteriors -> scaled likelihoods).
    """

    def __init__(
        self,
        lexicon: Lexicon,
        phone_set: PhoneSet,
        *,
        beam: float = 16.0,
        max_active: int | None = None,
        word_penalty: float = 0.0,
        silence: str | None = "sil",
        lm: WordLM | None = None,
        lm_weight: float = 1.0,
        min_duration: int = 1,
        priors: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        if len(lexicon) == 0:
            raise ValueError("the lexicon is empty")
        if not beam > 0:
            raise ValueError(f"beam must be > 0, got {beam}")
        if max_active is not None and max_active < 1:
            raise ValueError(f"max_active must be >= 1, got {max_active}")
        if min_duration < 1:
            raise ValueError(f"min_duration must be >= 1, got {min_duration}")
        blank = phone_set.blank_id
        if blank is not None:
            if min_duration != 1:
                raise ValueError("min_duration applies to frame-level output only (a phone set without <blank>)")
            if priors is not None:
                raise ValueError("priors apply to frame-level output only (a phone set without <blank>)")
        self.phone_set = phone_set
        self.beam = float(beam)
        self.max_active = max_active
        self.word_penalty = float(word_penalty)
        self.lm = lm
        self.lm_weight = float(lm_weight)
        self.blank = blank
        self.min_duration = int(min_duration)
        self.silence_id = phone_set.index(silence) if silence is not None and silence in phone_set else None
        self.log_priors: np.ndarray | None = None
        if priors is not None:
            p = np.asarray(priors, np.float64)
            if p.shape != (len(phone_set),) or (p <= 0).any():
                raise ValueError(f"priors: expected ({len(phone_set)},) positive values, got shape {p.shape}")
            self.log_priors = np.log(p / p.sum()).astype(np.float32)
        self.tree = PrefixTree.build(lexicon, phone_set, self.silence_id)
        t = self.tree
        N = len(t)
        self._root_child = np.flatnonzero(t.parent == -1)
        inner = np.flatnonzero(t.parent != -1)
        same = t.phone[inner] == t.phone[t.parent[inner]]
        # children of each node: all of them (frame-level output), or split by whether their phone
        # differs from the parent's (CTC: a repeated phone needs a blank in between)
        self._kid_ptr, self._kids = self._children(inner)
        self._dkid_ptr, self._dkids = self._children(inner[~same])
        self._skid_ptr, self._skids = self._children(inner[same])
        self._has_skid = np.diff(self._skid_ptr) > 0
        # breadth-first ids (PrefixTree): the children with another phone of node n are the ids
        # _dkid_first[n] .. _dkid_first[n] + (count) - 1
        first = (
            self._dkids.take(np.minimum(self._dkid_ptr[:-1], max(self._dkids.size - 1, 0)))
            if self._dkids.size
            else np.zeros(N, np.int64)
        )
        self._dkid_first = first.astype(np.int32 if N < 2**31 else np.int64)
        self._ent_ptr, self._ents = _csr(t.ent_node, N)  # word-end entries of each node
        self._ent_ph = t.phone[t.ent_node]
        self._ent_sil = t.ent_word == -1
        self._ent_pen = np.where(self._ent_sil, 0.0, self.word_penalty)
        if lm is not None:
            self._ent_lm = np.array([lm.index(t.words[w]) if w >= 0 else 0 for w in t.ent_word], np.int64)
            self._bos = lm.bos
        else:
            self._ent_lm = np.zeros(t.ent_word.size, np.int64)
            self._bos = 0
        # Without an LM all entries of a node exit with the same score when they share a penalty
        # (always, unless a word is spelled as the lone silence phone): a search step then only
        # needs each node's lowest entry id.
        has_ent = np.diff(self._ent_ptr) > 0
        self._node_ent = np.full(N, -1, np.int64)
        self._node_ent[has_ent] = self._ents[self._ent_ptr[:-1][has_ent]]
        self._node_pen = np.full(N, NEG_INF)
        self._node_pen[has_ent] = self._ent_pen[self._node_ent[has_ent]]
        self._node_exits = lm is None and bool((self._ent_pen == self._node_pen[t.ent_node]).all())
        # What a search step looks up per active node, packed into one small integer table (int16
        # for a 41-symbol phone set: 0.5 MB for the 252k-node CMUdict tree, so it stays in cache,
        # where several int64/float64 tables of 2 MB each did not): bits [0, b) the node's phone,
        # then 2 bits for its exit penalty (an index into _pen_vals), 1 bit "has children with the
        # same phone", and the number of children with another phone.
        self._pen_vals, pen_code = np.unique(self._node_pen, return_inverse=True)  # at most -inf, 0, word_penalty
        dcnt = np.diff(self._dkid_ptr)
        b = max(1, (len(phone_set) - 1).bit_length())
        self._ph_mask, self._pen_shift, self._skid_bit, self._cnt_shift = (1 << b) - 1, b, 1 << (b + 2), b + 3
        bits = b + 3 + max(1, int(dcnt.max(initial=0)).bit_length())
        code_t = np.int16 if bits <= 15 else np.int32 if bits <= 31 else np.int64
        self._node_code = (
            t.phone
            | (pen_code.reshape(-1).astype(np.int64) << self._pen_shift)
            | np.where(self._has_skid, self._skid_bit, 0)
            | (dcnt << self._cnt_shift)
        ).astype(code_t)

    def _children(self, kids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CSR child list (:func:`_csr`) of the nodes ``kids`` (K,) grouped by parent."""
        ptr, order = _csr(self.tree.parent[kids], len(self.tree))
        return ptr, kids[order]

    # ---- scoring helpers ---------------------------------------------------------------------
    def _exits(
        self, st: _Active, ws: _Workspace, *, every: bool = False, pen: np.ndarray | None = None
    ) -> tuple[_Active, np.ndarray | None]:
        """Word exits from the states ``st`` (M,) (inactive ones included) through their word-end entries.

        Args:
            every: list every entry (final frame); otherwise, without an LM, only the entries a
                search step can pick (:attr:`_node_exits`).
            pen: that case's ``_node_pen`` of ``st.ids`` when already gathered.
        Returns:
            (X,) exits: entry ids (node ids in the case of :attr:`_node_exits`, one exit per state,
            the node's entry is ``_node_ent``), total scores (+ word penalty + weighted LM score) and
            the records of the paths (``-inf`` scores mark states without an entry); (X,) LM
            histories after the exits (``None`` without an LM).
        """
        if self._node_exits and not every:
            return _Active(st.ids, st.score + (self._node_pen.take(st.ids) if pen is None else pen), st.rec), None
        ex = _expand(self._ent_ptr, self._ents, _select(st, st.score > NEG_INF))
        tot = ex.score + self._ent_pen[ex.ids]
        if self.lm is None:
            return _Active(ex.ids, tot, ex.rec), None
        hist = ws.hist(ex.rec)
        sil = self._ent_sil[ex.ids]
        word = self._ent_lm[ex.ids]
        act = np.flatnonzero(~sil)
        if act.size:
            tot[act] += self.lm_weight * self.lm.score_ids(hist[act], word[act])
        return _Active(ex.ids, tot, ex.rec), np.where(sil, hist, word)

    def _final(self, groups: list[_Active], ws: _Workspace) -> _Active:
        """Final candidates of the last frame's states: every finite word exit (+ the LM's ``</s>``).

        Returns:
            (C,) candidates in group then entry order: entry ids, final scores, records.
        """
        out = []
        for st in groups:
            ex, new_hist = self._exits(st, ws, every=True)
            fin = ex.score
            if new_hist is not None and fin.size:
                fin = fin + self.lm_weight * self.lm.score_ids(new_hist, np.full(fin.size, self.lm.eos))
            order = np.argsort(ex.ids)
            order = order[np.isfinite(fin[order])]
            out.append(_Active(ex.ids[order], fin[order], ex.rec[order]))
        return _Active(*(np.concatenate(x) for x in zip(*out)))

    def _root_entry(
        self, ws: _Workspace, ex: _Active, new_hist: np.ndarray | None, allowed: np.ndarray | None = None
    ) -> int:
        """Record the best word exit of ``ex`` (from :meth:`_exits`) among ``allowed`` (:func:`_best_exit`).

        Returns:
            its position in ``ex`` (``-1``: none, nothing recorded); the record id is ``len(ws.rec_ent) - 1``.
        """
        ent = self._node_ent if self._node_exits else None  # ex.ids are node ids (:meth:`_exits`)
        k = _best_exit(ex, allowed, ent)
        if k >= 0:
            e = int(ex.ids[k]) if ent is None else int(ent[ex.ids[k]])
            ws.add_rec(e, int(ex.rec[k]), 0 if new_hist is None else int(new_hist[k]))
        return k

    def _prune(self, st: _States) -> tuple[_States, float]:
        """Drop states below ``best - beam`` (and beyond ``max_active``), jointly over all rows.

        Returns:
            the surviving states (``st.score`` is modified in place) and the best score before pruning.
        """
        sc = st.score
        best = float(sc.max()) if sc.size else NEG_INF
        if not math.isfinite(best):
            return _compact(st), best
        thr = best - self.beam
        if self.max_active is not None and sc.size > self.max_active:
            allv = sc.ravel()
            if int(np.isfinite(allv).sum()) > self.max_active:
                thr = max(thr, float(np.partition(allv, allv.size - self.max_active)[allv.size - self.max_active]))
        if thr > NEG_INF:  # (the finite ones only: faster than ``sc[sc < thr] = NEG_INF``)
            np.put(sc, np.flatnonzero((sc < thr) & (sc > NEG_INF)), NEG_INF)
        return _compact(st), best

    def _advance(
        self,
        ws: _Workspace,
        pre: _States,
        add: np.ndarray,
        em: np.ndarray,
        parents: list[tuple[np.ndarray, np.ndarray | None, _Active, np.ndarray | None]],
        roots: _Active,
    ) -> tuple[_States, float]:
        """Finish one frame: recombine the phone-state candidates, add the emission, prune.

        Args:
            pre: (C, M) the frame's paths that stay on their node, before emission (``pre.rec`` is
                updated in place).
            add: (C, M) emission log-probs of those states; em: (K,) the frame's log-probs.
            parents: ``(ptr, kids, states, None)``: the CSR children ``kids`` of ``states`` enter
                their phone state (row 0) with the parent's score; ``(first, None, states, counts)``:
                the same for the children ids ``first[n] .. first[n] + count - 1`` of each state
                (:func:`_expand_range`, ``counts`` (M,) int64).
            roots: candidates for the root children.
        Returns:
            the pruned states and the best score before pruning.

        A candidate that would score below ``(best stay score) - beam`` after emission would be
        pruned whatever else reaches its node, so it is dropped early (parents whose children all
        fall below that floor are not expanded), and so is one below ``(best candidate) - beam``
        after the expansion: the result is that of the full update.
        """
        post = pre.score + add
        floor = (float(post.max()) if post.size else NEG_INF) - self.beam
        top = float(em.max())
        srcs = []
        for ptr, kids, par, cnt in parents:
            ok = par.score + top >= floor if floor > NEG_INF else par.score > NEG_INF
            srcs.append(_expand(ptr, kids, _select(par, ok)) if cnt is None else _expand_range(ptr, par, cnt, ok))
        cands = _Active(*(np.concatenate(x) for x in zip(*srcs, roots)))  # distinct nodes
        c_add = em.take(self._node_code.take(cands.ids) & self._ph_mask)
        tot = cands.score + c_add
        if tot.size:  # the frame's best is that of the stays or of the candidates: prune at best - beam now
            floor = max(floor, float(tot.max()) - self.beam)
        if floor > NEG_INF:
            keep = (tot >= floor).nonzero()[0]
            cands, c_add = _take(cands, keep), c_add.take(keep)
        return self._prune(ws.enter(pre.ids, pre.score, post, pre.rec, cands, c_add))

    # ---- search ------------------------------------------------------------------------------
    def decode(
        self, log_probs: torch.Tensor | np.ndarray, length: int | None = None, nbest: int = 1
    ) -> list[Hypothesis]:
        """Decode one utterance.

        Args:
            log_probs: (T, K) per-frame log-probabilities, ``K == len(phone_set)``.
            length: valid frames (``None``: all ``T``).
            nbest: return up to this many hypotheses with distinct word strings, best first. They are
                the best paths ending in distinct final words (and distinct histories), not a full
                N-best list.

        Returns:
            hypotheses sorted by score (empty list when no path fits the frames).
        """
        arr = as_numpy_log_probs(log_probs, length)
        T, K = arr.shape
        if K != len(self.phone_set):
            raise ValueError(f"log_probs has K={K} classes but the phone set has {len(self.phone_set)}")
        if nbest < 1:
            raise ValueError(f"nbest must be >= 1, got {nbest}")
        if self.log_priors is not None:
            arr = arr - self.log_priors[None, :]
        if T == 0:
            return []
        ws = _Workspace(len(self.tree), 3 * T, self._bos)
        if self.blank is None:
            cands = self._search_frames(arr, ws)
        else:
            cands = self._search_ctc(arr, ws)
        return self._finish(arr, cands, nbest, ws)

    def _search_frames(self, arr: np.ndarray, ws: _Workspace) -> _Active:
        """Frame-level search (rows of :class:`_States`: duration levels); returns :meth:`_final` candidates."""
        d, T, ph, rc = self.min_duration, arr.shape[0], self.tree.phone, self._root_child
        score = np.full((d, rc.size), NEG_INF)
        score[0] = arr[0, ph[rc]]
        st = _compact(_States(rc, score, np.full((d, rc.size), -1, np.int64)))
        for t in range(1, T):
            # paths that may leave their phone: into the node's children, or out of a word into the root children
            last = _row(st, d - 1)
            ex, new_hist = self._exits(last, ws)
            k = self._root_entry(ws, ex, new_hist)
            roots = _const(rc, ex.score[k], len(ws.rec_ent) - 1) if k >= 0 else _EMPTY
            if d == 1:
                pre = _States(st.ids, st.score, st.rec.copy())
            else:  # one more frame in the phone: level k -> k+1, the last level stays; level 0 only from candidates
                top = _best_of(_row(st, d - 1), _row(st, d - 2))
                score = np.concatenate([np.full((1, st.ids.size), NEG_INF), st.score[: d - 2], top.score[None]])
                rec = np.concatenate([np.full((1, st.ids.size), -1, np.int64), st.rec[: d - 2], top.rec[None]])
                pre = _States(st.ids, score, rec)
            em = arr[t]
            st, _ = self._advance(
                ws, pre, em.take(ph.take(st.ids))[None, :], em, [(self._kid_ptr, self._kids, last, None)], roots
            )
        return self._final([_row(st, d - 1)], ws)

    def _ctc_roots(
        self, ws: _Workspace, broot: float, P: _Active, B: _Active, code: np.ndarray, nph: np.ndarray
    ) -> _Active:
        """Candidates for the root children at a frame, given the phone and blank rows P, B of the frame before.

        The root children are entered from the root blank (no word yet), or through a word exit
        from a blank state (any next phone) or from a phone state (the next phone must differ from
        the word's last one: children with that phone take the best exit ending in another phone).
        ``code``, ``nph``: the ``_node_code`` and phones of ``P.ids`` (= ``B.ids``).
        """
        rc = self._root_child
        m = rc.size
        rc_ph = self.tree.phone[rc]
        cands = [(np.full(m, broot), np.full(m, -1, np.int64))]
        pen = self._pen_vals.take((code >> self._pen_shift) & 3) if self._node_exits else None
        exB, nhB = self._exits(B, ws, pen=pen)
        kb = self._root_entry(ws, exB, nhB)
        if kb >= 0:
            cands.append((np.full(m, exB.score[kb]), np.full(m, len(ws.rec_ent) - 1, np.int64)))
        exP, nhP = self._exits(P, ws, pen=pen)
        k1 = self._root_entry(ws, exP, nhP)
        if k1 >= 0:
            rec1 = len(ws.rec_ent) - 1
            # the exits' last phones: of their nodes (node ids, or ids -1 for no entry: score -inf)
            ex_ph = nph if self._node_exits else self._ent_ph.take(exP.ids)
            ph1 = ex_ph[k1]
            v1 = np.where(rc_ph != ph1, exP.score[k1], NEG_INF)
            k2 = self._root_entry(ws, exP, nhP, ex_ph != ph1)
            if k2 >= 0:
                same = rc_ph == ph1
                cands.append((np.where(same, exP.score[k2], v1), np.where(same, len(ws.rec_ent) - 1, rec1)))
            else:
                cands.append((v1, np.full(m, rec1, np.int64)))
        return _const(rc, *_first_max(cands))

    def _search_ctc(self, arr: np.ndarray, ws: _Workspace) -> _Active:
        """CTC search (rows of :class:`_States`: phone state P, blank-after-phone state B).

        Returns :meth:`_final` candidates.
        """
        T, blank, ph, rc = arr.shape[0], self.blank, self.tree.phone, self._root_child
        score = np.stack([arr[0, ph[rc]].astype(np.float64), np.full(rc.size, NEG_INF)])
        st = _compact(_States(rc, score, np.full((2, rc.size), -1, np.int64)))
        broot = float(arr[0, blank])  # blank frames before the first word
        for t in range(1, T):
            code = self._node_code.take(st.ids)
            nph = code & self._ph_mask
            P, B = _row(st, 0), _row(st, 1)
            roots = self._ctc_roots(ws, broot, P, B, code, nph)
            # blank states: stay, or from the phone state of the same node
            nB = _best_of(B, P)
            # phone states: stay, from the parent's blank, from the parent's phone (if the phones
            # differ: best(parent's B, parent's P) is nB, B first as here), from the root
            parents = [
                (self._dkid_first, None, nB, (code >> self._cnt_shift).astype(np.int64)),
                (self._skid_ptr, self._skids, _select(B, (code & self._skid_bit) != 0), None),
            ]
            em = arr[t]
            add = np.stack([em.take(nph), np.full(st.ids.size, em[blank], np.float64)])
            pre = _States(st.ids, np.stack([P.score, nB.score]), np.stack([P.rec, nB.rec]))
            st, best = self._advance(ws, pre, add, em, parents, roots)
            broot += float(em[blank])
            if broot < best - self.beam:
                broot = NEG_INF
        return self._final([_row(st, 0), _row(st, 1)], ws)

    def _finish(self, arr: np.ndarray, cands: _Active, nbest: int, ws: _Workspace) -> list[Hypothesis]:
        seen: set[tuple[int, ...]] = set()
        out: list[Hypothesis] = []
        t_ = self.tree
        for i in np.argsort(-cands.score, kind="stable"):
            ent, prev = int(cands.ids[i]), int(cands.rec[i])
            ents = [ent]
            while prev != -1:
                ents.append(ws.rec_ent[prev])
                prev = ws.rec_prev[prev]
            ents.reverse()
            key = tuple(ents)
            if key in seen:
                continue
            seen.add(key)
            words = [t_.words[t_.ent_word[e]] for e in ents if t_.ent_word[e] >= 0]
            phones = [p for e in ents for p in t_.node_phones(int(t_.ent_node[e]))]
            if tuple(words) in {tuple(h.words) for h in out}:
                continue  # a better path already spells these words
            out.append(self._rescore(arr, words, phones))
            if len(out) >= nbest:
                break
        return sorted(out, key=lambda h: -h.score)

    def _rescore(self, arr: np.ndarray, words: list[str], phones: list[int]) -> Hypothesis:
        """Exact objective of a phone string: Viterbi re-alignment + penalties + LM."""
        if self.blank is not None:
            al = align_ctc_scored(arr, phones, self.blank)
        else:
            al = align_frames_scored(arr, phones, self.min_duration)
        lm = self.lm.sentence_log_prob(words) if self.lm is not None else 0.0
        score = al.score + self.word_penalty * len(words) + self.lm_weight * lm
        return Hypothesis(words, phones, al.spans, score, al.score, lm)
