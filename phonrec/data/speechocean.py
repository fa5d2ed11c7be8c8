"""speechocean762 (OpenSLR 101) -> Kaldi-style data directories with canonical phone strings.

Read from the corpus folder ``ROOT`` (``speechocean762/``)::

    ROOT/train/{wav.scp,text,utt2spk}     wav.scp paths are relative to ROOT
    ROOT/resource/text-phone              UTT.WORDINDEX  PHONES (K_B AO0_I L_E)
    ROOT/resource/lexicon.txt             the corpus lexicon (see :func:`speechocean_lexicon`)

``phones`` is the canonical pronunciation of the prompt, word after word (stress digits and
position tags removed, no silence inserted): what the speaker was asked to say, not a phonetic
transcription. There are no time alignments.

Split (by speaker, never by utterance): the official test split is not used here, so a
development set of held-out speakers is drawn from the train split. By default it is 10% of
the speakers (rounded, at least one), chosen deterministically: speakers are ordered by the
SHA-256 of ``f"{seed}:{speaker}"`` and the first ones are held out. The choice depends only on
the speaker ids and the seed (not on Python's ``random``), so it is stable across versions.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from phonrec.data.datadir import DataDir, log_skipped, read_kaldi_map, resolve_wav_path
from phonrec.phones import cmu_to_phonrec

log = logging.getLogger(__name__)

DEFAULT_HELDOUT_FRACTION = 0.1
DEFAULT_SEED = 0
# A CMU phone with optional stress digit and optional word-position tag: AO0_I, K_B, IH, UH1_S.
_TEXT_PHONE_TOKEN = re.compile(r"^[A-Z]{1,2}[012]?(_[BIES])?$")
_TEXT_PHONE_KEY = re.compile(r"^(\S+)\.(\d+)$")


def speechocean_lexicon(root: str | Path) -> Path:
    """The corpus lexicon ``ROOT/resource/lexicon.txt`` (``WORD<TAB>PHONES``, CMU phones with stress).

    Raises:
        ValueError: when the file is absent.
    """
    path = Path(root) / "resource" / "lexicon.txt"
    if not path.is_file():
        raise ValueError(f"{path}: speechocean762 lexicon not found")
    return path


def read_text_phone(path: str | Path) -> tuple[dict[str, dict[int, list[str]]], dict[str, str]]:
    """Read ``resource/text-phone`` -> (utt -> word index -> phonrec phones, utt -> problem).

    Lines are ``UTT.WORDINDEX PH PH ...``. An utterance with an empty pronunciation, a token
    that is not a tagged CMU phone, or a word index given twice is returned in the second dict
    (with the reason) instead of failing the whole file.

    Raises:
        ValueError: naming ``file:line`` for a key that is not ``UTT.INDEX``.
    """
    path = Path(path)
    words: dict[str, dict[int, list[str]]] = {}
    problems: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line_no, raw in enumerate(f, start=1):
            fields = raw.split()
            if not fields:
                continue
            m = _TEXT_PHONE_KEY.match(fields[0])
            if m is None:
                raise ValueError(f"{path}:{line_no}: expected 'UTT.WORDINDEX PHONES...', got key {fields[0]!r}")
            utt, index = m.group(1), int(m.group(2))
            where = f"{path}:{line_no}"
            if len(fields) == 1:
                problems.setdefault(utt, f"{where}: word {index} has no phones")
                continue
            bad = [t for t in fields[1:] if not _TEXT_PHONE_TOKEN.match(t)]
            if bad:
                problems.setdefault(utt, f"{where}: not a CMU phone: {bad}")
                continue
            table = words.setdefault(utt, {})
            if index in table:
                problems.setdefault(utt, f"{where}: word index {index} given twice")
                continue
            table[index] = [cmu_to_phonrec(t) for t in fields[1:]]
    return words, problems


def heldout_speakers_for(speakers: Sequence[str], fraction: float, seed: int) -> list[str]:
    """The deterministic held-out speakers: ``max(1, round(fraction * n))`` of them, ordered by
    SHA-256 of ``f"{seed}:{speaker}"``. Returned sorted.

    Raises:
        ValueError: unless ``0 < fraction < 1`` and there are at least two speakers.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"held-out fraction must be in (0, 1), got {fraction}")
    unique = sorted(set(speakers))
    if len(unique) < 2:
        raise ValueError(f"need at least two speakers to hold some out, got {unique}")
    k = min(len(unique) - 1, max(1, round(fraction * len(unique))))
    order = sorted(unique, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    return sorted(order[:k])


def prepare_speechocean762(
    root: str | Path,
    out_dir: str | Path,
    *,
    heldout_speakers: float | Sequence[str] = DEFAULT_HELDOUT_FRACTION,
    seed: int = DEFAULT_SEED,
) -> dict[str, DataDir]:
    """Prepare speechocean762's train split as ``out_dir/train`` and ``out_dir/dev``.

    Each directory has ``wav.scp`` (absolute paths), ``text``, ``utt2spk`` and ``phones``.
    Utterances with no text or speaker, a missing audio file, or text-phone entries missing or
    inconsistent with the number of words are reported in one warning (count and ids) and skipped.
    No audio is read.

    Args:
        root: the ``speechocean762`` folder.
        out_dir: where ``train/`` and ``dev/`` are written.
        heldout_speakers: a fraction of the speakers for ``dev`` (``0 < f < 1``, chosen as the
            module docstring describes), or an explicit list of speaker ids.
        seed: changes which speakers a fraction picks.

    Returns:
        ``{"train": DataDir, "dev": DataDir}`` with disjoint speakers.

    Raises:
        ValueError: for a missing corpus file, an explicit held-out speaker not in the corpus,
            or a split left empty.
    """
    root, out_dir = Path(root), Path(out_dir)
    train = root / "train"
    text_phone_path = root / "resource" / "text-phone"
    for needed in (train / "wav.scp", train / "text", train / "utt2spk", text_phone_path):
        if not needed.is_file():
            raise ValueError(f"{needed}: speechocean762 file not found (expected the corpus folder as root)")
    scp = read_kaldi_map(train / "wav.scp")
    text = read_kaldi_map(train / "text", allow_empty_value=True)
    utt2spk = read_kaldi_map(train / "utt2spk")
    words, problems = read_text_phone(text_phone_path)

    skipped: dict[str, str] = {}
    for utt in sorted((set(text) | set(utt2spk)) - set(scp)):
        skipped[utt] = "not in wav.scp"
    wavs: dict[str, Path] = {}
    phones: dict[str, list[str]] = {}
    for utt in sorted(scp):
        if utt not in text or utt not in utt2spk:
            skipped[utt] = (
                "no " + " or ".join(n for n, t in (("text", text), ("utt2spk", utt2spk)) if utt not in t) + " entry"
            )
            continue
        if utt in problems:
            skipped[utt] = problems[utt]
            continue
        n_words = len(text[utt].split())
        indices = sorted(words.get(utt, {}))
        if indices != list(range(n_words)):
            skipped[utt] = f"text has {n_words} words but text-phone has word indices {indices}"
            continue
        wav = resolve_wav_path(scp[utt], root, source=f"{train / 'wav.scp'} ({utt})")
        if not wav.is_file():
            skipped[utt] = f"audio file missing: {wav}"
            continue
        wavs[utt] = wav
        phones[utt] = [p for i in indices for p in words[utt][i]]
    log_skipped(log, f"speechocean762 {root}", skipped, "utterances")

    speakers = sorted({utt2spk[u] for u in wavs})
    if isinstance(heldout_speakers, str):
        raise ValueError(
            f"heldout_speakers must be a fraction or a list of speaker ids, got the string {heldout_speakers!r}"
        )
    if isinstance(heldout_speakers, (int, float)):
        dev_speakers = set(heldout_speakers_for(speakers, heldout_speakers, seed))
    else:
        dev_speakers = {str(s) for s in heldout_speakers}
        absent = sorted(dev_speakers - set(speakers))
        if absent:
            raise ValueError(f"held-out speakers not in {train / 'utt2spk'} (or with no usable utterance): {absent}")
    everything = DataDir(
        wavs=wavs,
        text={u: text[u] for u in wavs},
        utt2spk={u: utt2spk[u] for u in wavs},
        phones=phones,
    )
    result = {
        "train": everything.subset([u for u in wavs if utt2spk[u] not in dev_speakers]),
        "dev": everything.subset([u for u in wavs if utt2spk[u] in dev_speakers]),
    }
    for name, data in result.items():
        if len(data) == 0:
            raise ValueError(f"speechocean762 {name} split is empty (held-out speakers: {sorted(dev_speakers)})")
        data.save(out_dir / name)
        log.info(
            "speechocean762 %s: %d utterances, %d speakers -> %s", name, len(data), len(data.speakers()), out_dir / name
        )
    return result
