"""Print the Hydra overrides that rebuild a model directory's network and features.

``python recipes/lib/model_overrides.py MODEL`` (a model directory or a packaged name such as
``en``) prints ``model=NAME model.KEY=VALUE ... features.KEY=VALUE ...`` on one line, so that a
recipe can train a network of the same shape on the same features and start it from that model
(``trainer.init_from=MODEL``): every tensor then matches, and the input channels mean the same.
``features.cmvn`` is left out: the normalisation is the recipe's choice (FSDD's per-utterance CMVN
holds whatever the model was trained with).
"""

from __future__ import annotations

import argparse
import sys

from omegaconf import OmegaConf

from phonrec.config import ConfigError
from phonrec.model_dir import read_model_dir
from phonrec.pretrained import resolve


def hydra_value(value: object) -> str:
    """``value`` as a Hydra override value (``null``, ``true``, numbers and strings as written)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def model_overrides(model: str) -> list[str]:
    """``model=``, ``model.*`` and ``features.*`` (but ``cmvn``) overrides of the model directory ``model``."""
    config = OmegaConf.to_container(read_model_dir(resolve(model)).config)
    net, features = dict(config["model"]), config["features"]
    out = [f"model={net.pop('name')}"]
    out += [f"model.{key}={hydra_value(value)}" for key, value in net.items()]
    out += [f"features.{key}={hydra_value(value)}" for key, value in features.items() if key != "cmvn"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("model", help="a model directory or a packaged model name (en)")
    try:
        print(" ".join(model_overrides(parser.parse_args(argv).model)))
    except (OSError, ConfigError) as e:  # not a model directory: the file named, no traceback
        sys.exit(f"model_overrides.py: {e}")


if __name__ == "__main__":
    main()
