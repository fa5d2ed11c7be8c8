"""The product end to end on 20 synthetic (flite) utterances.

A small model overfits them with each divergence through the real training loop (aligned:
frame accuracy > 95%; CTC: greedy PER < 5%; weighted frame divergence: every utterance
classified). The trained model directories then serve the downstream tests: phonrec-decode
(greedy, phone beam, lexicon) with its report, forced alignment of a whole data directory,
boundary accuracy of forced alignment on a flite utterance against flite's exact timings,
and the Transcriber API / phonrec-transcribe command.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import yaml
from helpers import compose_cfg
from omegaconf import OmegaConf

from phonrec.cli.train import train as run
from phonrec.config import CONF_DIR
from phonrec.data.datadir import DataDir
from phonrec.data.synth import SynthConfig, build_corpus
from phonrec.metrics import ErrorCounts, edit_distance
from phonrec.phones import fold_for_scoring

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (apt-get install flite)")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """26 flite utterances; ``data`` holds 20 of them as one directory (train = dev: overfitting)."""
    root = tmp_path_factory.mktemp("overfit")
    build_corpus(root / "corpus", SynthConfig(num_utts=26, seed=7, max_words=5), jobs=2, progress=False)
    merged = None
    for split in ("train", "dev", "test"):
        d = DataDir.load(root / "corpus" / split)
        merged = (
            d
            if merged is None
            else DataDir(
                wavs={**merged.wavs, **d.wavs},
                text={**merged.text, **d.text},
                utt2spk={**merged.utt2spk, **d.utt2spk},
                phones={**merged.phones, **d.phones},
                alignments={**merged.alignments, **d.alignments},
            )
        )
    merged.subset(merged.utts[:20]).save(root / "data")
    merged.subset(merged.utts[20:]).save(root / "heldout")
    return root


def overfit(data: Path, exp: Path, overrides: list[str]) -> dict:
    return run(
        compose_cfg(
            [
                f"data.train={data}",
                f"data.dev={data}",
                f"exp_dir={exp}",
                "model=small",
                "model.hidden=128",
                "model.dropout=0.0",
                "augment=none",
                "trainer.warmup_steps=0",
                "trainer.schedule=constant",
                "trainer.progress=false",
                "trainer.num_threads=2",
                *overrides,
            ]
        )
    )


@pytest.fixture(scope="module")
def aligned_model(corpus: Path) -> tuple[Path, dict]:
    exp = corpus / "exp-aligned"
    metrics = overfit(
        corpus / "data", exp, ["divergence=aligned", "trainer.epochs=25", "trainer.lr=0.01", "trainer.max_frames=1500"]
    )
    return exp / "model", metrics


@pytest.fixture(scope="module")
def ctc_model(corpus: Path) -> tuple[Path, dict]:
    exp = corpus / "exp-ctc"
    # small batches (many steps) and a narrow model leave CTC's all-blank plateau soonest
    metrics = overfit(
        corpus / "data",
        exp,
        ["divergence=ctc", "model.hidden=64", "trainer.epochs=100", "trainer.lr=0.01", "trainer.max_frames=300"],
    )
    return exp / "model", metrics


def test_overfit_aligned(aligned_model) -> None:
    assert aligned_model[1]["dev_frame_acc"] > 0.95


def test_overfit_ctc(ctc_model) -> None:
    assert ctc_model[1]["dev_per"] < 0.05


@pytest.mark.parametrize("weights", ["uniform", "last", "linear"])
def test_overfit_weighted_frame(corpus: Path, weights: str) -> None:
    """Sequence classification: each utterance's transcript is its class (20 classes, one example each)."""
    metrics = overfit(
        corpus / "data",
        corpus / f"exp-frame-{weights}",
        [
            "divergence=frame",
            f"divergence.weights={weights}",
            "trainer.epochs=60",
            "trainer.lr=0.01",
            "trainer.max_frames=600",
        ],
    )
    assert metrics["dev_acc"] == 1.0


def decode(model_dir: Path, data: Path, decoder: str, out: Path, extra: list[str] = ()) -> dict:
    from phonrec.cli.decode import run as decode_run

    cfg = OmegaConf.create(
        {
            "model_dir": str(model_dir),
            "data_dir": str(data),
            "out_dir": str(out),
            "jobs": 1,
            "batch_size": 8,
            "num_threads": 1,
            "device": "cpu",
            "decoder": OmegaConf.load(CONF_DIR / "decoder" / f"{decoder}.yaml"),
        }
    )
    for item in extra:
        key, value = item.split("=", 1)
        OmegaConf.update(cfg, key, yaml.safe_load(value))  # typed as Hydra types a command-line override
    return decode_run(cfg)


