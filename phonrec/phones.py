"""Phone sets (symbols <-> ids) and folding maps between phone inventories.

A phone set is a plain text file ``phones.txt``: one symbol per line, id = line number
(0-based). CTC models reserve id 0 for ``<blank>``. Silence is a single symbol, ``sil``.

Inventories built in (``PhoneSet.standard(name)``):

- ``"cmu39+sil"``: ``sil`` then the 39 CMUdict phones (lower-case, no stress), alphabetical.
- ``"timit61"``: the 61 TIMIT phones of the corpus' ``.phn`` files (silence symbol ``h#``).
- ``"timit48"``: Lee & Hon's 48 training phones (silence symbol ``sil``).
- ``"timit39"``: Lee & Hon's 39 scoring phones (38 phones + ``sil``).

The TIMIT folding maps are the standard Lee & Hon (1989) folding, as in Kaldi's
``egs/timit/s5/conf/phones.60-48-39.map``: 61 -> 48 for training, 48 -> 39 for scoring, with
``q`` (glottal stop) deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

from phonrec.textfile import read_lines

BLANK = "<blank>"
SILENCE = "sil"


class PhoneSetError(ValueError):
    """An unknown phone or a malformed phones.txt; the message names the symbol/file/line."""


@dataclass(frozen=True)
class PhoneSet:
    """An ordered inventory of phone symbols.

    Attributes:
        symbols: the symbols in id order (``symbols[0] == "<blank>"`` when the set has a blank).
        silence: the silence symbol (must be in ``symbols`` if silence is used at all).
    """

    symbols: tuple[str, ...]
    silence: str = SILENCE

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, s in enumerate(self.symbols):
            if not isinstance(s, str) or not s or any(c.isspace() for c in s):
                raise PhoneSetError(f"phone symbol {i} is empty, not a string or contains white space: {s!r}")
            if s in seen:
                raise PhoneSetError(f"phone symbol {s!r} appears twice (ids {self.symbols.index(s)} and {i})")
            seen.add(s)
        if BLANK in seen and self.symbols[0] != BLANK:
            raise PhoneSetError(f"{BLANK} must have id 0, found at id {self.symbols.index(BLANK)}")
        object.__setattr__(self, "_ids", {s: i for i, s in enumerate(self.symbols)})

    # construction -------------------------------------------------------------------------
    @classmethod
    def from_symbols(cls, symbols: Iterable[str], *, blank: bool = False, silence: str = SILENCE) -> "PhoneSet":
        """Build from symbols; duplicates are an error.

        ``<blank>`` is put at id 0 when ``blank=True`` or when ``symbols`` already contain it
        (it is moved to the front, never silently dropped).
        """
        symbols = list(symbols)
        body = [s for s in symbols if s != BLANK]
        with_blank = blank or len(body) != len(symbols)
        return cls(tuple(([BLANK] if with_blank else []) + body), silence=silence)

    @classmethod
    def from_file(cls, path: str | Path, *, silence: str = SILENCE) -> "PhoneSet":
        """Read ``phones.txt`` (one symbol per line; a Kaldi ``sym id`` second column is accepted).

        Raises:
            PhoneSetError: naming ``file:line`` for an empty line, a malformed line, an id that
                does not match its line, a duplicate symbol, ``<blank>`` anywhere but line 1,
                or a file with no symbols.
        """
        path = Path(path)
        symbols: list[str] = []
        first_line: dict[str, int] = {}
        for line_no, raw in enumerate(read_lines(path, error=PhoneSetError), start=1):
            fields = raw.split()
            if not fields:
                raise PhoneSetError(
                    f"{path}:{line_no}: empty line (ids are line numbers, so blank lines are not allowed)"
                )
            if len(fields) == 2 and fields[1].isdigit():
                if int(fields[1]) != len(symbols):
                    raise PhoneSetError(
                        f"{path}:{line_no}: id {fields[1]} does not match its line (expected {len(symbols)})"
                    )
            elif len(fields) != 1:
                raise PhoneSetError(f"{path}:{line_no}: expected one symbol per line, got {raw.strip()!r}")
            sym = fields[0]
            if sym in first_line:
                raise PhoneSetError(f"{path}:{line_no}: phone {sym!r} appears twice (first on line {first_line[sym]})")
            if sym == BLANK and symbols:
                raise PhoneSetError(f"{path}:{line_no}: {BLANK} must be on the first line (id 0)")
            first_line[sym] = line_no
            symbols.append(sym)
        if not symbols:
            raise PhoneSetError(f"{path}: no phone symbols in the file")
        try:
            return cls(tuple(symbols), silence=silence)
        except PhoneSetError as e:
            raise PhoneSetError(f"{path}: {e}") from None

    def to_file(self, path: str | Path) -> None:
        """Write ``phones.txt`` (one symbol per line)."""
        Path(path).write_text("".join(s + "\n" for s in self.symbols), encoding="utf-8")

    #: names accepted by :meth:`standard`
    STANDARD_NAMES = ("cmu39+sil", "timit61", "timit48", "timit39")

    @classmethod
    def standard(cls, name: str, *, blank: bool = False) -> "PhoneSet":
        """A built-in inventory: ``"cmu39+sil"``, ``"timit61"``, ``"timit48"`` or ``"timit39"``.

        ``blank=True`` adds ``<blank>`` at id 0 (for CTC). See the module docstring for the
        symbol order and the silence symbol of each set.
        """
        try:
            symbols, silence = _STANDARD_SETS[name]
        except KeyError:
            raise PhoneSetError(
                f"unknown standard phone set {name!r}; expected one of {sorted(_STANDARD_SETS)}"
            ) from None
        return cls.from_symbols(symbols, blank=blank, silence=silence)

    # queries ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._ids  # type: ignore[attr-defined]

    @property
    def has_blank(self) -> bool:
        return bool(self.symbols) and self.symbols[0] == BLANK

    @property
    def blank_id(self) -> int | None:
        """0 for CTC phone sets, ``None`` otherwise."""
        return 0 if self.has_blank else None

    @property
    def silence_id(self) -> int | None:
        return self._ids.get(self.silence)  # type: ignore[attr-defined]

    def index(self, symbol: str) -> int:
        try:
            return self._ids[symbol]  # type: ignore[attr-defined]
        except KeyError:
            raise PhoneSetError(f"unknown phone {symbol!r} (phone set has {len(self)} symbols)") from None

    def encode(self, phones: Sequence[str], *, context: str = "") -> list[int]:
        """Symbols -> ids. ``context`` (an utterance id, a file:line) is put in the error message."""
        ids = self._ids  # type: ignore[attr-defined]
        try:
            return [ids[p] for p in phones]
        except KeyError as e:
            where = f"{context}: " if context else ""
            raise PhoneSetError(
                f"{where}unknown phone {e.args[0]!r} (not in the {len(self)}-symbol phone set)"
            ) from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> symbols; an id outside ``[0, len(self))`` (negative ones included) is an error."""
        out = []
        n = len(self.symbols)
        for i in ids:
            k = int(i)
            if not 0 <= k < n:
                raise PhoneSetError(f"phone id {k} out of range for a {n}-symbol phone set")
            out.append(self.symbols[k])
        return out

    def with_blank(self) -> "PhoneSet":
        """The same phones with ``<blank>`` at id 0 (for CTC)."""
        return self if self.has_blank else PhoneSet((BLANK,) + self.symbols, silence=self.silence)

    def without_blank(self) -> "PhoneSet":
        return PhoneSet(self.symbols[1:], silence=self.silence) if self.has_blank else self


