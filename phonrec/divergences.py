"""Training divergences (losses) between per-frame log-probabilities and targets.

Pure functions, masked by ``lengths``: frames at ``t >= lengths[b]`` never contribute to the
value and get exactly zero gradient.  Every function takes ``reduction``:

- ``"none"``: one value per sequence, shape ``(B,)``;
- ``"sum"``: the sum over all sequences (and frames);
- ``"mean"``: the sum over frames, averaged over the batch (``sum / B``; *not* divided by
  frame or target counts).

Which targets each divergence needs (the batch keys the data loader produces; :data:`REGISTRY`
holds this table for training and the data loader):

========== ===================================== ===========================================
name        function                              batch keys
========== ===================================== ===========================================
``frame``   :func:`weighted_frame_divergence`     ``labels`` (B,) one class per sequence
``aligned`` :func:`aligned_divergence`            ``frame_labels`` (B, T) one class per frame,
                                                  ``-100`` = ignored
``ctc``     :func:`ctc_divergence`                ``targets`` (B, S) padded, ``target_lengths`` (B,);
                                                  the model needs a blank class (id 0)
========== ===================================== ===========================================
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from phonrec.config import ConfigError, dataclass_from

IGNORE_INDEX = -100
REDUCTIONS = ("none", "sum", "mean")


# ----------------------------------------------------------------------------- validation


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_inputs(log_probs: Tensor, lengths: Tensor) -> tuple[int, int, int]:
    """Validate ``log_probs (B, T, K)`` and ``lengths (B,)``; return ``(B, T, K)``."""
    if log_probs.dim() != 3 or not log_probs.is_floating_point():
        raise ValueError(f"log_probs must be a float tensor (B, T, K), got {log_probs.dtype} {tuple(log_probs.shape)}")
    B, T, K = log_probs.shape
    if B < 1 or T < 1 or K < 1:
        raise ValueError(f"log_probs must be (B, T, K) with B, T, K >= 1, got {tuple(log_probs.shape)}")
    if lengths.dim() != 1 or lengths.shape[0] != B or lengths.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"lengths must be an integer tensor (B={B},), got {lengths.dtype} {tuple(lengths.shape)}")
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > T:
        raise ValueError(f"lengths must be (B,) with 1 <= lengths <= T={T}, got min {lo} max {hi}: {lengths.tolist()}")
    return B, T, K


def _valid_mask(lengths: Tensor, T: int, device: torch.device) -> Tensor:
    """(B, T) bool, True at ``t < lengths[b]``."""
    return torch.arange(T, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)


def _reduce(per_seq: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return per_seq
    if reduction == "sum":
        return per_seq.sum()
    return per_seq.sum() / per_seq.shape[0]


# ----------------------------------------------------------------------------- frame


def frame_weights(weights: str | Tensor, lengths: Tensor, T: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Per-frame weights, zero on padding and summing to 1 over each sequence's valid frames.

    Args:
        weights: ``"uniform"``, ``"last"`` (all weight on frame ``lengths - 1``), ``"linear"``
            (``w_t`` proportional to ``t + 1``), or a non-negative tensor (B, T) or (T,).
        lengths: (B,) valid frames.

    Returns:
        (B, T) weights.
    """
    B = lengths.shape[0]
    lengths = lengths.to(device)
    valid = _valid_mask(lengths, T, device)
    t = torch.arange(T, device=device, dtype=dtype).unsqueeze(0).expand(B, T)
    if isinstance(weights, str):
        if weights == "uniform":
            w = valid.to(dtype)
        elif weights == "last":
            w = (t == (lengths - 1).unsqueeze(1).to(dtype)).to(dtype)
        elif weights == "linear":
            w = (t + 1) * valid.to(dtype)
        else:
            raise ValueError(f"weights must be 'uniform', 'last', 'linear' or a tensor (B, T) / (T,), got {weights!r}")
    elif isinstance(weights, Tensor):
        if weights.shape not in ((B, T), (T,)):
            raise ValueError(f"weights tensor must be (B={B}, T={T}) or (T={T},), got {tuple(weights.shape)}")
        w = weights.to(device=device, dtype=dtype).expand(B, T) * valid.to(dtype)
        if bool((w < 0).any()):
            raise ValueError("weights tensor must be non-negative")
        total = w.sum(1)
        bad = (total <= 0).nonzero().flatten().tolist()
        if bad:
            raise ValueError(f"weights tensor sums to 0 over the valid frames of batch indices {bad}")
    else:
        raise ValueError(f"weights must be a string or a tensor, got {type(weights).__name__}")
    return w / w.sum(1, keepdim=True)


