"""phonrec.features against independent computations: librosa, torchaudio (Kaldi fbank,
compute_deltas), numpy statistics and hand-built cases."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from phonrec.config import CONF_DIR
from phonrec.features import (
    CMVN,
    FeatureConfig,
    SpecAugmentConfig,
    add_deltas,
    compute_features,
    compute_features_batch,
    normalise,
    num_frames,
    per_utterance_cmvn,
    slaney_mel_filterbank,
    speaker_statistics,
    spec_augment,
)

SR = 16000


def _noise(seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(int(SR * seconds), generator=g, dtype=torch.float64) * 2 - 1).float() * 0.5


@pytest.fixture(scope="module")
def flite_wave(tmp_path_factory: pytest.TempPathFactory) -> torch.Tensor:
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    path = tmp_path_factory.mktemp("flite") / "utt.wav"
    subprocess.run(
        ["flite", "-voice", "slt", "-t", "She had your dark suit in greasy wash water.", "-o", str(path)],
        check=True,
        capture_output=True,
    )
    data, rate = sf.read(str(path), dtype="float32")
    assert rate == SR
    return torch.from_numpy(data)


@pytest.fixture(params=["noise", "flite"])
def wave(request: pytest.FixtureRequest) -> torch.Tensor:
    return _noise() if request.param == "noise" else request.getfixturevalue("flite_wave")


def _librosa_logmel(y: np.ndarray, n_mels: int = 80, fmin: float = 20.0, fmax: float = 8000.0) -> np.ndarray:
    """librosa log-mel with snip-edges framing: frames of n_fft=512 centred on the 400-sample window,
    so pad 56 zeros each side to put window t on samples [160 t, 160 t + 400). Returns (T, n_mels)."""
    pad = (512 - 400) // 2
    S = librosa.feature.melspectrogram(
        y=np.pad(y.astype(np.float64), pad),
        sr=SR,
        n_fft=512,
        hop_length=160,
        win_length=400,
        window="hann",
        center=False,
        power=2.0,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
    )
    return np.log(np.maximum(S, 1e-10)).T


def _assert_log_energies_close(ours: np.ndarray, ref: np.ndarray, atol_near: float, power_tol: float) -> None:
    """float32 FFTs are accurate relative to a frame's strongest bin, not to each bin: compare log
    values within 15 nats (65 dB) of the frame's peak to ``atol_near``, and every energy, in the
    power domain, to ``power_tol`` times the frame's peak energy."""
    peak = ref.max(axis=1, keepdims=True)
    near = ref >= peak - 15.0
    assert near.mean() > 0.8  # most of the spectrum is compared tightly
    np.testing.assert_allclose(ours[near], ref[near], atol=atol_near, rtol=0)
    power_err = np.abs(np.exp(ours.astype(np.float64)) - np.exp(ref)) / np.exp(peak)
    assert power_err.max() <= power_tol


def test_logmel_matches_librosa(wave: torch.Tensor) -> None:
    feats = compute_features(wave, FeatureConfig())
    ref = _librosa_logmel(wave.numpy())
    assert feats.dtype == torch.float32
    assert feats.shape == ref.shape == (num_frames(len(wave)), 80)
    _assert_log_energies_close(feats.numpy(), ref, atol_near=1e-4, power_tol=1e-6)


def test_logmel_other_band_and_size_matches_librosa() -> None:
    wave = _noise(0.5, seed=3)
    feats = compute_features(wave, FeatureConfig(n_mels=40, fmin=100.0, fmax=7000.0))
    np.testing.assert_allclose(feats.numpy(), _librosa_logmel(wave.numpy(), 40, 100.0, 7000.0), atol=2e-4, rtol=0)


def test_slaney_filterbank_matches_librosa() -> None:
    for n_mels, fmin, fmax in [(80, 20.0, 8000.0), (23, 0.0, 4000.0), (128, 300.0, 7600.0)]:
        ours = slaney_mel_filterbank(SR, 512, n_mels, fmin, fmax).numpy().T
        ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float64)
        np.testing.assert_allclose(ours, ref, atol=1e-9, rtol=1e-6)


