"""The trained model directory: the one writer (the trainer's export) and the one reader
(:class:`phonrec.Transcriber`, ``trainer.init_from``).

Format::

    config.yaml        the resolved training config (features, model, divergence, ...)
    model.safetensors  the BiLSTM's weights (safetensors: loading runs no code; fp16 tensors, as
                       ``phonrec-export --fp16`` stores them, are upcast to fp32 on reading)
    phones.txt         the output symbols, one per line, in id order
    cmvn.json          global CMVN statistics (required when features.cmvn=global)
    lexicon.txt        optional: the pronunciation dictionary that belongs to the model (lexicon decoder)
    decoding.yaml      optional: the decoding defaults its recipe found best (below)
    phone_bigram.json  optional: the phone bigram of the beam decoder (``PhoneBigram.save``)

``decoding.yaml`` (written by :func:`write_decoding_defaults`; absent: greedy, no minimum duration)::

    decoder: beam            # the default search: greedy | beam | lexicon
    min_duration_ms: 30      # frame-level models: shortest phone in ms (null: none; CTC: ignored)
    boundary_shift_ms: -16.6 # forced alignment: added to every interior boundary (0: none)

``boundary_shift_ms`` is measured, not chosen: ``bench/boundaries.py --calibrate DATA_DIR`` sets it
to minus the median signed boundary error of the model's aligner on speech with exact timings
(a BiLSTM CTC model's spikes, and so its spans, come late).

The beam decoder uses ``phone_bigram.json`` when it is present (without it the beam search has no
LM and equals greedy); ``decoder: lexicon`` needs ``lexicon.txt``. Both files sit in the directory
(copied there by the writer), so a model directory stays self-contained.

The features group is validated on read exactly as training validates it
(:func:`phonrec.features.features_from_group`); every error names the file.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file, save_file

from phonrec.config import ConfigError, dataclass_from
from phonrec.decode.config import DECODER_CONFIGS
from phonrec.features import CMVN, FeatureConfig, features_from_group
from phonrec.lexicon import Lexicon
from phonrec.lm import PhoneBigram
from phonrec.models.bilstm import BiLSTM
from phonrec.phones import PhoneSet

CONFIG, WEIGHTS, PHONES, CMVN_FILE, LEXICON, DECODING, PHONE_BIGRAM = (
    "config.yaml",
    "model.safetensors",
    "phones.txt",
    "cmvn.json",
    "lexicon.txt",
    "decoding.yaml",
    "phone_bigram.json",
)
REQUIRED = (CONFIG, WEIGHTS, PHONES)
OPTIONAL = (CMVN_FILE, LEXICON, DECODING, PHONE_BIGRAM)  # the other files a model directory may hold
HALF_DTYPES = (torch.float16, torch.bfloat16)  # stored by an fp16 export, upcast on reading
DECODERS = tuple(DECODER_CONFIGS)  # the searches decoding.yaml may name
MAX_BOUNDARY_SHIFT_MS = 100.0  # a larger calibrated shift means a broken model or reference, not a bias


@dataclass(frozen=True)
class DecodingDefaults:
    """``decoding.yaml``: how the model's recipe decodes it (the defaults of :class:`phonrec.Transcriber`).

    Attributes:
        decoder: the default search (``greedy``, ``beam`` or ``lexicon``).
        min_duration_ms: frame-level models: the shortest phone in milliseconds (``None``: no minimum).
        boundary_shift_ms: forced alignment (:meth:`phonrec.Transcriber.align`, ``phonrec-align``):
            milliseconds added to every boundary inside the audio (module docstring).
    """

    decoder: str = "greedy"
    min_duration_ms: float | None = None
    boundary_shift_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        if self.min_duration_ms is not None and not self.min_duration_ms > 0:
            raise ValueError(f"min_duration_ms must be > 0 or null, got {self.min_duration_ms}")
        if not -MAX_BOUNDARY_SHIFT_MS <= self.boundary_shift_ms <= MAX_BOUNDARY_SHIFT_MS:
            raise ValueError(
                f"boundary_shift_ms must be within +-{MAX_BOUNDARY_SHIFT_MS:g}, got {self.boundary_shift_ms}"
            )


@dataclass
class ModelDir:
    """A model directory read by :func:`read_model_dir`.

    Attributes:
        path: the directory.
        config: its ``config.yaml``.
        features: the validated feature extractor config.
        cmvn_mode: ``global`` | ``utterance`` | ``speaker`` | ``none``.
        cmvn: the global statistics, when ``cmvn.json`` is present.
        phone_set: the output symbols.
        lexicon: ``lexicon.txt``, when present.
        model: the BiLSTM with its weights loaded (CPU, train mode as built).
        decoding: ``decoding.yaml`` (its defaults when absent).
        phone_bigram: ``phone_bigram.json``, when present.
    """

    path: Path
    config: DictConfig
    features: FeatureConfig
    cmvn_mode: str
    cmvn: CMVN | None
    phone_set: PhoneSet
    lexicon: Lexicon | None
    model: BiLSTM
    decoding: DecodingDefaults = DecodingDefaults()
    phone_bigram: PhoneBigram | None = None


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


def check_model_dir(model_dir: str | Path) -> Path:
    """``model_dir`` as a path, after checking it holds the files every model directory has.

    Raises:
        FileNotFoundError: naming the directory and the first missing file.
    """
    model_dir = Path(model_dir)
    for name in REQUIRED:
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir}: not a phonrec model directory (missing {name})")
    return model_dir


def _load_weights(model: BiLSTM, path: Path, num_symbols: int) -> None:
    """Load ``path`` into ``model``; half-precision tensors (an fp16 export) are upcast to the
    dtype of the model's own tensor, so an fp16 file is computed in fp32."""
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for non-safetensors files
        raise ValueError(f"{path}: not a valid safetensors file ({e})") from None
    own = model.state_dict()
    for key, tensor in state.items():
        if key in own and tensor.dtype in HALF_DTYPES and own[key].is_floating_point():
            state[key] = tensor.to(own[key].dtype)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(
            f"{path}: weights do not fit the model described by {CONFIG} and {PHONES} ({num_symbols} symbols): {e}"
        ) from None


