"""The models that ship inside the package: ``phonrec/pretrained/<name>/``.

Each name is a model directory as :func:`phonrec.model_dir.read_model_dir` reads it (written by
``phonrec-export``, :mod:`phonrec.export`), with its model card beside the weights::

    phonrec/pretrained/en/
        model.safetensors   weights (stored fp16 when exported with --fp16; loaded as fp32)
        config.yaml phones.txt cmvn.json [lexicon.txt decoding.yaml phone_bigram.json]
        MODEL_CARD.md       training data and licences, recipe, commit, measured figures, phone set
        card.json           the same facts as JSON (read by the tests: ``test_bound_per``)

Example::

    from phonrec.pretrained import available, model_card, model_path
    available()           # ['en'] when the English model is packaged, [] when it is not
    model_path("en")      # .../phonrec/pretrained/en
    print(model_card("en"))

:meth:`phonrec.Transcriber.from_pretrained` takes these names (an existing directory of the same
name wins), ``phonrec-transcribe`` and ``phonrec-align`` use ``en`` when no model is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phonrec.model_card import CARD_FILE, FACTS_FILE, read_json_object
from phonrec.model_dir import REQUIRED

PACKAGE_DIR = Path(__file__).resolve().parent
NAMES: dict[str, str] = {
    "en": "English phones (ARPAbet without stress, plus sil), CTC BiLSTM",
}


class PretrainedModelError(FileNotFoundError):
    """A packaged model that phonrec does not know, or whose files are not in this installation.

    A ``FileNotFoundError``, so the commands print it as one line (:mod:`phonrec.cli.errors`).
    """


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise PretrainedModelError(
            f"unknown pretrained model {name!r}; phonrec knows: {', '.join(NAMES)} "
            f"(packaged here: {', '.join(available()) or 'none'})"
        )


def is_packaged(name: str) -> bool:
    """Whether ``phonrec/pretrained/<name>/`` holds every file a model directory needs."""
    return name in NAMES and all((PACKAGE_DIR / name / f).is_file() for f in REQUIRED)


def available() -> list[str]:
    """The names of :data:`NAMES` whose model files are packaged in this installation."""
    return [name for name in NAMES if is_packaged(name)]


def model_path(name: str = "en") -> Path:
    """The packaged model directory of ``name``.

    Raises:
        PretrainedModelError: ``name`` is not one of :data:`NAMES` (the known and the packaged
            names listed), or its files are not in this installation (the missing file named).
    """
    _check_name(name)
    path = PACKAGE_DIR / name
    missing = [f for f in REQUIRED if not (path / f).is_file()]
    if missing:
        raise PretrainedModelError(
            f"no pretrained model {name!r} is packaged with this installation of phonrec ({path} has no "
            f"{missing[0]}); give a model directory written by phonrec-train or phonrec-export"
        )
    return path


def model_card(name: str = "en") -> str:
    """The text of the packaged model's ``MODEL_CARD.md``.

    Raises:
        PretrainedModelError: as :func:`model_path`, or the card is missing.
    """
    card = model_path(name) / CARD_FILE
    if not card.is_file():
        raise PretrainedModelError(f"{card}: the packaged model {name!r} has no model card")
    return card.read_text(encoding="utf-8")


def card_facts(name: str = "en") -> dict[str, Any]:
    """The packaged model's ``card.json``: the facts its card was made from (:mod:`phonrec.model_card`).

    Raises:
        PretrainedModelError: as :func:`model_path`, or ``card.json`` is missing.
        ValueError: ``card.json`` is not a JSON object (named).
    """
    path = model_path(name) / FACTS_FILE
    if not path.is_file():
        raise PretrainedModelError(f"{path}: the packaged model {name!r} has no {FACTS_FILE}")
    return read_json_object(path, "card facts")


def resolve(model: str | Path) -> Path:
    """A model argument as a directory: an existing directory as it is (so a folder named ``en``
    in the working directory wins over the packaged model), else a name of :data:`NAMES` as its
    packaged directory, else the path unchanged (reading it then names what is missing).

    Raises:
        PretrainedModelError: a known name whose files are not packaged.
    """
    path = Path(model)
    if path.is_dir() or str(model) not in NAMES:
        return path
    return model_path(str(model))
