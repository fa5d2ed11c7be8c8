"""Language models for the decoders: a phone bigram and a backoff word LM, side by side.

* :class:`PhoneBigram` — ``log P(cur | prev)`` over phone ids, with sentence boundaries; used by
  :func:`phonrec.decode.beam.phone_beam_search`. Estimated from phone strings (add-k or
  Witten-Bell), stored as JSON.
* :class:`WordLM` — a backoff word bigram (or unigram); used by
  :class:`phonrec.decode.lexicon.LexiconDecoder`. Estimated from text (absolute discounting) or
  read from / written to an ARPA file.

Both work in natural-log probabilities.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from phonrec.lexicon import normalise_word
from phonrec.phones import PhoneSet

NEG_INF = -np.inf
BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_LN10 = math.log(10.0)


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
    def from_phones(cls, sequences: Iterable[Sequence[str]], phone_set: PhoneSet) -> "PhoneBigram":
        """Fit on phone-symbol sequences (e.g. a data directory's ``phones``) over ``phone_set``'s ids;
        silence and symbols outside ``phone_set`` are dropped."""
        ps = phone_set
        ids = [[ps.index(p) for p in seq if p in ps and p != ps.silence] for seq in sequences]
        return cls.fit(ids, num_phones=len(ps))

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
                        raise ValueError(
                            f"{path}:{line_no}: only 1-gram and 2-gram ARPA models are supported, found {section}-grams"
                        )
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
