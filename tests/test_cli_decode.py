"""The command-line contract of phonrec-decode (and the user errors of phonrec-align, -plot, -synth).

Each test runs the real console command in a subprocess from an empty working directory, as a
user would: the README's decode example with no ``out_dir``, missing required keys, bad paths
and broken model directories (one line naming the thing, exit status 2, no traceback), and a
decode of audio without reference text (nothing to score, never a 0% error rate), and the
per-speaker summary of a two-speaker data directory (absent without ``utt2spk``).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_model_dir, make_noise_datadir

from phonrec.cli.decode import default_out_dir
from phonrec.cli.errors import EXIT_USER_ERROR
from phonrec.data.datadir import DataDir, read_kaldi_map
from phonrec.metrics import ErrorCounts, edit_distance
from phonrec.phones import fold_for_scoring
from phonrec.pretrained import PACKAGE_DIR

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = "e.g. phonrec-decode model_dir=exp/synth/ctc/model data_dir=data/synth/test"


def command(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m phonrec.cli.<module> args...`` (what the console script runs) with this checkout first."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("PHONREC_DEBUG", None)
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", f"phonrec.cli.{module}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], prog: str, *names: str) -> None:
    """Exit status 2, no traceback, and a ``prog: error:`` line naming each of ``names``."""
    assert proc.returncode == EXIT_USER_ERROR, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-3000:]
    error = [line for line in proc.stderr.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(error) == 1, proc.stderr[-3000:]
    for name in names:
        assert name in error[0], (name, error[0])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny CTC model at ``ctc/model`` with a lexicon of the noise corpus's two words, and that
    corpus (two utterances with phones and text)."""
    root = tmp_path_factory.mktemp("decode")
    model = make_model_dir(root / "ctc", ctc=True)
    (model / "lexicon.txt").write_text("NO ah b\nYES b ah\n")
    make_noise_datadir(root / "noise", [0.5, 0.7])
    return {"root": root, "model": model, "data": root / "noise" / "data"}