def test_kaldi_fbank_matches_torchaudio(wave: torch.Tensor) -> None:
    feats = compute_features(wave, FeatureConfig(kind="kaldi_fbank"))
    # Kaldi works on 16-bit sample values; float64 reference. torchaudio builds its mel banks in
    # float32 (relative error ~1e-5 per weight), which bounds the agreement on narrow low bins.
    ref = torchaudio.compliance.kaldi.fbank(
        wave.double().unsqueeze(0) * 32768,
        num_mel_bins=80,
        frame_length=25.0,
        frame_shift=10.0,
        dither=0.0,
        preemphasis_coefficient=0.97,
        remove_dc_offset=True,
        window_type="povey",
        round_to_power_of_two=True,
        low_freq=20.0,
        high_freq=0.0,
        snip_edges=True,
        use_energy=False,
        use_log_fbank=True,
        use_power=True,
        sample_frequency=SR,
    )
    assert feats.shape == ref.shape == (num_frames(len(wave)), 80)
    _assert_log_energies_close(feats.numpy(), ref.numpy(), atol_near=1e-3, power_tol=3e-5)


def test_mfcc_is_dct_of_librosa_logmel(wave: torch.Tensor) -> None:
    feats = compute_features(wave, FeatureConfig(kind="mfcc", n_mfcc=13, deltas=0))
    ref = librosa.feature.mfcc(S=_librosa_logmel(wave.numpy()).T, n_mfcc=13, dct_type=2, norm="ortho", lifter=0).T
    assert feats.shape == (num_frames(len(wave)), 13)
    np.testing.assert_allclose(feats.numpy(), ref, atol=2e-3, rtol=0)


def test_features_with_deltas_match_torchaudio_deltas() -> None:
    wave = _noise(0.6, seed=1)
    cfg = FeatureConfig(kind="mfcc", deltas=2)
    feats = compute_features(wave, cfg)
    assert feats.shape == (num_frames(len(wave)), 39) and cfg.dim == 39
    static = torch.from_numpy(
        librosa.feature.mfcc(S=_librosa_logmel(wave.numpy()).T, n_mfcc=13, dct_type=2, norm="ortho", lifter=0)
    ).float()  # (13, T)
    d1 = torchaudio.functional.compute_deltas(static, win_length=5)
    d2 = torchaudio.functional.compute_deltas(d1, win_length=5)
    np.testing.assert_allclose(feats.numpy(), torch.cat([static, d1, d2]).T.numpy(), atol=2e-3, rtol=0)


def test_add_deltas_matches_torchaudio_and_hand_formula() -> None:
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = add_deltas(x, 2)
    assert out.shape == (30, 15)
    d1 = torchaudio.functional.compute_deltas(x.T.contiguous(), win_length=5)
    d2 = torchaudio.functional.compute_deltas(d1, win_length=5)
    torch.testing.assert_close(out, torch.cat([x.T, d1, d2]).T, atol=1e-12, rtol=0)
    # hand formula on a ramp: interior deltas of c_t = 3 t are exactly 3; edges use repeated frames
    ramp = (3.0 * torch.arange(10, dtype=torch.float64))[:, None]
    d = add_deltas(ramp, 1)[:, 1]
    assert torch.allclose(d[2:-2], torch.full((6,), 3.0, dtype=torch.float64))
    # t=0: (1*(c1 - c0) + 2*(c2 - c0)) / 10 = (3 + 12) / 10
    assert d[0].item() == pytest.approx(1.5)
    assert torch.equal(add_deltas(x, 0), x)


def test_num_frames_and_short_input() -> None:
    cfg = FeatureConfig()
    assert (cfg.win_length, cfg.hop_length) == (400, 160)
    for n in [0, 399, 400, 401, 559, 560, 16000, 16001]:
        expected = 0 if n < 400 else 1 + (n - 400) // 160
        assert num_frames(n, cfg) == num_frames(n) == expected
        assert compute_features(torch.zeros(n), cfg).shape == (expected, 80)
    cfg8k = FeatureConfig(sample_rate=8000, n_fft=256, n_mels=40)
    assert (cfg8k.win_length, cfg8k.hop_length) == (200, 80)
    assert compute_features(torch.zeros(8000), cfg8k).shape == (num_frames(8000, 8000), 40)


