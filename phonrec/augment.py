"""Waveform and feature augmentation: speed, VTLP, coloured noise, babble, reverberation, SpecAugment.

Every operation is a pure function; randomness comes only from an explicit ``torch.Generator``
argument, so a seeded generator reproduces the same augmented data. The stages, in the order
:func:`augment_waveform` applies the waveform ones::

    speed perturbation (resampling)  ->  reverberation (simulated RIR)  ->  additive noise / babble
        then, at feature time:  VTLP (warped mel filterbank)  ->  SpecAugment (time warp, masks)

Reverberation comes before noise as in Kaldi's ``reverberate_data_dir.py``: background noise
reaches the microphone unreverberated. The simulated RIR's direct path is at sample 0, so
reverberation moves no label; speed perturbation does, and the caller rescales the labels with
:func:`scale_frame_labels` or :func:`scale_segments` and the factor :func:`augment_waveform` returns.

Nothing is downloaded: noise is generated (:func:`coloured_noise`), babble is mixed from other
training utterances (:func:`babble`), rooms are simulated (:func:`simulate_rir`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from fractions import Fraction

import torch
import torchaudio.functional
from torch import Tensor

from phonrec.data.segments import Segment
from phonrec.features import (
    FeatureConfig,
    SpecAugmentConfig,
    add_deltas,
    compute_features,
    dct_matrix,
    feature_window,
    fft_bin_frequencies,
    kaldi_mel_filterbank,
    power_spectrum,
    slaney_mel_filterbank,
    spec_augment,
)

SPEED_MAX_DENOMINATOR = 100  # speed factors are used as fractions a/b with b <= 100 (0.9 = 9/10)


def _is_number(x: object) -> bool:
    """A finite real number (bools are not numbers here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: object) -> bool:
    """An integer (bools are not integers here)."""
    return isinstance(x, int) and not isinstance(x, bool)


def _check_wave(wave: Tensor, where: str) -> None:
    if not isinstance(wave, Tensor) or wave.dim() != 1 or not wave.dtype.is_floating_point or wave.numel() == 0:
        shape = tuple(wave.shape) if isinstance(wave, Tensor) else type(wave).__name__
        dtype = f" {wave.dtype}" if isinstance(wave, Tensor) else ""
        raise ValueError(f"{where}: expected a non-empty 1-D float waveform (N,), got {shape}{dtype}")


def _check_rate(sample_rate: int, where: str) -> None:
    if not _is_int(sample_rate) or sample_rate <= 0:
        raise ValueError(f"{where}: expected a positive integer sample rate, got {sample_rate!r}")


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    """One draw from U[low, high] (a draw is made even when ``low == high``, so streams stay aligned)."""
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _randint(low: int, high: int, generator: torch.Generator) -> int:
    """One integer uniform in [low, high] (inclusive)."""
    return int(torch.randint(low, high + 1, (), generator=generator))


# ----------------------------------------------------------------------------------------------
# Speed perturbation


def speed_fraction(factor: float) -> Fraction:
    """The rational factor ``a/b`` (``b <= SPEED_MAX_DENOMINATOR``) that :func:`speed_perturb` uses for
    ``factor``; ``float(speed_fraction(f))`` is the factor labels must be rescaled by (exactly ``f``
    for the usual 0.9 / 1.0 / 1.1)."""
    if not _is_number(factor) or factor <= 0:
        raise ValueError(f"speed factor: expected a positive number, got {factor!r}")
    fraction = Fraction(factor).limit_denominator(SPEED_MAX_DENOMINATOR)
    if fraction <= 0:
        raise ValueError(f"speed factor: {factor!r} is below the smallest usable factor 1/{SPEED_MAX_DENOMINATOR}")
    return fraction


def speed_perturb(wave: Tensor, sample_rate: int, factor: float) -> Tensor:
    """Play ``wave`` ``factor`` times faster: tempo and pitch both scale by ``factor`` (Kaldi's and
    ESPnet's speed perturbation, sox ``speed``).

    The waveform is resampled by the rational ratio ``b/a`` of ``factor = a/b``
    (:func:`speed_fraction`; torchaudio's windowed-sinc ``resample``) and read back at
    ``sample_rate``, so a tone at ``f`` Hz comes out at ``factor * f`` Hz.

    Args:
        wave: (N,) float waveform at ``sample_rate``.
        sample_rate: rate of ``wave`` and of the output, Hz.
        factor: speed factor, e.g. 0.9, 1.0 or 1.1 (> 1 is faster and shorter).

    Returns:
        (M,) with ``M = ceil(N * b / a)``, within one sample of ``N / factor``; ``wave`` itself
        (not a copy) when the factor is 1.
    """
    _check_wave(wave, "speed_perturb")
    _check_rate(sample_rate, "speed_perturb")
    fraction = speed_fraction(factor)
    if fraction == 1:
        return wave
    return torchaudio.functional.resample(wave, orig_freq=fraction.numerator, new_freq=fraction.denominator)


