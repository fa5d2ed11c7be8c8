"""Training: ``phonrec-train`` (a Hydra app over ``conf/``), checkpoints, resume, DDP.

Usage::

    phonrec-train data.train=data/synth/train data.dev=data/synth/dev divergence=ctc model.hidden=512
    torchrun --nproc_per_node=2 -m phonrec.train trainer.max_frames=16000 ...

A run directory (``exp_dir``) receives ``config.yaml`` (resolved), ``train.log`` (plain log),
``tensorboard/``, ``checkpoints/`` (``last.pt``, ``best.pt``, the N most recent ``epoch-NNN.pt``,
each written atomically) and, at the end, the model directory ``model/`` that
:class:`phonrec.Transcriber` loads: ``config.yaml``, ``model.safetensors``, ``phones.txt``,
``cmvn.json``.

``trainer.resume=true`` continues a killed run from ``checkpoints/last.pt`` (model, optimiser,
scheduler, RNG state, epoch); batching and augmentation are seeded by ``(seed, epoch)`` so the
resumed run repeats what an uninterrupted run would have done from that epoch on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save_file
from torch.utils.data import DataLoader
from tqdm import tqdm

from phonrec.config import CONF_DIR, ConfigError, dataclass_from
from phonrec.data.datadir import DataDir
from phonrec.data.dataset import BucketBatchSampler, FeatureCache, UtteranceDataset, collate, sequence_label
from phonrec.decode.greedy import greedy_batch
from phonrec.divergences import (
    aligned_divergence,
    ctc_divergence,
    ctc_min_frames,
    frame_weights,
    weighted_frame_divergence,
)
from phonrec.features import CMVN, FeatureConfig, SpecAugmentConfig, spec_augment
from phonrec.metrics import ErrorCounts, edit_distance
from phonrec.models.bilstm import BiLSTM
from phonrec.phones import PhoneSet

log = logging.getLogger("phonrec.train")

TARGET_OF = {"frame": "label", "aligned": "aligned", "ctc": "ctc"}


@dataclass
class TrainerConfig:
    """Optimisation and bookkeeping settings (``conf/trainer/default.yaml``)."""

    epochs: int = 20
    max_frames: int = 8000  # frames per global batch (padded), split across ranks under DDP
    max_batch_size: int | None = None
    optimizer: str = "adam"  # adam | adamw
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 200
    schedule: str = "cosine"  # cosine | constant
    min_lr_ratio: float = 0.05
    grad_clip: float = 5.0
    patience: int = 0  # early stopping: epochs without dev improvement (0 = off)
    keep_checkpoints: int = 3
    average_last: int = 1  # average the last N epoch checkpoints into the final model
    resume: bool = False
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 (bf16 autocast on CUDA only)
    num_threads: int = 0  # torch intra-op threads (0 = leave torch's default)
    num_workers: int = 0
    nonfinite: str = "error"  # error | skip: what a non-finite divergence does
    init_from: str | None = None  # a model directory whose weights start this run (e.g. aligned -> CTC)
    progress: bool = True

    def __post_init__(self) -> None:
        choices = {
            "optimizer": ("adam", "adamw"),
            "schedule": ("cosine", "constant"),
            "device": ("auto", "cpu", "cuda"),
            "precision": ("fp32", "bf16"),
            "nonfinite": ("error", "skip"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"trainer.{key} must be one of {allowed}, got {getattr(self, key)!r}")
        for key in ("epochs", "max_frames", "keep_checkpoints", "average_last"):
            if getattr(self, key) < 1:
                raise ConfigError(f"trainer.{key} must be >= 1, got {getattr(self, key)!r}")
        if self.lr <= 0:
            raise ConfigError(f"trainer.lr must be positive, got {self.lr}")


def feature_config(cfg: DictConfig) -> tuple[FeatureConfig, str, SpecAugmentConfig | None]:
    """Split the ``features`` group into the extractor config, the CMVN mode and SpecAugment."""
    values = OmegaConf.to_container(cfg.features, resolve=True)
    cmvn_mode = values.pop("cmvn", "global")
    specaug = values.pop("specaugment", None)
    if cmvn_mode not in ("global", "utterance", "none"):
        raise ConfigError(f"features.cmvn must be global, utterance or none, got {cmvn_mode!r}")
    spec = dataclass_from(SpecAugmentConfig, specaug, "features.specaugment") if specaug else None
    return dataclass_from(FeatureConfig, values, "features"), cmvn_mode, spec


# --- distributed --------------------------------------------------------------------------------


def setup_distributed(device: torch.device) -> tuple[int, int]:
    """Initialise the process group when launched by torchrun; returns ``(rank, world_size)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few numbers over ranks (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def check_ranks_agree(model: torch.nn.Module, world: int) -> float:
    """Gather every rank's parameters and log the largest difference to rank 0's (it must be 0).

    Raises:
        RuntimeError: when the ranks' parameters differ (a DDP bug or a non-deterministic rank).
    """
    flat = torch.cat([p.detach().flatten().double() for p in model.parameters()])  # on the model's device
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    diff = max(float((g - gathered[0]).abs().max()) for g in gathered)
    log.info("DDP: %d ranks, max parameter difference to rank 0: %.3g", world, diff)
    if diff != 0.0:
        raise RuntimeError(f"DDP ranks disagree after training: max parameter difference {diff}")
    return diff


# --- building blocks ----------------------------------------------------------------------------


def build_phone_set(cfg: DictConfig, train: DataDir, divergence: str) -> PhoneSet:
    """The output inventory: ``data.phones`` (a built-in name such as ``cmu39+sil``, or a phones.txt)
    if given; else the 39 CMU phones + ``sil`` when the training data uses only those, or the
    sorted symbols of the training data (after ``data.phone_map``).

    CTC adds ``<blank>`` at id 0; sequence classification (``frame``) uses the transcripts as
    class labels (:func:`phonrec.data.dataset.sequence_label`).
    """
    if cfg.data.get("phones") in PhoneSet.STANDARD_NAMES:
        ps = PhoneSet.standard(cfg.data.phones)
    elif cfg.data.get("phones"):
        ps = PhoneSet.from_file(cfg.data.phones)
    elif divergence == "frame":
        ps = PhoneSet.from_symbols(sorted({sequence_label(t) for t in train.text.values() if t.strip()}))
    else:
        phone_map = dict(cfg.data.get("phone_map") or {})
        symbols: set[str] = {"sil"}
        for table in (train.phones, train.alignments):
            if table:
                symbols.update(phone_map.get(p, p) for seq in table.values() for p in seq)
        symbols.discard("")  # phones the map deletes
        cmu = PhoneSet.standard("cmu39+sil")
        # CMU-phone corpora get the whole CMU inventory, so that a lexicon or a test sentence
        # with a phone the training data happens to lack still decodes
        ps = cmu if symbols <= set(cmu.symbols) else PhoneSet.from_symbols(sorted(symbols))
    return ps.with_blank() if divergence == "ctc" else ps.without_blank()


def normalise(feats: torch.Tensor, lengths: torch.Tensor, cmvn: CMVN | None, mode: str) -> torch.Tensor:
    """Apply CMVN to a padded batch ``(B, T, F)``; per-utterance statistics use valid frames only."""
    if mode == "global" and cmvn is not None:
        return cmvn.apply(feats)
    if mode == "utterance":
        mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        n = lengths.clamp(min=1).to(feats.dtype)[:, None, None]
        mean = (feats * mask).sum(1, keepdim=True) / n
        var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / n
        return (feats - mean) / var.clamp(min=1e-10).sqrt()
    return feats


def subsample_labels(frame_labels: torch.Tensor, factor: int, out_len: int) -> torch.Tensor:
    """Frame labels ``(B, T)`` for a model that keeps every ``factor``-th frame -> ``(B, out_len)``."""
    if factor == 1:
        return frame_labels[:, :out_len]
    picked = frame_labels[:, factor // 2 :: factor][:, :out_len]
    if picked.shape[1] < out_len:
        picked = torch.nn.functional.pad(picked, (0, out_len - picked.shape[1]), value=-100)
    return picked


def compute_loss(
    model: torch.nn.Module, batch: dict, div: dict, device: torch.device, subsample: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward a batch and return ``(divergence summed over the batch, log_probs, out_lengths)``.

    Args:
        batch: from :func:`phonrec.data.dataset.collate`, already normalised; ``feats (B, T, F)``.
        div: the ``divergence`` config group as a dict (``name`` plus its options).
        subsample: the model's frame subsampling factor (frame labels are subsampled to match).
    """
    feats = batch["feats"].to(device)
    lengths = batch["lengths"].to(device)
    log_probs, out_lengths = model(feats, lengths)  # (B, T', K), (B,)
    name = div["name"]
    if name == "ctc":
        need = ctc_min_frames(batch["targets"], batch["target_lengths"])
        short = [(u, int(n), int(o)) for u, n, o in zip(batch["utts"], need, out_lengths.cpu()) if n > o]
        if short:
            log.warning(
                "CTC: %d utterances have fewer frames than their phones need, and get zero loss: %s",
                len(short),
                ", ".join(f"{u} ({o} frames < {n})" for u, n, o in short),
            )
        loss = ctc_divergence(
            log_probs.float(),
            out_lengths,
            batch["targets"].to(device),
            batch["target_lengths"].to(device),
            blank=0,
            reduction="sum",
            zero_infinity=div.get("zero_infinity", True),
        )
    elif name == "aligned":
        labels = subsample_labels(batch["frame_labels"].to(device), subsample, log_probs.shape[1])
        loss = aligned_divergence(
            log_probs.float(),
            out_lengths,
            labels,
            mode=div.get("mode", "dense"),
            label_smoothing=div.get("label_smoothing", 0.0),
            reduction="sum",
        )
    elif name == "frame":
        loss = weighted_frame_divergence(
            log_probs.float(),
            out_lengths,
            batch["labels"].to(device),
            weights=div.get("weights", "uniform"),
            reduction="sum",
        )
    else:
        raise ConfigError(f"divergence.name must be frame, aligned or ctc, got {name!r}")
    return loss, log_probs, out_lengths


def loss_normaliser(div_name: str, batch: dict, out_frames: int) -> int:
    """What a batch's summed divergence is divided by: frames (aligned, CTC) or sequences (frame)."""
    return len(batch["utts"]) if div_name == "frame" else out_frames


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader: DataLoader,
    div: dict,
    phone_set: PhoneSet,
    cmvn: CMVN | None,
    cmvn_mode: str,
    device: torch.device,
    subsample: int = 1,
) -> dict[str, float]:
    """Dev divergence (per frame, or per sequence for ``frame``) plus the divergence's own metric.

    ``aligned``: frame accuracy; ``ctc``: greedy PER (silence removed, no folding);
    ``frame``: sequence accuracy of the arg-max of the frame-averaged posteriors.
    """
    model.eval()
    total_loss = total_norm = 0.0
    correct = count = 0
    errors = ErrorCounts(0, 0, 0, 0)
    for batch in loader:
        batch["feats"] = normalise(batch["feats"], batch["lengths"], cmvn, cmvn_mode)
        loss, log_probs, out_lengths = compute_loss(model, batch, div, device, subsample)
        total_loss += float(loss)
        total_norm += loss_normaliser(div["name"], batch, int(out_lengths.sum()))
        lp, ol = log_probs.float().cpu(), out_lengths.cpu()
        mask = torch.arange(lp.shape[1])[None, :] < ol[:, None]
        if div["name"] == "aligned":
            labels = subsample_labels(batch["frame_labels"], subsample, lp.shape[1])
            valid = mask & (labels != -100)
            correct += int(((lp.argmax(-1) == labels) & valid).sum())
            count += int(valid.sum())
        elif div["name"] == "frame":
            # decide with the same frame weights the divergence trains (e.g. only the last frame)
            w = frame_weights(div.get("weights", "uniform"), ol, lp.shape[1], lp.device, lp.dtype)
            scores = (lp * w.unsqueeze(-1)).sum(1)  # (B, K)
            correct += int((scores.argmax(-1) == batch["labels"]).sum())
            count += len(ol)
        else:
            sil = phone_set.silence_id
            for spans, ref, n in zip(greedy_batch(lp, ol, blank=0), batch["targets"], batch["target_lengths"]):
                hyp = [s.phone for s in spans if s.phone != sil]
                errors = errors + edit_distance(ref[: int(n)].tolist(), hyp)
    model.train()
    out = {"dev_loss": total_loss / max(total_norm, 1)}
    if div["name"] == "ctc":
        out["dev_per"] = errors.rate
    elif div["name"] == "aligned":
        out["dev_frame_acc"] = correct / max(count, 1)
    else:
        out["dev_acc"] = correct / max(count, 1)
    return out


def lr_factor(step: int, tc: TrainerConfig, total_steps: int) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_lr_ratio`` (or constant)."""
    if tc.warmup_steps and step < tc.warmup_steps:
        return (step + 1) / tc.warmup_steps
    if tc.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - tc.warmup_steps) / max(1, total_steps - tc.warmup_steps))
    return tc.min_lr_ratio + (1 - tc.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


# --- checkpoints --------------------------------------------------------------------------------


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, fsync, then rename: a kill never leaves a torn file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class CheckpointError(pickle.UnpicklingError):
    """A checkpoint that is not plain tensors and containers (it would need code to load), or is torn."""


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


def export_model_dir(
    out: Path, state: dict[str, torch.Tensor], cfg: DictConfig, phone_set: PhoneSet, cmvn: CMVN | None
) -> None:
    """Write the model directory read by :class:`phonrec.Transcriber`."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "model.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    tmp.replace(out / "model.safetensors")
    phone_set.to_file(out / "phones.txt")
    if cmvn is not None:
        cmvn.save(out / "cmvn.json")
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))


