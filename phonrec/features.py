"""Acoustic features: framing, log-mel / Kaldi fbank / MFCC, deltas, CMVN, SpecAugment.

Framing is the same for every feature kind (Kaldi's ``snip_edges=True``): frame ``t`` covers
samples ``[t * hop, t * hop + win)``, so ``T = 1 + (N - win) // hop`` for ``N >= win``.

Every kind runs the same vectorised pipeline on the ``(T, win)`` frames (a strided view of the
waveform)::

    [dither] -> [remove DC offset] -> [pre-emphasis] -> window -> rfft(n_fft) -> |.|^2
        -> mel filterbank (matmul) -> log(max(., floor)) -> [DCT-II for mfcc] -> [deltas]

and the kinds differ only in their defaults and their filterbank:

============  ==========================================  ===============================
kind          filterbank                                  defaults of the ``None`` fields
============  ==========================================  ===============================
logmel        librosa's ``filters.mel`` (Slaney scale,     window hann, preemphasis 0.0,
              Slaney area norm)                           remove_dc_offset False, floor 1e-10,
                                                          deltas 0
mfcc          as logmel, then orthonormal DCT-II,         as logmel, but deltas 2
              first ``n_mfcc`` coefficients
kaldi_fbank   Kaldi's (``1127 ln(1 + f/700)``, triangles  window povey, preemphasis 0.97,
              in mel, no norm); samples scaled by 32768   remove_dc_offset True, floor
              so values equal Kaldi's compute-fbank-feats float32 eps (Kaldi's), deltas 0
============  ==========================================  ===============================

The Hydra groups ``conf/features/*.yaml`` leave these fields ``null``, so ``features.kind=...``
over any group takes the new kind's defaults unless a field is overridden too.

``logmel`` equals ``log(max(librosa.feature.melspectrogram(y=pad(y, (n_fft-win)//2),
center=False, win_length=win, ...), 1e-10))`` and ``kaldi_fbank`` equals
``torchaudio.compliance.kaldi.fbank(32768 * y, dither=0, ...)`` (both checked in the tests).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from phonrec.config import ConfigError, dataclass_from
from phonrec.spans import DEFAULT_HOP_MS

DEFAULT_WIN_MS = 25.0

FEATURE_KINDS = ("logmel", "kaldi_fbank", "mfcc")
WINDOWS = ("hann", "hamming", "povey")
INT16_SCALE = 32768.0  # Kaldi works on 16-bit sample values; phonrec waveforms are in [-1, 1]


def num_frames(
    num_samples: int,
    sample_rate: int | FeatureConfig = 16000,
    win_ms: float = DEFAULT_WIN_MS,
    hop_ms: float = DEFAULT_HOP_MS,
) -> int:
    """Number of frames for ``num_samples`` samples (0 when shorter than one window).

    ``sample_rate`` may also be a :class:`FeatureConfig`, whose rate, window and hop are then used
    (``num_frames(N, cfg)``).
    """
    if isinstance(sample_rate, FeatureConfig):
        sample_rate, win_ms, hop_ms = sample_rate.sample_rate, sample_rate.win_ms, sample_rate.hop_ms
    win = int(round(sample_rate * win_ms / 1000))
    hop = int(round(sample_rate * hop_ms / 1000))
    return 0 if num_samples < win else 1 + (num_samples - win) // hop


def frame_center_seconds(frame: int, win_ms: float = DEFAULT_WIN_MS, hop_ms: float = DEFAULT_HOP_MS) -> float:
    """Time (s) of the centre of frame ``frame``: where a frame's label is read from a timed segment."""
    return (frame * hop_ms + win_ms / 2) / 1000.0


def seconds_to_frames(seconds: float, hop_ms: float = DEFAULT_HOP_MS) -> int:
    """Inverse of :func:`frames_to_seconds`, rounded to the nearest frame boundary."""
    return int(round(seconds * 1000.0 / hop_ms))


# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass
class FeatureConfig:
    """What :func:`compute_features` computes. Fields set to ``None`` take the kind's default
    (see the module docstring); the resolved values are the ``resolved_*`` properties.

    The Hydra group ``conf/features/*.yaml`` holds exactly these fields plus one key read by the
    training code, not by this class: ``cmvn: global|utterance|speaker|none`` (SpecAugment is the
    ``augment`` group's).

    Attributes:
        kind: ``"logmel"``, ``"kaldi_fbank"`` or ``"mfcc"``.
        sample_rate: expected waveform rate in Hz.
        n_mels: mel filters.
        n_mfcc: cepstra kept (``kind="mfcc"`` only), ``1 <= n_mfcc <= n_mels``.
        win_ms, hop_ms: analysis window and hop in milliseconds (rounded to whole samples).
        n_fft: FFT size; each windowed frame is zero-padded on the right to it (``>= win``).
        fmin, fmax: filterbank edges in Hz; ``fmax=None`` is the Nyquist frequency.
        deltas: 0 (static only), 1 (+ deltas) or 2 (+ delta-deltas); see :func:`add_deltas`.
        dither: standard deviation of Gaussian noise added to each frame, in 16-bit sample
            units (Kaldi's convention: 1.0 = one LSB); 0.0 makes features deterministic.
        preemphasis: coefficient ``p`` of ``x[i] - p * x[i-1]`` within each frame.
        remove_dc_offset: subtract each frame's mean before pre-emphasis.
        window: ``"hann"`` (periodic, as librosa), ``"hamming"`` (periodic) or ``"povey"``
            (Kaldi: symmetric Hann to the power 0.85).
        log_floor: energies are clamped to at least this before the log.
    """

    kind: str = "logmel"
    sample_rate: int = 16000
    n_mels: int = 80
    n_mfcc: int = 13
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    fmin: float = 20.0
    fmax: float | None = None
    deltas: int | None = None
    dither: float = 0.0
    preemphasis: float | None = None
    remove_dc_offset: bool | None = None
    window: str | None = None
    log_floor: float | None = None

    def __post_init__(self) -> None:
        def bad(field: str, expected: str) -> ValueError:
            return ValueError(f"FeatureConfig.{field}: expected {expected}, got {getattr(self, field)!r}")

        if self.kind not in FEATURE_KINDS:
            raise bad("kind", f"one of {FEATURE_KINDS}")
        for name in ("sample_rate", "n_mels", "n_mfcc", "n_fft"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise bad(name, "a positive integer")
        for name in ("win_ms", "hop_ms"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise bad(name, "a positive number of milliseconds")
        if self.win_length < 2 or self.hop_length < 1:
            raise bad("win_ms", f"a window of at least 2 samples at {self.sample_rate} Hz")
        if self.n_fft < self.win_length:
            raise bad("n_fft", f"at least the window length ({self.win_length} samples)")
        if self.kind == "kaldi_fbank" and self.n_fft % 2:
            raise bad("n_fft", "an even FFT size for kaldi_fbank")
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise bad("n_mfcc", f"at most n_mels ({self.n_mels})")
        nyquist = self.sample_rate / 2
        if not isinstance(self.fmin, (int, float)) or not 0 <= self.fmin < nyquist:
            raise bad("fmin", f"a frequency in [0, {nyquist}) Hz")
        if self.fmax is not None and (not isinstance(self.fmax, (int, float)) or not self.fmin < self.fmax <= nyquist):
            raise bad("fmax", f"None or a frequency in (fmin={self.fmin}, {nyquist}] Hz")
        if self.deltas is not None and (
            isinstance(self.deltas, bool) or not isinstance(self.deltas, int) or not 0 <= self.deltas <= 2
        ):
            raise bad("deltas", "0, 1 or 2")
        if not isinstance(self.dither, (int, float)) or not math.isfinite(self.dither) or self.dither < 0:
            raise bad("dither", "a non-negative number")
        if self.preemphasis is not None and (
            not isinstance(self.preemphasis, (int, float)) or not 0 <= self.preemphasis < 1
        ):
            raise bad("preemphasis", "None or a coefficient in [0, 1)")
        if self.remove_dc_offset is not None and not isinstance(self.remove_dc_offset, bool):
            raise bad("remove_dc_offset", "None, true or false")
        if self.window is not None and self.window not in WINDOWS:
            raise bad("window", f"None or one of {WINDOWS}")
        if self.log_floor is not None and (
            not isinstance(self.log_floor, (int, float)) or not math.isfinite(self.log_floor) or self.log_floor <= 0
        ):
            raise bad("log_floor", "None or a positive number")

    @property
    def win_length(self) -> int:
        """Window length in samples."""
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        """Hop length in samples."""
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def dim(self) -> int:
        """Output feature dimension ``F``: ``(n_mfcc or n_mels) * (deltas + 1)``."""
        base = self.n_mfcc if self.kind == "mfcc" else self.n_mels
        return base * (self.resolved_deltas + 1)

    @property
    def resolved_deltas(self) -> int:
        if self.deltas is not None:
            return self.deltas
        return 2 if self.kind == "mfcc" else 0

    @property
    def resolved_preemphasis(self) -> float:
        if self.preemphasis is not None:
            return float(self.preemphasis)
        return 0.97 if self.kind == "kaldi_fbank" else 0.0

    @property
    def resolved_remove_dc_offset(self) -> bool:
        if self.remove_dc_offset is not None:
            return self.remove_dc_offset
        return self.kind == "kaldi_fbank"

    @property
    def resolved_window(self) -> str:
        if self.window is not None:
            return self.window
        return "povey" if self.kind == "kaldi_fbank" else "hann"

    @property
    def resolved_log_floor(self) -> float:
        if self.log_floor is not None:
            return float(self.log_floor)
        return torch.finfo(torch.float32).eps if self.kind == "kaldi_fbank" else 1e-10

    @property
    def resolved_fmax(self) -> float:
        return float(self.fmax) if self.fmax is not None else self.sample_rate / 2


# ----------------------------------------------------------------------------------------------
# Filterbanks and windows (built in float64 once per setting, cached per device)


def _slaney_hz_to_mel(hz: Tensor) -> Tensor:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    lin = hz / f_sp
    log = min_log_hz / f_sp + torch.log(torch.clamp(hz, min=min_log_hz) / min_log_hz) / logstep
    return torch.where(hz >= min_log_hz, log, lin)


def _slaney_mel_to_hz(mel: Tensor) -> Tensor:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return torch.where(mel >= min_log_mel, min_log_hz * torch.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def fft_bin_frequencies(sample_rate: int, n_fft: int) -> Tensor:
    """(n_fft // 2 + 1,) float64: the frequency in Hz of each real-FFT bin."""
    return torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (sample_rate / n_fft)


def slaney_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float, *, bin_freqs: Tensor | None = None
) -> Tensor:
    """librosa's default mel filterbank (Slaney scale, Slaney area normalisation).

    Args:
        bin_freqs: (n_fft // 2 + 1,) Hz at which the filters are evaluated, one per FFT bin
            (default: the bins' own frequencies; VTLP passes warped ones, :mod:`phonrec.augment`).

    Returns:
        (n_fft // 2 + 1, n_mels) float64, so that ``mel = power @ fb``.
    """
    fft_freqs = fft_bin_frequencies(sample_rate, n_fft) if bin_freqs is None else bin_freqs
    lo, hi = _slaney_hz_to_mel(torch.tensor([fmin, fmax], dtype=torch.float64))
    mel_f = _slaney_mel_to_hz(torch.linspace(float(lo), float(hi), n_mels + 2, dtype=torch.float64))
    fdiff = mel_f[1:] - mel_f[:-1]  # (n_mels + 1,)
    ramps = mel_f[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_bins)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)  # (n_mels, n_bins)
    weights = weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.T.contiguous()


def kaldi_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float, *, bin_freqs: Tensor | None = None
) -> Tensor:
    """Kaldi's mel filterbank (``mel = 1127 ln(1 + f / 700)``, triangles in mel, no VTLN).

    The Nyquist bin gets zero weight, as in Kaldi.

    Args:
        bin_freqs: (n_fft // 2 + 1,) Hz at which the filters are evaluated (default: the FFT
            bins' own frequencies), as in :func:`slaney_mel_filterbank`.

    Returns:
        (n_fft // 2 + 1, n_mels) float64.
    """

    def mel(f: Tensor | float) -> Tensor:
        return 1127.0 * torch.log1p(torch.as_tensor(f, dtype=torch.float64) / 700.0)

    mel_lo, mel_hi = mel(fmin), mel(fmax)
    delta = (mel_hi - mel_lo) / (n_mels + 1)
    b = torch.arange(n_mels, dtype=torch.float64)[:, None]
    left, center, right = mel_lo + b * delta, mel_lo + (b + 1) * delta, mel_lo + (b + 2) * delta
    freqs = fft_bin_frequencies(sample_rate, n_fft) if bin_freqs is None else bin_freqs
    bin_mel = mel(freqs[:-1])[None, :]  # every bin but Nyquist
    up = (bin_mel - left) / (center - left)
    down = (right - bin_mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)  # (n_mels, n_fft // 2)
    banks = torch.nn.functional.pad(banks, (0, 1))  # zero weight on the Nyquist bin
    return banks.T.contiguous()


