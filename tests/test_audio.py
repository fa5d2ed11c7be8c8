"""phonrec.audio: reading every supported container, mono mixing, resampling and the errors for
bad input, each checked against soundfile/numpy/torchaudio/analytic signals."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from phonrec.audio import AudioError, load_audio, validate_waveform

SR = 16000


def _pcm16(n: int = SR, seed: int = 0, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n,) if channels == 1 else (n, channels)
    return rng.integers(-20000, 20000, size=shape, dtype=np.int16)


def test_wav_flac_sphere_give_identical_samples(tmp_path: Path) -> None:
    pcm = _pcm16()
    paths = {
        "wav": tmp_path / "a.wav",
        "flac": tmp_path / "a.flac",
        "sphere": tmp_path / "a.sph",
        "timit": tmp_path / "SA1.WAV",  # TIMIT's .wav files are NIST SPHERE inside
    }
    sf.write(paths["wav"], pcm, SR, format="WAV", subtype="PCM_16")
    sf.write(paths["flac"], pcm, SR, format="FLAC", subtype="PCM_16")
    sf.write(paths["sphere"], pcm, SR, format="NIST", subtype="PCM_16")
    sf.write(paths["timit"], pcm, SR, format="NIST", subtype="PCM_16")
    assert paths["timit"].read_bytes().startswith(b"NIST_1A")
    expected = torch.from_numpy(pcm.astype(np.float32) / 32768.0)
    for name, path in paths.items():
        wave = load_audio(path)
        assert wave.dtype == torch.float32 and wave.shape == (SR,), name
        assert torch.equal(wave, expected), name


def test_ogg_vorbis_is_read(tmp_path: Path) -> None:
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / "tone.ogg"
    sf.write(path, tone, SR, format="OGG", subtype="VORBIS")
    wave = load_audio(path)
    assert wave.shape == (SR,)
    # lossy codec: compare the middle by correlation with the source tone
    mid = slice(2000, SR - 2000)
    corr = np.corrcoef(wave.numpy()[mid], tone[mid])[0, 1]
    assert corr > 0.99


def test_stereo_is_mixed_by_channel_mean(tmp_path: Path) -> None:
    pcm = _pcm16(channels=2)
    path = tmp_path / "stereo.flac"
    sf.write(path, pcm, SR, subtype="PCM_16")
    expected = (pcm.astype(np.float64) / 32768.0).mean(axis=1)
    np.testing.assert_allclose(load_audio(path).numpy(), expected, atol=1e-7, rtol=0)


@pytest.mark.parametrize("rate", [8000, 48000, 22050])
def test_other_rates_are_resampled(tmp_path: Path, rate: int) -> None:
    t = np.arange(rate) / rate  # one second
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    path = tmp_path / f"tone{rate}.wav"
    sf.write(path, tone.astype(np.float32), rate, subtype="FLOAT")
    wave = load_audio(path, sample_rate=SR)
    # exactly torchaudio's resampler on the file's samples ...
    ref = torchaudio.functional.resample(torch.from_numpy(tone.astype(np.float32)), rate, SR)
    assert wave.shape == ref.shape == (SR,)
    torch.testing.assert_close(wave, ref)
    # ... and, independently, the same tone sampled at 16 kHz (away from the edges)
    t16 = np.arange(SR) / SR
    np.testing.assert_allclose(wave.numpy()[800:-800], 0.5 * np.sin(2 * np.pi * 440.0 * t16)[800:-800], atol=2e-3)


def test_load_at_8k_keeps_8k(tmp_path: Path) -> None:
    pcm = _pcm16(4000)
    path = tmp_path / "digit.flac"
    sf.write(path, pcm, 8000, subtype="PCM_16")
    assert torch.equal(load_audio(path, sample_rate=8000), torch.from_numpy(pcm.astype(np.float32) / 32768))


def test_flite_utterance(tmp_path: Path) -> None:
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    path = tmp_path / "flite.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", "Read the news.", "-o", str(path)], check=True, capture_output=True)
    data, rate = sf.read(str(path), dtype="int16")
    wave = load_audio(path, sample_rate=rate)
    assert torch.equal(wave, torch.from_numpy(data.astype(np.float32) / 32768))
    assert load_audio(path, sample_rate=8000).shape == (int(np.ceil(len(data) * 8000 / rate)),)


def test_silent_audio_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR // 2, dtype=np.int16), SR, subtype="PCM_16")
    wave = load_audio(path)
    assert wave.shape == (SR // 2,) and bool((wave == 0).all())


def test_minimum_length_is_one_window(tmp_path: Path) -> None:
    ok = tmp_path / "ok.wav"
    sf.write(ok, _pcm16(400), SR, subtype="PCM_16")
    assert load_audio(ok).shape == (400,)
    short = tmp_path / "short.wav"
    sf.write(short, _pcm16(399), SR, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"short\.wav.*too short"):
        load_audio(short)


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, regex the message must contain besides the file name)."""
    files: dict[str, tuple[Path, str]] = {}
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    files["text"] = (text, "cannot read audio")
    noise = tmp_path / "garbage.flac"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    files["random bytes"] = (noise, "cannot read audio")
    empty_file = tmp_path / "zero_bytes.wav"
    empty_file.write_bytes(b"")
    files["zero-byte file"] = (empty_file, "cannot read audio")
    empty_audio = tmp_path / "no_samples.wav"
    sf.write(empty_audio, np.zeros(0, dtype=np.int16), SR, subtype="PCM_16")
    files["no samples"] = (empty_audio, "empty")
    truncated = tmp_path / "truncated.flac"
    sf.write(truncated, _pcm16(), SR, subtype="PCM_16")
    truncated.write_bytes(truncated.read_bytes()[:30])  # header cut inside the STREAMINFO block
    files["truncated"] = (truncated, "cannot read audio")
    nan = tmp_path / "has_nan.wav"
    x = np.zeros(SR, dtype=np.float32)
    x[100] = np.nan
    sf.write(nan, x, SR, subtype="FLOAT")
    files["nan"] = (nan, "non-finite")
    inf = tmp_path / "has_inf.wav"
    x = np.zeros(SR, dtype=np.float32)
    x[5] = np.inf
    sf.write(inf, x, SR, subtype="FLOAT")
    files["inf"] = (inf, "non-finite")
    tiny = tmp_path / "tiny_8k.wav"
    sf.write(tiny, _pcm16(100), 8000, subtype="PCM_16")
    files["too short"] = (tiny, "too short")
    files["missing"] = (tmp_path / "absent.flac", "no such file")
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    files["directory"] = (folder, "not a regular file")
    return files


