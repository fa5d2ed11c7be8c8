"""Pictures as PNG files: posteriorgram with spans, phone confusion matrix, learning curves.

The drawing functions only: they take arrays and write a file. The ``phonrec-plot`` command
(``python -m phonrec.cli.plot``) reads model, decode and data directories and calls them.
"""

from __future__ import annotations

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
