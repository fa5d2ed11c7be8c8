"""Feature extraction speed: phonrec vs librosa vs torchaudio, in seconds of audio per second.

Usage::

    .venv/bin/python bench/features.py [--json out.json] [--utts 100] [--repeats 15] [--threads 1]

Two workloads: one flite utterance (seeded noise when flite is absent) and a small corpus of
seeded noise utterances of 1-4 s. Every method computes 80 log-mel-like bands with a 25 ms
window and 10 ms hop at 16 kHz; each timing is the median of ``--repeats`` runs after two
warm-up runs. The table gives each method's speed and its ratio to librosa.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch
import torchaudio

from phonrec.features import FeatureConfig, compute_features, compute_features_batch

SR = 16000
SENTENCE = "The quick brown fox jumps over the lazy dog while the phonetician counts every vowel twice."


def one_utterance() -> tuple[np.ndarray, str]:
    """(N,) float32 flite speech, or 3 s of seeded noise when flite is absent."""
    if shutil.which("flite"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "utt.wav"
            subprocess.run(["flite", "-voice", "slt", "-t", SENTENCE, "-o", str(path)], check=True, capture_output=True)
            data, rate = sf.read(str(path), dtype="float32")
        if rate == SR:
            return data, "flite slt"
    return (np.random.default_rng(0).uniform(-0.5, 0.5, 3 * SR)).astype(np.float32), "noise"


def corpus(num_utts: int) -> list[np.ndarray]:
    """Seeded noise utterances of 1-4 s."""
    rng = np.random.default_rng(1)
    return [rng.uniform(-0.5, 0.5, int(rng.integers(SR, 4 * SR))).astype(np.float32) for _ in range(num_utts)]


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def methods(waves: list[np.ndarray]) -> dict[str, Callable[[], object]]:
    """name -> a function that computes features for every wave in ``waves``."""
    tensors = [torch.from_numpy(w) for w in waves]
    logmel, kaldi = FeatureConfig(kind="logmel"), FeatureConfig(kind="kaldi_fbank")
    mel_transform = torchaudio.transforms.MelSpectrogram(
        SR, n_fft=512, win_length=400, hop_length=160, f_min=20.0, n_mels=80, center=False, power=2.0
    )
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.zeros(len(waves), int(lengths.max()))
    for i, t in enumerate(tensors):
        padded[i, : len(t)] = t

    def run_librosa() -> None:
        for w in waves:
            S = librosa.feature.melspectrogram(
                y=w, sr=SR, n_fft=512, hop_length=160, win_length=400, center=False, n_mels=80, fmin=20.0
            )
            np.log(np.maximum(S, 1e-10))

    out: dict[str, Callable[[], object]] = {
        "librosa melspectrogram + log": run_librosa,
        "torchaudio MelSpectrogram + log": lambda: [mel_transform(t).clamp_min(1e-10).log() for t in tensors],
        "torchaudio kaldi.fbank": lambda: [
            torchaudio.compliance.kaldi.fbank(t.unsqueeze(0) * 32768, num_mel_bins=80, dither=0.0) for t in tensors
        ],
        "phonrec logmel": lambda: [compute_features(t, logmel) for t in tensors],
        "phonrec kaldi_fbank": lambda: [compute_features(t, kaldi) for t in tensors],
    }
    if len(waves) > 1:
        out["phonrec logmel (one padded batch)"] = lambda: compute_features_batch(padded, lengths, logmel)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--utts", type=int, default=100, help="utterances in the corpus workload")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per method (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    utt, utt_kind = one_utterance()
    workloads = {
        f"one utterance ({utt_kind}, {len(utt) / SR:.2f} s)": [utt],
        f"corpus ({args.utts} noise utts)": corpus(args.utts),
    }
    results: dict[str, dict[str, float]] = {}
    for workload, waves in workloads.items():
        audio_seconds = sum(len(w) for w in waves) / SR
        repeats = args.repeats if len(waves) == 1 else max(3, args.repeats // 3)
        results[workload] = {}
        for name, fn in methods(waves).items():
            results[workload][name] = audio_seconds / median_seconds(fn, repeats)

    baseline = "librosa melspectrogram + log"
    for workload, speeds in results.items():
        print(f"\n{workload}: seconds of audio per second (x realtime), torch threads={args.threads}")
        print(f"  {'method':36s} {'x realtime':>12s} {'vs librosa':>11s}")
        for name, speed in speeds.items():
            print(f"  {name:36s} {speed:12.0f} {speed / speeds[baseline]:10.2f}x")
    if args.json:
        payload = {
            "unit": "seconds of audio per second (median of timed runs after 2 warm-ups)",
            "baseline": baseline,
            "threads": args.threads,
            "torch": torch.__version__,
            "torchaudio": torchaudio.__version__,
            "librosa": librosa.__version__,
            "machine": platform.machine(),
            "processor": platform.processor(),
            "results": results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
