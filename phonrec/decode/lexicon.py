"""Dictionary-constrained decoding: only phone strings that spell a sequence of lexicon words.

The search is a frame-synchronous Viterbi (token passing) over the states of a pronunciation
prefix tree, vectorised with numpy over all tree states at every frame.

Objective (what :class:`LexiconDecoder` maximises and what :attr:`Hypothesis.score` reports)::

    score = sum_t log_probs'[t, symbol of the path at t]      (acoustic: best path, not a sum over paths)
          + word_penalty * (number of words)                   (silence is not a word)
          + lm_weight * sum_i log P_LM(w_i | w_{i-1})          (w_0 = <s>, and a final log P(</s> | w_n))

``log_probs'`` is ``log_probs`` for CTC output and ``log_probs - log(priors)`` for frame-level
output when ``priors`` are given. A path is:

* CTC (``blank`` set): the usual CTC path — every phone of the word string is emitted on one or
  more consecutive frames, blanks may occur anywhere between phones, and two equal phones in a
  row (inside a word or across a word boundary) need at least one blank between them.
* frame-level (``blank=None``): every phone occupies ``>= min_duration`` consecutive frames; all
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from phonrec.decode.greedy import Span, as_numpy_log_probs
from phonrec.lexicon import Lexicon, normalise_word
from phonrec.phones import PhoneSet

NEG_INF = -np.inf
BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_LN10 = math.log(10.0)


# --------------------------------------------------------------------------------------------
# word language model
# --------------------------------------------------------------------------------------------
@dataclass
class WordLM:
    """A backoff word bigram (or unigram) LM with natural-log probabilities.

    ``log P(w | h) = bigram[h, w]`` when the pair was seen, else ``backoff[h] + unigram[w]``.

    Attributes:
        vocab: words (upper-case) including ``<s>``, ``</s>``, ``<unk>``; id = position.
        unigram: (V,) log P(w) (``<s>`` gets -inf: it is never predicted).
        backoff: (V,) log backoff weight of each history.
        bigram_keys: (M,) sorted ``h * V + w`` of the stored bigrams; ``bigram_vals``: (M,) log P(w|h).
    """

    vocab: list[str]
    unigram: np.ndarray
    backoff: np.ndarray
    bigram_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bigram_vals: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))

    def __post_init__(self) -> None:
        self._ids = {w: i for i, w in enumerate(self.vocab)}
        for s in (BOS, EOS, UNK):
            if s not in self._ids:
                raise ValueError(f"WordLM vocabulary must contain {s}")

    @property
    def bos(self) -> int:
        return self._ids[BOS]

    @property
    def eos(self) -> int:
        return self._ids[EOS]

    def index(self, word: str) -> int:
        """LM id of ``word`` (``<unk>`` for unknown words)."""
        w = word if word in (BOS, EOS, UNK) else normalise_word(word)
        return self._ids.get(w, self._ids[UNK])

    def score_ids(self, hist: np.ndarray, word: np.ndarray) -> np.ndarray:
        """Vectorised ``log P(word | hist)`` for LM ids ``hist`` (N,) and ``word`` (N,)."""
        hist = np.asarray(hist, np.int64)
        word = np.asarray(word, np.int64)
        out = self.backoff[hist] + self.unigram[word]
        if self.bigram_keys.size:
            key = hist * len(self.vocab) + word
            pos = np.searchsorted(self.bigram_keys, key)
            pos = np.minimum(pos, self.bigram_keys.size - 1)
            hit = self.bigram_keys[pos] == key
            out = np.where(hit, self.bigram_vals[pos], out)
        return out

    def sentence_log_prob(self, words: Sequence[str]) -> float:
        """``sum_i log P(w_i | w_{i-1}) + log P(</s> | w_n)`` with ``w_0 = <s>``."""
        ids = [self.bos] + [self.index(w) for w in words] + [self.eos]
        return float(self.score_ids(np.array(ids[:-1]), np.array(ids[1:])).sum())

    @classmethod
    def from_text(cls, sentences: Iterable[str | Sequence[str]], *, order: int = 2, discount: float = 0.5) -> "WordLM":
        """Estimate from training sentences (strings are split on white space).

        Unigrams: add-one over the vocabulary plus ``</s>`` and ``<unk>``. Bigrams (``order=2``):
        absolute discounting interpolated with the unigram, stored in backoff (ARPA) form.
        """
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order}")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must lie in (0, 1), got {discount}")
        sents = [[normalise_word(w) for w in (s.split() if isinstance(s, str) else s)] for s in sentences]
        uni = Counter(w for s in sents for w in s + [EOS])
        vocab = [BOS, EOS, UNK] + sorted(w for w in uni if w not in (BOS, EOS, UNK))
        ids = {w: i for i, w in enumerate(vocab)}
        V = len(vocab)
        counts = np.array([uni.get(w, 0) for w in vocab], np.float64)
        counts[ids[BOS]] = 0.0
        p_uni = (counts + 1.0) / (counts.sum() + (V - 1))
        p_uni[ids[BOS]] = 0.0
        with np.errstate(divide="ignore"):
            unigram = np.log(p_uni)
        backoff = np.zeros(V)
        keys = np.zeros(0, np.int64)
        vals = np.zeros(0)
        if order == 2:
            big = Counter((ids[a], ids[b]) for s in sents for a, b in zip([BOS] + s, s + [EOS]))
            hist_tot: Counter[int] = Counter()
            hist_types: Counter[int] = Counter()
            for (h, _), c in big.items():
                hist_tot[h] += c
                hist_types[h] += 1
            k_list, v_list = [], []
            seen_p: Counter[int] = Counter()
            seen_uni: Counter[int] = Counter()
            for (h, w), c in big.items():
                lam = discount * hist_types[h] / hist_tot[h]
                p = (c - discount) / hist_tot[h] + lam * p_uni[w]
                k_list.append(h * V + w)
                v_list.append(math.log(p))
                seen_p[h] += p
                seen_uni[h] += p_uni[w]
            for h in hist_tot:
                backoff[h] = math.log(max(1.0 - seen_p[h], 1e-12) / max(1.0 - seen_uni[h], 1e-12))
            order_ = np.argsort(np.array(k_list, np.int64))
            keys = np.array(k_list, np.int64)[order_]
            vals = np.array(v_list)[order_]
        return cls(vocab, unigram, backoff, keys, vals)

    @classmethod
    def from_arpa(cls, path: str | Path) -> "WordLM":
        """Read an ARPA file with 1-grams and (optionally) 2-grams (log10 values are converted)."""
        path = Path(path)
        section = 0
        uni: dict[str, tuple[float, float]] = {}
        big: dict[tuple[str, str], float] = {}
        with open(path, encoding="utf-8") as f:
            for line_no, raw in enumerate(f, start=1):
                line = raw.strip()
                if not line or line.startswith("ngram ") or line == "\\data\\":
                    continue
                if line == "\\end\\":
                    break
                if line.startswith("\\") and line.endswith("-grams:"):
                    section = int(line[1:].split("-")[0])
                    if section > 2:
                        raise ValueError(f"{path}:{line_no}: only 1-gram and 2-gram ARPA models are supported, found {section}-grams")
                    continue
                fields = line.split()
                try:
                    if section == 1:
                        w = fields[1] if fields[1] in (BOS, EOS, UNK) else normalise_word(fields[1])
                        uni[w] = (float(fields[0]) * _LN10, float(fields[2]) * _LN10 if len(fields) > 2 else 0.0)
                    elif section == 2:
                        a, b = (x if x in (BOS, EOS, UNK) else normalise_word(x) for x in fields[1:3])
                        big[(a, b)] = float(fields[0]) * _LN10
                    else:
                        raise ValueError("entry outside an n-gram section")
                except (IndexError, ValueError) as e:
                    raise ValueError(f"{path}:{line_no}: malformed ARPA line {line!r} ({e})") from None
        for s in (BOS, EOS):
            if s not in uni:
                raise ValueError(f"{path}: ARPA model has no {s} unigram")
        if UNK not in uni:
            uni[UNK] = (min(v[0] for v in uni.values()), 0.0)
        vocab = [BOS, EOS, UNK] + sorted(w for w in uni if w not in (BOS, EOS, UNK))
        ids = {w: i for i, w in enumerate(vocab)}
        unigram = np.array([uni[w][0] for w in vocab])
        unigram[ids[BOS]] = NEG_INF  # <s> is never predicted (ARPA writes -99 for it)
        backoff = np.array([uni[w][1] for w in vocab])
        pairs = sorted((ids[a] * len(vocab) + ids[b], v) for (a, b), v in big.items() if a in ids and b in ids)
        keys = np.array([k for k, _ in pairs], np.int64)
        vals = np.array([v for _, v in pairs], np.float64)
        return cls(vocab, unigram, backoff, keys, vals)

    def to_arpa(self, path: str | Path) -> None:
        """Write the model as an ARPA file (log10)."""
        V = len(self.vocab)
        lines = ["\\data\\", f"ngram 1={V}"]
        if self.bigram_keys.size:
            lines.append(f"ngram 2={self.bigram_keys.size}")
        lines += ["", "\\1-grams:"]
        for i, w in enumerate(self.vocab):
            u = -99.0 if not np.isfinite(self.unigram[i]) else self.unigram[i] / _LN10
            lines.append(f"{u:.7f}\t{w}\t{self.backoff[i] / _LN10:.7f}")
        if self.bigram_keys.size:
            lines += ["", "\\2-grams:"]
            for k, v in zip(self.bigram_keys.tolist(), self.bigram_vals.tolist()):
                lines.append(f"{v / _LN10:.7f}\t{self.vocab[k // V]} {self.vocab[k % V]}")
        lines += ["", "\\end\\"]
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# prefix tree
# --------------------------------------------------------------------------------------------
@dataclass
class PrefixTree:
    """Pronunciation prefix tree; node ids ``0..N-1`` exclude the root.

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
                    raise ValueError(f"lexicon word {w!r}: phone {e.args[0]!r} is not in the {len(phone_set)}-symbol phone set") from None
                if phone_set.blank_id is not None and phone_set.blank_id in pid:
                    raise ValueError(f"lexicon word {w!r} spells the blank symbol")
                ent_node.append(insert(pid))
                ent_word.append(wi)
        if silence_id is not None:
            ent_node.append(insert([silence_id]))
            ent_word.append(-1)
        return cls(np.array(parent, np.int64), np.array(phone, np.int64), np.array(ent_node, np.int64), np.array(ent_word, np.int64), words)

    def __len__(self) -> int:
        return int(self.parent.size)

    def node_phones(self, node: int) -> list[int]:
        out = []
        while node != -1:
            out.append(int(self.phone[node]))
            node = int(self.parent[node])
        return out[::-1]


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