def scale_frame_labels(labels: Tensor | Sequence[str], factor: float, num_frames_out: int) -> Tensor | list[str]:
    """Frame labels of the speed-perturbed audio: output frame ``t`` takes the label of input frame
    ``round(t * factor)`` (the nearest frame at the same instant of the utterance), clamped to the
    last input frame, so the aligned divergence sees the phone that is actually being spoken.

    Args:
        labels: (T,) frame labels (ids as a tensor, or symbols as a sequence of strings).
        factor: the speed factor the audio was perturbed with (``float(speed_fraction(f))``).
        num_frames_out: number of frames of the perturbed audio's features.

    Returns:
        (num_frames_out,) of the same kind as ``labels`` (tensor of the same dtype, or a list).
    """
    if not _is_number(factor) or factor <= 0:
        raise ValueError(f"scale_frame_labels: expected a positive factor, got {factor!r}")
    if not _is_int(num_frames_out) or num_frames_out < 0:
        raise ValueError(f"scale_frame_labels: expected a non-negative num_frames_out, got {num_frames_out!r}")
    if isinstance(labels, Tensor) and labels.dim() != 1:
        raise ValueError(f"scale_frame_labels: expected labels (T,), got {tuple(labels.shape)}")
    T = len(labels)
    if T == 0:
        if num_frames_out:
            raise ValueError(f"scale_frame_labels: no input labels for {num_frames_out} output frames")
        return labels.clone() if isinstance(labels, Tensor) else []
    index = torch.floor(torch.arange(num_frames_out, dtype=torch.float64) * factor + 0.5).long().clamp_(max=T - 1)
    if isinstance(labels, Tensor):
        return labels[index.to(labels.device)]
    return [labels[i] for i in index.tolist()]


def scale_segments(segments: Sequence[Segment], factor: float) -> list[Segment]:
    """Timed segments (seconds) of the speed-perturbed audio: every time divided by ``factor``."""
    if not _is_number(factor) or factor <= 0:
        raise ValueError(f"scale_segments: expected a positive factor, got {factor!r}")
    return [Segment(s.label, s.start / factor, s.end / factor) for s in segments]


# ----------------------------------------------------------------------------------------------
# Vocal tract length perturbation (Jaitly & Hinton 2013)


def vtlp_warp_frequencies(freqs_hz: Tensor, alpha: float, sample_rate: int, f_hi: float | None = None) -> Tensor:
    """Jaitly & Hinton's piecewise-linear VTLP warp of the frequency axis.

    ``f' = alpha * f`` up to the boundary ``b = f_hi * min(alpha, 1) / alpha``, then the straight
    line from ``(b, alpha * b)`` to ``(S/2, S/2)``::

        f' = S/2 - (S/2 - f_hi * min(alpha, 1)) / (S/2 - b) * (S/2 - f)      for f > b

    so 0 and the Nyquist frequency ``S/2`` are fixed and the map is increasing. A peak at ``f``
    moves to ``f'``: up for ``alpha > 1`` (a shorter vocal tract), down for ``alpha < 1``.

    Args:
        freqs_hz: (...) frequencies in [0, S/2].
        alpha: warp factor, typically drawn from U[0.9, 1.1].
        sample_rate: ``S``, Hz.
        f_hi: boundary frequency, Hz; ``None`` is 0.6 * S/2 (the paper's 4800 Hz at 16 kHz).

    Returns:
        (...) float64 warped frequencies; exactly ``freqs_hz`` for ``alpha = 1``.
    """
    _check_rate(sample_rate, "vtlp_warp_frequencies")
    nyquist = sample_rate / 2
    f_hi = 0.6 * nyquist if f_hi is None else float(f_hi)
    if not _is_number(alpha) or alpha <= 0:
        raise ValueError(f"vtlp_warp_frequencies: expected a positive alpha, got {alpha!r}")
    boundary = f_hi * min(alpha, 1.0) / alpha
    if not 0 < f_hi < nyquist or boundary >= nyquist:
        raise ValueError(
            f"vtlp_warp_frequencies: expected f_hi in (0, {nyquist}) Hz with f_hi * min(alpha, 1) / alpha "
            f"below it, got f_hi={f_hi}, alpha={alpha}"
        )
    freqs = torch.as_tensor(freqs_hz, dtype=torch.float64)
    if bool((freqs < 0).any()) or bool((freqs > nyquist).any()):
        raise ValueError(f"vtlp_warp_frequencies: expected frequencies in [0, {nyquist}] Hz")
    if alpha == 1:
        return freqs.clone()
    slope = (nyquist - f_hi * min(alpha, 1.0)) / (nyquist - boundary)
    return torch.where(freqs <= boundary, freqs * alpha, nyquist - slope * (nyquist - freqs))


def vtlp_mel_filterbank(
    n_fft: int,
    n_mels: int,
    sample_rate: int,
    fmin: float,
    fmax: float,
    alpha: float,
    *,
    kind: str = "logmel",
    f_hi: float | None = None,
) -> Tensor:
    """phonrec's mel filterbank applied to the VTLP-warped spectrum: FFT bin ``k`` (at ``f_k`` Hz)
    feeds the filters as if it were at ``vtlp_warp_frequencies(f_k, alpha)`` Hz.

    Args:
        n_fft, n_mels, sample_rate, fmin, fmax: as in :class:`phonrec.features.FeatureConfig`.
        alpha: VTLP factor (1 = no warp).
        kind: ``logmel``/``mfcc`` (librosa's Slaney filterbank) or ``kaldi_fbank`` (Kaldi's).
        f_hi: warp boundary, see :func:`vtlp_warp_frequencies`.

    Returns:
        (n_fft // 2 + 1, n_mels) float64 (``mel = power @ fb``); for ``alpha = 1`` exactly
        :func:`phonrec.features.slaney_mel_filterbank` (or ``kaldi_mel_filterbank``).
    """
    if kind not in ("logmel", "mfcc", "kaldi_fbank"):
        raise ValueError(f"vtlp_mel_filterbank: expected kind logmel, mfcc or kaldi_fbank, got {kind!r}")
    for name, value in (("n_fft", n_fft), ("n_mels", n_mels)):
        if not _is_int(value) or value <= 0:
            raise ValueError(f"vtlp_mel_filterbank: expected a positive integer {name}, got {value!r}")
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"vtlp_mel_filterbank: expected 0 <= fmin < fmax <= {sample_rate / 2}, got {fmin}, {fmax}")
    warped = vtlp_warp_frequencies(fft_bin_frequencies(sample_rate, n_fft), alpha, sample_rate, f_hi)
    filterbank = kaldi_mel_filterbank if kind == "kaldi_fbank" else slaney_mel_filterbank
    return filterbank(sample_rate, n_fft, n_mels, float(fmin), float(fmax), bin_freqs=warped)


