"""Untrusted files: model directories, checkpoints, config files and wav.scp never run code.

A malicious pickle (an object whose ``__reduce__`` creates a marker file when unpickled) is
planted where phonrec expects weights; every test checks that loading is refused with an
error and that the marker file was never created.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from helpers import compose_cfg, make_model_dir, make_noise_datadir, noise_overrides

from phonrec.config import ConfigError
from phonrec.data.datadir import DataDir, DataDirError, resolve_wav_path
from phonrec.data.dataset import FeatureCache
from phonrec.features import FeatureConfig
from phonrec.train import run
from phonrec.transcribe import Transcriber


class Payload:
    """Unpickling this calls ``open(marker, "w")``: a file appears if the pickle is executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _plant(path: Path, marker: Path, *, torch_format: bool) -> None:
    obj = {"model": {"rnns.0.weight_ih_l0": Payload(marker)}, "epoch": 1}
    if torch_format:
        torch.save(obj, path)  # a zip checkpoint, as torch.save writes them (saving runs nothing)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=2))
    assert not marker.exists()


def test_payload_really_runs_when_unpickled(tmp_path: Path) -> None:
    """The control: loading the planted file the unsafe way does create the marker."""
    marker = tmp_path / "MARKER"
    _plant(tmp_path / "evil.pt", marker, torch_format=True)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("torch_format", [True, False])
def test_pickle_as_model_safetensors_is_refused(tmp_path: Path, torch_format: bool) -> None:
    model_dir = make_model_dir(tmp_path)
    marker = tmp_path / "MARKER"
    _plant(model_dir / "model.safetensors", marker, torch_format=torch_format)
    with pytest.raises(ValueError, match=r"model\.safetensors: not a valid safetensors file"):
        Transcriber.from_pretrained(model_dir)
    assert not marker.exists()


def test_pickle_as_resume_checkpoint_is_refused(tmp_path: Path) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.4])
    cfg = compose_cfg(noise_overrides(tmp_path, tmp_path / "data", ["trainer.resume=true", "trainer.epochs=1"]))
    ckpt_dir = tmp_path / "exp" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    marker = tmp_path / "MARKER"
    _plant(ckpt_dir / "last.pt", marker, torch_format=True)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        run(0, 1, cfg)
    assert not marker.exists()
    assert not (tmp_path / "exp" / "model").exists()  # nothing was trained on top of it


def test_refused_checkpoint_error_names_the_file(tmp_path: Path) -> None:
    from phonrec.checkpoint import load_checkpoint

    _plant(tmp_path / "last.pt", tmp_path / "MARKER", torch_format=True)
    with pytest.raises(Exception, match=r"last\.pt"):
        load_checkpoint(tmp_path / "last.pt")


def test_yaml_python_tags_in_model_config_are_refused(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path)
    marker = tmp_path / "MARKER"
    config = model_dir / "config.yaml"
    config.write_text(f"evil: !!python/object/apply:builtins.open ['{marker}', 'w']\n" + config.read_text())
    with pytest.raises(Exception, match="python/object/apply"):
        Transcriber.from_pretrained(model_dir)
    assert not marker.exists()


