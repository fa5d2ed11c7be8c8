"""Helpers shared by the test files (imported as ``from helpers import ...``; pytest puts tests/ on
the path): composed configs, seeded noise data directories and hand-built model directories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from phonrec.config import CONF_DIR
from phonrec.data.datadir import DataDir
from phonrec.features import CMVN, compute_features, features_from_group, num_frames
from phonrec.model_dir import build_model, write_model_dir
from phonrec.phones import PhoneSet

SR = 16000


def compose_cfg(overrides: list[str]):
    """The training config ``phonrec-train`` would compose from ``overrides``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def noise_overrides(tmp_path: Path, data: Path, extra: list[str] = ()) -> list[str]:
    """A tiny, fast training run on ``data`` (train = dev) into ``tmp_path/exp``."""
    return [
        f"data.train={data}",
        f"data.dev={data}",
        f"exp_dir={tmp_path / 'exp'}",
        "model=small",
        "trainer=tiny",
        "model.hidden=16",
        "model.layers=1",
        "model.dropout=0.0",
        "features.n_mels=20",
        "augment=none",
        "trainer.num_threads=1",
        *extra,
    ]


def make_noise_datadir(root: Path, durations: list[float], sr: int = SR, bad: tuple[str, ...] = ()) -> DataDir:
    """A data directory of seeded noise with made-up phones and alignments (two phones per utterance)."""
    rng = np.random.default_rng(0)
    wavs, text, utt2spk, phones, alignments = {}, {}, {}, {}, {}
    for i, dur in enumerate(durations):
        utt = f"u{i:03d}"
        path = root / "wav" / f"{utt}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        if utt in bad:
            path.write_bytes(b"not audio at all")
        else:
            sf.write(path, (0.1 * rng.standard_normal(int(dur * sr))).astype(np.float32), sr)
        n = num_frames(int(dur * sr))
        wavs[utt], text[utt], utt2spk[utt] = path, "YES" if i % 2 else "NO", f"spk{i % 3}"
        phones[utt] = ["ah", "b"]
        alignments[utt] = ["sil"] * (n // 3) + ["ah"] * (n // 3) + ["b"] * (n - 2 * (n // 3))
    data = DataDir(wavs=wavs, text=text, utt2spk=utt2spk, phones=phones, alignments=alignments)
    data.save(root / "data")
    return DataDir.load(root / "data")


def sine_noise(seconds: float, sr: int = SR, seed: int = 0, start: int = 0) -> np.ndarray:
    """A deterministic sine + noise mix (samples ``start .. start + seconds * sr``)."""
    n = int(round(seconds * sr))
    t = (start + np.arange(n)) / sr
    rng = np.random.default_rng([seed, start])
    tone = 0.3 * np.sin(2 * np.pi * (220 + 80 * np.sin(2 * np.pi * 0.05 * t)) * t)
    return (tone + 0.05 * rng.standard_normal(n)).astype(np.float32)


def make_model_dir(
    root: Path,
    *,
    phones: tuple[str, ...] = ("sil", "ah", "b"),
    ctc: bool = False,
    n_mels: int = 20,
    hidden: int = 8,
    layers: int = 1,
    seed: int = 0,
    short_memory: bool = False,
) -> Path:
    """A complete model directory (config.yaml, model.safetensors, phones.txt, cmvn.json) for a
    tiny randomly initialised BiLSTM, exactly as ``phonrec-train`` exports one.

    ``short_memory``: forget gates biased to -6 and LSTM weights scaled by 0.1, so no gate
    saturates and every output depends on only a few frames around it (far fewer than the 2 s
    of chunk context). A plain random BiLSTM can keep information over hundreds of frames.
    """
    torch.manual_seed(seed)
    cfg = compose_cfg(
        [
            "model=small",
            f"model.hidden={hidden}",
            f"model.layers={layers}",
            "model.dropout=0.0",
            f"features.n_mels={n_mels}",
            "augment=none",
            f"exp_dir={root / 'exp'}",
            *(["divergence=ctc"] if ctc else []),
        ]
    )
    fcfg, _ = features_from_group(OmegaConf.to_container(cfg.features, resolve=True))
    ps = PhoneSet.from_symbols(phones)
    ps = ps.with_blank() if ctc else ps.without_blank()
    model = build_model(cfg, fcfg.dim, len(ps))
    if short_memory:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.startswith("rnns.") and ".weight_" in name:
                    param.mul_(0.1)  # recurrent weights; input weights too, so no gate saturates
                elif name.startswith("rnns.") and ".bias_" in name:
                    param[hidden : 2 * hidden] = -3.0  # PyTorch gate order i, f, g, o: forget bias -6 in all
    cmvn = CMVN.fit([compute_features(torch.from_numpy(sine_noise(20.0, seed=seed)), fcfg)])
    out = root / "model"
    write_model_dir(out, model.state_dict(), cfg, ps, cmvn)
    return out


def run_command(module: str, args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 240):
    """``python -m MODULE ARGS`` as a user would run it (one thread, this checkout's phonrec first on
    the path, no debug switches); returns the ``subprocess.CompletedProcess`` with text output."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    base = {k: v for k, v in os.environ.items() if k not in ("PHONREC_DEBUG", "HYDRA_FULL_ERROR")}
    full_env = {**base, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(repo), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
