"""Greedy decoding, the Viterbi phone loop and the phone-bigram beam search."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from phonrec.decode.beam import phone_beam_search, viterbi_phone_loop
from phonrec.decode.greedy import greedy, greedy_batch
from phonrec.lm import PhoneBigram
from phonrec.metrics import edit_distance
from phonrec.spans import Span, spans_to_seconds


def one_hot_log_probs(labels: list[int], K: int, p: float = 0.9) -> torch.Tensor:
    """(T, K) log-probs with ``p`` on the given label of each frame."""
    x = torch.full((len(labels), K), (1 - p) / (K - 1))
    x[torch.arange(len(labels)), torch.tensor(labels)] = p
    return x.log()


def reference_greedy(labels: list[int], blank: int | None) -> list[tuple[int, int, int]]:
    """Independent run-length implementation with itertools.groupby."""
    out, t = [], 0
    for sym, grp in itertools.groupby(labels):
        n = len(list(grp))
        if sym != blank:
            out.append((sym, t, t + n))
        t += n
    return out


def test_ctc_hand_built_runs_blanks_and_repeats():
    # frames:  a a _ a b b _ _ c   (blank = 0, a=1, b=2, c=3)
    lp = one_hot_log_probs([1, 1, 0, 1, 2, 2, 0, 0, 3], K=4)
    spans = greedy(lp, blank=0)
    assert spans == [Span(1, 0, 2), Span(1, 3, 4), Span(2, 4, 6), Span(3, 8, 9)]
    # the emission is placed at the final frame of each run
    assert [s.emission_frame for s in spans] == [1, 3, 5, 8]
    assert [s.phone for s in spans] == [1, 1, 2, 3]  # a blank separates two a's: both kept


def test_ctc_repeat_without_blank_is_one_phone():
    lp = one_hot_log_probs([2, 2, 2, 2], K=3)
    assert greedy(lp, blank=0) == [Span(2, 0, 4)]
    assert greedy(one_hot_log_probs([0, 0, 0], K=3), blank=0) == []


def test_frame_level_runs_cover_all_frames():
    labels = [0, 0, 1, 1, 1, 0, 2]
    spans = greedy(one_hot_log_probs(labels, K=3))
    assert spans == [Span(0, 0, 2), Span(1, 2, 5), Span(0, 5, 6), Span(2, 6, 7)]
    assert spans[0].start == 0 and spans[-1].end == len(labels)
    assert all(a.end == b.start for a, b in zip(spans, spans[1:]))


def test_length_truncates():
    lp = one_hot_log_probs([1, 1, 2, 2, 3, 3], K=4)
    assert greedy(lp, length=3, blank=0) == [Span(1, 0, 2), Span(2, 2, 3)]
    with pytest.raises(ValueError, match="length"):
        greedy(lp, length=7)
    with pytest.raises(ValueError, match=r"\(T, K\)"):
        greedy(lp[None])


def test_min_duration_absorbs_short_runs():
    # 1 1 1 1 2 1 1 1 3 3 3 3 : the single '2' frame is spurious
    labels = [1, 1, 1, 1, 2, 1, 1, 1, 3, 3, 3, 3]
    lp = one_hot_log_probs(labels, K=4)
    assert [s.phone for s in greedy(lp)] == [1, 2, 1, 3]
    assert greedy(lp, min_duration=3) == [Span(1, 0, 8), Span(3, 8, 12)]


@pytest.mark.parametrize("blank", [None, 0])
def test_batch_respects_lengths_and_matches_reference(blank):
    g = torch.Generator().manual_seed(0)
    B, T, K = 6, 25, 4
    labels = torch.randint(0, K, (B, T), generator=g)
    lp = torch.nn.functional.one_hot(labels, K).float() * 3.0
    lp = lp.log_softmax(-1)
    lengths = torch.tensor([25, 0, 1, 10, 17, 24])
    out = greedy_batch(lp, lengths, blank=blank)
    assert len(out) == B
    for b in range(B):
        ref = reference_greedy(labels[b, : lengths[b]].tolist(), blank)
        assert [(s.phone, s.start, s.end) for s in out[b]] == ref
        assert all(s.end <= lengths[b] for s in out[b])
    with pytest.raises(ValueError, match="lengths"):
        greedy_batch(lp, torch.tensor([1, 2]))


def test_spans_to_seconds_uses_hop():
    # boundaries midway between frame centres (phonrec.spans.frames_to_seconds): +7.5 ms at 10-ms
    # frames, +12.5 ms at 20-ms frames (label of the second of two stacked frames); frame 0 is 0 s
    assert spans_to_seconds([Span(3, 10, 25)], hop_ms=10.0) == [(3, pytest.approx(0.1075), pytest.approx(0.2575))]
    assert spans_to_seconds([Span(3, 10, 25)], hop_ms=20.0) == [(3, pytest.approx(0.2125), pytest.approx(0.5125))]
    assert spans_to_seconds([Span(3, 0, 1)], hop_ms=10.0) == [(3, 0.0, pytest.approx(0.0175))]


# --- Viterbi phone loop ---------------------------------------------------------------------
def brute_force_phone_loop(lp: np.ndarray, d: int, pen: float) -> tuple[float, list[int]]:
    T, K = lp.shape
    best, arg = -math.inf, None
    for lab in itertools.product(range(K), repeat=T):
        runs = [len(list(g)) for _, g in itertools.groupby(lab)]
        if min(runs) < d:
            continue
        s = float(lp[np.arange(T), list(lab)].sum()) + pen * (len(runs) - 1)
        if s > best + 1e-9:
            best, arg = s, list(lab)
    return best, arg


@pytest.mark.parametrize("T,d,pen", [(5, 1, 0.0), (6, 2, -0.5), (7, 3, -1.0), (7, 2, 0.3)])
def test_viterbi_phone_loop_matches_brute_force(T, d, pen):
    rng = np.random.default_rng(T * 10 + d)
    for _ in range(5):
        lp = np.log(rng.dirichlet(np.ones(3), size=T)).astype(np.float32)
        spans = viterbi_phone_loop(lp, min_duration=d, switch_penalty=pen)
        labels = [s.phone for s in spans for _ in range(s.num_frames)]
        got = float(lp[np.arange(T), labels].sum()) + pen * (len(spans) - 1)
        best, _ = brute_force_phone_loop(lp.astype(np.float64), d, pen)
        assert got == pytest.approx(best, abs=1e-5)
        assert all(s.num_frames >= d for s in spans) and spans[-1].end == T


def test_viterbi_phone_loop_removes_spurious_runs():
    rng = np.random.default_rng(1)
    K, errs_greedy, errs_vit, n_ref = 8, 0, 0, 0
    for _ in range(20):
        ref = [int(x) for x in rng.integers(0, K, 8)]
        ref = [p for i, p in enumerate(ref) if i == 0 or p != ref[i - 1]]
        labels = [p for p in ref for _ in range(int(rng.integers(4, 9)))]
        x = rng.normal(0, 1.2, (len(labels), K))
        x[np.arange(len(labels)), labels] += 2.5
        lp = torch.from_numpy(x).log_softmax(-1).float()
        n_ref += len(ref)
        errs_greedy += edit_distance(ref, [s.phone for s in greedy(lp)]).errors
        errs_vit += edit_distance(
            ref, [s.phone for s in viterbi_phone_loop(lp, min_duration=3, switch_penalty=-1.0)]
        ).errors
    assert errs_vit < 0.5 * errs_greedy, (errs_vit, errs_greedy, n_ref)


# --- phone bigram and beam search -----------------------------------------------------------
def test_phone_bigram_add_k_matches_hand_counts(tmp_path):
    seqs = [[1, 2, 1], [1, 2]]
    lm = PhoneBigram.fit(seqs, num_phones=3, method="add_k", k=1.0, exclude=[0])
    # context 1 is followed by 2 twice and by </s> once; candidates: 1, 2, </s> (0 excluded)
    assert math.exp(lm.log_prob(1, 2)) == pytest.approx((2 + 1) / (3 + 3))
    assert math.exp(lm.log_prob(1, None)) == pytest.approx((1 + 1) / (3 + 3))
    assert lm.log_prob(1, 0) == -math.inf
    assert math.exp(lm.log_prob(None, 1)) == pytest.approx((2 + 1) / (2 + 3))
    for method in ("add_k", "witten_bell"):
        m = PhoneBigram.fit(seqs, 3, method=method, exclude=[0])
        assert np.allclose(np.exp(m.log_probs).sum(1), 1.0)
    lm.save(tmp_path / "bigram.json")
    assert np.array_equal(PhoneBigram.load(tmp_path / "bigram.json").log_probs, lm.log_probs)


def test_beam_search_exact_on_clean_ctc():
    lp = one_hot_log_probs([0, 1, 1, 0, 1, 2, 2, 0, 3], K=4, p=0.97)
    spans = phone_beam_search(lp, lm=None, blank=0, beam=4)
    assert [s.phone for s in spans] == [1, 1, 2, 3]


def test_beam_with_bigram_beats_greedy_on_noisy_ctc():
    """A bigram that favours the true phone order should lower the PER below greedy's (seeded)."""
    rng = np.random.default_rng(0)
    K = 10  # blank + 9 phones
    succ = {p: 1 + (p % 9) for p in range(1, K)}  # deterministic phone grammar p -> p+1 (mod)
    train = []
    for _ in range(200):
        s = [int(rng.integers(1, K))]
        for _ in range(7):
            s.append(succ[s[-1]] if rng.random() < 0.85 else int(rng.integers(1, K)))
        train.append(s)
    lm = PhoneBigram.fit(train, K, exclude=[0])
    errs_g = errs_b = 0
    for i in range(30):
        ref = train[i]
        frames = [0]
        for p in ref:
            frames += [p] * int(rng.integers(1, 4)) + [0] * int(rng.integers(1, 3))
        x = rng.normal(0, 1.0, (len(frames), K))
        x[np.arange(len(frames)), frames] += 2.0
        lp = torch.from_numpy(x).log_softmax(-1).float()
        errs_g += edit_distance(ref, [s.phone for s in greedy(lp, blank=0)]).errors
        errs_b += edit_distance(
            ref, [s.phone for s in phone_beam_search(lp, None, lm, blank=0, beam=8, lm_weight=1.0)]
        ).errors
    assert errs_b < errs_g, (errs_b, errs_g)


def test_frame_level_beam_uses_bigram_transitions():
    # frame posteriors are ambiguous between phones 1 and 2 in the middle; the bigram forbids 0->2
    lp = np.log(np.array([[0.9, 0.05, 0.05]] * 3 + [[0.1, 0.44, 0.46]] * 3 + [[0.9, 0.05, 0.05]] * 3))
    seqs = [[0, 1, 0]] * 20
    lm = PhoneBigram.fit(seqs, 3, method="add_k", k=0.01)
    assert [s.phone for s in viterbi_phone_loop(lp, min_duration=2)] == [0, 2, 0]
    assert [s.phone for s in phone_beam_search(lp, None, lm, blank=None, min_duration=2)] == [0, 1, 0]
