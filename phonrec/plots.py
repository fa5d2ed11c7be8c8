"""Pictures as PNG files: posteriorgram with spans, phone confusion matrix, learning curves.

Command ``phonrec-plot``::

    phonrec-plot posteriorgram MODEL_DIR AUDIO --out post.png [--data DATA_DIR --utt UTT]
    phonrec-plot confusion DECODE_DIR DATA_DIR --out confusion.png
    phonrec-plot curves EXP_DIR --out curves.png
    phonrec-plot recipe --exp exp/synth --data data/synth/test     # all of them, for a recipe
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _draw_spans(ax, spans: Sequence[tuple[str, float, float]], y: float, color: str, label: str) -> None:
    """Phone labels between vertical boundary ticks at height ``y`` (axes fraction)."""
    for phone, start, end in spans:
        ax.axvline(start, ymin=y - 0.04, ymax=y + 0.04, color=color, lw=0.8)
        ax.text(
            (start + end) / 2,
            y,
            phone,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="center",
            fontsize=7,
            color=color,
        )
    ax.text(-0.01, y, label, transform=ax.transAxes, ha="right", va="center", fontsize=8, color=color)


def plot_posteriorgram(
    log_probs: np.ndarray,
    symbols: Sequence[str],
    out: str | Path,
    *,
    features: np.ndarray | None = None,
    hyp_spans: Sequence[tuple[str, float, float]] = (),
    ref_spans: Sequence[tuple[str, float, float]] = (),
    hop_seconds: float = 0.01,
    title: str = "",
) -> Path:
    """Spectrogram (optional) above the per-frame phone posteriors, with decoded and reference spans.

    Args:
        log_probs: ``(T, K)`` per-frame log-probabilities.
        features: ``(T', F)`` log-mel frames shown above (same hop).
        hyp_spans / ref_spans: ``(phone, start_s, end_s)``.
    """
    out = Path(out)
    T, K = log_probs.shape
    rows = 2 if features is not None else 1
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(max(8, T * 0.02), 2.5 + 0.12 * K + 2 * (rows - 1)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [1, 2] if rows == 2 else [1]},
    )
    extent_t = T * hop_seconds
    if features is not None:
        ax = axes[0, 0]
        ax.imshow(
            features.T,
            origin="lower",
            aspect="auto",
            extent=(0, features.shape[0] * hop_seconds, 0, features.shape[1]),
            cmap="magma",
        )
        ax.set_ylabel("mel bin")
        if title:
            ax.set_title(title)
    ax = axes[-1, 0]
    ax.imshow(
        np.exp(log_probs).T,
        origin="lower",
        aspect="auto",
        extent=(0, extent_t, -0.5, K - 0.5),
        cmap="Greys",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_yticks(range(K))
    ax.set_yticklabels(symbols, fontsize=6)
    ax.set_xlabel("time (s)")
    if title and features is None:
        ax.set_title(title)
    if hyp_spans:
        _draw_spans(ax, hyp_spans, 1.04, "tab:blue", "decoded")
    if ref_spans:
        _draw_spans(ax, ref_spans, 1.10, "tab:red", "reference")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_confusion(
    matrix: np.ndarray, symbols: Sequence[str], out: str | Path, title: str = "phone confusions"
) -> Path:
    """Row-normalised confusion matrix (reference rows, hypothesis columns) as an image."""
    out = Path(out)
    m = matrix.astype(float)
    m = m / np.maximum(m.sum(1, keepdims=True), 1)
    n = len(symbols)
    fig, ax = plt.subplots(figsize=(3 + 0.22 * n, 2.5 + 0.22 * n))
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_xticklabels(symbols, rotation=90, fontsize=6)
    ax.set_yticks(range(n))
    ax.set_yticklabels(symbols, fontsize=6)
    ax.set_xlabel("hypothesis")
    ax.set_ylabel("reference")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_learning_curves(exp_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Train/dev divergence and the dev metric per epoch, from each run's ``metrics.json``."""
    out = Path(out)
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    for exp in map(Path, exp_dirs):
        history = json.loads((exp / "metrics.json").read_text())["history"]
        epochs = [h["epoch"] for h in history]
        ax_loss.plot(epochs, [h["train_loss"] for h in history], "--", label=f"{exp.name} train")
        ax_loss.plot(epochs, [h["dev_loss"] for h in history], "-", label=f"{exp.name} dev")
        for key in ("dev_per", "dev_frame_acc", "dev_acc"):
            if key in history[0]:
                ax_metric.plot(epochs, [100 * h[key] for h in history], "o-", label=f"{exp.name} {key}")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("divergence per frame")
    ax_loss.legend(fontsize=8)
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel("%")
    ax_metric.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# --- command line ----------------------------------------------------------------------------


def _posteriorgram_for(
    model_dir: Path, audio: Path, out: Path, data_dir: Path | None = None, utt: str | None = None
) -> Path:
    from phonrec.audio import load_audio
    from phonrec.features import compute_features, frames_to_seconds
    from phonrec.transcribe import Transcriber

    tr = Transcriber.from_pretrained(model_dir)
    wave = load_audio(audio, tr.feature_config.sample_rate)
    result = tr.transcribe(wave, sample_rate=tr.feature_config.sample_rate, posteriors=True)
    ref: list[tuple[str, float, float]] = []
    if data_dir is not None and utt is not None:
        from phonrec.data.datadir import DataDir

        data = DataDir.load(data_dir)
        if data.alignments and utt in data.alignments:
            labels = data.alignments[utt]
            start = 0
            for t in range(1, len(labels) + 1):
                if t == len(labels) or labels[t] != labels[start]:
                    ref.append((labels[start], frames_to_seconds(start), frames_to_seconds(t)))
                    start = t
    feats = compute_features(wave, tr.feature_config).numpy()
    return plot_posteriorgram(
        result.posteriors,
        tr.phone_set.symbols,
        out,
        features=feats,
        hyp_spans=result.spans,
        ref_spans=ref,
        hop_seconds=tr.hop_ms / 1000,
        title=str(audio.name),
    )


def _confusion_for(decode_dir: Path, data_dir: Path, out: Path) -> Path:
    from phonrec.data.datadir import DataDir
    from phonrec.metrics import align_sequences
    from phonrec.phones import fold_for_scoring

    data = DataDir.load(data_dir)
    pairs = []
    for line in (decode_dir / "hyp.txt").read_text().splitlines():
        utt, *hyp = line.split()
        if data.phones and utt in data.phones:
            pairs += align_sequences(fold_for_scoring(data.phones[utt]), fold_for_scoring(hyp))
    symbols = sorted({p for pair in pairs for p in pair if p is not None}) + ["<del/ins>"]
    index = {s: i for i, s in enumerate(symbols)}
    matrix = np.zeros((len(symbols), len(symbols)), dtype=np.int64)
    for ref, hyp in pairs:
        matrix[index[ref if ref is not None else "<del/ins>"], index[hyp if hyp is not None else "<del/ins>"]] += 1
    return plot_confusion(matrix, symbols, out, title=f"confusions: {decode_dir.name}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="phonrec-plot", description="Write PNG pictures of models, decodes and runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("posteriorgram")
    p.add_argument("model_dir", type=Path)
    p.add_argument("audio", type=Path)
    p.add_argument("--data", type=Path, help="data directory holding the reference alignment")
    p.add_argument("--utt", help="utterance id of AUDIO in --data")
    p.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("confusion")
    c.add_argument("decode_dir", type=Path)
    c.add_argument("data_dir", type=Path)
    c.add_argument("--out", type=Path, required=True)
    cu = sub.add_parser("curves")
    cu.add_argument("exp_dirs", type=Path, nargs="+")
    cu.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("recipe")
    r.add_argument("--exp", type=Path, required=True)
    r.add_argument("--data", type=Path, required=True, help="the data directory decoded as 'test'")
    r.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    if args.command == "posteriorgram":
        print(_posteriorgram_for(args.model_dir, args.audio, args.out, args.data, args.utt))
    elif args.command == "confusion":
        print(_confusion_for(args.decode_dir, args.data_dir, args.out))
    elif args.command == "curves":
        print(plot_learning_curves(args.exp_dirs, args.out))
    else:
        from phonrec.data.datadir import DataDir

        plots = args.exp / "plots"
        runs = [d for d in sorted(args.exp.iterdir()) if (d / "metrics.json").is_file()]
        print(plot_learning_curves(runs, plots / "learning_curves.png"))
        data = DataDir.load(args.data)
        utt = data.utts[0]
        for run in runs:
            print(
                _posteriorgram_for(
                    run / "model", Path(data.wavs[utt]), plots / f"posteriorgram_{run.name}.png", args.data, utt
                )
            )
            decode = run / f"decode-greedy-{args.split}"
            if (decode / "hyp.txt").is_file():
                print(_confusion_for(decode, args.data, plots / f"confusion_{run.name}.png"))


if __name__ == "__main__":
    main()
