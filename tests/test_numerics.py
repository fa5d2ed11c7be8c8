"""Numerical safety: non-finite divergences never reach the weights, infeasible CTC targets are
reported, and audio that would overflow the features is refused before it gets that far."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import compose_cfg, make_noise_datadir, noise_overrides
from safetensors.torch import load_file

from phonrec.audio import AudioError, validate_waveform
from phonrec.data.dataset import FeatureCache
from phonrec.divergences import REGISTRY, ctc_divergence
from phonrec.features import FeatureConfig, compute_features, normalise
from phonrec.train import run

SR = 16000


def _nan_on_training_call(monkeypatch, which: int) -> list[int]:
    """Make the ``which``-th training-time call of the aligned divergence return NaN (evaluation
    runs under no_grad and is left alone). Returns the list of training-call counts."""
    real = REGISTRY["aligned"].function
    calls = [0]

    def patched(*args, **kwargs):
        loss = real(*args, **kwargs)
        if torch.is_grad_enabled():
            calls[0] += 1
            if calls[0] == which:
                return loss * float("nan")  # NaN that stays connected to the graph: its gradients are NaN
        return loss

    monkeypatch.setitem(REGISTRY, "aligned", dataclasses.replace(REGISTRY["aligned"], function=patched))
    return calls


def _overrides(tmp_path: Path, extra: list[str]) -> list[str]:
    make_noise_datadir(tmp_path, [0.3 + 0.01 * i for i in range(12)])
    return noise_overrides(
        tmp_path, tmp_path / "data", ["trainer.epochs=1", "trainer.max_frames=100", "trainer.lr=0.01", *extra]
    )


def test_nonfinite_error_stops_with_a_clear_message(tmp_path: Path, monkeypatch) -> None:
    _nan_on_training_call(monkeypatch, 2)
    cfg = compose_cfg(_overrides(tmp_path, ["trainer.nonfinite=error"]))
    with pytest.raises(
        FloatingPointError, match=r"non-finite divergence at epoch 1 in batch \['u0.*trainer.nonfinite=skip"
    ):
        run(0, 1, cfg)
    ckpts = tmp_path / "exp" / "checkpoints"
    assert not list(ckpts.glob("*.pt")) and not (tmp_path / "exp" / "model").exists()  # nothing written


def test_nonfinite_skip_skips_the_batch_and_keeps_weights_finite(tmp_path: Path, monkeypatch, caplog) -> None:
    calls = _nan_on_training_call(monkeypatch, 2)
    cfg = compose_cfg(_overrides(tmp_path, ["trainer.nonfinite=skip"]))
    with caplog.at_level(logging.WARNING):
        metrics = run(0, 1, cfg)
    assert calls[0] >= 3  # the NaN batch was neither the only nor the last one
    assert metrics["skipped_batches"] == 1 and np.isfinite(metrics["train_loss"]) and np.isfinite(metrics["dev_loss"])
    assert "non-finite divergence at epoch 1" in caplog.text and "skipped" in caplog.text
    for name in ("checkpoints/last.pt", "checkpoints/epoch-001.pt"):
        state = torch.load(tmp_path / "exp" / name, weights_only=True)["model"]
        assert all(bool(torch.isfinite(v).all()) for v in state.values()), name
    exported = load_file(str(tmp_path / "exp" / "model" / "model.safetensors"))
    assert all(bool(torch.isfinite(v).all()) for v in exported.values())


def test_without_the_skip_a_nan_batch_would_poison_the_weights() -> None:
    """The control for the test above: one optimiser step on a NaN loss makes every weight it
    touches NaN (so finite checkpoints really show the batch was skipped)."""
    layer = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(layer.parameters(), lr=0.01)
    (layer(torch.randn(4, 3)).sum() * float("nan")).backward()
    opt.step()
    assert not bool(torch.isfinite(layer.weight).any())


# --- CTC targets longer than the frames --------------------------------------------------------


def test_ctc_infeasible_utterances_are_reported_per_batch_item() -> None:
    log_probs = torch.randn(3, 6, 4).log_softmax(-1).requires_grad_()
    lengths = torch.tensor([6, 4, 3])
    targets = torch.tensor([[1, 2, 3], [1, 1, 1], [1, 2, 3]])
    target_lengths = torch.tensor([3, 3, 3])
    # brute force: item 1 needs 3 symbols + 2 separating blanks = 5 > 4 frames, item 2 needs 3 = 3 frames
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        per_seq = ctc_divergence(log_probs, lengths, targets, target_lengths, reduction="none")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "batch indices: 1 (4 frames < 5 needed)" in messages[0]
    assert per_seq[1] == 0 and torch.isfinite(per_seq).all() and per_seq[0] > 0 and per_seq[2] > 0
    per_seq.sum().backward()
    assert torch.isfinite(log_probs.grad).all() and log_probs.grad[1].abs().sum() == 0
    with pytest.raises(ValueError, match=r"batch indices: 1 \(4 frames < 5 needed\)"):
        ctc_divergence(log_probs, lengths, targets, target_lengths, zero_infinity=False)


def _ctc_corpus_with_one_impossible_utterance(tmp_path: Path) -> list[str]:
    data = make_noise_datadir(tmp_path, [0.3 + 0.01 * i for i in range(6)])
    data.phones["u003"] = ["ah", "b"] * 30  # 60 phones, 32 frames
    data.save(tmp_path / "data")
    return noise_overrides(tmp_path, tmp_path / "data", ["divergence=ctc", "trainer.epochs=1"])


def test_ctc_training_survives_an_impossible_utterance(tmp_path: Path) -> None:
    cfg = compose_cfg(_ctc_corpus_with_one_impossible_utterance(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = run(0, 1, cfg)
    assert any("CTC: infeasible utterances get zero loss" in str(w.message) for w in caught)
    assert np.isfinite(metrics["train_loss"]) and np.isfinite(metrics["dev_loss"])
    state = load_file(str(tmp_path / "exp" / "model" / "model.safetensors"))
    assert all(bool(torch.isfinite(v).all()) for v in state.values())


def test_ctc_impossible_utterance_is_named_in_training(tmp_path: Path, caplog, recwarn) -> None:
    cfg = compose_cfg(_ctc_corpus_with_one_impossible_utterance(tmp_path))
    with caplog.at_level(logging.INFO):
        run(0, 1, cfg)
    text = caplog.text + " ".join(str(w.message) for w in recwarn)
    assert "u003" in text


# --- audio that would overflow the features ---------------------------------------------------------


def test_huge_amplitudes_would_give_nan_features_and_are_refused_up_front(tmp_path: Path, caplog) -> None:
    x = (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    x[1000] = 1e30
    # independent of phonrec.audio: the features of such a waveform are not finite ...
    assert not bool(torch.isfinite(compute_features(torch.from_numpy(x), FeatureConfig())).all())
    # ... so validation refuses it, while unscaled 16-bit values (a common mistake) still pass
    with pytest.raises(AudioError, match=r"utt9: audio peak \|x\| = 1e\+30 exceeds 1e\+06"):
        validate_waveform(x, SR, source="utt9")
    pcm_scale = x.copy()
    pcm_scale[1000] = 32767.0
    assert validate_waveform(pcm_scale, SR).shape == (SR,)
    assert bool(torch.isfinite(compute_features(torch.from_numpy(pcm_scale), FeatureConfig(kind="kaldi_fbank"))).all())
    # in a corpus: the utterance is reported and skipped, the cache holds finite features only
    data = make_noise_datadir(tmp_path, [0.3, 0.4, 0.5])
    sf.write(data.wavs["u001"], x, SR, subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        cache = FeatureCache.build(data, FeatureConfig(n_mels=20), tmp_path / "cache", progress=False)
    assert list(cache.bad) == ["u001"] and "peak" in cache.bad["u001"] and "u001" in caplog.text
    assert np.isfinite(np.asarray(cache.feats)).all()


def test_per_utterance_normalisation_of_silence_is_finite() -> None:
    """All-silent input has constant features (the log floor): zero variance must not divide by 0."""
    feats = compute_features(torch.zeros(SR), FeatureConfig(n_mels=20))
    torch.testing.assert_close(feats, torch.full_like(feats, float(np.log(1e-10))))  # the logmel floor
    batch = torch.nn.utils.rnn.pad_sequence([feats, feats[:50]], batch_first=True)
    out = normalise(batch, "utterance", None, torch.tensor([feats.shape[0], 50]))
    assert bool(torch.isfinite(out).all()) and float(out[:, :50].abs().max()) <= 1.0
