"""Training in icefall's shape: :func:`compute_loss`, :func:`train_one_epoch`, :func:`evaluate` and
:func:`run` ``(rank, world_size, cfg)``; the command over it is :mod:`phonrec.cli.train`.

Usage::

    phonrec-train data.train=data/synth/train data.dev=data/synth/dev divergence=ctc exp_dir=exp/synth/ctc_h512
    torchrun --nproc_per_node=2 -m phonrec.cli.train trainer.max_frames=16000 ...

A run directory (``exp_dir``) receives ``config.yaml`` (resolved), ``train.log`` (plain log),
``tensorboard/``, ``checkpoints/`` (:mod:`phonrec.checkpoint`: ``last.pt``, ``best.pt``, the N most
recent ``epoch-NNN.pt``, each written atomically) and, at the end, the model directory ``model/``
(:mod:`phonrec.model_dir`) that :class:`phonrec.Transcriber` loads.

``trainer.resume=true`` continues a killed run from ``checkpoints/last.pt`` (model, optimiser,
scheduler, RNG state, epoch); batching and augmentation are seeded by ``(seed, epoch)`` so the
resumed run repeats what an uninterrupted run would have done from that epoch on.

A run never replaces an earlier one silently: training into an ``exp_dir`` that already holds a
model (``model/model.safetensors``) or checkpoints is refused (:func:`check_run_dir`) unless
``trainer.resume=true`` continues it from ``checkpoints/last.pt`` or ``trainer.overwrite=true``
starts afresh (the earlier checkpoints are deleted, its model is replaced at the end).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm import tqdm

from phonrec import pretrained
from phonrec.augment import AdaptiveSpecAugmentConfig, AugmentConfig, adaptive_spec_augment
from phonrec.checkpoint import (
    ResumeState,
    average_state_dicts,
    epoch_checkpoints,
    remove_stale_checkpoints,
    restore_training_state,
    save_training_state,
)
from phonrec.config import ConfigError, dataclass_from
from phonrec.data.datadir import DataDir
from phonrec.data.dataset import (
    BucketBatchSampler,
    FeatureCache,
    PooledDataset,
    UtteranceDataset,
    collate,
    sequence_label,
)
from phonrec.decode.greedy import greedy_batch
from phonrec.distributed import (
    all_reduce_sum,
    barrier,
    check_ranks_agree,
    pick_device,
    rank_device,
    shutdown_distributed,
)
from phonrec.divergences import (
    IGNORE_INDEX,
    DivergenceConfig,
    DivergenceSpec,
    ctc_min_frames,
    divergence_config,
    divergence_options,
    divergence_spec,
    frame_weights,
)
from phonrec.features import CMVN, FeatureConfig, features_from_group, normalise, utterance_statistics
from phonrec.metrics import ErrorCounts, edit_distance
from phonrec.model_dir import WEIGHTS, build_model, read_model_dir, write_model_dir
from phonrec.phones import PhoneSet

log = logging.getLogger("phonrec.train")


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
    overwrite: bool = False  # replace an earlier run in exp_dir (refused without it, unless resuming)
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 (bf16 autocast on CUDA only)
    num_threads: int = 0  # torch intra-op threads (0 = leave torch's default)
    num_workers: int = 0
    nonfinite: str = "error"  # error | skip: what a non-finite divergence does
    init_from: str | None = None  # a model directory (or packaged name: en) whose weights start this run
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


def trainer_config(cfg: DictConfig) -> TrainerConfig:
    """The validated ``trainer`` group."""
    return dataclass_from(TrainerConfig, OmegaConf.to_container(cfg.trainer, resolve=True), "trainer")


class RunDirInUse(ValueError):
    """``exp_dir`` already holds an earlier run that this one would replace; the message names the
    directory and the two ways out."""


def earlier_run(exp_dir: Path) -> list[Path]:
    """What an earlier run left in ``exp_dir`` that a fresh run would replace: its exported model
    and its checkpoints."""
    model = exp_dir / "model" / WEIGHTS
    return ([model] if model.is_file() else []) + sorted((exp_dir / "checkpoints").glob("*.pt"))


def check_run_dir(exp_dir: Path, tc: TrainerConfig) -> None:
    """Refuse to train into a directory holding an earlier run unless it is resumed
    (``trainer.resume=true`` and ``checkpoints/last.pt`` exists) or ``trainer.overwrite=true``.

    Raises:
        RunDirInUse: naming ``exp_dir``, what it holds and the two settings that allow the run.
    """
    last = exp_dir / "checkpoints" / "last.pt"
    found = earlier_run(exp_dir)
    if not found or tc.overwrite or (tc.resume and last.is_file()):
        return
    held = f"{found[0]}" + (f" and {len(found) - 1} more file(s)" if len(found) > 1 else "")
    why = f" (trainer.resume=true, but there is no {last})" if tc.resume else ""
    raise RunDirInUse(
        f"{exp_dir} already holds a run ({held}){why}: pass trainer.resume=true to continue it, "
        f"trainer.overwrite=true to replace it, or another exp_dir=..."
    )


def feature_config(cfg: DictConfig) -> tuple[FeatureConfig, str]:
    """The validated ``features`` group: extractor config and CMVN mode."""
    if "specaugment" in cfg.features:
        raise ConfigError("features.specaugment: SpecAugment is now the augment group's (augment.specaugment.*)")
    return features_from_group(OmegaConf.to_container(cfg.features, resolve=True))


def augment_config(cfg: DictConfig) -> AugmentConfig:
    """The validated ``augment`` group (nothing at all when the config has none)."""
    if cfg.get("augment") is None:
        return AugmentConfig()
    acfg = dataclass_from(AugmentConfig, OmegaConf.to_container(cfg.augment, resolve=True), "augment")
    if acfg.changes_waveform and acfg.copies == 0:
        raise ConfigError(
            "augment.copies: speed, VTLP, noise, babble and reverberation are applied when the augmented "
            "copies of the training set are cached; set augment.copies >= 1 (e.g. 2) or switch them off"
        )
    return acfg


def masks_on(spec: AdaptiveSpecAugmentConfig) -> bool:
    """Whether SpecAugment changes anything (masks of non-zero width, or time warping)."""
    freq = spec.freq_masks > 0 and spec.freq_width > 0
    time = (spec.time_masks > 0 or spec.time_masks_per_frame > 0) and spec.time_width > 0
    return freq or time or spec.time_warp > 0


# --- building blocks ----------------------------------------------------------------------------


def build_phone_set(cfg: DictConfig, train: Sequence[DataDir], spec: DivergenceSpec) -> PhoneSet:
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
    elif spec.target == "label":
        ps = PhoneSet.from_symbols(sorted({sequence_label(t) for d in train for t in d.text.values() if t.strip()}))
    else:
        phone_map = dict(cfg.data.get("phone_map") or {})
        symbols: set[str] = {"sil"}
        for table in [t for d in train for t in (d.phones, d.alignments)]:
            if table:
                symbols.update(phone_map.get(p, p) for seq in table.values() for p in seq)
        symbols.discard("")  # phones the map deletes
        cmu = PhoneSet.standard("cmu39+sil")
        # CMU-phone corpora get the whole CMU inventory, so that a lexicon or a test sentence
        # with a phone the training data happens to lack still decodes
        ps = cmu if symbols <= set(cmu.symbols) else PhoneSet.from_symbols(sorted(symbols))
    return ps.with_blank() if spec.needs_blank else ps.without_blank()


def subsample_labels(frame_labels: torch.Tensor, factor: int, out_len: int) -> torch.Tensor:
    """Frame labels ``(B, T)`` for a model that keeps every ``factor``-th frame -> ``(B, out_len)``."""
    if factor == 1:
        return frame_labels[:, :out_len]
    picked = frame_labels[:, factor // 2 :: factor][:, :out_len]
    if picked.shape[1] < out_len:
        picked = torch.nn.functional.pad(picked, (0, out_len - picked.shape[1]), value=IGNORE_INDEX)
    return picked


def warn_infeasible_ctc(batch: dict, out_lengths: torch.Tensor) -> None:
    """Name the utterances whose phones need more frames than the model emits (they get zero loss)."""
    need = ctc_min_frames(batch["targets"], batch["target_lengths"])
    short = [(u, int(n), int(o)) for u, n, o in zip(batch["utts"], need, out_lengths.cpu()) if n > o]
    if short:
        log.warning(
            "CTC: %d utterances have fewer frames than their phones need, and get zero loss: %s",
            len(short),
            ", ".join(f"{u} ({o} frames < {n})" for u, n, o in short),
        )


def compute_loss(
    model: torch.nn.Module, batch: dict, div: DivergenceConfig, device: torch.device, subsample: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward a batch and return ``(divergence summed over the batch, log_probs, out_lengths)``.

    Args:
        batch: from :func:`phonrec.data.dataset.collate`, already normalised; ``feats (B, T, F)``.
        div: the validated ``divergence`` group; its registry entry names the batch keys it reads.
        subsample: the model's frame subsampling factor (frame labels are subsampled to match).
    """
    spec = divergence_spec(div.name)
    feats = batch["feats"].to(device)
    lengths = batch["lengths"].to(device)
    log_probs, out_lengths = model(feats, lengths)  # (B, T', K), (B,)
    if spec.needs_blank:
        warn_infeasible_ctc(batch, out_lengths)
    targets = [batch[key].to(device) for key in spec.batch_keys]
    if "frame_labels" in spec.batch_keys:  # frame-synchronous targets follow the model's frame rate
        targets = [subsample_labels(targets[0], subsample, log_probs.shape[1])]
    loss = spec.function(log_probs.float(), out_lengths, *targets, reduction="sum", **divergence_options(div))
    return loss, log_probs, out_lengths


