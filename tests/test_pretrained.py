"""The packaged model (phonrec.pretrained), its export (phonrec-export) and its card.

Two groups:

* the model packaged in ``phonrec/pretrained/en/`` (skipped, with a message, when this checkout
  has none): it loads by name, its card's phone set is its ``phones.txt``, the card's size and
  parameter count are the files', and it transcribes flite utterances with a PER below the bound
  its card states (``test_bound_per``);
* what needs no packaged model: the fp16 export round trip of a tiny random model, the fp16
  check refusing, existing outputs, unknown names, a folder named ``en`` winning, and the
  commands' default model when no model is packaged (one line).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import make_model_dir, sine_noise
from safetensors.torch import load_file

import phonrec.pretrained as pretrained
from phonrec.cli import align as align_cli
from phonrec.cli import export as export_cli
from phonrec.cli import transcribe as transcribe_cli
from phonrec.config import ConfigError
from phonrec.export import EXPORT_FILES, export_model_dir
from phonrec.metrics import per
from phonrec.model_card import CardFacts, ComputedFacts, TrainingData, read_facts, rewrite_card
from phonrec.model_dir import read_model_dir
from phonrec.phones import flite_to_phonrec
from phonrec.transcribe import Transcriber

SR = 16000


# --- helpers ---------------------------------------------------------------------------------------


def safetensors_dtypes(path: Path) -> dict[str, str]:
    """Tensor name -> dtype read straight from the file's header (8-byte length + JSON), no library."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}


def card_phone_set(card: str) -> list[str]:
    """The symbols of the card's "## Phone set" section (its code block)."""
    section = card.split("## Phone set", 1)[1]
    block = re.search(r"```text\n(.*?)\n```", section, re.DOTALL)
    assert block, "the card's phone set section has no code block"
    return block.group(1).split()


def run_main(main, argv: list[str], capsys) -> tuple[int, str, str]:
    """A command's ``main(argv)`` in this process: (exit status, stdout, stderr)."""
    try:
        main([str(a) for a in argv])
        status = 0
    except SystemExit as e:
        status = int(e.code or 0)
    out = capsys.readouterr()
    return status, out.out, out.err


# --- the packaged model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def packaged() -> Path:
    """``phonrec/pretrained/en/``, or skip when this checkout packages no model there."""
    if not pretrained.is_packaged("en"):
        pytest.skip(
            f"{pretrained.PACKAGE_DIR / 'en'} has no packaged model (model.safetensors, config.yaml, phones.txt): "
            "make one with phonrec-export (docs/pretrained.md)"
        )
    return pretrained.model_path("en")


def test_packaged_model_loads_by_name(packaged: Path) -> None:
    assert "en" in pretrained.available()
    tr = Transcriber.from_pretrained("en")
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())
    stored = load_file(str(packaged / "model.safetensors"))
    state = tr.model.state_dict()
    assert stored.keys() == state.keys()
    assert all(torch.equal(state[k], stored[k].float()) for k in stored)  # fp16 values, computed as fp32
    facts = pretrained.card_facts("en")
    header = set(safetensors_dtypes(packaged / "model.safetensors").values())
    assert header == {"F16" if facts["weights_dtype"] == "float16" else "F32"}


def test_card_phone_set_is_the_models(packaged: Path) -> None:
    phones = (packaged / "phones.txt").read_text().split()
    assert card_phone_set(pretrained.model_card("en")) == phones
    assert pretrained.card_facts("en")["phone_set"] == phones
    assert list(read_model_dir(packaged).phone_set.symbols) == phones


def test_card_size_and_parameters_are_the_files(packaged: Path) -> None:
    facts = pretrained.card_facts("en")
    model_files = [
        packaged / n for n in EXPORT_FILES if (packaged / n).is_file() and not n.endswith((".md", "card.json"))
    ]
    assert facts["size_mb"] == pytest.approx(sum(f.stat().st_size for f in model_files) / 1e6, abs=1e-3)
    tensors = load_file(str(packaged / "model.safetensors"))
    assert facts["parameters"] == sum(t.numel() for t in tensors.values())
    card = pretrained.model_card("en")
    assert f"{facts['parameters']:,} parameters" in card
    assert sorted(p.name for p in packaged.iterdir()) == sorted(n for n in EXPORT_FILES if (packaged / n).exists())


