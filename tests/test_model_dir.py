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


def test_global_cmvn_without_cmvn_json_is_refused(tmp_path: Path) -> None:
    """Without the statistics every frame would be fed unnormalised (every file came out as sil)."""
    model_dir = make_model_dir(tmp_path)
    (model_dir / "cmvn.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"features\.cmvn=global but cmvn\.json .* is missing"):
        read_model_dir(model_dir)


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path)
    (model_dir / "config.yaml").write_text("features: [unclosed\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: not valid YAML"):
        read_model_dir(model_dir)


def test_empty_phones_txt_names_the_file(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path)
    (model_dir / "phones.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"phones\.txt"):
        read_model_dir(model_dir)


def test_decoding_defaults_round_trip(tmp_path: Path) -> None:
    from phonrec.lm import PhoneBigram
    from phonrec.model_dir import DecodingDefaults, write_decoding_defaults

    model_dir = make_model_dir(tmp_path)
    assert read_model_dir(model_dir).decoding == DecodingDefaults("greedy", None)  # no decoding.yaml
    assert read_model_dir(model_dir).phone_bigram is None
    bigram = PhoneBigram.fit([[1, 2, 1], [2, 2]], num_phones=3)
    lexicon = tmp_path / "lex.txt"
    lexicon.write_text("AB ah b\n")
    write_decoding_defaults(model_dir, decoder="beam", min_duration_ms=30, phone_bigram=bigram, lexicon=lexicon)
    assert (model_dir / "decoding.yaml").read_text() == "decoder: beam\nmin_duration_ms: 30.0\nboundary_shift_ms: 0.0\n"
    md = read_model_dir(model_dir)
    assert md.decoding == DecodingDefaults("beam", 30.0)
    assert md.phone_bigram is not None and (md.phone_bigram.log_probs == bigram.log_probs).all()
    assert md.lexicon is not None and "AB" in md.lexicon  # copied in: the directory is self-contained


def test_boundary_shift_is_kept_by_later_defaults_and_validated(tmp_path: Path) -> None:
    """``set_boundary_shift`` changes only the shift; a later ``write_decoding_defaults`` (a recipe's
    record_defaults) keeps it unless told otherwise; an absurd shift is refused."""
    from phonrec.model_dir import DecodingDefaults, set_boundary_shift, write_decoding_defaults

    model_dir = make_model_dir(tmp_path)
    write_decoding_defaults(model_dir, decoder="beam", min_duration_ms=30)
    assert set_boundary_shift(model_dir, -16.64) == DecodingDefaults("beam", 30.0, -16.6)
    write_decoding_defaults(model_dir, decoder="greedy")
    assert read_model_dir(model_dir).decoding == DecodingDefaults("greedy", None, -16.6)
    write_decoding_defaults(model_dir, decoder="greedy", boundary_shift_ms=0)
    assert read_model_dir(model_dir).decoding.boundary_shift_ms == 0.0
    with pytest.raises(ValueError, match=r"boundary_shift_ms must be within \+-100"):
        set_boundary_shift(model_dir, 250)
    (model_dir / "decoding.yaml").write_text("decoder: greedy\nboundary_shift_ms: -300\n")
    with pytest.raises(ConfigError, match=r"decoding\.yaml: .*boundary_shift_ms must be within"):
        read_model_dir(model_dir)


def test_decoding_defaults_are_validated_naming_the_file(tmp_path: Path) -> None:
    from phonrec.lm import PhoneBigram
    from phonrec.model_dir import write_decoding_defaults

    model_dir = make_model_dir(tmp_path)
    with pytest.raises(ValueError, match="decoder 'lexicon' needs a lexicon"):
        write_decoding_defaults(model_dir, decoder="lexicon")
    with pytest.raises(ValueError, match="phone bigram has 4 phones"):
        write_decoding_defaults(model_dir, phone_bigram=PhoneBigram.fit([[1]], num_phones=4))
    (model_dir / "decoding.yaml").write_text("decoder: beam\nmin_duration: 3\n")
    with pytest.raises(ConfigError, match=r"decoding\.yaml: unknown key\(s\) decoding\.min_duration"):
        read_model_dir(model_dir)
    (model_dir / "decoding.yaml").write_text("decoder: viterbi\n")
    with pytest.raises(ConfigError, match=r"decoding\.yaml: .*decoder must be one of greedy, beam, lexicon"):
        read_model_dir(model_dir)
