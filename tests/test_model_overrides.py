"""``recipes/lib/model_overrides.py``: the Hydra overrides that rebuild a model's network and features."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT
from helpers import compose_cfg
from omegaconf import OmegaConf
from safetensors.torch import load_file

from phonrec.features import features_from_group
from phonrec.model_dir import build_model
from phonrec.pretrained import model_path

SCRIPT = REPO_ROOT / "recipes" / "lib" / "model_overrides.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_overrides_rebuild_the_packaged_model():
    """The fsdd recipe's config (4 kHz filterbank, model=small) plus the overrides is the en model's shape."""
    proc = _run("en")
    assert proc.returncode == 0, proc.stderr
    overrides = proc.stdout.split()
    cfg = compose_cfg(["data=fsdd", "model=small", "features.fmax=4000", "features.cmvn=utterance", *overrides])
    en = OmegaConf.load(model_path("en") / "config.yaml")
    assert {k: cfg.model[k] for k in en.model} == en.model  # (keys newer than the model keep their defaults)
    features = OmegaConf.to_container(cfg.features)
    assert features_from_group(features) == features_from_group(
        {**OmegaConf.to_container(en.features), "cmvn": "utterance"}
    )
    assert features["cmvn"] == "utterance"  # the recipe's normalisation is kept
    weights = load_file(str(model_path("en") / "model.safetensors"))
    n_mels, n_out = cfg.features.n_mels, weights["output.weight"].shape[0]
    state = build_model(cfg, n_mels, n_out).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in weights.items()}


def test_not_a_model_directory_is_named_without_traceback(tmp_path):
    proc = _run(str(tmp_path / "nothing"))
    assert proc.returncode == 1
    assert f"{tmp_path / 'nothing'}: not a phonrec model directory (missing config.yaml)" in proc.stderr
    assert "Traceback" not in proc.stderr
