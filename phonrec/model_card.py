"""The model card of an exported model: ``MODEL_CARD.md`` from a template plus facts, and
``card.json`` with the same facts.

Two kinds of facts go in:

* given ones, from the ``--card-json FACTS.json`` of ``phonrec-export`` (:class:`CardFacts`):
  the training data and their licences, the recipe command and commit, the measured PER,
  boundary accuracy and real-time factor, and ``test_bound_per`` (the PER bound that
  ``tests/test_pretrained.py`` holds the shipped model to on a flite utterance);
* computed ones, from the exported directory itself (:class:`ComputedFacts`): the phone set (read
  from ``phones.txt``, so the card cannot disagree with the model), parameters, size, the
  weights' storage dtype and the fp16 check.

A fact that is not given is written as "not measured" (numbers) or "not recorded" (provenance),
never as a number. FACTS.json example (every key optional; unknown keys are refused by name)::

    {
      "title": "phonrec English phone recogniser",
      "training_data": [{"name": "speechocean762", "licence": "CC BY 4.0",
                          "source": "https://www.openslr.org/101/",
                          "credit": "Zhang et al., speechocean762, Interspeech 2021"}],
      "recipe_command": "bash recipes/speechocean762/run.sh ...",
      "commit": "0123abc",
      "dev_per": 30.5, "dev_per_note": "12 held-out speakers, greedy",
      "test_bound_per": 60
    }
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from phonrec.config import ConfigError, dataclass_from
from phonrec.model_dir import CONFIG, OPTIONAL, PHONES, WEIGHTS
from phonrec.phones import PhoneSet

NOT_MEASURED, NOT_RECORDED = "not measured", "not recorded"
CARD_FILE, FACTS_FILE = "MODEL_CARD.md", "card.json"


@dataclass(frozen=True)
class TrainingData:
    """One training corpus of the card.

    Attributes:
        name: the corpus (``speechocean762``).
        licence: its licence (``CC BY 4.0``).
        source: where it comes from (URL or citation).
        credit: the attribution its licence asks for.
        amount: how much of it was used (``"2,500 utterances, 125 speakers"``).
    """

    name: str
    licence: str
    source: str | None = None
    credit: str | None = None
    amount: str | None = None


@dataclass(frozen=True)
class CardFacts:
    """The given facts of a model card (FACTS.json). Percentages are numbers in percent.

    Attributes:
        title: the card's heading.
        description: a paragraph under it.
        licence: the licence of the model's weights.
        training_data: the corpora (:class:`TrainingData`).
        recipe_command: the exact command that trains the model from scratch.
        commit: the phonrec commit it was trained with.
        dev_per, test_per: PER in % (39 folded phones, silence removed) and what it was measured on.
        boundary_accuracy: % of phone boundaries within the tolerance, and how it was measured.
        rtf: real-time factor (processing time / audio duration), and the machine.
        test_bound_per: the PER bound (%) ``tests/test_pretrained.py`` asserts on a flite utterance.
        notes: free text (known gaps).
    """

    title: str | None = None
    description: str | None = None
    licence: str | None = None
    training_data: tuple[TrainingData, ...] = ()
    recipe_command: str | None = None
    commit: str | None = None
    dev_per: float | None = None
    dev_per_note: str | None = None
    test_per: float | None = None
    test_per_note: str | None = None
    boundary_accuracy: float | None = None
    boundary_accuracy_note: str | None = None
    rtf: float | None = None
    rtf_note: str | None = None
    test_bound_per: float | None = None
    notes: str | None = None

    def __post_init__(self) -> None:
        for name in ("dev_per", "test_per", "boundary_accuracy", "test_bound_per"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1000:
                raise ValueError(f"{name} is a percentage, got {value}")
        if self.rtf is not None and not self.rtf > 0:
            raise ValueError(f"rtf must be > 0, got {self.rtf}")


@dataclass(frozen=True)
class ComputedFacts:
    """What the exporter reads off the exported directory.

    Attributes:
        name: the model's name (the output directory's name).
        phone_set: the output symbols in id order (``phones.txt``).
        parameters: number of weights.
        size_mb: all files of the directory, in MB (10^6 bytes).
        weights_mb: ``model.safetensors`` alone, in MB.
        weights_dtype: how the weights are stored (``float16`` / ``float32``).
        architecture: the model in words (``CTC BiLSTM 3x256 ...``).
        features: the features in words.
        decoder: the default search (``decoding.yaml``).
        fp16_max_abs_diff: fp16 export: max |log p16 - log p32| on the check's random features.
        fp16_check: fp16 export: what the check compared.
        phonrec_version: the exporting phonrec's version.
    """

    name: str
    phone_set: tuple[str, ...]
    parameters: int
    size_mb: float
    weights_mb: float
    weights_dtype: str
    architecture: str
    features: str
    decoder: str
    fp16_max_abs_diff: float | None = None
    fp16_check: str | None = None
    phonrec_version: str | None = None


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path`` (a card's facts).

    Raises:
        FileNotFoundError: no such file.
        ConfigError: not valid JSON, or not an object (the file and ``what`` named).
    """
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a JSON object of {what}, got {type(values).__name__}")
    return values