def test_readme_decode_example_without_out_dir(setup: dict[str, Path], tmp_path: Path) -> None:
    """``phonrec-decode model_dir=X data_dir=Y decoder=lexicon jobs=2``: the decode lands in
    ``<model_dir>/../decode-lexicon-<data name>``, Hydra writes nothing in the working directory,
    and recipes/lib/results_table.py still reads the scored report."""
    proc = command(
        "decode", f"model_dir={setup['model']}", f"data_dir={setup['data']}", "decoder=lexicon", "jobs=2", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []  # no outputs/, .hydra/ or decode.log
    out = setup["root"] / "ctc" / "decode-lexicon-data"
    report = json.loads((out / "report.json").read_text())
    assert report["utterances"] == 2 and report["unscored"] == 0
    assert report["phones"]["reference_length"] == 4 and report["words"]["reference_length"] == 2
    assert {line.split()[0] for line in (out / "hyp.txt").read_text().splitlines()} == {"u000", "u001"}
    table = subprocess.run(
        [sys.executable, str(REPO / "recipes/lib/results_table.py"), "--exp", str(setup["root"]), "--models", "ctc"]
        + ["--splits", "data", "--decoders", "lexicon"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        f"| ctc | data | lexicon | {100 * report['phones']['rate']:.1f} | {100 * report['words']['rate']:.1f} |"
        in table
    )


@pytest.mark.parametrize("missing", ["model_dir", "data_dir"])
def test_missing_required_key_is_named_with_an_example(setup: dict[str, Path], tmp_path: Path, missing: str) -> None:
    given = {"model_dir": f"model_dir={setup['model']}", "data_dir": f"data_dir={setup['data']}"}
    del given[missing]
    proc = command("decode", *given.values(), cwd=tmp_path)
    assert_user_error(proc, "phonrec-decode", f"{missing} is required", EXAMPLE)
    assert len(proc.stderr.splitlines()) == 2, proc.stderr


def test_bad_paths_broken_model_dir_and_bad_values_are_named(setup: dict[str, Path], tmp_path: Path) -> None:
    """A data directory that does not exist, a pickle planted as the weights, a mistyped value:
    each one line naming the path or the key, exit status 2."""
    model, data = f"model_dir={setup['model']}", f"data_dir={setup['data']}"
    proc = command("decode", model, f"data_dir={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert_user_error(proc, "phonrec-decode", str(tmp_path / "nowhere"), "not a data directory")

    broken = tmp_path / "broken"
    shutil.copytree(setup["model"], broken)
    (broken / "model.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    proc = command("decode", f"model_dir={broken}", data, cwd=tmp_path)
    assert_user_error(proc, "phonrec-decode", str(broken / "model.safetensors"), "not a valid safetensors file")
    assert not (tmp_path / "decode-greedy-data").exists()  # a failed decode leaves no empty out_dir behind

    proc = command("decode", model, data, "jobs=x", cwd=tmp_path)
    assert_user_error(proc, "phonrec-decode", "jobs must be a positive integer, got 'x'")


def test_audio_without_reference_reports_nothing_to_score(setup: dict[str, Path], tmp_path: Path) -> None:
    """A data directory of wav.scp alone: hypotheses written, no PER or WER of 0.00, and report.json
    has no ``phones``/``words`` block (``unscored`` counts the utterances)."""
    only_wavs = tmp_path / "only_wavs"
    only_wavs.mkdir()
    shutil.copy(setup["data"] / "wav.scp", only_wavs / "wav.scp")
    out = tmp_path / "out"
    proc = command(
        "decode",
        f"model_dir={setup['model']}",
        f"data_dir={only_wavs}",
        "decoder=lexicon",
        f"out_dir={out}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert "phones" not in report and "words" not in report
    assert report["utterances"] == 2 and report["unscored"] == 2
    text = (out / "report.txt").read_text()
    assert "nothing to score: none of the 2 decoded utterances has reference phones" in text
    scores = text.split("real-time factor")[0]  # the RTF line may print 0.00xx on a fast machine
    assert "%PER" not in text and "%WER" not in text and "0.00" not in scores
    assert "nothing to score" in proc.stdout
    assert {line.split()[0] for line in (out / "hyp.txt").read_text().splitlines()} == {"u000", "u001"}
    assert (out / "words.txt").is_file() and (out / "spans.txt").read_text().strip()


def test_partly_referenced_data_scores_only_the_referenced(setup: dict[str, Path], tmp_path: Path) -> None:
    """Utterances without reference phones are decoded, counted as ``unscored`` and left out of the PER."""
    data = DataDir.load(setup["data"])
    data.phones = {"u000": data.phones["u000"]}
    data.save(tmp_path / "partial")
    out = tmp_path / "out"
    proc = command(
        "decode", f"model_dir={setup['model']}", f"data_dir={tmp_path / 'partial'}", f"out_dir={out}", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["utterances"] == 2 and report["unscored"] == 1
    assert report["phones"]["utterances"] == 1 and report["phones"]["reference_length"] == 2
    assert "1 decoded utterances have no reference phones and are not scored" in (out / "report.txt").read_text()


def test_align_plot_and_synth_answer_user_errors_in_one_line(setup: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(setup["model"], broken)
    (broken / "phones.txt").write_text("")
    proc = command("align", str(broken), str(setup["data"]), str(tmp_path / "aligned"), cwd=tmp_path)
    assert_user_error(proc, "phonrec-align", str(broken / "phones.txt"))
    assert not (tmp_path / "aligned").exists()

    proc = command("plot", "posteriorgram", str(setup["model"]), "missing.wav", "--out", "p.png", cwd=tmp_path)
    assert_user_error(proc, "phonrec-plot", "missing.wav", "no such file")

    (tmp_path / "a_file").write_text("")
    proc = command("synth", str(tmp_path / "a_file" / "corpus"), "--num-utts", "3", "--quiet", cwd=tmp_path)
    assert proc.returncode == EXIT_USER_ERROR and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.startswith("phonrec-synth: error: ") and "a_file" in proc.stderr.splitlines()[0]


def table_row(table: str) -> list[str]:
    """The cells of a Markdown table's only body row."""
    lines = [line for line in table.splitlines() if line.startswith("|")]
    assert len(lines) == 3, table
    return [c.strip() for c in lines[2].strip("|").split("|")]


def run_table(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "lib" / script), *args], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_per_speaker_report_of_two_speakers(setup: dict[str, Path], tmp_path: Path) -> None:
    """Speakers alice (two utterances) and bob (one): report.json's ``per_speaker`` and report.txt's
    table match each speaker's errors summed from hyp.txt / words.txt here, and both recipe tables
    show the spread (results_table: PER; accuracy_table: the lexicon decode's word accuracy)."""
    data = DataDir.load(setup["data"])
    assert data.utts == ["u000", "u001"]
    # references chosen so that this seed's random model (it says "b ah" = YES to both recordings)
    # gives the two speakers different rates; u002 is u000's audio with another reference
    data.text = {"u000": "YES", "u001": "NO", "u002": "YES"}
    data.phones = {"u000": ["b", "ah"], "u001": ["ah", "b"], "u002": ["b", "ah", "b"]}
    data.wavs["u002"] = data.wavs["u000"]
    data.utt2spk = {"u000": "alice", "u001": "bob", "u002": "alice"}
    data.alignments = None
    data.save(tmp_path / "test")
    exp = tmp_path / "exp"
    model = make_model_dir(exp / "ctc", ctc=True, seed=1)
    (model / "lexicon.txt").write_text("NO ah b\nYES b ah\n")
    out = exp / "ctc" / "decode-lexicon-test"
    proc = command(
        "decode",
        f"model_dir={model}",
        f"data_dir={tmp_path / 'test'}",
        "decoder=lexicon",
        f"out_dir={out}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())

    # each speaker's phone errors summed over their utterances, recomputed from hyp.txt
    hyp = {u: v.split() for u, v in read_kaldi_map(out / "hyp.txt", allow_empty_value=True).items()}
    by_spk: dict[str, ErrorCounts] = {}
    for u in data.utts:
        e = edit_distance(fold_for_scoring(data.phones[u]), fold_for_scoring(hyp[u]))
        by_spk[data.utt2spk[u]] = by_spk.get(data.utt2spk[u], ErrorCounts()) + e
    rates = {spk: c.errors / c.reference_length for spk, c in by_spk.items()}
    assert len(set(rates.values())) == 2, f"the speakers should differ for this test to mean much: {rates}"
    order = sorted(rates, key=lambda spk: -rates[spk])
    phones = report["per_speaker"]["phones"]
    assert phones["speakers"] == 2 and phones["measure"] == "rate" and phones["unrated"] == []
    assert [row["speaker"] for row in phones["table"]] == order
    for row in phones["table"]:
        c = by_spk[row["speaker"]]
        assert (row["utterances"], row["reference_length"], row["errors"]) == (
            c.utterances,
            c.reference_length,
            c.errors,
        )
        assert row["rate"] == pytest.approx(rates[row["speaker"]])
    assert by_spk["alice"].utterances == 2 and by_spk["alice"].reference_length == 5
    assert phones["mean"] == pytest.approx(statistics.mean(rates.values()))
    assert phones["std"] == pytest.approx(statistics.pstdev(rates.values()))
    assert phones["worst"] == {"speaker": order[0], "rate": pytest.approx(rates[order[0]])}
    assert phones["best"] == {"speaker": order[-1], "rate": pytest.approx(rates[order[-1]])}
    assert set(report["per_speaker"]["words"]["table"][0]) >= {"speaker", "utterances_with_errors", "rate"}

    text = (out / "report.txt").read_text().splitlines()
    head = [line for line in text if line.startswith("per-speaker PER, 2 speakers: ")]
    assert len(head) == 1
    assert f"worst {100 * rates[order[0]]:.2f}% ({order[0]})" in head[0]
    rows = text[text.index(head[0]) + 2 :][:2]
    assert [r.split("|")[1].strip() for r in rows] == order
    assert rows[0].split("|")[5].strip() == f"{100 * rates[order[0]]:.2f}"

    cells = table_row(run_table("results_table.py", "--exp", str(exp), "--models", "ctc", "--splits", "test"))
    assert cells[:4] == ["ctc", "test", "lexicon", f"{100 * report['phones']['rate']:.1f}"]
    mean = 100 * statistics.mean(rates.values())
    assert cells[7:] == [
        "2",
        f"{mean:.1f}",
        f"{100 * rates[order[0]]:.1f} ({order[0]})",
        f"{100 * rates[order[-1]]:.1f} ({order[-1]})",
    ]

    # FSDD's table: the share of each speaker's utterances whose words are exactly the reference
    words = read_kaldi_map(out / "words.txt", allow_empty_value=True) if (out / "words.txt").is_file() else {}
    right = {u: words.get(u, "").split() == data.text[u].split() for u in data.utts}
    acc = {spk: statistics.mean(right[u] for u in data.utts if data.utt2spk[u] == spk) for spk in by_spk}
    worst = min(acc, key=lambda spk: (acc[spk], spk))
    best = min(acc, key=lambda spk: (-acc[spk], spk))
    cells = table_row(
        run_table("accuracy_table.py", "--exp", str(exp), "--weights", "uniform", "--data", str(tmp_path / "test"))
    )
    assert cells[0] == "CTC phones (CMUdict)" and cells[6:] == [
        "2",
        f"{100 * statistics.mean(acc.values()):.1f}",
        f"{100 * acc[worst]:.1f} ({worst})",
        f"{100 * acc[best]:.1f} ({best})",
    ]


def test_no_per_speaker_summary_without_utt2spk(setup: dict[str, Path], tmp_path: Path) -> None:
    """A data directory without ``utt2spk``: scored as before, but no ``per_speaker`` block, no
    per-speaker lines in report.txt and ``-`` in the table's speaker columns (never one speaker per
    utterance passed off as speakers)."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("wav.scp", "text", "phones"):
        shutil.copy(setup["data"] / name, data / name)
    exp = tmp_path / "exp"
    out = exp / "ctc" / "decode-greedy-data"
    proc = command("decode", f"model_dir={setup['model']}", f"data_dir={data}", f"out_dir={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["phones"]["utterances"] == 2 and "per_speaker" not in report
    assert "per-speaker" not in (out / "report.txt").read_text()
    table = run_table("results_table.py", "--exp", str(exp), "--models", "ctc", "--splits", "data")
    assert table_row(table)[7:] == ["-"] * 4


def test_default_out_dir_is_never_inside_the_package(tmp_path: Path) -> None:
    """Beside the model directory, except for a packaged model (by path or by name): then in the
    working directory, so decoding with ``phonrec/pretrained/en`` writes nothing into phonrec; a
    folder ``en`` of the user's own is not the packaged model and keeps its decodes beside it."""
    data = tmp_path / "data" / "test"
    assert default_out_dir(tmp_path / "exp" / "model", "greedy", data) == tmp_path / "exp" / "decode-greedy-test"
    assert default_out_dir(PACKAGE_DIR / "en", "beam", data) == Path("decode-beam-test")
    assert default_out_dir(Path("en"), "greedy", data) == Path("decode-greedy-test")
    own = tmp_path / "mine" / "en"
    own.mkdir(parents=True)
    assert default_out_dir(own, "greedy", data) == tmp_path / "mine" / "decode-greedy-test"
