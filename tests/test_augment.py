"""phonrec.augment against independent computations (numpy FFTs and convolutions, Schroeder
integration, phonrec.features) and properties (lengths, energies, labels moved with the audio)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from phonrec.augment import (
    DEFAULT,
    STRONG,
    AdaptiveSpecAugmentConfig,
    AugmentConfig,
    adaptive_spec_augment,
    add_noise,
    augment_waveform,
    babble,
    coloured_noise,
    reverberate,
    sample_vtlp_alpha,
    scale_frame_labels,
    scale_segments,
    simulate_rir,
    speed_fraction,
    speed_perturb,
    time_warp,
    vtlp_logmel,
    vtlp_mel_filterbank,
    vtlp_warp_frequencies,
)
from phonrec.data.segments import Segment
from phonrec.features import (
    FeatureConfig,
    SpecAugmentConfig,
    compute_features,
    kaldi_mel_filterbank,
    num_frames,
    slaney_mel_filterbank,
    spec_augment,
)

SR = 16000


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tone(freq: float, seconds: float = 1.0, sr: int = SR) -> torch.Tensor:
    t = torch.arange(int(sr * seconds), dtype=torch.float64) / sr
    return (0.5 * torch.sin(2 * math.pi * freq * t)).float()


def _peak_hz(x: torch.Tensor, sr: int = SR) -> float:
    """Frequency of the largest FFT bin (Hann-windowed, zero-padded 8x), numpy."""
    y = x.double().numpy()
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=8 * len(y)))
    return float(np.argmax(spectrum)) * sr / (8 * len(y))


def _speechlike(seconds: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Harmonics of 120 Hz plus a little noise: something with structure in every band."""
    t = torch.arange(int(SR * seconds), dtype=torch.float64) / SR
    x = sum(torch.sin(2 * math.pi * 120 * k * t) / k for k in range(1, 40))
    return (0.1 * x + 0.01 * torch.randn(t.shape, generator=_gen(seed), dtype=torch.float64)).float()


# --- speed perturbation ----------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [0.9, 1.0, 1.1, 0.95, 1.234])
def test_speed_perturb_length_is_n_over_factor(factor: float) -> None:
    wave = _speechlike(0.73)
    out = speed_perturb(wave, SR, factor)
    used = float(speed_fraction(factor))
    assert abs(out.numel() - wave.numel() / used) <= 1.0
    if factor in (0.9, 1.0, 1.1, 0.95):
        assert used == factor  # the usual factors are used exactly


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturb_multiplies_a_tone_frequency(factor: float) -> None:
    out = speed_perturb(_tone(440.0), SR, factor)
    assert _peak_hz(out) == pytest.approx(440.0 * factor, abs=1.0)


def test_speed_perturb_identity_and_errors() -> None:
    wave = _speechlike(0.1)
    assert torch.equal(speed_perturb(wave, SR, 1.0), wave)
    with pytest.raises(ValueError, match="positive number"):
        speed_perturb(wave, SR, 0.0)
    with pytest.raises(ValueError, match="1-D float waveform"):
        speed_perturb(wave[None], SR, 0.9)
    with pytest.raises(ValueError, match="sample rate"):
        speed_perturb(wave, 0, 0.9)


def test_scale_frame_labels_by_hand() -> None:
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2, 3])
    # factor 2 (twice as fast): output frame t is input frame 2t
    assert scale_frame_labels(labels, 2.0, 5).tolist() == [0, 1, 1, 2, 2]
    # factor 0.5 (twice as slow): output frame t is input frame round(t / 2) (halves round up)
    assert scale_frame_labels(labels, 0.5, 6).tolist() == [0, 0, 0, 1, 1, 1]
    # past the end: the last input frame
    assert scale_frame_labels(labels, 1.1, 11).tolist()[-1] == 3
    assert scale_frame_labels(["a", "b", "b", "c"], 0.9, 5) == ["a", "b", "b", "c", "c"]


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.25])
def test_scale_frame_labels_properties(factor: float) -> None:
    g = _gen(1)
    runs = torch.randint(5, 12, (30,), generator=g)  # runs longer than a few frames
    symbols = torch.arange(30) % 7
    labels = torch.repeat_interleave(symbols, runs)
    T_out = num_frames(int(round(len(labels) * 160 / factor)) + 240)
    out = scale_frame_labels(labels, factor, T_out)
    assert out.shape == (T_out,) and out.dtype == labels.dtype
    for t in range(T_out):
        assert out[t] == labels[min(len(labels) - 1, int(math.floor(t * factor + 0.5)))]
    count_runs = lambda x: int((x[1:] != x[:-1]).sum()) + 1  # noqa: E731
    assert count_runs(out) == count_runs(labels)