# --- symbol normalisation between inventories ------------------------------------------------
# Inside phonrec, phones are lower-case ARPAbet without stress digits, plus ``sil``.

_FLITE_TO_PHONREC = {"ax": "ah", "pau": "sil", "h#": "sil"}


def strip_stress(phone: str) -> str:
    """``AH0`` -> ``AH``: drop CMUdict's trailing stress digit (and speechocean762's ``_B/_I/_E/_S`` tag).

    Raises:
        ValueError: when nothing is left of the symbol (``"1"``, ``"_B"``).
    """
    base = phone.split("_", 1)[0] if "_" in phone and phone != "_" else phone
    base = base[:-1] if base[-1:] in ("0", "1", "2") else base
    if not base:
        raise ValueError(f"phone {phone!r} has no symbol left after removing stress/position marks")
    return base


def cmu_to_phonrec(phone: str) -> str:
    """A CMUdict / speechocean762 phone (``AO0_I``) -> phonrec's symbol (``ao``)."""
    return strip_stress(phone).lower()


def flite_to_phonrec(phone: str) -> str:
    """A flite/festival phone (``ax``, ``pau``) -> phonrec's symbol (``ah``, ``sil``)."""
    phone = phone.lower()
    return _FLITE_TO_PHONREC.get(phone, phone)