def read_facts(path: str | Path) -> CardFacts:
    """FACTS.json validated: unknown keys, wrong types and the computed facts (which the exporter
    measures itself) are refused, naming the file and the key.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: not a JSON object, or a bad key or value (named).
    """
    path = Path(path)
    values = read_json_object(path, "card facts")
    computed = sorted(set(values) & {f.name for f in fields(ComputedFacts)})
    if computed:
        raise ConfigError(f"{path}: {', '.join(computed)} are measured by phonrec-export itself; remove them")
    data = values.pop("training_data", [])
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ConfigError(f"{path}: training_data must be a list of objects (name, licence, source, credit, amount)")
    try:
        corpora = tuple(dataclass_from(TrainingData, d, f"training_data[{i}]") for i, d in enumerate(data))
        return dataclass_from(CardFacts, {**values, "training_data": corpora}, "card")
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def card_record(facts: CardFacts, computed: ComputedFacts) -> dict[str, Any]:
    """The content of ``card.json``: every given and computed fact (``null`` when not given)."""
    record = asdict(facts)
    record.update(asdict(computed))
    record["training_data"] = [asdict(d) for d in facts.training_data]
    record["phone_set"] = list(computed.phone_set)
    return record


def _or(value: Any, missing: str, fmt: str = "{}") -> str:
    return missing if value is None else fmt.format(value)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_card(facts: CardFacts, computed: ComputedFacts) -> str:
    """``MODEL_CARD.md``: the template filled with ``facts`` and ``computed``."""
    c = computed
    title = facts.title or f"phonrec pretrained model '{c.name}'"
    weights = f"`model.safetensors`, stored as {c.weights_dtype}, computed in float32"
    if c.fp16_max_abs_diff is not None:
        weights += f" (fp16 check against the fp32 weights: {c.fp16_check})"
    lines = [
        f"# {title}",
        "",
        *([facts.description, ""] if facts.description else []),
        "Generated by `phonrec-export` from the model directory and the facts the recipe measured; a",
        "figure that was not measured says so. The same facts are in `card.json`. Load it with",
        "`Transcriber.from_pretrained(DIRECTORY)`, or by name when it is packaged as",
        f'`phonrec/pretrained/{c.name}/`: `Transcriber.from_pretrained("{c.name}")`, `phonrec-transcribe a.wav`.',
        "",
        "| | |",
        "|---|---|",
        f"| model | {_cell(c.architecture)}; {c.parameters:,} parameters |",
        f"| weights | {_cell(weights)} |",
        f"| size | {c.size_mb:.2f} MB on disk (weights {c.weights_mb:.2f} MB) |",
        f"| features | {_cell(c.features)} |",
        f"| default decoding | {c.decoder} (`decoding.yaml`) |",
        f"| licence of the weights | {_cell(_or(facts.licence, NOT_RECORDED))} |",
        f"| exported by | phonrec {_or(c.phonrec_version, NOT_RECORDED)} |",
        "",
        "## Training data",
        "",
    ]
    if facts.training_data:
        lines += ["| corpus | licence | amount | source |", "|---|---|---|---|"]
        lines += [
            f"| {_cell(d.name)} | {_cell(d.licence)} | {_cell(_or(d.amount, NOT_RECORDED))} "
            f"| {_cell(_or(d.source, NOT_RECORDED))} |"
            for d in facts.training_data
        ]
        credits = [d for d in facts.training_data if d.credit]
        if credits:
            lines += ["", "Credits (as the corpora's licences ask):", ""]
            lines += [f"- {d.name}: {' '.join(d.credit.split())}" for d in credits]  # type: ignore[union-attr]
    else:
        lines.append(NOT_RECORDED)
    lines += [
        "",
        "## How it was made",
        "",
        "Recipe command (from scratch):",
        "",
        "```text",
        _or(facts.recipe_command, NOT_RECORDED),
        "```",
        "",
        f"phonrec commit: {_or(facts.commit, NOT_RECORDED)}",
        "",
        "## Measured",
        "",
        "| figure | value | measured on |",
        "|---|---|---|",
        f"| PER, dev | {_or(facts.dev_per, NOT_MEASURED, '{:.1f}%')} | {_cell(facts.dev_per_note or '')} |",
        f"| PER, test | {_or(facts.test_per, NOT_MEASURED, '{:.1f}%')} | {_cell(facts.test_per_note or '')} |",
        f"| boundary accuracy | {_or(facts.boundary_accuracy, NOT_MEASURED, '{:.1f}%')} "
        f"| {_cell(facts.boundary_accuracy_note or '')} |",
        f"| real-time factor | {_or(facts.rtf, NOT_MEASURED, '{:.4g}')} | {_cell(facts.rtf_note or '')} |",
        f"| test bound (PER on a flite utterance, `tests/test_pretrained.py`) "
        f"| {_or(facts.test_bound_per, NOT_RECORDED, 'below {:g}%')} | |",
        "",
        "PER: phone error rate on 39 folded phones with silence removed (`phonrec.metrics.per`).",
        "",
        "## Phone set",
        "",
        f"{len(c.phone_set)} output symbols, in id order (from `phones.txt`):",
        "",
        "```text",
        " ".join(c.phone_set),
        "```",
    ]
    if facts.notes:
        lines += ["", "## Notes", "", facts.notes.strip()]
    return "\n".join(lines) + "\n"