def test_scale_segments() -> None:
    segs = [Segment("sil", 0.0, 0.1), Segment("ah", 0.1, 0.35)]
    out = scale_segments(segs, 1.25)
    assert [s.label for s in out] == ["sil", "ah"]
    assert [t for s in out for t in (s.start, s.end)] == pytest.approx([0.0, 0.08, 0.08, 0.28], abs=1e-12)


# --- VTLP ------------------------------------------------------------------------------------------


def test_vtlp_warp_identity_monotonic_and_fixed_ends() -> None:
    freqs = torch.linspace(0, SR / 2, 1001, dtype=torch.float64)
    assert torch.equal(vtlp_warp_frequencies(freqs, 1.0, SR), freqs)
    for alpha in (0.9, 0.95, 1.05, 1.1):
        warped = vtlp_warp_frequencies(freqs, alpha, SR)
        assert bool((warped[1:] > warped[:-1]).all())
        assert float(warped[0]) == 0.0 and float(warped[-1]) == pytest.approx(SR / 2, abs=1e-9)
        # below the boundary the warp is the plain scaling f -> alpha f (Jaitly & Hinton)
        low = freqs < 4800 * min(alpha, 1) / alpha
        assert torch.allclose(warped[low], alpha * freqs[low])
        # continuous at the boundary
        assert float((warped[1:] - warped[:-1]).max()) < 1.2 * float(freqs[1] - freqs[0])


@pytest.mark.parametrize("kind", ["logmel", "kaldi_fbank"])
def test_vtlp_filterbank_at_alpha_one_is_phonrecs(kind: str) -> None:
    for n_fft, n_mels, fmin, fmax in ((512, 80, 20.0, 8000.0), (400, 40, 0.0, 7600.0)):
        fb = vtlp_mel_filterbank(n_fft, n_mels, SR, fmin, fmax, 1.0, kind=kind)
        ref = (kaldi_mel_filterbank if kind == "kaldi_fbank" else slaney_mel_filterbank)(SR, n_fft, n_mels, fmin, fmax)
        assert torch.equal(fb, ref)


@pytest.mark.parametrize("kind", ["logmel", "kaldi_fbank", "mfcc"])
def test_vtlp_logmel_at_alpha_one_is_compute_features(kind: str) -> None:
    wave = _speechlike(1.2)
    cfg = FeatureConfig(kind=kind, deltas=1 if kind == "mfcc" else 0)
    got = vtlp_logmel(wave, cfg, 1.0)
    ref = compute_features(wave, cfg)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("alpha", [1.1, 0.9])
def test_vtlp_moves_a_formant_peak(alpha: float) -> None:
    cfg = FeatureConfig()
    wave = _tone(1500.0, 0.3)
    base = compute_features(wave, cfg).mean(0)
    warped = vtlp_logmel(wave, cfg, alpha).mean(0)
    # the peak moves to the mel bin of alpha * 1500 Hz: up for alpha > 1, down for alpha < 1
    target = int(vtlp_mel_filterbank(512, 80, SR, 20.0, 8000.0, 1.0)[round(alpha * 1500 / 31.25)].argmax())
    assert int(warped.argmax()) == target
    assert (int(warped.argmax()) > int(base.argmax())) == (alpha > 1)


def test_vtlp_errors() -> None:
    with pytest.raises(ValueError, match="positive alpha"):
        vtlp_warp_frequencies(torch.tensor([100.0]), 0.0, SR)
    with pytest.raises(ValueError, match="frequencies in"):
        vtlp_warp_frequencies(torch.tensor([9000.0]), 1.1, SR)
    with pytest.raises(ValueError, match="f_hi"):
        vtlp_warp_frequencies(torch.tensor([100.0]), 1.1, SR, f_hi=9000.0)
    with pytest.raises(ValueError, match="kind"):
        vtlp_mel_filterbank(512, 80, SR, 20.0, 8000.0, 1.0, kind="plp")


# --- noise and reverberation -----------------------------------------------------------------------


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_coloured_noise_spectral_slope(exponent: float) -> None:
    n = 2**15
    x = coloured_noise(n, exponent, _gen(3)).double().numpy()
    assert np.sqrt(np.mean(x**2)) == pytest.approx(1.0, rel=1e-5)
    power = np.abs(np.fft.rfft(x)) ** 2
    k = np.arange(1, len(power))
    slope = np.polyfit(np.log(k), np.log(power[1:]), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.05)


