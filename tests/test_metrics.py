"""Metrics against brute-force dynamic programmes and hand-built cases."""

from __future__ import annotations

import random
import statistics
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from phonrec.metrics import (
    ErrorCounts,
    SpeakerSummary,
    align_sequences,
    boundary_accuracy,
    boundary_counts,
    confusion_matrix,
    counts_by_speaker,
    counts_from_alignment,
    edit_distance,
    error_rate,
    format_report,
    format_speakers,
    frame_accuracy,
    per,
    per_by_utterance,
    speaker_cells,
    speaker_summary,
    wer,
    wer_by_utterance,
)


def brute(ref, hyp):
    """Independent recursion: the lexicographically smallest (edits, indels, S, D, I) over all alignments."""
    ref, hyp = tuple(ref), tuple(hyp)

    @lru_cache(maxsize=None)
    def best(i, j):
        # best alignment of ref[i:] with hyp[j:] as (edits, indels, S, D, I)
        if i == len(ref) and j == len(hyp):
            return (0, 0, 0, 0, 0)
        options = []
        if i < len(ref) and j < len(hyp):
            e, n, s, d, x = best(i + 1, j + 1)
            sub = ref[i] != hyp[j]
            options.append((e + sub, n, s + sub, d, x))
        if i < len(ref):
            e, n, s, d, x = best(i + 1, j)
            options.append((e + 1, n + 1, s, d + 1, x))
        if j < len(hyp):
            e, n, s, d, x = best(i, j + 1)
            options.append((e + 1, n + 1, s, d, x + 1))
        return min(options)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * (len(ref) + len(hyp)) + 100))
    try:
        return best(0, 0)
    finally:
        sys.setrecursionlimit(limit)


