"""TIMIT (LDC93S1) -> Kaldi-style data directories with TIMIT's 61 phones and frame alignments.

Layout (any mix of upper and lower case)::

    ROOT/TRAIN|TEST/DR1..DR8/SPEAKER/SENT.{WAV,PHN,WRD,TXT}

``.WAV`` files are NIST SPHERE (read through soundfile); ``.PHN``/``.WRD`` hold
``start_sample end_sample label`` lines at 16 kHz; ``.TXT`` holds
``start_sample end_sample The sentence.``.

Splits (the ones every TIMIT phone-recognition paper uses):

* ``train``: all 462 speakers of ``TRAIN``;
* ``dev``: the 50-speaker development set of Kaldi's ``egs/timit/s5/conf/dev_spk.list``;
* ``test``: the 24-speaker core test set (Kaldi's ``conf/test_spk.list``; TIMIT's documented
  core test set: two men and one woman from each of the eight dialect regions).

The ``SA1``/``SA2`` dialect sentences (read by every speaker) are excluded unless
``include_sa=True``. Phones stay in TIMIT's 61-symbol inventory (lower-case, ``h#``, ``pau``,
``epi`` and ``q`` as given); folding to 48/39 phones happens at training and scoring time
(``phonrec.phones.fold_timit``).

Example::

    dirs = prepare_timit("/corpora/TIMIT", "data/timit")
    dirs["train"].alignments["fcjf0_si1027"][:3]   # ['h#', 'h#', 'h#']
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import soundfile as sf

from phonrec.data.datadir import DataDir, log_skipped
from phonrec.data.segments import Segment, segments_to_frame_labels
from phonrec.features import num_frames
from phonrec.phones import TIMIT_61_PHONES
from phonrec.textfile import read_lines

log = logging.getLogger(__name__)

TIMIT_SAMPLE_RATE = 16000

# Kaldi egs/timit/s5/conf/dev_spk.list (the 50-speaker development set).
TIMIT_DEV_SPEAKERS = frozenset(
    """
    faks0 fdac1 fjem0 mgwt0 mjar0 mmdb1 mmdm2 mpdf0 fcmh0 fkms0 mbdg0 mbwm0 mcsh0 fadg0 fdms0
    fedw0 mgjf0 mglb0 mrtk0 mtaa0 mtdt0 mthc0 mwjg0 fnmr0 frew0 fsem0 mbns0 mmjr0 mdls0 mdlf0
    mdvc0 mers0 fmah0 fdrw0 mrcs0 mrjm4 fcal1 mmwh0 fjsj0 majc0 mjsw0 mreb0 fgjd0 fjmg0 mroa0
    mteb0 mjfc0 mrjr0 fmml0 mrws1
    """.split()
)

# The 24-speaker core test set (Kaldi egs/timit/s5/conf/test_spk.list).
TIMIT_CORE_TEST_SPEAKERS = frozenset(
    """
    mdab0 mwbt0 felc0 mtas1 mwew0 fpas0 mjmp0 mlnt0 fpkt0 mlll0 mtls0 fjlm0 mbpm0 mklt0 fnlp0
    mcmj0 mjdh0 fmgd0 mgrt0 mnjm0 fdhc0 mjln0 mpam0 fmld0
    """.split()
)

TIMIT_SETS = ("train", "dev", "test")
_TIMIT_61 = frozenset(TIMIT_61_PHONES)
_DIALECT_DIR = re.compile(r"^dr[1-8]$")
# Characters kept inside words of the transcript; everything else (.,?!;:" etc.) separates words.
_WORD_CHARS = re.compile(r"[^A-Z0-9'\-]+")


# --- .PHN / .WRD files --------------------------------------------------------------------
def read_phn(path: str | Path, sample_rate: int = TIMIT_SAMPLE_RATE) -> list[Segment]:
    """Read a TIMIT ``.PHN`` (or ``.WRD``) file: ``start_sample end_sample label`` per line.

    Args:
        path: the file.
        sample_rate: samples per second of the sample indices (16000 for TIMIT).

    Returns:
        segments in file order, times in seconds (``sample / sample_rate``), labels verbatim.

    Raises:
        ValueError: naming ``file:line`` for a line without three fields, non-integer or negative
            samples, an end before its start, a segment starting before the previous one ends,
            or a file with no segments.

    Example::

        read_phn("SA1.PHN")[1]   # Segment(label='sh', start=0.1925, end=0.2875)
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    path = Path(path)
    segments: list[Segment] = []
    prev_end = 0
    for line_no, raw in enumerate(read_lines(path), start=1):
        fields = raw.split()
        if not fields:
            continue
        where = f"{path}:{line_no}"
        if len(fields) != 3:
            raise ValueError(f"{where}: expected 'start_sample end_sample label', got {raw.strip()!r}")
        try:
            start, end = int(fields[0]), int(fields[1])
        except ValueError:
            raise ValueError(f"{where}: sample indices must be integers, got {raw.strip()!r}") from None
        if start < 0 or end < start:
            raise ValueError(f"{where}: expected 0 <= start <= end, got start={start} end={end}")
        if segments and start < prev_end:
            raise ValueError(f"{where}: segment starts at sample {start}, before the previous one ends ({prev_end})")
        prev_end = end
        segments.append(Segment(fields[2], start / sample_rate, end / sample_rate))
    if not segments:
        raise ValueError(f"{path}: no segments")
    return segments