def test_babble_is_a_mix_of_normalised_loops() -> None:
    g = _gen(4)
    a = torch.randn(3000, generator=g) * 0.3
    one = babble([a], 1, 5000, _gen(5))
    assert one.shape == (5000,)
    # one speaker: a looped, rolled copy of the unit-RMS utterance
    unit = (a / a.double().square().mean().sqrt()).float()
    start = int(torch.nonzero(torch.isclose(unit, one[0]), as_tuple=True)[0][0])
    assert torch.allclose(one, unit.roll(-start).repeat(2)[:5000], atol=1e-6)
    many = babble([a, torch.randn(2000, generator=g), torch.randn(4000, generator=g)], 5, 1000, _gen(6))
    assert many.shape == (1000,) and bool(torch.isfinite(many).all())
    with pytest.raises(ValueError, match="at least one"):
        babble([], 1, 100, _gen())


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 23.5])
def test_add_noise_reaches_the_asked_snr(snr_db: float) -> None:
    wave = _speechlike(0.5)
    noise = coloured_noise(3000, 1.0, _gen(7))  # shorter: looped
    out = add_noise(wave, noise, snr_db)
    assert out.shape == wave.shape
    residual = (out.double() - wave.double()).numpy()
    measured = 10 * np.log10(np.mean(wave.double().numpy() ** 2) / np.mean(residual**2))
    assert measured == pytest.approx(snr_db, abs=0.01)
    assert torch.equal(add_noise(torch.zeros(100), noise, 5.0), torch.zeros(100))
    with pytest.raises(ValueError, match="energy"):
        add_noise(wave, torch.zeros(10), 5.0)