def test_each_bad_input_raises_audio_error_naming_the_file(tmp_path: Path) -> None:
    for name, (path, reason) in _bad_files(tmp_path).items():
        with pytest.raises(AudioError) as info:
            load_audio(path)
        message = str(info.value)
        assert path.name in message, name
        assert reason in message, f"{name}: {message}"
        assert isinstance(info.value, ValueError)


def test_validate_waveform_layouts_and_dtypes() -> None:
    rng = np.random.default_rng(1)
    stereo = rng.standard_normal((2, 1000)).astype(np.float32) * 0.1  # (C, N)
    np.testing.assert_allclose(validate_waveform(stereo, SR).numpy(), stereo.mean(axis=0), atol=1e-7)
    mono = torch.from_numpy(stereo[0])
    assert torch.equal(validate_waveform(mono, SR), mono)
    assert torch.equal(validate_waveform(mono[None, :], SR), mono)
    pcm = _pcm16(1000)
    assert torch.equal(validate_waveform(pcm, SR), torch.from_numpy(pcm.astype(np.float32) / 32768))
    assert validate_waveform(torch.zeros(1000, dtype=torch.float64), SR).dtype == torch.float32


@pytest.mark.parametrize(
    "wave, reason",
    [
        (np.zeros((1000, 2), dtype=np.float32), "looks like \\(N, channels\\)"),
        (np.zeros((2, 3, 400), dtype=np.float32), "expected \\(N,\\) or \\(channels, N\\)"),
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.0] * 500 + [np.nan], dtype=np.float32), "non-finite"),
        (torch.full((500,), float("-inf")), "non-finite"),
        (np.zeros(399, dtype=np.float32), "too short"),
        (np.zeros(500, dtype=np.uint8), "dtype"),
        ([0.0] * 500, "numpy array or torch tensor"),
    ],
)
def test_validate_waveform_errors_name_the_source(wave: object, reason: str) -> None:
    with pytest.raises(AudioError, match=f"utt_042.*{reason}"):
        validate_waveform(wave, SR, source="utt_042")


def test_shorter_minimum_at_lower_rate() -> None:
    assert validate_waveform(np.zeros(200, dtype=np.float32), 8000).shape == (200,)
    with pytest.raises(AudioError, match="too short"):
        validate_waveform(np.zeros(199, dtype=np.float32), 8000)


def test_real_corpus_files_load() -> None:
    root = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    fsdd = sorted((root / "fsdd" / "recordings").glob("*.flac"))[:3] if root.is_dir() else []
    if not fsdd:
        pytest.skip(f"real data not found under {root} (only present on the development machine)")
    for path in fsdd:
        data, rate = sf.read(str(path), dtype="float32")
        assert rate == 8000
        wave = load_audio(path, sample_rate=SR)
        ref = torchaudio.functional.resample(torch.from_numpy(data), rate, SR)
        torch.testing.assert_close(wave, ref)


# --- truncated files -----------------------------------------------------------------------------


def _cut(path: Path, keep_bytes: int) -> None:
    path.write_bytes(path.read_bytes()[:keep_bytes])


def test_wav_cut_mid_data_is_read_with_a_warning_naming_the_file(tmp_path: Path, caplog) -> None:
    """libsndfile reports the frames present, not those declared; the header's data size tells."""
    from phonrec.audio import declared_wav_frames

    path = tmp_path / "cut.wav"
    sf.write(path, _pcm16(SR), SR, subtype="PCM_16")  # 1.000 s, 44-byte header
    _cut(path, 44 + 2 * 8000)  # 0.500 s of samples left
    assert declared_wav_frames(path) == SR and sf.info(str(path)).frames == 8000
    with caplog.at_level("WARNING", logger="phonrec.audio"):
        wave = load_audio(path)
    assert wave.shape == (8000,)
    [record] = [r for r in caplog.records if r.name == "phonrec.audio"]
    assert record.getMessage() == (
        f"{path}: truncated: 0.500 s of audio read, its header declares 1.000 s (the file was cut short)"
    )


def test_complete_files_give_no_truncation_warning(tmp_path: Path, caplog) -> None:
    from phonrec.audio import declared_wav_frames

    wav, flac = tmp_path / "a.wav", tmp_path / "a.flac"
    sf.write(wav, _pcm16(SR), SR, subtype="PCM_16")
    sf.write(flac, _pcm16(SR), SR)
    with caplog.at_level("WARNING", logger="phonrec.audio"):
        load_audio(wav)
        load_audio(flac)
    assert declared_wav_frames(wav) == SR and declared_wav_frames(flac) is None
    assert not [r for r in caplog.records if r.name == "phonrec.audio"]
