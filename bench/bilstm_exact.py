"""Training speed of the BiLSTM under the three ways of handling padding.

    .venv/bin/python bench/bilstm_exact.py [--steps 10] [--warmup 3] [--threads 2] [--device cpu] [--json out.json]

One training step = forward + masked frame cross-entropy + backward + Adam step, on a batch of
``--batch`` random sequences of ``--min-len``..``--max-len`` frames (80-dim features, 3x256
BiLSTM by default).  Modes:

- ``none``    plain padded ``nn.LSTM`` (inexact: padding leaks into the backward direction)
- ``packed``  ``pack_padded_sequence`` (exact)
- ``reverse`` per-sequence reversal within lengths (exact)

The modes are interleaved step by step (the same batch for every mode in a step) so that load
from other processes on shared cores hits them alike.  Reports the median step time and the
training throughput in valid frames per second, with ratios against ``none`` and ``packed``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from phonrec.models.bilstm import BiLSTM, BiLSTMConfig

MODES = ("none", "packed", "reverse")


def make_batch(
    g: torch.Generator, batch: int, lo: int, hi: int, dim: int, classes: int, device: str, lengths_on_device: bool
):
    lengths = torch.randint(lo, hi + 1, (batch,), generator=g)
    T = int(lengths.max())
    feats = torch.randn(batch, T, dim, generator=g)
    labels = torch.randint(0, classes, (batch, T), generator=g)
    labels[torch.arange(T).unsqueeze(0) >= lengths.unsqueeze(1)] = -100
    return feats.to(device), lengths.to(device if lengths_on_device else "cpu"), labels.to(device)


def step(model: BiLSTM, opt: torch.optim.Optimizer, feats, lengths, labels, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    log_probs, _ = model(feats, lengths)
    loss = torch.nn.functional.nll_loss(log_probs.transpose(1, 2), labels, ignore_index=-100, reduction="sum")
    loss.backward()
    opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--min-len", type=int, default=300)
    ap.add_argument("--max-len", type=int, default=420)
    ap.add_argument("--dim", type=int, default=80)
    ap.add_argument("--classes", type=int, default=42)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--lengths-on-device", action="store_true", help="lengths on the GPU (default: CPU, as a loader gives them)"
    )
    ap.add_argument("--json", default=None, help="write the results here as JSON")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    modes = args.modes.split(",")
    models, opts = {}, {}
    for mode in modes:
        torch.manual_seed(0)
        m = BiLSTM(
            args.dim, args.classes, BiLSTMConfig(hidden=args.hidden, layers=args.layers, dropout=0.2, exact=mode)
        )
        m.to(args.device).train()
        models[mode], opts[mode] = m, torch.optim.Adam(m.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    times: dict[str, list[float]] = {m: [] for m in modes}
    frames: list[int] = []
    last: dict[str, float] = {}
    for i in range(args.warmup + args.steps):
        feats, lengths, labels = make_batch(
            g, args.batch, args.min_len, args.max_len, args.dim, args.classes, args.device, args.lengths_on_device
        )
        for mode in modes:
            dt = last[mode] = step(models[mode], opts[mode], feats, lengths, labels, args.device)
            if i >= args.warmup:
                times[mode].append(dt)
        if i >= args.warmup:
            frames.append(int(lengths.sum()))
        done = "warm-up" if i < args.warmup else "timed"
        line = ", ".join(f"{m} {last[m]:.2f}s" for m in modes)
        print(f"step {i + 1}/{args.warmup + args.steps} ({done}): {line}", file=sys.stderr, flush=True)

    fps_total = sum(frames)
    results = {}
    for mode in modes:
        med = statistics.median(times[mode])
        # throughput from the per-step rates' median (each step its own batch)
        rates = [f / t for f, t in zip(frames, times[mode])]
        results[mode] = {"median_step_s": med, "frames_per_s": statistics.median(rates), "steps": len(times[mode])}
    base = results.get("none")
    packed = results.get("packed")
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu, threads {args.threads}"
    print(
        f"BiLSTM {args.layers}x{args.hidden}, batch {args.batch} of {args.min_len}-{args.max_len} frames, "
        f"{args.dim}-dim, {where}, median of {args.steps} steps "
        f"({fps_total} valid frames)"
    )
    print(f"{'mode':<8} {'step s':>8} {'frames/s':>10} {'vs none':>8} {'vs packed':>10}")
    for mode in modes:
        r = results[mode]
        vs_none = r["frames_per_s"] / base["frames_per_s"] if base else float("nan")
        vs_packed = r["frames_per_s"] / packed["frames_per_s"] if packed else float("nan")
        r["ratio_vs_none"], r["ratio_vs_packed"] = vs_none, vs_packed
        print(f"{mode:<8} {r['median_step_s']:>8.3f} {r['frames_per_s']:>10.0f} {vs_none:>8.2f} {vs_packed:>10.2f}")
    out = {"config": vars(args), "device": where, "torch": torch.__version__, "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