def test_silence_sits_at_the_log_floor() -> None:
    feats = compute_features(torch.zeros(1600), FeatureConfig())
    assert torch.allclose(feats, torch.full_like(feats, float(np.log(np.float32(1e-10)))))
    kaldi = compute_features(torch.zeros(1600), FeatureConfig(kind="kaldi_fbank"))
    assert torch.allclose(kaldi, torch.full_like(kaldi, float(np.log(np.finfo(np.float32).eps))))


def test_dim_and_kind_defaults() -> None:
    assert FeatureConfig().dim == 80
    assert FeatureConfig(deltas=2).dim == 240
    assert FeatureConfig(kind="mfcc", n_mfcc=20, deltas=1).dim == 40
    k = FeatureConfig(kind="kaldi_fbank")
    assert (k.resolved_window, k.resolved_preemphasis, k.resolved_remove_dc_offset) == ("povey", 0.97, True)
    m = FeatureConfig()
    assert (m.resolved_window, m.resolved_preemphasis, m.resolved_remove_dc_offset) == ("hann", 0.0, False)


@pytest.mark.parametrize(
    "field, value",
    [
        ("kind", "spectrogram"),
        ("sample_rate", 0),
        ("n_mels", -1),
        ("win_ms", 0.0),
        ("hop_ms", float("nan")),
        ("n_fft", 256),
        ("fmin", 9000.0),
        ("fmax", 10.0),
        ("deltas", 3),
        ("dither", -1.0),
        ("preemphasis", 1.5),
        ("window", "blackman"),
        ("log_floor", 0.0),
        ("remove_dc_offset", "yes"),
    ],
)
def test_config_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"FeatureConfig.{field}"):
        FeatureConfig(**{field: value})


def test_mfcc_count_validated() -> None:
    with pytest.raises(ValueError, match="n_mfcc"):
        FeatureConfig(kind="mfcc", n_mels=10, n_mfcc=13)


def test_compute_features_rejects_bad_waves() -> None:
    with pytest.raises(ValueError, match="1-D"):
        compute_features(torch.zeros(2, 1600), FeatureConfig())
    with pytest.raises(ValueError, match="floating"):
        compute_features(torch.zeros(1600, dtype=torch.int16), FeatureConfig())


def test_long_input_matches_librosa() -> None:
    wave = _noise(12.5, seed=4)  # > 1024 frames: computed in several CPU chunks
    feats = compute_features(wave, FeatureConfig())
    assert feats.shape == (num_frames(len(wave)), 80) and feats.shape[0] > 1024
    _assert_log_energies_close(feats.numpy(), _librosa_logmel(wave.numpy()), atol_near=1e-4, power_tol=1e-6)


def test_batch_matches_single_and_zeroes_padding() -> None:
    # 14 rows x 98 frames > 1024: the CPU path groups rows into chunks
    waves = [_noise(1.0, 0), _noise(0.55, 1), _noise(0.3, 2)] + [_noise(0.2 + 0.06 * i, 10 + i) for i in range(11)]
    N = max(len(w) for w in waves)
    batch = torch.zeros(len(waves), N)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    for cfg in [FeatureConfig(), FeatureConfig(kind="kaldi_fbank"), FeatureConfig(kind="mfcc", deltas=1)]:
        feats, lengths = compute_features_batch(batch, torch.tensor([len(w) for w in waves]), cfg)
        assert feats.shape == (len(waves), num_frames(N), cfg.dim)
        for i, w in enumerate(waves):
            single = compute_features(w, cfg)
            assert lengths[i] == single.shape[0] == num_frames(len(w))
            torch.testing.assert_close(feats[i, : lengths[i]], single, atol=1e-4, rtol=0)
            assert bool((feats[i, lengths[i] :] == 0).all())


def test_dither_is_seeded_and_small() -> None:
    wave = _noise(0.3)
    cfg = FeatureConfig(kind="kaldi_fbank", dither=1.0)
    a = compute_features(wave, cfg, generator=torch.Generator().manual_seed(5))
    b = compute_features(wave, cfg, generator=torch.Generator().manual_seed(5))
    c = compute_features(wave, cfg, generator=torch.Generator().manual_seed(6))
    clean = compute_features(wave, FeatureConfig(kind="kaldi_fbank"))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0 < (a - clean).abs().max() < 0.01  # one LSB of noise on a loud signal
    # on digital silence dither lifts the floor to about log(LSB^2 energy) instead of log(eps)
    silent = compute_features(torch.zeros(1600), cfg, generator=torch.Generator().manual_seed(0))
    assert bool((silent > np.log(np.finfo(np.float32).eps) + 5).all())