def vtlp_logmel(
    wave: Tensor,
    cfg: FeatureConfig,
    alpha: float,
    *,
    f_hi: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """:func:`phonrec.features.compute_features` with the VTLP-warped filterbank
    (:func:`vtlp_mel_filterbank`): any feature kind, with its MFCC DCT and deltas.

    Args:
        wave: (N,) float waveform at ``cfg.sample_rate`` (CPU).
        cfg: the features to compute.
        alpha: VTLP factor; 1 gives ``compute_features(wave, cfg)`` (within float32 rounding).
        f_hi: warp boundary, see :func:`vtlp_warp_frequencies`.
        generator: random source for dither (``cfg.dither > 0``).

    Returns:
        (T, cfg.dim) float32, ``T = num_frames(N, cfg)``.
    """
    _check_wave(wave, "vtlp_logmel")
    if not isinstance(cfg, FeatureConfig):
        raise ValueError(f"vtlp_logmel: expected a FeatureConfig, got {type(cfg).__name__}")
    fb = vtlp_mel_filterbank(
        cfg.n_fft, cfg.n_mels, cfg.sample_rate, float(cfg.fmin), cfg.resolved_fmax, alpha, kind=cfg.kind, f_hi=f_hi
    ).float()
    wave = wave.to("cpu", torch.float32)
    if wave.numel() < cfg.win_length:
        return torch.zeros(0, cfg.dim, dtype=torch.float32)
    frames = wave.unfold(0, cfg.win_length, cfg.hop_length)  # (T, win)
    window = feature_window(cfg.resolved_window, cfg.win_length).float()
    feats = torch.matmul(power_spectrum(frames, cfg, window, generator), fb).clamp_min_(cfg.resolved_log_floor).log_()
    if cfg.kind == "mfcc":
        feats = torch.matmul(feats, dct_matrix(cfg.n_mels, cfg.n_mfcc).float())
    return add_deltas(feats, cfg.deltas) if cfg.deltas else feats


# ----------------------------------------------------------------------------------------------
# Additive noise and reverberation


def _rms(x: Tensor) -> Tensor:
    return x.to(torch.float64).square().mean().sqrt()


def coloured_noise(num_samples: int, exponent: float, generator: torch.Generator) -> Tensor:
    """Gaussian noise whose power spectrum falls as ``1 / f**exponent``: white (0), pink (1), brown (2).

    White Gaussian noise is shaped in the frequency domain (amplitude ``f**(-exponent/2)``, the
    DC bin set to 0) and scaled to unit RMS.

    Args:
        num_samples: ``N >= 2``.
        exponent: spectral slope; any finite value (negative is blue/violet noise).
        generator: random source.

    Returns:
        (N,) float32 with RMS 1 and zero mean.
    """
    if not _is_int(num_samples) or num_samples < 2:
        raise ValueError(f"coloured_noise: expected num_samples >= 2, got {num_samples!r}")
    if not _is_number(exponent):
        raise ValueError(f"coloured_noise: expected a finite exponent, got {exponent!r}")
    white = torch.randn(num_samples, generator=generator, dtype=torch.float64)
    spectrum = torch.fft.rfft(white)
    k = torch.arange(spectrum.shape[0], dtype=torch.float64)
    gain = torch.zeros_like(k)
    gain[1:] = k[1:].pow(-exponent / 2)
    noise = torch.fft.irfft(spectrum * gain, n=num_samples)
    return (noise / _rms(noise)).float()


def babble(waves: Sequence[Tensor], num_speakers: int, length: int, generator: torch.Generator) -> Tensor:
    """Babble noise: ``num_speakers`` other utterances, each scaled to unit RMS, looped to ``length``
    from a random offset, summed.

    Utterances are drawn without replacement while there are enough, then with.

    Args:
        waves: the pool, each (N_i,) float, at the target's rate (e.g. other training utterances).
        num_speakers: how many are mixed, >= 1.
        length: samples of the result.
        generator: random source.

    Returns:
        (length,) float32.
    """
    if not waves:
        raise ValueError("babble: expected at least one waveform to mix, got none")
    for i, w in enumerate(waves):
        _check_wave(w, f"babble: waves[{i}]")
    if not _is_int(num_speakers) or num_speakers < 1:
        raise ValueError(f"babble: expected num_speakers >= 1, got {num_speakers!r}")
    if not _is_int(length) or length < 1:
        raise ValueError(f"babble: expected length >= 1, got {length!r}")
    order = torch.randperm(len(waves), generator=generator).tolist()
    while len(order) < num_speakers:
        order += torch.randperm(len(waves), generator=generator).tolist()
    mix = torch.zeros(length, dtype=torch.float64)
    for i in order[:num_speakers]:
        w = waves[i].to("cpu", torch.float64)
        rms = _rms(w)
        start = _randint(0, w.numel() - 1, generator)
        looped = w.roll(-start).repeat(math.ceil(length / w.numel()))[:length]
        mix += looped / rms if rms > 0 else looped
    return mix.float()


def add_noise(wave: Tensor, noise: Tensor, snr_db: float) -> Tensor:
    """Mix ``noise`` into ``wave`` at signal-to-noise ratio ``snr_db``:
    ``10 log10(mean(wave^2) / mean(scaled_noise^2)) = snr_db``.

    Args:
        wave: (N,) float waveform.
        noise: (L,) float noise, not all zero; looped when shorter than ``N``, its first ``N``
            samples used when longer (crop it at random beforehand for variety).
        snr_db: target SNR in dB.

    Returns:
        (N,) ``wave + g * noise``, the dtype of ``wave``; ``wave`` unchanged (a copy) when it is silent.
    """
    _check_wave(wave, "add_noise")
    _check_wave(noise, "add_noise: noise")
    if not _is_number(snr_db):
        raise ValueError(f"add_noise: expected a finite snr_db, got {snr_db!r}")
    n = wave.numel()
    noise = noise.to(wave.device, torch.float64)
    noise = noise.repeat(math.ceil(n / noise.numel()))[:n]
    noise_rms, wave_rms = _rms(noise), _rms(wave)
    if noise_rms == 0:
        raise ValueError("add_noise: expected noise with some energy, got all zeros")
    if wave_rms == 0:
        return wave.clone()
    gain = wave_rms / (noise_rms * 10.0 ** (snr_db / 20.0))
    return (wave.to(torch.float64) + gain * noise).to(wave.dtype)


def simulate_rir(
    sample_rate: int,
    rt60: float,
    generator: torch.Generator,
    *,
    length_s: float | None = None,
    direct_to_reverberant_db: float = 0.0,
) -> Tensor:
    """A room impulse response: a direct-path impulse at sample 0 followed by exponentially decaying
    Gaussian noise (the diffuse tail of a room with reverberation time ``rt60``).

    The tail's amplitude envelope is ``exp(-3 ln(10) t / rt60)`` (60 dB of energy decay in
    ``rt60`` seconds), so Schroeder's energy decay curve falls at 60 dB per ``rt60``.

    Args:
        sample_rate: Hz.
        rt60: reverberation time in seconds, > 0.
        generator: random source.
        length_s: RIR duration; ``None`` is ``rt60`` (the tail has decayed by 60 dB).
        direct_to_reverberant_db: energy of the direct impulse over the tail's energy, dB.

    Returns:
        (L,) float32 with unit energy, ``L = max(2, round(length_s * sample_rate))``.
    """
    _check_rate(sample_rate, "simulate_rir")
    if not _is_number(rt60) or rt60 <= 0:
        raise ValueError(f"simulate_rir: expected a positive rt60 in seconds, got {rt60!r}")
    length_s = rt60 if length_s is None else length_s
    if not _is_number(length_s) or length_s <= 0:
        raise ValueError(f"simulate_rir: expected a positive length_s, got {length_s!r}")
    if not _is_number(direct_to_reverberant_db):
        raise ValueError(f"simulate_rir: expected a finite direct_to_reverberant_db, got {direct_to_reverberant_db!r}")
    length = max(2, int(round(length_s * sample_rate)))
    t = torch.arange(length, dtype=torch.float64) / sample_rate
    tail = torch.randn(length, generator=generator, dtype=torch.float64) * torch.exp(-3.0 * math.log(10.0) * t / rt60)
    tail[0] = 0.0
    tail = tail / tail.square().sum().sqrt()
    tail[0] = 10.0 ** (direct_to_reverberant_db / 20.0)
    return (tail / tail.square().sum().sqrt()).float()


def reverberate(wave: Tensor, rir: Tensor) -> Tensor:
    """Convolve ``wave`` with ``rir``, keep the first ``N`` samples (causal; a direct path at sample 0
    adds no delay), and scale the result to the energy of ``wave``.

    Args:
        wave: (N,) float waveform.
        rir: (L,) float impulse response, not all zero.

    Returns:
        (N,) of the dtype of ``wave``; a copy of ``wave`` when it is silent.
    """
    _check_wave(wave, "reverberate")
    _check_wave(rir, "reverberate: rir")
    if _rms(rir) == 0:
        raise ValueError("reverberate: expected an impulse response with some energy, got all zeros")
    x = wave.to("cpu", torch.float64)
    energy = x.square().sum()
    if energy == 0:
        return wave.clone()
    n_fft = 1 << (x.numel() + rir.numel() - 2).bit_length()  # a power of 2 >= N + L - 1: no wrap-around
    spectrum = torch.fft.rfft(x, n_fft) * torch.fft.rfft(rir.to("cpu", torch.float64), n_fft)
    y = torch.fft.irfft(spectrum, n_fft)[: x.numel()]  # 5-10x faster than fftconvolve's odd sizes
    y = y * (energy / y.square().sum().clamp_min(1e-300)).sqrt()
    return y.to(wave.device, wave.dtype)


def telephone_band(wave: Tensor, sample_rate: int, band_rate: int = 8000) -> Tensor:
    """``wave`` resampled to ``band_rate`` and back (torchaudio's windowed sinc): nothing is left
    above ``band_rate / 2`` Hz, as in 8 kHz recordings read at 16 kHz.

    Args:
        wave: (N,) float waveform at ``sample_rate``.
        sample_rate: Hz, above ``band_rate``.
        band_rate: the narrow-band rate, Hz.

    Returns:
        (N,) float waveform at ``sample_rate``.
    """
    _check_wave(wave, "telephone_band")
    _check_rate(sample_rate, "telephone_band")
    if sample_rate <= band_rate:
        raise ValueError(f"telephone_band: sample rate {sample_rate} Hz is not above the band's {band_rate} Hz")
    narrow = torchaudio.functional.resample(wave, sample_rate, band_rate)
    out = torchaudio.functional.resample(narrow, band_rate, sample_rate)
    n = wave.numel()
    return out[:n] if out.numel() >= n else torch.nn.functional.pad(out, (0, n - out.numel()))


# ----------------------------------------------------------------------------------------------
# SpecAugment, revisited: adaptive time masks (Park et al. 2020) and time warping


@dataclass
class AdaptiveSpecAugmentConfig(SpecAugmentConfig):
    """:class:`phonrec.features.SpecAugmentConfig` plus the adaptive policy of Park et al. 2020
    ("SpecAugment on large scale datasets") and the time warping of Park et al. 2019.

    With ``time_masks_per_frame = 0`` and ``time_warp = 0`` :func:`adaptive_spec_augment` gives
    exactly :func:`phonrec.features.spec_augment`'s output for the same generator state.

    Attributes (besides the inherited ones; ``time_ratio`` is the 2020 paper's size ratio ``p_S``):
        time_masks_per_frame: ``p_M``: when > 0, utterance ``b`` gets
            ``min(max_time_masks, floor(p_M * lengths[b]))`` time masks instead of ``time_masks``.
        max_time_masks: the cap on the adaptive number of time masks.
        time_warp: ``W``, the largest time-warp shift in frames (0 = no warping).
    """

    time_masks_per_frame: float = 0.0
    max_time_masks: int = 20
    time_warp: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        p = self.time_masks_per_frame
        if not _is_number(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"AdaptiveSpecAugmentConfig.time_masks_per_frame: expected a number in [0, 1], got {p!r}")
        for name in ("max_time_masks", "time_warp"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValueError(f"AdaptiveSpecAugmentConfig.{name}: expected a non-negative integer, got {value!r}")


def _check_batch(feats: Tensor, lengths: Tensor | None, where: str) -> tuple[Tensor, Tensor]:
    """(B, T, F) features and (B,) int64 CPU lengths in [0, T] (``None`` = all T)."""
    if not isinstance(feats, Tensor) or feats.dim() != 3:
        raise ValueError(f"{where}: expected feats (B, T, F), got {getattr(feats, 'shape', feats)}")
    B, T, _ = feats.shape
    lengths = torch.full((B,), T, dtype=torch.long) if lengths is None else torch.as_tensor(lengths).to("cpu").long()
    if lengths.shape != (B,) or bool((lengths < 0).any()) or bool((lengths > T).any()):
        raise ValueError(f"{where}: expected lengths (B={B},) in [0, T={T}], got {lengths.tolist()}")
    return feats, lengths


def time_warp(
    feats: Tensor, lengths: Tensor | int | None, window: int, generator: torch.Generator | None = None
) -> Tensor:
    """SpecAugment's time warping (Park et al. 2019), piecewise-linear.

    For each utterance of valid length ``L >= 2 W + 3`` a centre frame ``c`` is drawn uniformly in
    ``[W + 1, L - 2 - W]`` and a shift ``w`` uniformly in ``[-W, W]``; frames ``0..c`` are stretched
    onto ``0..c+w`` and frames ``c..L-1`` onto ``c+w..L-1``, reading the input by linear
    interpolation between neighbouring frames. Frames 0 and ``L - 1`` and the padding are unchanged;
    shorter utterances are left as they are. Two numbers are drawn per utterance whenever ``W > 0``.

    Args:
        feats: (B, T, F) or (T, F) features.
        lengths: (B,) valid frames (an int or ``None`` = all frames for (T, F) input; ``None`` = T).
        window: ``W`` frames, >= 0 (0 returns a copy and draws nothing).
        generator: CPU random source.

    Returns:
        a new tensor of the shape and dtype of ``feats``.
    """
    if not _is_int(window) or window < 0:
        raise ValueError(f"time_warp: expected a non-negative integer window, got {window!r}")
    single = isinstance(feats, Tensor) and feats.dim() == 2
    if single:
        feats = feats[None]
        lengths = None if lengths is None else torch.as_tensor(lengths).reshape(1)
    feats, lengths = _check_batch(feats, lengths, "time_warp")
    out = feats.clone()
    if window > 0:
        B = feats.shape[0]
        u_centre = torch.rand(B, generator=generator, dtype=torch.float64)
        u_shift = torch.rand(B, generator=generator, dtype=torch.float64)
        for b, L in enumerate(lengths.tolist()):
            if L < 2 * window + 3:
                continue
            room = L - 2 - 2 * window  # centres W+1 .. L-2-W
            c = window + 1 + min(int(u_centre[b] * room), room - 1)
            w = min(int(u_shift[b] * (2 * window + 1)), 2 * window) - window
            new_c = c + w
            t = torch.arange(L, dtype=torch.float64)
            src = torch.where(t <= new_c, t * c / new_c, c + (t - new_c) * (L - 1 - c) / (L - 1 - new_c))
            lo = src.floor().long().clamp_(max=L - 1)
            hi = (lo + 1).clamp_(max=L - 1)
            frac = (src - lo).to(feats.dtype)[:, None].to(feats.device)
            x = feats[b, :L]
            out[b, :L] = x[lo.to(feats.device)] * (1 - frac) + x[hi.to(feats.device)] * frac
    return out[0] if single else out


def _random_spans_per_row(
    counts: Tensor, max_width: Tensor, extent: Tensor, size: int, generator: torch.Generator | None
) -> Tensor:
    """Union of ``counts[b]`` random spans in row ``b``: a (B, size) bool mask. Draws exactly what
    ``phonrec.features._random_spans(max(counts), ...)`` draws, and equals it when all counts are equal.

    counts, max_width, extent: (B,) int64; widths uniform in [0, max_width], starts uniform in
    [0, extent - width].
    """
    B, K = extent.shape[0], int(counts.max()) if counts.numel() else 0
    u_width = torch.rand(B, K, generator=generator, dtype=torch.float64)
    u_start = torch.rand(B, K, generator=generator, dtype=torch.float64)
    width = torch.minimum((u_width * (max_width[:, None] + 1)).long(), max_width[:, None])
    room = (extent[:, None] - width).clamp_min(0)
    start = torch.minimum((u_start * (room + 1)).long(), room)
    pos = torch.arange(size)[None, None, :]
    inside = (pos >= start[:, :, None]) & (pos < (start + width)[:, :, None])  # (B, K, size)
    active = torch.arange(K)[None, :] < counts[:, None]  # (B, K)
    return (inside & active[:, :, None]).any(dim=1)


def adaptive_spec_augment(
    feats: Tensor, lengths: Tensor, cfg: AdaptiveSpecAugmentConfig, generator: torch.Generator | None = None
) -> Tensor:
    """SpecAugment with time warping and length-proportional time masks; masks are filled with 0.

    Order: :func:`time_warp` (``cfg.time_warp``), then the frequency masks of
    :func:`phonrec.features.spec_augment`, then the time masks: ``time_masks`` per utterance, or
    ``min(max_time_masks, floor(time_masks_per_frame * length))`` when that is > 0, each of width
    uniform in ``[0, min(time_width, floor(time_ratio * length))]``. Only valid frames change.

    Args:
        feats: (B, T, F) features.
        lengths: (B,) valid frames.
        cfg: the policy.
        generator: CPU random source.

    Returns:
        (B, T, F) new tensor.
    """
    feats, lengths = _check_batch(feats, lengths, "adaptive_spec_augment")
    if cfg.time_warp:
        feats = time_warp(feats, lengths, cfg.time_warp, generator)
    freq_only = SpecAugmentConfig(cfg.freq_masks, cfg.freq_width, 0, cfg.time_width, cfg.time_ratio)
    feats = spec_augment(feats, lengths, freq_only, generator)
    B, T, _ = feats.shape
    if cfg.time_masks_per_frame > 0:
        counts = torch.floor(lengths.double() * cfg.time_masks_per_frame).long().clamp_(max=cfg.max_time_masks)
    else:
        counts = torch.full((B,), cfg.time_masks, dtype=torch.long)
    if B == 0 or int(counts.max()) == 0 or cfg.time_width == 0:
        return feats
    max_w = torch.clamp(torch.floor(lengths.double() * cfg.time_ratio).long(), max=cfg.time_width)
    valid = torch.arange(T)[None, :] < lengths[:, None]
    tmask = _random_spans_per_row(counts, max_w, lengths, T, generator) & valid
    return feats.masked_fill(tmask[:, :, None].to(feats.device), 0.0)


# ----------------------------------------------------------------------------------------------
# One configuration, two presets, one waveform entry point


def _no_specaugment() -> AdaptiveSpecAugmentConfig:
    return AdaptiveSpecAugmentConfig(freq_masks=0, time_masks=0)


@dataclass
class AugmentConfig:
    """Every augmentation's parameters; the defaults switch everything off.

    Ranges are ``(low, high)`` pairs drawn uniformly (``low == high`` is a constant). The Hydra
    group ``conf/augment/*.yaml`` holds exactly these fields (``phonrec-train augment=default``).

    Attributes:
        copies: augmented versions of every training utterance, computed once and cached beside
            the clean features (the waveform stages and VTLP run at caching time, each copy with its
            own draws); every epoch presents each utterance once, as the clean version or one of
            the copies, drawn uniformly. 0 = the clean features only (SpecAugment still applies).
        speed_factors: speed factors drawn with equal probability per utterance (``()`` = off).
        vtlp_alpha: range of the VTLP factor (``(1, 1)`` = off); see :func:`sample_vtlp_alpha`.
        vtlp_f_hi: VTLP warp boundary in Hz (``None`` = 0.6 * Nyquist).
        noise_prob: probability of adding coloured noise to an utterance.
        noise_snr_db: SNR range of the coloured noise, dB.
        noise_exponents: spectral exponents drawn with equal probability (0 white, 1 pink, 2 brown).
        babble_prob: probability of adding babble (needs other utterances: ``others``).
        babble_speakers: range of the number of utterances mixed into the babble.
        babble_snr_db: SNR range of the babble, dB.
        reverb_prob: probability of reverberating an utterance.
        reverb_rt60: range of the simulated room's RT60, seconds.
        telephone_prob: probability of band-limiting an utterance to the telephone band: resampled
            to 8 kHz and back (:func:`telephone_band`), as 8 kHz corpora (FSDD, flite's kal) sound
            once resampled to the models' 16 kHz.
        specaugment: the feature-level masks and warp (:class:`AdaptiveSpecAugmentConfig`; a dict
            of its fields is accepted).
        utterance_cmvn_prob: with ``features.cmvn=speaker``, the probability that a training
            utterance is normalised by its own statistics instead of its speaker's (drawn per
            utterance and batch), so that the model also reads a recording whose speaker is not
            known (inference normalises one by its own statistics). Ignored by other CMVN modes.
    """

    copies: int = 0
    speed_factors: tuple[float, ...] = ()
    vtlp_alpha: tuple[float, float] = (1.0, 1.0)
    vtlp_f_hi: float | None = None
    noise_prob: float = 0.0
    noise_snr_db: tuple[float, float] = (0.0, 15.0)
    noise_exponents: tuple[float, ...] = (0.0, 1.0, 2.0)
    babble_prob: float = 0.0
    babble_speakers: tuple[int, int] = (3, 7)
    babble_snr_db: tuple[float, float] = (13.0, 20.0)
    reverb_prob: float = 0.0
    reverb_rt60: tuple[float, float] = (0.2, 0.8)
    telephone_prob: float = 0.0
    specaugment: AdaptiveSpecAugmentConfig = field(default_factory=_no_specaugment)
    utterance_cmvn_prob: float = 0.0

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ValueError:
            return ValueError(f"augment.{name}: expected {expected}, got {getattr(self, name)!r}")

        def as_tuple(name: str, length: int | None) -> tuple:
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) and not hasattr(value, "__iter__"):
                raise bad(name, "a list")
            value = tuple(value)
            if length is not None and len(value) != length or not all(_is_number(v) for v in value):
                raise bad(name, f"a list of {length or 'any number of'} finite numbers")
            setattr(self, name, value)
            return value

        if not _is_int(self.copies) or self.copies < 0:
            raise bad("copies", "a non-negative integer")
        factors = as_tuple("speed_factors", None)
        if any(not 0.5 <= f <= 2.0 for f in factors):
            raise bad("speed_factors", "factors in [0.5, 2] (Kaldi uses 0.9, 1.0, 1.1)")
        lo, hi = as_tuple("vtlp_alpha", 2)
        if not 0.5 <= lo <= hi <= 2.0:
            raise bad("vtlp_alpha", "a range (low, high) with 0.5 <= low <= high <= 2")
        if self.vtlp_f_hi is not None and (not _is_number(self.vtlp_f_hi) or self.vtlp_f_hi <= 0):
            raise bad("vtlp_f_hi", "None or a positive frequency in Hz")
        for name in ("noise_prob", "babble_prob", "reverb_prob", "telephone_prob", "utterance_cmvn_prob"):
            if not _is_number(getattr(self, name)) or not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "a probability in [0, 1]")
        for name in ("noise_snr_db", "babble_snr_db"):
            lo, hi = as_tuple(name, 2)
            if lo > hi:
                raise bad(name, "a range (low, high) in dB with low <= high")
        if not as_tuple("noise_exponents", None):
            raise bad("noise_exponents", "at least one spectral exponent")
        lo, hi = as_tuple("babble_speakers", 2)
        if not (float(lo).is_integer() and float(hi).is_integer() and 1 <= lo <= hi):
            raise bad("babble_speakers", "a range (low, high) of integers with 1 <= low <= high")
        self.babble_speakers = (int(lo), int(hi))
        lo, hi = as_tuple("reverb_rt60", 2)
        if not 0.0 < lo <= hi:
            raise bad("reverb_rt60", "a range (low, high) in seconds with 0 < low <= high")
        if isinstance(self.specaugment, dict) or hasattr(self.specaugment, "keys"):
            known = {f.name for f in fields(AdaptiveSpecAugmentConfig)}
            unknown = sorted(set(self.specaugment) - known)
            if unknown:
                raise ValueError(f"augment.specaugment: unknown key(s) {unknown}; valid: {sorted(known)}")
            try:
                self.specaugment = AdaptiveSpecAugmentConfig(**dict(self.specaugment))
            except ValueError as exc:
                raise ValueError(f"augment.specaugment: {exc}") from None
        if not isinstance(self.specaugment, AdaptiveSpecAugmentConfig):
            raise bad("specaugment", "an AdaptiveSpecAugmentConfig or a dict of its fields")

    @property
    def changes_waveform(self) -> bool:
        """Whether any cached stage (speed, VTLP, noise, babble, reverberation) is on."""
        return bool(
            self.speed_factors
            and set(self.speed_factors) != {1.0}
            or tuple(self.vtlp_alpha) != (1.0, 1.0)
            or self.noise_prob > 0
            or self.babble_prob > 0
            or self.reverb_prob > 0
            or self.telephone_prob > 0
        )

    def cache_key(self) -> dict:
        """The fields that change the cached copies (everything but the batch-side ``copies``,
        ``specaugment`` and ``utterance_cmvn_prob``)."""
        batch_side = ("copies", "specaugment", "utterance_cmvn_prob")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in batch_side}


