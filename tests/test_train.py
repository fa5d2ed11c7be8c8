"""Training loop: config validation, overfitting each divergence, DDP equivalence, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import compose_cfg, make_noise_datadir, noise_overrides
from safetensors.torch import load_file

from phonrec.config import ConfigError
from phonrec.train import run

REPO = Path(__file__).resolve().parents[1]


def test_unknown_trainer_key_is_named(tmp_path: Path) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.3])
    cfg = compose_cfg(noise_overrides(tmp_path, tmp_path / "data", ["+trainer.learning_rate=0.1"]))
    with pytest.raises(ConfigError, match="trainer.learning_rate"):
        run(0, 1, cfg)


def test_bad_trainer_value_is_named(tmp_path: Path) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.3])
    cfg = compose_cfg(noise_overrides(tmp_path, tmp_path / "data", ["trainer.optimizer=sgdd"]))
    with pytest.raises(ConfigError, match="trainer.optimizer"):
        run(0, 1, cfg)


def test_model_directory_is_complete(tmp_path: Path) -> None:
    make_noise_datadir(tmp_path, [0.4, 0.5, 0.6])
    metrics = run(0, 1, compose_cfg(noise_overrides(tmp_path, tmp_path / "data")))
    model_dir = tmp_path / "exp" / "model"
    assert {p.name for p in model_dir.iterdir()} >= {"config.yaml", "model.safetensors", "phones.txt", "cmvn.json"}
    assert metrics["epoch"] == 2 and 0.0 <= metrics["dev_frame_acc"] <= 1.0
    state = load_file(str(model_dir / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in state.values())


def _equal_length_data(tmp_path: Path) -> Path:
    make_noise_datadir(tmp_path, [0.5] * 16)
    return tmp_path / "data"


@pytest.mark.timeout(300)
def test_ddp_two_processes_match_one_process(tmp_path: Path) -> None:
    """torchrun with 2 CPU ranks: ranks agree exactly, and equal one process on the same global batches."""
    data = _equal_length_data(tmp_path)
    common = [
        f"data.train={data}",
        f"data.dev={data}",
        "model=small",
        "model.hidden=16",
        "model.layers=1",
        "model.dropout=0.0",
        "features.n_mels=20",
        "augment=none",
        "trainer=tiny",
        "trainer.epochs=2",
        "trainer.max_frames=400",
        "trainer.num_threads=1",
        "trainer.lr=0.01",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_port=29517",
            "-m",
            "phonrec.cli.train",
            *common,
            f"exp_dir={tmp_path / 'ddp'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    log_text = (tmp_path / "ddp" / "train.log").read_text()
    assert "max parameter difference to rank 0: 0" in log_text
    single = subprocess.run(
        [sys.executable, "-m", "phonrec.cli.train", *common, f"exp_dir={tmp_path / 'one'}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    a = load_file(str(tmp_path / "ddp" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "one" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    # and training did move the weights (the comparison is not between two untrained models)
    first = torch.load(tmp_path / "one" / "checkpoints" / "epoch-001.pt", weights_only=True)["model"]
    assert any((first[k] - b[k]).abs().max() > 1e-4 for k in b)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("kill_at", ["checkpoint-write", "mid-epoch"])
def test_resume_after_sigkill_matches_uninterrupted(tmp_path: Path, kill_at: str) -> None:
    """SIGKILL while epoch 2's checkpoints are being written, or half-way through epoch 3; resume;
    the checkpoint on disk is never torn and the finished run matches an uninterrupted one."""
    make_noise_datadir(tmp_path, [0.3 + 0.01 * i for i in range(40)])
    data = tmp_path / "data"
    common = [
        f"data.train={data}",
        f"data.dev={data}",
        "model=small",
        "model.hidden=32",
        "model.layers=2",
        "features.n_mels=20",
        "trainer=tiny",
        "trainer.epochs=4",
        "trainer.max_frames=300",
        "trainer.num_threads=1",
        "trainer.progress=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = subprocess.run(
        [sys.executable, "-m", "phonrec.cli.train", *common, f"exp_dir={tmp_path / 'full'}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert full.returncode == 0, full.stderr[-3000:]

    exp = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "phonrec.cli.train", *common, f"exp_dir={exp}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240

    def wait_for(path: Path) -> float:
        while not path.exists():
            assert proc.poll() is None, "training ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.005)
        return time.time()

    t1 = wait_for(exp / "checkpoints" / "epoch-001.pt")
    t2 = wait_for(exp / "checkpoints" / "epoch-002.pt")
    if kill_at == "mid-epoch":
        time.sleep((t2 - t1) / 2)  # an epoch takes about t2 - t1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (exp / "model").exists()  # it really died before finishing
    state = torch.load(exp / "checkpoints" / "last.pt", weights_only=True)  # never torn: written atomically
    assert state["epoch"] in (1, 2)
    resumed = subprocess.run(
        [sys.executable, "-m", "phonrec.cli.train", *common, f"exp_dir={exp}", "trainer.resume=true"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    h_full = json.loads((tmp_path / "full" / "metrics.json").read_text())["history"]
    h_res = json.loads((exp / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in h_res] == [h["epoch"] for h in h_full] == [1, 2, 3, 4]
    for a, b in zip(h_full, h_res):
        assert a["dev_loss"] == pytest.approx(b["dev_loss"], rel=1e-3)


def test_init_from_copies_weights_and_maps_output_rows(tmp_path: Path) -> None:
    """An aligned model directory starts a CTC model: LSTM weights copied, output rows matched by symbol."""
    from phonrec.models.bilstm import BiLSTM
    from phonrec.phones import PhoneSet
    from phonrec.train import init_from_model_dir

    make_noise_datadir(tmp_path, [0.4, 0.5])
    run(0, 1, compose_cfg(noise_overrides(tmp_path, tmp_path / "data")))
    source_dir = tmp_path / "exp" / "model"
    source = load_file(str(source_dir / "model.safetensors"))
    source_phones = PhoneSet.from_file(source_dir / "phones.txt")
    ctc_phones = source_phones.with_blank()
    model = BiLSTM.from_config(20, len(ctc_phones), {"hidden": 16, "layers": 1, "dropout": 0.0})
    blank_row = model.state_dict()["output.weight"][0].clone()
    fresh = init_from_model_dir(model, ctc_phones, source_dir)
    state = model.state_dict()
    assert fresh == []
    for name, value in source.items():
        if not name.startswith("output."):
            assert torch.equal(state[name], value)
    for i, symbol in enumerate(source_phones.symbols):
        assert torch.equal(state["output.weight"][ctc_phones.index(symbol)], source["output.weight"][i])
        assert state["output.bias"][ctc_phones.index(symbol)] == source["output.bias"][i]
    assert torch.equal(state["output.weight"][0], blank_row)  # <blank> keeps its fresh initialisation


def test_init_from_a_packaged_model_name() -> None:
    """``trainer.init_from=en`` starts from the packaged model: its LSTM weights, its phones' rows."""
    from phonrec.models.bilstm import BiLSTM
    from phonrec.phones import PhoneSet
    from phonrec.pretrained import model_path
    from phonrec.train import init_from_model_dir

    en = model_path("en")
    source = load_file(str(en / "model.safetensors"))
    digits = PhoneSet.from_symbols(["<blank>", "w", "ah", "n"])  # a CTC phone set for "one"
    model = BiLSTM.from_config(80, len(digits), {"hidden": 256, "layers": 3, "dropout": 0.2, "stack": 3})
    fresh = init_from_model_dir(model, digits, "en")
    state = model.state_dict()
    assert fresh == []
    en_phones = PhoneSet.from_file(en / "phones.txt")
    for name, value in source.items():
        if not name.startswith("output."):
            assert torch.equal(state[name], value.to(state[name].dtype)), name
    for symbol in ("w", "ah", "n"):
        row = source["output.weight"][en_phones.index(symbol)].to(state["output.weight"].dtype)
        assert torch.equal(state["output.weight"][digits.index(symbol)], row)