def init_from_model_dir(model: torch.nn.Module, phone_set: PhoneSet, model_dir: str | Path) -> list[str]:
    """Start ``model`` from another model directory's weights (no code is executed: safetensors).

    Every tensor of equal name and shape is copied; the output layer is copied row by row for the
    symbols both phone sets share, so a frame-level (aligned) model can start a CTC model whose
    phone set adds ``<blank>`` (the blank row keeps its fresh initialisation).

    Returns:
        the names of the parameters left at their fresh initialisation.
    """
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    source = load_file(str(model_dir / "model.safetensors"))
    source_phones = PhoneSet.from_file(model_dir / "phones.txt")
    state = model.state_dict()
    fresh = []
    for name, target in state.items():
        value = source.get(name)
        if value is not None and value.shape == target.shape and not name.startswith("output."):
            target.copy_(value)
        elif name.startswith("output.") and value is not None and value.shape[1:] == target.shape[1:]:
            for i, symbol in enumerate(phone_set.symbols):
                if symbol in source_phones:
                    target[i] = value[source_phones.index(symbol)]
        else:
            fresh.append(name)
    model.load_state_dict(state)
    return fresh


# --- the run ------------------------------------------------------------------------------------


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but no CUDA device is available")
    return torch.device(name)


def load_split(
    cfg: DictConfig, split: str, fcfg: FeatureConfig, exp_dir: Path, progress: bool
) -> tuple[DataDir, FeatureCache]:
    path = cfg.data.get(split)
    if not path:
        raise ConfigError(f"data.{split} must name a data directory")
    data = DataDir.load(path)
    cache_root = Path(cfg.data.get("cache_dir") or (exp_dir / "cache"))
    return data, FeatureCache.build(data, fcfg, cache_root / f"{split}-{fcfg.kind}", progress=progress)


