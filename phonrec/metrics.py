"""The one scorer: edit distance with alignment, error counts (PER/WER), confusions, frame and
boundary accuracy, and the sclite-like report. The decode command, the recipes' tables and the
plots score through this module.

Error rates are corpus-level: ``ErrorCounts`` add up substitutions, deletions, insertions and
reference lengths over utterances and the rate is taken once at the end (never a mean of
per-utterance rates). Per-speaker rates (``SpeakerSummary``) likewise sum each speaker's
utterances first; their spread (mean, std, worst, best) is over speakers.

Alignment tie-break. ``edit_distance`` and ``align_sequences`` minimise the Levenshtein cost
``S + D + I`` (unit costs). Among the minimum-cost alignments they pick one with the fewest
deletions + insertions, i.e. the most substitutions; since ``D - I = len(ref) - len(hyp)`` this
fixes ``S``, ``D`` and ``I`` uniquely. (Internally: substitution weight ``K``, deletion/insertion
weight ``K + 1`` with ``K = len(ref) + len(hyp) + 1``, so the weighted total orders alignments by
``(S + D + I, D + I)``.) Among alignments with those counts the backtrace, which runs from the
ends of both sequences, prefers at each step a match/substitution, then a deletion, then an
insertion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Hashable, Iterable, Literal, Mapping, Sequence

import numpy as np

from phonrec.phones import ScoringScheme, fold_for_scoring

Pair = tuple[Hashable | None, Hashable | None]


@dataclass(frozen=True)
class ErrorCounts:
    """Edit-distance counts of one utterance or, summed, of a corpus.

    Attributes:
        substitutions, deletions, insertions: error counts.
        reference_length: number of reference symbols (``correct + substitutions + deletions``).
        utterances: how many utterances were summed (``edit_distance`` gives 1).
        utterances_with_errors: how many of them had any error (for the sentence error rate).
    """

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0
    utterances: int = 0
    utterances_with_errors: int = 0

    def __post_init__(self) -> None:
        for name in (
            "substitutions",
            "deletions",
            "insertions",
            "reference_length",
            "utterances",
            "utterances_with_errors",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"ErrorCounts.{name} must be a non-negative int, got {v!r}")
        if self.substitutions + self.deletions > self.reference_length:
            raise ValueError(
                f"ErrorCounts: substitutions + deletions ({self.substitutions} + {self.deletions}) "
                f"exceed reference_length {self.reference_length}"
            )
        if self.utterances_with_errors > self.utterances:
            raise ValueError("ErrorCounts: utterances_with_errors exceeds utterances")

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def correct(self) -> int:
        return self.reference_length - self.substitutions - self.deletions

    @property
    def rate(self) -> float:
        """``errors / reference_length``; 0.0 for an empty reference with no errors, ``inf`` with insertions."""
        if self.reference_length == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.reference_length

    @property
    def sentence_error_rate(self) -> float:
        """Share of utterances with at least one error (0.0 when no utterance was counted)."""
        return self.utterances_with_errors / self.utterances if self.utterances else 0.0

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        if not isinstance(other, ErrorCounts):
            return NotImplemented
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.reference_length + other.reference_length,
            self.utterances + other.utterances,
            self.utterances_with_errors + other.utterances_with_errors,
        )

    def __radd__(self, other: Any) -> "ErrorCounts":
        # lets the built-in sum() start from 0: sum(counts_list)
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    @classmethod
    def sum(cls, counts: Iterable["ErrorCounts"]) -> "ErrorCounts":
        """Corpus total (``ErrorCounts()`` for an empty iterable)."""
        total = cls()
        for c in counts:
            total = total + c
        return total


# --- edit distance ---------------------------------------------------------------------------


def _weights(n: int, m: int) -> tuple[int, int]:
    k = n + m + 1
    return k, k + 1  # substitution, deletion/insertion


def _decode_total(total: int, n: int, m: int) -> ErrorCounts:
    sub_w, _ = _weights(n, m)
    edits, indels = divmod(total, sub_w)
    dels, ins = (indels + n - m) // 2, (indels - n + m) // 2
    return ErrorCounts(edits - indels, dels, ins, n, 1, int(edits > 0))


def _dp_rows(ref: Sequence[Hashable], hyp: Sequence[Hashable], keep: bool) -> list[Any]:
    """Weighted Levenshtein DP; returns all rows (``keep``) or just the last one.

    Row ``i`` holds ``D[i, j]``, the cost of aligning ``ref[:i]`` with ``hyp[:j]``, ``j = 0..m``.
    Small problems run as plain Python, larger ones as a numpy row recurrence in which the
    insertion chain is a running minimum: ``D[i, j] = min_k<=j (T[k] + (j - k) w)``.
    """
    n, m = len(ref), len(hyp)
    sub_w, ind_w = _weights(n, m)
    if n * m < 2500:
        prev = list(range(0, (m + 1) * ind_w, ind_w))
        rows = [prev]
        for a in ref:
            c = prev[0] + ind_w
            cur = [c]
            for j in range(m):
                d = prev[j] + (0 if a == hyp[j] else sub_w)
                u = prev[j + 1] + ind_w
                if u < d:
                    d = u
                c += ind_w
                if c < d:
                    d = c
                cur.append(d)
                c = d
            prev = cur
            if keep:
                rows.append(cur)
        return rows if keep else [prev]
    ids: dict[Hashable, int] = {}
    r = np.array([ids.setdefault(s, len(ids)) for s in ref], dtype=np.int64)
    h = np.array([ids.setdefault(s, len(ids)) for s in hyp], dtype=np.int64)
    ramp = np.arange(m + 1, dtype=np.int64) * ind_w
    prev = ramp.copy()
    rows_np = [prev]
    tmp = np.empty(m + 1, dtype=np.int64)
    for i in range(n):
        tmp[0] = prev[0] + ind_w
        np.minimum(prev[:-1] + (r[i] != h) * sub_w, prev[1:] + ind_w, out=tmp[1:])
        prev = np.minimum.accumulate(tmp - ramp) + ramp
        if keep:
            rows_np.append(prev)
    return rows_np if keep else [prev]


def _check_seq(x: Any, name: str) -> Sequence[Hashable]:
    if isinstance(x, str):
        raise ValueError(f"{name} must be a sequence of symbols, got a str {x[:40]!r} (split it first)")
    if hasattr(x, "tolist") and not isinstance(x, (list, tuple)):
        x = x.tolist()  # numpy / torch 1-D arrays of ids
    if not isinstance(x, Sequence):
        raise ValueError(f"{name} must be a sequence of symbols, got {type(x).__name__}")
    return x


def edit_distance(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> ErrorCounts:
    """Levenshtein counts of turning ``ref`` into ``hyp`` (tie-break: see the module docstring).

    Args:
        ref: (N,) reference symbols (strings, ids, any hashables).
        hyp: (M,) hypothesis symbols.

    Example:
        >>> edit_distance("k ae t".split(), "k ah t s".split())
        ErrorCounts(substitutions=1, deletions=0, insertions=1, reference_length=3, utterances=1, ...)
    """
    ref, hyp = _check_seq(ref, "ref"), _check_seq(hyp, "hyp")
    n, m = len(ref), len(hyp)
    if n == 0 or m == 0 or ref == hyp:
        if ref == hyp:
            return ErrorCounts(0, 0, 0, n, 1, 0)
        return ErrorCounts(0, n, m, n, 1, 1)
    return _decode_total(int(_dp_rows(ref, hyp, keep=False)[-1][m]), n, m)


def align_sequences(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> list[Pair]:
    """The minimum-cost alignment as pairs: ``(r, h)`` match/substitution, ``(r, None)``
    deletion, ``(None, h)`` insertion, in sequence order (tie-break: module docstring).

    Its counts agree with ``edit_distance(ref, hyp)``.

    Example:
        >>> align_sequences(["a", "b", "c", "d"], ["a", "c", "d", "e"])
        [('a', 'a'), ('b', None), ('c', 'c'), ('d', 'd'), (None, 'e')]
        >>> align_sequences(["a", "b", "c"], ["a", "c", "d"])  # 2 substitutions beat 1 del + 1 ins
        [('a', 'a'), ('b', 'c'), ('c', 'd')]
    """
    ref, hyp = _check_seq(ref, "ref"), _check_seq(hyp, "hyp")
    n, m = len(ref), len(hyp)
    sub_w, ind_w = _weights(n, m)
    rows = _dp_rows(ref, hyp, keep=True)
    out: list[Pair] = []
    i, j = n, m
    while i > 0 or j > 0:
        here = rows[i][j]
        if i > 0 and j > 0 and here == rows[i - 1][j - 1] + (0 if ref[i - 1] == hyp[j - 1] else sub_w):
            out.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and here == rows[i - 1][j] + ind_w:
            out.append((ref[i - 1], None))
            i -= 1
        else:
            out.append((None, hyp[j - 1]))
            j -= 1
    out.reverse()
    return out


def counts_from_alignment(pairs: Iterable[Pair]) -> ErrorCounts:
    """S/D/I counts of an alignment (``align_sequences`` output)."""
    s = d = ins = n = 0
    for r, h in pairs:
        if r is None and h is None:
            raise ValueError("alignment pair (None, None) is not a valid edit")
        if r is None:
            ins += 1
        else:
            n += 1
            if h is None:
                d += 1
            elif h != r:
                s += 1
    return ErrorCounts(s, d, ins, n, 1, int(s + d + ins > 0))


# --- corpus-level rates ----------------------------------------------------------------------


def _paired(refs: Any, hyps: Any) -> list[tuple[str, Any, Any]]:
    """``(utterance label, ref, hyp)`` from two equal-length sequences or two mappings keyed by utterance id."""
    if isinstance(refs, Mapping) or isinstance(hyps, Mapping):
        if not (isinstance(refs, Mapping) and isinstance(hyps, Mapping)):
            raise ValueError("refs and hyps must both be mappings (utterance id -> symbols) or both sequences")
        missing = [u for u in refs if u not in hyps]
        extra = [u for u in hyps if u not in refs]
        if missing or extra:
            raise ValueError(f"utterance ids differ: no hypothesis for {missing[:5]}, no reference for {extra[:5]}")
        return [(str(u), refs[u], hyps[u]) for u in refs]
    refs, hyps = list(refs), list(hyps)
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} references but {len(hyps)} hypotheses")
    return [(f"utterance {k}", r, h) for k, (r, h) in enumerate(zip(refs, hyps))]


def error_rate(
    refs: Sequence[Sequence[Hashable]] | Mapping[str, Sequence[Hashable]],
    hyps: Sequence[Sequence[Hashable]] | Mapping[str, Sequence[Hashable]],
) -> ErrorCounts:
    """Corpus-level counts: errors and reference lengths summed over utterances.

    Args:
        refs, hyps: parallel lists of symbol sequences, or mappings utterance id -> sequence
            with the same keys.
    """
    total = ErrorCounts()
    for label, r, h in _paired(refs, hyps):
        try:
            total = total + edit_distance(r, h)
        except ValueError as e:
            raise ValueError(f"{label}: {e}") from None
    return total


def per(
    refs: Sequence[Sequence[str]] | Mapping[str, Sequence[str]],
    hyps: Sequence[Sequence[str]] | Mapping[str, Sequence[str]],
    fold: bool = True,
    *,
    scheme: ScoringScheme = "timit39",
) -> ErrorCounts:
    """Phone error counts over a corpus (``.rate`` is the PER).

    With ``fold=True`` both sides go through ``phones.fold_for_scoring(..., scheme)`` (39-class
    folding, silence and ``q`` removed). With ``fold=False`` symbols are compared as given,
    except that ``sil`` is still dropped (silence is never scored).
    """

    def prep(label: str, seq: Any) -> list[str]:
        seq = _check_seq(seq, label)
        if fold:
            try:
                return fold_for_scoring(seq, scheme)
            except ValueError as e:
                raise ValueError(f"{label}: {e}") from None
        return [p for p in seq if p != "sil"]

    pairs = _paired(refs, hyps)
    return error_rate([prep(f"{u} (ref)", r) for u, r, _ in pairs], [prep(f"{u} (hyp)", h) for u, _, h in pairs])


def wer(
    refs: Sequence[str | Sequence[str]] | Mapping[str, str | Sequence[str]],
    hyps: Sequence[str | Sequence[str]] | Mapping[str, str | Sequence[str]],
) -> ErrorCounts:
    """Word error counts over a corpus. A string is split on white space; words are compared
    upper-cased (as ``Lexicon`` stores them)."""

    def prep(seq: Any) -> list[str]:
        words = seq.split() if isinstance(seq, str) else list(_check_seq(seq, "words"))
        return [w.upper() for w in words]

    pairs = _paired(refs, hyps)
    return error_rate([prep(r) for _, r, _ in pairs], [prep(h) for _, _, h in pairs])


# --- per-speaker rates -----------------------------------------------------------------------

SpeakerMeasure = Literal["rate", "accuracy"]
SPEAKER_MEASURES: tuple[str, ...] = ("rate", "accuracy")


def _by_utterance(refs: Any, hyps: Any, one: Any) -> dict[str, ErrorCounts]:
    """``{utt: one({utt: ref}, {utt: hyp})}`` for two mappings keyed by utterance id (same keys)."""
    if not (isinstance(refs, Mapping) and isinstance(hyps, Mapping)):
        raise ValueError("per-utterance counts need refs and hyps as mappings utterance id -> symbols")
    _paired(refs, hyps)  # the same keys on both sides, or the ids that differ are named
    return {u: one({u: refs[u]}, {u: hyps[u]}) for u in refs}


def per_by_utterance(
    refs: Mapping[str, Sequence[str]],
    hyps: Mapping[str, Sequence[str]],
    fold: bool = True,
    *,
    scheme: ScoringScheme = "timit39",
) -> dict[str, ErrorCounts]:
    """``per`` of each utterance, ``{utt: counts}``; their sum is ``per(refs, hyps, fold, scheme=scheme)``."""
    return _by_utterance(refs, hyps, lambda r, h: per(r, h, fold, scheme=scheme))


def wer_by_utterance(
    refs: Mapping[str, str | Sequence[str]], hyps: Mapping[str, str | Sequence[str]]
) -> dict[str, ErrorCounts]:
    """``wer`` of each utterance, ``{utt: counts}``; their sum is ``wer(refs, hyps)``."""
    return _by_utterance(refs, hyps, wer)


def counts_by_speaker(utt_counts: Mapping[str, ErrorCounts], utt2spk: Mapping[str, str]) -> dict[str, ErrorCounts]:
    """Each speaker's counts, summed over the speaker's utterances, keyed by speaker id (sorted).

    Raises:
        ValueError: naming the utterances that ``utt2spk`` has no speaker for.
    """
    missing = sorted(u for u in utt_counts if u not in utt2spk)
    if missing:
        raise ValueError(f"utt2spk has no speaker for {len(missing)} scored utterances: {missing[:5]}")
    out: dict[str, ErrorCounts] = {}
    for utt, counts in utt_counts.items():
        spk = utt2spk[utt]
        out[spk] = out.get(spk, ErrorCounts()) + counts
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class SpeakerSummary:
    """The spread of a score over speakers: each speaker's value and their mean, std, worst, best.

    A speaker's value is taken on the speaker's summed counts, never as a mean of utterance rates:

    - ``measure="rate"``: ``errors / reference_length`` of the speaker (PER or WER). A speaker
      with no reference symbol has no rate: listed in ``unrated`` and left out of the statistics.
    - ``measure="accuracy"``: the share of the speaker's utterances without any error (a
      classifier's accuracy, or the exact-match rate of isolated words).

    ``mean`` is the unweighted mean over speakers (every speaker counts once, unlike the corpus
    rate, which weights speakers by reference length); ``std`` is the population standard
    deviation (ddof 0) of the speakers' values. Worst is the highest rate / lowest accuracy, ties
    to the smaller speaker id, as are ties for best.

    Attributes:
        counts: speaker id -> the counts summed over the speaker's scored utterances (non-empty).
        measure: ``"rate"`` or ``"accuracy"``.
    """

    counts: Mapping[str, ErrorCounts]
    measure: SpeakerMeasure = "rate"

    def __post_init__(self) -> None:
        if self.measure not in SPEAKER_MEASURES:
            raise ValueError(f"SpeakerSummary.measure must be one of {SPEAKER_MEASURES}, got {self.measure!r}")
        if not self.counts:
            raise ValueError("SpeakerSummary: no speaker to summarise")
        for spk, c in self.counts.items():
            if not isinstance(c, ErrorCounts):
                raise ValueError(f"SpeakerSummary: speaker {spk!r} has {type(c).__name__}, not ErrorCounts")

    def value(self, speaker: str) -> float | None:
        """The speaker's rate or accuracy (``None``: a rate over no reference symbol)."""
        c = self.counts[speaker]
        if self.measure == "accuracy":
            return (c.utterances - c.utterances_with_errors) / c.utterances if c.utterances else None
        return c.rate if c.reference_length else None

    def _badness(self, speaker: str) -> float:
        v = self.value(speaker)
        return -v if self.measure == "accuracy" else v

    @property
    def rated(self) -> list[str]:
        """The speakers that have a value, worst first (ties: speaker id)."""
        have = [s for s in self.counts if self.value(s) is not None]
        return sorted(have, key=lambda s: (-self._badness(s), s))

    @property
    def unrated(self) -> list[str]:
        """Speakers with no reference symbol (``measure="rate"`` only), sorted."""
        return sorted(s for s in self.counts if self.value(s) is None)

    @property
    def speakers(self) -> int:
        """Number of speakers with a value (the ones the statistics are over)."""
        return len(self.rated)

    def _values(self) -> np.ndarray:
        return np.array([self.value(s) for s in self.rated], dtype=np.float64)

    @property
    def mean(self) -> float | None:
        return float(self._values().mean()) if self.speakers else None

    @property
    def std(self) -> float | None:
        return float(self._values().std()) if self.speakers else None

    @property
    def worst(self) -> tuple[str, float] | None:
        """``(speaker, value)`` of the worst speaker."""
        rated = self.rated
        return (rated[0], self.value(rated[0])) if rated else None

    @property
    def best(self) -> tuple[str, float] | None:
        """``(speaker, value)`` of the best speaker."""
        rated = self.rated
        if not rated:
            return None
        spk = min(rated, key=lambda s: (self._badness(s), s))
        return spk, self.value(spk)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``measure``, ``speakers``, ``mean``, ``std``, ``worst``/``best``
        (``{"speaker", MEASURE}``), ``unrated`` and ``table``: one row per speaker, worst first
        then the unrated, with the summed counts, ``errors`` and the value under the measure's name."""
        key = self.measure

        def point(p: tuple[str, float] | None) -> dict[str, Any] | None:
            return None if p is None else {"speaker": p[0], key: p[1]}

        table = [
            {"speaker": s, **asdict(self.counts[s]), "errors": self.counts[s].errors, key: self.value(s)}
            for s in self.rated + self.unrated
        ]
        return {
            "measure": key,
            "speakers": self.speakers,
            "mean": self.mean,
            "std": self.std,
            "worst": point(self.worst),
            "best": point(self.best),
            "unrated": self.unrated,
            "table": table,
        }

    @classmethod
    def from_json(cls, blob: Mapping[str, Any], measure: SpeakerMeasure | None = None) -> "SpeakerSummary":
        """The summary ``to_json`` wrote (``measure`` given: the same counts under another measure).

        Raises:
            ValueError: a blob without a ``table`` of speaker rows with the ``ErrorCounts`` fields.
        """
        fields = ErrorCounts.__dataclass_fields__
        try:
            counts = {row["speaker"]: ErrorCounts(**{f: row[f] for f in fields}) for row in blob["table"]}
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a per-speaker summary (missing {e})") from None
        return cls(counts, measure or blob.get("measure", "rate"))


