"""Copy a data directory with every recording padded by a little near-silence at both ends
(and, with ``--trim-db``, first trimmed to its loud part as FSDD's recordings are).

Isolated-word corpora are often trimmed to the word: FSDD's recordings of george, jackson and
nicolas start within 30 ms of the first sound (median), so a word-initial burst or fricative
falls in the model's first frames, with no silence before it as in the read speech, the flite
words and the speechocean762 clips (cut with 50 ms either side) that the models also learn from.
Each recording gets ``--ms`` milliseconds of Gaussian noise at -80 dBFS (std 1e-4, seeded by the
utterance id: the copy is the same on every run) before and after it, at its own sample rate,
written as FLAC under ``OUT/wav``; ``text``, ``utt2spk`` and ``phones`` are copied; frame ``alignments``
are not (they would no longer match the audio: the copy has none, and says so).

    python recipes/lib/pad_audio.py data/fsdd/unpadded/train data/fsdd/train --ms 50

``--trim-db LO HI`` first cuts each recording to the span whose 10-ms frames reach the
loudest frame's energy less ``T`` dB, ``T`` drawn uniformly from ``[LO, HI]`` for each end (seeded
by the utterance id), as an energy end-pointer would: FSDD's recordings start 10-35 dB below
their peak (george, jackson, nicolas: median first 10-ms frame -24, -20, -16 dB), so a weak
onset (a /t/ burst, an /f/) is often cut off there. The FSDD recipe trims its training
recordings this way (the other corpora pooled with FSDD, and FSDD's own: lucas's are not
trimmed at all) so that the models learn the digits without their weak onsets too:

    python recipes/lib/pad_audio.py data/fsdd/untrimmed/so762_digits data/fsdd/so762_digits --ms 50 --trim-db 10 40

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
from phonrec.vad import energy_track

logger = logging.getLogger("pad_audio")

#: The padding's level: the std of its Gaussian samples (-80 dBFS).
NOISE_STD = 1e-4

#: The trimming's frame, milliseconds (non-overlapping frames; the last partial one counts).
TRIM_FRAME_MS = 10


def trim_recording(wave: torch.Tensor, sample_rate: int, start_db: float, end_db: float) -> torch.Tensor:
    """``(N,)`` -> ``(M,)``, the samples from the first to the last :data:`TRIM_FRAME_MS` frame whose
    mean energy reaches the loudest frame's less ``start_db`` (for the start) and ``end_db`` (for the
    end) decibels (frame energies by :func:`phonrec.vad.energy_track`), whole frames kept. A silent
    recording is returned as it is (every frame is at the peak)."""
    hop = int(round(TRIM_FRAME_MS * sample_rate / 1000))
    # the last partial frame is zero-padded so that it counts (energy_track keeps whole frames only)
    padded = np.pad(wave.numpy(), (0, -len(wave) % hop))
    level_db = energy_track(padded, sample_rate, hop_ms=TRIM_FRAME_MS, win_ms=TRIM_FRAME_MS).db
    level_db = level_db - level_db.max()
    first = int(np.flatnonzero(level_db >= -start_db)[0])
    last = int(np.flatnonzero(level_db >= -end_db)[-1])
    return wave[first * hop : min(len(wave), (last + 1) * hop)]


def pad_recording(wave: torch.Tensor, sample_rate: int, ms: float, seed: str) -> torch.Tensor:
    """``(N,)`` -> ``(n + N + n,)`` with ``n = round(ms * sample_rate / 1000)`` samples of
    :data:`NOISE_STD` Gaussian noise on each side, drawn from a generator seeded by ``seed``."""
    n = int(round(ms * sample_rate / 1000))
    rng = np.random.default_rng(zlib.crc32(seed.encode()))
    noise = torch.from_numpy((rng.standard_normal(2 * n) * NOISE_STD).astype(np.float32))
    return torch.cat([noise[:n], wave, noise[n:]])


def pad_datadir(data: DataDir, out: Path, ms: float, trim_db: tuple[float, float] | None = None) -> DataDir:
    """Write ``out`` (module docstring) and return it; ``trim_db`` = ``(LO, HI)`` trims first.

    Raises:
        ValueError: ``ms`` is negative, ``trim_db`` is not ``0 <= LO <= HI``, or no recording could be read.
    """
    if ms < 0:
        raise ValueError(f"--ms must be >= 0, got {ms}")
    if trim_db is not None and not 0 <= trim_db[0] <= trim_db[1]:
        raise ValueError(f"--trim-db LO HI needs 0 <= LO <= HI, got {trim_db[0]:g} {trim_db[1]:g}")
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
        if trim_db is not None:
            rng = np.random.default_rng(zlib.crc32(f"trim {utt}".encode()))
            wave = trim_recording(wave, rate, *rng.uniform(trim_db[0], trim_db[1], size=2))
        path = (wav_dir / f"{utt}.flac").resolve()
        sf.write(path, pad_recording(wave, rate, ms, utt).numpy(), rate)
        kept[utt] = path
    log_skipped(logger, f"pad {data.path}", skipped)
    if not kept:
        raise ValueError(f"{data.path}: no recording could be read")
    padded = data.subset(set(kept))
    padded.wavs = {u: kept[u] for u in padded.utts}
    if padded.alignments is not None:
        logger.warning("%s: frame alignments not copied to %s (the padding moves the audio)", data.path, out)
        padded.alignments = None
    padded.save(out)
    return padded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data", type=Path, help="the data directory to copy")
    parser.add_argument("out", type=Path, help="the padded copy (a new data directory)")
    parser.add_argument("--ms", type=float, default=50.0, help="padding on each side, milliseconds")
    parser.add_argument(
        "--trim-db",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="first trim each end where the 10-ms frames fall T dB below the loudest, T uniform in [LO, HI]",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if (args.out / "wav.scp").exists():  # never overwrite a data directory silently
        sys.exit(f"pad_audio.py: {args.out} already holds a data directory: remove it or choose another OUT")
    try:
        padded = pad_datadir(DataDir.load(args.data), args.out, args.ms, args.trim_db)
    except (OSError, ValueError) as e:  # a bad data directory, named by the error; no traceback
        sys.exit(f"pad_audio.py: {e}")
    trimmed = f"trimmed at {args.trim_db[0]:g}-{args.trim_db[1]:g} dB below the peak and " if args.trim_db else ""
    print(f"{args.out}: {len(padded)} recordings {trimmed}padded by {args.ms:g} ms")


if __name__ == "__main__":
    main()
