"""The ``decoder`` config group (``conf/decoder/*.yaml``): one validated dataclass per search.

:func:`decoder_config_from` picks the class by ``name`` and builds it through
:func:`phonrec.config.dataclass_from`, so an unknown or mistyped key (``decoder.beamm=3``) fails
naming ``decoder.beamm`` instead of reaching the search as a stray keyword argument. Each field is
a keyword argument of the search it configures (``greedy``, ``phone_beam_search``,
``LexiconDecoder``) or a file the decode command reads for it (``phone_lm``, ``train_data``,
``lexicon``, ``lm``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from phonrec.config import ConfigError, dataclass_from


@dataclass(frozen=True)
class SearchConfig:
    """What every search shares: a name and the shortest phone of frame-level models.

    Attributes:
        name: which search (``greedy``, ``beam``, ``lexicon``).
        min_duration: frame-level models: fewest model frames per phone (1 = off; CTC: must be 1).
        min_duration_ms: frame-level models: the same in milliseconds; :func:`resolve_min_duration`
            turns it into ``min_duration`` frames of the model at hand (CTC: ignored).
    """

    name: str
    min_duration: int = 1
    min_duration_ms: float | None = None

    def __post_init__(self) -> None:
        if self.min_duration < 1:
            raise ValueError(f"min_duration must be >= 1, got {self.min_duration}")
        if self.min_duration_ms is not None and not self.min_duration_ms > 0:
            raise ValueError(f"min_duration_ms must be > 0, got {self.min_duration_ms}")


@dataclass(frozen=True)
class GreedyConfig(SearchConfig):
    """``conf/decoder/greedy.yaml``: best path (arg-max per frame, repeats merged, blanks dropped)."""

    name: str = "greedy"


@dataclass(frozen=True)
class BeamConfig(SearchConfig):
    """``conf/decoder/beam.yaml``: phone beam search with a phone bigram.

    Attributes:
        beam: prefixes kept per frame (CTC; frame-level models decode exactly).
        lm_weight: scale of the bigram's log-probabilities.
        phone_lm: a saved ``PhoneBigram``; ``None``: fit one on ``train_data``'s phones.
        train_data: data directory whose ``phones`` fit the bigram (``None`` with no ``phone_lm``: no LM).
    """

    name: str = "beam"
    beam: int = 8
    lm_weight: float = 0.5
    phone_lm: str | None = None
    train_data: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beam < 1:
            raise ValueError(f"beam must be >= 1, got {self.beam}")


@dataclass(frozen=True)
class LexiconConfig(SearchConfig):
    """``conf/decoder/lexicon.yaml``: dictionary-constrained word search.

    Attributes:
        lexicon: ``lexicon.txt`` (Kaldi format); ``None``: ``<model_dir>/lexicon.txt``.
        lm: word LM: an ``.arpa`` file, or a Kaldi ``text`` file to estimate a bigram from.
        lm_weight: scale of the word LM's log-probabilities.
        word_penalty: added to the score of each word.
        beam: score beam (tokens further than this below the best are pruned).
        max_active: keep at most this many search states per frame (``None``: no limit, the exact
            beam search). With the full CMUdict 500-5000 gave the same words as no limit at a
            tenth of the time or less (``docs/flashlight.md``).
    """

    name: str = "lexicon"
    lexicon: str | None = None
    lm: str | None = None
    lm_weight: float = 1.0
    word_penalty: float = 0.0
    beam: float = 16.0
    max_active: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.beam > 0:
            raise ValueError(f"beam must be > 0, got {self.beam}")
        if self.max_active is not None and self.max_active < 1:
            raise ValueError(f"max_active must be >= 1 or null, got {self.max_active}")


DecoderConfig = GreedyConfig | BeamConfig | LexiconConfig
DECODER_CONFIGS: dict[str, type[SearchConfig]] = {"greedy": GreedyConfig, "beam": BeamConfig, "lexicon": LexiconConfig}


def decoder_config_from(values: Mapping[str, Any]) -> DecoderConfig:
    """The validated config of the search ``values["name"]`` names.

    Raises:
        ConfigError: an unknown name, or an unknown, wrongly typed or invalid key (named ``decoder.key``).
    """
    name = values.get("name")
    if name not in DECODER_CONFIGS:
        raise ConfigError(f"decoder.name must be one of {', '.join(DECODER_CONFIGS)}, got {name!r}")
    return dataclass_from(DECODER_CONFIGS[name], dict(values), "decoder")


def resolve_min_duration(cfg: DecoderConfig, frame_ms: float, frame_level: bool) -> DecoderConfig:
    """Turn ``min_duration_ms`` into ``min_duration`` frames of a model with ``frame_ms`` per output frame.

    The same duration then means the same thing for a 10-ms model and a stacked 30-ms one. CTC
    models (``frame_level`` false) keep ``min_duration``: their blank already absorbs flicker.
    The result has ``min_duration_ms`` ``None`` (it has been applied, or does not apply).
    """
    if cfg.min_duration_ms is not None and frame_level:
        return replace(cfg, min_duration=max(1, round(cfg.min_duration_ms / frame_ms)), min_duration_ms=None)
    return replace(cfg, min_duration_ms=None)