def run(cfg: DictConfig) -> dict[str, float]:
    """Train with the composed config; returns the final dev metrics (rank 0) and writes ``exp_dir``."""
    tc: TrainerConfig = dataclass_from(TrainerConfig, OmegaConf.to_container(cfg.trainer, resolve=True), "trainer")
    fcfg, cmvn_mode, spec_cfg = feature_config(cfg)
    div = OmegaConf.to_container(cfg.divergence, resolve=True)
    if div.get("name") not in TARGET_OF:
        raise ConfigError(f"divergence.name must be one of {sorted(TARGET_OF)}, got {div.get('name')!r}")
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    device = pick_device(tc.device)
    rank, world = setup_distributed(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    is_main = rank == 0
    exp_dir = Path(cfg.exp_dir)
    ckpt_dir = exp_dir / "checkpoints"
    if is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        (exp_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(cfg.seed)

    progress = tc.progress and is_main
    train_data, train_cache = load_split(cfg, "train", fcfg, exp_dir, progress)
    dev_data, dev_cache = load_split(cfg, "dev", fcfg, exp_dir, progress)
    phone_set = build_phone_set(cfg, train_data, div["name"])
    target = TARGET_OF[div["name"]]
    phone_map = dict(cfg.data.get("phone_map") or {})
    train_set = UtteranceDataset(train_data, train_cache, phone_set, target, phone_map=phone_map)
    dev_set = UtteranceDataset(dev_data, dev_cache, phone_set, target, phone_map=phone_map)
    cmvn = CMVN.fit(train_cache.iter_features()) if cmvn_mode == "global" else None
    log.info(
        "train: %d utterances (%d skipped), dev: %d; %d output symbols; device %s, world %d",
        len(train_set),
        len(train_cache.bad) + len(train_set.skipped),
        len(dev_set),
        len(phone_set),
        device,
        world,
    )

    sampler = BucketBatchSampler(
        train_set.lengths(),
        tc.max_frames,
        shuffle=True,
        seed=cfg.seed,
        num_replicas=world,
        rank=rank,
        max_batch_size=tc.max_batch_size,
    )
    train_loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate, num_workers=tc.num_workers)
    dev_loader = DataLoader(
        dev_set,
        batch_sampler=BucketBatchSampler(dev_set.lengths(), tc.max_frames, shuffle=False),
        collate_fn=collate,
        num_workers=tc.num_workers,
    )

    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg.pop("name", None)
    model = BiLSTM.from_config(fcfg.dim, len(phone_set), model_cfg).to(device)
    subsample = model.cfg.frame_factor
    log.info("model: %s, %.2f M parameters", model_cfg, sum(p.numel() for p in model.parameters()) / 1e6)
    if tc.init_from and not (tc.resume and (ckpt_dir / "last.pt").is_file()):
        fresh = init_from_model_dir(model, phone_set, tc.init_from)
        log.info("initialised from %s (left fresh: %s)", tc.init_from, fresh or "nothing")
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt_cls = torch.optim.AdamW if tc.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    total_steps = tc.epochs * max(1, len(sampler))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, tc, total_steps))

    start_epoch, best, bad_epochs, history = 1, math.inf, 0, []
    last_path = ckpt_dir / "last.pt"
    if tc.resume and last_path.is_file():
        state = load_checkpoint(last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, best, bad_epochs, history = (
            state["epoch"] + 1,
            state["best"],
            state["bad_epochs"],
            state["history"],
        )
        log.info("resumed from %s at epoch %d", last_path, start_epoch)
    elif tc.resume:
        log.info("trainer.resume=true but %s does not exist: starting from scratch", last_path)
    if not (tc.resume and last_path.is_file()) and is_main:
        stale = sorted(ckpt_dir.glob("*.pt"))
        if stale:  # an earlier run's epochs must not be averaged into this one
            log.info("starting afresh: removing %d checkpoints of an earlier run in %s", len(stale), ckpt_dir)
            for old in stale:
                old.unlink()

    writer = None
    if is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(exp_dir / "tensorboard"))
    metric_key = {"ctc": "dev_per", "aligned": "dev_loss", "frame": "dev_loss"}[div["name"]]
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda" and tc.precision == "bf16"
        else contextlib.nullcontext()
    )
    spec_gen = torch.Generator()
    metrics: dict[str, float] = history[-1] if history else {}

    for epoch in range(start_epoch, tc.epochs + 1):
        if bad_epochs and tc.patience and bad_epochs >= tc.patience:
            log.info("early stopping: %d epochs without improvement of %s", bad_epochs, metric_key)
            break
        sampler.set_epoch(epoch)
        spec_gen.manual_seed(cfg.seed * 1000 + epoch * world + rank)
        ddp_model.train()
        t0, frames, loss_sum, norm_sum, skipped = time.perf_counter(), 0, 0.0, 0.0, 0
        padded_frames, data_wait = 0, 0.0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{tc.epochs}", unit="batch", disable=not progress, mininterval=1.0)
        t_ready = time.perf_counter()
        for batch in bar:
            data_wait += time.perf_counter() - t_ready
            padded_frames += batch["feats"].shape[0] * batch["feats"].shape[1]
            feats = normalise(batch["feats"], batch["lengths"], cmvn, cmvn_mode)
            if spec_cfg is not None:
                feats = spec_augment(feats, batch["lengths"], spec_cfg, generator=spec_gen)
            batch["feats"] = feats
            with autocast:
                loss, _, out_lengths = compute_loss(ddp_model, batch, div, device, subsample)
            local_norm = loss_normaliser(div["name"], batch, int(out_lengths.sum()))
            # One all-reduce: the global normaliser, and whether any rank saw a non-finite value
            # (all ranks must skip together or DDP would wait forever).
            global_norm, nonfinite = all_reduce_sum([float(local_norm), float(not torch.isfinite(loss))], device)
            # DDP averages gradients over ranks: scale so the result is the global per-frame mean.
            scaled = loss * world / global_norm
            if nonfinite:
                message = f"non-finite divergence at epoch {epoch} in batch {batch['utts'][:4]}..."
                if tc.nonfinite == "error":
                    raise FloatingPointError(message + " (set trainer.nonfinite=skip to skip such batches)")
                log.warning("%s: skipped", message)
                skipped += 1
                optimizer.zero_grad(set_to_none=True)
                continue
            optimizer.zero_grad(set_to_none=True)
            scaled.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            scheduler.step()
            frames += int(batch["lengths"].sum())
            loss_sum += float(loss.detach())
            norm_sum += local_norm
            bar.set_postfix(loss=f"{loss_sum / max(norm_sum, 1):.3f}", fps=f"{frames / (time.perf_counter() - t0):.0f}")
            t_ready = time.perf_counter()
        elapsed = time.perf_counter() - t0
        metrics = {
            "epoch": epoch,
            "train_loss": loss_sum / max(norm_sum, 1),
            "frames_per_s": frames * world / elapsed,
            "epoch_seconds": elapsed,
            "data_wait_fraction": data_wait / elapsed,
            "padding_fraction": 1 - frames / max(padded_frames, 1),
            "lr": scheduler.get_last_lr()[0],
            "skipped_batches": skipped,
            **evaluate(model, dev_loader, div, phone_set, cmvn, cmvn_mode, device, subsample),
        }
        improved = metrics[metric_key] < best
        best, bad_epochs = (metrics[metric_key], 0) if improved else (best, bad_epochs + 1)
        history.append(metrics)
        if is_main:
            log.info(
                "epoch %d: %s",
                epoch,
                " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()),
            )
            for k, v in metrics.items():
                if k != "epoch":
                    writer.add_scalar(k, v, epoch)
            writer.flush()
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch,
                "best": best,
                "bad_epochs": bad_epochs,
                "history": history,
            }
            atomic_torch_save(state, ckpt_dir / f"epoch-{epoch:03d}.pt")
            if improved:
                atomic_torch_save(state, ckpt_dir / "best.pt")
            atomic_torch_save(state, last_path)
            for old in sorted(ckpt_dir.glob("epoch-*.pt"))[: -max(tc.keep_checkpoints, tc.average_last)]:
                old.unlink()
        if world > 1:
            dist.barrier()

    if world > 1:
        check_ranks_agree(model, world)
    if is_main:
        epochs = sorted(ckpt_dir.glob("epoch-*.pt"))[-tc.average_last :]
        final = average_state_dicts(epochs) if len(epochs) > 1 else model.state_dict()
        if len(epochs) > 1:
            model.load_state_dict(final)
            metrics = {
                **metrics,
                **{
                    f"avg_{k}": v
                    for k, v in evaluate(model, dev_loader, div, phone_set, cmvn, cmvn_mode, device, subsample).items()
                },
            }
            log.info(
                "averaged %d checkpoints: %s",
                len(epochs),
                {k: round(v, 4) for k, v in metrics.items() if k.startswith("avg_")},
            )
        export_model_dir(exp_dir / "model", final, cfg, phone_set, cmvn)
        (exp_dir / "metrics.json").write_text(json.dumps({"final": metrics, "history": history}, indent=1))
        writer.close()
        log.info("model directory: %s", exp_dir / "model")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return metrics