def speaker_summary(
    utt_counts: Mapping[str, ErrorCounts], utt2spk: Mapping[str, str], measure: SpeakerMeasure = "rate"
) -> SpeakerSummary:
    """The per-speaker spread of per-utterance counts (``per_by_utterance``, ``wer_by_utterance``,
    or ``edit_distance([label], [predicted])`` of a classifier), speakers from ``utt2spk``.

    Example (speaker ``a``: 1 error in 6 phones over two utterances; ``b``: 2 in 3)::

        >>> refs = {"a1": ["k", "ae", "t"], "a2": ["d", "ao", "g"], "b1": ["k", "ae", "t"]}
        >>> hyps = {"a1": ["k", "ae", "t"], "a2": ["d", "ao"], "b1": ["k", "ah"]}
        >>> s = speaker_summary(per_by_utterance(refs, hyps), {"a1": "a", "a2": "a", "b1": "b"})
        >>> s.speakers, round(s.mean, 4), round(s.std, 4), s.worst[0], s.best[0]
        (2, 0.4167, 0.25, 'b', 'a')
    """
    return SpeakerSummary(counts_by_speaker(utt_counts, utt2spk), measure)


# --- confusions ------------------------------------------------------------------------------


def confusion_matrix(pairs: Iterable[Pair], symbols: Sequence[Hashable]) -> np.ndarray:
    """Counts of aligned pairs: ``(K + 1, K + 1)`` int64 for ``K = len(symbols)``.

    Row = reference symbol, column = hypothesis symbol, both in ``symbols`` order. Row ``K``
    counts insertions (``(None, h)``), column ``K`` deletions (``(r, None)``); ``[K, K]`` is 0.
    ``pairs`` are ``align_sequences`` outputs, concatenated over a corpus if wanted.

    Raises:
        ValueError: a symbol not in ``symbols``, duplicate ``symbols``, or a ``(None, None)`` pair.
    """
    index = {s: i for i, s in enumerate(symbols)}
    if len(index) != len(symbols):
        raise ValueError("confusion_matrix: symbols contain duplicates")
    k = len(symbols)
    mat = np.zeros((k + 1, k + 1), dtype=np.int64)
    for n, (r, h) in enumerate(pairs):
        if r is None and h is None:
            raise ValueError(f"confusion_matrix: pair {n} is (None, None)")
        try:
            row = k if r is None else index[r]
            col = k if h is None else index[h]
        except KeyError as e:
            raise ValueError(f"confusion_matrix: pair {n} {(r, h)} has symbol {e.args[0]!r} not in symbols") from None
        mat[row, col] += 1
    return mat