# --- inventories -----------------------------------------------------------------------------

#: The 39 CMUdict phones, lower-case, stress removed (CMUdict's ``cmudict.phones`` order).
CMU_PHONES: tuple[str, ...] = (
    "aa", "ae", "ah", "ao", "aw", "ay", "b", "ch", "d", "dh", "eh", "er", "ey", "f", "g", "hh",
    "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th",
    "uh", "uw", "v", "w", "y", "z", "zh",
)  # fmt: skip

# The Lee & Hon folding, transcribed from Kaldi egs/timit/s5/conf/phones.60-48-39.map:
# TIMIT-61 symbol, its 48-phone class, its 39-phone class ("" = deleted).
_TIMIT_FOLDING: tuple[tuple[str, str, str], ...] = (
    ("aa", "aa", "aa"), ("ae", "ae", "ae"), ("ah", "ah", "ah"), ("ao", "ao", "aa"),
    ("aw", "aw", "aw"), ("ax", "ax", "ah"), ("ax-h", "ax", "ah"), ("axr", "er", "er"),
    ("ay", "ay", "ay"), ("b", "b", "b"), ("bcl", "vcl", "sil"), ("ch", "ch", "ch"),
    ("d", "d", "d"), ("dcl", "vcl", "sil"), ("dh", "dh", "dh"), ("dx", "dx", "dx"),
    ("eh", "eh", "eh"), ("el", "el", "l"), ("em", "m", "m"), ("en", "en", "n"),
    ("eng", "ng", "ng"), ("epi", "epi", "sil"), ("er", "er", "er"), ("ey", "ey", "ey"),
    ("f", "f", "f"), ("g", "g", "g"), ("gcl", "vcl", "sil"), ("h#", "sil", "sil"),
    ("hh", "hh", "hh"), ("hv", "hh", "hh"), ("ih", "ih", "ih"), ("ix", "ix", "ih"),
    ("iy", "iy", "iy"), ("jh", "jh", "jh"), ("k", "k", "k"), ("kcl", "cl", "sil"),
    ("l", "l", "l"), ("m", "m", "m"), ("n", "n", "n"), ("ng", "ng", "ng"),
    ("nx", "n", "n"), ("ow", "ow", "ow"), ("oy", "oy", "oy"), ("p", "p", "p"),
    ("pau", "sil", "sil"), ("pcl", "cl", "sil"), ("q", "", ""), ("r", "r", "r"),
    ("s", "s", "s"), ("sh", "sh", "sh"), ("t", "t", "t"), ("tcl", "cl", "sil"),
    ("th", "th", "th"), ("uh", "uh", "uh"), ("uw", "uw", "uw"), ("ux", "uw", "uw"),
    ("v", "v", "v"), ("w", "w", "w"), ("y", "y", "y"), ("z", "z", "z"),
    ("zh", "zh", "sh"),
)  # fmt: skip

