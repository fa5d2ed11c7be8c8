"""Shared fixtures: flite utterances with their phone times, and the real data folder."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf

from phonrec.data.segments import Segment

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

FLITE_SENTENCES = (
    "she had your dark suit in greasy wash water all year",
    "don't ask me to carry an oily rag like that",
    "the birch canoe slid on the smooth planks",
)


@dataclass(frozen=True)
class FliteUtterance:
    """A flite utterance: its audio and flite's own phone segmentation.

    Attributes:
        text: the sentence given to flite.
        wav: 16 kHz mono 16-bit RIFF WAV written by flite (voice ``kal16``).
        num_samples: samples in ``wav``.
        sample_rate: 16000.
        segments: flite's phones (``pau``, ``ax``, ... verbatim) with the start/end times of
            ``-psdur`` (each phone ends at its printed time, starts where the previous ended),
            clipped to the audio's duration.
    """

    text: str
    wav: Path
    num_samples: int
    sample_rate: int
    segments: list[Segment]


def parse_flite_psdur(output: str, duration: float) -> list[Segment]:
    """flite ``-psdur`` output (``pau:0.220 sh:0.367 ...``: phone:end_time) -> segments, clipped to ``duration``."""
    segments: list[Segment] = []
    start = 0.0
    for token in output.split():
        label, sep, end_text = token.rpartition(":")
        if not sep or not label:
            raise ValueError(f"flite -psdur: expected 'phone:end_time', got {token!r}")
        end = min(float(end_text), duration)
        if start < duration:
            segments.append(Segment(label, start, end))
        start = end
    return segments


@pytest.fixture(scope="session")
def flite_utterances(tmp_path_factory: pytest.TempPathFactory) -> list[FliteUtterance]:
    """A few flite utterances (voice kal16, 16 kHz) with their ``-psdur`` phone times."""
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (Debian package 'flite')")
    out = tmp_path_factory.mktemp("flite")
    utterances = []
    for i, sentence in enumerate(FLITE_SENTENCES):
        wav = out / f"utt{i}.wav"
        proc = subprocess.run(
            ["flite", "-voice", "kal16", "-t", sentence, "-o", str(wav), "-psdur"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        info = sf.info(str(wav))
        assert info.samplerate == 16000 and info.channels == 1
        segments = parse_flite_psdur(proc.stdout, info.frames / info.samplerate)
        utterances.append(FliteUtterance(sentence, wav, info.frames, info.samplerate, segments))
    return utterances


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real speech, read in place), or skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real data folder {SHARED_DATA} is absent (see the project README); skipping tests on real corpora"
        )
    return SHARED_DATA