def loss_normaliser(spec: DivergenceSpec, batch: dict, out_frames: int) -> int:
    """What a batch's summed divergence is divided by: frames (aligned, CTC) or sequences (frame)."""
    return len(batch["utts"]) if spec.per_sequence else out_frames


@dataclass
class DevCounts:
    """What :func:`evaluate` accumulates over the dev batches."""

    loss: float = 0.0
    norm: float = 0.0
    correct: int = 0
    count: int = 0
    errors: ErrorCounts = ErrorCounts(0, 0, 0, 0)


def score_dev_batch(
    counts: DevCounts,
    batch: dict,
    log_probs: torch.Tensor,
    out_lengths: torch.Tensor,
    div: DivergenceConfig,
    phone_set: PhoneSet,
    subsample: int,
) -> None:
    """Add one batch to the divergence's own dev metric: frame accuracy (aligned), sequence accuracy
    with the trained frame weights (frame), or greedy phone errors without silence (CTC)."""
    lp, ol = log_probs.float().cpu(), out_lengths.cpu()
    mask = torch.arange(lp.shape[1])[None, :] < ol[:, None]
    if div.name == "aligned":
        labels = subsample_labels(batch["frame_labels"], subsample, lp.shape[1])
        valid = mask & (labels != IGNORE_INDEX)
        counts.correct += int(((lp.argmax(-1) == labels) & valid).sum())
        counts.count += int(valid.sum())
    elif div.name == "frame":
        # decide with the same frame weights the divergence trains (e.g. only the last frame)
        w = frame_weights(div.weights, ol, lp.shape[1], lp.device, lp.dtype)
        scores = (lp * w.unsqueeze(-1)).sum(1)  # (B, K)
        counts.correct += int((scores.argmax(-1) == batch["labels"]).sum())
        counts.count += len(ol)
    else:
        sil = phone_set.silence_id
        for spans, ref, n in zip(greedy_batch(lp, ol, blank=0), batch["targets"], batch["target_lengths"]):
            hyp = [s.phone for s in spans if s.phone != sil]
            counts.errors = counts.errors + edit_distance(ref[: int(n)].tolist(), hyp)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader: DataLoader,
    div: DivergenceConfig,
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
    spec = divergence_spec(div.name)
    counts = DevCounts()
    for batch in loader:
        batch["feats"] = normalise(batch["feats"], cmvn_mode, cmvn, batch["lengths"], batch.get("cmvn"))
        loss, log_probs, out_lengths = compute_loss(model, batch, div, device, subsample)
        counts.loss += float(loss)
        counts.norm += loss_normaliser(spec, batch, int(out_lengths.sum()))
        score_dev_batch(counts, batch, log_probs, out_lengths, div, phone_set, subsample)
    model.train()
    out = {"dev_loss": counts.loss / max(counts.norm, 1)}
    if div.name == "ctc":
        out["dev_per"] = counts.errors.rate
    elif div.name == "aligned":
        out["dev_frame_acc"] = counts.correct / max(counts.count, 1)
    else:
        out["dev_acc"] = counts.correct / max(counts.count, 1)
    return out