def write_card(out_dir: str | Path, facts: CardFacts, computed: ComputedFacts) -> None:
    """Write ``MODEL_CARD.md`` and ``card.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    (out_dir / CARD_FILE).write_text(render_card(facts, computed), encoding="utf-8")
    (out_dir / FACTS_FILE).write_text(json.dumps(card_record(facts, computed), indent=2) + "\n", encoding="utf-8")


def model_size_mb(model_dir: str | Path) -> float:
    """MB (10^6 bytes, rounded to 0.001) of the model files of a directory: ``config.yaml``,
    the weights, ``phones.txt`` and whichever optional files it has (not the card)."""
    files = [Path(model_dir) / n for n in (CONFIG, WEIGHTS, PHONES, *OPTIONAL)]
    return round(sum(f.stat().st_size for f in files if f.is_file()) / 1e6, 3)


def rewrite_card(out_dir: str | Path, facts: CardFacts) -> None:
    """Give an earlier export new given facts (figures measured after it was made) without touching
    its weights: the computed facts are read back from its ``card.json`` and checked against its
    ``phones.txt``, the size is measured again (a ``decoding.yaml`` may have been added), then
    ``MODEL_CARD.md`` and ``card.json`` are rewritten.

    Raises:
        FileNotFoundError: ``out_dir`` has no ``card.json``.
        ConfigError: ``card.json`` lacks a computed fact, or its phone set is not ``phones.txt``'s.
    """
    out_dir = Path(out_dir)
    record = read_json_object(out_dir / FACTS_FILE, "card facts")
    names = [f.name for f in fields(ComputedFacts)]
    missing = [f.name for f in fields(ComputedFacts) if f.default is MISSING and f.name not in record]
    if missing:
        raise ConfigError(f"{out_dir / FACTS_FILE}: no {', '.join(missing)}: not written by phonrec-export")
    computed = ComputedFacts(**{n: record[n] for n in names if n in record})
    # measured again: e.g. a decoding.yaml added since the export
    computed = replace(computed, phone_set=tuple(computed.phone_set), size_mb=model_size_mb(out_dir))
    if computed.phone_set != tuple(PhoneSet.from_file(out_dir / "phones.txt").symbols):
        raise ConfigError(f"{out_dir / FACTS_FILE}: its phone_set is not {out_dir / 'phones.txt'}'s")
    write_card(out_dir, facts, computed)