#: TIMIT 61 phone -> Lee & Hon 48-phone class (``""``: deleted, i.e. ``q``).
TIMIT_61_TO_48: dict[str, str] = {p61: p48 for p61, p48, _ in _TIMIT_FOLDING}
#: Lee & Hon 48-phone class -> 39-phone scoring class.
TIMIT_48_TO_39: dict[str, str] = {p48: p39 for _, p48, p39 in _TIMIT_FOLDING if p48}
#: TIMIT 61 phone -> 39-phone class (the composition of the two maps above).
TIMIT_61_TO_39: dict[str, str] = {p61: p39 for p61, _, p39 in _TIMIT_FOLDING}

TIMIT_61_PHONES: tuple[str, ...] = tuple(p for p, _, _ in _TIMIT_FOLDING)
TIMIT_48_PHONES: tuple[str, ...] = tuple(sorted(TIMIT_48_TO_39))
TIMIT_39_PHONES: tuple[str, ...] = tuple(sorted(set(TIMIT_48_TO_39.values())))

_STANDARD_SETS: dict[str, tuple[tuple[str, ...], str]] = {
    "cmu39+sil": ((SILENCE,) + CMU_PHONES, SILENCE),
    "timit61": (TIMIT_61_PHONES, "h#"),
    "timit48": (TIMIT_48_PHONES, SILENCE),
    "timit39": (TIMIT_39_PHONES, SILENCE),
}
STANDARD_PHONE_SETS: tuple[str, ...] = tuple(_STANDARD_SETS)


def fold_timit(phones: Iterable[str], to: Literal[48, 39] = 39) -> list[str]:
    """Fold TIMIT phones to Lee & Hon's 48 or 39 classes; deleted phones (``q``) are removed.

    Input symbols may be TIMIT-61 or 48-class symbols (``cl``, ``vcl``, ``sil``), in any case;
    the two inventories agree wherever they share a symbol, so mixed input is well defined.
    Silence classes are kept (``sil``, and ``cl``/``vcl``/``epi`` at the 48 level).

    Example:
        >>> fold_timit(["h#", "dh", "ix", "q", "kcl", "k", "ae", "zh"], to=39)
        ['sil', 'dh', 'ih', 'sil', 'k', 'ae', 'sh']

    Raises:
        ValueError: for ``to`` other than 48/39 or a symbol that is not a TIMIT 61/48 phone.
    """
    if to == 48:
        table = _TO_48
    elif to == 39:
        table = _TO_39
    else:
        raise ValueError(f"fold_timit: to must be 48 or 39, got {to!r}")
    out: list[str] = []
    for p in phones:
        try:
            q = table[p.lower()]
        except KeyError:
            raise ValueError(f"fold_timit: {p!r} is not a TIMIT 61- or 48-phone symbol") from None
        if q:
            out.append(q)
    return out


_TO_48: dict[str, str] = {**{p: p for p in TIMIT_48_PHONES}, **TIMIT_61_TO_48}
_TO_39: dict[str, str] = {**TIMIT_48_TO_39, **TIMIT_61_TO_39}