def dct_matrix(n_mels: int, n_mfcc: int) -> Tensor:
    """Orthonormal DCT-II basis: ``mfcc = logmel @ D`` with ``D`` of shape ``(n_mels, n_mfcc)``."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)
    basis = torch.cos(math.pi / n_mels * (n[:, None] + 0.5) * k[None, :]) * math.sqrt(2.0 / n_mels)
    basis[:, 0] /= math.sqrt(2.0)
    return basis


def feature_window(name: str, length: int) -> Tensor:
    """``(length,)`` float64 analysis window: periodic ``hann``/``hamming``, or Kaldi's ``povey``."""
    if name == "hann":
        return torch.hann_window(length, periodic=True, dtype=torch.float64)
    if name == "hamming":
        return torch.hamming_window(length, periodic=True, dtype=torch.float64)
    if name == "povey":
        return torch.hann_window(length, periodic=False, dtype=torch.float64).pow(0.85)
    raise ValueError(f"feature_window: expected one of {WINDOWS}, got {name!r}")


@functools.lru_cache(maxsize=32)
def _cached_tensors(
    kind: str,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    n_mfcc: int,
    fmin: float,
    fmax: float,
    window: str,
    win_length: int,
    device: str,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """(window (win,), filterbank (n_fft//2+1, n_mels), dct (n_mels, n_mfcc) or None), float32."""
    if kind == "kaldi_fbank":
        fb = kaldi_mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
    else:
        fb = slaney_mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
    dct = dct_matrix(n_mels, n_mfcc).float().to(device) if kind == "mfcc" else None
    win = feature_window(window, win_length).float().to(device)
    return win, fb.float().to(device), dct


def _tensors_for(cfg: FeatureConfig, device: torch.device) -> tuple[Tensor, Tensor, Tensor | None]:
    return _cached_tensors(
        cfg.kind,
        cfg.sample_rate,
        cfg.n_fft,
        cfg.n_mels,
        cfg.n_mfcc,
        float(cfg.fmin),
        cfg.resolved_fmax,
        cfg.resolved_window,
        cfg.win_length,
        str(device),
    )


# ----------------------------------------------------------------------------------------------
# Feature computation


def power_spectrum(frames: Tensor, cfg: FeatureConfig, window: Tensor, generator: torch.Generator | None) -> Tensor:
    """Framed samples -> power spectrum, the steps before the filterbank: 16-bit scaling
    (``kaldi_fbank``), dither, DC removal, pre-emphasis, window, real FFT.

    Args:
        frames: (..., T, win) float32 (may be a strided view).
        window: (win,) the analysis window (:func:`feature_window`).

    Returns:
        (..., T, n_fft // 2 + 1) float32.
    """
    if cfg.kind == "kaldi_fbank":
        frames = frames * INT16_SCALE
    if cfg.dither > 0:
        scale = cfg.dither if cfg.kind == "kaldi_fbank" else cfg.dither / INT16_SCALE
        noise = torch.randn(frames.shape, generator=generator, dtype=frames.dtype, device="cpu")
        frames = frames + noise.to(frames.device) * scale
    if cfg.resolved_remove_dc_offset:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    p = cfg.resolved_preemphasis
    if p > 0:
        emphasised = torch.empty(frames.shape, dtype=frames.dtype, device=frames.device)
        emphasised[..., 1:] = frames[..., 1:] - p * frames[..., :-1]
        emphasised[..., 0] = frames[..., 0] * (1.0 - p)  # Kaldi: x[-1] := x[0]
        frames = emphasised.mul_(window)
    else:
        frames = frames * window
    spec = torch.fft.rfft(frames, n=cfg.n_fft)  # (..., T, n_fft // 2 + 1)
    return spec.real.square() + spec.imag.square()


def _frames_to_features(frames: Tensor, cfg: FeatureConfig, generator: torch.Generator | None) -> Tensor:
    """frames: (B, T, win) float32 (may be a strided view) -> (B, T, n_mels or n_mfcc) float32."""
    window, fb, dct = _tensors_for(cfg, frames.device)
    power = power_spectrum(frames, cfg, window, generator)
    feats = torch.matmul(power, fb).clamp_min_(cfg.resolved_log_floor).log_()  # (B, T, n_mels)
    if dct is not None:
        feats = torch.matmul(feats, dct)
    return feats


_CPU_CHUNK_FRAMES = 1024  # frames per FFT pass on CPU: keeps the (frames, n_fft) buffers cache-sized


def _chunked_features(frames: Tensor, cfg: FeatureConfig, generator: torch.Generator | None) -> Tensor:
    """:func:`_frames_to_features` in pieces of about ``_CPU_CHUNK_FRAMES`` frames on CPU (about
    1.5x faster on long or many inputs than one memory-bound pass); one pass on other devices.

    frames: (B, T, win) -> (B, T, n_mels or n_mfcc).
    """
    B, T, _ = frames.shape
    if frames.device.type != "cpu" or B * T <= _CPU_CHUNK_FRAMES:
        return _frames_to_features(frames, cfg, generator)
    out = torch.empty(B, T, cfg.n_mfcc if cfg.kind == "mfcc" else cfg.n_mels, dtype=torch.float32)
    if T >= _CPU_CHUNK_FRAMES:
        for b in range(B):
            for s in range(0, T, _CPU_CHUNK_FRAMES):
                e = s + _CPU_CHUNK_FRAMES
                out[b : b + 1, s:e] = _frames_to_features(frames[b : b + 1, s:e], cfg, generator)
    else:
        rows = _CPU_CHUNK_FRAMES // T
        for s in range(0, B, rows):
            out[s : s + rows] = _frames_to_features(frames[s : s + rows], cfg, generator)
    return out


def compute_features(wave: Tensor, cfg: FeatureConfig, *, generator: torch.Generator | None = None) -> Tensor:
    """Features of one waveform.

    Args:
        wave: (N,) float waveform in [-1, 1] at ``cfg.sample_rate`` (see :mod:`phonrec.audio`).
        cfg: what to compute.
        generator: random source for dither (only used when ``cfg.dither > 0``).

    Returns:
        (T, cfg.dim) float32 with ``T = num_frames(N, cfg)`` (0 rows when ``N < win``).

    Example:
        >>> feats = compute_features(torch.randn(16000) * 0.1, FeatureConfig())
        >>> tuple(feats.shape)
        (98, 80)
    """
    if not isinstance(wave, Tensor) or wave.dim() != 1:
        shape = tuple(wave.shape) if isinstance(wave, Tensor) else type(wave).__name__
        raise ValueError(f"compute_features: expected a 1-D waveform tensor (N,), got {shape}")
    if not wave.dtype.is_floating_point:
        raise ValueError(f"compute_features: expected a floating-point waveform in [-1, 1], got {wave.dtype}")
    wave = wave.to(torch.float32)
    if wave.numel() < cfg.win_length:
        return torch.zeros(0, cfg.dim, dtype=torch.float32, device=wave.device)
    frames = wave.unfold(0, cfg.win_length, cfg.hop_length).unsqueeze(0)  # (1, T, win)
    feats = _chunked_features(frames, cfg, generator)[0]
    if cfg.resolved_deltas:
        feats = add_deltas(feats, cfg.resolved_deltas)
    return feats


def compute_features_batch(
    waves: Tensor, lengths: Tensor, cfg: FeatureConfig, *, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Features of a zero-padded batch of waveforms in one pass.

    Args:
        waves: (B, N) float waveforms, right-padded.
        lengths: (B,) valid samples per row.
        cfg: what to compute.
        generator: random source for dither.

    Returns:
        feats: (B, T, cfg.dim) float32, ``T = num_frames(N, cfg)``; frames at or beyond a row's
            frame count are 0. Valid frames equal :func:`compute_features` of the row.
        frame_lengths: (B,) int64, ``num_frames(lengths[b], cfg)``.
    """
    if not isinstance(waves, Tensor) or waves.dim() != 2 or not waves.dtype.is_floating_point:
        raise ValueError(f"compute_features_batch: expected float waves (B, N), got {getattr(waves, 'shape', waves)}")
    lengths = torch.as_tensor(lengths).to("cpu", torch.long)
    if lengths.shape != (waves.shape[0],) or bool((lengths < 0).any()) or bool((lengths > waves.shape[1]).any()):
        raise ValueError(
            f"compute_features_batch: expected lengths (B={waves.shape[0]},) in [0, {waves.shape[1]}], "
            f"got {lengths.tolist()}"
        )
    frame_lengths = torch.tensor([num_frames(int(n), cfg) for n in lengths], dtype=torch.long)
    B, N = waves.shape
    T = num_frames(N, cfg)
    if T == 0:
        return torch.zeros(B, 0, cfg.dim, dtype=torch.float32, device=waves.device), frame_lengths
    frames = waves.to(torch.float32).unfold(1, cfg.win_length, cfg.hop_length)  # (B, T, win)
    feats = _chunked_features(frames, cfg, generator)
    if cfg.resolved_deltas:
        out = torch.zeros(B, T, cfg.dim, dtype=torch.float32, device=waves.device)
        for b, t in enumerate(frame_lengths.tolist()):
            if t:
                out[b, :t] = add_deltas(feats[b, :t], cfg.resolved_deltas)
        return out, frame_lengths
    valid = torch.arange(T, device=waves.device)[None, :] < frame_lengths.to(waves.device)[:, None]
    return feats.masked_fill_(~valid[:, :, None], 0.0), frame_lengths


def add_deltas(x: Tensor, order: int) -> Tensor:
    """Append delta (and delta-delta, ...) features, Kaldi / ``torchaudio.functional.compute_deltas`` style.

    ``d_t = sum_{n=1}^{2} n (c_{t+n} - c_{t-n}) / 10`` with the edge frames repeated; order 2
    applies it again to the deltas.

    Args:
        x: (T, F) features.
        order: number of delta orders to append (>= 0).

    Returns:
        (T, F * (order + 1)): ``[x, d(x), d(d(x)), ...]`` along the last axis.
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ValueError(f"add_deltas: expected a non-negative integer order, got {order!r}")
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"add_deltas: expected features (T, F), got {getattr(x, 'shape', x)}")
    parts = [x]
    for _ in range(order):
        c = parts[-1]
        T = c.shape[0]
        if T == 0:
            parts.append(c.clone())
            continue
        padded = torch.cat([c[:1].expand(2, -1), c, c[-1:].expand(2, -1)])  # (T + 4, F)
        d = (padded[3 : T + 3] - padded[1 : T + 1]) + 2.0 * (padded[4 : T + 4] - padded[0:T])
        parts.append(d / 10.0)
    return torch.cat(parts, dim=-1)


# ----------------------------------------------------------------------------------------------
# Normalisation


@dataclass
class CMVN:
    """Global cepstral mean and variance normalisation: ``(x - mean) / std``.

    Attributes:
        mean: (F,) float64 per-dimension mean.
        std: (F,) float64 per-dimension standard deviation (population, floored at ``std_floor``).
        count: number of frames the statistics came from.
    """

    mean: Tensor
    std: Tensor
    count: int

    FORMAT = "phonrec-cmvn"

    def __post_init__(self) -> None:
        self.mean = torch.as_tensor(self.mean, dtype=torch.float64)
        self.std = torch.as_tensor(self.std, dtype=torch.float64)
        if self.mean.dim() != 1 or self.mean.shape != self.std.shape:
            raise ValueError(
                f"CMVN: expected mean and std of one shape (F,), got {tuple(self.mean.shape)} "
                f"and {tuple(self.std.shape)}"
            )
        if not bool(torch.isfinite(self.mean).all()) or not bool((self.std > 0).all() & torch.isfinite(self.std).all()):
            raise ValueError("CMVN: expected a finite mean and a finite positive std")

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, feats_iter: Iterable[Tensor], std_floor: float = 1e-5) -> CMVN:
        """Global statistics over every frame of every utterance.

        Chunks are merged with Chan et al.'s pairwise update in float64 (no ``sum x^2 - n mean^2``
        cancellation), so large offsets and long corpora stay accurate.

        Args:
            feats_iter: iterable of (T, F) feature tensors (T may differ; F may not).
            std_floor: lower bound on each standard deviation.
        """
        count, mean, m2, dim = 0, None, None, None
        for i, x in enumerate(feats_iter):
            if not isinstance(x, Tensor) or x.dim() != 2:
                raise ValueError(f"CMVN.fit: item {i}: expected features (T, F), got {getattr(x, 'shape', type(x))}")
            if dim is None:
                dim = x.shape[1]
                mean = torch.zeros(dim, dtype=torch.float64)
                m2 = torch.zeros(dim, dtype=torch.float64)
            elif x.shape[1] != dim:
                raise ValueError(f"CMVN.fit: item {i}: expected {dim} feature dims, got {x.shape[1]}")
            n = x.shape[0]
            if n == 0:
                continue
            x64 = x.detach().to("cpu", torch.float64)
            if not bool(torch.isfinite(x64).all()):
                raise ValueError(f"CMVN.fit: item {i}: features contain NaN or inf")
            chunk_mean = x64.mean(dim=0)
            chunk_m2 = (x64 - chunk_mean).square().sum(dim=0)
            total = count + n
            delta = chunk_mean - mean
            mean = mean + delta * (n / total)
            m2 = m2 + chunk_m2 + delta.square() * (count * n / total)
            count = total
        if count == 0:
            raise ValueError("CMVN.fit: expected at least one frame, got none")
        std = torch.sqrt(m2 / count).clamp_min(std_floor)
        return cls(mean=mean, std=std, count=count)

    def apply(self, x: Tensor) -> Tensor:
        """Normalise ``x`` of shape (..., F); returns the same shape and dtype."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"CMVN.apply: expected features (..., {self.dim}), got {tuple(x.shape)}")
        mean = self.mean.to(x.device, x.dtype)
        std = self.std.to(x.device, x.dtype)
        return (x - mean) / std

    def save(self, path: str | Path) -> None:
        """Write the statistics as JSON: ``{"format", "dim", "count", "mean": [...], "std": [...]}``."""
        data = {
            "format": self.FORMAT,
            "dim": self.dim,
            "count": self.count,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }
        Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, dim: int | None = None) -> CMVN:
        """Read statistics written by :meth:`save`.

        Args:
            path: JSON file.
            dim: expected feature dimension, checked when given.

        Raises:
            ValueError: naming ``path`` when the file is missing, not JSON, lacks a field, has
                lists of the wrong length, non-positive std, or a dimension other than ``dim``.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{path}: cannot read CMVN statistics: {exc.strerror or exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}: malformed CMVN JSON: {exc.msg}") from exc
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            raise ValueError(f'{path}: expected a JSON object with "format": "{cls.FORMAT}"')
        missing = [k for k in ("dim", "count", "mean", "std") if k not in data]
        if missing:
            raise ValueError(f"{path}: CMVN JSON lacks field(s) {missing}")
        file_dim = data["dim"]
        if not isinstance(file_dim, int) or isinstance(file_dim, bool) or file_dim <= 0:
            raise ValueError(f'{path}: expected a positive integer "dim", got {file_dim!r}')
        for key in ("mean", "std"):
            values = data[key]
            if (
                not isinstance(values, list)
                or len(values) != file_dim
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            ):
                raise ValueError(f'{path}: expected "{key}" to be a list of {file_dim} numbers')
        if dim is not None and file_dim != dim:
            raise ValueError(f"{path}: CMVN statistics are for {file_dim}-dim features, expected {dim}")
        try:
            mean = torch.tensor(data["mean"], dtype=torch.float64)
            std = torch.tensor(data["std"], dtype=torch.float64)
            return cls(mean=mean, std=std, count=int(data["count"]))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc


