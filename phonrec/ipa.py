"""phonrec phone symbols -> IPA, for ``--ipa`` output (``phonrec-align``, ``phonrec-transcribe``).

phonrec's symbols are lower-case ARPAbet without stress (:mod:`phonrec.phones`): the 39 CMUdict
phones, the TIMIT 61 phones and Lee & Hon's 48 classes. Each has one IPA form, from the standard
ARPAbet/TIMIT tables (e.g. Wikipedia's "ARPABET" table): ``ah`` -> ``ʌ`` and ``ax`` -> ``ə`` (CMUdict
writes the schwa as unstressed ``AH0``, which phonrec's stress-free ``ah`` no longer tells apart),
``er`` -> ``ɝ``, ``axr`` -> ``ɚ``, ``r`` -> ``ɹ``, ``y`` -> ``j``, ``g`` -> ``ɡ`` (U+0261), diphthongs
and affricates as two characters without a tie bar (``aɪ``, ``tʃ``), as MFA's IPA dictionaries spell them.

Silence has no IPA symbol: every symbol that Lee & Hon's 39-class folding maps to silence (``sil``,
``h#``, ``pau``, ``epi``, the closures ``bcl`` ... ``kcl``, ``cl``, ``vcl``) becomes the empty label,
which is how MFA's TextGrids mark silence. The glottal stop ``q`` (deleted before scoring) is ``ʔ``.

Example:
    >>> phones_to_ipa(["sil", "hh", "ah", "l", "ow"])
    ['', 'h', 'ʌ', 'l', 'oʊ']
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from phonrec.phones import BLANK, TIMIT_61_TO_39, TIMIT_61_TO_48, PhoneSet

#: phonrec symbol -> IPA, for every sounding symbol of the built-in inventories.
PHONE_TO_IPA: dict[str, str] = {
    # the 39 CMUdict phones
    "aa": "ɑ", "ae": "æ", "ah": "ʌ", "ao": "ɔ", "aw": "aʊ", "ay": "aɪ", "b": "b", "ch": "tʃ",
    "d": "d", "dh": "ð", "eh": "ɛ", "er": "ɝ", "ey": "eɪ", "f": "f", "g": "ɡ", "hh": "h",
    "ih": "ɪ", "iy": "i", "jh": "dʒ", "k": "k", "l": "l", "m": "m", "n": "n", "ng": "ŋ",
    "ow": "oʊ", "oy": "ɔɪ", "p": "p", "r": "ɹ", "s": "s", "sh": "ʃ", "t": "t", "th": "θ",
    "uh": "ʊ", "uw": "u", "v": "v", "w": "w", "y": "j", "z": "z", "zh": "ʒ",
    # TIMIT-only phones (and the 48-class ``ix``, ``el``, ``en``, ``dx``, ``ax``)
    "ax": "ə", "ax-h": "ə̥", "axr": "ɚ", "dx": "ɾ", "el": "l̩", "em": "m̩", "en": "n̩",
    "eng": "ŋ̍", "hv": "ɦ", "ix": "ɨ", "nx": "ɾ̃", "q": "ʔ", "ux": "ʉ",
}  # fmt: skip

#: Symbols written as the empty label (silence): those that fold to ``sil`` in the 39-class map.
_SILENT_61 = {p for p, c in TIMIT_61_TO_39.items() if c == "sil"}  # h#, pau, epi, bcl ... kcl
SILENCE_SYMBOLS: frozenset[str] = frozenset({"sil"} | _SILENT_61 | {TIMIT_61_TO_48[p] for p in _SILENT_61})


def to_ipa(phone: str) -> str:
    """One phonrec symbol -> its IPA form (``""`` for silence).

    Raises:
        ValueError: for a symbol with no IPA form (``<blank>``, a stressed or upper-case CMUdict
            symbol: normalise it with :func:`phonrec.phones.cmu_to_phonrec` first).
    """
    if phone in SILENCE_SYMBOLS:
        return ""
    try:
        return PHONE_TO_IPA[phone]
    except (KeyError, TypeError):
        raise ValueError(
            f"phone {phone!r} has no IPA form (phonrec symbols are lower-case ARPAbet/TIMIT without stress)"
        ) from None


def phones_to_ipa(phones: Iterable[str]) -> list[str]:
    """:func:`to_ipa` of each symbol, in order (silences become ``""``)."""
    return [to_ipa(p) for p in phones]


def check_ipa(phone_set: PhoneSet, model_dir: str | Path) -> None:
    """Raise ``ValueError`` naming ``model_dir``'s phones that have no IPA form (``<blank>`` needs none)."""
    missing = [p for p in phone_set.symbols if p != BLANK and p not in SILENCE_SYMBOLS and p not in PHONE_TO_IPA]
    if missing:
        raise ValueError(f"{model_dir}/phones.txt: no IPA form for {', '.join(missing)} (phonrec.ipa.PHONE_TO_IPA)")