# --- frame and boundary accuracy -------------------------------------------------------------


def _to_list(x: Any) -> Any:
    return x.tolist() if hasattr(x, "tolist") else x


def frame_counts(ref_labels: Any, hyp_labels: Any, lengths: Any = None, *, frame_factor: int = 1) -> tuple[int, int]:
    """``(correct frames, total frames)``; arguments as in ``frame_accuracy``."""
    if isinstance(frame_factor, bool) or not isinstance(frame_factor, int) or frame_factor < 1:
        raise ValueError(f"frame_factor must be an int >= 1, got {frame_factor!r}")
    if isinstance(ref_labels, Mapping) or isinstance(hyp_labels, Mapping):
        if lengths is not None:
            raise ValueError("lengths is only meaningful for a padded batch, not for mappings of utterances")
        utterances = [(label, list(_to_list(r)), list(_to_list(h))) for label, r, h in _paired(ref_labels, hyp_labels)]
    else:
        utterances = _frame_batch(ref_labels, hyp_labels, lengths, frame_factor)
    correct = total = 0
    for label, r, h in utterances:
        expected = -(-len(r) // frame_factor)  # model frames that cover len(r) reference frames
        if len(h) != expected:
            per_frame = f" of {frame_factor} frames each (expected {expected})" if frame_factor > 1 else ""
            raise ValueError(f"{label}: {len(r)} reference frames but {len(h)} hypothesis frames{per_frame}")
        if frame_factor > 1:
            h = [label_ for label_ in h for _ in range(frame_factor)][: len(r)]
        correct += sum(a == c for a, c in zip(r, h))
        total += len(r)
    return correct, total


def _frame_batch(ref_labels: Any, hyp_labels: Any, lengths: Any, frame_factor: int) -> list[tuple[str, list, list]]:
    """``(utterance label, ref, hyp)`` of one utterance or a batch, cut to ``lengths`` (reference frames)."""
    ref, hyp = _to_list(ref_labels), _to_list(hyp_labels)
    if isinstance(ref, str) or isinstance(hyp, str):
        raise ValueError("frame labels must be sequences of labels, not a str")
    ref, hyp = list(ref), list(hyp)
    first = ref[0] if ref else None
    batched = not isinstance(first, str) and (isinstance(first, Sequence) or getattr(first, "ndim", 0) >= 1)
    if not batched:
        if lengths is not None:
            raise ValueError("lengths is only meaningful for a batch (B, T) of label sequences")
        ref, hyp = [ref], [hyp]
    if len(ref) != len(hyp):
        raise ValueError(f"frame labels: {len(ref)} reference utterances but {len(hyp)} hypotheses")
    if lengths is not None:
        lengths = [int(v) for v in _to_list(lengths)]
        if len(lengths) != len(ref):
            raise ValueError(f"lengths has {len(lengths)} entries for a batch of {len(ref)}")
    out = []
    for b, (r, h) in enumerate(zip(ref, hyp)):
        r, h = list(_to_list(r)), list(_to_list(h))
        if lengths is not None:
            t = lengths[b]
            if not 0 <= t <= min(len(r), len(h) * frame_factor):
                raise ValueError(f"utterance {b}: length {t} outside [0, {min(len(r), len(h) * frame_factor)}]")
            r, h = r[:t], h[: -(-t // frame_factor)]
        out.append((f"utterance {b}", r, h))
    return out


def frame_accuracy(ref_labels: Any, hyp_labels: Any, lengths: Any = None, *, frame_factor: int = 1) -> float:
    """Share of reference frames whose hypothesis label equals the reference label.

    Args:
        ref_labels, hyp_labels: one utterance, ``(T,)`` labels (list, numpy or torch), or a
            batch: ``(B, T)`` padded arrays with ``lengths (B,)``, a list of ``B`` unpadded
            sequences, or two mappings utterance id -> labels with the same keys. Frames past
            ``lengths`` (counted in reference frames) are ignored.
        frame_factor: reference frames per hypothesis frame (a model that stacks or subsamples
            ``frame_factor`` feature frames into one output frame): the hypothesis has
            ``ceil(T / frame_factor)`` labels, and each one stands for the ``frame_factor``
            reference frames it covers (the last one for the rest of the utterance). ``1``: the
            two sequences are frame by frame and of equal length.

    Raises:
        ValueError: mismatched lengths (naming the utterance), or no frame at all to score.

    Example:
        >>> frame_accuracy(["aa", "aa", "aa", "b", "b"], ["aa", "b"], frame_factor=3)  # aa aa aa | b b
        1.0
    """
    correct, total = frame_counts(ref_labels, hyp_labels, lengths, frame_factor=frame_factor)
    if total == 0:
        raise ValueError("frame_accuracy: no frames to score")
    return correct / total


def _span_bounds(spans: Iterable[Any], name: str) -> list[tuple[int, int]]:
    out = []
    for k, s in enumerate(spans):
        if hasattr(s, "start") and hasattr(s, "end"):
            a, b = s.start, s.end
        elif isinstance(s, Sequence) and len(s) == 2:
            a, b = s
        else:
            raise ValueError(f"{name}[{k}] must have .start/.end or be a (start, end) pair, got {s!r}")
        if b < a:
            raise ValueError(f"{name}[{k}] ends before it starts: {s!r}")
        if out and a < out[-1][1]:
            raise ValueError(f"{name}[{k}] starts at {a}, before the previous span ends at {out[-1][1]}")
        out.append((a, b))
    return out


def boundary_counts(ref_spans: Sequence[Any], hyp_spans: Sequence[Any], tolerance_frames: int = 2) -> tuple[int, int]:
    """``(matched, total)`` reference boundaries; arguments and matching as in ``boundary_accuracy``."""
    if tolerance_frames < 0:
        raise ValueError(f"tolerance_frames must be >= 0, got {tolerance_frames}")
    ref_b = [a for a, _ in _span_bounds(ref_spans, "ref_spans")[1:]]
    hyp_b = [a for a, _ in _span_bounds(hyp_spans, "hyp_spans")[1:]]
    candidates = sorted(
        (abs(r - h), i, j) for i, r in enumerate(ref_b) for j, h in enumerate(hyp_b) if abs(r - h) <= tolerance_frames
    )
    used_r: set[int] = set()
    used_h: set[int] = set()
    for _, i, j in candidates:
        if i not in used_r and j not in used_h:
            used_r.add(i)
            used_h.add(j)
    return len(used_r), len(ref_b)


def boundary_accuracy(ref_spans: Sequence[Any], hyp_spans: Sequence[Any], tolerance_frames: int = 2) -> float:
    """Share of reference phone boundaries with a hypothesis boundary within ``tolerance_frames``.

    A boundary is the start frame of every span but the first (the internal boundaries between
    consecutive spans). Spans are objects with ``.start``/``.end`` (frames, end exclusive, e.g.
    ``decode.greedy.Span``) or ``(start, end)`` pairs, in time order, non-overlapping; labels are
    ignored. Matching is one-to-one and greedy by distance: all (reference, hypothesis)
    boundary pairs within the tolerance are taken in order of increasing distance (ties: earlier
    reference boundary, then earlier hypothesis boundary), and a pair is matched when neither
    boundary is matched yet. Each hypothesis boundary is used at most once.

    Raises:
        ValueError: malformed spans, a negative tolerance, or a reference with fewer than two
            spans (no boundary to score; use ``boundary_counts`` to sum over a corpus).
    """
    matched, total = boundary_counts(ref_spans, hyp_spans, tolerance_frames)
    if total == 0:
        raise ValueError("boundary_accuracy: the reference has fewer than two spans, so no boundary to score")
    return matched / total


# --- report ----------------------------------------------------------------------------------


def _sclite_block(total: ErrorCounts, name: str, unit: str, title: str) -> list[str]:
    """The sclite-like box of one set of corpus counts and its ``%PER``/``%WER`` line."""
    n = total.reference_length

    def pct(v: int) -> str:
        return f"{100.0 * v / n:6.2f}" if n else "     -"

    cells = ["# Snt", "# " + unit, "Corr", "Sub", "Del", "Ins", "Err", "S.Err"]
    head = "| " + " | ".join(f"{c:>{10 if i == 1 else 6}}" for i, c in enumerate(cells)) + " |"
    width = len(head)
    ser = f"{100.0 * total.sentence_error_rate:6.2f}" if total.utterances else "     -"
    counts_line = (
        f"| {total.utterances:>6} | {n:>10} | {total.correct:>6} | {total.substitutions:>6} | "
        f"{total.deletions:>6} | {total.insertions:>6} | {total.errors:>6} | {total.utterances_with_errors:>6} |"
    )
    pct_line = (
        f"| {'':>6} | {'%':>10} | {pct(total.correct)} | {pct(total.substitutions)} | "
        f"{pct(total.deletions)} | {pct(total.insertions)} | {pct(total.errors)} | {ser} |"
    )
    rate = f"{100.0 * total.rate:.2f}" if n else ("0.00" if total.errors == 0 else "inf")
    lines = [",".ljust(width - 1, "-") + "."]
    if title:
        lines += [f"| {title}".ljust(width - 1) + "|", "|".ljust(width - 1, "-") + "|"]
    lines += [head, counts_line, pct_line, "`".ljust(width - 1, "-") + "'"]
    lines.append(
        f"%{name} {rate} [ {total.errors} / {n}, {total.insertions} "
        f"ins, {total.deletions} del, {total.substitutions} sub ]"
    )
    return lines


def format_speakers(summary: SpeakerSummary, name: str = "PER", unit: str = "phones") -> list[str]:
    """report.txt's per-speaker part: a summary line and one row per speaker, worst first.

    Example output (``name="PER"``)::

        per-speaker PER, 2 speakers: mean 45.00%, std 15.00, worst 60.00% (spk1), best 30.00% (spk0)
        | speaker      |  # Snt |   # phones |    Err |  PER % |
        | spk1         |      2 |         10 |      6 |  60.00 |
        | spk0         |      1 |         10 |      3 |  30.00 |

    ``name`` heads the value column (``"accuracy"`` for ``measure="accuracy"``); ``std`` is in
    percentage points; speakers without a reference symbol are listed last with ``-`` and left out
    of the summary line.
    """
    label = name if summary.measure == "rate" else "accuracy"
    if summary.speakers:
        (w, wv), (b, bv) = summary.worst, summary.best
        head = (
            f"per-speaker {label}, {summary.speakers} speakers: mean {100 * summary.mean:.2f}%, "
            f"std {100 * summary.std:.2f}, worst {100 * wv:.2f}% ({w}), best {100 * bv:.2f}% ({b})"
        )
    else:
        head = f"per-speaker {label}: no speaker has reference {unit}"
    if summary.unrated:
        head += f"; {len(summary.unrated)} speakers without reference {unit} have no {label}"
    width = max([len("speaker"), *(len(s) for s in summary.counts)])
    col = f"{label} %"
    lines = [head, f"| {'speaker':<{width}} | {'# Snt':>6} | {'# ' + unit:>10} | {'Err':>6} | {col:>6} |"]
    for spk in summary.rated + summary.unrated:
        c, v = summary.counts[spk], summary.value(spk)
        value = f"{100 * v:.2f}" if v is not None else "-"
        lines.append(f"| {spk:<{width}} | {c.utterances:>6} | {c.reference_length:>10} | {c.errors:>6} | {value:>6} |")
    return lines


SPEAKER_COLUMNS = ("speakers", "spk mean", "worst (spk)", "best (spk)")


def speaker_cells(summary: SpeakerSummary | None) -> list[str]:
    """The recipes' table cells under ``SPEAKER_COLUMNS``, percentages to one decimal:
    ``["2", "41.7", "66.7 (b)", "16.7 (a)"]``; ``"-"`` each without a summary (no ``utt2spk``)
    or when no speaker has a value."""
    if summary is None or not summary.speakers:
        return ["-"] * len(SPEAKER_COLUMNS)
    (w, wv), (b, bv) = summary.worst, summary.best
    return [str(summary.speakers), f"{100 * summary.mean:.1f}", f"{100 * wv:.1f} ({w})", f"{100 * bv:.1f} ({b})"]


def format_report(
    counts: ErrorCounts | Iterable[ErrorCounts],
    *,
    name: str = "PER",
    unit: str = "phones",
    title: str = "",
    words: ErrorCounts | Iterable[ErrorCounts] | None = None,
    speakers: SpeakerSummary | None = None,
    frame_acc: float | None = None,
    empty_hypotheses: int = 0,
    skipped: int = 0,
    rtf: tuple[float, float, float] | None = None,
) -> str:
    """An sclite-like summary of corpus counts (per-utterance counts are summed first).

    Example output::

        ,---------------------------------------------------------------------------.
        | test set                                                                  |
        |---------------------------------------------------------------------------|
        |  # Snt |   # phones |   Corr |    Sub |    Del |    Ins |    Err |  S.Err |
        |      2 |          8 |      6 |      2 |      0 |      1 |      3 |      2 |
        |        |          % |  75.00 |  25.00 |   0.00 |  12.50 |  37.50 | 100.00 |
        `---------------------------------------------------------------------------'
        %PER 37.50 [ 3 / 8, 1 ins, 0 del, 2 sub ]

    The ``S.Err`` row gives the count and the share of utterances with any error. A decode
    report adds, each only when given: a second box for ``words`` (``%WER``), the number of
    utterances with an empty hypothesis (scored as deletions), the frame accuracy ``frame_acc``
    (0..1), the number of ``skipped`` utterances (left out of the rates) and the real-time
    factors ``rtf = (total, network, search)``, and last the per-speaker summary and table of
    ``speakers`` (``format_speakers``; the data directory's ``utt2spk``).
    """
    total = counts if isinstance(counts, ErrorCounts) else ErrorCounts.sum(counts)
    lines = _sclite_block(total, name, unit, title)
    if words is not None:
        word_total = words if isinstance(words, ErrorCounts) else ErrorCounts.sum(words)
        lines += _sclite_block(word_total, "WER", "words", "")
    if empty_hypotheses:
        lines.append(f"{empty_hypotheses} utterances got an empty hypothesis (scored as deletions)")
    if frame_acc is not None:
        lines.append(f"frame accuracy {100 * frame_acc:.2f}%")
    if skipped:
        lines.append(
            f"NOT SCORED: {skipped} utterances could not be loaded or decoded "
            f"(see report.json 'skipped'); the rates above leave them out"
        )
    if rtf is not None:
        lines.append(f"real-time factor {rtf[0]:.4f} (network {rtf[1]:.4f}, search {rtf[2]:.4f})")
    if speakers is not None:
        lines += format_speakers(speakers, name, unit)
    return "\n".join(lines) + "\n"