def write_decoding_defaults(
    model_dir: str | Path,
    *,
    decoder: str = "greedy",
    min_duration_ms: float | None = None,
    phone_bigram: PhoneBigram | None = None,
    lexicon: str | Path | None = None,
    boundary_shift_ms: float | None = None,
) -> DecodingDefaults:
    """Record how ``model_dir`` is best decoded: ``decoding.yaml``, and ``phone_bigram.json`` /
    ``lexicon.txt`` (a copy of ``lexicon``) when given.

    Args:
        model_dir: a model directory written by :func:`write_model_dir`.
        decoder: the default search (``greedy``, ``beam``, ``lexicon``).
        min_duration_ms: frame-level models: the shortest phone in ms (``None``: no minimum).
        phone_bigram: the beam decoder's phone bigram (e.g. fitted on the training phones).
        lexicon: a Kaldi-format lexicon that belongs to the model (required for ``decoder="lexicon"``
            unless the directory already has one).
        boundary_shift_ms: the forced aligner's calibrated shift (``None``: keep the one
            ``decoding.yaml`` has, 0 when it has none).

    Raises:
        FileNotFoundError: ``model_dir`` is not a model directory, or ``lexicon`` is missing.
        ValueError: an invalid decoder or duration, a bigram of the wrong size, or ``decoder="lexicon"``
            with no lexicon.
    """
    model_dir = check_model_dir(model_dir)
    if boundary_shift_ms is None:
        boundary_shift_ms = _read_decoding(model_dir / DECODING).boundary_shift_ms
    defaults = DecodingDefaults(
        decoder, None if min_duration_ms is None else float(min_duration_ms), float(boundary_shift_ms)
    )
    num_symbols = len(PhoneSet.from_file(model_dir / PHONES))
    if phone_bigram is not None and phone_bigram.num_phones != num_symbols:
        raise ValueError(f"phone bigram has {phone_bigram.num_phones} phones, {model_dir / PHONES} has {num_symbols}")
    if lexicon is not None:
        Lexicon.from_kaldi(lexicon)  # a bad lexicon fails now, naming its file
        if Path(lexicon).resolve() != (model_dir / LEXICON).resolve():
            shutil.copyfile(lexicon, model_dir / LEXICON)
    if decoder == "lexicon" and not (model_dir / LEXICON).is_file():
        raise ValueError(f"{model_dir}: decoder 'lexicon' needs a lexicon (none given and no {LEXICON})")
    if phone_bigram is not None:
        phone_bigram.save(model_dir / PHONE_BIGRAM)
    return _write_decoding(model_dir, defaults)


