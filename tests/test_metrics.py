"""Metrics against brute-force dynamic programmes and hand-built cases."""

from __future__ import annotations

import random
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
    align_sequences,
    boundary_accuracy,
    boundary_counts,
    confusion_matrix,
    counts_from_alignment,
    edit_distance,
    error_rate,
    format_report,
    frame_accuracy,
    per,
    wer,
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
