"""Pronunciations (user dictionary over CMUdict over flite's letter-to-sound rules), word
normalisation, and the phonrec -> IPA table."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from phonrec.ipa import PHONE_TO_IPA, SILENCE_SYMBOLS, check_ipa, phones_to_ipa, to_ipa
from phonrec.lexicon import Lexicon
from phonrec.phones import CMU_PHONES, PhoneSet
from phonrec.pronounce import FLITE_METHOD, FliteG2P, Guess, Pronouncer, PronunciationError

needs_t2p = pytest.mark.skipif(shutil.which("t2p") is None, reason="flite's t2p is not installed (Debian 'flite')")


def small_cmudict() -> Lexicon:
    lex = Lexicon()
    for word, phones in [
        ("HELLO", "hh ah l ow"),
        ("HELLO", "hh eh l ow"),
        ("WORLD", "w er l d"),
        ("DON'T", "d ow n t"),
        ("U.S.", "y uw eh s"),
        ("BLUE", "b l uw"),
        ("GREEN", "g r iy n"),
        ("CO-OP", "k ow aa p"),
    ]:
        lex.add(word, phones.split())
    return lex


class FakeG2P:
    """A letter-per-phone guesser: deterministic and independent of flite."""

    method = "one phone per letter"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, word: str) -> tuple[str, ...]:
        self.calls.append(word)
        return tuple("ah" if c in "AEIOU" else "t" for c in word if c.isalpha())


def test_user_dictionary_wins_over_cmudict_which_wins_over_the_guess(tmp_path: Path) -> None:
    user = tmp_path / "dict.txt"
    user.write_text("hello HH AH0 L OW1\nzorp Z AO1 R P\n", encoding="utf-8")  # CMUdict phones with stress
    g2p = FakeG2P()
    pr = Pronouncer.from_files(user, g2p=g2p)
    pr._cmudict = small_cmudict()  # the layer from_files would load: a small stand-in
    words, prons = pr.pronounce("Hello zorp world blick")
    assert words == ["HELLO", "ZORP", "WORLD", "BLICK"]
    assert prons[0] == [("hh", "ah", "l", "ow")]  # the user's one pronunciation, not CMUdict's two
    assert prons[1] == [("z", "ao", "r", "p")]
    assert prons[2] == [("w", "er", "l", "d")]
    assert prons[3] == [("t", "t", "ah", "t", "t")]  # guessed
    assert pr.guesses == {"BLICK": Guess("BLICK", ("t", "t", "ah", "t", "t"), "one phone per letter")}
    pr.pronunciations(["blick", "BLICK"])
    assert g2p.calls == ["BLICK"]  # a guess is made once


def test_words_are_normalised_like_mfa_transcripts() -> None:
    pr = Pronouncer(cmudict=small_cmudict(), g2p=FakeG2P())
    assert pr.words("“Hello,” world! -- ... don’t") == ["HELLO", "WORLD", "DON'T"]
    assert pr.words("the U.S. co-op") == ["THE", "U.S.", "CO-OP"]  # kept whole: the dictionary has them
    assert pr.words("blue-green (blue)") == ["BLUE", "GREEN", "BLUE"]  # an unknown compound is split
    assert pr.words("dogs' 42") == ["DOGS'", "42"]  # apostrophes kept; digits can be guessed


@pytest.mark.parametrize("text, bad", [("x@y", "'@'"), ("café", "'é'"), ("rock & roll", "'&'")])
def test_unknown_characters_name_the_word_and_the_character(text: str, bad: str) -> None:
    pr = Pronouncer(cmudict=small_cmudict(), g2p=FakeG2P())
    with pytest.raises(PronunciationError, match=rf"utt1: unknown characters {bad} in the word"):
        pr.words(text, source="utt1")


def test_a_dictionary_word_may_hold_any_character() -> None:
    user = Lexicon()
    user.add("café", ["k", "ae", "f", "ey"])
    pr = Pronouncer(user, cmudict=small_cmudict(), g2p=None)
    assert pr.pronounce("Café!") == (["CAFÉ"], [[("k", "ae", "f", "ey")]])


def test_without_a_g2p_the_unknown_words_are_named() -> None:
    pr = Pronouncer(cmudict=small_cmudict(), g2p=None)
    with pytest.raises(PronunciationError, match=r"a\.wav: no pronunciation for BLICK, ZORP \(not in the dictionary"):
        pr.pronounce("hello blick zorp blick", source="a.wav")


def test_guesses_are_written_as_a_dictionary_that_reads_back(tmp_path: Path) -> None:
    pr = Pronouncer(cmudict=small_cmudict(), g2p=FakeG2P())
    pr.pronounce("hello zorp blick")
    assert pr.write_guesses(tmp_path / "oov.txt") == 2
    assert (tmp_path / "oov.txt").read_text(encoding="utf-8") == "BLICK t t ah t t\nZORP t ah t t\n"
    again = Pronouncer.from_files(tmp_path / "oov.txt", g2p=None)
    again._cmudict = small_cmudict()
    assert again.pronounce("zorp blick")[1] == [[("t", "ah", "t", "t")], [("t", "t", "ah", "t", "t")]]
    assert again.guesses == {}


@needs_t2p
def test_flite_letter_to_sound_gives_phonrec_symbols() -> None:
    g2p = FliteG2P()
    assert g2p("about") == ("ah", "b", "aw", "t")  # t2p prints 'pau ax b aw1 t pau'
    guess = g2p("blorptastic")
    assert guess[:3] == ("b", "l", "ao") and set(guess) <= set(CMU_PHONES)
    pr = Pronouncer(cmudict=small_cmudict())  # g2p="auto": flite
    pr.pronounce("hello blorptastic")
    assert pr.guesses["BLORPTASTIC"] == Guess("BLORPTASTIC", guess, FLITE_METHOD)


def test_the_real_cmudict_layer() -> None:
    pr = Pronouncer(g2p=None)
    words, prons = pr.pronounce("The birch canoe.")
    assert words == ["THE", "BIRCH", "CANOE"]
    assert ("dh", "ah") in prons[0] and prons[1] == [("b", "er", "ch")] and prons[2] == [("k", "ah", "n", "uw")]


# --- IPA ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PhoneSet.STANDARD_NAMES)
def test_every_symbol_of_the_standard_phone_sets_has_an_ipa_form(name: str) -> None:
    ps = PhoneSet.standard(name, blank=True)
    check_ipa(ps, name)
    for p in ps.symbols[1:]:
        ipa = to_ipa(p)
        assert (ipa == "") == (p in SILENCE_SYMBOLS), p
        assert ipa.isprintable() and " " not in ipa


def test_ipa_values() -> None:
    assert phones_to_ipa(["sil", "dh", "ah", "b", "er", "ch", "k", "ax", "n", "uw", "h#", "q"]) == [
        "", "ð", "ʌ", "b", "ɝ", "tʃ", "k", "ə", "n", "u", "", "ʔ",
    ]  # fmt: skip
    assert len(set(PHONE_TO_IPA[p] for p in CMU_PHONES)) == 39  # no two CMU phones share a form
    with pytest.raises(ValueError, match=r"phone 'AH0' has no IPA form"):
        to_ipa("AH0")
    with pytest.raises(ValueError, match=r"M/phones.txt: no IPA form for xx"):
        check_ipa(PhoneSet.from_symbols(["sil", "ah", "xx"]), "M")