def per_utterance_cmvn(x: Tensor, std_floor: float = 1e-5) -> Tensor:
    """Normalise one utterance by its own mean and (population) std over time.

    Args:
        x: (T, F) features, T >= 1.
        std_floor: lower bound on each std (a constant dimension maps to 0).

    Returns:
        (T, F), same dtype.
    """
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"per_utterance_cmvn: expected features (T>=1, F), got {getattr(x, 'shape', x)}")
    x64 = x.to(torch.float64)
    mean = x64.mean(dim=0)
    std = x64.std(dim=0, unbiased=False).clamp_min(std_floor)
    return ((x64 - mean) / std).to(x.dtype)


def masked_utterance_cmvn(feats: Tensor, lengths: Tensor) -> Tensor:
    """Per-utterance CMVN of a padded batch, statistics over each utterance's valid frames only.

    The training arithmetic (float32, variance floored at 1e-10); :func:`per_utterance_cmvn` is the
    float64 one-utterance version that inference uses. The two agree to float32 rounding.

    Args:
        feats: (B, T, F) padded features.
        lengths: (B,) valid frames.

    Returns:
        (B, T, F), padding frames normalised with their utterance's statistics.
    """
    stats = utterance_statistics(feats, lengths)
    return (feats - stats[:, :1]) / stats[:, 1:]


