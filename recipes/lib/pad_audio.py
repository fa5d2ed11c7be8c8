"""Copy a data directory with every recording padded by a little near-silence at both ends.

Isolated-word corpora are often trimmed to the word: FSDD's recordings of george, jackson and
nicolas start within 30 ms of the first sound (median), so a word-initial burst or fricative
falls in the model's first frames, with no silence before it as in the read speech, the flite
words and the speechocean762 clips (cut with 50 ms either side) that the models also learn from.
Each recording gets ``--ms`` milliseconds of Gaussian noise at -80 dBFS (std 1e-4, seeded by the
utterance id: the copy is the same on every run) before and after it, at its own sample rate,
written as FLAC under ``OUT/wav``; ``text``, ``utt2spk`` and ``phones`` are copied. A data
directory with frame ``alignments`` is refused (they would no longer match the audio).

    python recipes/lib/pad_audio.py data/fsdd/unpadded/train data/fsdd/train --ms 50

Recordings that cannot be read are reported by name and left out; an OUT that already holds a
data directory is refused (nothing is overwritten).
"""

from __future__ import annotations

import argparse
import logging
import sys
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from phonrec.audio import AudioError, load_audio
from phonrec.data.datadir import DataDir, log_skipped

logger = logging.getLogger("pad_audio")

#: The padding's level: the std of its Gaussian samples (-80 dBFS).
NOISE_STD = 1e-4


def pad_recording(wave: torch.Tensor, sample_rate: int, ms: float, seed: str) -> torch.Tensor:
    """``(N,)`` -> ``(n + N + n,)`` with ``n = round(ms * sample_rate / 1000)`` samples of
    :data:`NOISE_STD` Gaussian noise on each side, drawn from a generator seeded by ``seed``."""
    n = int(round(ms * sample_rate / 1000))
    rng = np.random.default_rng(zlib.crc32(seed.encode()))
    noise = torch.from_numpy((rng.standard_normal(2 * n) * NOISE_STD).astype(np.float32))
    return torch.cat([noise[:n], wave, noise[n:]])


def pad_datadir(data: DataDir, out: Path, ms: float) -> DataDir:
    """Write ``out`` (module docstring) and return it.

    Raises:
        ValueError: ``data`` has alignments, ``ms`` is negative, or no recording could be read.
    """
    if data.alignments is not None:
        raise ValueError(f"{data.path}: has frame alignments, which padding would shift; pad before aligning")
    if ms < 0:
        raise ValueError(f"--ms must be >= 0, got {ms}")
    wav_dir = out / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    kept: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for utt in data.utts:
        try:
            rate = sf.info(str(data.wavs[utt])).samplerate
            wave = load_audio(data.wavs[utt], rate)
        except (AudioError, RuntimeError, OSError) as e:
            skipped[utt] = str(e)
            continue
        path = (wav_dir / f"{utt}.flac").resolve()
        sf.write(path, pad_recording(wave, rate, ms, utt).numpy(), rate)
        kept[utt] = path
    log_skipped(logger, f"pad {data.path}", skipped)
    if not kept:
        raise ValueError(f"{data.path}: no recording could be read")
    padded = data.subset(set(kept))
    padded.wavs = {u: kept[u] for u in padded.utts}
    padded.save(out)
    return padded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data", type=Path, help="the data directory to copy")
    parser.add_argument("out", type=Path, help="the padded copy (a new data directory)")
    parser.add_argument("--ms", type=float, default=50.0, help="padding on each side, milliseconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if (args.out / "wav.scp").exists():  # never overwrite a data directory silently
        sys.exit(f"pad_audio.py: {args.out} already holds a data directory: remove it or choose another OUT")
    try:
        padded = pad_datadir(DataDir.load(args.data), args.out, args.ms)
    except (OSError, ValueError) as e:  # a bad data directory, named by the error; no traceback
        sys.exit(f"pad_audio.py: {e}")
    print(f"{args.out}: {len(padded)} recordings padded by {args.ms:g} ms")


if __name__ == "__main__":
    main()