def test_packaged_model_transcribes_flite_below_the_cards_bound(packaged: Path, flite_utterances) -> None:
    bound = pretrained.card_facts("en").get("test_bound_per")
    assert bound is not None, f"{packaged}/card.json has no test_bound_per: give it in the export's --card-json"
    tr = Transcriber.from_pretrained("en")
    refs = {f"utt{i}": [flite_to_phonrec(s.label) for s in u.segments] for i, u in enumerate(flite_utterances)}
    hyps = {f"utt{i}": tr.transcribe(u.wav).phones for i, u in enumerate(flite_utterances)}
    rate = 100 * per(refs, hyps).rate
    assert rate < bound, f"PER {rate:.1f}% on {len(refs)} flite utterances, the card's bound is {bound}%"


# --- export, fp16, the card (no packaged model needed) ----------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random CTC model directory with a lexicon and decoding defaults."""
    torch.set_num_threads(1)
    model_dir = make_model_dir(tmp_path_factory.mktemp("tiny"), phones=("sil", "ah", "b", "k"), ctc=True, hidden=16)
    (model_dir / "lexicon.txt").write_text("AB ah b\nBAK b ah k\n")
    (model_dir / "decoding.yaml").write_text("decoder: greedy\nmin_duration_ms: null\n")
    (model_dir.parent / "exp" / "checkpoints").mkdir(parents=True, exist_ok=True)
    return model_dir


def test_fp16_export_round_trip(tiny: Path, tmp_path: Path) -> None:
    facts = CardFacts(
        training_data=(TrainingData("corpus A", "CC BY 4.0", credit="A. Author, Corpus A"),),
        dev_per=12.34,
        test_bound_per=80,
    )
    out = tmp_path / "en"
    result = export_model_dir(tiny, out, fp16=True, facts=facts)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["config.yaml", "model.safetensors", "phones.txt", "cmvn.json", "lexicon.txt", "decoding.yaml"]
        + ["MODEL_CARD.md", "card.json"]
    )
    assert set(safetensors_dtypes(out / "model.safetensors").values()) == {"F16"}
    source, exported = read_model_dir(tiny), read_model_dir(out)
    src_state, exp_state = source.model.state_dict(), exported.model.state_dict()
    for key, value in src_state.items():
        assert exp_state[key].dtype == torch.float32
        assert torch.equal(exp_state[key], value.half().float())
    assert (out / "model.safetensors").stat().st_size < 0.6 * (tiny / "model.safetensors").stat().st_size
    feats = torch.randn(2, 50, source.model.input_dim, generator=torch.Generator().manual_seed(3))
    lengths = torch.tensor([50, 31])
    with torch.no_grad():
        a, _ = source.model.eval()(feats, lengths)
        b, _ = exported.model.eval()(feats, lengths)
    assert 0 < float((a - b).abs().max()) < 0.05
    assert result.fp16 is not None and result.fp16.ok and result.fp16.max_abs_diff > 0
    card = (out / "MODEL_CARD.md").read_text()
    assert card_phone_set(card) == ["<blank>", "sil", "ah", "b", "k"] == list(exported.phone_set.symbols)
    assert "| PER, dev | 12.3% |" in card and "| PER, test | not measured |" in card
    assert "| boundary accuracy | not measured |" in card and "| real-time factor | not measured |" in card
    assert "CC BY 4.0" in card and "A. Author, Corpus A" in card and "below 80%" in card
    record = json.loads((out / "card.json").read_text())
    assert record["test_per"] is None and record["dev_per"] == 12.34 and record["weights_dtype"] == "float16"
    assert record["parameters"] == sum(p.numel() for p in exported.model.parameters())
    # the exported name loads through Transcriber like any model directory, and decodes as the source does
    wave = torch.from_numpy(sine_noise(1.0))
    assert (
        Transcriber.from_pretrained(out).transcribe(wave, SR).phones
        == Transcriber.from_pretrained(tiny).transcribe(wave, SR).phones
    )


def test_rewrite_card_changes_the_given_facts_only(tiny: Path, tmp_path: Path) -> None:
    """Facts measured after an export replace the card's given ones; weights, computed facts and the
    fp16 check stay; a card.json that is not an export's is refused, naming the file."""
    out = tmp_path / "en"
    export_model_dir(tiny, out, fp16=True, facts=CardFacts(dev_per=50.0, test_bound_per=80))
    weights, before = (out / "model.safetensors").read_bytes(), json.loads((out / "card.json").read_text())
    (out / "decoding.yaml").write_text((out / "decoding.yaml").read_text() + "boundary_shift_ms: -16.6\n")
    rewrite_card(out, CardFacts(dev_per=40.0, boundary_accuracy=61.5, test_bound_per=80))
    after = json.loads((out / "card.json").read_text())
    assert (out / "model.safetensors").read_bytes() == weights
    assert after["dev_per"] == 40.0 and after["boundary_accuracy"] == 61.5
    assert after["size_mb"] == pytest.approx(before["size_mb"] + len("boundary_shift_ms: -16.6\n") / 1e6, abs=1e-3)
    computed = [f.name for f in fields(ComputedFacts) if f.name != "size_mb"]
    assert {k: after[k] for k in computed} == {k: before[k] for k in computed}
    assert "| boundary accuracy | 61.5% " in (out / "MODEL_CARD.md").read_text()
    (out / "card.json").write_text(json.dumps({"dev_per": 1.0}))
    with pytest.raises(ConfigError, match="card.json: no name, phone_set"):
        rewrite_card(out, CardFacts())


