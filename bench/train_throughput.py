"""Training throughput: a real ``phonrec-train`` epoch against a bare PyTorch loop.

Both sides use the same model size, the same data and the same batches:

- ``phonrec``: :func:`phonrec.train.run` (one process) (data loading from the feature cache, bucketing,
  CMVN, the ``--augment`` group: SpecAugment by default, cached augmented copies with ``default`` or
  ``strong``, exact BiLSTM, divergence, clipping, scheduler, logging) — frames/s of its
  last epoch, with its data-wait and padding fractions;
- ``bare padded``: pre-loaded padded tensors on the device, a plain ``nn.LSTM`` (bidirectional,
  padded, *inexact*: padding leaks into the backward direction) + linear + CTC/NLL + Adam;
- ``bare phonrec model``: the same bare loop with phonrec's exact BiLSTM, to separate the model's
  cost of exactness from the loop's overhead.

Prints a table with ratios to the bare padded loop and writes JSON (``--json``). Without
``--data`` a data directory of seeded noise (3-4.2 s utterances, made-up phones/alignments) is
generated, so the benchmark runs anywhere (a GPU machine included).

    python bench/train_throughput.py --utts 300 --epochs 2 [--device cuda --precision bf16] [--augment strong]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from phonrec.data.datadir import DataDir  # noqa: E402
from phonrec.features import num_frames  # noqa: E402

PHONES = "aa ae ah ao aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t th uh uw v w y z zh".split()


def make_noise_data(root: Path, utts: int, seed: int = 0) -> Path:
    """Seeded noise utterances of 3-4.2 s with random phone strings and matching frame alignments."""
    rng = np.random.default_rng(seed)
    wavs, text, utt2spk, phones, alignments = {}, {}, {}, {}, {}
    (root / "wav").mkdir(parents=True, exist_ok=True)
    for i in range(utts):
        utt = f"n{i:05d}"
        n = int(rng.uniform(3.0, 4.2) * 16000)
        path = root / "wav" / f"{utt}.wav"
        sf.write(path, (0.1 * rng.standard_normal(n)).astype(np.float32), 16000)
        frames = num_frames(n)
        seq = list(rng.choice(PHONES, size=frames // 8))
        wavs[utt], text[utt], utt2spk[utt], phones[utt] = path, "NOISE", f"s{i % 10}", seq
        alignments[utt] = [p for p in seq for _ in range(8)] + ["sil"] * (frames - 8 * len(seq))
    DataDir(wavs=wavs, text=text, utt2spk=utt2spk, phones=phones, alignments=alignments).save(root / "data")
    return root / "data"


def run_phonrec(data: Path, exp: Path, args) -> dict:
    from hydra import compose, initialize_config_dir

    from phonrec.config import CONF_DIR
    from phonrec.train import run

    overrides = [
        f"data.train={data}",
        f"data.dev={data}",
        f"exp_dir={exp}",
        f"divergence={args.divergence}",
        f"model.hidden={args.hidden}",
        f"model.layers={args.layers}",
        f"trainer.epochs={args.epochs}",
        f"trainer.max_frames={args.max_frames}",
        f"trainer.device={args.device}",
        f"trainer.precision={args.precision}",
        f"trainer.num_threads={args.threads}",
        "trainer.progress=false",
        f"augment={args.augment}",
    ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    run(0, 1, cfg)
    history = json.loads((exp / "metrics.json").read_text())["history"]
    return history[-1]


def bare_batches(
    data: Path, exp: Path, args
) -> tuple[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]], int]:
    """The first epoch's batches of the real run, pre-loaded and padded: (feats, lengths, targets, target_lengths)."""
    from phonrec.data.dataset import BucketBatchSampler, FeatureCache
    from phonrec.features import FeatureConfig

    d = DataDir.load(data)
    cache = FeatureCache.build(d, FeatureConfig(), exp / "cache" / "train-logmel", progress=False)
    utts = [u for u in d.utts if u in cache.index]
    lengths = [cache.index[u][1] for u in utts]
    sampler = BucketBatchSampler(lengths, args.max_frames, seed=1234)
    sampler.set_epoch(1)
    index = {p: i + 1 for i, p in enumerate(PHONES)}
    batches = []
    for b in sampler:
        feats = [cache[utts[i]] for i in b]
        tg = [torch.tensor([index[p] for p in d.phones[utts[i]]]) for i in b]
        batches.append(
            (
                torch.nn.utils.rnn.pad_sequence(feats, batch_first=True),
                torch.tensor([f.shape[0] for f in feats]),
                torch.nn.utils.rnn.pad_sequence(tg, batch_first=True),
                torch.tensor([len(t) for t in tg]),
            )
        )
    return batches, len(PHONES) + 1


