"""Free Spoken Digit Dataset (FSDD) -> Kaldi-style data directories.

Recordings are ``DIGIT_SPEAKER_INDEX.{flac,wav}`` (8 kHz mono), e.g. ``7_jackson_32.flac``:
one English digit word per file. ``text`` is the digit's word (``ZERO`` ... ``NINE``),
``utt2spk`` the speaker; utterance ids are ``SPEAKER_DIGIT_INDEX`` (speaker first, so that
Kaldi's sort order groups each speaker's utterances). The split is by speaker: one held-out
speaker is the test set, the others are the training set.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from phonrec.data.datadir import DataDir, log_skipped

log = logging.getLogger(__name__)

DIGIT_WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
AUDIO_SUFFIXES = (".flac", ".wav")
_NAME = re.compile(r"^(\d)_([a-z][a-z0-9]*)_(\d+)$")


def parse_fsdd_name(path: str | Path) -> tuple[int, str, int]:
    """``7_jackson_32.flac`` -> ``(7, "jackson", 32)``.

    Raises:
        ValueError: naming the file when it is not ``DIGIT_SPEAKER_INDEX`` (one digit, a lower-case
            speaker name, an integer index).
    """
    m = _NAME.match(Path(path).stem)
    if m is None:
        raise ValueError(f"{path}: not an FSDD recording name DIGIT_SPEAKER_INDEX (e.g. 7_jackson_32.flac)")
    return int(m.group(1)), m.group(2), int(m.group(3))


def prepare_fsdd(root: str | Path, out_dir: str | Path, *, test_speaker: str = "george") -> dict[str, DataDir]:
    """Prepare FSDD as ``out_dir/train`` (all speakers but one) and ``out_dir/test`` (``test_speaker``).

    Audio files (``.flac``/``.wav``) whose names do not parse, and duplicates of an utterance id
    (the same recording as FLAC and WAV), are reported in one warning and skipped. No audio is read.

    Args:
        root: the FSDD folder (holding ``recordings/``) or the recordings folder itself.
        out_dir: where ``train/`` and ``test/`` are written.
        test_speaker: the held-out speaker.

    Returns:
        ``{"train": DataDir, "test": DataDir}``.

    Raises:
        ValueError: when no recording is found, ``test_speaker`` has none, or no other speaker remains.
    """
    root, out_dir = Path(root), Path(out_dir)
    recordings = root / "recordings" if (root / "recordings").is_dir() else root
    if not recordings.is_dir():
        raise ValueError(f"{root}: FSDD folder not found")
    wavs: dict[str, Path] = {}
    text: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for path in sorted(recordings.iterdir()):
        if not path.is_file() or path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        try:
            digit, speaker, index = parse_fsdd_name(path)
        except ValueError as e:
            skipped[path.name] = str(e)
            continue
        utt = f"{speaker}_{digit}_{index}"
        if utt in wavs:
            skipped[path.name] = f"duplicate of {wavs[utt].name} (utterance {utt})"
            continue
        wavs[utt], text[utt], utt2spk[utt] = path, DIGIT_WORDS[digit], speaker
    log_skipped(log, f"FSDD {recordings}", skipped, "files")
    if not wavs:
        raise ValueError(f"{recordings}: no FSDD recordings (DIGIT_SPEAKER_INDEX.flac) found")
    speakers = sorted(set(utt2spk.values()))
    if test_speaker not in speakers:
        raise ValueError(f"{recordings}: test speaker {test_speaker!r} has no recordings (speakers: {speakers})")
    if len(speakers) < 2:
        raise ValueError(f"{recordings}: only speaker {test_speaker!r}; nothing left to train on")
    everything = DataDir(wavs=wavs, text=text, utt2spk=utt2spk)
    result = {
        "train": everything.subset([u for u, s in utt2spk.items() if s != test_speaker]),
        "test": everything.subset([u for u, s in utt2spk.items() if s == test_speaker]),
    }
    for name, data in result.items():
        data.save(out_dir / name)
        log.info("FSDD %s: %d utterances, %d speakers -> %s", name, len(data), len(data.speakers()), out_dir / name)
    return result
