"""recipes/lib/pad_audio.py: a data directory's recordings padded with near-silence at both ends."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_command_refuses_an_existing_out_and_alignments(tmp_path: Path) -> None:
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
    assert proc.returncode != 0 and "alignments" in proc.stderr and "Traceback" not in proc.stderr