@pytest.mark.parametrize("decoder", ["greedy", "beam", "lexicon"])
def test_decode_cli_on_training_data(ctc_model, corpus: Path, decoder: str, tmp_path: Path) -> None:
    """phonrec-decode writes Kaldi hypotheses, spans and an sclite-like report; on the data the model
    overfits, every decoder gets the phones (and the lexicon decoder the words) almost right."""
    extra = {
        "beam": [f"decoder.train_data={corpus / 'data'}"],
        "lexicon": [f"decoder.lexicon={corpus / 'corpus' / 'lexicon.txt'}"],
    }.get(decoder, [])
    summary = decode(ctc_model[0], corpus / "data", decoder, tmp_path, extra)
    hyp = dict(line.split(maxsplit=1) for line in (tmp_path / "hyp.txt").read_text().splitlines())
    assert set(hyp) == set(DataDir.load(corpus / "data").utts)
    assert summary["phones"]["rate"] < 0.10
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["phones"]["reference_length"] > 100
    # report.json's counts are the per-utterance edit distances of the folded phones, summed
    data = DataDir.load(corpus / "data")
    recomputed = ErrorCounts.sum(
        edit_distance(fold_for_scoring(data.phones[u]), fold_for_scoring(h.split())) for u, h in hyp.items()
    )
    assert report["phones"] == asdict(recomputed) | {"rate": recomputed.rate}
    text = (tmp_path / "report.txt").read_text()
    assert "# phones" in text and f"%PER {100 * report['phones']['rate']:.2f} [ " in text
    assert report["unscored"] == 0 and "nothing to score" not in text and "not scored" not in text
    spans = (tmp_path / "spans.txt").read_text().split("\n")[0].split()
    assert len(spans) == 4 and float(spans[2]) < float(spans[3])
    if decoder == "lexicon":
        assert summary["words"]["rate"] < 0.10
        assert f"%WER {100 * report['words']['rate']:.2f} [ " in text
        lexicon_words = {line.split()[0] for line in (corpus / "corpus" / "lexicon.txt").read_text().splitlines()}
        for line in (tmp_path / "words.txt").read_text().splitlines():
            assert set(line.split()[1:]) <= lexicon_words


def test_decode_cli_min_duration_in_ms(aligned_model, ctc_model, corpus: Path, tmp_path: Path) -> None:
    """``decoder.min_duration_ms`` becomes model frames for frame-level models (30 ms = 3 frames of
    10 ms) and is ignored for CTC, whose blank absorbs flicker."""
    from phonrec.decode.config import GreedyConfig, decoder_config_from, resolve_min_duration

    assert resolve_min_duration(GreedyConfig(min_duration=1, min_duration_ms=30), 30.0, True).min_duration == 1
    assert resolve_min_duration(GreedyConfig(min_duration=1, min_duration_ms=50), 10.0, True).min_duration == 5
    assert resolve_min_duration(GreedyConfig(min_duration=1, min_duration_ms=30), 10.0, False) == GreedyConfig()
    with pytest.raises(ValueError, match="min_duration_ms"):
        decoder_config_from({"name": "greedy", "min_duration_ms": 0})
    frame = decode(aligned_model[0], corpus / "data", "greedy", tmp_path / "frame", ["decoder.min_duration_ms=30"])
    assert frame["decoder"]["min_duration"] == 3 and frame["decoder"]["min_duration_ms"] is None
    ctc = decode(ctc_model[0], corpus / "data", "greedy", tmp_path / "ctc", ["decoder.min_duration_ms=30"])
    assert ctc["decoder"]["min_duration"] == 1 and ctc["phones"]["rate"] < 0.10


@pytest.mark.parametrize("decoder", ["greedy", "beam", "lexicon"])
def test_decoder_configs_match_the_yaml_files(decoder: str) -> None:
    """Each conf/decoder/*.yaml builds its dataclass, whose defaults are the file's values, and every
    field but the files the command reads is a keyword argument of the search it configures."""
    import inspect

    from phonrec.decode.beam import phone_beam_search
    from phonrec.decode.config import DECODER_CONFIGS, decoder_config_from
    from phonrec.decode.greedy import greedy
    from phonrec.decode.lexicon import LexiconDecoder

    values = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "decoder" / f"{decoder}.yaml"))
    cfg = decoder_config_from(values)
    assert type(cfg) is DECODER_CONFIGS[decoder] and asdict(cfg) == asdict(DECODER_CONFIGS[decoder]())
    assert asdict(cfg) == values
    search = {"greedy": greedy, "beam": phone_beam_search, "lexicon": LexiconDecoder}[decoder]
    files = {"name", "min_duration_ms", "phone_lm", "train_data", "lexicon", "lm"}
    assert set(values) - files <= set(inspect.signature(search).parameters)


