"""Per-speaker CMVN (``features.cmvn=speaker``) from training to decoding: the exported model
normalises each data-directory speaker by the statistics of all their recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import compose_cfg, make_noise_datadir, noise_overrides

from phonrec.audio import load_audio
from phonrec.cli.align import align_datadir
from phonrec.cli.decode import network_pass
from phonrec.data.datadir import DataDir
from phonrec.features import compute_features, num_frames
from phonrec.train import run
from phonrec.transcribe import Transcriber


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny CTC model trained with speaker CMVN on a noise corpus of three speakers."""
    root = tmp_path_factory.mktemp("spk")
    make_noise_datadir(root / "c", [0.5, 0.6, 0.4, 0.7, 0.5, 0.3])
    cfg = compose_cfg(noise_overrides(root, root / "c" / "data", ["divergence=ctc", "features.cmvn=speaker"]))
    metrics = run(0, 1, cfg)
    assert np.isfinite(metrics["dev_loss"])
    return {"model": root / "exp" / "model", "data": root / "c" / "data"}


def test_exported_model_records_speaker_cmvn(trained: dict[str, Path]) -> None:
    config = yaml.safe_load((trained["model"] / "config.yaml").read_text())
    assert config["features"]["cmvn"] == "speaker"
    assert not (trained["model"] / "cmvn.json").exists()  # no global statistics to ship
    assert Transcriber.from_pretrained(trained["model"]).cmvn_mode == "speaker"


def test_decode_normalises_each_speaker_by_all_their_recordings(trained: dict[str, Path]) -> None:
    tr = Transcriber.from_pretrained(trained["model"])
    data = DataDir.load(trained["data"])
    bad: dict[str, str] = {}
    log_probs, seconds = network_pass(tr, data, batch_size=2, bad=bad)
    assert not bad and set(log_probs) == set(data.utts)
    assert seconds == pytest.approx(sum(load_audio(data.wavs[u]).shape[0] for u in data.utts) / 16000)
    feats = {u: compute_features(load_audio(data.wavs[u]), tr.feature_config) for u in data.utts}
    for spk in data.speakers():
        utts = [u for u in data.utts if data.utt2spk[u] == spk]
        frames = np.concatenate([feats[u].double().numpy() for u in utts])  # numpy: an independent computation
        mean, std = frames.mean(0), frames.std(0)
        for u in utts:
            x = torch.from_numpy((feats[u].double().numpy() - mean) / std).float()
            with torch.no_grad():
                expected, _ = tr.model(x[None], torch.tensor([x.shape[0]]))
            torch.testing.assert_close(log_probs[u], expected[0], atol=1e-4, rtol=1e-4)


def test_speaker_batches_group_by_speaker_only_for_speaker_models(trained: dict[str, Path], tmp_path: Path) -> None:
    from helpers import make_model_dir

    data = DataDir.load(trained["data"])
    read = lambda u: load_audio(data.wavs[u])  # noqa: E731
    spk_model = Transcriber.from_pretrained(trained["model"])
    batches = list(spk_model.speaker_batches(data.utts, data.utt2spk, read, batch_size=4))
    for batch, stats in batches:
        assert len({data.utt2spk[u] for u, _ in batch}) == 1 and stats is not None and stats.shape == (2, 20)
    assert sorted(u for batch, _ in batches for u, _ in batch) == sorted(data.utts)
    plain = Transcriber.from_pretrained(make_model_dir(tmp_path, ctc=True))
    batches = list(plain.speaker_batches(data.utts, data.utt2spk, read, batch_size=4))
    assert [u for batch, _ in batches for u, _ in batch] == data.utts and [len(b) for b, _ in batches] == [4, 2]
    assert all(stats is None for _, stats in batches)
    # an unreadable recording (read returns None) is left out, the rest of its speaker kept
    skipped = list(spk_model.speaker_batches(data.utts, data.utt2spk, lambda u: None if u == "u000" else read(u), 4))
    assert sorted(u for batch, _ in skipped for u, _ in batch) == sorted(data.utts[1:])


def test_datadir_alignment_with_a_speaker_cmvn_model(trained: dict[str, Path], tmp_path: Path) -> None:
    counts = align_datadir(trained["model"], trained["data"], tmp_path / "ali", progress=False)
    assert counts == {"aligned": 6, "skipped": 0}
    ali = DataDir.load(tmp_path / "ali")
    for utt in ali.utts:
        assert len(ali.alignments[utt]) == num_frames(load_audio(ali.wavs[utt]).shape[0])