def utterance_statistics(feats: Tensor, lengths: Tensor) -> Tensor:
    """Each utterance's own mean and std over its valid frames (the arithmetic of
    :func:`masked_utterance_cmvn`), in the layout of speaker statistics.

    Args:
        feats: (B, T, F) padded features.
        lengths: (B,) valid frames.

    Returns:
        (B, 2, F): mean and std (variance floored at 1e-10), ``feats``' dtype.
    """
    mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    n = lengths.clamp(min=1).to(feats.dtype)[:, None, None]
    mean = (feats * mask).sum(1, keepdim=True) / n
    var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / n
    return torch.cat([mean, var.clamp(min=1e-10).sqrt()], dim=1)


CMVN_MODES = ("global", "utterance", "speaker", "none")


def speaker_statistics(feats_iter: Iterable[Tensor]) -> Tensor:
    """One speaker's CMVN statistics over all frames of their utterances (Kaldi's per-speaker CMVN).

    Args:
        feats_iter: the speaker's (T, F) features.

    Returns:
        (2, F) float32: the mean and the (population, floored) std, as :meth:`CMVN.fit` computes them.
    """
    stats = CMVN.fit(feats_iter)
    return torch.stack([stats.mean, stats.std]).float()


def normalise(
    feats: Tensor,
    mode: str,
    cmvn: CMVN | None = None,
    lengths: Tensor | None = None,
    speaker_stats: Tensor | None = None,
) -> Tensor:
    """The one CMVN dispatch of training and inference (the ``features.cmvn`` mode).

    Args:
        feats: (T, F) one utterance, or (B, T, F) a padded batch with its ``lengths`` (B,).
        mode: ``"global"`` (``cmvn``'s statistics; unchanged when ``cmvn`` is None), ``"utterance"``
            (each utterance's own statistics), ``"speaker"`` (each utterance by its speaker's
            ``speaker_stats``: (2, F) for one utterance, (B, 2, F) for a batch, from
            :func:`speaker_statistics`; without them every utterance is its own speaker, as in
            ``"utterance"``) or ``"none"``.

    Returns:
        the normalised features, same shape.
    """
    if mode == "global" and cmvn is not None:
        return cmvn.apply(feats)
    if mode == "speaker" and speaker_stats is not None:
        if speaker_stats.shape[-2:] != (2, feats.shape[-1]) or speaker_stats.dim() != feats.dim():
            raise ValueError(
                f"normalise: expected speaker statistics (2, F) per utterance of features {tuple(feats.shape)}, "
                f"got {tuple(speaker_stats.shape)}"
            )
        mean, std = speaker_stats.to(feats.dtype).unbind(-2)  # (F,) or (B, F)
        if feats.dim() == 3:
            mean, std = mean[:, None], std[:, None]
        return (feats - mean) / std
    if mode in ("utterance", "speaker"):
        return per_utterance_cmvn(feats) if lengths is None else masked_utterance_cmvn(feats, lengths)
    return feats