def lr_factor(step: int, tc: TrainerConfig, total_steps: int) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_lr_ratio`` (or constant)."""
    if tc.warmup_steps and step < tc.warmup_steps:
        return (step + 1) / tc.warmup_steps
    if tc.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - tc.warmup_steps) / max(1, total_steps - tc.warmup_steps))
    return tc.min_lr_ratio + (1 - tc.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def init_from_model_dir(model: torch.nn.Module, phone_set: PhoneSet, model_dir: str | Path) -> list[str]:
    """Start ``model`` from another model directory's weights (no code is executed: safetensors).

    Every tensor of equal name and shape is copied; the output layer is copied row by row for the
    symbols both phone sets share, so a frame-level (aligned) model can start a CTC model whose
    phone set adds ``<blank>`` (the blank row keeps its fresh initialisation). ``model_dir`` may
    also name a packaged model (``en``: :func:`phonrec.pretrained.resolve`).

    Returns:
        the names of the parameters left at their fresh initialisation.
    """
    source_dir = read_model_dir(pretrained.resolve(model_dir))
    source, source_phones = source_dir.model.state_dict(), source_dir.phone_set
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


def split_dirs(cfg: DictConfig, split: str) -> list[str]:
    """The data directories of ``data.<split>``: one path, or a list of them (pooled corpora)."""
    value = cfg.data.get(split)
    paths = [value] if isinstance(value, str) else list(value or [])
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError(
            f"data.{split} must name a data directory or a list of them, e.g. data.{split}=data/synth/{split} "
            f"or 'data.{split}=[data/a/{split},data/b/{split}]'"
        )
    for path in paths:
        if not Path(path).is_dir():
            raise ConfigError(f"data.{split}={path}: no such directory")
    return paths


def train_weights(cfg: DictConfig, num_dirs: int) -> list[float]:
    """``data.train_weights``: one sampling weight per training directory (default 1 each)."""
    weights = cfg.data.get("train_weights")
    if weights is None:
        return [1.0] * num_dirs
    weights = list(weights)
    if len(weights) != num_dirs or not all(isinstance(w, (int, float)) and w > 0 for w in weights):
        raise ConfigError(f"data.train_weights must be {num_dirs} positive numbers (one per data.train), got {weights}")
    return [float(w) for w in weights]


def cache_name(split: str, path: str, index: int, fcfg: FeatureConfig) -> str:
    """Cache folder of a split's ``index``-th directory: ``train-logmel`` for the first (as before
    pooling), ``train-logmel-<dir name>-<hash>`` for the others."""
    if index == 0:
        return f"{split}-{fcfg.kind}"
    digest = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:8]
    return f"{split}-{fcfg.kind}-{Path(path).name}-{digest}"


def load_split(
    cfg: DictConfig,
    split: str,
    fcfg: FeatureConfig,
    exp_dir: Path,
    progress: bool,
    augment: AugmentConfig | None = None,
) -> list[tuple[DataDir, FeatureCache, list[FeatureCache]]]:
    """Every data directory of ``data.<split>`` with its feature cache (built on first use) and, with
    ``augment`` (training only), its ``augment.copies`` augmented caches."""
    cache_root = Path(cfg.data.get("cache_dir") or (exp_dir / "cache"))
    out = []
    for i, path in enumerate(split_dirs(cfg, split)):
        data = DataDir.load(path)
        name = cache_name(split, path, i, fcfg)
        cache = FeatureCache.build(data, fcfg, cache_root / name, progress=progress)
        copies = []
        if augment is not None and augment.copies:
            key = hashlib.sha1(json.dumps(augment.cache_key(), sort_keys=True).encode()).hexdigest()[:8]
            for k in range(1, augment.copies + 1):
                copies.append(
                    FeatureCache.build(
                        data,
                        fcfg,
                        cache_root / f"{name}-aug{key}-{k}",
                        progress=progress,
                        augment=augment,
                        copy=k,
                        seed=cfg.seed,
                    )
                )
        out.append((data, cache, copies))
    return out


@dataclass
class Run:
    """Everything one training run holds (icefall's ``params``): configs, data, model, optimiser."""

    cfg: DictConfig
    tc: TrainerConfig
    div: DivergenceConfig
    spec: DivergenceSpec
    cmvn_mode: str
    spec_cfg: AdaptiveSpecAugmentConfig | None
    train_set: PooledDataset
    rank: int
    world: int
    device: torch.device
    exp_dir: Path
    phone_set: PhoneSet
    cmvn: CMVN | None
    sampler: BucketBatchSampler
    train_loader: DataLoader
    dev_loader: DataLoader
    model: torch.nn.Module
    ddp_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    subsample: int
    utterance_cmvn_prob: float = 0.0  # speaker CMVN: share of training utterances normalised by their own statistics

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def ckpt_dir(self) -> Path:
        return self.exp_dir / "checkpoints"

    def evaluate(self) -> dict[str, float]:
        """:func:`evaluate` on the dev split with this run's model and normalisation."""
        return evaluate(
            self.model,
            self.dev_loader,
            self.div,
            self.phone_set,
            self.cmvn,
            self.cmvn_mode,
            self.device,
            self.subsample,
        )


def build_loaders(
    tc: TrainerConfig, train_set: PooledDataset, dev_set: PooledDataset, seed: int, rank: int, world: int
) -> tuple[BucketBatchSampler, DataLoader, DataLoader]:
    """Length-bucketed loaders: the training one shuffled per epoch and split over ranks."""
    sampler = BucketBatchSampler(
        train_set.lengths(),
        tc.max_frames,
        shuffle=True,
        seed=seed,
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
    return sampler, train_loader, dev_loader


def setup_run(rank: int, world: int, cfg: DictConfig) -> Run:
    """Validate the config, seed, load the data, build the model and its optimiser (in that order:
    the torch RNG calls happen as in every earlier version, so a seeded run repeats)."""
    tc = trainer_config(cfg)
    fcfg, cmvn_mode = feature_config(cfg)
    acfg = augment_config(cfg)
    spec_cfg = acfg.specaugment if masks_on(acfg.specaugment) else None
    div = divergence_config(OmegaConf.to_container(cfg.divergence, resolve=True))
    spec = divergence_spec(div.name)
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    device = rank_device(pick_device(tc.device), world)
    exp_dir = Path(cfg.exp_dir)
    check_run_dir(exp_dir, tc)  # on every rank, before anything is written, so all ranks stop
    if rank == 0:
        (exp_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (exp_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(cfg.seed)

    progress = tc.progress and rank == 0
    train_splits = load_split(cfg, "train", fcfg, exp_dir, progress, augment=acfg)
    dev_splits = load_split(cfg, "dev", fcfg, exp_dir, progress)
    phone_set = build_phone_set(cfg, [d for d, _, _ in train_splits], spec)
    phone_map = dict(cfg.data.get("phone_map") or {})

    def dataset(splits, weights=None) -> PooledDataset:
        parts = [
            UtteranceDataset(
                data,
                cache,
                phone_set,
                spec.target,
                phone_map=phone_map,
                versions=copies,
                speaker_cmvn=cmvn_mode == "speaker",
            )
            for data, cache, copies in splits
        ]
        return PooledDataset(parts, weights, seed=cfg.seed)

    train_set = dataset(train_splits, train_weights(cfg, len(train_splits)))
    dev_set = dataset(dev_splits)
    cmvn = (
        CMVN.fit(feats for _, cache, _ in train_splits for feats in cache.iter_features())
        if cmvn_mode == "global"
        else None
    )
    log.info(
        "train: %d utterances (%d skipped) in %d corpora, %d augmented copies, dev: %d; %d output symbols; "
        "device %s, world %d",
        len(train_set),
        sum(len(cache.bad) for _, cache, _ in train_splits) + len(train_set.skipped),
        len(train_splits),
        acfg.copies,
        len(dev_set),
        len(phone_set),
        device,
        world,
    )
    sampler, train_loader, dev_loader = build_loaders(tc, train_set, dev_set, cfg.seed, rank, world)

    model = build_model(cfg, fcfg.dim, len(phone_set)).to(device)
    model_cfg = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "name"}
    log.info("model: %s, %.2f M parameters", model_cfg, sum(p.numel() for p in model.parameters()) / 1e6)
    if tc.init_from and not (tc.resume and (exp_dir / "checkpoints" / "last.pt").is_file()):
        fresh = init_from_model_dir(model, phone_set, tc.init_from)
        log.info("initialised from %s (left fresh: %s)", tc.init_from, fresh or "nothing")
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt_cls = torch.optim.AdamW if tc.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    total_steps = tc.epochs * max(1, len(sampler))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, tc, total_steps))
    return Run(
        cfg,
        tc,
        div,
        spec,
        cmvn_mode,
        spec_cfg,
        train_set,
        rank,
        world,
        device,
        exp_dir,
        phone_set,
        cmvn,
        sampler,
        train_loader,
        dev_loader,
        model,
        ddp_model,
        optimizer,
        scheduler,
        model.cfg.frame_factor,
        acfg.utterance_cmvn_prob if cmvn_mode == "speaker" else 0.0,
    )


def resume_or_start(r: Run) -> ResumeState:
    """Continue from ``checkpoints/last.pt`` under ``trainer.resume=true``; else start afresh (an
    earlier run's checkpoints, which :func:`check_run_dir` allowed under ``trainer.overwrite=true``,
    are removed, so they are never averaged into this one)."""
    last_path = r.ckpt_dir / "last.pt"
    if r.tc.resume and last_path.is_file():
        state = restore_training_state(last_path, r.model, r.optimizer, r.scheduler)
        log.info("resumed from %s at epoch %d", last_path, state.epoch)
        return state
    if r.tc.resume:
        log.info("trainer.resume=true but %s does not exist: starting from scratch", last_path)
    if r.is_main:
        remove_stale_checkpoints(r.ckpt_dir)
    return ResumeState()


def train_step(r: Run, batch: dict, epoch: int, spec_gen: torch.Generator, autocast) -> tuple[float, int] | None:
    """One optimiser step on ``batch``; returns ``(summed loss, normaliser)``, or None when the
    batch was skipped for a non-finite divergence (``trainer.nonfinite=skip``)."""
    stats = batch.get("cmvn")
    if stats is not None and r.utterance_cmvn_prob > 0:  # some utterances by their own statistics
        own = torch.rand(stats.shape[0], generator=spec_gen) < r.utterance_cmvn_prob
        stats = torch.where(own[:, None, None], utterance_statistics(batch["feats"], batch["lengths"]), stats)
    feats = normalise(batch["feats"], r.cmvn_mode, r.cmvn, batch["lengths"], stats)
    if r.spec_cfg is not None:
        feats = adaptive_spec_augment(feats, batch["lengths"], r.spec_cfg, generator=spec_gen)
    batch["feats"] = feats
    with autocast:
        loss, _, out_lengths = compute_loss(r.ddp_model, batch, r.div, r.device, r.subsample)
    local_norm = loss_normaliser(r.spec, batch, int(out_lengths.sum()))
    # One all-reduce: the global normaliser, and whether any rank saw a non-finite value
    # (all ranks must skip together or DDP would wait forever).
    global_norm, nonfinite = all_reduce_sum([float(local_norm), float(not torch.isfinite(loss))], r.device)
    # DDP averages gradients over ranks: scale so the result is the global per-frame mean.
    scaled = loss * r.world / global_norm
    if nonfinite:
        message = f"non-finite divergence at epoch {epoch} in batch {batch['utts'][:4]}..."
        if r.tc.nonfinite == "error":
            raise FloatingPointError(message + " (set trainer.nonfinite=skip to skip such batches)")
        log.warning("%s: skipped", message)
        r.optimizer.zero_grad(set_to_none=True)
        return None
    r.optimizer.zero_grad(set_to_none=True)
    scaled.backward()
    if r.tc.grad_clip:
        torch.nn.utils.clip_grad_norm_(r.model.parameters(), r.tc.grad_clip)
    r.optimizer.step()
    r.scheduler.step()
    return float(loss.detach()), local_norm


def train_one_epoch(r: Run, epoch: int) -> dict[str, float]:
    """Train one epoch; returns its training metrics (loss, throughput, padding, lr, skipped batches)."""
    r.train_set.set_epoch(epoch)
    r.sampler.set_epoch(epoch, r.train_set.lengths())
    spec_gen = torch.Generator()
    spec_gen.manual_seed(r.cfg.seed * 1000 + epoch * r.world + r.rank)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if r.device.type == "cuda" and r.tc.precision == "bf16"
        else contextlib.nullcontext()
    )
    r.ddp_model.train()
    t0, frames, loss_sum, norm_sum, skipped = time.perf_counter(), 0, 0.0, 0.0, 0
    padded_frames, data_wait = 0, 0.0
    progress = r.tc.progress and r.is_main
    bar = tqdm(r.train_loader, desc=f"epoch {epoch}/{r.tc.epochs}", unit="batch", disable=not progress, mininterval=1.0)
    t_ready = time.perf_counter()
    for batch in bar:
        data_wait += time.perf_counter() - t_ready
        padded_frames += batch["feats"].shape[0] * batch["feats"].shape[1]
        step = train_step(r, batch, epoch, spec_gen, autocast)
        if step is None:
            skipped += 1
            continue
        frames += int(batch["lengths"].sum())
        loss_sum += step[0]
        norm_sum += step[1]
        bar.set_postfix(loss=f"{loss_sum / max(norm_sum, 1):.3f}", fps=f"{frames / (time.perf_counter() - t0):.0f}")
        t_ready = time.perf_counter()
    elapsed = time.perf_counter() - t0
    return {
        "train_loss": loss_sum / max(norm_sum, 1),
        "frames_per_s": frames * r.world / elapsed,
        "epoch_seconds": elapsed,
        "data_wait_fraction": data_wait / elapsed,
        "padding_fraction": 1 - frames / max(padded_frames, 1),
        "lr": r.scheduler.get_last_lr()[0],
        "skipped_batches": skipped,
    }


