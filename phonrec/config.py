"""Configuration plumbing shared by every command: where the Hydra configs live, the error a bad
value raises, and the one way a config group becomes a validated dataclass.

Every Hydra group (trainer, features, model, divergence, decoder, ...) is read through
:func:`dataclass_from`, so an unknown or mistyped key anywhere fails naming ``group.key``.
"""

from __future__ import annotations

import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).resolve().parent / "conf"  # shipped inside the package


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


def _type_ok(value: Any, hint: Any) -> bool:
    """Whether a config value fits a dataclass field's type (``int``, ``float``, ``bool``, ``str``,
    ``X | None``); ints are accepted for floats, bools are never ints."""
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    options = typing.get_args(hint) if union else (hint,)
    for option in options:
        if option is type(None) and value is None:
            return True
        if option is bool and isinstance(value, bool):
            return True
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if option is str and isinstance(value, str):
            return True
        if option not in (type(None), bool, int, float, str):
            return True  # a type this check does not cover: the dataclass validates it
    return False


def dataclass_from(cls, values: dict[str, Any], prefix: str):
    """Build dataclass ``cls`` from a config dict, rejecting unknown keys and wrongly typed values by name."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(prefix + '.' + k for k in unknown)}; valid: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if not _type_ok(value, hints[key]):
            raise ConfigError(f"{prefix}.{key} must be of type {hints[key]}, got {value!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prefix}: {e}") from None
