"""A plain (non-editable) install works from anywhere: the Hydra configs ship inside the package.

The wheel is built from a copy of this checkout's package sources (so no ``build/`` folder is
left here, and none left here can leak stale modules into it) and installed with ``pip --target`` into a temporary
folder (no dependencies: the test venv already has them); the commands are then run from a
directory with no ``conf/`` near it, with only the installed copy of phonrec on the path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(wheel, target)``: the built wheel and the folder it was installed into."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    shutil.copytree(REPO / "phonrec", source / "phonrec", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("phonrec-*.whl")
    target = tmp / "site"
    inst = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert inst.returncode == 0, inst.stderr[-3000:]
    return wheel, target


def run_installed(target: Path, cwd: Path, *command: str) -> subprocess.CompletedProcess:
    """Run an installed console script with only the installed phonrec importable."""
    env = {**os.environ, "PYTHONPATH": str(target), "HYDRA_FULL_ERROR": "1"}
    return subprocess.run(
        [str(target / "bin" / command[0]), *command[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_wheel_ships_every_config(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "phonrec" / "conf").rglob("*.yaml")}
    assert "phonrec/conf/config.yaml" in shipped and "phonrec/conf/decode.yaml" in shipped
    assert shipped <= names, f"missing from the wheel: {sorted(shipped - names)}"


@pytest.mark.parametrize(
    ("command", "group"),
    [("phonrec-train", "divergence: aligned, ctc, frame"), ("phonrec-decode", "decoder: beam, greedy, lexicon")],
)
def test_installed_command_help_from_another_directory(
    installed: tuple[Path, Path], tmp_path: Path, command: str, group: str
) -> None:
    """``--help`` lists the config groups, which Hydra can only do when it finds the shipped configs."""
    _, target = installed
    proc = run_installed(target, tmp_path, command, "--help")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "== Configuration groups ==" in proc.stdout and group in proc.stdout, proc.stdout


def test_installed_train_composes_its_config(installed: tuple[Path, Path], tmp_path: Path) -> None:
    """``phonrec-train --cfg job data=synth`` prints the composed config of the installed package."""
    _, target = installed
    proc = run_installed(target, tmp_path, "phonrec-train", "--cfg", "job", "data=synth", "divergence=ctc")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "name: synth" in proc.stdout and "name: ctc" in proc.stdout and "hidden: 256" in proc.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import phonrec, phonrec.config as c; print(phonrec.__file__); print(c.CONF_DIR)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    module_file, conf_dir = probe.stdout.split()
    assert Path(module_file).is_relative_to(target) and Path(conf_dir).is_relative_to(target)
    assert not (tmp_path / "conf").exists()


def test_wheel_ships_the_packaged_models(installed: tuple[Path, Path]) -> None:
    """Every file of ``phonrec/pretrained/`` (the module, and the model files when a model is packaged)."""
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "phonrec" / "pretrained").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "phonrec/pretrained/__init__.py" in shipped
    assert shipped <= names, f"missing from the wheel: {sorted(shipped - names)}"


def test_installed_transcribe_uses_the_packaged_model(installed: tuple[Path, Path], tmp_path: Path) -> None:
    """``phonrec-transcribe a.wav`` (no model given) from another directory reads the installed ``en``."""
    from phonrec.pretrained import PACKAGE_DIR, is_packaged

    if not is_packaged("en"):
        pytest.skip(f"{PACKAGE_DIR / 'en'} has no packaged model (see docs/pretrained.md)")
    import json

    import numpy as np
    import soundfile as sf

    _, target = installed
    sf.write(tmp_path / "a.wav", (0.1 * np.sin(np.arange(16000) * 0.05)).astype(np.float32), 16000)
    proc = run_installed(target, tmp_path, "phonrec-transcribe", "a.wav", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[0])["file"] == "a.wav"
    probe = subprocess.run(
        [sys.executable, "-c", "from phonrec.pretrained import model_path; print(model_path('en'))"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(probe.stdout.strip()).is_relative_to(target)