def log_epoch(writer, epoch: int, metrics: dict[str, float]) -> None:
    """One log line and the tensorboard scalars of an epoch."""
    log.info(
        "epoch %d: %s",
        epoch,
        " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()),
    )
    for k, v in metrics.items():
        if k != "epoch":
            writer.add_scalar(k, v, epoch)
    writer.flush()


def export(r: Run, metrics: dict[str, float], history: list[dict[str, float]]) -> dict[str, float]:
    """Average the last ``trainer.average_last`` epochs (re-evaluated when more than one), write the
    model directory and ``metrics.json``; returns the final metrics."""
    epochs = epoch_checkpoints(r.ckpt_dir)[-r.tc.average_last :]
    final = average_state_dicts(epochs) if len(epochs) > 1 else r.model.state_dict()
    if len(epochs) > 1:
        r.model.load_state_dict(final)
        metrics = {**metrics, **{f"avg_{k}": v for k, v in r.evaluate().items()}}
        log.info(
            "averaged %d checkpoints: %s",
            len(epochs),
            {k: round(v, 4) for k, v in metrics.items() if k.startswith("avg_")},
        )
    write_model_dir(r.exp_dir / "model", final, r.cfg, r.phone_set, r.cmvn)
    (r.exp_dir / "metrics.json").write_text(json.dumps({"final": metrics, "history": history}, indent=1))
    log.info("model directory: %s", r.exp_dir / "model")
    return metrics