# ---------------------------------------------------------------------------------------------- CMVN


def _utterances(seed: int = 0, offset: float = 0.0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(int(t), 6, generator=g) * torch.arange(1, 7) + offset for t in [50, 7, 0, 120, 33]]


def test_cmvn_statistics_match_numpy_on_concatenated_frames() -> None:
    utts = _utterances(offset=1.0e4)  # large offset: a naive float32 sum-of-squares would lose it
    cmvn = CMVN.fit(iter(utts))
    allf = np.concatenate([u.double().numpy() for u in utts])
    assert cmvn.count == allf.shape[0] == 210
    np.testing.assert_allclose(cmvn.mean.numpy(), allf.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cmvn.std.numpy(), allf.std(axis=0), rtol=1e-9)
    normed = cmvn.apply(torch.from_numpy(allf))
    np.testing.assert_allclose(normed.mean(0).numpy(), 0.0, atol=1e-8)
    np.testing.assert_allclose(normed.std(0, unbiased=False).numpy(), 1.0, atol=1e-8)
    batch = torch.from_numpy(allf[:40]).reshape(2, 20, 6)
    expected = torch.from_numpy((allf[:40] - allf.mean(0)) / allf.std(0)).reshape(2, 20, 6)
    torch.testing.assert_close(cmvn.apply(batch), expected)


def test_cmvn_save_load_round_trip(tmp_path: Path) -> None:
    cmvn = CMVN.fit(_utterances(1))
    path = tmp_path / "cmvn.json"
    cmvn.save(path)
    data = json.loads(path.read_text())
    assert data["dim"] == 6 and len(data["mean"]) == 6
    back = CMVN.load(path, dim=6)
    assert torch.equal(back.mean, cmvn.mean) and torch.equal(back.std, cmvn.std) and back.count == cmvn.count


def test_cmvn_load_errors_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    CMVN.fit(_utterances(2)).save(good)
    with pytest.raises(ValueError, match="good.json.*expected 80"):
        CMVN.load(good, dim=80)
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('{"format": "phonrec-cmvn",\n "dim": 2,\n "mean": [1, 2\n')
    with pytest.raises(ValueError, match=r"broken.json:\d+: malformed"):
        CMVN.load(bad_json)
    short = tmp_path / "short.json"
    data = json.loads(good.read_text())
    data["std"] = data["std"][:3]
    short.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="short.json.*std.*6"):
        CMVN.load(short)
    zero = tmp_path / "zero.json"
    data = json.loads(good.read_text())
    data["std"][0] = 0.0
    zero.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="zero.json.*positive"):
        CMVN.load(zero)
    with pytest.raises(ValueError, match="missing.json"):
        CMVN.load(tmp_path / "missing.json")
    other = tmp_path / "other.json"
    other.write_text("[1, 2, 3]")
    with pytest.raises(ValueError, match="other.json"):
        CMVN.load(other)


def test_cmvn_fit_and_apply_errors() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        CMVN.fit([])
    with pytest.raises(ValueError, match="item 1.*6 feature dims"):
        CMVN.fit([torch.zeros(3, 6), torch.zeros(3, 5)])
    with pytest.raises(ValueError, match="item 0.*NaN"):
        CMVN.fit([torch.tensor([[float("nan")] * 6])])
    with pytest.raises(ValueError, match=r"\(\.\.\., 6\)"):
        CMVN.fit(_utterances()).apply(torch.zeros(4, 5))


def test_cmvn_constant_dimension_is_floored() -> None:
    cmvn = CMVN.fit([torch.ones(10, 3)])
    assert bool((cmvn.std > 0).all())
    assert torch.equal(cmvn.apply(torch.ones(2, 3)), torch.zeros(2, 3))


