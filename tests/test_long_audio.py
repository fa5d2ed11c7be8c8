"""Long recordings: Transcriber.transcribe reads files longer than ~34 s chunk by chunk.

(a) the stitched chunk-wise posteriors equal one whole-file forward pass (an independent
computation: ``Transcriber.log_probs_batch`` on the waveform read in one piece);
(b) a one-hour FLAC transcribes with bounded peak memory (measured in a subprocess).

:func:`helpers.make_model_dir` (a model directory built by hand from a composed config and a freshly
initialised BiLSTM, written by ``phonrec.model_dir.write_model_dir``) is shared with the other
reliability tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF
from helpers import make_model_dir, sine_noise

from phonrec.audio import load_audio
from phonrec.features import num_frames
from phonrec.transcribe import Transcriber

REPO = Path(__file__).resolve().parents[1]
SR = 16000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return make_model_dir(tmp_path_factory.mktemp("long"), short_memory=True)


def test_three_minute_file_chunked_equals_whole_file(model_dir: Path, tmp_path: Path) -> None:
    tr = Transcriber.from_pretrained(model_dir)
    path = tmp_path / "three_minutes.wav"
    sf.write(path, sine_noise(180.0), SR, subtype="FLOAT")
    assert sf.info(str(path)).duration > Transcriber.LONG_FILE_SECONDS  # so transcribe() takes the chunked path
    chunked = torch.from_numpy(tr.transcribe(path, posteriors=True).posteriors)
    whole = tr.log_probs_batch([load_audio(path)])[0]  # one forward pass over the whole waveform
    assert chunked.shape == whole.shape == (num_frames(180 * SR), 3)
    # The model's outputs depend on a few frames only (short_memory), far less than the 2 s of
    # context each chunk carries, so stitching must reproduce the whole-file pass everywhere,
    # including next to the 5 stitching points (frames 3000, 6000, ... at 10 ms).
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)
    # a stitch off by one frame would be caught: neighbouring frames differ by far more
    assert float((whole[1:] - whole[:-1]).abs().max()) > 1e-2


def test_long_48k_stereo_file_resampled_per_chunk(model_dir: Path, tmp_path: Path) -> None:
    """A 40 s 48 kHz stereo FLAC: each chunk is mixed and resampled on its own; the stitched
    posteriors equal those of the whole file mixed and resampled in one go (torchaudio)."""
    tr = Transcriber.from_pretrained(model_dir)
    left, right = sine_noise(40.0, 48000, seed=1), sine_noise(40.0, 48000, seed=2)
    path = tmp_path / "stereo48k.flac"
    sf.write(path, np.stack([left, right], axis=1) * 0.5, 48000, subtype="PCM_24")
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    reference = AF.resample(torch.from_numpy(data.mean(axis=1)), 48000, SR)
    whole = tr.log_probs_batch([reference])[0]
    chunked = torch.from_numpy(tr.transcribe(path, posteriors=True).posteriors)
    assert chunked.shape == whole.shape
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)


_RSS_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from phonrec.transcribe import Transcriber
    tr = Transcriber.from_pretrained(sys.argv[1])
    tr.transcribe(np.zeros(16000, np.float32), 16000)            # warm up allocators and kernels
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tr.transcribe(sys.argv[3])                                    # a 70 s file: same chunked code path
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # KiB on Linux
    result = tr.transcribe(sys.argv[2])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"loaded_kib": loaded, "before_kib": before, "after_kib": after, "spans": len(result.spans),
                      "end_s": result.spans[-1][2] if result.spans else 0.0}))
""")


def _write_flac_blockwise(path: Path, seconds: int, block_seconds: int = 60) -> None:
    with sf.SoundFile(path, "w", SR, 1, format="FLAC", subtype="PCM_16") as f:
        for start in range(0, seconds, block_seconds):
            f.write(sine_noise(min(block_seconds, seconds - start), start=start * SR))


@pytest.mark.timeout(900)  # ~15 s measured on 1 shared CPU thread
def test_one_hour_flac_in_bounded_memory(model_dir: Path, tmp_path: Path) -> None:
    hour, short = tmp_path / "hour.flac", tmp_path / "short.flac"
    _write_flac_blockwise(hour, 3600)
    _write_flac_blockwise(short, 70)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(model_dir), str(hour), str(short)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=880,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rss = json.loads(proc.stdout.strip().splitlines()[-1])
    growth_mib = (rss["after_kib"] - rss["before_kib"]) / 1024
    print(
        f"peak RSS after loading {rss['loaded_kib'] / 1024:.1f} MiB, "
        f"after a 70 s file {rss['before_kib'] / 1024:.1f} MiB, "
        f"after the hour {rss['after_kib'] / 1024:.1f} MiB; hour vs 70 s growth {growth_mib:.1f} MiB"
    )
    # The whole waveform alone would be 3600 * 16000 * 4 B = 220 MiB (its features another 27 MiB,
    # the BiLSTM activations far more); chunked, only the (T, K) log-probabilities grow with the
    # file: 360k frames * 3 classes * 4 B = 4 MiB.
    assert growth_mib < 100, rss
    assert rss["end_s"] > 3599.0  # spans cover the whole hour