# Kaldi/ESPnet-typical settings. Speed 0.9/1.0/1.1: Ko et al. 2015 (Kaldi's and ESPnet's
# speed-perturbation recipes). VTLP alpha ~ U[0.9, 1.1]: Jaitly & Hinton 2013. SpecAugment: phonrec's
# own masks (2 x 15 of 80 mel bins, 2 x up to 40 frames, at most 5% of the utterance each) plus
# ESPnet's default time-warp window of 5 frames.
DEFAULT = AugmentConfig(
    copies=2,
    speed_factors=(0.9, 1.0, 1.1),
    vtlp_alpha=(0.9, 1.1),
    specaugment=AdaptiveSpecAugmentConfig(
        freq_masks=2, freq_width=15, time_masks=2, time_width=40, time_ratio=0.05, time_warp=5
    ),
    utterance_cmvn_prob=0.5,
)

# DEFAULT plus noise, babble and reverberation, and the adaptive masking policy. Noise SNRs 0-15 dB
# and babble of 3-7 speakers at 13-20 dB: the MUSAN noise and babble settings of Kaldi's
# VoxCeleb/SRE augmentation (steps of 15/10/5/0 and 20/17/15/13 dB there, drawn uniformly here).
# RT60 0.2-0.8 s: ordinary rooms (our choice; Kaldi's simulated-RIR sets cover small to large rooms).
# Masks: Park et al. 2019's LD policy frequency masks (2 x 27 bins) and Park et al. 2020's adaptive
# time masks (p_M = 0.04 masks per frame capped at 20, size ratio p_S = 0.04), time warp 5 frames.
STRONG = AugmentConfig(
    copies=2,
    speed_factors=(0.9, 1.0, 1.1),
    vtlp_alpha=(0.9, 1.1),
    noise_prob=0.5,
    noise_snr_db=(0.0, 15.0),
    babble_prob=0.3,
    babble_speakers=(3, 7),
    babble_snr_db=(13.0, 20.0),
    reverb_prob=0.5,
    reverb_rt60=(0.2, 0.8),
    specaugment=AdaptiveSpecAugmentConfig(
        freq_masks=2,
        freq_width=27,
        time_masks=2,
        time_width=100,
        time_ratio=0.04,
        time_masks_per_frame=0.04,
        max_time_masks=20,
        time_warp=5,
    ),
    utterance_cmvn_prob=0.5,
)