class PlainBiLSTM(torch.nn.Module):
    """The baseline: nn.LSTM on padded input (padding leaks into the backward direction)."""

    def __init__(self, input_dim: int, classes: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(input_dim, hidden, layers, batch_first=True, bidirectional=True)
        self.out = torch.nn.Linear(2 * hidden, classes)

    def forward(self, x, lengths):
        return self.out(self.lstm(x)[0]).log_softmax(-1), lengths


def bare_loop(model: torch.nn.Module, batches, device: torch.device, args, steps: int) -> list[float]:
    """frames/s of each step (forward + CTC + backward + Adam) over pre-loaded device tensors."""
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    on_device = [tuple(t.to(device) for t in b) for b in batches]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and args.precision == "bf16")
    rates = []
    for step in range(steps):
        feats, lengths, targets, tlen = on_device[step % len(on_device)]
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with autocast:
            lp, out_len = model(feats, lengths)
        loss = (
            torch.nn.functional.ctc_loss(lp.float().transpose(0, 1), targets, out_len, tlen, reduction="sum")
            / lengths.sum()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(float(lengths.sum()) / (time.perf_counter() - t0))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a data directory (default: generated noise)")
    parser.add_argument("--utts", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--max-frames", type=int, default=6000)
    parser.add_argument("--divergence", default="ctc", choices=["ctc"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--augment",
        default="specaugment",
        help="the phonrec run's augment group (none | specaugment | default | strong); the cached copies are "
        "built before the first epoch and not timed",
    )
    parser.add_argument("--bare-steps", type=int, default=40)
    parser.add_argument("--workdir", type=Path, help="where the generated data and the run go (default: a temp dir)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="phonrec-bench-"))
    data = args.data or make_noise_data(work / "noise", args.utts)

    real = run_phonrec(data, work / "exp", args)
    batches, classes = bare_batches(data, work / "exp", args)
    from phonrec.models.bilstm import BiLSTM

    warm = max(3, args.bare_steps // 5)
    plain = bare_loop(
        PlainBiLSTM(80, classes, args.hidden, args.layers), batches, device, args, args.bare_steps + warm
    )[warm:]
    exact = bare_loop(
        BiLSTM.from_config(80, classes, {"hidden": args.hidden, "layers": args.layers, "dropout": 0.2}),
        batches,
        device,
        args,
        args.bare_steps + warm,
    )[warm:]
    plain_fps, exact_fps = statistics.median(plain), statistics.median(exact)
    rows = [
        ("bare padded nn.LSTM (inexact)", plain_fps),
        ("bare loop, phonrec exact BiLSTM", exact_fps),
        ("phonrec-train epoch (everything)", real["frames_per_s"]),
    ]
    device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    )
    print(
        f"\ntraining throughput: {args.layers}x{args.hidden} BiLSTM + CTC, batches of <= {args.max_frames} frames, "
        f"{args.device} ({device_name}), {args.precision}, {args.threads} threads, augment={args.augment}"
    )
    print(f"{'':36} {'frames/s':>10} {'vs bare':>8}")
    for name, fps in rows:
        print(f"{name:36} {fps:10.0f} {fps / plain_fps:8.2f}")
    print(
        f"phonrec epoch: padding {100 * real['padding_fraction']:.1f}% of frames, waiting on data "
        f"{100 * real['data_wait_fraction']:.1f}% of the time; peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    result = {
        "device": args.device,
        "device_name": device_name,
        "precision": args.precision,
        "threads": args.threads,
        "model": f"{args.layers}x{args.hidden}",
        "max_frames": args.max_frames,
        "augment": args.augment,
        "bare_padded_fps": plain_fps,
        "bare_exact_fps": exact_fps,
        "phonrec_fps": real["frames_per_s"],
        "phonrec_vs_bare": real["frames_per_s"] / plain_fps,
        "padding_fraction": real["padding_fraction"],
        "data_wait_fraction": real["data_wait_fraction"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
