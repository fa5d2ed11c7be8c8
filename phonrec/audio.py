"""Audio input: read a file (soundfile), mix to mono, resample, validate.

Everything downstream (features, models) receives a waveform ``(N,)`` float32 at the target
rate. Formats are whatever libsndfile reads: WAV, FLAC, OGG/Vorbis, NIST SPHERE (TIMIT's
``.wav`` files; uncompressed only), AIFF, ... ``torchaudio.load`` is deliberately not used (it
needs FFmpeg/torchcodec).

Rules, shared by :func:`load_audio` and :func:`validate_waveform`:

- multi-channel audio is mixed to mono by the mean of its channels;
- samples must be finite (no NaN / inf) and there must be at least one 25 ms analysis window of
  them (``round(0.025 * rate)`` samples), otherwise :class:`AudioError`;
- all-silent (all-zero) audio is *allowed*: it is valid input whose features sit at the log
  floor; deciding that it is useless is the caller's business;
- a WAV file cut short (fewer sample bytes than its header declares) is read as far as it goes,
  with a warning (logger ``phonrec.audio``) naming the file and the duration read vs declared;
- values are not clipped: float files may exceed [-1, 1], and so may resampled audio slightly;
  but a peak above ``MAX_ABS_AMPLITUDE`` (1e6, 120 dB above full scale) is rejected as corrupt
  or mis-scaled: such samples would overflow the float32 power spectra (NaN/inf features, then
  NaN losses) while the samples themselves are finite.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional
from torch import Tensor

MIN_DURATION_MS = 25.0  # one analysis window
# Largest |sample| accepted. Unscaled 16-bit values (up to 32768) pass; the power spectrum of a
# 25 ms frame stays finite in float32 for every feature kind (kaldi_fbank scales by 32768 first)
# up to ~1e12, so 1e6 leaves a wide margin.
MAX_ABS_AMPLITUDE = 1e6
# What phonrec-transcribe looks for in folders: the types this libsndfile reads (MP3 from 1.1).
AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "sph") + (("mp3",) if "MP3" in sf.available_formats() else ())

log = logging.getLogger("phonrec.audio")


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file (or array source) and the reason."""


def _min_samples(sample_rate: int) -> int:
    return int(round(sample_rate * MIN_DURATION_MS / 1000))


