"""Every command-line example of the README and of docs/recipes/*.md runs, exactly as written.

The examples are read from the Markdown itself, so a new one is tested without editing this
file: each line of a fenced ``bash`` block (``\\`` continuations joined, comment lines dropped),
each inline code span that starts with ``phonrec-``, and each fenced ``python`` block (run as a
script). :func:`skip_reason` leaves out what cannot run here: the full recipes and the set-up
(the main job runs those in CI), examples that need an external corpus (TIMIT, speechocean762,
FSDD: paths under ``../shared``, ``--corpus``, ``--download``), patterns with ``...``, a bare
command name mentioned in a sentence, and the examples that use the packaged English model
(``phonrec-transcribe a.wav``, ``from_pretrained("en")``) when ``phonrec/pretrained/en/`` holds none.

Each example runs in its own copy of a working directory that holds what the examples refer
to: a tiny flite corpus at ``data/synth`` (with its ``lexicon.txt``, also at
``exp/synth/lexicon.txt`` as the main job writes it), tiny trained models at
``exp/synth/aligned/model`` and ``exp/synth/ctc/model``, ``a.wav`` / ``b.flac`` made with
flite, and a corpus folder ``recordings/anna/{hello,test}.{wav,lab}``. The console scripts come
from this interpreter's ``bin`` with this checkout on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import compose_cfg

from phonrec.audio import AUDIO_EXTENSIONS
from phonrec.pretrained import is_packaged

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs" / "recipes").glob("*.md"))]
BIN = Path(sys.executable).parent
EXTERNAL_CORPUS = re.compile(r"\.\./shared|--corpus|--download|speechocean762|timit|fsdd", re.IGNORECASE)
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`(phonrec-[^`]*)`")


@dataclass(frozen=True)
class Example:
    """One documented example: ``kind`` is ``bash`` (a command line) or ``python`` (a script)."""

    source: str  # file:line
    kind: str
    code: str


def logical_lines(block: str) -> list[tuple[int, str]]:
    """``(line offset, command)`` of a bash block: continuations joined, blank and comment lines dropped."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for i, line in enumerate(block.splitlines()):
        if not pending:
            start = i
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            out.append((start, command))
    return out


def examples_in(path: Path) -> list[Example]:
    """The bash command lines, inline ``phonrec-`` commands and python blocks of a Markdown file."""
    text = path.read_text()
    name = path.relative_to(REPO).as_posix()
    found: list[Example] = []
    for match in FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        first = text.count("\n", 0, match.start(2)) + 1
        if lang in ("bash", "sh", "shell", "console"):
            found += [Example(f"{name}:{first + i}", "bash", cmd) for i, cmd in logical_lines(body)]
        elif lang == "python":
            found.append(Example(f"{name}:{first}", "python", body))
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)  # keep line numbers
    for match in INLINE.finditer(prose):
        line = prose.count("\n", 0, match.start()) + 1
        found.append(Example(f"{name}:{line}", "bash", " ".join(match.group(1).split())))
    return found


PACKAGED_NAME = re.compile(r"""from_pretrained\(\s*["']en["']|--model en\b""")
VALUE_OPTIONS = {"--dictionary", "--jobs", "--batch-size", "--min-duration", "--list", "--textgrid", "--ext"}


def uses_packaged_model(example: Example) -> bool:
    """Whether an example uses ``en``, the model packaged in ``phonrec/pretrained/en/``: by name
    (``from_pretrained("en")``, ``--model en``), or by giving no model (``phonrec-transcribe a.wav``,
    whose first argument is audio; ``phonrec-align CORPUS OUT`` without ``--model``)."""
    code = example.code
    if PACKAGED_NAME.search(code):
        return True
    words = code.split() if example.kind == "bash" else []
    positional = [w for i, w in enumerate(words[1:], 1) if not w.startswith("-") and words[i - 1] not in VALUE_OPTIONS]
    if words[:1] == ["phonrec-transcribe"] and "--model" not in words and positional:
        return positional[0].rsplit(".", 1)[-1].lower() in AUDIO_EXTENSIONS
    return words[:1] == ["phonrec-align"] and "--model" not in words and len(positional) == 2


def skip_reason(example: Example) -> str | None:
    """Why an example is not run here, or ``None`` when it is."""
    code = example.code
    if uses_packaged_model(example) and not is_packaged("en"):
        return "uses the packaged model en, which this checkout does not have (phonrec/pretrained/en/)"
    if example.kind == "bash":
        if "tools/setup.sh" in code or re.search(r"recipes/\S+/run\.sh", code):
            return "a full recipe or the set-up: the main job runs it in CI"
        if len(code.split()) == 1:
            return "a command's name in a sentence, not an example"
        if "..." in code:
            return "a pattern with '...', not a runnable example"
    if EXTERNAL_CORPUS.search(code):
        return "needs an external corpus"
    return None


