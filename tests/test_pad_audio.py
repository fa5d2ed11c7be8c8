"""recipes/lib/pad_audio.py: a data directory's recordings padded with near-silence at both ends."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO_ROOT

from phonrec.data.datadir import DataDir

SCRIPT = REPO_ROOT / "recipes" / "lib" / "pad_audio.py"


def _pad_audio():
    spec = importlib.util.spec_from_file_location("recipes_pad_audio", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _corpus(root: Path) -> DataDir:
    """Two 8 kHz recordings (one 16-bit FLAC, one WAV) and one file that is not audio."""
    rng = np.random.default_rng(1)
    wavs = {}
    for utt, name in (("a_1", "a_1.flac"), ("b_2", "b_2.wav"), ("c_3", "c_3.wav")):
        path = root / "rec" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if utt == "c_3":
            path.write_bytes(b"not audio")
        else:
            sf.write(path, (0.3 * rng.standard_normal(3000)).astype(np.float32), 8000, subtype="PCM_16")
        wavs[utt] = path
    data = DataDir(
        wavs=wavs,
        text={u: "SIX" for u in wavs},
        utt2spk={u: u[0] for u in wavs},
        phones={u: ["s", "ih", "k", "s"] for u in wavs},
    )
    data.save(root / "data")
    return DataDir.load(root / "data")


def test_padded_copy_keeps_the_recording_exactly_between_two_quiet_margins(tmp_path: Path, caplog) -> None:
    pad = _pad_audio()
    data = _corpus(tmp_path)
    padded = pad.pad_datadir(data, tmp_path / "out", 50.0)
    assert padded.utts == ["a_1", "b_2"] and "c_3" in caplog.text  # the unreadable one is named, the rest kept
    again = DataDir.load(tmp_path / "out")
    assert again.text == {"a_1": "SIX", "b_2": "SIX"} and again.phones["b_2"] == ["s", "ih", "k", "s"]
    for utt in padded.utts:
        original, sr = sf.read(data.wavs[utt], dtype="float32")
        out, out_sr = sf.read(again.wavs[utt], dtype="float32")
        assert out_sr == sr == 8000 and len(out) == len(original) + 2 * 400  # 50 ms at 8 kHz on each side
        np.testing.assert_allclose(out[400:-400], original, atol=1 / 32768)  # FLAC is 16-bit: one step
        for margin in (out[:400], out[-400:]):
            assert 0 < np.abs(margin).max() < 1e-3 and abs(20 * np.log10(margin.std())) > 70  # about -80 dBFS
    # the same margins on every run: seeded by the utterance id
    pad.pad_datadir(data, tmp_path / "out2", 50.0)
    a, _ = sf.read(tmp_path / "out" / "wav" / "a_1.flac")
    b, _ = sf.read(tmp_path / "out2" / "wav" / "a_1.flac")
    assert np.array_equal(a, b)


def test_command_refuses_an_existing_out_and_drops_alignments(tmp_path: Path) -> None:
    data = _corpus(tmp_path)
    run = lambda *args: subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)  # noqa: E731
    proc = run(tmp_path / "data", tmp_path / "out", "--ms", "20")
    assert proc.returncode == 0, proc.stderr
    assert "2 recordings padded by 20 ms" in proc.stdout
    proc = run(tmp_path / "data", tmp_path / "out")
    assert proc.returncode != 0 and "already holds a data directory" in proc.stderr and "Traceback" not in proc.stderr
    data.alignments = {u: ["sil"] * 10 for u in data.utts}
    data.save(tmp_path / "ali")
    proc = run(tmp_path / "ali", tmp_path / "out3")
    assert proc.returncode == 0 and "alignments not copied" in proc.stderr, proc.stderr
    assert DataDir.load(tmp_path / "out3").alignments is None and DataDir.load(tmp_path / "ali").alignments


def _burst_then_tone(sr: int = 8000) -> tuple[np.ndarray, dict[str, int]]:
    """100 ms of -80 dBFS noise, a 20-ms burst 30 dB below the tone, 200 ms of tone, 100 ms of noise;
    every part a whole number of 10-ms frames. Returns the signal and each part's first sample."""
    rng = np.random.default_rng(0)
    ms = lambda m: m * sr // 1000  # noqa: E731
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(ms(200)) / sr)
    burst = rng.standard_normal(ms(20)) * (0.5 / np.sqrt(2)) * 10 ** (-30 / 20)  # tone power less 30 dB
    quiet = lambda n: 1e-4 * rng.standard_normal(n)  # noqa: E731
    parts = [quiet(ms(100)), burst, tone, quiet(ms(100))]
    starts = dict(zip(["quiet", "burst", "tone", "end"], np.cumsum([0] + [len(p) for p in parts])))
    return np.concatenate(parts).astype(np.float32), {k: int(v) for k, v in starts.items()}


def test_trimming_cuts_a_weak_onset_only_when_it_lies_below_the_threshold() -> None:
    import torch

    pad = _pad_audio()
    wave, at = _burst_then_tone()
    x = torch.from_numpy(wave)
    # 20 dB: the burst (-30 dB) goes, the recording starts with the tone; 40 dB: the burst stays
    assert torch.equal(pad.trim_recording(x, 8000, 20.0, 20.0), x[at["tone"] : at["end"]])
    assert torch.equal(pad.trim_recording(x, 8000, 40.0, 20.0), x[at["burst"] : at["end"]])
    # -80 dBFS noise is 77 dB below the tone: nothing is cut at 90 dB, at either end
    assert torch.equal(pad.trim_recording(x, 8000, 90.0, 90.0), x)
    silent = torch.zeros(800)
    assert torch.equal(pad.trim_recording(silent, 8000, 20.0, 20.0), silent)


def test_trimmed_copy_is_a_seeded_slice_of_each_recording_between_the_margins(tmp_path: Path) -> None:
    pad = _pad_audio()
    wave, at = _burst_then_tone()
    (tmp_path / "rec").mkdir()
    sf.write(tmp_path / "rec" / "u1.wav", wave, 8000, subtype="FLOAT")
    DataDir(wavs={"u1": tmp_path / "rec" / "u1.wav"}, text={"u1": "TWO"}, utt2spk={"u1": "s"}).save(tmp_path / "d")
    data = DataDir.load(tmp_path / "d")
    out = pad.pad_datadir(data, tmp_path / "out", 50.0, trim_db=(20.0, 40.0))
    got, _ = sf.read(out.wavs["u1"], dtype="float32")
    core = got[400:-400]
    # the thresholds drawn for u1 decide whether the burst stays; either way the tone is whole
    start = at["burst"] if len(core) > at["end"] - at["tone"] else at["tone"]
    np.testing.assert_allclose(core, wave[start : at["end"]], atol=1 / 32768)
    again = pad.pad_datadir(data, tmp_path / "out2", 50.0, trim_db=(20.0, 40.0))
    assert np.array_equal(got, sf.read(again.wavs["u1"], dtype="float32")[0])
    with pytest.raises(ValueError, match="LO <= HI"):
        pad.pad_datadir(data, tmp_path / "out3", 50.0, trim_db=(30.0, 20.0))
