"""Forced alignment: planted boundaries, brute-force optimality, batch form, writers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import phonrec.align
from phonrec.align import (
    align_batch,
    align_ctc,
    align_frames,
    frame_labels_from_spans,
    refine_phone_edges,
    widen_ctc_spans,
)
from phonrec.cli.align import write_phn, write_textgrid
from phonrec.data.textgrid import read_textgrid
from phonrec.data.timit import read_phn
from phonrec.phones import PhoneSet
from phonrec.spans import Span


def planted(
    labels: list[int], K: int, rng: np.random.Generator, noise: float = 0.5, strength: float = 3.0
) -> np.ndarray:
    x = rng.normal(0, noise, (len(labels), K))
    x[np.arange(len(labels)), labels] += strength
    return (x - np.logaddexp.reduce(x, axis=1, keepdims=True)).astype(np.float32)


def test_align_frames_recovers_planted_boundaries():
    rng = np.random.default_rng(0)
    K = 12
    for _ in range(20):
        targets = [int(rng.integers(0, K))]
        while len(targets) < 6:  # adjacent phones differ, else their boundary is not identifiable
            targets += [p for p in [int(rng.integers(0, K))] if p != targets[-1]]
        durs = [int(x) for x in rng.integers(2, 7, 6)]
        labels = [p for p, d in zip(targets, durs) for _ in range(d)]
        spans = align_frames(planted(labels, K, rng), targets, min_duration=2)
        bounds = np.cumsum([0] + durs)
        assert [(s.phone, s.start, s.end) for s in spans] == [
            (p, int(a), int(b)) for p, a, b in zip(targets, bounds[:-1], bounds[1:])
        ]


def test_align_ctc_recovers_planted_spans():
    rng = np.random.default_rng(1)
    K = 8
    for _ in range(20):
        targets = [int(x) for x in rng.integers(1, K, 5)]
        labels, expected = [0], []
        for p in targets:
            if labels[-1] == p:
                labels.append(0)
            d = int(rng.integers(1, 4))
            expected.append((p, len(labels), len(labels) + d))
            labels += [p] * d + [0] * int(rng.integers(0, 3))
        spans = align_ctc(torch.from_numpy(planted(labels, K, rng)), targets, blank=0)
        assert [(s.phone, s.start, s.end) for s in spans] == expected


def brute_frames(lp: np.ndarray, targets: list[int], d: int) -> float:
    """Best score over all segmentations (every phone >= d frames)."""
    T, L = lp.shape[0], len(targets)
    best = -math.inf
    for cuts in itertools.combinations(range(1, T), L - 1):
        b = (0,) + cuts + (T,)
        if any(b[i + 1] - b[i] < d for i in range(L)):
            continue
        best = max(best, sum(float(lp[b[i] : b[i + 1], targets[i]].sum()) for i in range(L)))
    return best


def collapse(path: tuple[int, ...], blank: int) -> list[int]:
    return [k for k, _ in itertools.groupby(path) if k != blank]


@pytest.mark.parametrize("T", [3, 5, 8])
def test_align_frames_matches_brute_force(T):
    rng = np.random.default_rng(T)
    for L, d in [(1, 1), (2, 1), (3, 1), (2, 2), (3, 2)]:
        if L * d > T:
            continue
        for _ in range(4):
            lp = np.log(rng.dirichlet(np.ones(4), size=T))
            targets = [int(x) for x in rng.integers(0, 4, L)]
            spans = align_frames(lp, targets, min_duration=d)
            assert [s.phone for s in spans] == targets
            assert spans[0].start == 0 and spans[-1].end == T and all(s.num_frames >= d for s in spans)
            got = sum(float(lp[s.start : s.end, s.phone].sum()) for s in spans)
            assert got == pytest.approx(brute_frames(lp, targets, d), abs=1e-4)


@pytest.mark.parametrize("T", [4, 6])
def test_align_ctc_matches_brute_force(T):
    rng = np.random.default_rng(10 + T)
    K = 3
    for targets in ([1], [1, 2], [1, 1], [2, 1, 2]):
        lp = np.log(rng.dirichlet(np.ones(K), size=T)).astype(np.float32)
        best, best_path = -math.inf, None
        for path in itertools.product(range(K), repeat=T):
            if collapse(path, 0) == targets:
                s = float(lp[np.arange(T), list(path)].sum())
                if s > best:
                    best, best_path = s, path
        spans = align_ctc(lp, targets, blank=0)
        got = sum(float(lp[s.start : s.end, s.phone].sum()) for s in spans)
        blanks = set(range(T)) - {t for s in spans for t in range(s.start, s.end)}
        got += float(sum(lp[t, 0] for t in blanks))
        assert got == pytest.approx(best, abs=1e-4), (targets, best_path, spans)


def test_align_ctc_too_short_raises():
    lp = np.log(np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="frames"):
        align_ctc(lp, [1, 1], blank=0)  # needs a blank between: 3 frames
    with pytest.raises(ValueError, match="blank"):
        align_ctc(lp, [0], blank=0)


def test_optional_silence_at_edges():
    rng = np.random.default_rng(3)
    sil, K = 0, 6
    labels = [sil] * 4 + [2] * 3 + [3] * 5 + [sil] * 2
    lp = planted(labels, K, rng)
    spans = align_frames(lp, [2, 3], optional_silence=sil)
    assert [(s.phone, s.start, s.end) for s in spans] == [(0, 0, 4), (2, 4, 7), (3, 7, 12), (0, 12, 14)]
    # without silence at the edges it is skipped entirely
    lp2 = planted([2] * 3 + [3] * 5, K, rng)
    assert [(s.phone, s.start, s.end) for s in align_frames(lp2, [2, 3], optional_silence=sil)] == [
        (2, 0, 3),
        (3, 3, 8),
    ]


def test_align_batch_uses_lengths():
    rng = np.random.default_rng(4)
    K = 5
    a = planted([1, 1, 2, 2, 2, 3], K, rng)
    b = planted([4, 4, 1, 1], K, rng)
    batch = np.zeros((2, 6, K), np.float32)
    batch[0], batch[1, :4] = a, b
    out = align_batch(torch.from_numpy(batch), torch.tensor([6, 4]), [[1, 2, 3], [4, 1]], blank=None)
    assert out[1] == [Span(4, 0, 2), Span(1, 2, 4)]
    assert out[0] == [Span(1, 0, 2), Span(2, 2, 5), Span(3, 5, 6)]
    with pytest.raises(ValueError, match="batch item 1"):
        align_batch(batch, [6, 1], [[1, 2, 3], [4, 1]], blank=None)


def test_frame_labels_from_spans():
    spans = [Span(3, 1, 3), Span(5, 4, 6)]
    assert frame_labels_from_spans(spans, 7, fill=0) == [0, 3, 3, 0, 5, 5, 0]
    assert frame_labels_from_spans(spans, 7) == [3, 3, 3, 3, 5, 5, 5]


def test_writers_round_trip(tmp_path):
    ps = PhoneSet.from_symbols(["sil", "aa", "b"], blank=True)
    spans = [Span(2, 0, 12), Span(3, 12, 20), Span(1, 25, 30)]
    write_phn(tmp_path / "a.phn", spans, ps)
    segs = read_phn(tmp_path / "a.phn")
    # boundary t > 0 at t * 10 ms + 7.5 ms (midway between frame centres), boundary 0 at 0 s
    assert [(s.label, round(s.start, 4), round(s.end, 4)) for s in segs] == [
        ("aa", 0.0, 0.1275),
        ("b", 0.1275, 0.2075),
        ("sil", 0.2575, 0.3075),
    ]
    write_textgrid(tmp_path / "a.TextGrid", spans, ps, num_frames=35)
    tiers = read_textgrid(tmp_path / "a.TextGrid")
    got = [(s.label, round(s.start, 4), round(s.end, 4)) for s in tiers["phones"]]
    assert got == [
        ("aa", 0.0, 0.1275),
        ("b", 0.1275, 0.2075),
        ("", 0.2075, 0.2575),
        ("sil", 0.2575, 0.3075),
        ("", 0.3075, 0.3575),
    ]


def test_ctc_widening_is_40_ms_at_any_frame_rate() -> None:
    """A CTC phone takes up to 40 ms of blanks each side: 4 frames of 10 ms, 1 of 30 ms (4 frames
    of 30 ms were 120 ms); a gap of at most twice that is split at its middle."""
    apart = [Span(1, 10, 11), Span(2, 30, 31)]
    assert widen_ctc_spans(apart, 50, hop_ms=10.0) == [Span(1, 6, 15), Span(2, 26, 35)]
    assert widen_ctc_spans(apart, 50, hop_ms=30.0) == [Span(1, 9, 12), Span(2, 29, 32)]
    close = [Span(1, 10, 11), Span(2, 13, 14)]  # 2 blank frames between: split at frame 12
    assert widen_ctc_spans(close, 16, hop_ms=10.0) == [Span(1, 6, 12), Span(2, 12, 16)]


# --- phone edges at their posterior expectation ------------------------------------------------


def two_phone_posteriors(p_first: list[float], silence: float = 1e-9) -> np.ndarray:
    """(T, 3) log-probabilities: class 0 = sil (nearly impossible), 1 and 2 the two phones, frame t
    giving phone 1 the probability ``p_first[t]``."""
    p = np.asarray(p_first, dtype=np.float64)
    probs = np.stack([np.full_like(p, silence), p * (1 - silence), (1 - p) * (1 - silence)], axis=1)
    return np.log(probs)


def test_refined_edge_is_the_expected_boundary_of_all_segmentations():
    # an independent computation: every cut b (phone 1 on frames < b, phone 2 on the rest) weighed
    # by its path probability; the refined edge is the cut's expectation
    p_first = [0.99, 0.95, 0.7, 0.55, 0.4, 0.2, 0.05, 0.01]
    lp = two_phone_posteriors(p_first)
    T = len(p_first)
    weights = {b: math.exp(lp[:b, 1].sum() + lp[b:, 2].sum()) for b in range(1, T)}
    expected = sum(b * w for b, w in weights.items()) / sum(weights.values())
    spans = align_frames(lp, [1, 2], 1, optional_silence=0, silence_between=True)
    assert [s.phone for s in spans] == [1, 2]
    bounds = [(s.start, s.end) for s in spans]
    (a0, cut), (cut2, b1) = refine_phone_edges(bounds, lp, [1, 2], 1, 0)
    assert (a0, b1) == (0.0, float(T)) and cut == cut2
    assert cut == pytest.approx(expected, abs=1e-3)
    assert cut != bounds[0][1]  # Viterbi's integer cut (4) is moved


def test_refined_edges_keep_pauses_and_minimum_durations():
    # phone 1, a pause, phone 2: nothing touches, nothing moves
    lp = np.log(np.full((9, 3), 1e-6))
    for t, k in enumerate([1, 1, 1, 0, 0, 0, 2, 2, 2]):
        lp[t, k] = math.log(1 - 2e-6)
    bounds = [(0, 3), (6, 9)]
    assert refine_phone_edges(bounds, lp, [1, 2], 1, 0) == [(0.0, 3.0), (6.0, 9.0)]
    # an expectation pulled towards an edge stops min_duration frames from it
    lp = two_phone_posteriors([0.9, 0.9, 0.5, 0.5, 0.1, 0.1])
    (_, cut), _ = refine_phone_edges([(0, 3), (3, 6)], lp, [1, 2], 3, 0)
    assert cut == 3.0


def test_refinement_is_skipped_above_the_trellis_limit(monkeypatch):
    lp = two_phone_posteriors([0.99, 0.95, 0.7, 0.55, 0.4, 0.2, 0.05, 0.01])
    monkeypatch.setattr(phonrec.align, "MAX_EXPECTATION_CELLS", 10)
    assert refine_phone_edges([(0, 4), (4, 8)], lp, [1, 2], 1, 0) == [(0.0, 4.0), (4.0, 8.0)]