# ----------------------------------------------------------------------------------------------
# SpecAugment


@dataclass
class SpecAugmentConfig:
    """SpecAugment masks (Park et al. 2019), no time warping.

    Attributes:
        freq_masks: frequency masks per utterance.
        freq_width: maximum width of a frequency mask (bins); each width is uniform in [0, max].
        time_masks: time masks per utterance.
        time_width: maximum width of a time mask (frames) ...
        time_ratio: ... further capped at ``floor(time_ratio * length)`` for each utterance.
    """

    freq_masks: int = 2
    freq_width: int = 15
    time_masks: int = 2
    time_width: int = 40
    time_ratio: float = 0.05

    def __post_init__(self) -> None:
        for name in ("freq_masks", "freq_width", "time_masks", "time_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"SpecAugmentConfig.{name}: expected a non-negative integer, got {value!r}")
        if not isinstance(self.time_ratio, (int, float)) or not 0.0 <= self.time_ratio <= 1.0:
            raise ValueError(f"SpecAugmentConfig.time_ratio: expected a number in [0, 1], got {self.time_ratio!r}")


def _random_spans(
    count: int, max_width: Tensor, extent: Tensor, size: int, generator: torch.Generator | None
) -> Tensor:
    """Union of ``count`` random spans per row; returns a (B, size) bool mask.

    max_width, extent: (B,) int64; span widths are uniform in [0, max_width], starts uniform in
    [0, extent - width], so each span lies inside [0, extent).
    """
    B = extent.shape[0]
    u_width = torch.rand(B, count, generator=generator, dtype=torch.float64)
    u_start = torch.rand(B, count, generator=generator, dtype=torch.float64)
    width = torch.minimum((u_width * (max_width[:, None] + 1)).long(), max_width[:, None])
    room = (extent[:, None] - width).clamp_min(0)
    start = torch.minimum((u_start * (room + 1)).long(), room)
    pos = torch.arange(size)[None, None, :]
    inside = (pos >= start[:, :, None]) & (pos < (start + width)[:, :, None])  # (B, count, size)
    return inside.any(dim=1)


def spec_augment(
    feats: Tensor, lengths: Tensor, cfg: SpecAugmentConfig, generator: torch.Generator | None = None
) -> Tensor:
    """Mask random frequency bands and time spans with 0 (the mean after CMVN).

    Only valid frames (``t < lengths[b]``) are ever changed; padding is left as it was.

    Args:
        feats: (B, T, F) features.
        lengths: (B,) valid frames per utterance.
        cfg: mask counts and widths.
        generator: CPU random generator, for reproducible masks.

    Returns:
        (B, T, F) new tensor; ``feats`` is not modified.
    """
    if not isinstance(feats, Tensor) or feats.dim() != 3:
        raise ValueError(f"spec_augment: expected feats (B, T, F), got {getattr(feats, 'shape', feats)}")
    B, T, F = feats.shape
    lengths = torch.as_tensor(lengths).to("cpu", torch.long)
    if lengths.shape != (B,) or bool((lengths < 0).any()) or bool((lengths > T).any()):
        raise ValueError(f"spec_augment: expected lengths (B={B},) in [0, T={T}], got {lengths.tolist()}")
    valid = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    mask = torch.zeros(B, T, F, dtype=torch.bool)
    if cfg.freq_masks > 0 and cfg.freq_width > 0:
        max_w = torch.full((B,), min(cfg.freq_width, F), dtype=torch.long)
        fmask = _random_spans(cfg.freq_masks, max_w, torch.full((B,), F, dtype=torch.long), F, generator)
        mask |= fmask[:, None, :] & valid[:, :, None]
    if cfg.time_masks > 0 and cfg.time_width > 0:
        max_w = torch.clamp(torch.floor(lengths.double() * cfg.time_ratio).long(), max=cfg.time_width)
        tmask = _random_spans(cfg.time_masks, max_w, lengths, T, generator) & valid
        mask |= tmask[:, :, None]
    return feats.masked_fill(mask.to(feats.device), 0.0)


# ----------------------------------------------------------------------------------------------
# The features config group


def features_from_group(values: dict[str, Any], prefix: str = "features") -> tuple[FeatureConfig, str]:
    """Split the ``features`` group (a plain dict) into the extractor config and the CMVN mode, each
    validated: an unknown or mistyped key fails naming ``features.key``.

    Training and every model-directory reader go through this one function. SpecAugment is the
    ``augment`` group's (``augment.specaugment``); model directories written before it moved there
    carry a ``specaugment`` entry here, which is training-only and ignored.
    """
    values = dict(values)
    cmvn_mode = values.pop("cmvn", "global")
    values.pop("specaugment", None)
    if cmvn_mode not in CMVN_MODES:
        raise ConfigError(f"{prefix}.cmvn must be global, utterance, speaker or none, got {cmvn_mode!r}")
    return dataclass_from(FeatureConfig, values, prefix), cmvn_mode