# --- scoring ---------------------------------------------------------------------------------
#
# Scoring policy. phonrec symbols come from three inventories that share their spelling: CMU's
# 39 phones, TIMIT's 61 phones (and the 48 classes), and flite's, which are CMU's plus ``ax`` and
# ``pau``. Every CMU and flite symbol is *also* a TIMIT-61 symbol with the same meaning, so one
# symbol-wise map can serve all of them; a map that depended on where a symbol came from could
# not (``ao`` is spelt the same in TIMIT and CMU) and would score a TIMIT reference against a
# CMU-trained model inconsistently.
#
# ``scheme="timit39"`` (the default, used by ``metrics.per``): every symbol goes through the
#     Lee & Hon 61/48 -> 39 map, then silence is dropped. Scored symbols are the 38 non-silence
#     classes of ``TIMIT_39_PHONES``. For CMU symbols this merges exactly two pairs:
#     ``ao`` -> ``aa`` and ``zh`` -> ``sh``; the other 37 CMU phones are unchanged. This is the
#     number to compare with published TIMIT PERs.
# ``scheme="cmu39"``: the 39 CMU phones keep their identity (``ao`` and ``zh`` are not merged);
#     TIMIT-only symbols fold through the Lee & Hon 39 map (``ax``/``ax-h`` -> ``ah``,
#     ``ix`` -> ``ih``, ``axr`` -> ``er``, ``ux`` -> ``uw``, ``hv`` -> ``hh``, ``nx``/``en`` ->
#     ``n``, ``em`` -> ``m``, ``eng`` -> ``ng``, ``el`` -> ``l``, closures/``pau``/``h#``/``epi``
#     -> silence, ``q`` deleted), so ``dx`` is the only TIMIT class kept outside CMU's 39.
#     Use it for CMU-labelled corpora (speechocean762, flite synthesis) when the ``ao``/``aa``
#     and ``zh``/``sh`` distinctions matter.
# Under both schemes ``sil`` (and everything that folds to it) is removed before scoring.

ScoringScheme = Literal["timit39", "cmu39"]

_SCORE_TIMIT39: dict[str, str] = {**_TO_39, **{p: TIMIT_61_TO_39[p] for p in CMU_PHONES}}
_SCORE_CMU39: dict[str, str] = {**_TO_39, **{p: p for p in CMU_PHONES}}
_SCORING_MAPS: dict[str, dict[str, str]] = {"timit39": _SCORE_TIMIT39, "cmu39": _SCORE_CMU39}


def scoring_symbols(scheme: ScoringScheme = "timit39") -> tuple[str, ...]:
    """The symbols ``fold_for_scoring`` can return under ``scheme`` (sorted, no silence)."""
    if scheme not in _SCORING_MAPS:
        raise ValueError(f"scoring scheme must be one of {sorted(_SCORING_MAPS)}, got {scheme!r}")
    return tuple(sorted({v for v in _SCORING_MAPS[scheme].values() if v and v != SILENCE}))


def fold_for_scoring(phones: Iterable[str], scheme: ScoringScheme = "timit39") -> list[str]:
    """Map phonrec symbols (CMU, TIMIT 61/48, flite ``ax``/``pau``) to the scoring set, silence removed.

    See the scoring-policy comment above this function: ``"timit39"`` folds everything through
    Lee & Hon's 39-class map (CMU ``ao`` -> ``aa``, ``zh`` -> ``sh``); ``"cmu39"`` keeps CMU's
    39 phones and folds only TIMIT-only symbols. ``sil``, ``pau``, ``h#``, closures and ``epi``
    are dropped, and so is ``q``.

    Example:
        >>> fold_for_scoring(["sil", "hh", "ax", "l", "ow", "pau", "zh", "ao"])
        ['hh', 'ah', 'l', 'ow', 'sh', 'aa']

    Raises:
        ValueError: for an unknown scheme or a symbol outside those inventories (``<blank>``,
            upper-case or stressed CMU symbols: normalise them with ``cmu_to_phonrec`` first).
    """
    if scheme not in _SCORING_MAPS:
        raise ValueError(f"scoring scheme must be one of {sorted(_SCORING_MAPS)}, got {scheme!r}")
    table = _SCORING_MAPS[scheme]
    out: list[str] = []
    for p in phones:
        try:
            q = table[p]
        except (KeyError, TypeError):
            raise ValueError(
                f"fold_for_scoring: {p!r} is not a phonrec phone symbol (lower-case CMU/TIMIT/flite, no stress)"
            ) from None
        if q and q != SILENCE:
            out.append(q)
    return out