def test_speaker_cmvn_matches_numpy() -> None:
    """Per-speaker CMVN (Kaldi's apply-cmvn with utt2spk): the statistics pool every frame of the
    speaker's utterances; one utterance and a padded batch are normalised by the statistics given."""
    g = torch.Generator().manual_seed(5)
    utts = [torch.randn(n, 6, generator=g) * 3 + 7 for n in (30, 12, 45)]
    stats = speaker_statistics(utts[:2])
    frames = np.concatenate([u.double().numpy() for u in utts[:2]])
    assert stats.shape == (2, 6) and stats.dtype == torch.float32
    np.testing.assert_allclose(stats[0].numpy(), frames.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats[1].numpy(), frames.std(0), rtol=1e-6)
    ref = (utts[1].double().numpy() - frames.mean(0)) / frames.std(0)
    np.testing.assert_allclose(normalise(utts[1], "speaker", speaker_stats=stats).numpy(), ref, atol=1e-5)
    other = speaker_statistics(utts[2:])
    batch = torch.nn.utils.rnn.pad_sequence(utts[:2], batch_first=True)
    out = normalise(batch, "speaker", lengths=torch.tensor([30, 12]), speaker_stats=torch.stack([other, stats]))
    np.testing.assert_allclose(out[1, :12].numpy(), ref, atol=1e-5)
    x2 = utts[2].double().numpy()
    np.testing.assert_allclose(out[0].numpy(), (utts[0].double().numpy() - x2.mean(0)) / x2.std(0), atol=1e-5)
    # a recording without a known speaker is its own speaker
    torch.testing.assert_close(normalise(utts[0], "speaker"), per_utterance_cmvn(utts[0]))
    with pytest.raises(ValueError, match="speaker statistics"):
        normalise(utts[0], "speaker", speaker_stats=stats[:, :3])


def test_per_utterance_cmvn_matches_numpy() -> None:
    x = torch.randn(40, 8, generator=torch.Generator().manual_seed(3)) * 4 + 2
    ref = (x.double().numpy() - x.double().numpy().mean(0)) / x.double().numpy().std(0)
    out = per_utterance_cmvn(x)
    assert out.dtype == x.dtype
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    assert torch.equal(per_utterance_cmvn(torch.full((5, 2), 3.0)), torch.zeros(5, 2))
    with pytest.raises(ValueError):
        per_utterance_cmvn(torch.zeros(0, 8))


# ---------------------------------------------------------------------------------------------- SpecAugment


