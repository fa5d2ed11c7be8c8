"""Phone sets (symbols <-> ids) and folding maps between phone inventories.

A phone set is a plain text file ``phones.txt``: one symbol per line, id = line number
(0-based). CTC models reserve id 0 for ``<blank>``. Silence is a single symbol, ``sil``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

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
            if not s or any(c.isspace() for c in s):
                raise PhoneSetError(f"phone symbol {i} is empty or contains white space: {s!r}")
            if s in seen:
                raise PhoneSetError(f"phone symbol {s!r} appears twice")
            seen.add(s)
        if BLANK in seen and self.symbols[0] != BLANK:
            raise PhoneSetError(f"{BLANK} must have id 0, found at id {self.symbols.index(BLANK)}")
        object.__setattr__(self, "_ids", {s: i for i, s in enumerate(self.symbols)})

    # construction -------------------------------------------------------------------------
    @classmethod
    def from_symbols(cls, symbols: Iterable[str], *, blank: bool = False, silence: str = SILENCE) -> "PhoneSet":
        """Build from symbols (blank, if asked for, is put first; duplicates are an error)."""
        body = [s for s in symbols if s != BLANK]
        return cls(tuple(([BLANK] if blank else []) + body), silence=silence)

    @classmethod
    def from_file(cls, path: str | Path, *, silence: str = SILENCE) -> "PhoneSet":
        """Read ``phones.txt`` (one symbol per line; a Kaldi ``sym id`` second column is accepted)."""
        path = Path(path)
        symbols: list[str] = []
        with open(path, encoding="utf-8") as f:
            for line_no, raw in enumerate(f, start=1):
                fields = raw.split()
                if not fields:
                    raise PhoneSetError(f"{path}:{line_no}: empty line (ids are line numbers, so blank lines are not allowed)")
                if len(fields) == 2 and fields[1].isdigit():
                    if int(fields[1]) != len(symbols):
                        raise PhoneSetError(f"{path}:{line_no}: id {fields[1]} does not match its line (expected {len(symbols)})")
                elif len(fields) != 1:
                    raise PhoneSetError(f"{path}:{line_no}: expected one symbol per line, got {raw.strip()!r}")
                symbols.append(fields[0])
        try:
            return cls(tuple(symbols), silence=silence)
        except PhoneSetError as e:
            raise PhoneSetError(f"{path}: {e}") from None

    def to_file(self, path: str | Path) -> None:
        """Write ``phones.txt`` (one symbol per line)."""
        Path(path).write_text("".join(s + "\n" for s in self.symbols), encoding="utf-8")

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
            raise PhoneSetError(f"{where}unknown phone {e.args[0]!r} (not in the {len(self)}-symbol phone set)") from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> symbols."""
        return [self.symbols[int(i)] for i in ids]

    def with_blank(self) -> "PhoneSet":
        """The same phones with ``<blank>`` at id 0 (for CTC)."""
        return self if self.has_blank else PhoneSet((BLANK,) + self.symbols, silence=self.silence)

    def without_blank(self) -> "PhoneSet":
        return PhoneSet(self.symbols[1:], silence=self.silence) if self.has_blank else self


# --- symbol normalisation between inventories ------------------------------------------------
# Inside phonrec, phones are lower-case ARPAbet without stress digits, plus ``sil``.

_FLITE_TO_PHONREC = {"ax": "ah", "pau": "sil", "h#": "sil"}


def strip_stress(phone: str) -> str:
    """``AH0`` -> ``AH``: drop CMUdict's trailing stress digit (and speechocean762's ``_B/_I/_E/_S`` tag)."""
    phone = phone.split("_", 1)[0] if "_" in phone and phone not in ("_",) else phone
    return phone.rstrip("012")


def cmu_to_phonrec(phone: str) -> str:
    """A CMUdict / speechocean762 phone (``AO0_I``) -> phonrec's symbol (``ao``)."""
    return strip_stress(phone).lower()


def flite_to_phonrec(phone: str) -> str:
    """A flite/festival phone (``ax``, ``pau``) -> phonrec's symbol (``ah``, ``sil``)."""
    phone = phone.lower()
    return _FLITE_TO_PHONREC.get(phone, phone)