def sample_vtlp_alpha(cfg: AugmentConfig, generator: torch.Generator) -> float:
    """One VTLP factor from ``U[cfg.vtlp_alpha]``; 1.0 without a draw when VTLP is off (``(1, 1)``)."""
    lo, hi = cfg.vtlp_alpha
    return 1.0 if lo == hi == 1.0 else _uniform(lo, hi, generator)


def augment_waveform(
    wave: Tensor,
    sample_rate: int,
    cfg: AugmentConfig,
    generator: torch.Generator,
    *,
    others: Sequence[Tensor] | None = None,
) -> tuple[Tensor, float]:
    """Speed perturbation, then reverberation, then coloured noise, then the telephone band, then
    babble, each as ``cfg`` says.

    Stages that are off draw nothing from ``generator``; a stage that is on draws its coin (and,
    when it fires, its parameters) whether or not it changes anything.

    Args:
        wave: (N,) float waveform at ``sample_rate``.
        sample_rate: Hz.
        cfg: what to apply.
        generator: random source.
        others: (N_i,) waveforms at ``sample_rate`` to mix babble from (other training
            utterances); babble is skipped when none are given.

    Returns:
        wave: (M,) augmented waveform, ``M`` within one sample of ``N / speed_factor``.
        speed_factor: the factor used (1.0 when speed perturbation is off); rescale the labels
            with :func:`scale_frame_labels` / :func:`scale_segments`.
    """
    _check_wave(wave, "augment_waveform")
    _check_rate(sample_rate, "augment_waveform")
    factor = 1.0
    if cfg.speed_factors:
        factor = float(speed_fraction(cfg.speed_factors[_randint(0, len(cfg.speed_factors) - 1, generator)]))
        wave = speed_perturb(wave, sample_rate, factor)
    if cfg.reverb_prob > 0 and _uniform(0.0, 1.0, generator) < cfg.reverb_prob:
        wave = reverberate(wave, simulate_rir(sample_rate, _uniform(*cfg.reverb_rt60, generator), generator))
    if cfg.noise_prob > 0 and _uniform(0.0, 1.0, generator) < cfg.noise_prob:
        exponent = cfg.noise_exponents[_randint(0, len(cfg.noise_exponents) - 1, generator)]
        noise = coloured_noise(max(2, wave.numel()), exponent, generator)
        wave = add_noise(wave, noise, _uniform(*cfg.noise_snr_db, generator))
    if cfg.telephone_prob > 0 and _uniform(0.0, 1.0, generator) < cfg.telephone_prob:
        wave = telephone_band(wave, sample_rate)
    if others and cfg.babble_prob > 0 and _uniform(0.0, 1.0, generator) < cfg.babble_prob:
        mix = babble(others, _randint(*cfg.babble_speakers, generator), wave.numel(), generator)
        wave = add_noise(wave, mix, _uniform(*cfg.babble_snr_db, generator))
    return wave, factor


def augmented_features(
    wave: Tensor,
    fcfg: FeatureConfig,
    cfg: AugmentConfig,
    generator: torch.Generator,
    *,
    others: Sequence[Tensor] | None = None,
) -> tuple[Tensor, float]:
    """The features of one augmented copy of an utterance: :func:`augment_waveform`, then the
    features with a VTLP-warped filterbank (:func:`vtlp_logmel`, factor from :func:`sample_vtlp_alpha`).

    Args:
        wave: (N,) float waveform at ``fcfg.sample_rate``.
        fcfg: the features to compute.
        cfg: the augmentation.
        generator: random source (seed it per utterance and copy for reproducible caches).
        others: (N_i,) other training utterances to mix babble from.

    Returns:
        feats: (T', fcfg.dim) float32.
        speed_factor: the speed factor used; frame labels are rescaled by it
            (:func:`scale_frame_labels`).
    """
    wave, factor = augment_waveform(wave, fcfg.sample_rate, cfg, generator, others=others)
    alpha = sample_vtlp_alpha(cfg, generator)
    if alpha == 1.0:
        return compute_features(wave, fcfg, generator=generator), factor
    return vtlp_logmel(wave, fcfg, alpha, f_hi=cfg.vtlp_f_hi, generator=generator), factor