def _best_of(cands: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elementwise best of candidate (score, hist, rec) triples of equal shape (first wins ties)."""
    v, h, r = cands[0]
    for v2, h2, r2 in cands[1:]:
        better = v2 > v
        v = np.where(better, v2, v)
        h = np.where(better, h2, h)
        r = np.where(better, r2, r)
    return v, h, r


class LexiconDecoder:
    """Lexicon-constrained Viterbi search over per-frame phone log-probabilities.

    Args:
        lexicon: words and their pronunciations (phone symbols of ``phone_set``).
        phone_set: the model's phone inventory (``<blank>`` at id 0 for CTC models).
        beam: log-probability beam: states below ``best - beam`` at a frame are dropped
            (``math.inf``: exact search for no LM / unigram LM).
        max_active: keep at most this many states per frame (``None``: no limit).
        word_penalty: added once per word (negative values discourage insertions).
        silence: symbol of the optional inter-word silence (``None`` or absent from the phone set:
            no silence).
        lm: optional :class:`WordLM`; ``lm_weight`` scales its log-probabilities.
        blank: blank id for CTC output, ``None`` for frame-level output.
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
        blank: int | None = None,
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
        if blank is not None:
            if not 0 <= blank < len(phone_set):
                raise ValueError(f"blank id {blank} outside the {len(phone_set)}-symbol phone set")
            if min_duration != 1:
                raise ValueError("min_duration applies to frame-level output only (blank=None)")
            if priors is not None:
                raise ValueError("priors apply to frame-level output only (blank=None)")
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
        self._root_child = np.flatnonzero(t.parent == -1)
        self._inner = np.flatnonzero(t.parent != -1)
        self._inner_parent = t.parent[self._inner]
        self._inner_diff = t.phone[self._inner] != t.phone[self._inner_parent]
        self._ent_sil = t.ent_word == -1
        self._ent_pen = np.where(self._ent_sil, 0.0, self.word_penalty)
        if lm is not None:
            self._ent_lm = np.array([lm.index(t.words[w]) if w >= 0 else 0 for w in t.ent_word], np.int64)
            self._bos = lm.bos
        else:
            self._ent_lm = np.zeros(t.ent_word.size, np.int64)
            self._bos = 0

    # ---- scoring helpers ---------------------------------------------------------------------
    def _exit_scores(self, v: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores of leaving the tree through every word-end entry, and the LM history after it.

        Args:
            v, h: (N,) scores and histories of the states a word may end in.
        Returns:
            (E,) total scores (``-inf`` where the state is inactive), (E,) new histories.
        """
        t = self.tree
        s = v[t.ent_node]
        hist = h[t.ent_node]
        new_hist = np.where(self._ent_sil, hist, self._ent_lm)
        tot = s + self._ent_pen
        if self.lm is not None:
            act = np.flatnonzero(np.isfinite(s) & ~self._ent_sil)
            if act.size:
                tot[act] += self.lm_weight * self.lm.score_ids(hist[act], self._ent_lm[act])
        return tot, new_hist

    def _final_scores(self, tot: np.ndarray, new_hist: np.ndarray) -> np.ndarray:
        if self.lm is None:
            return tot
        act = np.flatnonzero(np.isfinite(tot))
        out = tot.copy()
        if act.size:
            out[act] += self.lm_weight * self.lm.score_ids(new_hist[act], np.full(act.size, self.lm.eos))
        return out

    def _prune(self, arrays: list[np.ndarray]) -> None:
        best = max(float(a.max()) for a in arrays)
        if not np.isfinite(best):
            return
        thr = best - self.beam
        if self.max_active is not None:
            allv = np.concatenate(arrays)
            n_fin = int(np.isfinite(allv).sum())
            if n_fin > self.max_active:
                thr = max(thr, float(np.partition(allv, allv.size - self.max_active)[allv.size - self.max_active]))
        for a in arrays:
            a[a < thr] = NEG_INF

    # ---- search ------------------------------------------------------------------------------
    def decode(self, log_probs: torch.Tensor | np.ndarray, length: int | None = None, nbest: int = 1) -> list[Hypothesis]:
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
        if self.blank is None:
            cands = self._search_frames(arr)
        else:
            cands = self._search_ctc(arr)
        return self._finish(arr, cands, nbest)

    def _search_frames(self, arr: np.ndarray) -> list[tuple[float, int, int]]:
        """Frame-level search; returns final candidates ``(score, entry, prev_record)``."""
        t_ = self.tree
        N, d, T = len(t_), self.min_duration, arr.shape[0]
        ph = t_.phone
        rc, inner, ipar = self._root_child, self._inner, self._inner_parent
        V = np.full((d, N), NEG_INF)
        H = np.zeros((d, N), np.int64)
        R = np.full((d, N), -1, np.int64)
        V[0, rc] = arr[0, ph[rc]]
        H[0, rc] = self._bos
        self._rec_ent: list[int] = []
        self._rec_prev: list[int] = []
        for t in range(1, T):
            last_v, last_h, last_r = V[d - 1], H[d - 1], R[d - 1]
            tot, nh = self._exit_scores(last_v, last_h)
            enter_v = np.full(N, NEG_INF)
            enter_h = np.zeros(N, np.int64)
            enter_r = np.full(N, -1, np.int64)
            enter_v[inner] = last_v[ipar]
            enter_h[inner] = last_h[ipar]
            enter_r[inner] = last_r[ipar]
            j = int(np.argmax(tot))
            if np.isfinite(tot[j]):
                rec = len(self._rec_ent)
                self._rec_ent.append(j)
                self._rec_prev.append(int(last_r[t_.ent_node[j]]))
                enter_v[rc] = tot[j]
                enter_h[rc] = nh[j]
                enter_r[rc] = rec
            nV, nH, nR = np.empty_like(V), np.empty_like(H), np.empty_like(R)
            if d == 1:
                nV[0], nH[0], nR[0] = _best_of([(V[0], H[0], R[0]), (enter_v, enter_h, enter_r)])
            else:
                nV[0], nH[0], nR[0] = enter_v, enter_h, enter_r
                nV[1:d - 1], nH[1:d - 1], nR[1:d - 1] = V[0:d - 2], H[0:d - 2], R[0:d - 2]
                nV[d - 1], nH[d - 1], nR[d - 1] = _best_of([(V[d - 1], H[d - 1], R[d - 1]), (V[d - 2], H[d - 2], R[d - 2])])
            nV += arr[t, ph][None, :]
            self._prune([nV.reshape(-1)])
            V, H, R = nV, nH, nR
        tot, nh = self._exit_scores(V[d - 1], H[d - 1])
        fin = self._final_scores(tot, nh)
        return [(float(fin[j]), j, int(R[d - 1][t_.ent_node[j]])) for j in np.flatnonzero(np.isfinite(fin))]

    def _search_ctc(self, arr: np.ndarray) -> list[tuple[float, int, int]]:
        """CTC search over phone states P and blank-after-phone states B; ``(score, entry, prev_record)``."""
        t_ = self.tree
        N, T, blank = len(t_), arr.shape[0], self.blank
        ph = t_.phone
        rc, inner, ipar, idiff = self._root_child, self._inner, self._inner_parent, self._inner_diff
        rc_ph = ph[rc]
        ent_ph = ph[t_.ent_node]
        P = np.full(N, NEG_INF)
        B = np.full(N, NEG_INF)
        HP = np.full(N, self._bos, np.int64)
        HB = HP.copy()
        RP = np.full(N, -1, np.int64)
        RB = RP.copy()
        P[rc] = arr[0, rc_ph]
        broot = float(arr[0, blank])
        self._rec_ent = []
        self._rec_prev = []
        ninf = np.full(N, NEG_INF)
        for t in range(1, T):
            # word exits at frame t-1: from a blank state (any next phone) or a phone state (next phone must differ)
            totP, nhP = self._exit_scores(P, HP)
            totB, nhB = self._exit_scores(B, HB)
            m = rc.size
            cands = [(np.full(m, broot), np.full(m, self._bos, np.int64), np.full(m, -1, np.int64))]
            jb = int(np.argmax(totB))
            if np.isfinite(totB[jb]):
                rec = self._add_rec(jb, int(RB[t_.ent_node[jb]]))
                cands.append((np.full(m, totB[jb]), np.full(m, nhB[jb]), np.full(m, rec)))
            j1 = int(np.argmax(totP))
            if np.isfinite(totP[j1]):
                rec1 = self._add_rec(j1, int(RP[t_.ent_node[j1]]))
                other = np.where(ent_ph != ent_ph[j1], totP, NEG_INF)
                j2 = int(np.argmax(other))
                v1 = np.where(rc_ph != ent_ph[j1], totP[j1], NEG_INF)
                if np.isfinite(other[j2]):
                    rec2 = self._add_rec(j2, int(RP[t_.ent_node[j2]]))
                    same = rc_ph == ent_ph[j1]
                    cands.append((np.where(same, other[j2], v1), np.where(same, nhP[j2], nhP[j1]), np.where(same, rec2, rec1)))
                else:
                    cands.append((v1, np.full(m, nhP[j1]), np.full(m, rec1)))
            ev, eh, er = _best_of(cands)
            # phone states: stay, from parent's blank, from parent's phone (if different), from the root
            cP = ninf.copy()
            cH = np.zeros(N, np.int64)
            cR = np.full(N, -1, np.int64)
            pv, ph_h, pr = _best_of([
                (B[ipar], HB[ipar], RB[ipar]),
                (np.where(idiff, P[ipar], NEG_INF), HP[ipar], RP[ipar]),
            ])
            cP[inner], cH[inner], cR[inner] = pv, ph_h, pr
            cP[rc], cH[rc], cR[rc] = ev, eh, er
            nP, nHP, nRP = _best_of([(P, HP, RP), (cP, cH, cR)])
            nB, nHB, nRB = _best_of([(B, HB, RB), (P, HP, RP)])
            nP = nP + arr[t, ph]
            nB = nB + arr[t, blank]
            broot += float(arr[t, blank])
            self._prune([nP, nB])
            if broot < max(float(nP.max()), float(nB.max())) - self.beam:
                broot = NEG_INF
            P, HP, RP, B, HB, RB = nP, nHP, nRP, nB, nHB, nRB
        out: list[tuple[float, int, int]] = []
        for S, H, R in ((P, HP, RP), (B, HB, RB)):
            tot, nh = self._exit_scores(S, H)
            fin = self._final_scores(tot, nh)
            out += [(float(fin[j]), int(j), int(R[t_.ent_node[j]])) for j in np.flatnonzero(np.isfinite(fin))]
        return out

    def _add_rec(self, ent: int, prev: int) -> int:
        self._rec_ent.append(ent)
        self._rec_prev.append(prev)
        return len(self._rec_ent) - 1

    def _finish(self, arr: np.ndarray, cands: list[tuple[float, int, int]], nbest: int) -> list[Hypothesis]:
        cands.sort(key=lambda c: -c[0])
        seen: set[tuple[int, ...]] = set()
        out: list[Hypothesis] = []
        t_ = self.tree
        for _, ent, prev in cands:
            ents = [ent]
            while prev != -1:
                ents.append(self._rec_ent[prev])
                prev = self._rec_prev[prev]
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
        from phonrec.align import align_ctc_scored, align_frames_scored  # here: phonrec.align imports this package

        if self.blank is not None:
            al = align_ctc_scored(arr, phones, self.blank)
        else:
            al = align_frames_scored(arr, phones, self.min_duration)
        lm = self.lm.sentence_log_prob(words) if self.lm is not None else 0.0
        score = al.score + self.word_penalty * len(words) + self.lm_weight * lm
        return Hypothesis(words, phones, al.spans, score, al.score, lm)