def is_slow(example: Example) -> bool:
    """A ``phonrec-train`` example trains the configured model as written: the README's 4x256
    BiLSTM for 20 epochs took 112 s on the tiny corpus (2 shared cores), so it runs with ``-m slow``."""
    return example.kind == "bash" and example.code.startswith("phonrec-train")


ALL_EXAMPLES = [example for doc in DOCS for example in examples_in(doc)]
RUNNABLE = [example for example in ALL_EXAMPLES if skip_reason(example) is None]


def test_examples_are_found_and_every_skip_has_a_reason() -> None:
    """The extraction sees the README's Hydra, Python and transcribe examples (so a change of the
    Markdown cannot silently leave nothing to test) and skips the recipes and external corpora."""
    commands = [e.code.split()[0] for e in RUNNABLE if e.kind == "bash"]
    assert {"phonrec-train", "phonrec-decode", "phonrec-transcribe"} <= set(commands), RUNNABLE
    assert any(e.kind == "python" and "Transcriber.from_pretrained" in e.code for e in RUNNABLE)
    skipped = {e.code: skip_reason(e) for e in ALL_EXAMPLES if skip_reason(e)}
    assert skipped["bash recipes/timit/run.sh --corpus /corpora/TIMIT"].startswith("a full recipe")
    assert [r for c, r in skipped.items() if c.startswith("bash recipes/synth/run.sh --size full")] == [
        "a full recipe or the set-up: the main job runs it in CI"
    ]
    assert [r for c, r in skipped.items() if c.startswith("phonrec-decode model_dir=exp/speechocean762")] == [
        "needs an external corpus"
    ]
    assert skipped["phonrec-decode model_dir=... data_dir=... decoder=..."].startswith("a pattern")


def speak(text: str, out: Path) -> None:
    """A flite (voice kal16, 16 kHz) recording of ``text`` at ``out`` (WAV, or FLAC by extension)."""
    wav = out.with_suffix(".tmp.wav")
    subprocess.run(["flite", "-voice", "kal16", "-t", text, "-o", str(wav)], check=True, timeout=60)
    samples, sr = sf.read(wav, dtype="float32")
    sf.write(out, np.asarray(samples), sr)
    wav.unlink()


def train_tiny(workdir: Path, divergence: str) -> None:
    """A 1x16 BiLSTM of 2 epochs at ``exp/synth/<divergence>/model`` (seconds)."""
    from phonrec.cli.train import train

    data = workdir / "data" / "synth"
    train(
        compose_cfg(
            [
                f"data.train={data / 'train'}",
                f"data.dev={data / 'dev'}",
                f"exp_dir={workdir / 'exp' / 'synth' / divergence}",
                f"divergence={divergence}",
                "model=small",
                "model.hidden=16",
                "model.layers=1",
                "model.dropout=0.0",
                "augment=none",
                "trainer=tiny",
                "trainer.num_threads=1",
            ]
        )
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the documented examples refer to, as the main job leaves it (tiny sizes)."""
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (apt-get install flite)")
    if not (BIN / "phonrec-decode").is_file():
        pytest.skip(f"phonrec's console scripts are not installed in {BIN} (pip install -e .)")
    from phonrec.data.synth import SynthConfig, build_corpus

    root = tmp_path_factory.mktemp("docs") / "work"
    data = root / "data" / "synth"
    build_corpus(data, SynthConfig(num_utts=12, seed=3, max_words=3, dev_fraction=0.3), jobs=1, progress=False)
    for split in ("train", "dev", "test"):
        assert (data / split / "wav.scp").read_text().strip(), f"empty {split} split: change the seed"
    (root / "exp" / "synth").mkdir(parents=True)
    shutil.copy(data / "lexicon.txt", root / "exp" / "synth" / "lexicon.txt")
    train_tiny(root, "aligned")
    train_tiny(root, "ctc")
    speak("hello world", root / "a.wav")
    speak("a short test", root / "b.flac")
    (root / "recordings" / "anna").mkdir(parents=True)  # a corpus folder for phonrec-align
    for name, text in (("hello", "hello world"), ("test", "a short test")):
        speak(text, root / "recordings" / "anna" / f"{name}.wav")
        (root / "recordings" / "anna" / f"{name}.lab").write_text(text + "\n")
    return root


@pytest.mark.parametrize(
    "example", [pytest.param(e, id=e.source, marks=[pytest.mark.slow] if is_slow(e) else []) for e in RUNNABLE]
)
def test_documented_example_runs_as_written(example: Example, workdir: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    shutil.copytree(workdir, cwd, symlinks=True)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    if example.kind == "python":
        (tmp_path / "example.py").write_text(example.code)
        argv = [sys.executable, str(tmp_path / "example.py")]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", example.code]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{example.source}: {example.code}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
