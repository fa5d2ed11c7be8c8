"""Praat TextGrids (as the Montreal Forced Aligner writes them) <-> timed segments, and a
data-directory builder for an aligned corpus.

Both text formats are read: the long one (``xmin = 0``, ``intervals [1]:`` ...) and the short
one (bare values, one per line); UTF-8 or UTF-16 (Praat writes UTF-16 with a byte-order mark
when a label is not ASCII). In both, the file is a stream of values (numbers, ``"strings"``
with ``""`` for a quote, ``<exists>``); the long format's keys (``xmin =``, ``item [2]:``) are
skipped. Interval tiers give one :class:`Segment` per interval, empty labels included (MFA
marks silence with an empty interval); point tiers (``TextTier``) give zero-length segments.
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from phonrec.data.datadir import DataDir, log_skipped
from phonrec.data.segments import Segment, segments_to_frame_labels
from phonrec.features import num_frames
from phonrec.phones import CMU_PHONES, SILENCE, cmu_to_phonrec

log = logging.getLogger(__name__)

TEXTGRID_SUFFIX = ".TextGrid"
AUDIO_SUFFIXES = (".wav", ".flac")
#: Phone-tier labels read as silence (MFA: empty; older MFA and Kaldi: ``sil``, ``sp``).
SILENCE_LABELS = frozenset({"", "sil", "sp", "<eps>"})
_TOLERANCE = 1e-9

# A string ("..." with "" inside for a quote; may span lines) or a bare token.
_TOKEN = re.compile(r'"(?:[^"]|"")*"|[^\s"]+|"', re.DOTALL)
# Keys of the long format (and of the header line of both formats): skipped.
_KEYS = frozenset(
    {"file", "type", "object", "class", "xmin", "xmax", "tiers?", "size", "item", "intervals", "intervals:",
     "points", "points:", "name", "text", "number", "mark", "time", "=", ":"}
)  # fmt: skip
_FLAGS = frozenset({"<exists>", "<absent>"})


@dataclass(frozen=True)
class _Value:
    """One value of the stream: a float, a str (from a quoted string) or a flag; ``line`` 1-based."""

    value: float | str
    kind: str  # "number" | "string" | "flag"
    line: int


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 or UTF-16 text ({e.reason} at byte {e.start})") from None


def _values(path: Path, content: str) -> list[_Value]:
    """The value stream of a TextGrid in either text format (keys and ``[n]:`` markers dropped)."""
    newlines = [m.start() for m in re.finditer("\n", content)]
    values: list[_Value] = []
    for m in _TOKEN.finditer(content):
        token = m.group(0)
        line = bisect.bisect_left(newlines, m.start()) + 1
        if token.startswith('"'):
            if len(token) < 2 or not token.endswith('"'):
                raise ValueError(f"{path}:{line}: unterminated string")
            values.append(_Value(token[1:-1].replace('""', '"'), "string", line))
        elif token in _FLAGS:
            values.append(_Value(token, "flag", line))
        elif token.lower() in _KEYS or token.startswith("["):
            continue
        else:
            try:
                number = float(token)
            except ValueError:
                raise ValueError(
                    f"{path}:{line}: unexpected {token!r} (expected a number, a quoted string or a key)"
                ) from None
            values.append(_Value(number, "number", line))
    return values


class _Stream:
    """Reads typed values off the stream, naming file and line in every error."""

    def __init__(self, path: Path, values: list[_Value]):
        self.path, self.values, self.pos = path, values, 0

    def take(self, kind: str, what: str) -> _Value:
        if self.pos >= len(self.values):
            last = self.values[-1].line if self.values else 1
            raise ValueError(f"{self.path}:{last}: file ends where {what} was expected")
        v = self.values[self.pos]
        if v.kind != kind:
            raise ValueError(f"{self.path}:{v.line}: expected {what} ({kind}), got {v.value!r}")
        self.pos += 1
        return v

    def number(self, what: str) -> float:
        return float(self.take("number", what).value)

    def count(self, what: str) -> int:
        v = self.take("number", what)
        if v.value != int(v.value) or v.value < 0:
            raise ValueError(f"{self.path}:{v.line}: expected a non-negative integer {what}, got {v.value!r}")
        return int(v.value)

    def string(self, what: str) -> str:
        return str(self.take("string", what).value)


def read_textgrid(path: str | Path) -> dict[str, list[Segment]]:
    """Read a Praat TextGrid (long or short text format) -> tier name -> segments in file order.

    Returns:
        ``{tier_name: [Segment(label, start_s, end_s), ...]}``, every interval of an interval
        tier (empty labels kept), or a zero-length segment per point of a point tier.

    Raises:
        ValueError: naming ``file:line`` for a file that is not a TextGrid, a missing or
            mistyped value, an interval ending before it starts, intervals out of order or
            overlapping, a duplicate tier name, or values left over after the last tier.

    Example::

        tiers = read_textgrid("mfa_out/spk1/utt1.TextGrid")
        [s.label for s in tiers["phones"]][:4]   # ['', 'HH', 'AH0', 'L']
    """
    path = Path(path)
    s = _Stream(path, _values(path, _decode(path)))
    file_type = s.take("string", 'File type = "ooTextFile"')
    if file_type.value not in ("ooTextFile", "ooTextFile short"):
        raise ValueError(
            f"{path}:{file_type.line}: not a Praat text file "
            f"(file type {file_type.value!r}; binary TextGrids are not supported)"
        )
    object_class = s.take("string", 'Object class = "TextGrid"')
    if object_class.value != "TextGrid":
        raise ValueError(f"{path}:{object_class.line}: object class is {object_class.value!r}, expected 'TextGrid'")
    s.number("xmin")
    s.number("xmax")
    tiers: dict[str, list[Segment]] = {}
    if s.take("flag", "tiers? <exists>").value == "<exists>":
        for _ in range(s.count("number of tiers")):
            tier_class = s.take("string", "tier class")
            name = s.string("tier name")
            if name in tiers:
                raise ValueError(f"{path}:{tier_class.line}: tier name {name!r} appears twice")
            s.number(f"xmin of tier {name!r}")
            s.number(f"xmax of tier {name!r}")
            n = s.count(f"number of intervals of tier {name!r}")
            segments: list[Segment] = []
            if tier_class.value == "IntervalTier":
                for i in range(1, n + 1):
                    start_value = s.take("number", f"xmin of interval {i} of tier {name!r}")
                    start, end = float(start_value.value), s.number(f"xmax of interval {i} of tier {name!r}")
                    label = s.string(f"text of interval {i} of tier {name!r}")
                    if end < start - _TOLERANCE:
                        raise ValueError(
                            f"{path}:{start_value.line}: interval {i} of tier {name!r} "
                            f"ends ({end}) before it starts ({start})"
                        )
                    if segments and start < segments[-1].end - _TOLERANCE:
                        raise ValueError(
                            f"{path}:{start_value.line}: interval {i} of tier {name!r} starts at {start}, "
                            f"before interval {i - 1} ends ({segments[-1].end})"
                        )
                    segments.append(Segment(label, start, end))
            elif tier_class.value == "TextTier":
                for i in range(1, n + 1):
                    time_value = s.take("number", f"time of point {i} of tier {name!r}")
                    time = float(time_value.value)
                    label = s.string(f"mark of point {i} of tier {name!r}")
                    if segments and time < segments[-1].start - _TOLERANCE:
                        raise ValueError(
                            f"{path}:{time_value.line}: point {i} of tier {name!r} is before point {i - 1}"
                        )
                    segments.append(Segment(label, time, time))
            else:
                raise ValueError(
                    f"{path}:{tier_class.line}: unknown tier class {tier_class.value!r} "
                    f"(expected IntervalTier or TextTier)"
                )
            tiers[name] = segments
    if s.pos != len(s.values):
        raise ValueError(
            f"{path}:{s.values[s.pos].line}: unexpected value {s.values[s.pos].value!r} after the last tier"
        )
    return tiers


def _format_number(x: float) -> str:
    return repr(float(x)).removesuffix(".0")


def _quote(label: str) -> str:
    return '"' + label.replace('"', '""') + '"'


def write_textgrid(path: str | Path, tiers: dict[str, list[Segment]], xmax: float) -> None:
    """Write interval tiers as a long-format TextGrid from 0 to ``xmax`` seconds (UTF-8).

    Gaps between segments (and before the first / after the last) become empty intervals, as
    Praat requires tiers to cover the whole time range.

    Args:
        path: the ``.TextGrid`` file.
        tiers: tier name -> segments in time order, non-overlapping, within ``[0, xmax]``.
        xmax: the end of the TextGrid (the audio duration).

    Raises:
        ValueError: naming the tier and segment that is out of order, overlapping, outside
            ``[0, xmax]``, or ends before it starts.
    """
    if xmax <= 0:
        raise ValueError(f"{path}: xmax must be positive, got {xmax}")
    filled: dict[str, list[Segment]] = {}
    for name, segments in tiers.items():
        out: list[Segment] = []
        t = 0.0
        for i, seg in enumerate(segments):
            if seg.end < seg.start or seg.start < t - _TOLERANCE or seg.end > xmax + _TOLERANCE:
                raise ValueError(
                    f"{path}: tier {name!r} segment {i} {seg} must start at or after {t}, "
                    f"end at or before xmax={xmax}, and not end before it starts"
                )
            if seg.start > t + _TOLERANCE:
                out.append(Segment("", t, seg.start))
            out.append(Segment(seg.label, max(seg.start, t), min(seg.end, xmax)))
            t = out[-1].end
        if xmax > t + _TOLERANCE or not out:
            out.append(Segment("", t, xmax))
        filled[name] = out
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0",
        f"xmax = {_format_number(xmax)}",
        "tiers? <exists>",
        f"size = {len(filled)}",
        "item []:",
    ]
    for k, (name, segments) in enumerate(filled.items(), start=1):
        lines += [
            f"    item [{k}]:",
            '        class = "IntervalTier"',
            f"        name = {_quote(name)}",
            "        xmin = 0",
            f"        xmax = {_format_number(xmax)}",
            f"        intervals: size = {len(segments)}",
        ]
        for i, seg in enumerate(segments, start=1):
            lines += [
                f"        intervals [{i}]:",
                f"            xmin = {_format_number(seg.start)}",
                f"            xmax = {_format_number(seg.end)}",
                f"            text = {_quote(seg.label)}",
            ]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- an aligned corpus -> data directory ------------------------------------------------------
_PHONREC_PHONES = frozenset(CMU_PHONES) | {SILENCE}


def mfa_phone_to_phonrec(label: str) -> str:
    """An MFA phone label -> phonrec symbol: silence labels (``""``, ``sil``, ``sp``) -> ``sil``,
    CMU phones with stress (``AH0``) -> ``ah``.

    Raises:
        ValueError: for a label outside the 39 CMU phones (``spn``, IPA phones of MFA's
            ``english_mfa`` model).
    """
    stripped = label.strip()
    if stripped.lower() in SILENCE_LABELS:
        return SILENCE
    try:
        phone = cmu_to_phonrec(stripped)
    except ValueError:
        phone = stripped
    if phone not in _PHONREC_PHONES:
        raise ValueError(f"phone label {label!r} is not a CMU/ARPAbet phone")
    return phone


def _utterance_id(rel: Path) -> tuple[str, str]:
    """``spk1/utt7`` -> (``spk1_utt7``, ``spk1``); ``spk1/spk1_utt7`` -> (``spk1_utt7``, ``spk1``);
    a file at the top level is its own speaker."""
    stem = rel.name
    if len(rel.parts) == 1:
        return stem, stem
    speaker = "_".join(rel.parts[:-1])
    return (stem if stem.startswith(speaker) else f"{speaker}_{stem}"), speaker


def prepare_textgrid_corpus(
    wav_dir: str | Path,
    textgrid_dir: str | Path,
    out_dir: str | Path,
    *,
    phone_tier: str = "phones",
    word_tier: str = "words",
) -> DataDir:
    """Build a data directory (with ``phones`` and ``alignments``) from audio and TextGrids.

    ``textgrid_dir/REL.TextGrid`` pairs with ``wav_dir/REL.wav`` (or ``.flac``), ``REL`` being
    the path below the folder (MFA mirrors the corpus's speaker folders). The speaker is the
    folder of ``REL`` (a top-level file is its own speaker); the utterance id is the file stem,
    prefixed with ``speaker_`` unless it already starts with the speaker.

    * ``text``: the non-empty labels of ``word_tier``, upper-case.
    * ``alignments``: one phone per 10 ms frame (the feature frame count of the audio, from its
      header), the phone tier mapped with :func:`mfa_phone_to_phonrec`; silence and frames
      outside every interval are ``sil``.
    * ``phones``: the phone tier's labels in order, mapped the same way, runs of silence merged
      into one ``sil`` (so it is the alignment with repeated frames of each interval collapsed).

    TextGrids without audio, audio without a TextGrid (not aligned), malformed TextGrids,
    missing tiers and phones outside the CMU set (``spn``) are reported in one warning and skipped.

    Raises:
        ValueError: when a folder is missing or no utterance is usable.
    """
    wav_dir, textgrid_dir, out_dir = Path(wav_dir), Path(textgrid_dir), Path(out_dir)
    for d in (wav_dir, textgrid_dir):
        if not d.is_dir():
            raise ValueError(f"{d}: folder not found")
    grids = {
        p.relative_to(textgrid_dir).with_suffix(""): p
        for p in sorted(textgrid_dir.rglob("*"))
        if p.suffix.lower() == ".textgrid" and p.is_file()
    }
    audio: dict[Path, Path] = {}
    for p in sorted(wav_dir.rglob("*")):
        if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file():
            audio.setdefault(p.relative_to(wav_dir).with_suffix(""), p)
    skipped: dict[str, str] = {}
    for rel in sorted(set(audio) - set(grids)):
        skipped[str(rel)] = f"no TextGrid (not aligned): {audio[rel]}"
    wavs: dict[str, Path] = {}
    text: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    phones: dict[str, list[str]] = {}
    alignments: dict[str, list[str]] = {}
    for rel, grid in grids.items():
        utt, speaker = _utterance_id(rel)
        try:
            if rel not in audio:
                raise ValueError(f"no audio file {wav_dir / rel}.wav or .flac")
            if utt in wavs:
                raise ValueError(f"utterance id {utt} already used by {wavs[utt]}")
            tiers = read_textgrid(grid)
            for tier in (phone_tier, word_tier):
                if tier not in tiers:
                    raise ValueError(f"{grid}: no tier {tier!r} (tiers: {sorted(tiers)})")
            segments = []
            for seg in tiers[phone_tier]:
                try:
                    segments.append(Segment(mfa_phone_to_phonrec(seg.label), seg.start, seg.end))
                except ValueError as e:
                    raise ValueError(f"{grid}: tier {phone_tier!r} at {seg.start:.3f}s: {e}") from None
            info = sf.info(str(audio[rel]))
            frames = num_frames(info.frames, sample_rate=info.samplerate)
            if frames == 0:
                raise ValueError(f"{audio[rel]}: too short for one frame ({info.frames} samples)")
            alignment = segments_to_frame_labels(segments, frames, fill=SILENCE, source=str(grid))
        except (ValueError, RuntimeError) as e:  # soundfile raises RuntimeError for unreadable audio
            skipped[utt] = str(e)
            continue
        sequence: list[str] = []
        for seg in segments:
            if not (seg.label == SILENCE and sequence and sequence[-1] == SILENCE):
                sequence.append(seg.label)
        wavs[utt], utt2spk[utt], phones[utt], alignments[utt] = audio[rel], speaker, sequence, alignment
        text[utt] = " ".join(
            s.label.strip().upper()
            for s in tiers[word_tier]
            if s.label.strip() and s.label.strip().lower() not in SILENCE_LABELS
        )
    log_skipped(log, f"TextGrid corpus {textgrid_dir}", skipped, "utterances")
    if not wavs:
        raise ValueError(f"{textgrid_dir}: no usable utterance (TextGrids paired with audio in {wav_dir})")
    data = DataDir(wavs=wavs, text=text, utt2spk=utt2spk, phones=phones, alignments=alignments)
    data.save(out_dir)
    log.info("TextGrid corpus: %d utterances, %d speakers -> %s", len(data), len(data.speakers()), out_dir)
    return data