def plain_levenshtein(a, b):
    """Textbook unit-cost full-matrix DP (total only)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


seqs = st.lists(st.sampled_from("abcd"), max_size=9)


@settings(max_examples=300, deadline=None)
@given(seqs, seqs)
def test_edit_distance_matches_brute_force(ref, hyp):
    c = edit_distance(ref, hyp)
    e, _, s, d, i = brute(ref, hyp)
    assert (c.substitutions, c.deletions, c.insertions, c.reference_length) == (s, d, i, len(ref))
    assert c.errors == e == plain_levenshtein(ref, hyp)
    assert c.utterances == 1 and c.utterances_with_errors == int(e > 0)


@settings(max_examples=200, deadline=None)
@given(seqs, seqs)
def test_alignment_consistent_with_counts(ref, hyp):
    pairs = align_sequences(ref, hyp)
    assert [r for r, _ in pairs if r is not None] == ref
    assert [h for _, h in pairs if h is not None] == hyp
    assert all(not (r is None and h is None) for r, h in pairs)
    assert counts_from_alignment(pairs) == edit_distance(ref, hyp)


def test_long_sequences_numpy_path():
    # lengths 60-120 take the vectorised row recurrence; check against both references
    rng = random.Random(0)
    for _ in range(6):
        ref = [rng.choice("abcdefgh") for _ in range(rng.randint(60, 120))]
        hyp = [p for p in ref if rng.random() > 0.15]
        hyp = [rng.choice("abcdefgh") if rng.random() < 0.2 else p for p in hyp]
        hyp[rng.randint(0, len(hyp)) : 0] = list("xyz")
        c = edit_distance(ref, hyp)
        e, _, s, d, i = brute(ref, hyp)
        assert (c.substitutions, c.deletions, c.insertions) == (s, d, i)
        assert c.errors == plain_levenshtein(ref, hyp)
        assert counts_from_alignment(align_sequences(ref, hyp)) == c


def test_hand_alignments_and_tie_break():
    assert align_sequences(list("abcd"), list("acde")) == [("a", "a"), ("b", None), ("c", "c"), ("d", "d"), (None, "e")]
    # equal-cost: 2 substitutions vs. 1 deletion + 1 insertion -> substitutions preferred
    assert align_sequences(list("ab"), list("ba")) == [("a", "b"), ("b", "a")]
    assert edit_distance(list("ab"), list("ba")) == ErrorCounts(2, 0, 0, 2, 1, 1)
    assert edit_distance([], ["a", "b"]) == ErrorCounts(0, 0, 2, 0, 1, 1)
    assert edit_distance(["a"], []) == ErrorCounts(0, 1, 0, 1, 1, 1)
    assert align_sequences([], []) == []
    assert edit_distance(np.array([1, 2, 3]), torch.tensor([1, 3])).deletions == 1
    with pytest.raises(ValueError, match="str"):
        edit_distance("abc", ["a"])


def test_error_counts_arithmetic():
    a = ErrorCounts(1, 0, 0, 2, 1, 1)
    b = ErrorCounts(0, 1, 2, 8, 1, 1)
    assert a + b == ErrorCounts(1, 1, 2, 10, 2, 2)
    assert sum([a, b]) == a + b == ErrorCounts.sum([a, b])
    assert ErrorCounts.sum([]) == ErrorCounts()
    assert (a + b).rate == pytest.approx(4 / 10)
    assert ErrorCounts(0, 0, 0, 0).rate == 0.0
    assert ErrorCounts(0, 0, 3, 0).rate == float("inf")
    assert b.correct == 7 and b.errors == 3
    with pytest.raises(ValueError, match="exceed"):
        ErrorCounts(2, 1, 0, 2)
    with pytest.raises(ValueError, match="non-negative"):
        ErrorCounts(-1, 0, 0, 2)


def test_corpus_per_sums_errors_not_rates():
    refs = [["k", "ae"], ["dh", "ih", "s", "ih", "z", "ah", "k", "ae"]]
    hyps = [["k", "eh"], ["dh", "ih", "s", "ih", "z", "ah", "k", "ae"]]
    c = per(refs, hyps)
    # hand computation: 1 substitution in 2 + 8 reference phones
    assert (c.substitutions, c.deletions, c.insertions, c.reference_length) == (1, 0, 0, 10)
    assert c.rate == pytest.approx(0.1)  # the mean of per-utterance rates would be 0.25
    assert c.utterances == 2 and c.utterances_with_errors == 1


def test_per_folding_and_silence():
    ref = ["h#", "sh", "ix", "q", "bcl", "b", "ao", "pau", "zh", "h#"]  # TIMIT-61
    hyp = ["sil", "sh", "ih", "b", "aa", "sil", "sh"]  # CMU-style output
    assert per([ref], [hyp]).errors == 0  # Lee & Hon 39: ix=ih, ao=aa, zh=sh, closures/silence dropped
    c = per([ref], [hyp], scheme="cmu39")
    assert (c.substitutions, c.reference_length) == (2, 5)  # ao/aa and zh/sh stay distinct
    raw = per([["sil", "ao", "b"]], [["aa", "b", "sil"]], fold=False)
    assert (raw.substitutions, raw.reference_length) == (1, 2)
    with pytest.raises(ValueError, match=r"utt2 \(hyp\).*'XX'"):
        per({"utt2": ["aa"]}, {"utt2": ["XX"]})


def test_error_rate_mappings_and_wer():
    refs = {"u1": "the cat sat".split(), "u2": ["on", "it"]}
    hyps = {"u2": ["on"], "u1": "the cat sat".split()}
    assert error_rate(refs, hyps) == ErrorCounts(0, 1, 0, 5, 2, 1)
    with pytest.raises(ValueError, match=r"no hypothesis for \['u2'\]"):
        error_rate(refs, {"u1": ["the"]})
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        error_rate([["a"], ["b"]], [["a"]])
    w = wer(["The cat sat on the mat", "hello"], ["the CAT sat on mat", "hello world"])
    assert (w.substitutions, w.deletions, w.insertions, w.reference_length) == (0, 1, 1, 7)


def test_confusion_matrix_hand_built():
    pairs = align_sequences(list("abca"), list("abda")) + [("a", None), (None, "b"), ("b", "a")]
    m = confusion_matrix(pairs, ["a", "b", "c", "d"])
    expect = np.zeros((5, 5), dtype=np.int64)
    expect[0, 0] = 2  # a->a twice
    expect[1, 1] = 1  # b->b
    expect[2, 3] = 1  # c->d
    expect[0, 4] = 1  # a deleted
    expect[4, 1] = 1  # b inserted
    expect[1, 0] = 1  # b->a
    np.testing.assert_array_equal(m, expect)
    with pytest.raises(ValueError, match="'z' not in symbols"):
        confusion_matrix([("a", "z")], ["a", "b"])


def test_frame_accuracy():
    assert frame_accuracy(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx(0.75)
    g = torch.Generator().manual_seed(0)
    ref = torch.randint(0, 4, (3, 7), generator=g)
    hyp = torch.randint(0, 4, (3, 7), generator=g)
    lengths = torch.tensor([7, 3, 5])
    mask = torch.arange(7)[None, :] < lengths[:, None]
    expect = ((ref == hyp) & mask).sum().item() / mask.sum().item()
    assert frame_accuracy(ref, hyp, lengths) == pytest.approx(expect)
    assert frame_accuracy(ref.numpy(), hyp.numpy(), lengths.numpy()) == pytest.approx(expect)
    assert frame_accuracy([[1, 2], [3, 3, 3]], [[1, 1], [3, 3, 0]]) == pytest.approx(3 / 5)
    assert frame_accuracy([np.array([1, 2]), np.array([3, 3, 3])], [[1, 1], [3, 3, 0]]) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="utterance 1: 3 reference frames but 2"):
        frame_accuracy([[1, 2], [3, 3, 3]], [[1, 1], [3, 3]])
    with pytest.raises(ValueError, match="no frames"):
        frame_accuracy([], [])


def test_frame_accuracy_with_frame_factor():
    """A hypothesis frame of a stacked/subsampled model stands for ``frame_factor`` reference frames."""
    ref = ["aa", "aa", "aa", "b", "b", "sil"]
    assert frame_accuracy(ref, ["aa", "b"], frame_factor=3) == pytest.approx(5 / 6)  # aa aa aa | b b b
    assert frame_accuracy(ref[:5], ["aa", "b"], frame_factor=3) == pytest.approx(1.0)  # last frame covers 2
    # against an independent expansion: label k of the hypothesis covers reference frames [k f, (k + 1) f)
    rng = random.Random(0)
    for f in (1, 2, 3, 4):
        for _ in range(20):
            r = [rng.choice("ab") for _ in range(rng.randint(1, 13))]
            h = [rng.choice("ab") for _ in range(-(-len(r) // f))]
            expect = sum(r[t] == h[t // f] for t in range(len(r))) / len(r)
            assert frame_accuracy(r, h, frame_factor=f) == pytest.approx(expect)
    # mappings utterance id -> labels (the decode command's form), errors naming the utterance
    assert frame_accuracy({"u1": ref, "u2": ["b"]}, {"u1": ["aa", "b"], "u2": ["aa"]}, frame_factor=3) == 5 / 7
    with pytest.raises(ValueError, match="u1: 6 reference frames but 3 hypothesis frames of 3 frames each"):
        frame_accuracy({"u1": ref}, {"u1": ["aa", "b", "b"]}, frame_factor=3)
    with pytest.raises(ValueError, match=r"utterance 0: 6 reference frames but 2 hypothesis frames$"):
        frame_accuracy(ref, ["aa", "b"])
    # a padded batch: lengths count reference frames, the hypothesis is cut to ceil(length / f)
    assert frame_accuracy([ref, ref], [["aa", "b"], ["aa", "aa"]], [6, 2], frame_factor=3) == pytest.approx(7 / 8)
    with pytest.raises(ValueError, match="frame_factor must be an int >= 1"):
        frame_accuracy(ref, ref, frame_factor=0)


def test_per_and_wer_give_the_decode_commands_counts():
    """``per`` / ``wer`` equal the per-utterance sum the decode command computed before it used them:
    ``edit_distance(fold_for_scoring(ref), fold_for_scoring(hyp))`` and ``edit_distance`` of the
    split words; including an utterance with no reference phones (its hypothesis phones are all
    insertions), one whose reference is only silence, an empty hypothesis, and upper-case words."""
    from phonrec.phones import fold_for_scoring

    refs = {
        "u1": ["sil", "hh", "ax", "l", "ow", "sil"],
        "u2": [],
        "u3": ["sil", "pau"],
        "u4": ["k", "ae", "t"],
        "u5": ["s", "ih", "t", "zh"],
    }
    hyps = {"u1": ["hh", "ah", "l", "ow", "sil"], "u2": ["aa", "b"], "u3": ["k"], "u4": [], "u5": ["s", "ih", "sh"]}
    by_hand = ErrorCounts(0, 0, 0, 0)
    for u in hyps:
        by_hand = by_hand + edit_distance(fold_for_scoring(refs[u]), fold_for_scoring(hyps[u]))
    assert per(refs, hyps) == by_hand
    assert (by_hand.reference_length, by_hand.insertions, by_hand.deletions, by_hand.utterances) == (11, 3, 4, 5)
    text = {"u1": "HELLO WORLD", "u2": "", "u3": "A CAT", "u4": "THE CAT SAT"}
    words = {"u1": ["HELLO", "WORD"], "u2": ["A"], "u3": ["A", "CAT"], "u4": []}
    by_hand = ErrorCounts(0, 0, 0, 0)
    for u in words:
        by_hand = by_hand + edit_distance(text[u].split(), words[u])
    assert wer(text, words) == by_hand == ErrorCounts(1, 3, 1, 7, 4, 3)


def test_format_report_of_a_decode():
    phones = ErrorCounts(2, 1, 1, 10, 3, 2)
    words = ErrorCounts(1, 0, 0, 4, 3, 1)
    text = format_report(
        phones,
        title="test: lexicon decoder",
        words=words,
        frame_acc=0.8125,
        empty_hypotheses=1,
        skipped=2,
        rtf=(0.5, 0.25, 0.25),
    )
    lines = text.splitlines()
    assert lines[1].startswith("| test: lexicon decoder")
    assert (
        "%PER 40.00 [ 4 / 10, 1 ins, 1 del, 2 sub ]" in lines and "%WER 25.00 [ 1 / 4, 0 ins, 0 del, 1 sub ]" in lines
    )
    assert lines.index("%PER 40.00 [ 4 / 10, 1 ins, 1 del, 2 sub ]") < lines.index(
        "%WER 25.00 [ 1 / 4, 0 ins, 0 del, 1 sub ]"
    )
    assert "1 utterances got an empty hypothesis (scored as deletions)" in lines
    assert "frame accuracy 81.25%" in lines
    assert any(line.startswith("NOT SCORED: 2 utterances") for line in lines)
    assert lines[-1] == "real-time factor 0.5000 (network 0.2500, search 0.2500)"
    # nothing beyond the phone box unless given
    assert format_report(phones).splitlines()[-1] == "%PER 40.00 [ 4 / 10, 1 ins, 1 del, 2 sub ]"


@dataclass(frozen=True)
class Span:
    phone: str
    start: int
    end: int


def test_boundary_accuracy_hand_built():
    ref = [(0, 10), (10, 20), (20, 30), (30, 40)]  # boundaries 10, 20, 30
    assert boundary_accuracy(ref, [(0, 11), (11, 23), (23, 28), (28, 40)]) == pytest.approx(
        2 / 3
    )  # 11 ok, 23 too far, 28 ok
    assert boundary_accuracy(ref, [(0, 11), (11, 23), (23, 28), (28, 40)], tolerance_frames=3) == pytest.approx(1.0)
    # one hypothesis boundary near two reference boundaries is used once (greedy nearest)
    ref2 = [(0, 10), (10, 13), (13, 30)]  # boundaries 10, 13
    assert boundary_counts(ref2, [(0, 12), (12, 30)]) == (1, 2)
    assert boundary_counts(ref2, [(0, 9), (9, 12), (12, 30)]) == (2, 2)
    assert boundary_counts([(0, 10), (10, 12), (12, 20)], [(0, 11), (11, 13), (13, 20)], tolerance_frames=1) == (2, 2)
    # greedy by distance, as documented (not a maximum matching): ref 10-hyp 11 (distance 1) is
    # taken first, which leaves ref 13 with no free hypothesis boundary within 2 frames
    assert boundary_counts([(0, 10), (10, 13), (13, 20)], [(0, 8), (8, 11), (11, 20)]) == (1, 2)
    spans = [Span("sil", 0, 5), Span("k", 5, 9), Span("ae", 9, 15)]
    assert boundary_accuracy(spans, [Span("k", 0, 6), Span("ae", 6, 15)]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no boundary"):
        boundary_accuracy([(0, 5)], [(0, 5)])
    with pytest.raises(ValueError, match="ends before it starts"):
        boundary_accuracy([(0, 5), (6, 4)], [(0, 5)])
    with pytest.raises(ValueError, match="before the previous span ends"):
        boundary_accuracy([(0, 5), (3, 8)], [(0, 5)])


def test_format_report():
    c = ErrorCounts.sum([edit_distance(list("abc"), list("xbcd")), edit_distance(list("hello"), list("hello"))])
    text = format_report(c, title="dev")
    last = text.strip().splitlines()[-1]
    assert last == "%PER 25.00 [ 2 / 8, 1 ins, 0 del, 1 sub ]"
    assert "dev" in text and "12.50" in text and "50.00" in text  # sub/ins share, sentence error rate 1/2


# --- per-speaker summaries -------------------------------------------------------------------

# Three speakers; the errors of each utterance are counted by hand below.
SPK_REFS = {
    "a1": ["k", "ae", "t", "s"],  # hyp: 1 substitution (ae -> eh)
    "a2": ["d", "ao"],  # hyp: 2 insertions (iy, z)
    "b1": ["dh", "ih", "s", "ih", "z"],  # hyp: correct
    "c1": ["m", "ae", "n"],  # hyp: 1 deletion (n)
}
SPK_HYPS = {
    "a1": ["k", "eh", "t", "s"],
    "a2": ["d", "ao", "iy", "z"],
    "b1": ["dh", "ih", "s", "ih", "z"],
    "c1": ["m", "ae"],
}
UTT2SPK = {"a1": "A", "a2": "A", "b1": "B", "c1": "C"}


def test_per_by_utterance_sums_to_the_corpus_per():
    by_utt = per_by_utterance(SPK_REFS, SPK_HYPS)
    assert by_utt == {
        "a1": ErrorCounts(1, 0, 0, 4, 1, 1),
        "a2": ErrorCounts(0, 0, 2, 2, 1, 1),
        "b1": ErrorCounts(0, 0, 0, 5, 1, 0),
        "c1": ErrorCounts(0, 1, 0, 3, 1, 1),
    }
    assert ErrorCounts.sum(by_utt.values()) == per(SPK_REFS, SPK_HYPS)
    words = wer_by_utterance({"x": "the cat", "y": "a dog"}, {"x": "the hat", "y": ["A", "DOG"]})
    assert words == {"x": ErrorCounts(1, 0, 0, 2, 1, 1), "y": ErrorCounts(0, 0, 0, 2, 1, 0)}
    with pytest.raises(ValueError, match="mappings"):
        per_by_utterance([["a"]], [["a"]])
    with pytest.raises(ValueError, match=r"no hypothesis for \['c1'\]"):
        per_by_utterance(SPK_REFS, {u: h for u, h in SPK_HYPS.items() if u != "c1"})


def test_speaker_summary_against_a_hand_computation():
    s = speaker_summary(per_by_utterance(SPK_REFS, SPK_HYPS), UTT2SPK)
    # by hand: A = (1 + 2) errors / (4 + 2) phones = 0.5 (the mean of its utterance PERs would be
    # (0.25 + 1.0) / 2 = 0.625); B = 0 / 5; C = 1 / 3
    rates = {"A": 3 / 6, "B": 0 / 5, "C": 1 / 3}
    assert {spk: s.value(spk) for spk in s.counts} == pytest.approx(rates)
    assert s.counts["A"] == ErrorCounts(1, 0, 2, 6, 2, 2)
    assert s.speakers == 3 and s.unrated == []
    assert s.mean == pytest.approx((0.5 + 0.0 + 1 / 3) / 3)
    assert s.std == pytest.approx(statistics.pstdev(rates.values()))
    assert s.worst == ("A", pytest.approx(0.5)) and s.best == ("B", 0.0)
    assert s.rated == ["A", "C", "B"]  # worst first

    # accuracy (a classifier: one label per utterance): A 2 of 3 right, B 1 of 1, C 0 of 2
    labels = {"a1": "one", "a2": "two", "a3": "six", "b1": "one", "c1": "two", "c2": "six"}
    guess = {"a1": "one", "a2": "two", "a3": "two", "b1": "one", "c1": "one", "c2": "one"}
    utt2spk = {u: u[0].upper() for u in labels}
    acc = speaker_summary({u: edit_distance([labels[u]], [guess[u]]) for u in labels}, utt2spk, "accuracy")
    assert {spk: acc.value(spk) for spk in "ABC"} == pytest.approx({"A": 2 / 3, "B": 1.0, "C": 0.0})
    assert acc.mean == pytest.approx(5 / 9) and acc.worst == ("C", 0.0) and acc.best == ("B", 1.0)
    assert acc.rated == ["C", "A", "B"]


def test_speaker_summary_edge_cases():
    # a speaker whose reference has no scored phone (silence only) has no rate and is left out
    refs = {**SPK_REFS, "d1": ["sil"]}
    hyps = {**SPK_HYPS, "d1": ["aa"]}
    s = speaker_summary(per_by_utterance(refs, hyps), {**UTT2SPK, "d1": "D"})
    assert s.unrated == ["D"] and s.value("D") is None and s.speakers == 3
    assert s.mean == pytest.approx((0.5 + 0.0 + 1 / 3) / 3)
    # ties: the smaller speaker id is both the worst and the best
    tie = SpeakerSummary({"y": ErrorCounts(1, 0, 0, 2, 1, 1), "x": ErrorCounts(0, 1, 0, 2, 1, 1)})
    assert tie.worst == ("x", 0.5) and tie.best == ("x", 0.5) and tie.std == 0.0
    with pytest.raises(ValueError, match=r"no speaker for 1 scored utterances: \['c1'\]"):
        counts_by_speaker(per_by_utterance(SPK_REFS, SPK_HYPS), {u: v for u, v in UTT2SPK.items() if u != "c1"})
    with pytest.raises(ValueError, match="no speaker to summarise"):
        SpeakerSummary({})
    with pytest.raises(ValueError, match="measure"):
        SpeakerSummary({"x": ErrorCounts()}, "mean")


def test_speaker_summary_json_table_and_report():
    s = speaker_summary(per_by_utterance(SPK_REFS, SPK_HYPS), UTT2SPK)
    blob = s.to_json()
    assert blob["speakers"] == 3 and blob["measure"] == "rate"
    assert blob["worst"] == {"speaker": "A", "rate": 0.5} and blob["best"] == {"speaker": "B", "rate": 0.0}
    assert [r["speaker"] for r in blob["table"]] == ["A", "C", "B"]
    assert blob["table"][0] == {
        "speaker": "A",
        "substitutions": 1,
        "deletions": 0,
        "insertions": 2,
        "reference_length": 6,
        "utterances": 2,
        "utterances_with_errors": 2,
        "errors": 3,
        "rate": 0.5,
    }
    assert SpeakerSummary.from_json(blob) == s
    assert SpeakerSummary.from_json(blob, "accuracy").best == ("B", 1.0)  # A and C have no error-free utterance
    with pytest.raises(ValueError, match="not a per-speaker summary"):
        SpeakerSummary.from_json({"table": [{"speaker": "A"}]})

    lines = format_speakers(s)
    assert lines[0] == "per-speaker PER, 3 speakers: mean 27.78%, std 20.79, worst 50.00% (A), best 0.00% (B)"
    assert [line.split("|")[1].strip() for line in lines[1:]] == ["speaker", "A", "C", "B"]
    assert lines[2].split() == ["|", "A", "|", "2", "|", "6", "|", "3", "|", "50.00", "|"]
    text = format_report(per(SPK_REFS, SPK_HYPS), speakers=s, rtf=(0.5, 0.25, 0.25))
    assert text.splitlines()[-len(lines) - 1 :] == ["real-time factor 0.5000 (network 0.2500, search 0.2500)", *lines]
    assert speaker_cells(s) == ["3", "27.8", "50.0 (A)", "0.0 (B)"]
    assert speaker_cells(None) == ["-"] * 4