def test_weights_of_another_shape_are_refused(tmp_path: Path) -> None:
    good = make_model_dir(tmp_path / "a", phones=("sil", "ah", "b"))
    other = make_model_dir(tmp_path / "b", phones=("sil", "ah", "b", "k"))
    (good / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(
        ValueError, match=r"(?s)model\.safetensors: weights do not fit .*size mismatch for output\.weight"
    ):
        Transcriber.from_pretrained(good)


@pytest.mark.parametrize("missing", ["config.yaml", "model.safetensors", "phones.txt"])
def test_incomplete_model_directory_names_the_missing_file(tmp_path: Path, missing: str) -> None:
    model_dir = make_model_dir(tmp_path)
    (model_dir / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"not a phonrec model directory \\(missing {missing}\\)"):
        Transcriber.from_pretrained(model_dir)


# --- wav.scp -------------------------------------------------------------------------------------


def test_wav_scp_paths_resolve_against_the_data_directory(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "corpus" / "data"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(f"a audio/a.wav\nb ../b.flac\nc {tmp_path / 'abs.wav'}\n")
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    loaded = DataDir.load(data)
    assert loaded.wavs == {"a": data / "audio" / "a.wav", "b": data / ".." / "b.flac", "c": tmp_path / "abs.wav"}
    assert loaded.wavs["b"].resolve() == (tmp_path / "corpus" / "b.flac")


@pytest.mark.parametrize("entry", ["sox a.wav -t wav - |", "| cat a.wav", "touch MARKER |"])
def test_piped_wav_scp_commands_are_refused(tmp_path: Path, entry: str, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"utt1 {entry}\n")
    with pytest.raises(DataDirError, match=r"wav\.scp \(utt1\): piped commands are not supported"):
        DataDir.load(data)
    with pytest.raises(DataDirError, match="piped"):
        resolve_wav_path(entry, data, source="x")
    assert not (tmp_path / "MARKER").exists() and not (data / "MARKER").exists()


def test_wav_scp_entry_naming_a_command_is_just_a_missing_file(tmp_path: Path, caplog) -> None:
    """Without a pipe the value is a file name, never a command: it is reported as unreadable."""
    make_noise_datadir(tmp_path, [0.3])
    data_dir = tmp_path / "data"
    scp = data_dir / "wav.scp"
    scp.write_text(scp.read_text() + "u999 touch MARKER\n")
    (data_dir / "utt2spk").write_text((data_dir / "utt2spk").read_text() + "u999 spk0\n")
    cache = FeatureCache.build(DataDir.load(data_dir), FeatureConfig(n_mels=20), tmp_path / "cache", progress=False)
    assert "u999" in cache.bad and "no such file" in cache.bad["u999"]
    assert not (tmp_path / "MARKER").exists() and not (data_dir / "MARKER").exists()


# --- config values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, names",
    [
        ("+features.n_mel=40", "features.n_mel"),
        ("+augment.specaugment.freq_mask=1", "augment.specaugment"),
        ("+features.specaugment.freq_masks=1", "augment.specaugment"),
        ("augment.copies=-1", "augment.copies"),
        ("augment.speed_factors=[0.9,1.1]", "augment.copies"),
        ("features.n_mels=abc", "n_mels"),
        ("features.hop_ms=fast", "hop_ms"),
        ("features.cmvn=sometimes", "features.cmvn"),
        ("+model.hiden=8", "hiden"),
        ("model.hidden=abc", "hidden"),
        ("model.dropout=1.5", "dropout"),
        ("trainer.optimizer=sgd", "trainer.optimizer"),
        ("trainer.nonfinite=ignore", "trainer.nonfinite"),
        ("trainer.lr=-1", "trainer.lr"),
        ("divergence.name=mse", "divergence.name"),
        ("+divergence.modes=dense", "divergence.modes"),
        ("divergence.mode=dens", "divergence"),
        ("divergence.label_smoothing=abc", "divergence.label_smoothing"),
    ],
)
def test_bad_config_values_name_the_key(tmp_path: Path, override: str, names: str) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.3])
    cfg = compose_cfg(noise_overrides(tmp_path, tmp_path / "data", [override]))
    with pytest.raises(ValueError, match=names.replace(".", r"\.")):
        run(0, 1, cfg)
    assert not (tmp_path / "exp" / "model").exists()


@pytest.mark.parametrize(
    "override, names",
    [
        ("trainer.epochs=abc", "trainer.epochs"),
        ("trainer.lr=fast", "trainer.lr"),
        ("trainer.resume=maybe", "trainer.resume"),
        ("trainer.patience=x", "trainer.patience"),
        ("trainer.grad_clip=x", "trainer.grad_clip"),
    ],
)
def test_wrongly_typed_trainer_values_name_the_key(tmp_path: Path, override: str, names: str) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.3])
    cfg = compose_cfg(
        noise_overrides(
            tmp_path,
            tmp_path / "data",
            [override, "trainer.epochs=1"] if not override.startswith("trainer.epochs") else [override],
        )
    )
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        run(0, 1, cfg)