def validate_waveform(wave: Tensor | np.ndarray, sample_rate: int, *, source: str = "<array>") -> Tensor:
    """Check a waveform given as an array and return it as mono float32.

    Args:
        wave: samples as a numpy array or torch tensor, either ``(N,)`` mono or ``(C, N)``
            channels-first (the torchaudio convention) with ``C < N``. A 2-D array with more rows
            than columns is taken to be soundfile's ``(N, C)`` layout given by mistake and is
            rejected (pass ``wave.T``). Floating-point samples are used as they are (nominally
            [-1, 1]); int16 / int32 PCM is scaled by 2**15 / 2**31.
        sample_rate: rate of ``wave`` in Hz (used for the minimum-duration check).
        source: what to call the waveform in error messages (a file name, an utterance id).

    Returns:
        (N,) float32 on the input's device (numpy -> CPU), channels averaged.

    Raises:
        AudioError: wrong rank/layout/dtype, empty, non-finite, a peak above
            ``MAX_ABS_AMPLITUDE``, or shorter than 25 ms.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise AudioError(f"{source}: expected a positive integer sample rate, got {sample_rate!r}")
    if isinstance(wave, np.ndarray):
        if wave.dtype == np.int16:
            wave = wave.astype(np.float32) / 2.0**15
        elif wave.dtype == np.int32:
            wave = (wave.astype(np.float64) / 2.0**31).astype(np.float32)
        elif not np.issubdtype(wave.dtype, np.floating):
            raise AudioError(f"{source}: expected float, int16 or int32 samples, got dtype {wave.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    elif isinstance(wave, Tensor):
        if wave.dtype == torch.int16:
            x = wave.to(torch.float32) / 2.0**15
        elif wave.dtype == torch.int32:
            x = (wave.to(torch.float64) / 2.0**31).to(torch.float32)
        elif wave.dtype.is_floating_point:
            x = wave.detach().to(torch.float32)
        else:
            raise AudioError(f"{source}: expected float, int16 or int32 samples, got dtype {wave.dtype}")
    else:
        raise AudioError(f"{source}: expected a numpy array or torch tensor, got {type(wave).__name__}")

    if x.numel() == 0:
        raise AudioError(f"{source}: audio is empty (0 samples)")
    if x.dim() == 2:
        channels, n = x.shape
        if channels > n:
            raise AudioError(
                f"{source}: expected (channels, N) audio, got shape {tuple(x.shape)} which looks like (N, channels); "
                "pass its transpose"
            )
        x = x.mean(dim=0) if channels > 1 else x[0]
    elif x.dim() != 1:
        raise AudioError(f"{source}: expected (N,) or (channels, N) audio, got shape {tuple(x.shape)}")

    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise AudioError(f"{source}: audio has {bad} non-finite (NaN/inf) sample(s)")
    peak = float(x.abs().max())
    if peak > MAX_ABS_AMPLITUDE:
        raise AudioError(
            f"{source}: audio peak |x| = {peak:.3g} exceeds {MAX_ABS_AMPLITUDE:g} (expected samples near [-1, 1]); "
            "the file is corrupt or wrongly scaled"
        )
    need = _min_samples(int(sample_rate))
    if x.numel() < need:
        raise AudioError(
            f"{source}: audio is too short: {x.numel()} samples at {sample_rate} Hz "
            f"({1000 * x.numel() / sample_rate:.1f} ms) < one {MIN_DURATION_MS:g} ms window ({need} samples)"
        )
    return x.contiguous()


def _read_error_hint(path: Path) -> str:
    """Extra advice for files libsndfile refuses, from their first bytes."""
    try:
        with path.open("rb") as f:
            head = f.read(1024)
    except OSError:
        return ""
    if head.startswith(b"NIST_1A") and b"shorten" in head:
        return " (shorten-compressed NIST SPHERE; decompress it first, e.g. with sph2pipe)"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        return " (MP3; this libsndfile may not support it)"
    return ""


def declared_wav_frames(path: str | Path) -> int | None:
    """The number of frames a RIFF/WAVE header declares (its ``data`` chunk size over the block
    size), or ``None`` for other files and headers that declare no size.

    libsndfile reports the frames actually present, so a file cut mid-data is only detectable here.
    """
    try:
        with Path(path).open("rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if name == b"fmt ":
                    fmt = f.read(size + (size & 1))
                    block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                elif name == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):  # streamed WAVs leave the size open
                        return None
                    return size // block_align
                else:
                    f.seek(size + (size & 1), 1)
    except OSError:
        return None


def warn_if_truncated(path: str | Path, frames_read: int, sample_rate: int) -> bool:
    """Warn (logger ``phonrec.audio``) when ``path``'s header declares more frames than were read.

    Returns:
        whether the file is truncated.
    """
    declared = declared_wav_frames(path)
    if declared is None or frames_read >= declared:
        return False
    log.warning(
        "%s: truncated: %.3f s of audio read, its header declares %.3f s (the file was cut short)",
        path,
        frames_read / sample_rate,
        declared / sample_rate,
    )
    return True


def load_audio(path: str | Path, sample_rate: int = 16000) -> Tensor:
    """Read an audio file as a mono waveform at ``sample_rate``.

    Args:
        path: WAV, FLAC, OGG, NIST SPHERE (uncompressed, e.g. TIMIT), or any format libsndfile reads.
        sample_rate: target rate in Hz; other rates are converted with
            ``torchaudio.functional.resample`` (windowed-sinc, its defaults).

    Returns:
        (N,) float32, channels averaged; integer PCM maps to [-1, 1).

    Raises:
        AudioError: naming ``path``: missing, not a file, unreadable/corrupt/not audio, empty,
            non-finite samples, a peak above ``MAX_ABS_AMPLITUDE``, or shorter than 25 ms.

    A WAV file with fewer samples than its header declares is returned as read, with a warning
    (:func:`warn_if_truncated`).

    Example:
        >>> wave = load_audio("utt.flac")          # doctest: +SKIP
        >>> wave.shape, wave.dtype                  # doctest: +SKIP
        (torch.Size([35200]), torch.float32)
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"load_audio: expected a positive integer sample_rate, got {sample_rate!r}")
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)  # (N, C)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise AudioError(f"{path}: cannot read audio: {reason}{_read_error_hint(path)}") from exc
    warn_if_truncated(path, data.shape[0], int(file_rate))
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float64).astype(np.float32)  # (N,)
    wave = validate_waveform(mono, int(file_rate), source=str(path))
    if file_rate != sample_rate:
        wave = torchaudio.functional.resample(wave, orig_freq=int(file_rate), new_freq=sample_rate)
        wave = validate_waveform(wave, sample_rate, source=f"{path} (resampled {file_rate} -> {sample_rate} Hz)")
    return wave