def test_decoder_config_typo_fails_naming_the_key(tmp_path: Path) -> None:
    """A mistyped decoder key fails with a ConfigError naming it, before any file is read."""
    from phonrec.config import ConfigError
    from phonrec.decode.config import decoder_config_from

    with pytest.raises(ConfigError, match=r"decoder\.beamm"):
        decoder_config_from({"name": "beam", "beamm": 3})
    with pytest.raises(ConfigError, match=r"decoder\.lm_weight must be of type"):
        decoder_config_from({"name": "lexicon", "lm_weight": "high"})
    with pytest.raises(ConfigError, match=r"decoder\.name must be one of greedy, beam, lexicon, got 'beem'"):
        decoder_config_from({"name": "beem"})
    with pytest.raises(ConfigError, match=r"decoder\.beamm"):
        decode(tmp_path / "no-model", tmp_path / "no-data", "beam", tmp_path / "out", ["decoder.beamm=3"])
    assert not (tmp_path / "out").exists()


def test_frame_accuracy_of_stacked_model_counts_feature_frames() -> None:
    """A model frame of a stacked model (3 feature frames) stands for 3 reference labels."""
    from types import SimpleNamespace

    from phonrec.cli.decode import frame_accuracy_of
    from phonrec.phones import PhoneSet

    ps = PhoneSet.from_symbols(["sil", "aa", "b"])
    lp = torch.log(torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]))  # model frames: aa, b
    data = SimpleNamespace(alignments={"u": ["aa", "aa", "aa", "b", "b", "sil"]})
    assert frame_accuracy_of(data, {"u": lp}, ps, frame_factor=3) == pytest.approx(5 / 6)
    # read as 10-ms frames the two sequences do not fit: an error naming the utterance, not a wrong rate
    with pytest.raises(ValueError, match="u: 6 reference frames but 2 hypothesis frames"):
        frame_accuracy_of(data, {"u": lp}, ps, frame_factor=1)
    assert frame_accuracy_of(SimpleNamespace(alignments={"u": []}), {"u": lp}, ps, frame_factor=3) is None


def test_align_datadir_with_ctc_model(ctc_model, corpus: Path, tmp_path: Path) -> None:
    """Forced alignment of a whole directory: every utterance gets one label per frame, and the labels'
    phone runs (silence dropped) spell the transcript."""
    from phonrec.cli.align import align_datadir
    from phonrec.features import num_frames

    counts = align_datadir(ctc_model[0], corpus / "data", tmp_path / "aligned", progress=False)
    assert counts == {"aligned": 20, "skipped": 0}
    out = DataDir.load(tmp_path / "aligned")
    import soundfile as sf

    for utt in out.utts:
        assert len(out.alignments[utt]) == num_frames(sf.info(str(out.wavs[utt])).frames)
        runs = [
            p for i, p in enumerate(out.alignments[utt]) if p != "sil" and (i == 0 or out.alignments[utt][i - 1] != p)
        ]
        expected = [p for i, p in enumerate(out.phones[utt]) if i == 0 or out.phones[utt][i - 1] != p]
        assert runs == expected


def test_align_datadir_with_subsampled_model(corpus: Path, tmp_path: Path) -> None:
    """A model with 2x frame subsampling aligns at its own rate; the labels come back at the feature
    rate (each one repeated twice), still one per feature frame and spelling the transcript."""
    import soundfile as sf

    from phonrec.cli.align import align_datadir
    from phonrec.features import num_frames

    overfit(corpus / "data", tmp_path / "exp", ["divergence=ctc", "model.subsample=2", "trainer.epochs=1"])
    counts = align_datadir(tmp_path / "exp" / "model", corpus / "data", tmp_path / "aligned", progress=False)
    assert counts == {"aligned": 20, "skipped": 0}
    out = DataDir.load(tmp_path / "aligned")
    for utt in out.utts:
        labels = out.alignments[utt]
        assert len(labels) == num_frames(sf.info(str(out.wavs[utt])).frames)
        assert all(labels[i] == labels[i + 1] for i in range(0, len(labels) - 1, 2))
        runs = [p for i, p in enumerate(labels) if p != "sil" and (i == 0 or labels[i - 1] != p)]
        assert runs == [p for i, p in enumerate(out.phones[utt]) if i == 0 or out.phones[utt][i - 1] != p]


