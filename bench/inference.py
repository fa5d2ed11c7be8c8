"""Inference speed: ``Transcriber.transcribe`` real-time factor against the bare model forward.

For each audio file: the full path (load, features, CMVN, network, greedy decoding) at batch 1
and batched (``transcribe_batch``), and the bare ``model(feats, lengths)`` on pre-computed,
normalised features. RTF = processing seconds / audio seconds (lower is better); the overhead
column is (full - bare) / bare. Medians over repeats after warm-up. Prints a table, writes JSON.

    python bench/inference.py MODEL_DIR --data DATA_DIR [--utts 50] [--device cuda] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phonrec.audio import load_audio  # noqa: E402
from phonrec.data.datadir import DataDir  # noqa: E402
from phonrec.features import compute_features, normalise  # noqa: E402
from phonrec.transcribe import Transcriber  # noqa: E402


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--utts", type=int, default=50)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    tr = Transcriber.from_pretrained(args.model_dir, device=args.device)
    data = DataDir.load(args.data)
    paths = [data.wavs[u] for u in data.utts[: args.utts]]
    sr = tr.feature_config.sample_rate
    audio_seconds = sum(load_audio(p, sr).shape[0] for p in paths) / sr

    def full_single():
        for p in paths:
            tr.transcribe(p)

    def full_batched():
        for i in range(0, len(paths), args.batch):
            tr.transcribe_batch(paths[i : i + args.batch])

    feats = [
        normalise(compute_features(load_audio(p, sr), tr.feature_config), tr.cmvn_mode, tr.cmvn).to(device)
        for p in paths
    ]

    @torch.no_grad()
    def bare_single():
        for f in feats:
            tr.model(f[None], torch.tensor([f.shape[0]], device=device))

    @torch.no_grad()
    def bare_batched():
        for i in range(0, len(feats), args.batch):
            chunk = feats[i : i + args.batch]
            tr.model(
                torch.nn.utils.rnn.pad_sequence(chunk, batch_first=True),
                torch.tensor([f.shape[0] for f in chunk], device=device),
            )

    results = {}
    for name, fn in [
        ("full_batch1", full_single),
        ("bare_batch1", bare_single),
        ("full_batched", full_batched),
        ("bare_batched", bare_batched),
    ]:
        timed(fn, device)  # warm-up
        results[name] = statistics.median(timed(fn, device) for _ in range(args.repeats)) / audio_seconds
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"\ninference RTF: {args.model_dir}, {len(paths)} files, {audio_seconds:.0f} s of audio, {device_name}, "
        f"{args.threads} threads"
    )
    print(f"{'':10} {'Transcriber':>12} {'bare model':>11} {'overhead':>9}")
    for mode in ("batch1", "batched"):
        full, bare = results[f"full_{mode}"], results[f"bare_{mode}"]
        print(f"{mode:10} {full:12.4f} {bare:11.4f} {100 * (full - bare) / bare:8.1f}%")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "device": device_name,
                    "threads": args.threads,
                    "files": len(paths),
                    "audio_seconds": audio_seconds,
                    **results,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
