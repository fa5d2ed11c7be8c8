"""A small model overfits 20 synthetic (flite) utterances with each divergence, through the real
training loop: aligned -> frame accuracy > 95%, CTC -> greedy PER < 5%, weighted frame
divergence -> every utterance classified correctly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from phonrec.data.datadir import DataDir
from phonrec.data.synth import SynthConfig, build_corpus
from phonrec.train import run
from test_train import compose_cfg

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (apt-get install flite)")


@pytest.fixture(scope="module")
def twenty_utterances(tmp_path_factory) -> Path:
    """20 flite utterances of several voices, as one data directory (train = dev: this is overfitting)."""
    root = tmp_path_factory.mktemp("overfit")
    build_corpus(root / "corpus", SynthConfig(num_utts=26, seed=7, max_words=5), jobs=2, progress=False)
    merged = None
    for split in ("train", "dev", "test"):
        d = DataDir.load(root / "corpus" / split)
        merged = d if merged is None else DataDir(
            wavs={**merged.wavs, **d.wavs}, text={**merged.text, **d.text}, utt2spk={**merged.utt2spk, **d.utt2spk},
            phones={**merged.phones, **d.phones}, alignments={**merged.alignments, **d.alignments})
    merged = merged.subset(merged.utts[:20])
    assert len(merged) == 20
    merged.save(root / "data")
    return root / "data"


def overfit(data: Path, tmp_path: Path, overrides: list[str]) -> dict:
    return run(compose_cfg([
        f"data.train={data}", f"data.dev={data}", f"exp_dir={tmp_path / 'exp'}", "model=small", "model.hidden=128",
        "model.dropout=0.0", "features.specaugment=null", "trainer.warmup_steps=0", "trainer.schedule=constant",
        "trainer.max_frames=1500", "trainer.progress=false", "trainer.num_threads=2", *overrides]))


@pytest.mark.timeout(120)
def test_overfit_aligned(twenty_utterances: Path, tmp_path: Path) -> None:
    metrics = overfit(twenty_utterances, tmp_path, ["divergence=aligned", "trainer.epochs=25", "trainer.lr=0.01"])
    assert metrics["dev_frame_acc"] > 0.95


@pytest.mark.timeout(120)
def test_overfit_ctc(twenty_utterances: Path, tmp_path: Path) -> None:
    metrics = overfit(twenty_utterances, tmp_path, ["divergence=ctc", "trainer.epochs=40", "trainer.lr=0.01"])
    assert metrics["dev_per"] < 0.05


@pytest.mark.timeout(120)
@pytest.mark.parametrize("weights", ["uniform", "last", "linear"])
def test_overfit_weighted_frame(twenty_utterances: Path, tmp_path: Path, weights: str) -> None:
    """Sequence classification: each utterance's transcript is its class (20 classes, one example each)."""
    metrics = overfit(twenty_utterances, tmp_path, ["divergence=frame", f"divergence.weights={weights}",
                                                    "trainer.epochs=20", "trainer.lr=0.01"])
    assert metrics["dev_acc"] == 1.0