def _schroeder_rt60(h: np.ndarray, sr: int) -> float:
    """RT60 from the energy decay curve's slope between -5 and -25 dB (T20), Schroeder integration."""
    edc = np.cumsum((h**2)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    sel = (edc_db <= -5) & (edc_db >= -25)
    slope = np.polyfit(np.arange(len(h))[sel] / sr, edc_db[sel], 1)[0]  # dB per second
    return -60.0 / slope


@pytest.mark.parametrize("rt60", [0.2, 0.5, 0.9])
def test_simulated_rir_has_the_asked_rt60(rt60: float) -> None:
    h = simulate_rir(SR, rt60, _gen(8)).double().numpy()
    assert np.sum(h**2) == pytest.approx(1.0, rel=1e-5)
    assert abs(h[0]) == np.abs(h).max()  # the direct path first, at sample 0
    assert _schroeder_rt60(h, SR) == pytest.approx(rt60, rel=0.15)


def test_reverberate_is_a_normalised_numpy_convolution() -> None:
    wave = _speechlike(0.4)
    rir = simulate_rir(SR, 0.3, _gen(9))
    out = reverberate(wave, rir)
    ref = np.convolve(wave.double().numpy(), rir.double().numpy())[: wave.numel()]
    ref *= np.sqrt(np.sum(wave.double().numpy() ** 2) / np.sum(ref**2))
    assert out.shape == wave.shape and out.dtype == wave.dtype
    np.testing.assert_allclose(out.double().numpy(), ref, atol=1e-5)
    assert float(out.double().square().sum()) == pytest.approx(float(wave.double().square().sum()), rel=1e-5)


# --- SpecAugment -----------------------------------------------------------------------------------


def _batch(B: int = 3, T: int = 120, F: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    feats = torch.randn(B, T, F, generator=_gen(10)) + 3.0
    lengths = torch.tensor([T, 97, 11][:B])
    return feats, lengths


def test_time_warp_identity_lengths_and_ends() -> None:
    feats, lengths = _batch()
    assert torch.equal(time_warp(feats, lengths, 0, _gen()), feats)
    for seed in range(5):
        out = time_warp(feats, lengths, 8, _gen(seed))
        assert out.shape == feats.shape
        for b, L in enumerate(lengths.tolist()):
            assert torch.equal(out[b, L:], feats[b, L:])  # padding untouched
            assert torch.equal(out[b, 0], feats[b, 0]) and torch.equal(out[b, L - 1], feats[b, L - 1])
        assert torch.equal(out[2], feats[2])  # 11 frames < 2 W + 3: left alone
        assert not torch.equal(out[0], feats[0])
    single = time_warp(feats[0], None, 8, _gen(1))
    assert torch.equal(single, time_warp(feats[:1], None, 8, _gen(1))[0])


def test_time_warp_moves_a_ramp_piecewise_linearly() -> None:
    ramp = torch.arange(50, dtype=torch.float64)[:, None].repeat(1, 2)
    out = time_warp(ramp, 50, 6, _gen(2))[:, 0]
    steps = out[1:] - out[:-1]
    assert bool((steps > 0).all())  # monotonic: frames keep their order
    assert len(torch.unique(steps.round(decimals=9))) <= 3  # two slopes (and the step across the knot)


def test_adaptive_spec_augment_reduces_to_spec_augment() -> None:
    feats, lengths = _batch()
    cfg = AdaptiveSpecAugmentConfig(freq_masks=2, freq_width=5, time_masks=3, time_width=20, time_ratio=0.2)
    old = SpecAugmentConfig(freq_masks=2, freq_width=5, time_masks=3, time_width=20, time_ratio=0.2)
    for seed in range(4):
        assert torch.equal(
            adaptive_spec_augment(feats, lengths, cfg, _gen(seed)), spec_augment(feats, lengths, old, _gen(seed))
        )


def test_adaptive_time_masks_grow_with_length() -> None:
    T, F = 1000, 4
    feats = torch.ones(2, T, F)
    lengths = torch.tensor([1000, 100])
    cfg = AdaptiveSpecAugmentConfig(
        freq_masks=0, time_masks=0, time_width=10, time_ratio=1.0, time_masks_per_frame=0.02, max_time_masks=15
    )
    masked = [0, 0]
    for seed in range(20):
        out = adaptive_spec_augment(feats, lengths, cfg, _gen(seed))
        assert bool((out[1, 100:] == 1).all())  # padding never masked
        for b in range(2):
            masked[b] += int((out[b, : lengths[b], 0] == 0).sum())
    # 15 masks (capped from 20) of mean width 5 on the long one, 2 on the short one
    assert masked[0] / 20 == pytest.approx(15 * 5, rel=0.35)
    assert masked[1] / 20 == pytest.approx(2 * 5, rel=0.5)
    with pytest.raises(ValueError, match="time_masks_per_frame"):
        AdaptiveSpecAugmentConfig(time_masks_per_frame=2.0)


# --- configuration and the waveform entry point ----------------------------------------------------


def test_augment_config_defaults_off_and_validation() -> None:
    wave = _speechlike(0.3)
    g = _gen(11)
    state = g.get_state()
    out, factor = augment_waveform(wave, SR, AugmentConfig(), g)
    assert out is wave and factor == 1.0 and torch.equal(g.get_state(), state)  # off draws nothing
    assert sample_vtlp_alpha(AugmentConfig(), g) == 1.0
    cfg = AugmentConfig(speed_factors=[0.9, 1.1], specaugment={"freq_masks": 1, "time_warp": 3})
    assert cfg.speed_factors == (0.9, 1.1) and cfg.specaugment.time_warp == 3
    for kwargs, field in (
        ({"speed_factors": (0.0,)}, "augment.speed_factors"),
        ({"vtlp_alpha": (1.1, 0.9)}, "augment.vtlp_alpha"),
        ({"noise_prob": 1.5}, "augment.noise_prob"),
        ({"noise_snr_db": (10.0,)}, "augment.noise_snr_db"),
        ({"babble_speakers": (0, 3)}, "augment.babble_speakers"),
        ({"reverb_rt60": (0.0, 0.5)}, "augment.reverb_rt60"),
        ({"specaugment": {"time_warp": -1}}, "augment.specaugment"),
        ({"specaugment": {"warp": 1}}, "augment.specaugment"),
    ):
        with pytest.raises(ValueError, match=field):
            AugmentConfig(**kwargs)
    assert DEFAULT.speed_factors == (0.9, 1.0, 1.1) and STRONG.reverb_prob > 0


def test_augment_waveform_strong_is_reproducible_and_labels_follow() -> None:
    wave = _speechlike(1.0)
    others = [_speechlike(0.7, seed=s) for s in (1, 2, 3)]
    seen = set()
    for seed in range(6):
        out, factor = augment_waveform(wave, SR, STRONG, _gen(seed), others=others)
        again, factor2 = augment_waveform(wave, SR, STRONG, _gen(seed), others=others)
        assert torch.equal(out, again) and factor == factor2
        assert factor in (0.9, 1.0, 1.1)
        assert abs(out.numel() - wave.numel() / factor) <= 1.0
        assert bool(torch.isfinite(out).all())
        labels = torch.arange(num_frames(wave.numel())) // 10
        new = scale_frame_labels(labels, factor, num_frames(out.numel()))
        assert int(new[-1]) == int(labels[-1]) and int(new[0]) == 0
        seen.add(factor)
    assert len(seen) > 1
    alpha = sample_vtlp_alpha(STRONG, _gen(0))
    assert 0.9 <= alpha <= 1.1