def weighted_frame_divergence(
    log_probs: Tensor,
    lengths: Tensor,
    labels: Tensor,
    weights: str | Tensor = "uniform",
    reduction: str = "mean",
) -> Tensor:
    """One label per sequence: ``DIV = sum_t w_t Xent(Y(t), label)`` over the valid frames.

    Weights are normalised to sum to 1 over each sequence's valid frames.

    Args:
        log_probs: (B, T, K) per-frame log-probabilities.
        lengths: (B,) valid frames, ``1 <= lengths <= T``.
        labels: (B,) int64 class of each sequence, in ``[0, K)``.
        weights: ``"uniform"`` | ``"last"`` | ``"linear"`` | tensor (B, T) or (T,).
        reduction: ``"none"`` (B,) | ``"sum"`` | ``"mean"`` (sum / B).

    Example::

        loss = weighted_frame_divergence(log_probs, lengths, labels, weights="last")
    """
    _check_reduction(reduction)
    B, T, K = _check_inputs(log_probs, lengths)
    if labels.shape != (B,) or labels.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"labels must be an integer tensor (B={B},), got {labels.dtype} {tuple(labels.shape)}")
    bad = ((labels < 0) | (labels >= K)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"labels must be in [0, K={K}); batch indices {bad} have {labels[bad].tolist()}")
    w = frame_weights(weights, lengths, T, log_probs.device, log_probs.dtype)  # (B, T)
    idx = labels.to(device=log_probs.device, dtype=torch.long).view(B, 1, 1).expand(B, T, 1)
    xent = -log_probs.gather(2, idx).squeeze(2)  # (B, T)
    # where() rather than a product: padding gets zero gradient even if it holds -inf
    per_frame = torch.where(w > 0, w * xent, torch.zeros_like(xent))
    return _reduce(per_frame.sum(1), reduction)


# ----------------------------------------------------------------------------- aligned


def segment_end_mask(frame_labels: Tensor, lengths: Tensor) -> Tensor:
    """(B, T) bool: the last frame of every run of equal labels within the valid frames.

    A run ends where the label changes or at the last valid frame; runs of ``-100`` are not
    marked.
    """
    B, T = frame_labels.shape
    valid = _valid_mask(lengths, T, frame_labels.device)
    change = torch.ones_like(valid)
    change[:, :-1] = frame_labels[:, 1:] != frame_labels[:, :-1]
    last = torch.arange(T, device=frame_labels.device).unsqueeze(0) == (lengths.to(frame_labels.device) - 1).unsqueeze(
        1
    )
    return valid & (change | last) & (frame_labels != IGNORE_INDEX)


