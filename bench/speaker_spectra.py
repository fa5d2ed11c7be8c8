"""Long-term spectrum of each speaker of a data directory: mean power in octave-ish bands, in dB
relative to the 0.5-1 kHz band (what a microphone or a voice does to the spectral tilt).

    python bench/speaker_spectra.py data/fsdd/train data/fsdd/test --max-utts 60

Each utterance is framed (256-sample Hann windows, hop 128, at the file's own rate), its power
spectrum averaged; a speaker's spectrum is the mean over their first ``--max-utts`` utterances.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phonrec.data.datadir import DataDir  # noqa: E402

BANDS_HZ = ((0, 250), (250, 500), (500, 1000), (1000, 2000), (2000, 4000))
REFERENCE = 2  # the 0.5-1 kHz band


def mean_power_spectrum(path: str, n_fft: int = 256) -> tuple[np.ndarray, int]:
    """(n_fft // 2 + 1,) mean power spectrum of one file, and its sample rate."""
    x, sr = sf.read(path, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 2] * np.hanning(n_fft)
    return (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0), sr


def band_levels(spectrum: np.ndarray, sr: int, n_fft: int = 256) -> list[float]:
    """dB of each band of :data:`BANDS_HZ` relative to the reference band (bands above Nyquist: nan)."""
    freqs = np.arange(spectrum.shape[0]) * sr / n_fft
    db = []
    for lo, hi in BANDS_HZ:
        inside = (freqs >= lo) & (freqs < hi) & (freqs > 0)
        db.append(10 * np.log10(spectrum[inside].mean()) if inside.any() else float("nan"))
    return [d - db[REFERENCE] for d in db]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data_dirs", nargs="+", type=Path)
    parser.add_argument("--max-utts", type=int, default=60)
    args = parser.parse_args()
    by_speaker: dict[str, list[str]] = {}
    for d in args.data_dirs:
        data = DataDir.load(d)
        for utt in data.utts:
            by_speaker.setdefault(data.utt2spk[utt], []).append(str(data.wavs[utt]))
    header = " | ".join(f"{lo}-{hi} Hz" for lo, hi in BANDS_HZ)
    print(f"| speaker | utterances | {header} |\n|---|---|" + "---|" * len(BANDS_HZ))
    for spk in sorted(by_speaker):
        spectra = [mean_power_spectrum(p) for p in sorted(by_speaker[spk])[: args.max_utts]]
        rates = {sr for _, sr in spectra}
        if len(rates) != 1:
            raise SystemExit(f"speaker {spk}: files at several sample rates {sorted(rates)}")
        levels = band_levels(np.mean([s for s, _ in spectra], axis=0), rates.pop())
        print(f"| {spk} | {len(spectra)} | " + " | ".join(f"{v:+.1f}" for v in levels) + " |")


if __name__ == "__main__":
    main()
