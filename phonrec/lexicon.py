"""Pronunciation lexicons: word -> one or more phone strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable


class LexiconError(ValueError):
    """A malformed lexicon file or an out-of-vocabulary word under ``oov="error"``."""


def normalise_word(word: str) -> str:
    """Words are compared upper-case with surrounding white space removed."""
    return word.strip().upper()


@dataclass
class Lexicon:
    """Word -> list of pronunciations (each a tuple of phone symbols).

    Attributes:
        entries: normalised (upper-case) word -> pronunciations in file order, no duplicates.
    """

    entries: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    def add(self, word: str, phones: Iterable[str]) -> None:
        pron = tuple(phones)
        if not pron:
            raise LexiconError(f"word {word!r} has an empty pronunciation")
        prons = self.entries.setdefault(normalise_word(word), [])
        if pron not in prons:
            prons.append(pron)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and normalise_word(word) in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def words(self) -> list[str]:
        return sorted(self.entries)

    def pronunciations(self, word: str) -> list[tuple[str, ...]]:
        """All pronunciations of ``word``; raises ``LexiconError`` for an OOV word."""
        try:
            return self.entries[normalise_word(word)]
        except KeyError:
            raise LexiconError(f"out-of-vocabulary word {word!r}") from None

    def phone_inventory(self) -> set[str]:
        return {p for prons in self.entries.values() for pron in prons for p in pron}
