"""``phonrec-train [overrides]`` and ``phonrec-train features [overrides]`` (Hydra apps over
``phonrec/conf``): ``python -m phonrec.cli.train ...``, or under DDP
``torchrun --nproc_per_node=2 -m phonrec.cli.train ...``.

The run directory is ``exp_dir``. Training into one that already holds a model or checkpoints is
refused, naming it, unless ``trainer.resume=true`` (continue from ``checkpoints/last.pt``) or
``trainer.overwrite=true`` (start afresh and replace it); :func:`phonrec.train.check_run_dir`.

A Hydra sweep gives every job its own directory: ``phonrec-train -m model.hidden=16,24 exp_dir=E``
trains ``E/model.hidden=16`` and ``E/model.hidden=24`` (the job's overrides, Hydra's
``hydra.job.override_dirname``, less ``exp_dir``, ``trainer.resume``/``overwrite``/``progress``
and the data paths; see ``conf/config.yaml``).

A user's mistake (a missing or bad value, a data directory that does not exist, an unknown key)
ends in one line naming it and exit status 2 (:func:`phonrec.cli.errors.user_errors`;
``PHONREC_DEBUG=1`` shows the traceback). Hydra answers its own mistakes (an unknown group
option, an override of a key the config lacks) before the task, in a few lines.

The rank and world size come from torchrun's environment (:func:`phonrec.distributed.setup_distributed`);
the training itself is :func:`phonrec.train.run`.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from phonrec.cli.errors import user_errors
from phonrec.config import CONF_DIR
from phonrec.distributed import pick_device, setup_distributed
from phonrec.train import prepare_features, run, trainer_config


def use_job_dir(cfg: DictConfig) -> None:
    """In a sweep (``-m``), make ``exp_dir`` the job's own directory (``hydra.sweep.dir`` /
    ``hydra.sweep.subdir``, where Hydra wrote the job's record); a single run keeps ``exp_dir``."""
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        cfg.exp_dir = HydraConfig.get().runtime.output_dir


@user_errors("phonrec-train")
def train(cfg: DictConfig) -> dict[str, float]:
    """Train as the rank torchrun's environment names (rank 0 of 1 without torchrun)."""
    use_job_dir(cfg)
    tc = trainer_config(cfg)
    rank, world_size = setup_distributed(pick_device(tc.device))
    return run(rank, world_size, cfg)


@user_errors("phonrec-train features")
def features(cfg: DictConfig) -> None:
    """Cache the features of every split and the training split's CMVN (:func:`prepare_features`)."""
    use_job_dir(cfg)
    prepare_features(cfg)


def _hydra_app(task):
    return hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(task)


def features_main() -> None:
    """Console entry point ``phonrec-features`` (same config and overrides as ``phonrec-train``)."""
    _hydra_app(features)()


def main() -> None:
    """Console entry point ``phonrec-train``; ``phonrec-train features ...`` runs :func:`features_main`."""
    if len(sys.argv) > 1 and sys.argv[1] == "features":
        sys.argv.pop(1)
        features_main()
    else:
        _hydra_app(train)()


if __name__ == "__main__":
    main()
