"""DDP plumbing for training: the device, the process group torchrun asks for, and the few
collective operations the training loop needs."""

from __future__ import annotations

import logging
import os

import torch
import torch.distributed as dist

from phonrec.config import ConfigError

log = logging.getLogger("phonrec.train")


def pick_device(name: str) -> torch.device:
    """``trainer.device`` (``auto`` | ``cpu`` | ``cuda``) as a device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but no CUDA device is available")
    return torch.device(name)


def setup_distributed(device: torch.device) -> tuple[int, int]:
    """Initialise the process group when launched by torchrun; returns ``(rank, world_size)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def rank_device(device: torch.device, world: int) -> torch.device:
    """Under DDP on CUDA, this rank's GPU (``LOCAL_RANK``), made current; else ``device``."""
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return device


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few numbers over ranks (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def barrier(world: int) -> None:
    """Wait for every rank (nothing to wait for in one process)."""
    if world > 1:
        dist.barrier()


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


def shutdown_distributed(world: int) -> None:
    """Wait for every rank, then tear the process group down (nothing to do in one process)."""
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