def prepare_features(cfg: DictConfig) -> None:
    """Compute and cache the features of every split named in ``data`` (train, dev, test), and
    report the global CMVN statistics of the training split. Training reuses the caches."""
    fcfg, _, _ = feature_config(cfg)
    exp_dir = Path(cfg.exp_dir)
    for split in ("train", "dev", "test"):
        if cfg.data.get(split):
            data, cache = load_split(cfg, split, fcfg, exp_dir, progress=True)
            frames = sum(cache.lengths().values())
            log.info(
                "%s: %d utterances, %d frames (%.2f h), %d bad",
                split,
                len(cache.index),
                frames,
                frames * fcfg.hop_ms / 3.6e6,
                len(cache.bad),
            )
            if split == "train":
                cmvn = CMVN.fit(cache.iter_features())
                exp_dir.mkdir(parents=True, exist_ok=True)
                cmvn.save(exp_dir / "cmvn.json")


def features_main() -> None:
    """Console entry point ``phonrec-features`` (same config and overrides as ``phonrec-train``)."""
    import hydra

    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(prepare_features)()


def main() -> None:
    """Console entry point ``phonrec-train`` (Hydra parses the command line)."""
    import hydra

    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(run)()


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "features":  # python -m phonrec.train features [overrides]
        sys.argv.pop(1)
        features_main()
    else:
        main()
