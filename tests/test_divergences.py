"""Divergences against torch's own losses, hand-built cases and brute-force loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from phonrec.divergences import (
    REGISTRY,
    aligned_divergence,
    ctc_divergence,
    ctc_min_frames,
    divergence_needs_blank,
    weighted_frame_divergence,
)


def _log_probs(B: int, T: int, K: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, K, generator=g, dtype=dtype).log_softmax(-1)


LENGTHS = torch.tensor([7, 1, 4, 6])  # B = 4, T = 7


def _valid(b: int) -> range:
    return range(int(LENGTHS[b]))


# ----------------------------------------------------------------------------- frame


def test_frame_last_equals_cross_entropy_of_last_valid_frame():
    lp = _log_probs(4, 7, 5)
    labels = torch.tensor([0, 4, 2, 3])
    got = weighted_frame_divergence(lp, LENGTHS, labels, weights="last", reduction="none")
    last = lp[torch.arange(4), LENGTHS - 1]  # (B, K)
    want = F.nll_loss(last, labels, reduction="none")
    torch.testing.assert_close(got, want)


def test_frame_linear_ramp_matches_hand_loop():
    lp = _log_probs(4, 7, 5, seed=1)
    labels = torch.tensor([1, 2, 3, 4])
    got = weighted_frame_divergence(lp, LENGTHS, labels, weights="linear", reduction="none")
    for b in range(4):
        L = int(LENGTHS[b])
        norm = sum(t + 1 for t in range(L))
        want = sum((t + 1) / norm * -float(lp[b, t, labels[b]]) for t in range(L))
        assert math.isclose(float(got[b]), want, rel_tol=1e-12)


def test_frame_uniform_and_tensor_weights_match_hand_loop():
    lp = _log_probs(4, 7, 5, seed=2)
    labels = torch.tensor([1, 0, 3, 4])
    got = weighted_frame_divergence(lp, LENGTHS, labels, weights="uniform", reduction="none")
    want = torch.stack([F.nll_loss(lp[b, : LENGTHS[b]], labels[b].repeat(int(LENGTHS[b]))) for b in range(4)])
    torch.testing.assert_close(got, want)
    w = torch.tensor([0.5, 1.0, 0.0, 2.0, 3.0, 1.0, 9.0], dtype=torch.float64)  # (T,)
    got = weighted_frame_divergence(lp, LENGTHS, labels, weights=w, reduction="sum")
    total = 0.0
    for b in range(4):
        ws = [float(w[t]) for t in _valid(b)]
        total += sum(ws[t] / sum(ws) * -float(lp[b, t, labels[b]]) for t in _valid(b))
    assert math.isclose(float(got), total, rel_tol=1e-12)


def test_frame_tensor_weights_zero_on_a_sequence_is_an_error():
    lp = _log_probs(4, 7, 5)
    w = torch.ones(4, 7, dtype=torch.float64)
    w[1] = 0
    with pytest.raises(ValueError, match=r"batch indices \[1\]"):
        weighted_frame_divergence(lp, LENGTHS, torch.zeros(4, dtype=torch.long), weights=w)


# ----------------------------------------------------------------------------- aligned


def _frame_labels(seed: int = 3, K: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    fl = torch.randint(0, K, (4, 7), generator=g)
    fl[torch.arange(7).unsqueeze(0) >= LENGTHS.unsqueeze(1)] = -100
    fl[0, 2] = -100  # an ignored frame inside a sequence
    return fl


def test_dense_equals_nll_loss_over_valid_frames():
    lp = _log_probs(4, 7, 5, seed=4)
    fl = _frame_labels()
    got = aligned_divergence(lp, LENGTHS, fl, mode="dense", reduction="none")
    want = torch.stack(
        [F.nll_loss(lp[b, : LENGTHS[b]], fl[b, : LENGTHS[b]], ignore_index=-100, reduction="sum") for b in range(4)]
    )
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(aligned_divergence(lp, LENGTHS, fl, reduction="sum"), want.sum())
    torch.testing.assert_close(aligned_divergence(lp, LENGTHS, fl, reduction="mean"), want.sum() / 4)


def test_dense_ignores_labels_beyond_lengths():
    lp = _log_probs(4, 7, 5, seed=4)
    fl = _frame_labels()
    fl2 = fl.clone()
    fl2[1, 1:] = 3  # real-looking labels in the padding of sequence 1 (length 1)
    torch.testing.assert_close(aligned_divergence(lp, LENGTHS, fl2), aligned_divergence(lp, LENGTHS, fl))


def test_dense_label_smoothing_equals_cross_entropy():
    lp = _log_probs(4, 7, 5, seed=5)
    fl = _frame_labels()
    got = aligned_divergence(lp, LENGTHS, fl, label_smoothing=0.1, reduction="none")
    # cross_entropy re-normalises its input; log_softmax of log-probs is the identity
    want = torch.stack(
        [
            F.cross_entropy(
                lp[b, : LENGTHS[b]], fl[b, : LENGTHS[b]], ignore_index=-100, label_smoothing=0.1, reduction="sum"
            )
            for b in range(4)
        ]
    )
    torch.testing.assert_close(got, want)


def test_segment_end_scores_last_frame_of_each_run_hand_built():
    lp = _log_probs(3, 6, 4, seed=6)
    a, b_, c = 1, 2, 3
    fl = torch.tensor(
        [
            [a, a, b_, b_, b_, c],  # runs end at 1, 4, 5
            [a, a, a, b_, b_, -100],  # length 3: the run of a is cut by the sequence end at 2
            [c, -100, c, c, a, -100],  # length 5: c ends at 0 (next is ignored), c at 3, a at 4
        ]
    )
    lengths = torch.tensor([6, 3, 5])
    got = aligned_divergence(lp, lengths, fl, mode="segment_end", reduction="none")
    want = [
        -(lp[0, 1, a] + lp[0, 4, b_] + lp[0, 5, c]),
        -lp[1, 2, a],
        -(lp[2, 0, c] + lp[2, 3, c] + lp[2, 4, a]),
    ]
    torch.testing.assert_close(got, torch.stack(want))


# ----------------------------------------------------------------------------- CTC


def _ctc_case(seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    B, T, K, S = 4, 12, 6, 5
    lp = torch.randn(B, T, K, generator=g, dtype=torch.float64).log_softmax(-1)
    lengths = torch.tensor([12, 9, 6, 11])
    targets = torch.randint(1, K, (B, S), generator=g)
    target_lengths = torch.tensor([5, 3, 2, 0])
    return lp, lengths, targets, target_lengths


def test_ctc_equals_torch_ctc_loss_all_reductions():
    lp, lengths, targets, tl = _ctc_case()
    ref_none = F.ctc_loss(lp.transpose(0, 1), targets, lengths, tl, blank=0, reduction="none")
    torch.testing.assert_close(ctc_divergence(lp, lengths, targets, tl, reduction="none"), ref_none)
    ref_sum = F.ctc_loss(lp.transpose(0, 1), targets, lengths, tl, blank=0, reduction="sum")
    torch.testing.assert_close(ctc_divergence(lp, lengths, targets, tl, reduction="sum"), ref_sum)
    # ours: sum / B; torch's "mean": mean over the batch of loss / target_length (clamped to 1)
    torch.testing.assert_close(ctc_divergence(lp, lengths, targets, tl, reduction="mean"), ref_sum / 4)
    ref_mean = F.ctc_loss(lp.transpose(0, 1), targets, lengths, tl, blank=0, reduction="mean")
    ours = ctc_divergence(lp, lengths, targets, tl, reduction="none")
    torch.testing.assert_close((ours / tl.clamp(min=1)).mean(), ref_mean)


def test_ctc_other_blank_id():
    lp, lengths, targets, tl = _ctc_case(seed=8)
    targets = targets - 1  # symbols 0..4, blank = 5
    got = ctc_divergence(lp, lengths, targets, tl, blank=5, reduction="none")
    want = F.ctc_loss(lp.transpose(0, 1), targets, lengths, tl, blank=5, reduction="none")
    torch.testing.assert_close(got, want)


def test_ctc_min_frames_counts_repeats():
    targets = torch.tensor([[1, 1, 2, 2, 2], [1, 2, 3, 0, 0], [4, 4, 9, 9, 9]])
    tl = torch.tensor([5, 3, 2])
    assert ctc_min_frames(targets, tl).tolist() == [5 + 3, 3, 2 + 1]


def test_ctc_infeasible_raises_or_zeroes_with_indices():
    lp = _log_probs(3, 4, 4, seed=9)
    lengths = torch.tensor([4, 2, 3])
    targets = torch.tensor([[1, 2, 3], [1, 1, 0], [2, 2, 2]])  # seq 1 needs 3 frames, seq 2 needs 5
    tl = torch.tensor([3, 2, 3])
    with pytest.raises(ValueError, match=r"batch indices: 1 \(2 frames < 3 needed\), 2 \(3 frames < 5 needed\)"):
        ctc_divergence(lp, lengths, targets, tl, zero_infinity=False)
    lp = lp.clone().requires_grad_()
    with pytest.warns(UserWarning, match=r"batch indices: 1 .*, 2 "):
        got = ctc_divergence(lp, lengths, targets, tl, zero_infinity=True, reduction="none")
    want0 = F.ctc_loss(lp[:1].transpose(0, 1), targets[:1], lengths[:1], tl[:1], reduction="none")
    torch.testing.assert_close(got, torch.cat([want0, torch.zeros(2, dtype=got.dtype)]))
    got.sum().backward()
    assert torch.all(lp.grad[1:] == 0)
    # torch alone would return inf for them
    assert torch.isinf(F.ctc_loss(lp.transpose(0, 1), targets, lengths, tl, reduction="none")[1:]).all()


def test_ctc_rejects_blank_in_targets():
    lp, lengths, targets, tl = _ctc_case()
    targets[0, 1] = 0
    with pytest.raises(ValueError, match=r"never the blank.*\[0\]"):
        ctc_divergence(lp, lengths, targets, tl)


# ----------------------------------------------------------------------------- masking


def _all_divergences(lp: torch.Tensor, lengths: torch.Tensor):
    g = torch.Generator().manual_seed(10)
    B, T, K = lp.shape
    labels = torch.randint(0, K, (B,), generator=g)
    fl = torch.randint(0, K, (B, T), generator=g)
    targets = torch.randint(1, K, (B, 3), generator=g)
    tl = torch.minimum(torch.full((B,), 3), (lengths.cpu() - 1) // 2).clamp(min=0)
    yield "frame-uniform", weighted_frame_divergence(lp, lengths, labels, weights="uniform")
    yield "frame-last", weighted_frame_divergence(lp, lengths, labels, weights="last")
    yield "frame-linear", weighted_frame_divergence(lp, lengths, labels, weights="linear")
    yield (
        "frame-tensor",
        weighted_frame_divergence(lp, lengths, labels, weights=torch.rand(T, generator=g, dtype=lp.dtype) + 0.1),
    )
    yield "dense", aligned_divergence(lp, lengths, fl, mode="dense")
    yield "dense-smooth", aligned_divergence(lp, lengths, fl, mode="dense", label_smoothing=0.2)
    yield "segment_end", aligned_divergence(lp, lengths, fl, mode="segment_end", label_smoothing=0.1)
    yield "ctc", ctc_divergence(lp, lengths, targets, tl)


def test_padding_gets_zero_gradient_and_does_not_change_values():
    lp = _log_probs(4, 7, 5, seed=11).requires_grad_()
    pad = torch.arange(7).unsqueeze(0) >= LENGTHS.unsqueeze(1)
    garbage = _log_probs(4, 7, 5, seed=12).masked_fill(torch.rand(4, 7, 5) < 0.3, float("-inf"))
    lp2 = torch.where(pad.unsqueeze(-1), garbage, lp.detach())
    for (name, loss), (_, loss2) in zip(_all_divergences(lp, LENGTHS), _all_divergences(lp2, LENGTHS)):
        (grad,) = torch.autograd.grad(loss, lp)
        assert torch.all(grad[pad] == 0), name
        assert grad[~pad].abs().sum() > 0, name
        torch.testing.assert_close(loss2, loss.detach(), msg=name)


# ----------------------------------------------------------------------------- validation, registry


def test_validation_messages():
    lp = _log_probs(2, 5, 3)
    with pytest.raises(ValueError, match=r"lengths must be \(B,\) with 1 <= lengths <= T=5, got min 0 max 6"):
        aligned_divergence(lp, torch.tensor([0, 6]), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"frame_labels must be .*\(B=2, T=5\).*\(2, 4\)"):
        aligned_divergence(lp, torch.tensor([5, 4]), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must be in \[0, K=3\); batch indices \[1\]"):
        weighted_frame_divergence(lp, torch.tensor([5, 4]), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="reduction"):
        weighted_frame_divergence(lp, torch.tensor([5, 4]), torch.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="weights must be"):
        weighted_frame_divergence(lp, torch.tensor([5, 4]), torch.tensor([0, 1]), weights="first")


def test_registry():
    functions = {name: spec.function for name, spec in REGISTRY.items()}
    assert functions == {"frame": weighted_frame_divergence, "aligned": aligned_divergence, "ctc": ctc_divergence}
    assert {name: spec.batch_keys for name, spec in REGISTRY.items()} == {
        "frame": ("labels",),
        "aligned": ("frame_labels",),
        "ctc": ("targets", "target_lengths"),
    }
    assert (
        divergence_needs_blank("ctc") and not divergence_needs_blank("frame") and not divergence_needs_blank("aligned")
    )
    with pytest.raises(ValueError, match="unknown divergence 'cttc'"):
        divergence_needs_blank("cttc")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu_with_zero_padding_gradient():
    lp = _log_probs(4, 7, 5, seed=13)
    pad = torch.arange(7).unsqueeze(0) >= LENGTHS.unsqueeze(1)
    lp_gpu = lp.cuda().requires_grad_()
    for (name, loss), (_, loss_gpu) in zip(_all_divergences(lp, LENGTHS), _all_divergences(lp_gpu, LENGTHS.cuda())):
        torch.testing.assert_close(loss_gpu.cpu(), loss, msg=name)
        (grad,) = torch.autograd.grad(loss_gpu, lp_gpu)
        assert torch.all(grad.cpu()[pad] == 0), name
