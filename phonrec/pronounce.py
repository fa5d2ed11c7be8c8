"""Pronunciations for any word: a user dictionary, over CMUdict, over a grapheme-to-phoneme guess.

:class:`Pronouncer` looks each word up in three layers, the first that knows it wins:

1. the user's dictionary (Kaldi/MFA format, ``WORD PH PH ...``, CMUdict phones with or without
   stress, or phonrec's lower-case symbols: :meth:`Pronouncer.from_files` reads it with
   :meth:`phonrec.lexicon.Lexicon.from_kaldi` and :func:`phonrec.phones.cmu_to_phonrec`);
2. CMUdict (:meth:`phonrec.lexicon.Lexicon.from_cmudict`, loaded on first use);
3. flite's letter-to-sound rules (:class:`FliteG2P`: the ``t2p`` program of the Debian ``flite``
   package, which the project installs for its synthetic corpus), for words in neither. Each guess
   is logged (``word -> phones (flite letter-to-sound)``) and kept in :attr:`Pronouncer.guesses`;
   :meth:`Pronouncer.write_guesses` writes them in the dictionary format, for the user to correct
   and pass back as the dictionary.

Words (:meth:`Pronouncer.words`): a transcript is split on white space; curly apostrophes become
``'``; a token found in a dictionary as written (``U.S.``, ``CO-OP``) is kept whole; otherwise the
sentence punctuation, quotes, brackets and dashes around it are stripped (:data:`EDGE_PUNCTUATION`;
apostrophes are kept: ``don't``, ``dogs'``), a token that is only punctuation (``--``, ``...``) is
dropped, and one with hyphens that no dictionary knows is split at them (``blue-green`` -> ``blue
green``). Only ASCII letters, digits and apostrophes can be guessed (flite reads digits as numbers:
``42`` -> ``f ao r t iy t uw``); any other character (``@``, ``&``, ``é``) in a word no dictionary
has is reported as an unknown character.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from phonrec.lexicon import Lexicon, Pron, normalise_word
from phonrec.phones import CMU_PHONES, SILENCE, cmu_to_phonrec, flite_to_phonrec, strip_stress

log = logging.getLogger("phonrec.pronounce")

#: How flite's guesses are described in logs and in :class:`Guess`.
FLITE_METHOD = "flite letter-to-sound"
_GUESSABLE = re.compile(r"^[A-Z0-9']*[A-Z0-9][A-Z0-9']*$")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_HYPHENS = re.compile(r"[-\u2010\u2011\u2012\u2013\u2014]+")


class PronunciationError(ValueError):
    """A word with characters no pronunciation can be guessed for, or no pronunciation at all."""


@dataclass(frozen=True)
class Guess:
    """A pronunciation that no dictionary gave: ``word`` (upper-case), its ``phones``, and ``method``."""

    word: str
    phones: Pron
    method: str


class FliteG2P:
    """flite's letter-to-sound rules through its ``t2p`` program (one call per word).

    ``t2p WORD`` prints flite phones with stress (``pau b l ao1 r p pau``); they become phonrec
    symbols (stress removed, ``ax`` -> ``ah``, ``pau`` dropped). flite looks words up in its own
    CMUdict-derived lexicon first and applies its letter-to-sound rules to the rest.
    """

    method = FLITE_METHOD

    def __init__(self, program: str = "t2p", *, timeout: float = 30.0) -> None:
        found = shutil.which(program)
        if found is None:
            raise FileNotFoundError(
                f"flite's letter-to-sound program {program!r} is not on PATH (Debian/Ubuntu: apt-get install flite)"
            )
        self.program, self.timeout = found, timeout

    @classmethod
    def available(cls, program: str = "t2p") -> bool:
        return shutil.which(program) is not None

    def __call__(self, word: str) -> Pron:
        """phonrec phones of ``word`` (upper or lower case).

        Raises:
            PronunciationError: when ``t2p`` fails, prints no phone or a phone outside the CMU set.
        """
        proc = subprocess.run(
            [self.program, word.lower()], capture_output=True, text=True, timeout=self.timeout, check=False
        )
        if proc.returncode != 0:
            raise PronunciationError(f"{self.program} {word.lower()!r} failed ({proc.returncode}): {proc.stderr[:200]}")
        phones = [flite_to_phonrec(strip_stress(p)) for p in proc.stdout.split()]
        phones = [p for p in phones if p != SILENCE]
        strange = sorted(set(phones) - set(CMU_PHONES))
        if not phones or strange:
            raise PronunciationError(
                f"flite's letter-to-sound rules give no usable pronunciation for {word!r}: {proc.stdout.strip()!r}"
            )
        return tuple(phones)


G2P = Callable[[str], Pron]


@functools.lru_cache(maxsize=1)
def default_cmudict() -> Lexicon:
    """The whole of CMUdict (:meth:`Lexicon.from_cmudict`), read once per process (a few seconds);
    pronouncers share it and never change it."""
    return Lexicon.from_cmudict()


class Pronouncer:
    """User dictionary over CMUdict over a G2P fallback (module docstring).

    Args:
        dictionary: the user's lexicon (phonrec symbols), consulted first, or several, consulted in
            order; ``None``: none.
        cmudict: a CMUdict lexicon; ``"auto"`` loads :meth:`Lexicon.from_cmudict` on first use,
            ``None`` leaves the layer out.
        g2p: a callable ``word -> phones`` with a ``method`` attribute (its description);
            ``"auto"``: :class:`FliteG2P` when ``t2p`` is installed, else none; ``None``: none
            (a word no dictionary has is then a :class:`PronunciationError`).

    Attributes:
        guesses: upper-case word -> :class:`Guess`, every word the G2P was asked for, in order.
    """

    def __init__(
        self,
        dictionary: Lexicon | Sequence[Lexicon] | None = None,
        *,
        cmudict: Lexicon | str | None = "auto",
        g2p: G2P | str | None = "auto",
    ) -> None:
        if isinstance(cmudict, str) and cmudict != "auto":
            raise ValueError(f"cmudict must be a Lexicon, 'auto' or None, got {cmudict!r}")
        if isinstance(g2p, str):
            if g2p != "auto":
                raise ValueError(f"g2p must be a callable, 'auto' or None, got {g2p!r}")
            g2p = FliteG2P() if FliteG2P.available() else None
        if dictionary is None:
            dictionary = []
        self.dictionaries: list[Lexicon] = [dictionary] if isinstance(dictionary, Lexicon) else list(dictionary)
        self._cmudict = cmudict
        self.g2p = g2p
        self.guesses: dict[str, Guess] = {}

    @classmethod
    def from_files(
        cls, dictionary: str | Path | None = None, *, extra: Lexicon | None = None, g2p: G2P | str | None = "auto"
    ) -> "Pronouncer":
        """A pronouncer over the dictionary file ``dictionary`` (Kaldi/MFA ``WORD PH PH ...``; CMUdict
        phones like ``AH0`` are mapped to phonrec's ``ah``), then ``extra`` (e.g. a model directory's
        lexicon), CMUdict and ``g2p``.

        Raises:
            LexiconError: naming ``file:line`` of a malformed dictionary line.
        """
        user = [] if dictionary is None else [Lexicon.from_kaldi(dictionary, phone_map=cmu_to_phonrec)]
        return cls(user + ([extra] if extra is not None else []), g2p=g2p)

    @property
    def cmudict(self) -> Lexicon | None:
        if self._cmudict == "auto":
            self._cmudict = default_cmudict()
        return self._cmudict  # type: ignore[return-value]

    @property
    def layers(self) -> list[Lexicon]:
        """The dictionaries in lookup order (user first)."""
        return self.dictionaries + ([self.cmudict] if self.cmudict is not None else [])

    def known(self, word: str) -> bool:
        """Whether a dictionary (not the G2P) has ``word``."""
        return any(word in lex for lex in self.layers)

    # words ------------------------------------------------------------------------------------
    def words(self, text: str, *, source: str = "") -> list[str]:
        """The words of a transcript (module docstring), upper-case.

        Raises:
            PronunciationError: naming ``source`` and the word, for a character no pronunciation
                can be guessed for in a word no dictionary has.
        """
        out: list[str] = []
        for token in text.translate(_APOSTROPHES).split():
            if self.known(token):
                out.append(normalise_word(token))
                continue
            stripped = _strip_punctuation(token)
            if not stripped:
                continue
            parts = [stripped] if self.known(stripped) else [p for p in _HYPHENS.split(stripped) if p]
            for part in parts:
                w = normalise_word(part)
                if not self.known(w) and not _GUESSABLE.match(w):
                    bad = sorted({c for c in part if not (c.isascii() and (c.isalnum() or c == "'"))})
                    where = f"{source}: " if source else ""
                    raise PronunciationError(
                        f"{where}unknown characters {' '.join(repr(c) for c in bad)} in the word {token!r} "
                        "(not in the dictionaries; only ASCII letters, digits and apostrophes can be guessed)"
                    )
                out.append(w)
        return out

    # pronunciations ---------------------------------------------------------------------------
    def pronunciations(self, words: Iterable[str], *, source: str = "") -> list[list[Pron]]:
        """All pronunciations of each word, from the first layer that has it (guessing the rest).

        Raises:
            PronunciationError: naming ``source`` and every word nothing could pronounce.
        """
        words = [normalise_word(w) for w in words]
        missing = [w for w in dict.fromkeys(words) if not self.known(w) and w not in self.guesses]
        failed: list[str] = []
        for w in missing:
            if self.g2p is None:
                failed.append(w)
                continue
            try:
                phones = tuple(self.g2p(w))
            except PronunciationError as e:
                log.warning("%s", e)
                failed.append(w)
                continue
            guess = Guess(w, phones, getattr(self.g2p, "method", type(self.g2p).__name__))
            self.guesses[w] = guess
            log.info("guessed %s -> %s (%s)", w, " ".join(phones), guess.method)
        if failed:
            where = f"{source}: " if source else ""
            how = (
                "and flite's letter-to-sound rules gave none"
                if self.g2p is not None
                else "and no letter-to-sound fallback is available (flite's t2p: apt-get install flite)"
            )
            raise PronunciationError(
                f"{where}no pronunciation for {', '.join(failed)} (not in the dictionary or CMUdict, {how})"
            )
        return [self._lookup(w) for w in words]

    def pronounce(self, text: str, *, source: str = "") -> tuple[list[str], list[list[Pron]]]:
        """:meth:`words` and their :meth:`pronunciations`."""
        words = self.words(text, source=source)
        return words, self.pronunciations(words, source=source)

    def _lookup(self, word: str) -> list[Pron]:
        for lex in self.layers:
            if word in lex:
                return list(lex.pronunciations(word))
        return [self.guesses[word].phones]

    def add_guesses(self, guesses: Sequence[Guess]) -> None:
        """Record guesses made elsewhere (another process), e.g. to write them with :meth:`write_guesses`."""
        for g in guesses:
            self.guesses.setdefault(g.word, g)

    def write_guesses(self, path: str | Path) -> int:
        """Write :attr:`guesses` as a dictionary (``WORD ph ph ...``, words sorted) that
        :meth:`from_files` reads back; returns the number of words written."""
        lex = Lexicon()
        for g in self.guesses.values():
            lex.add(g.word, g.phones)
        lex.to_kaldi(path)
        return len(lex)


#: Stripped from the edges of a word: sentence punctuation, quotes, brackets and dashes. Other
#: symbols (``&``, ``%``, ``@``, ``$``) may stand for spoken words, so they are kept and reported.
EDGE_PUNCTUATION = frozenset(
    '.,;:!?"()[]{}<>*_~-\u00ab\u00bb\u201c\u201d\u201e\u2026\u2039\u203a\u00a1\u00bf\u2013\u2014'
)


def _strip_punctuation(token: str) -> str:
    """``token`` without the :data:`EDGE_PUNCTUATION` around it; ``""`` when nothing but apostrophes is left."""
    start, end = 0, len(token)
    while start < end and token[start] in EDGE_PUNCTUATION:
        start += 1
    while end > start and token[end - 1] in EDGE_PUNCTUATION:
        end -= 1
    word = token[start:end]
    return word if word.strip("'") else ""
