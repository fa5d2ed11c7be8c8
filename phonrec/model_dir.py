"""The trained model directory: the one writer (the trainer's export) and the one reader
(:class:`phonrec.Transcriber`, ``trainer.init_from``).

Format::

    config.yaml        the resolved training config (features, model, divergence, ...)
    model.safetensors  the BiLSTM's weights (safetensors: loading runs no code)
    phones.txt         the output symbols, one per line, in id order
    cmvn.json          global CMVN statistics (only when features.cmvn=global)
    lexicon.txt        optional: a pronunciation dictionary for the lexicon decoder

The features group is validated on read exactly as training validates it
(:func:`phonrec.features.features_from_group`); every error names the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file, save_file

from phonrec.config import ConfigError
from phonrec.features import CMVN, FeatureConfig, features_from_group
from phonrec.lexicon import Lexicon
from phonrec.models.bilstm import BiLSTM
from phonrec.phones import PhoneSet

CONFIG, WEIGHTS, PHONES, CMVN_FILE, LEXICON = (
    "config.yaml",
    "model.safetensors",
    "phones.txt",
    "cmvn.json",
    "lexicon.txt",
)
REQUIRED = (CONFIG, WEIGHTS, PHONES)


@dataclass
class ModelDir:
    """A model directory read by :func:`read_model_dir`.

    Attributes:
        path: the directory.
        config: its ``config.yaml``.
        features: the validated feature extractor config.
        cmvn_mode: ``global`` | ``utterance`` | ``none``.
        cmvn: the global statistics, when ``cmvn.json`` is present.
        phone_set: the output symbols.
        lexicon: ``lexicon.txt``, when present.
        model: the BiLSTM with its weights loaded (CPU, train mode as built).
    """

    path: Path
    config: DictConfig
    features: FeatureConfig
    cmvn_mode: str
    cmvn: CMVN | None
    phone_set: PhoneSet
    lexicon: Lexicon | None
    model: BiLSTM


def build_model(cfg: DictConfig, input_dim: int, num_classes: int) -> BiLSTM:
    """The BiLSTM of the config's ``model`` group (validated: an unknown key fails naming ``model.key``)."""
    return BiLSTM.from_config(input_dim, num_classes, OmegaConf.to_container(cfg.model, resolve=True))


def write_model_dir(
    out: Path,
    state: dict[str, torch.Tensor],
    cfg: DictConfig,
    phone_set: PhoneSet,
    cmvn: CMVN | None,
) -> None:
    """Write ``out`` (created if needed): weights atomically, then phones, CMVN and the resolved config."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (WEIGHTS + ".tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    tmp.replace(out / WEIGHTS)
    phone_set.to_file(out / PHONES)
    if cmvn is not None:
        cmvn.save(out / CMVN_FILE)
    (out / CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))


def _load_weights(model: BiLSTM, path: Path, num_symbols: int) -> None:
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for non-safetensors files
        raise ValueError(f"{path}: not a valid safetensors file ({e})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(
            f"{path}: weights do not fit the model described by {CONFIG} and {PHONES} ({num_symbols} symbols): {e}"
        ) from None


def read_model_dir(model_dir: str | Path) -> ModelDir:
    """Read a model directory written by :func:`write_model_dir`.

    The model is built without touching the global torch RNG, so reading one (``trainer.init_from``)
    leaves a seeded run's random numbers as they were.

    Raises:
        FileNotFoundError: a required file is missing (named).
        ConfigError: ``config.yaml``'s features or model group is invalid (the file and key named).
        ValueError: ``model.safetensors`` is not safetensors, or its weights do not fit.
    """
    model_dir = Path(model_dir)
    for name in REQUIRED:
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir}: not a phonrec model directory (missing {name})")
    cfg = OmegaConf.load(model_dir / CONFIG)
    phone_set = PhoneSet.from_file(model_dir / PHONES)
    try:
        fcfg, cmvn_mode, _ = features_from_group(OmegaConf.to_container(cfg.features, resolve=True))
        with torch.random.fork_rng(devices=[]):
            model = build_model(cfg, fcfg.dim, len(phone_set))
    except ConfigError as e:
        raise ConfigError(f"{model_dir / CONFIG}: {e}") from None
    _load_weights(model, model_dir / WEIGHTS, len(phone_set))
    cmvn = CMVN.load(model_dir / CMVN_FILE) if (model_dir / CMVN_FILE).is_file() else None
    lexicon = Lexicon.from_kaldi(model_dir / LEXICON) if (model_dir / LEXICON).is_file() else None
    return ModelDir(model_dir, cfg, fcfg, cmvn_mode, cmvn, phone_set, lexicon, model)
