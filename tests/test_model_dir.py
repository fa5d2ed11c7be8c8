"""The model directory: one writer, one reader; the reader validates like training does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import make_model_dir
from safetensors.torch import load_file

from phonrec.config import ConfigError
from phonrec.features import FeatureConfig
from phonrec.lexicon import Lexicon
from phonrec.model_dir import read_model_dir


def test_round_trip(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path, phones=("sil", "ah", "b", "k"), ctc=True)
    md = read_model_dir(model_dir)
    assert md.path == model_dir and md.cmvn_mode == "global" and md.lexicon is None
    assert isinstance(md.features, FeatureConfig) and (md.features.kind, md.features.n_mels) == ("logmel", 20)
    assert md.phone_set.symbols[0] == "<blank>" and len(md.phone_set) == 5
    assert md.cmvn is not None and md.cmvn.dim == 20
    weights = load_file(str(model_dir / "model.safetensors"))
    state = md.model.state_dict()
    assert state.keys() == weights.keys() and all(torch.equal(state[k], weights[k]) for k in weights)


def test_lexicon_is_read_when_present(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path)
    (model_dir / "lexicon.txt").write_text("AB ah b\n")
    lexicon = read_model_dir(model_dir).lexicon
    assert isinstance(lexicon, Lexicon) and "AB" in lexicon


def test_reading_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    read_model_dir(model_dir)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    "line, names",
    [("  n_mel: 40", "features.n_mel"), ("  cmvn: sometimes", "features.cmvn"), ("  hop_ms: fast", "hop_ms")],
)
def test_bad_features_group_names_the_file_and_key(tmp_path: Path, line: str, names: str) -> None:
    model_dir = make_model_dir(tmp_path)
    config = model_dir / "config.yaml"
    key = line.split(":")[0]
    lines = [ln for ln in config.read_text().splitlines() if not ln.startswith(key + ":")]
    at = lines.index("features:") + 1
    config.write_text("\n".join(lines[:at] + [line] + lines[at:]) + "\n")
    with pytest.raises(ConfigError, match=rf"config\.yaml: .*{names}"):
        read_model_dir(model_dir)


def test_bad_model_group_names_the_file_and_key(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path)
    config = model_dir / "config.yaml"
    text = config.read_text()
    config.write_text(text.replace("model:\n", "model:\n  hiden: 8\n", 1))
    with pytest.raises(ConfigError, match=r"config\.yaml: .*model\.hiden"):
        read_model_dir(model_dir)