def test_fp32_export_keeps_the_weights_bit_for_bit(tiny: Path, tmp_path: Path) -> None:
    export_model_dir(tiny, tmp_path / "out")
    a, b = load_file(str(tiny / "model.safetensors")), load_file(str(tmp_path / "out" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "| weights | `model.safetensors`, stored as float32" in (tmp_path / "out" / "MODEL_CARD.md").read_text()


def test_export_command_prints_the_fp16_check(tiny: Path, tmp_path: Path, capsys, caplog) -> None:
    status, out, err = run_main(export_cli.main, [tiny, tmp_path / "out", "--fp16"], capsys)
    assert status == 0, err
    diff = float(re.search(r"max abs log-prob difference ([0-9.e-]+)", out).group(1))
    assert 0 < diff < 0.05 and "greedy outputs identical" in out
    assert "no test_bound_per" in caplog.text  # the warning for a packaged model's test


def test_failed_fp16_check_writes_nothing(tiny: Path, tmp_path: Path, capsys) -> None:
    status, _, err = run_main(export_cli.main, [tiny, tmp_path / "out", "--fp16", "--tolerance", "1e-12"], capsys)
    assert status == 2
    assert err.splitlines()[0].startswith(f"phonrec-export: error: {tiny}: fp16 weights change the model's outputs")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_existing_out_dir_is_refused_and_overwrite_replaces_only_an_export(tiny: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    export_model_dir(tiny, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    status, _, err = run_main(export_cli.main, [tiny, out, "--fp16"], capsys)
    assert status == 2 and f"{out} already exists; pass --overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    status, _, err = run_main(export_cli.main, [tiny, out, "--fp16", "--overwrite"], capsys)
    assert status == 0, err
    assert set(safetensors_dtypes(out / "model.safetensors").values()) == {"F16"}
    (out / "notes.txt").write_text("mine")
    status, _, err = run_main(export_cli.main, [tiny, out, "--overwrite"], capsys)
    assert status == 2 and "holds notes.txt, which phonrec-export does not write" in err
    assert (out / "notes.txt").read_text() == "mine"
    assert set(safetensors_dtypes(out / "model.safetensors").values()) == {"F16"}  # unchanged


def test_card_facts_are_validated_naming_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "facts.json"
    bad.write_text(json.dumps({"dev_pre": 3.0}))
    with pytest.raises(ValueError, match=r"facts\.json: unknown key\(s\) card\.dev_pre"):
        read_facts(bad)
    bad.write_text(json.dumps({"size_mb": 3.0}))
    with pytest.raises(ValueError, match=r"facts\.json: size_mb are measured by phonrec-export itself"):
        read_facts(bad)
    bad.write_text(json.dumps({"training_data": [{"name": "x"}]}))
    with pytest.raises(ValueError, match=r"facts\.json: training_data\[0\]"):
        read_facts(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"dev_per": 30, "training_data": [{"name": "x", "licence": "CC0"}]}))
    assert read_facts(good) == CardFacts(dev_per=30, training_data=(TrainingData("x", "CC0"),))


def test_the_shipped_facts_template_is_valid() -> None:
    facts = read_facts(Path(__file__).resolve().parents[1] / "recipes" / "speechocean762" / "model_card_facts.json")
    assert any("speechocean762" in d.name and d.licence == "CC BY 4.0" and d.credit for d in facts.training_data)
    assert facts.dev_per is None and facts.test_bound_per is None  # figures come from the lead's measurements


class Payload:
    """Unpickling this creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_an_fp16_export_loads_without_running_code(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_model_dir(tiny, out, fp16=True)
    marker = tmp_path / "MARKER"
    torch.save({"rnns.0.weight_ih_l0": Payload(marker)}, out / "model.safetensors")
    with pytest.raises(ValueError, match=r"model\.safetensors: not a valid safetensors file"):
        Transcriber.from_pretrained(out)
    assert not marker.exists()
    # the control: the planted file does run code when unpickled the unsafe way (under a .pt name:
    # torch.load hands *.safetensors to safetensors)
    shutil.copyfile(out / "model.safetensors", tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


# --- names, defaults, absent models -----------------------------------------------------------------


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(pretrained.PretrainedModelError, match=r"unknown pretrained model 'fr'; phonrec knows: en"):
        pretrained.model_path("fr")
    with pytest.raises(FileNotFoundError, match=r"fr: not a phonrec model directory"):
        Transcriber.from_pretrained("fr")  # not a name: read as a directory, which is missing


def test_a_directory_named_en_wins(tiny: Path, tmp_path: Path, monkeypatch) -> None:
    shutil.copytree(tiny, tmp_path / "en")
    monkeypatch.chdir(tmp_path)
    assert pretrained.resolve("en") == Path("en")
    assert Transcriber.from_pretrained("en").phone_set.symbols == ("<blank>", "sil", "ah", "b", "k")


@pytest.fixture
def no_packaged_model(tmp_path: Path, monkeypatch) -> None:
    """An installation without the packaged files: the package folder points at an empty one."""
    monkeypatch.setattr(pretrained, "PACKAGE_DIR", tmp_path / "no_models")


def _message_absent(prefix: str = "") -> str:
    return f"{prefix}no pretrained model 'en' is packaged with this installation of phonrec"


def test_without_a_packaged_model_the_api_and_commands_say_so_in_one_line(
    no_packaged_model, tmp_path: Path, capsys
) -> None:
    assert pretrained.available() == []
    with pytest.raises(pretrained.PretrainedModelError, match=_message_absent()):
        Transcriber.from_pretrained("en")
    wav = tmp_path / "a.wav"
    sf.write(wav, sine_noise(0.5), SR)
    status, out, err = run_main(transcribe_cli.main, [wav], capsys)
    assert status == 2 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"phonrec-transcribe: error: {_message_absent()}") and "Traceback" not in err
    assert len(lines) == 2 and lines[1] == "phonrec-transcribe: (PHONREC_DEBUG=1 shows the traceback)"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sf.write(corpus / "a.wav", sine_noise(0.5), SR)
    (corpus / "a.lab").write_text("a\n")
    status, _, err = run_main(align_cli.main, [corpus, tmp_path / "aligned"], capsys)
    assert status == 2
    assert err.splitlines()[0].startswith(f"phonrec-align: error: {_message_absent('--model en: ')}")
    assert not (tmp_path / "aligned").exists()


def test_transcribe_without_a_model_uses_the_packaged_en(tiny: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """With a model packaged as ``en`` (the tiny one, in a stand-in package folder), ``phonrec-transcribe
    a.wav`` decodes exactly as naming that model directory does (the older form)."""
    package = tmp_path / "package"
    shutil.copytree(tiny, package / "en")
    monkeypatch.setattr(pretrained, "PACKAGE_DIR", package)
    wav = tmp_path / "a.wav"
    sf.write(wav, sine_noise(1.0, seed=4), SR)
    runs = [run_main(transcribe_cli.main, argv, capsys) for argv in ([wav], [tiny, wav], ["--model", "en", wav])]
    assert [r[0] for r in runs] == [0, 0, 0]
    assert runs[0][1] == runs[1][1] == runs[2][1] and runs[0][1].startswith(f"{wav}:")


def test_which_first_argument_is_the_model(tiny: Path, tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(1600, dtype=np.float32), SR)
    (tmp_path / "audio").mkdir()
    names = transcribe_cli.names_model
    assert names(str(tiny), more=True) and names(str(tiny), more=False)  # a model directory
    assert not names(str(wav), more=True) and not names(str(tmp_path / "audio"), more=True)  # inputs
    assert names("en", more=True)  # a packaged name that is no path
    assert names(str(tmp_path / "exp" / "mistyped"), more=True)  # reported as a model directory
    assert not names(str(tmp_path / "missing.wav"), more=True)  # reported as a missing input
    assert not names(str(tmp_path / "missing"), more=False)  # alone: an input (the model is en)


def test_flite_reference_is_what_the_bound_is_computed_on(flite_utterances) -> None:
    """The PER test's reference: flite's phones in phonrec's symbols score 0% against themselves and
    100% against nothing (so a bound below 100% asserts that the model recognised something)."""
    refs = {f"u{i}": [flite_to_phonrec(s.label) for s in u.segments] for i, u in enumerate(flite_utterances)}
    assert per(refs, refs).rate == 0
    assert per(refs, {u: [] for u in refs}).rate == 1.0
    assert all("sil" in r and len(r) > 10 for r in refs.values())