def _masked_regions(orig: torch.Tensor, out: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Given one utterance whose values are never 0, return (time frames fully zeroed (T,),
    frequency bins zeroed in every valid frame (F,))."""
    zero = out[:length] == 0
    return zero.all(dim=1), zero.all(dim=0)


def test_spec_augment_masks_only_valid_frames_within_bounds() -> None:
    B, T, F = 4, 300, 40
    lengths = torch.tensor([300, 200, 61, 10])
    cfg = SpecAugmentConfig(freq_masks=2, freq_width=7, time_masks=3, time_width=20, time_ratio=0.05)
    masked_any_time, masked_any_freq = False, False
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        feats = torch.rand(B, T, F, generator=g) + 1.0  # never 0
        pad = torch.arange(T)[None, :] >= lengths[:, None]
        feats[pad] = -5.0  # padding sentinel
        before = feats.clone()
        out = spec_augment(feats, lengths, cfg, generator=g)
        assert torch.equal(feats, before), "input must not be modified"
        assert out.shape == feats.shape and out is not feats
        assert torch.equal(out[pad], feats[pad]), "padding frames must never change"
        changed = out != feats
        assert bool((out[changed] == 0).all())
        for b in range(B):
            n = int(lengths[b])
            t_mask, f_mask = _masked_regions(feats[b], out[b], n)
            # every changed element lies in a fully masked frame or a fully masked bin
            explained = t_mask[:, None] | f_mask[None, :]
            assert bool((~changed[b, :n] | explained).all())
            max_time = min(cfg.time_width, int(cfg.time_ratio * n))
            assert int(t_mask.sum()) <= cfg.time_masks * max_time
            assert int(f_mask.sum()) <= cfg.freq_masks * cfg.freq_width
            masked_any_time |= bool(t_mask.any())
            masked_any_freq |= bool(f_mask.any())
        # the 10-frame utterance: floor(0.05 * 10) = 0 -> no time mask possible
        assert not bool(_masked_regions(feats[3], out[3], 10)[0].any())
    assert masked_any_time and masked_any_freq


def test_spec_augment_is_reproducible_and_can_be_disabled() -> None:
    feats = torch.rand(2, 100, 20) + 1
    lengths = torch.tensor([100, 80])
    cfg = SpecAugmentConfig()
    a = spec_augment(feats, lengths, cfg, generator=torch.Generator().manual_seed(1))
    b = spec_augment(feats, lengths, cfg, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    off = SpecAugmentConfig(freq_masks=0, time_masks=0)
    assert torch.equal(spec_augment(feats, lengths, off), feats)


def test_spec_augment_validation() -> None:
    with pytest.raises(ValueError, match="time_ratio"):
        SpecAugmentConfig(time_ratio=1.5)
    with pytest.raises(ValueError, match="freq_width"):
        SpecAugmentConfig(freq_width=-1)
    with pytest.raises(ValueError, match="lengths"):
        spec_augment(torch.zeros(2, 10, 4), torch.tensor([10, 11]), SpecAugmentConfig())
    with pytest.raises(ValueError, match=r"\(B, T, F\)"):
        spec_augment(torch.zeros(10, 4), torch.tensor([10]), SpecAugmentConfig())


# ---------------------------------------------------------------------------------------------- Hydra group


@pytest.mark.parametrize("name", ["logmel", "kaldi_fbank", "mfcc"])
def test_hydra_feature_group_matches_the_dataclasses(name: str) -> None:
    import dataclasses

    from omegaconf import OmegaConf

    path = CONF_DIR / "features" / f"{name}.yaml"
    conf = OmegaConf.to_container(OmegaConf.load(path))
    assert conf.pop("cmvn") in ("global", "utterance", "speaker", "none")
    assert set(conf) == {f.name for f in dataclasses.fields(FeatureConfig)}
    cfg = FeatureConfig(**conf)
    assert cfg.kind == name
    # the explicit values in the file are the kind's defaults
    default = FeatureConfig(kind=name)
    assert (cfg.resolved_window, cfg.resolved_preemphasis, cfg.resolved_remove_dc_offset, cfg.resolved_log_floor) == (
        default.resolved_window,
        default.resolved_preemphasis,
        default.resolved_remove_dc_offset,
        pytest.approx(default.resolved_log_floor),
    )


# the explicit values the three groups held before they left the kind-dependent fields null
_GROUP_VALUES_BEFORE = {
    "logmel": dict(deltas=0, preemphasis=0.0, remove_dc_offset=False, window="hann", log_floor=1.0e-10),
    "kaldi_fbank": dict(
        deltas=0, preemphasis=0.97, remove_dc_offset=True, window="povey", log_floor=1.1920928955078125e-07
    ),
    "mfcc": dict(deltas=2, preemphasis=0.0, remove_dc_offset=False, window="hann", log_floor=1.0e-10),
}


def _group_features_config(overrides: list[str]) -> FeatureConfig:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from phonrec.features import features_from_group

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return features_from_group(OmegaConf.to_container(cfg.features, resolve=True))[0]


@pytest.mark.parametrize("name", ["logmel", "kaldi_fbank", "mfcc"])
def test_each_feature_group_computes_what_it_did(name: str) -> None:
    wave = _noise(0.7, seed=3)
    before = FeatureConfig(kind=name, **_GROUP_VALUES_BEFORE[name])
    now = _group_features_config([f"features={name}"])
    assert now.dim == before.dim
    assert torch.equal(compute_features(wave, now), compute_features(wave, before))


def test_kind_over_another_group_takes_the_kinds_defaults() -> None:
    cfg = _group_features_config(["features=logmel", "features.kind=kaldi_fbank"])
    assert (cfg.resolved_window, cfg.resolved_preemphasis, cfg.resolved_remove_dc_offset) == ("povey", 0.97, True)
    assert cfg.resolved_log_floor == torch.finfo(torch.float32).eps and cfg.resolved_deltas == 0
    wave = _noise(0.5, seed=4)
    assert torch.equal(compute_features(wave, cfg), compute_features(wave, FeatureConfig(kind="kaldi_fbank")))
    mfcc = _group_features_config(["features=logmel", "features.kind=mfcc"])
    assert mfcc.resolved_deltas == 2 and mfcc.dim == 39
    # an explicit override still wins over the kind's default
    hann = _group_features_config(["features=logmel", "features.kind=kaldi_fbank", "features.window=hann"])
    assert hann.resolved_window == "hann" and hann.resolved_preemphasis == 0.97