def boundary_scores(model_dir: Path, data: DataDir) -> tuple[float, float, int]:
    """Forced-alignment boundary accuracy (20 ms) of ``data`` against its exact flite timings, and that
    of a baseline that knows the same phone string and the reference silence edges and spreads the
    phones evenly between them. Returns ``(accuracy, baseline, boundaries)``."""
    from phonrec.align import align_frames
    from phonrec.audio import load_audio
    from phonrec.decode.greedy import runs_to_spans
    from phonrec.metrics import boundary_accuracy
    from phonrec.transcribe import Transcriber

    tr = Transcriber.from_pretrained(model_dir)
    ps = tr.phone_set
    hits = baseline_hits = total = 0.0
    for utt in data.utts:
        lp = tr.log_probs(load_audio(data.wavs[utt]))
        spans = align_frames(
            lp, ps.encode(data.phones[utt]), min_duration=3, optional_silence=ps.silence_id, silence_between=True
        )
        ref = runs_to_spans(ps.encode(data.alignments[utt]))
        speech = [s for s in ref if s.phone != ps.silence_id]
        lo, hi, n_ph = speech[0].start, speech[-1].end, len(data.phones[utt])
        cuts = [lo + round(i * (hi - lo) / n_ph) for i in range(n_ph + 1)]
        uniform = [(0, lo)] * (lo > 0) + list(zip(cuts, cuts[1:])) + [(hi, lp.shape[0])] * (hi < lp.shape[0])
        n = len(ref) - 1
        hits += boundary_accuracy(ref, spans, tolerance_frames=2) * n
        baseline_hits += boundary_accuracy(ref, uniform, tolerance_frames=2) * n
        total += n
    return hits / total, baseline_hits / total, int(total)


def test_forced_alignment_boundary_accuracy(aligned_model, corpus: Path, capsys) -> None:
    """Viterbi alignment through the known phones, scored against flite's exact boundaries. On the
    training utterances the boundaries are recovered; on held-out sentences the number is reported
    (a model trained on 20 sentences for seconds is no aligner: see the synth recipe for a real one)."""
    train_acc, train_base, n_train = boundary_scores(aligned_model[0], DataDir.load(corpus / "data"))
    held_acc, held_base, n_held = boundary_scores(aligned_model[0], DataDir.load(corpus / "heldout"))
    with capsys.disabled():
        print(
            f"\nforced alignment, boundaries within 20 ms: training utterances {100 * train_acc:.1f}% of {n_train} "
            f"(evenly spread phones {100 * train_base:.1f}%), held-out {100 * held_acc:.1f}% of {n_held} "
            f"(evenly spread {100 * held_base:.1f}%)"
        )
    assert train_acc > 0.9 and train_acc > train_base + 0.2


def test_transcriber_api_and_command(aligned_model, corpus: Path) -> None:
    """A flite utterance through Transcriber (path and array) and through phonrec-transcribe."""
    import soundfile as sf

    from phonrec import Transcriber

    held = DataDir.load(corpus / "heldout")
    utt = held.utts[0]
    tr = Transcriber.from_pretrained(aligned_model[0])
    result = tr.transcribe(held.wavs[utt], decoder="greedy")
    duration = sf.info(str(held.wavs[utt])).duration
    assert result.phones and len(result.phones) == len(result.spans)
    starts = [s for _, s, _ in result.spans]
    assert starts == sorted(starts) and 0 <= starts[0] and result.spans[-1][2] <= duration + 0.03
    assert all(p in tr.phone_set for p in result.phones)
    wave, sr = sf.read(str(held.wavs[utt]), dtype="float32")
    assert tr.transcribe(wave, sample_rate=sr).phones == result.phones  # array input: same answer
    cmd = subprocess.run(
        [sys.executable, "-m", "phonrec.cli.transcribe", str(aligned_model[0]), str(held.wavs[utt]), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert cmd.returncode == 0, cmd.stderr
    printed = json.loads(cmd.stdout.splitlines()[0])
    assert printed["phones"] == result.phones
    assert [round(s, 3) for _, s, _ in result.spans] == [sp["start"] for sp in printed["spans"]]
