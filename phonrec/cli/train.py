"""``phonrec-train [overrides]`` and ``phonrec-train features [overrides]`` (Hydra apps over
``phonrec/conf``): ``python -m phonrec.cli.train ...``, or under DDP
``torchrun --nproc_per_node=2 -m phonrec.cli.train ...``.

The rank and world size come from torchrun's environment (:func:`phonrec.distributed.setup_distributed`);
the training itself is :func:`phonrec.train.run`.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from phonrec.config import CONF_DIR
from phonrec.distributed import pick_device, setup_distributed
from phonrec.train import prepare_features, run, trainer_config


def train(cfg: DictConfig) -> dict[str, float]:
    """Train as the rank torchrun's environment names (rank 0 of 1 without torchrun)."""
    tc = trainer_config(cfg)
    rank, world_size = setup_distributed(pick_device(tc.device))
    return run(rank, world_size, cfg)


def _hydra_app(task):
    return hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(task)


def features_main() -> None:
    """Console entry point ``phonrec-features`` (same config and overrides as ``phonrec-train``)."""
    _hydra_app(prepare_features)()


def main() -> None:
    """Console entry point ``phonrec-train``; ``phonrec-train features ...`` runs :func:`features_main`."""
    if len(sys.argv) > 1 and sys.argv[1] == "features":
        sys.argv.pop(1)
        features_main()
    else:
        _hydra_app(train)()


if __name__ == "__main__":
    main()