def aligned_divergence(
    log_probs: Tensor,
    lengths: Tensor,
    frame_labels: Tensor,
    mode: str = "dense",
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """Time-synchronous targets: one label per frame.

    ``dense``: ``DIV = -sum_t log Y(t, symbol_t)`` over the valid frames (each phone repeated
    over its duration).  ``segment_end``: only the last frame of each run of a label is scored
    (a run ends where the label changes or at the sequence end).  Frames labelled ``-100`` and
    frames at ``t >= lengths`` are ignored.  With ``label_smoothing = e`` each scored frame costs
    ``(1 - e) * (-log Y(t, y)) + e * mean_k(-log Y(t, k))`` (as ``F.cross_entropy``).

    Args:
        log_probs: (B, T, K) per-frame log-probabilities.
        lengths: (B,) valid frames, ``1 <= lengths <= T``.
        frame_labels: (B, T) int64 in ``[0, K)`` or ``-100``.
        mode: ``"dense"`` | ``"segment_end"``.
        label_smoothing: in ``[0, 1)``.
        reduction: ``"none"`` (B,) | ``"sum"`` | ``"mean"`` (sum / B).
    """
    _check_reduction(reduction)
    B, T, K = _check_inputs(log_probs, lengths)
    if mode not in ("dense", "segment_end"):
        raise ValueError(f"mode must be 'dense' or 'segment_end', got {mode!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if frame_labels.shape != (B, T) or frame_labels.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"frame_labels must be an integer tensor (B={B}, T={T}) matching log_probs, "
            f"got {frame_labels.dtype} {tuple(frame_labels.shape)}"
        )
    frame_labels = frame_labels.to(device=log_probs.device, dtype=torch.long)
    lengths = lengths.to(log_probs.device)
    valid = _valid_mask(lengths, T, log_probs.device)
    out_of_range = valid & (frame_labels != IGNORE_INDEX) & ((frame_labels < 0) | (frame_labels >= K))
    if bool(out_of_range.any()):
        b, t = out_of_range.nonzero()[0].tolist()
        raise ValueError(
            f"frame_labels must be in [0, K={K}) or {IGNORE_INDEX} on valid frames; "
            f"batch index {b} frame {t} has {int(frame_labels[b, t])}"
        )
    if mode == "dense":
        scored = valid & (frame_labels != IGNORE_INDEX)
    else:
        scored = segment_end_mask(frame_labels, lengths)
    target = torch.where(scored, frame_labels, torch.zeros_like(frame_labels))
    nll = -log_probs.gather(2, target.unsqueeze(2)).squeeze(2)  # (B, T)
    if label_smoothing > 0:
        nll = (1.0 - label_smoothing) * nll - label_smoothing * log_probs.mean(2)
    per_frame = torch.where(scored, nll, torch.zeros_like(nll))
    return _reduce(per_frame.sum(1), reduction)


# ----------------------------------------------------------------------------- CTC


def ctc_min_frames(targets: Tensor, target_lengths: Tensor) -> Tensor:
    """(B,) fewest frames a CTC path needs: ``S_b`` plus the number of adjacent repeats
    (a blank must separate two equal symbols)."""
    S = targets.shape[1]
    pos = torch.arange(S, device=targets.device).unsqueeze(0)
    repeats = torch.zeros_like(target_lengths)
    if S > 1:
        same = (targets[:, 1:] == targets[:, :-1]) & (pos[:, 1:] < target_lengths.unsqueeze(1))
        repeats = same.sum(1).to(target_lengths.dtype)
    return target_lengths + repeats


def ctc_divergence(
    log_probs: Tensor,
    lengths: Tensor,
    targets: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = True,
) -> Tensor:
    """Connectionist temporal classification: order-synchronous targets without timing.

    ``-log sum_{paths} prod_t Y(t, path_t)`` via ``F.ctc_loss(reduction="none")``.

    An utterance is infeasible when it has fewer frames than its target length plus the
    number of adjacent repeated symbols (its CTC loss is infinite).  Infeasible utterances are
    detected up front:

    - ``zero_infinity=True`` (default): they contribute 0 to the loss and get zero gradient
      (``F.ctc_loss(zero_infinity=True)``), and a ``UserWarning`` lists their batch indices;
    - ``zero_infinity=False``: ``ValueError`` listing their batch indices, frames and the
      frames needed.

    Args:
        log_probs: (B, T, K) per-frame log-probabilities (batch-first; transposed here).
        lengths: (B,) valid frames, ``1 <= lengths <= T``.
        targets: (B, S) int64 symbol ids, padded beyond ``target_lengths``; never ``blank``.
        target_lengths: (B,) int64, ``0 <= target_lengths <= S``.
        blank: id of the blank class.
        reduction: ``"none"`` (B,) | ``"sum"`` | ``"mean"`` (sum / B; ``F.ctc_loss``'s "mean"
            divides by target lengths first, this does not).
        zero_infinity: see above.
    """
    _check_reduction(reduction)
    B, T, K = _check_inputs(log_probs, lengths)
    if not 0 <= blank < K:
        raise ValueError(f"blank must be in [0, K={K}), got {blank}")
    if targets.dim() != 2 or targets.shape[0] != B or targets.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"targets must be an integer tensor (B={B}, S), got {targets.dtype} {tuple(targets.shape)}")
    S = targets.shape[1]
    if target_lengths.shape != (B,) or target_lengths.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"target_lengths must be an integer tensor (B={B},), got "
            f"{target_lengths.dtype} {tuple(target_lengths.shape)}"
        )
    targets = targets.to(device=log_probs.device, dtype=torch.long)
    target_lengths = target_lengths.to(device=log_probs.device, dtype=torch.long)
    if bool(((target_lengths < 0) | (target_lengths > S)).any()):
        raise ValueError(f"target_lengths must satisfy 0 <= target_lengths <= S={S}, got {target_lengths.tolist()}")
    in_target = torch.arange(S, device=targets.device).unsqueeze(0) < target_lengths.unsqueeze(1)
    bad_sym = in_target & ((targets < 0) | (targets >= K) | (targets == blank))
    if bool(bad_sym.any()):
        rows = sorted(set(bad_sym.nonzero()[:, 0].tolist()))
        raise ValueError(
            f"targets must be in [0, K={K}) and never the blank ({blank}); bad symbols in batch indices {rows}"
        )
    need = ctc_min_frames(targets, target_lengths)
    have = lengths.to(need.device).to(torch.long)
    infeasible = (need > have).nonzero().flatten().tolist()
    if infeasible:
        detail = ", ".join(f"{b} ({int(have[b])} frames < {int(need[b])} needed)" for b in infeasible)
        if not zero_infinity:
            raise ValueError(
                f"CTC targets longer than the frames allow (targets + repeats <= frames) for batch indices: {detail}"
            )
        warnings.warn(f"CTC: infeasible utterances get zero loss and gradient, batch indices: {detail}", stacklevel=2)
    per_seq = F.ctc_loss(
        log_probs.transpose(0, 1),  # (T, B, K)
        targets,
        lengths.to(log_probs.device),
        target_lengths,
        blank=blank,
        reduction="none",
        zero_infinity=zero_infinity,
    )
    return _reduce(per_seq, reduction)


