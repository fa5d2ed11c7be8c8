"""Property-based tests (hypothesis): parser round trips and edit-distance / error-rate laws."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from phonrec.data.datadir import DataDir, read_kaldi_map, write_kaldi_map
from phonrec.data.segments import Segment
from phonrec.data.textgrid import read_textgrid, write_textgrid
from phonrec.data.timit import read_phn, write_phn
from phonrec.lexicon import Lexicon
from phonrec.metrics import ErrorCounts, edit_distance, error_rate
from phonrec.phones import BLANK, PhoneSet

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Tokens: letters, digits, punctuation and symbols of any script; never white space or control
# characters (those separate fields in every format), never "|" (a wav.scp pipe).
_token_chars = st.characters(categories=("L", "N", "P", "S"), exclude_characters="|")
token = st.text(_token_chars, min_size=1, max_size=8)
_phone = st.from_regex(r"[a-z][a-z0-9]{0,3}", fullmatch=True)  # never parses as a number
words = st.lists(st.text(st.characters(categories=("Lu", "Nd", "Pd")), min_size=1, max_size=6), max_size=5)


def _tmp() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory()


# --- parsers -------------------------------------------------------------------------------------


@SETTINGS
@given(st.dictionaries(token, st.lists(token, min_size=1, max_size=4).map(" ".join), max_size=8))
def test_kaldi_map_round_trip(entries: dict[str, str]) -> None:
    with _tmp() as d:
        write_kaldi_map(Path(d) / "f", entries)
        assert read_kaldi_map(Path(d) / "f") == entries


@SETTINGS
@given(
    st.dictionaries(
        token,
        st.tuples(token, words.map(" ".join), token, st.lists(_phone, min_size=1, max_size=5)),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_datadir_round_trip(utts: dict[str, tuple], with_phones: bool) -> None:
    with _tmp() as d:
        root = Path(d)
        data = DataDir(
            wavs={u: root / "audio" / f"{name}.wav" for u, (name, _, _, _) in utts.items()},
            text={u: text for u, (_, text, _, _) in utts.items()},
            utt2spk={u: spk for u, (_, _, spk, _) in utts.items()},
            phones={u: ph for u, (_, _, _, ph) in utts.items()} if with_phones else None,
        )
        data.save(root / "data")
        loaded = DataDir.load(root / "data")
        assert loaded == data  # path is not compared
        assert loaded.utts == sorted(utts)


@SETTINGS
@given(st.lists(token.filter(lambda s: s != BLANK), min_size=1, max_size=20, unique=True), st.booleans())
def test_phone_set_file_round_trip(symbols: list[str], blank: bool) -> None:
    ps = PhoneSet.from_symbols(symbols, blank=blank)
    with _tmp() as d:
        ps.to_file(Path(d) / "phones.txt")
        back = PhoneSet.from_file(Path(d) / "phones.txt")
    assert back == ps and back.symbols == ((BLANK,) if blank else ()) + tuple(symbols)


_pron = st.lists(_phone, min_size=1, max_size=5).map(tuple)
_prob = st.floats(min_value=1e-6, max_value=1.0, allow_nan=False, exclude_min=False)


@SETTINGS
@given(
    st.dictionaries(
        st.text(st.characters(categories=("Lu", "Nd")), min_size=1, max_size=6),
        st.lists(st.tuples(_pron, _prob), min_size=1, max_size=3, unique_by=lambda t: t[0]),
        min_size=1,
        max_size=8,
    ),
    st.booleans(),
)
def test_lexicon_kaldi_round_trip(entries: dict[str, list], with_probs: bool) -> None:
    lex = Lexicon()
    for word, prons in entries.items():
        for pron, prob in prons:
            lex.add(word, pron, prob if with_probs else None)
    with _tmp() as d:
        lex.to_kaldi(Path(d) / "lexicon.txt")
        back = Lexicon.from_kaldi(Path(d) / "lexicon.txt")
    assert back.entries == lex.entries
    if with_probs:  # exactly, not to 6 digits
        assert back.probs == lex.probs


@st.composite
def _sample_segments(draw) -> list[tuple[int, int, str]]:
    n = draw(st.integers(1, 8))
    cuts = sorted(draw(st.lists(st.integers(0, 10**7), min_size=2 * n, max_size=2 * n)))
    return [(cuts[2 * i], cuts[2 * i + 1], draw(token)) for i in range(n)]


@SETTINGS
@given(_sample_segments(), st.sampled_from([8000, 16000, 44100]))
def test_phn_round_trip(segs: list[tuple[int, int, str]], rate: int) -> None:
    segments = [Segment(label, a / rate, b / rate) for a, b, label in segs]
    with _tmp() as d:
        write_phn(Path(d) / "x.phn", segments, sample_rate=rate)
        text = (Path(d) / "x.phn").read_text()
        back = read_phn(Path(d) / "x.phn", sample_rate=rate)
    assert text == "".join(f"{a} {b} {label}\n" for a, b, label in segs)
    assert back == segments


_label = st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), max_size=6)  # quotes and spaces too


@st.composite
def _tiers(draw) -> tuple[dict[str, list[Segment]], float]:
    names = draw(st.lists(st.text(_token_chars, min_size=1, max_size=5), min_size=1, max_size=3, unique=True))
    tiers = {}
    xmax_ms = draw(st.integers(10, 100000))
    for name in names:
        cuts = sorted(set(draw(st.lists(st.integers(0, xmax_ms), min_size=2, max_size=10))))
        segs = []
        for a, b in zip(cuts[::2], cuts[1::2]):
            segs.append(Segment(draw(_label), a / 1000, b / 1000))
        tiers[name] = segs
    return tiers, xmax_ms / 1000


def _filled(segments: list[Segment], xmax: float) -> list[Segment]:
    """What Praat requires (and write_textgrid writes): gaps as empty intervals over [0, xmax]."""
    out, t = [], 0.0
    for s in segments:
        if s.start > t:
            out.append(Segment("", t, s.start))
        out.append(s)
        t = s.end
    if t < xmax or not out:
        out.append(Segment("", t, xmax))
    return out


@SETTINGS
@given(_tiers())
def test_textgrid_round_trip(tiers_xmax) -> None:
    tiers, xmax = tiers_xmax
    with _tmp() as d:
        write_textgrid(Path(d) / "t.TextGrid", tiers, xmax)
        back = read_textgrid(Path(d) / "t.TextGrid")
    assert list(back) == list(tiers)
    for name, segs in tiers.items():
        assert back[name] == _filled(segs, xmax), name


# --- metrics ---------------------------------------------------------------------------------------

seq = st.lists(st.sampled_from("abcde"), max_size=9)


@SETTINGS
@given(seq, seq)
def test_edit_distance_is_symmetric_and_consistent(a: list[str], b: list[str]) -> None:
    ab, ba = edit_distance(a, b), edit_distance(b, a)
    assert ab.errors == ba.errors
    assert (ab.errors == 0) == (a == b)
    assert ab.reference_length == len(a)
    assert ab.correct + ab.substitutions + ab.deletions == len(a)
    assert ab.correct + ab.substitutions + ab.insertions == len(b)
    assert abs(len(a) - len(b)) <= ab.errors <= max(len(a), len(b))


@SETTINGS
@given(seq, seq, seq)
def test_edit_distance_triangle_inequality(a: list[str], b: list[str], c: list[str]) -> None:
    assert edit_distance(a, c).errors <= edit_distance(a, b).errors + edit_distance(b, c).errors


@SETTINGS
@given(seq, seq)
def test_rate_bounds(a: list[str], b: list[str]) -> None:
    rate = edit_distance(a, b).rate
    if not a:
        assert rate == (0.0 if not b else float("inf"))
    else:
        assert 0.0 <= rate <= max(len(a), len(b)) / len(a)
        if len(b) <= len(a):
            assert rate <= 1.0  # without extra hypothesis symbols the rate cannot exceed 100 %


@SETTINGS
@given(st.lists(st.tuples(seq, seq), max_size=6))
def test_corpus_errors_are_sums_not_averages(pairs: list[tuple[list[str], list[str]]]) -> None:
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    total = error_rate(refs, hyps)
    each = [edit_distance(r, h) for r, h in pairs]
    assert total.errors == sum(c.errors for c in each)
    assert total.reference_length == sum(len(r) for r in refs)
    assert total.utterances == len(pairs)
    assert total.utterances_with_errors == sum(r != h for r, h in pairs)
    assert total == ErrorCounts.sum(each) == sum(each, ErrorCounts())
    ref_len = sum(len(r) for r in refs)
    if ref_len:
        assert total.rate == sum(c.errors for c in each) / ref_len
    # keyed by utterance id, the order of the mapping does not matter
    keyed = {f"u{i}": p for i, p in enumerate(pairs)}
    assume(keyed)
    assert error_rate({u: r for u, (r, _) in reversed(keyed.items())}, {u: h for u, (_, h) in keyed.items()}) == total