def test_corpus_alignment_normalises_each_speaker_folder_together(trained: dict[str, Path], tmp_path: Path) -> None:
    """phonrec-align's corpus mode with a speaker-CMVN model: a sub-folder is a speaker, its
    recordings share their pooled statistics; a recording in the corpus folder itself is its own."""
    import shutil

    from phonrec.cli.align import align_corpus, find_corpus, folder_statistics

    model = tmp_path / "model"
    shutil.copytree(trained["model"], model)
    (model / "lexicon.txt").write_text("NO ah b\nYES b ah\n")
    data = DataDir.load(trained["data"])
    corpus = tmp_path / "corpus"
    for utt, rel in zip(data.utts, ["a/1", "a/2", "b/1", "b/2", "b/3", "alone"]):
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data.wavs[utt], corpus / f"{rel}.wav")
        (corpus / f"{rel}.lab").write_text(data.text[utt])
    tr = Transcriber.from_pretrained(model)
    files = find_corpus(corpus)
    stats = folder_statistics(tr, files)
    assert set(stats) == {Path("a"), Path("b")}
    feats = [compute_features(load_audio(corpus / f"b/{i}.wav"), tr.feature_config) for i in (1, 2, 3)]
    frames = np.concatenate([f.double().numpy() for f in feats])
    np.testing.assert_allclose(stats[Path("b")][0].numpy(), frames.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats[Path("b")][1].numpy(), frames.std(0), rtol=1e-5, atol=1e-5)

    result = align_corpus(tr, corpus, tmp_path / "out")
    assert not result.failed and len(result.aligned) == 6
    text = (corpus / "b/2.lab").read_text()
    expected = tr.align(corpus / "b/2.wav", text, speaker_stats=stats[Path("b")], utterance="b/2.wav")
    assert result.aligned["b/2.wav"] == expected
    alone = tr.align(corpus / "alone.wav", (corpus / "alone.lab").read_text(), utterance="alone.wav")
    assert result.aligned["alone.wav"] == alone
    own = tr.align(corpus / "b/2.wav", text, utterance="b/2.wav")  # the recording's own statistics differ
    assert [p.score for p in own.phones] != [p.score for p in expected.phones]
    from helpers import make_model_dir

    assert folder_statistics(Transcriber.from_pretrained(make_model_dir(tmp_path / "plain", ctc=True)), files) == {}


def test_utterance_cmvn_prob_one_trains_exactly_as_utterance_cmvn(tmp_path: Path) -> None:
    """``augment.utterance_cmvn_prob=1``: every training utterance is normalised by its own
    statistics, so the training losses equal those of a ``features.cmvn=utterance`` run."""
    make_noise_datadir(tmp_path / "c", [0.5, 0.6, 0.4, 0.7])
    data = tmp_path / "c" / "data"
    losses = {}
    for name, extra in {
        "utterance": ["features.cmvn=utterance"],
        "own": ["features.cmvn=speaker", "augment.utterance_cmvn_prob=1.0"],
        "speaker": ["features.cmvn=speaker", "augment.utterance_cmvn_prob=0.0"],
    }.items():
        cfg = compose_cfg(noise_overrides(tmp_path / name, data, ["divergence=ctc", "trainer.epochs=2", *extra]))
        run(0, 1, cfg)
        lines = (tmp_path / name / "exp" / "metrics.json").read_text()
        losses[name] = [m["train_loss"] for m in json.loads(lines)["history"]]
    assert losses["own"] == pytest.approx(losses["utterance"], rel=1e-5)
    assert losses["speaker"] != pytest.approx(losses["utterance"], rel=1e-5)  # noise: close statistics


def test_transcribe_single_speaker_normalises_all_inputs_together(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """phonrec-transcribe --single-speaker: the inputs' pooled statistics (checked against numpy over
    the readable ones; an unreadable file is left out of them and reported) normalise every file."""
    import shutil

    from phonrec.cli import transcribe as cli

    data = DataDir.load(trained["data"])
    wavs = []
    for i, utt in enumerate(data.utts[:3]):
        wavs.append(tmp_path / f"{i}.wav")
        shutil.copy(data.wavs[utt], wavs[-1])
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    tr = Transcriber.from_pretrained(trained["model"])
    stats = tr.file_statistics([*wavs, tmp_path / "bad.wav"])
    frames = np.concatenate([compute_features(load_audio(w), tr.feature_config).double().numpy() for w in wavs])
    np.testing.assert_allclose(stats[0].numpy(), frames.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats[1].numpy(), frames.std(0), rtol=1e-5, atol=1e-5)
    assert tr.file_statistics([tmp_path / "bad.wav"]) is None

    args = ["--model", str(trained["model"]), "--json", "--quiet", *map(str, wavs), str(tmp_path / "bad.wav")]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*args, "--single-speaker"])
    assert exit_info.value.code == 1  # the unreadable file is reported, the others transcribed
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["file"] for o in out] == list(map(str, wavs))
    torch.testing.assert_close(cli._WORKER["options"]["speaker_stats"], stats)
    for o, wav in zip(out, wavs):
        expected = tr.transcribe(wav, speaker_stats=stats)
        assert o["phones"] == expected.phones
        assert [(s["phone"], s["start"], s["end"]) for s in o["spans"]] == [
            (p, round(a, 3), round(b, 3)) for p, a, b in expected.spans
        ]
    with pytest.raises(SystemExit):
        cli.main(args)  # without the flag each file is its own speaker
    assert "speaker_stats" not in cli._WORKER["options"]