def run(rank: int, world_size: int, cfg: DictConfig) -> dict[str, float]:
    """Train with the composed config as rank ``rank`` of ``world_size`` (0 of 1 without DDP; the
    process group is set up by :func:`phonrec.distributed.setup_distributed`); returns the final dev
    metrics and writes ``exp_dir`` (rank 0)."""
    r = setup_run(rank, world_size, cfg)
    state = resume_or_start(r)
    writer = None
    if r.is_main:
        from torch.utils.tensorboard import SummaryWriter  # heavy optional dependency

        writer = SummaryWriter(str(r.exp_dir / "tensorboard"))
    metric_key = r.spec.select_metric
    metrics: dict[str, float] = state.history[-1] if state.history else {}
    for epoch in range(state.epoch, r.tc.epochs + 1):
        if state.bad_epochs and r.tc.patience and state.bad_epochs >= r.tc.patience:
            log.info("early stopping: %d epochs without improvement of %s", state.bad_epochs, metric_key)
            break
        metrics = {"epoch": epoch, **train_one_epoch(r, epoch)}
        metrics.update(r.evaluate())
        improved = metrics[metric_key] < state.best
        state.best, state.bad_epochs = (metrics[metric_key], 0) if improved else (state.best, state.bad_epochs + 1)
        state.history.append(metrics)
        if r.is_main:
            log_epoch(writer, epoch, metrics)
            keep = max(r.tc.keep_checkpoints, r.tc.average_last)
            save_training_state(
                r.ckpt_dir, r.model, r.optimizer, r.scheduler, state, finished_epoch=epoch, improved=improved, keep=keep
            )
        barrier(world_size)
    if world_size > 1:
        check_ranks_agree(r.model, world_size)
    if r.is_main:
        metrics = export(r, metrics, state.history)
        writer.close()
    shutdown_distributed(world_size)
    return metrics


def prepare_features(cfg: DictConfig) -> None:
    """Compute and cache the features of every split named in ``data`` (train, dev, test), and
    with ``features.cmvn=global`` write the training split's statistics to ``exp_dir/cmvn.json``
    (a report: training fits its own). Training reuses the caches."""
    fcfg, cmvn_mode = feature_config(cfg)
    exp_dir = Path(cfg.exp_dir)
    for split in ("train", "dev", "test"):
        if cfg.data.get(split):
            splits = load_split(cfg, split, fcfg, exp_dir, progress=True)
            caches = [cache for _, cache, _ in splits]
            frames = sum(n for cache in caches for n in cache.lengths().values())
            log.info(
                "%s: %d utterances, %d frames (%.2f h), %d bad",
                split,
                sum(len(cache.index) for cache in caches),
                frames,
                frames * fcfg.hop_ms / 3.6e6,
                sum(len(cache.bad) for cache in caches),
            )
            if split == "train" and cmvn_mode == "global":
                cmvn = CMVN.fit(feats for cache in caches for feats in cache.iter_features())
                exp_dir.mkdir(parents=True, exist_ok=True)
                cmvn.save(exp_dir / "cmvn.json")
