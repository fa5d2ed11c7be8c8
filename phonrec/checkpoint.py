"""Training checkpoints: atomic writes, loading without executing code, resume state, averaging.

A run's ``checkpoints/`` holds ``last.pt`` (what ``trainer.resume=true`` continues from),
``best.pt`` and the most recent ``epoch-NNN.pt``; each is one ``torch.save`` of a plain dict
(tensors and containers only) written to a temporary file and renamed, so a kill never leaves a
torn file, and loaded with ``weights_only=True``, so a planted pickle is refused, not run.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("phonrec.train")


class CheckpointError(pickle.UnpicklingError):
    """A checkpoint that is not plain tensors and containers (it would need code to load), or is torn."""


@dataclass
class ResumeState:
    """Where a run stands between epochs (restored by :func:`restore_training_state`).

    Attributes:
        epoch: the first epoch still to train.
        best: the best dev value of the early-stopping metric so far.
        bad_epochs: epochs since it last improved.
        history: one metrics dict per finished epoch.
    """

    epoch: int = 1
    best: float = float("inf")
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, fsync, then rename: a kill never leaves a torn file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict:
    """Load a training checkpoint without executing code (``weights_only=True``).

    Raises:
        CheckpointError: naming the file, for anything but plain weights (a planted pickle, say).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise CheckpointError(
            f"{path}: refused to load: not a plain weights checkpoint, or damaged (phonrec never unpickles code). {e}"
        ) from None


def average_state_dicts(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the model weights in several checkpoints."""
    avg: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for p in paths:
        for k, v in load_checkpoint(p)["model"].items():
            avg[k] = avg.get(k, 0) + v.double() / len(paths)
            dtypes[k] = v.dtype
    return {k: v.to(dtypes[k]) for k, v in avg.items()}


def epoch_checkpoints(ckpt_dir: Path) -> list[Path]:
    """The ``epoch-NNN.pt`` files of ``ckpt_dir``, oldest first."""
    return sorted(ckpt_dir.glob("epoch-*.pt"))


def remove_stale_checkpoints(ckpt_dir: Path) -> None:
    """Delete an earlier run's checkpoints: a fresh run must not average them into its own."""
    stale = sorted(ckpt_dir.glob("*.pt"))
    if stale:
        log.info("starting afresh: removing %d checkpoints of an earlier run in %s", len(stale), ckpt_dir)
        for old in stale:
            old.unlink()


def save_training_state(
    ckpt_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: ResumeState,
    *,
    finished_epoch: int,
    improved: bool,
    keep: int,
) -> None:
    """Write ``epoch-NNN.pt``, ``best.pt`` (when ``improved``) and ``last.pt`` atomically, then keep
    only the ``keep`` most recent epoch files."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "epoch": finished_epoch,
        "best": progress.best,
        "bad_epochs": progress.bad_epochs,
        "history": progress.history,
    }
    atomic_torch_save(state, ckpt_dir / f"epoch-{finished_epoch:03d}.pt")
    if improved:
        atomic_torch_save(state, ckpt_dir / "best.pt")
    atomic_torch_save(state, ckpt_dir / "last.pt")
    for old in epoch_checkpoints(ckpt_dir)[:-keep]:
        old.unlink()


def restore_training_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> ResumeState:
    """Load ``path`` (a ``last.pt``) into model, optimiser, scheduler and the torch RNG; returns
    where the run continues (the epoch after the saved one)."""
    state = load_checkpoint(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return ResumeState(state["epoch"] + 1, state["best"], state["bad_epochs"], state["history"])
