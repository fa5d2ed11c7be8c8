"""The training command's contract (issue 15): an earlier run is never replaced silently, a sweep
gives every job its own directory, and a user's mistake is answered in a few lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers import compose_cfg, make_model_dir, make_noise_datadir, noise_overrides, run_command

from phonrec.train import RunDirInUse, prepare_features, run

TRAIN = "phonrec.cli.train"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def history_epochs(exp: Path) -> list[int]:
    return [h["epoch"] for h in json.loads((exp / "metrics.json").read_text())["history"]]


# --- training into an existing run ----------------------------------------------------------------


def test_command_refuses_a_directory_holding_a_model_and_touches_nothing(tmp_path: Path) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.3])
    exp = tmp_path / "exp"
    make_model_dir(exp)  # exp/model/model.safetensors, as an earlier run exports it
    (exp / "config.yaml").write_text("earlier: run\n")
    (exp / "metrics.json").write_text('{"final": {}}')
    earlier_record = exp / ".hydra" / "2020-01-01_00-00-00-000000" / "overrides.yaml"
    earlier_record.parent.mkdir(parents=True)
    earlier_record.write_text("- model.hidden=8\n")
    before = snapshot(exp)

    proc = run_command(TRAIN, noise_overrides(tmp_path, tmp_path / "data"), cwd=tmp_path)

    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert f"{exp} already holds a run ({exp / 'model' / 'model.safetensors'}" in proc.stderr
    assert "trainer.resume=true to continue it" in proc.stderr
    assert "trainer.overwrite=true to replace it" in proc.stderr
    after = snapshot(exp)
    assert {name: after.get(name) for name in before} == before  # the old model's bytes, its config, its record
    assert not (exp / "checkpoints").exists() and not (exp / "cache").exists()


def test_checkpoints_of_a_killed_run_are_refused_too(tmp_path: Path) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.3])
    ckpt = tmp_path / "exp" / "checkpoints" / "epoch-001.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"an earlier run's weights")
    with pytest.raises(RunDirInUse, match=r"already holds a run \(.*epoch-001\.pt\)"):
        run(0, 1, compose_cfg(noise_overrides(tmp_path, tmp_path / "data")))
    assert ckpt.read_bytes() == b"an earlier run's weights"


def test_resume_without_a_last_checkpoint_is_refused(tmp_path: Path) -> None:
    """``trainer.resume=true`` with nothing to continue would start afresh and replace the model."""
    make_noise_datadir(tmp_path, [0.3, 0.3])
    weights = make_model_dir(tmp_path / "exp") / "model.safetensors"
    before = weights.read_bytes()
    cfg = compose_cfg(noise_overrides(tmp_path, tmp_path / "data", ["trainer.resume=true"]))
    with pytest.raises(RunDirInUse, match=r"trainer\.resume=true, but there is no .*last\.pt.*trainer\.overwrite=true"):
        run(0, 1, cfg)
    assert weights.read_bytes() == before


def test_resume_continues_an_earlier_run(tmp_path: Path) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.35])
    run(0, 1, compose_cfg(noise_overrides(tmp_path, tmp_path / "data", ["trainer.epochs=1"])))
    assert history_epochs(tmp_path / "exp") == [1]
    run(0, 1, compose_cfg(noise_overrides(tmp_path, tmp_path / "data", ["trainer.epochs=2", "trainer.resume=true"])))
    assert history_epochs(tmp_path / "exp") == [1, 2]  # epoch 1 kept, epoch 2 trained on top
    assert (tmp_path / "exp" / "checkpoints" / "epoch-001.pt").is_file()


def test_overwrite_replaces_an_earlier_run(tmp_path: Path) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.35])
    exp = tmp_path / "exp"
    run(0, 1, compose_cfg(noise_overrides(tmp_path, tmp_path / "data", ["trainer.epochs=2"])))
    assert (exp / "checkpoints" / "epoch-002.pt").is_file()
    old_weights = (exp / "model" / "model.safetensors").read_bytes()
    overrides = ["trainer.epochs=1", "model.hidden=12", "trainer.overwrite=true"]
    run(0, 1, compose_cfg(noise_overrides(tmp_path, tmp_path / "data", overrides)))
    assert history_epochs(exp) == [1]
    assert not (exp / "checkpoints" / "epoch-002.pt").exists()  # never averaged into the new model
    assert yaml.safe_load((exp / "model" / "config.yaml").read_text())["model"]["hidden"] == 12
    assert (exp / "model" / "model.safetensors").read_bytes() != old_weights


# --- a Hydra sweep ----------------------------------------------------------------------------------


def test_sweep_gives_every_job_its_own_directory(tmp_path: Path) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.3])
    sweep = tmp_path / "sweep"
    args = [a for a in noise_overrides(tmp_path, tmp_path / "data") if not a.startswith(("model.hidden=", "exp_dir="))]
    proc = run_command(TRAIN, ["-m", *args, "trainer.epochs=1", "model.hidden=8,12", f"exp_dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (sweep / "model").exists()  # nothing written to the shared exp_dir itself
    for hidden in (8, 12):
        (job,) = [d for d in sweep.iterdir() if f"model.hidden={hidden}," in d.name + ","]
        assert "exp_dir" not in job.name and "data.train" not in job.name
        assert (job / "model" / "model.safetensors").is_file()
        config = yaml.safe_load((job / "config.yaml").read_text())
        assert config["model"]["hidden"] == hidden and config["exp_dir"] == str(job)
        assert yaml.safe_load((job / "model" / "config.yaml").read_text())["model"]["hidden"] == hidden


# --- a user's mistake, answered in a few lines ------------------------------------------------------


@pytest.mark.parametrize(
    "override, names, max_lines",
    [
        ("data.train=null", "data.train=data/synth/train", 2),  # a missing required key, with an example
        ("data.train=no/such/dir", "data.train=no/such/dir: no such directory", 2),
        ("trainer.lr=-1", "trainer.lr must be positive", 2),
        ("+trainer.learning_rate=0.1", "unknown key(s) trainer.learning_rate", 2),
        # Hydra's own answers, before the task: short unless HYDRA_FULL_ERROR=1
        ("model=bilstmm", "Could not find 'model/bilstmm'", 12),
        ("trainer.learning_rate=0.1", "Could not override 'trainer.learning_rate'", 8),
    ],
)
def test_a_mistake_is_named_in_a_few_lines(tmp_path: Path, override: str, names: str, max_lines: int) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.3])
    proc = run_command(TRAIN, noise_overrides(tmp_path, tmp_path / "data", [override]), cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert names in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= max_lines, proc.stderr
    assert not (tmp_path / "exp" / "model").exists()


def test_features_command_names_a_missing_data_directory(tmp_path: Path) -> None:
    proc = run_command(TRAIN, ["features", "data.train=no/such/dir", f"exp_dir={tmp_path / 'f'}"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "phonrec-train features: error: data.train=no/such/dir: no such directory" in proc.stderr


@pytest.mark.parametrize("cmvn", ["global", "speaker", "utterance"])
def test_features_stage_writes_global_statistics_only_for_global_cmvn(tmp_path: Path, cmvn: str) -> None:
    """``phonrec-train features`` caches every split; ``cmvn.json`` is written only when the models
    will use global statistics (per-speaker and per-utterance models never read it)."""
    data = tmp_path / "data"
    make_noise_datadir(tmp_path, [0.3, 0.4, 0.5])
    extra = [f"features.cmvn={cmvn}", f"data.cache_dir={tmp_path / 'cache'}", "data.test=null"]
    cfg = compose_cfg(noise_overrides(tmp_path, data, extra))
    prepare_features(cfg)
    assert any((tmp_path / "cache").iterdir())
    assert (tmp_path / "exp" / "cmvn.json").exists() == (cmvn == "global")