# ----------------------------------------------------------------------------- registry


@dataclass
class FrameDivergenceConfig:
    """``conf/divergence/frame.yaml``: the options of :func:`weighted_frame_divergence`."""

    name: str = "frame"
    weights: str = "uniform"  # uniform | last | linear

    def __post_init__(self) -> None:
        if self.weights not in ("uniform", "last", "linear"):
            raise ValueError(f"weights must be uniform, last or linear, got {self.weights!r}")


@dataclass
class AlignedDivergenceConfig:
    """``conf/divergence/aligned.yaml``: the options of :func:`aligned_divergence`."""

    name: str = "aligned"
    mode: str = "dense"  # dense | segment_end
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("dense", "segment_end"):
            raise ValueError(f"mode must be dense or segment_end, got {self.mode!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass
class CTCDivergenceConfig:
    """``conf/divergence/ctc.yaml``: the options of :func:`ctc_divergence` (blank is id 0)."""

    name: str = "ctc"
    zero_infinity: bool = True


DivergenceConfig = FrameDivergenceConfig | AlignedDivergenceConfig | CTCDivergenceConfig


def divergence_options(cfg: DivergenceConfig) -> dict[str, Any]:
    """The keyword arguments a config passes to its divergence function (every field but ``name``)."""
    return {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name != "name"}


@dataclass(frozen=True)
class DivergenceSpec:
    """What training and the data loader must know about one divergence.

    Attributes:
        function: called as ``function(log_probs, out_lengths, *batch[batch_keys], reduction=...,
            **divergence_options(config))``.
        config: the dataclass of its Hydra group.
        batch_keys: the batch keys it reads (:func:`phonrec.data.dataset.collate`), in argument order.
        target: the dataset's target kind (:class:`phonrec.data.dataset.UtteranceDataset`).
        item_key: the key of that target in one dataset item.
        needs_blank: the model output has a blank class (id 0).
        per_sequence: the training loss is normalised per sequence (else per output frame).
        select_metric: the dev metric that picks the best epoch and stops early (lower is better).
    """

    function: Callable[..., Tensor]
    config: type
    batch_keys: tuple[str, ...]
    target: str
    item_key: str
    needs_blank: bool
    per_sequence: bool
    select_metric: str


REGISTRY: dict[str, DivergenceSpec] = {
    "frame": DivergenceSpec(
        weighted_frame_divergence, FrameDivergenceConfig, ("labels",), "label", "label", False, True, "dev_loss"
    ),
    "aligned": DivergenceSpec(
        aligned_divergence,
        AlignedDivergenceConfig,
        ("frame_labels",),
        "aligned",
        "frame_labels",
        False,
        False,
        "dev_loss",
    ),
    "ctc": DivergenceSpec(
        ctc_divergence, CTCDivergenceConfig, ("targets", "target_lengths"), "ctc", "targets", True, False, "dev_per"
    ),
}


def divergence_spec(name: str) -> DivergenceSpec:
    """The registry entry of divergence ``name``.

    Raises:
        ConfigError: naming ``divergence.name`` and the valid names.
    """
    if name not in REGISTRY:
        raise ConfigError(f"unknown divergence {name!r}: divergence.name must be one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def divergence_config(values: dict[str, Any]) -> DivergenceConfig:
    """The ``divergence`` group as its validated dataclass (an unknown key fails naming ``divergence.key``)."""
    spec = divergence_spec(values.get("name"))
    return dataclass_from(spec.config, values, "divergence")


def divergence_needs_blank(name: str) -> bool:
    """True when the divergence ``name`` needs a blank class in the model output (CTC)."""
    return divergence_spec(name).needs_blank