def write_phn(path: str | Path, segments: list[Segment], sample_rate: int = TIMIT_SAMPLE_RATE) -> None:
    """Write segments as a TIMIT ``.PHN`` file (seconds rounded to the nearest sample).

    Raises:
        ValueError: for a label that is empty or contains white space, or a segment that ends
            before it starts.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    lines = []
    for i, seg in enumerate(segments):
        if not seg.label or any(c.isspace() for c in seg.label):
            raise ValueError(f"{path}: segment {i} has an empty label or one with white space: {seg.label!r}")
        start, end = round(seg.start * sample_rate), round(seg.end * sample_rate)
        if start < 0 or end < start:
            raise ValueError(f"{path}: segment {i} must have 0 <= start <= end: {seg}")
        lines.append(f"{start} {end} {seg.label}\n")
    Path(path).write_text("".join(lines), encoding="utf-8")


def read_timit_txt(path: str | Path) -> str:
    """Read a TIMIT ``.TXT`` file -> upper-case words without punctuation.

    ``0 46797 She had your dark suit in greasy wash water all year.`` ->
    ``SHE HAD YOUR DARK SUIT IN GREASY WASH WATER ALL YEAR``. Apostrophes and hyphens inside
    words are kept (``DON'T``, ``WASH-WATER``).

    Raises:
        ValueError: naming the file when the two leading sample offsets are missing.
    """
    path = Path(path)
    content = path.read_text(encoding="utf-8").strip()
    fields = content.split(maxsplit=2)
    if len(fields) < 2 or not (fields[0].isdigit() and fields[1].isdigit()):
        raise ValueError(f"{path}:1: expected 'start_sample end_sample sentence', got {content[:60]!r}")
    sentence = fields[2] if len(fields) == 3 else ""
    words = (w.strip("'-") for w in _WORD_CHARS.sub(" ", sentence.upper()).split())
    return " ".join(w for w in words if w)


# --- corpus walk ---------------------------------------------------------------------------
def _files(path: Path) -> dict[str, Path]:
    """Lower-cased name -> file, for a speaker folder read case-insensitively."""
    return {p.name.lower(): p for p in sorted(path.iterdir()) if p.is_file()}


def _find_split_dirs(root: Path) -> dict[str, list[Path]]:
    """``{"train": [ROOT/TRAIN], "test": [ROOT/TEST]}`` looked up in ``root`` or one folder below it
    (folders differing only in case are all kept)."""
    for base in [root] + [p for p in sorted(root.iterdir()) if p.is_dir()]:
        found: dict[str, list[Path]] = {}
        for p in sorted(base.iterdir()):
            if p.is_dir() and p.name.lower() in ("train", "test"):
                found.setdefault(p.name.lower(), []).append(p)
        if found:
            return found
    raise ValueError(f"{root}: no TRAIN or TEST folder found (expected TIMIT's ROOT/TRAIN/DR1/SPEAKER/SENT.WAV layout)")


def _speaker_dirs(split_dirs: list[Path]) -> list[Path]:
    dirs = []
    for split_dir in split_dirs:
        for dr in sorted(split_dir.iterdir()):
            if dr.is_dir() and _DIALECT_DIR.match(dr.name.lower()):
                dirs.extend(p for p in sorted(dr.iterdir()) if p.is_dir())
    return dirs


def _prepare_utterance(files: dict[str, Path], stem: str, utt: str) -> tuple[str, list[str], list[str]]:
    """Read one sentence's files -> (text, 61-phone string, per-frame labels).

    Raises:
        ValueError: naming the file at fault (missing file, malformed line, unreadable audio).
    """
    for ext in ("wav", "phn", "txt"):
        if f"{stem}.{ext}" not in files:
            raise ValueError(f"no .{ext.upper()} file for {utt}")
    wav = files[f"{stem}.wav"]
    try:
        info = sf.info(str(wav))
    except RuntimeError as e:
        raise ValueError(f"{wav}: unreadable audio ({e})") from None
    segments = read_phn(files[f"{stem}.phn"], sample_rate=info.samplerate)
    segments = [Segment(s.label.lower(), s.start, s.end) for s in segments]
    unknown = sorted({s.label for s in segments} - _TIMIT_61)
    if unknown:
        raise ValueError(f"{files[f'{stem}.phn']}: labels not in TIMIT's 61-phone set: {unknown}")
    frames = num_frames(info.frames, sample_rate=info.samplerate)
    if frames == 0:
        raise ValueError(f"{wav}: too short for one frame ({info.frames} samples)")
    alignment = segments_to_frame_labels(segments, frames, fill="h#", source=str(files[f"{stem}.phn"]))
    return read_timit_txt(files[f"{stem}.txt"]), [s.label for s in segments], alignment


def prepare_timit(
    root: str | Path,
    out_dir: str | Path,
    *,
    sets: tuple[str, ...] = TIMIT_SETS,
    include_sa: bool = False,
) -> dict[str, DataDir]:
    """Prepare TIMIT's train / dev / core-test sets as data directories ``out_dir/<set>``.

    Each directory has ``wav.scp``, ``text``, ``utt2spk``, ``phones`` (the 61-symbol phone
    string of the ``.PHN`` file, lower-case) and ``alignments`` (one phone per 10 ms frame, its
    length the feature frame count of the audio; frames outside every segment get ``h#``).
    Utterance ids are ``speaker_sentence`` (lower-case, e.g. ``fcjf0_si1027``), speakers the
    lower-cased speaker folder names. Sentences with a missing file, a malformed ``.PHN``/``.TXT``
    line or unreadable audio are reported in one warning (count and ids) and skipped.

    Args:
        root: the TIMIT folder (holding ``TRAIN`` and ``TEST``, in any case, directly or one
            folder below).
        out_dir: where ``train/``, ``dev/``, ``test/`` are written.
        sets: which of ``"train"``, ``"dev"``, ``"test"`` to prepare.
        include_sa: keep the ``SA1``/``SA2`` dialect sentences.

    Returns:
        set name -> the saved DataDir.

    Raises:
        ValueError: for an unknown set name, a root without TRAIN/TEST, a requested set whose
            folder is absent, or a set with no usable utterance.
    """
    unknown = [s for s in sets if s not in TIMIT_SETS]
    if unknown:
        raise ValueError(f"unknown TIMIT set(s) {unknown}: expected a subset of {TIMIT_SETS}")
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise ValueError(f"{root}: TIMIT folder not found")
    split_dirs = _find_split_dirs(root)

    def wanted(split: str, speaker: str) -> str | None:
        if split == "train":
            return "train"
        if speaker in TIMIT_DEV_SPEAKERS:
            return "dev"
        if speaker in TIMIT_CORE_TEST_SPEAKERS:
            return "test"
        return None  # the rest of the complete test set: in no standard set

    tables: dict[str, dict[str, dict]] = {
        s: {"wavs": {}, "text": {}, "utt2spk": {}, "phones": {}, "alignments": {}} for s in sets
    }
    skipped: dict[str, str] = {}
    needed = {"train": [s for s in sets if s == "train"], "test": [s for s in sets if s != "train"]}
    for split, for_sets in needed.items():
        if not for_sets:
            continue
        if split not in split_dirs:
            raise ValueError(f"{root}: no {split.upper()} folder, needed for set(s) {for_sets}")
        for spk_dir in _speaker_dirs(split_dirs[split]):
            speaker = spk_dir.name.lower()
            target = wanted(split, speaker)
            if target not in sets:
                continue
            files = _files(spk_dir)
            stems = sorted(
                {name.split(".", 1)[0] for name in files if name.rsplit(".", 1)[-1] in ("wav", "phn", "txt", "wrd")}
            )
            for stem in stems:
                if stem.startswith("sa") and not include_sa:
                    continue
                utt = f"{speaker}_{stem}"
                if any(utt in t["wavs"] for t in tables.values()) or utt in skipped:
                    skipped[utt] = f"duplicate utterance id (also found elsewhere; {spk_dir})"
                    for t in tables.values():
                        for table in t.values():
                            table.pop(utt, None)
                    continue
                try:
                    text, phones, alignment = _prepare_utterance(files, stem, utt)
                except ValueError as e:
                    skipped[utt] = str(e)
                    continue
                t = tables[target]
                t["wavs"][utt] = files[f"{stem}.wav"]
                t["text"][utt] = text
                t["utt2spk"][utt] = speaker
                t["phones"][utt] = phones
                t["alignments"][utt] = alignment
    log_skipped(log, f"TIMIT {root}", skipped, "utterances")
    result: dict[str, DataDir] = {}
    for name in sets:
        t = tables[name]
        if not t["wavs"]:
            raise ValueError(f"{root}: TIMIT set {name!r} has no usable utterances")
        data = DataDir(**t)
        data.save(out_dir / name)
        log.info("TIMIT %s: %d utterances, %d speakers -> %s", name, len(data), len(data.speakers()), out_dir / name)
        result[name] = data
    return result