def set_boundary_shift(model_dir: str | Path, shift_ms: float) -> DecodingDefaults:
    """Record the forced aligner's calibrated ``boundary_shift_ms`` (rounded to 0.1 ms) in
    ``decoding.yaml``, keeping its other defaults.

    Raises:
        FileNotFoundError: ``model_dir`` is not a model directory.
        ValueError: a shift beyond :data:`MAX_BOUNDARY_SHIFT_MS`.
        ConfigError: the existing ``decoding.yaml`` is invalid (named).
    """
    model_dir = check_model_dir(model_dir)
    defaults = replace(_read_decoding(model_dir / DECODING), boundary_shift_ms=round(float(shift_ms), 1))
    return _write_decoding(model_dir, defaults)


def _write_decoding(model_dir: Path, defaults: DecodingDefaults) -> DecodingDefaults:
    """``decoding.yaml`` of ``defaults`` (the one writer); returns them."""
    (model_dir / DECODING).write_text(yaml.safe_dump(asdict(defaults), sort_keys=False))
    return defaults


def _read_decoding(path: Path) -> DecodingDefaults:
    """``decoding.yaml`` validated (unknown keys and bad values named), or the defaults when absent."""
    if not path.is_file():
        return DecodingDefaults()
    values = _load_yaml(path)
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of decoding defaults, got {type(values).__name__}")
    try:
        return dataclass_from(DecodingDefaults, values, "decoding")
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _load_yaml(path: Path) -> Any:
    """A YAML file's content (safe loading: no tags that run code); a syntax error names the file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None


def read_model_dir(model_dir: str | Path) -> ModelDir:
    """Read a model directory written by :func:`write_model_dir` (and :func:`write_decoding_defaults`).

    The model is built without touching the global torch RNG, so reading one (``trainer.init_from``)
    leaves a seeded run's random numbers as they were.

    Raises:
        FileNotFoundError: a required file is missing (named), or ``cmvn.json`` when the config asks
            for global CMVN (without it every frame would be fed unnormalised).
        ConfigError: ``config.yaml`` or ``decoding.yaml`` is not valid YAML, or a group is invalid
            (the file and key named).
        ValueError: ``model.safetensors`` is not safetensors, or its weights do not fit;
            ``phones.txt``, ``lexicon.txt`` or ``phone_bigram.json`` is invalid (named).
    """
    model_dir = check_model_dir(model_dir)
    _load_yaml(model_dir / CONFIG)  # a syntax error names the file (OmegaConf's own error does not)
    cfg = OmegaConf.load(model_dir / CONFIG)
    phone_set = PhoneSet.from_file(model_dir / PHONES)
    try:
        fcfg, cmvn_mode = features_from_group(OmegaConf.to_container(cfg.features, resolve=True))
        with torch.random.fork_rng(devices=[]):
            model = build_model(cfg, fcfg.dim, len(phone_set))
    except ConfigError as e:
        raise ConfigError(f"{model_dir / CONFIG}: {e}") from None
    _load_weights(model, model_dir / WEIGHTS, len(phone_set))
    if cmvn_mode == "global" and not (model_dir / CMVN_FILE).is_file():
        raise FileNotFoundError(
            f"{model_dir}: {CONFIG} has features.cmvn=global but {CMVN_FILE} (the training set's statistics) "
            "is missing; the model cannot be used without it"
        )
    cmvn = CMVN.load(model_dir / CMVN_FILE) if (model_dir / CMVN_FILE).is_file() else None
    lexicon = Lexicon.from_kaldi(model_dir / LEXICON) if (model_dir / LEXICON).is_file() else None
    decoding = _read_decoding(model_dir / DECODING)
    bigram = None
    if (model_dir / PHONE_BIGRAM).is_file():
        bigram = PhoneBigram.load(model_dir / PHONE_BIGRAM)
        if bigram.num_phones != len(phone_set):
            raise ValueError(
                f"{model_dir / PHONE_BIGRAM}: {bigram.num_phones} phones, {model_dir / PHONES} has {len(phone_set)}"
            )
    if decoding.decoder == "lexicon" and lexicon is None:
        raise FileNotFoundError(f"{model_dir / DECODING}: decoder is 'lexicon' but {LEXICON} is missing")
    return ModelDir(model_dir, cfg, fcfg, cmvn_mode, cmvn, phone_set, lexicon, model, decoding, bigram)
