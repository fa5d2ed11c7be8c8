"""BiLSTM: exactness against packed / unbatched nn.LSTM, padding independence, subsampling, config."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from phonrec.config import CONF_DIR
from phonrec.models.bilstm import BiLSTM, BiLSTMConfig, reverse_index

CONF = CONF_DIR / "model"
FDIM, K = 6, 5


def _batch(seed: int = 0, T: int = 9, lengths=(9, 1, 5, 3, 9, 7)):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    return torch.randn(len(lengths), T, FDIM, generator=g), lengths


def _model(seed: int = 0, **kw) -> BiLSTM:
    torch.manual_seed(seed)
    kw.setdefault("hidden", 4)
    kw.setdefault("layers", 3)
    kw.setdefault("dropout", 0.0)
    return BiLSTM(FDIM, K, BiLSTMConfig(**kw))


def _packed_reference(model: BiLSTM) -> nn.LSTM:
    """A multi-layer bidirectional nn.LSTM holding the model's weights."""
    cfg = model.cfg
    ref = nn.LSTM(FDIM, cfg.hidden, num_layers=cfg.layers, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for i, rnn in enumerate(model.rnns):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                for sfx in ("", "_reverse"):
                    getattr(ref, f"{name}_l{i}{sfx}").copy_(getattr(rnn, f"{name}_l0{sfx}"))
    return ref


def _grad_weights(lengths: torch.Tensor, T: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(123)
    return torch.randn(len(lengths), T, K, generator=g) * (
        torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    ).unsqueeze(-1)


@pytest.mark.parametrize("exact", ["reverse", "packed", "auto"])
def test_exact_equals_packed_bidirectional_lstm_outputs_and_grads(exact):
    model = _model(exact=exact)
    ref = _packed_reference(model)
    feats, lengths = _batch()
    w = _grad_weights(lengths, feats.shape[1])

    x1 = feats.clone().requires_grad_()
    lp, out_len = model(x1, lengths)
    (lp * w).sum().backward()

    x2 = feats.clone().requires_grad_()
    packed = pack_padded_sequence(x2, lengths, batch_first=True, enforce_sorted=False)
    h, _ = pad_packed_sequence(ref(packed)[0], batch_first=True, total_length=feats.shape[1])
    lp_ref = F.linear(h, model.output.weight, model.output.bias).log_softmax(-1)
    (lp_ref * w).sum().backward()

    valid = torch.arange(feats.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    assert torch.equal(out_len, lengths)
    torch.testing.assert_close(lp[valid], lp_ref[valid], atol=1e-5, rtol=0)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=0)
    for i, rnn in enumerate(model.rnns):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            for sfx in ("", "_reverse"):
                torch.testing.assert_close(
                    getattr(rnn, f"{name}_l0{sfx}").grad, getattr(ref, f"{name}_l{i}{sfx}").grad, atol=1e-5, rtol=0
                )


def test_plain_padded_mode_is_not_exact():
    """The comparison above has teeth: padding does leak with exact='none'."""
    model = _model(exact="none")
    ref = _packed_reference(model)
    feats, lengths = _batch()
    lp, _ = model(feats, lengths)
    h, _ = pad_packed_sequence(
        ref(pack_padded_sequence(feats, lengths, batch_first=True, enforce_sorted=False))[0], batch_first=True
    )
    lp_ref = F.linear(h, model.output.weight, model.output.bias).log_softmax(-1)
    assert (lp[1, 0] - lp_ref[1, 0]).abs().max() > 1e-4  # length-1 sequence read 8 padding frames first


# plain padded ("none") is exact only for a forward-only LSTM
@pytest.mark.parametrize(
    "exact,bidirectional", [("reverse", True), ("packed", True), ("reverse", False), ("packed", False), ("none", False)]
)
def test_outputs_do_not_depend_on_padding_values(exact, bidirectional):
    model = _model(exact=exact, bidirectional=bidirectional, subsample=2, proj=3).eval()
    feats, lengths = _batch(seed=1)
    pad = torch.arange(feats.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
    garbage = torch.where(pad.unsqueeze(-1), 1e3 * torch.randn_like(feats), feats)
    with torch.no_grad():
        a, la = model(feats, lengths)
        b, lb = model(garbage, lengths)
    assert torch.equal(la, lb)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)  # padded frames included: they are constant


def _unbatched_reference(model: BiLSTM, x: torch.Tensor) -> torch.Tensor:
    """One sequence (L, F) with no padding at all, through fresh nn.LSTMs and explicit stacking."""
    cfg = model.cfg

    def stack(h: torch.Tensor, k: int) -> torch.Tensor:
        groups = []
        for start in range(0, h.shape[0], k):
            frames = [h[t] if t < h.shape[0] else torch.zeros_like(h[0]) for t in range(start, start + k)]
            groups.append(torch.cat(frames))
        return torch.stack(groups)

    if model.conv is not None:  # the front end on the lone sequence: nothing to mask
        c = model.conv
        h = torch.relu(c.conv2(torch.relu(c.conv1(x[None, None]))))[0]  # (C, L, F/4)
        x = h.permute(1, 0, 2).reshape(x.shape[0], -1)
    h = stack(x, cfg.stack) if cfg.stack > 1 else x
    h = model.proj(h) if model.proj is not None else h
    for i, rnn in enumerate(model.rnns):
        layer = nn.LSTM(rnn.input_size, cfg.hidden, bidirectional=cfg.bidirectional, batch_first=True)
        layer.load_state_dict(rnn.state_dict())
        h = layer(h.unsqueeze(0))[0][0]  # (L, D)
        if i == 0 and cfg.subsample > 1:
            h = stack(h, cfg.subsample)
    return model.output(h).log_softmax(-1)


@pytest.mark.parametrize("stack,subsample", [(1, 1), (1, 2), (1, 3), (1, 4), (3, 1), (4, 1), (2, 3)])
@pytest.mark.parametrize("exact", ["reverse", "packed"])
def test_subsampling_matches_unbatched_computation(stack, subsample, exact):
    """Input stacking and subsampling after layer 1 equal explicit zero-padded stacking of one
    unpadded sequence; the padding of the batch never leaks into a partial last group."""
    model = _model(exact=exact, stack=stack, subsample=subsample, layers=2, proj=3 if stack == 2 else 0).eval()
    feats, lengths = _batch(seed=2, T=11, lengths=(11, 1, 5, 8, 10, 2))
    feats[1, 1:] = 1e3  # garbage in the padding
    factor = stack * subsample
    with torch.no_grad():
        lp, out_len = model(feats, lengths)
        assert lp.shape == (6, math.ceil(11 / factor), K)
        assert out_len.tolist() == [math.ceil(int(L) / factor) for L in lengths]
        for b, L in enumerate(lengths.tolist()):
            ref = _unbatched_reference(model, feats[b, :L])
            torch.testing.assert_close(lp[b, : out_len[b]], ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("exact", ["reverse", "packed"])
def test_conv_front_end_matches_unbatched_computation(exact):
    """The convolutions see zeros beyond each sequence's end in the batch, as they do alone."""
    model = _model(exact=exact, conv_channels=3, stack=3, layers=2).eval()
    feats, lengths = _batch(seed=5, T=11, lengths=(11, 1, 5, 8, 10, 2))
    feats[2, 5:] = 1e3  # garbage in the padding
    assert model.rnns[0].input_size == 3 * 3 * math.ceil(FDIM / 4)
    with torch.no_grad():
        lp, out_len = model(feats, lengths)
        for b, L in enumerate(lengths.tolist()):
            torch.testing.assert_close(
                lp[b, : out_len[b]], _unbatched_reference(model, feats[b, :L]), atol=1e-5, rtol=0
            )


def test_unidirectional_is_causal_and_matches_unbatched():
    model = _model(bidirectional=False, layers=2).eval()
    feats, lengths = _batch(seed=3)
    with torch.no_grad():
        lp, _ = model(feats, lengths)
        changed = feats.clone()
        changed[:, 5:] = torch.randn_like(changed[:, 5:])
        lp2, _ = model(changed, lengths)
        torch.testing.assert_close(lp[:, :5], lp2[:, :5], atol=0, rtol=0)
        for b, L in enumerate(lengths.tolist()):
            torch.testing.assert_close(lp[b, :L], _unbatched_reference(model, feats[b, :L]), atol=1e-5, rtol=0)


def test_reverse_index_is_a_per_sequence_reversal():
    idx = reverse_index(torch.tensor([3, 1, 5]), 5)
    assert idx.tolist() == [[2, 1, 0, 3, 4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]


def test_auto_resolves_to_an_exact_mode():
    for device in ("cpu", "cuda"):
        assert _model(exact="auto").resolve_exact(torch.device(device)) in ("reverse", "packed")
    assert _model(exact="none").resolve_exact(torch.device("cpu")) == "none"


def test_num_params_counts_by_formula():
    model = _model(hidden=4, layers=2, subsample=3, proj=7)
    H = 4

    def lstm(i):  # one direction: 4 gates, input and recurrent weights, two biases
        return 4 * H * (i + H) + 8 * H

    want = (FDIM * 7 + 7) + 2 * lstm(7) + 2 * lstm(3 * 2 * H) + (2 * H * K + K)
    assert model.num_params() == want


def test_from_config_yaml_and_unknown_keys():
    OmegaConf = pytest.importorskip("omegaconf").OmegaConf
    for name in ("bilstm", "small"):
        cfg = OmegaConf.load(CONF / f"{name}.yaml")
        model = BiLSTM.from_config(80, 42, cfg)
        assert model.cfg.hidden == cfg.hidden and model.cfg.layers == cfg.layers
    big = BiLSTM.from_config(80, 42, OmegaConf.load(CONF / "bilstm.yaml"))
    assert (big.cfg.hidden, big.cfg.layers, big.cfg.dropout) == (256, 3, 0.2)
    with pytest.raises(ValueError, match=r"unknown key\(s\) model.hiden, model.layer"):
        BiLSTM.from_config(80, 42, {"name": "bilstm", "hiden": 8, "layer": 2})
    with pytest.raises(ValueError, match="name must be 'bilstm'"):
        BiLSTM.from_config(80, 42, {"name": "conformer"})


@pytest.mark.parametrize(
    "kw,field",
    [
        ({"hidden": 0}, "hidden"),
        ({"layers": 0}, "layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"proj": -1}, "proj"),
        ({"conv_channels": -1}, "conv_channels"),
        ({"subsample": 5}, "subsample"),
        ({"stack": 9}, "stack"),
        ({"stack": 0}, "stack"),
        ({"exact": "fast"}, "exact"),
        ({"bidirectional": 1}, "bidirectional"),
    ],
)
def test_config_validation_names_the_field(kw, field):
    with pytest.raises(ValueError, match=f"BiLSTMConfig.{field}"):
        BiLSTMConfig(**kw)


def test_forward_validates_inputs():
    model = _model()
    with pytest.raises(ValueError, match=r"1 <= lengths <= T=4"):
        model(torch.randn(2, 4, FDIM), torch.tensor([4, 5]))
    with pytest.raises(ValueError, match=r"feats must be \(B, T, F=6\)"):
        model(torch.randn(2, 4, 3), torch.tensor([4, 4]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("exact", ["reverse", "packed", "auto"])
@pytest.mark.parametrize("subsample", [1, 3])
def test_cuda_modes_equal_cpu_packed(exact, subsample):
    """On the GPU (cuDNN, float64 so TF32 plays no part) every exact mode matches the CPU model."""
    cpu = _model(exact="packed", subsample=subsample).double()
    gpu = _model(exact=exact, subsample=subsample).double().cuda()
    feats, lengths = _batch(seed=4)
    feats = feats.double()
    T = math.ceil(feats.shape[1] / subsample)
    out_len = torch.div(lengths + subsample - 1, subsample, rounding_mode="floor")
    w = _grad_weights(out_len, T).double()
    x1 = feats.clone().requires_grad_()
    lp1, l1 = cpu(x1, lengths)
    (lp1 * w).sum().backward()
    x2 = feats.cuda().requires_grad_()
    lp2, l2 = gpu(x2, lengths.cuda())
    (lp2 * w.cuda()).sum().backward()
    assert l2.device.type == "cuda" and torch.equal(l1, l2.cpu())
    valid = torch.arange(T).unsqueeze(0) < out_len.unsqueeze(1)
    torch.testing.assert_close(lp2.cpu()[valid], lp1[valid], atol=1e-10, rtol=0)
    torch.testing.assert_close(x2.grad.cpu(), x1.grad, atol=1e-10, rtol=0)
    for (name, p1), (_, p2) in zip(cpu.named_parameters(), gpu.named_parameters()):
        torch.testing.assert_close(p2.grad.cpu(), p1.grad, atol=1e-10, rtol=0, msg=name)
