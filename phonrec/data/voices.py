"""The synthetic corpus's voices: words in, 16 kHz audio plus its exact phone timings out.

The corpus (:mod:`phonrec.data.synth`) sees only this interface:

    :data:`VOICES`, :class:`Speaker`   the voices and one speaker setting of a voice
    :func:`speak`                      one utterance -> :class:`Speech` (audio and phone segments)
    :func:`word_mismatches`            the words a voice would not say as written
    :func:`check_installed`            the synthesiser program is there

There is one back-end, the flite synthesiser; every function named ``flite_*`` (and
:func:`synthesize`) is its part.

Voices and settings
    flite voices ``kal16`` (diphone, 16 kHz), ``kal`` (the same diphone voice recorded at 8 kHz:
    upsampled to 16 kHz it has no energy above 4 kHz, i.e. a telephone-band channel), and the
    clustergen voices ``rms``, ``slt``, ``awb``. ``awb_time`` is a limited-domain voice (it can only
    say clock times) and festival offers only ``kal_diphone`` here (the same voice as flite's kal),
    so neither is used. A :class:`Speaker` is a voice plus one setting: ``duration_stretch``,
    ``int_f0_target_mean`` (``rms`` ignores it — measured with librosa.pyin — so it is ``None`` for
    rms) and a speed warp ``w`` applied after synthesis by resampling: the audio is read as if
    sampled at ``16000 * w`` Hz and resampled to 16 kHz, which scales every duration by ``1/w`` and
    every frequency (formants, pitch) by ``w``; the phone times are scaled by exactly the same ``1/w``.

Words
    flite is given the words lower-case with no punctuation. Its ``Word`` relation (``-pr Word``)
    says what it will speak: abbreviations like ``dr`` -> "doctor" and homographs that flite renames,
    like ``read`` -> ``red``, differ from the text; a sentence-final "a" that flite reads as the
    letter, ``_a``, still counts as "a".

Labels
    flite ``-psdur`` prints ``phone:end_seconds`` pairs (lower-case ARPAbet without stress, ``ax``
    for schwa, ``pau`` for silence); duration_stretch is already applied to those times. Phones
    go through :func:`phonrec.phones.flite_to_phonrec` (``ax`` -> ``ah``, ``pau`` -> ``sil``),
    adjacent ``sil`` segments are merged.
    For the clustergen voices the last ``pau`` ends within 5 ms of the audio's end. The diphone
    voices (kal, kal16) stop in the middle of the final ``pau`` (there is no pau-to-nothing diphone):
    the audio is 0.08-0.14 s shorter than the printed end while all earlier boundaries agree with
    the waveform (speech onset at the first ``pau``'s end, silence over internal pauses). So the last
    segment's end is always set to the audio's duration; an utterance whose audio ends before its
    last phone or more than 20 ms after the printed end is refused, and so is one with phones
    outside the 39 CMU phones.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from phonrec.data.segments import Segment
from phonrec.phones import CMU_PHONES as ALL_CMU_PHONES
from phonrec.phones import SILENCE, flite_to_phonrec

#: The sample rate of :attr:`Speech.wave`, whatever the voice's own.
SAMPLE_RATE = 16000
#: The 39 CMUdict phones in phonrec's spelling; flite's phones must map into these plus ``sil``.
CMU_PHONES = frozenset(ALL_CMU_PHONES)
_PSDUR_TOKEN = re.compile(r"^([a-z]+):(\d+(?:\.\d+)?)$")
#: Audio may end this long after flite's printed end of the last pau (clustergen voices: < 5 ms measured).
END_TOLERANCE_S = 0.02


@dataclass(frozen=True)
class Voice:
    """A flite voice: its name, native sample rate and whether ``int_f0_target_mean`` changes its pitch."""

    name: str
    sample_rate: int
    f0_control: bool
    kind: str


VOICES: dict[str, Voice] = {
    "kal16": Voice("kal16", 16000, True, "diphone"),
    "kal": Voice("kal", 8000, True, "diphone (8 kHz, upsampled)"),
    "rms": Voice("rms", 16000, False, "clustergen"),
    "slt": Voice("slt", 16000, True, "clustergen"),
    "awb": Voice("awb", 16000, True, "clustergen"),
}


@dataclass(frozen=True)
class Speaker:
    """A voice with one setting. ``f0_mean`` is ``None`` for voices that ignore it."""

    id: str
    voice: str
    duration_stretch: float
    f0_mean: float | None
    warp: float


@dataclass(frozen=True)
class Speech:
    """One spoken utterance.

    Attributes:
        wave: ``(N,)`` float32 at :data:`SAMPLE_RATE`, in ``[-1, 32767/32768]`` (exact as 16-bit PCM).
        segments: its phones in time order (phonrec symbols, ``sil`` runs merged), the last one a
            ``sil`` ending at ``N / SAMPLE_RATE``.
    """

    wave: np.ndarray
    segments: list[Segment]


# --- the interface ----------------------------------------------------------------------------


def check_installed() -> None:
    """Raises ``FileNotFoundError`` (saying how to install it) when the ``flite`` program is not on PATH."""
    if shutil.which("flite") is None:
        raise FileNotFoundError("the 'flite' program is not on PATH (Debian/Ubuntu: apt-get install flite)")


def speak(words: Sequence[str], speaker: Speaker, scratch: Path) -> Speech:
    """``speaker`` says ``words`` (upper-case); ``scratch`` is a file path it may use and removes.

    Raises:
        ValueError: when flite fails, would say other words, writes unreadable or empty audio,
            prints unparsable timings, or phones outside the CMU set (rules in the module docstring).
        RuntimeError: when ``flite -pr Word`` fails.
    """
    spoken = flite_words(" ".join(words).lower())
    if [w.lstrip("_").upper() for w in spoken] != list(words):
        raise ValueError(f"flite says {' '.join(spoken)!r} for {' '.join(words).lower()!r}")
    audio, sr, pairs = synthesize(words, speaker, scratch)
    wave = to_16k(audio, sr, speaker.warp)
    segments = ends_to_segments(pairs, time_scale=1.0 / speaker.warp)
    segments = fit_segments_to_audio(segments, int(wave.shape[0]) / SAMPLE_RATE)
    strange = sorted({s.label for s in segments} - CMU_PHONES - {SILENCE})
    if strange:
        raise ValueError(f"flite phones outside the CMU set: {strange}")
    return Speech(wave, segments)


def word_mismatches(words: Sequence[str], *, chunk: int = 400) -> set[str]:
    """Words (lower-case) that flite does not speak as themselves (``dr`` -> doctor, ``fbi`` -> f b i).

    flite's ``Word`` relation is compared with the input by a diff, ``chunk`` words per call.
    """
    bad: set[str] = set()
    for i in range(0, len(words), chunk):
        part = list(words[i : i + chunk])
        spoken = [w.lstrip("_") for w in flite_words(" ".join(part))]
        ops = SequenceMatcher(a=part, b=spoken, autojunk=False).get_opcodes()
        for tag, i1, i2, _, _ in ops:
            if tag != "equal":
                bad.update(part[i1:i2])
    return bad


# --- flite ------------------------------------------------------------------------------------


def flite_words(text: str) -> list[str]:
    """The words flite says for ``text`` (its ``Word`` relation), lower-case.

    flite marks a letter it spells out with ``_`` (``_a`` for a sentence-final "a", said ``ey``).
    """
    proc = subprocess.run(["flite", "-pr", "Word", "-t", text, "-o", "none"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"flite -pr Word failed ({proc.returncode}): {proc.stderr.strip()[:200]}")
    return proc.stdout.split()


def parse_psdur(output: str, *, source: str = "") -> list[tuple[str, float]]:
    """flite ``-psdur`` output (``pau:0.220 dh:0.254 ...``) -> ``[(phone, end_seconds), ...]``.

    Raises:
        ValueError: for an unparsable token, decreasing end times or no phones (``source`` named).
    """
    where = f"{source}: " if source else ""
    pairs: list[tuple[str, float]] = []
    for token in output.split():
        m = _PSDUR_TOKEN.match(token)
        if not m:
            raise ValueError(f"{where}unparsable flite -psdur token {token!r}")
        end = float(m.group(2))
        if pairs and end < pairs[-1][1]:
            raise ValueError(f"{where}flite phone end times decrease at {token!r} (previous {pairs[-1]})")
        pairs.append((m.group(1), end))
    if not pairs:
        raise ValueError(f"{where}flite printed no phones")
    return pairs


def ends_to_segments(pairs: Sequence[tuple[str, float]], *, time_scale: float = 1.0) -> list[Segment]:
    """``(flite phone, end)`` pairs -> phonrec :class:`Segment`s (times * ``time_scale``, sil runs merged)."""
    segments: list[Segment] = []
    start = 0.0
    for phone, end in pairs:
        label, end = flite_to_phonrec(phone), end * time_scale
        if segments and label == SILENCE and segments[-1].label == SILENCE:
            segments[-1] = Segment(SILENCE, segments[-1].start, end)
        else:
            segments.append(Segment(label, start, end))
        start = end
    return segments


def synthesize(
    words: Sequence[str], speaker: Speaker, tmp_wav: Path
) -> tuple[np.ndarray, int, list[tuple[str, float]]]:
    """Run flite for one utterance.

    Returns:
        ``(audio (N,) int16, sample_rate, [(flite phone, end_seconds)])`` exactly as flite produced them.

    Raises:
        ValueError: for a flite failure, unreadable/empty audio or unparsable ``-psdur`` output.
    """
    cmd = ["flite", "-voice", speaker.voice, "-s", f"duration_stretch={speaker.duration_stretch}"]
    if speaker.f0_mean is not None:
        cmd += ["-s", f"int_f0_target_mean={speaker.f0_mean}"]
    cmd += ["-psdur", "-t", " ".join(words).lower(), "-o", str(tmp_wav)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    try:
        if proc.returncode != 0:
            raise ValueError(f"flite exited with {proc.returncode}: {proc.stderr.strip()[:200]}")
        try:
            audio, sr = sf.read(tmp_wav, dtype="int16")
        except (RuntimeError, sf.LibsndfileError) as e:
            raise ValueError(f"flite wrote unreadable audio: {e}") from None
    finally:
        tmp_wav.unlink(missing_ok=True)
    if audio.ndim != 1:
        raise ValueError(f"flite wrote {audio.shape[1]}-channel audio, expected mono")
    if audio.size == 0 or not np.any(audio):
        raise ValueError("flite wrote empty or all-zero audio")
    return audio, sr, parse_psdur(proc.stdout)


def to_16k(audio: np.ndarray, sample_rate: int, warp: float) -> np.ndarray:
    """int16 ``(N,)`` at ``sample_rate`` -> float32 ``(M,)`` at 16 kHz, sped up by ``warp`` (M ~ N*16000/(sr*warp)).

    Reading the samples as if recorded at ``sample_rate * warp`` and resampling to 16 kHz scales
    durations by ``1/warp`` with no delay (torchaudio's windowed-sinc resampler is symmetric).
    """
    import torch
    import torchaudio.functional as AF

    wave = torch.from_numpy(audio.astype(np.float32) / 32768.0)
    orig = int(round(sample_rate * warp))
    if orig != SAMPLE_RATE:
        wave = AF.resample(wave, orig_freq=orig, new_freq=SAMPLE_RATE)
    return wave.clamp(-1.0, 32767.0 / 32768.0).numpy()


def fit_segments_to_audio(
    segments: list[Segment],
    duration: float,
    *,
    source: str = "",
    synthesiser: str = "flite",
    tolerance_s: float = END_TOLERANCE_S,
) -> list[Segment]:
    """End the final (silence) segment at the audio's end (see "Labels" in the module docstring).

    Args:
        source: prefix of the error messages (the utterance), ``""`` for none.
        synthesiser: whose phone string it is, for the messages (``flite``, ``festival``).
        tolerance_s: how far the audio may run past the last printed end time.

    Raises:
        ValueError: when the last segment is not silence, the audio ends before the last phone
            does, or it runs more than ``tolerance_s`` past the printed end.
    """
    where = f"{source}: " if source else ""
    last = segments[-1]
    if last.label != SILENCE or len(segments) < 2:
        raise ValueError(f"{where}{synthesiser}'s phone string does not end in pau: {[s.label for s in segments[-3:]]}")
    if duration <= last.start:
        raise ValueError(f"{where}audio ({duration:.3f} s) ends before the last phone does ({last.start:.3f} s)")
    if duration > last.end + tolerance_s:
        raise ValueError(f"{where}audio ({duration:.3f} s) runs past {synthesiser}'s last phone end ({last.end:.3f} s)")
    return segments[:-1] + [Segment(SILENCE, last.start, duration)]
