"""A synthetic English corpus with exact phone timings, made with the flite synthesiser.

``python -m phonrec.data.synth OUT --num-utts N [--seed S] [--jobs J] [--test-voice awb] [--text FILE]``
(console script ``phonrec-synth``) writes::

    OUT/train OUT/dev OUT/test   Kaldi-style data directories (wav.scp text utt2spk spk2utt phones alignments)
    OUT/wav/<utt>.wav            16 kHz mono 16-bit audio
    OUT/wav/<utt>.seg            the utterance's phone segments, ``start end phone`` in seconds per line
    OUT/lexicon.txt              CMUdict pronunciations (phonrec symbols) of every word in ``text``
    OUT/summary.json, README.txt utterance/hour/speaker counts per split, voices, skips, generation time
    OUT/synth_config.json        the settings OUT was made with (a re-run must use the same ones)

Voices and speakers
    flite voices ``kal16`` (diphone, 16 kHz), ``kal`` (the same diphone voice recorded at 8 kHz:
    upsampled to 16 kHz it has no energy above 4 kHz, i.e. a telephone-band channel), and the
    clustergen voices ``rms``, ``slt``, ``awb``. ``awb_time`` is a limited-domain voice (it can only
    say clock times) and festival offers only ``kal_diphone`` here (the same voice as flite's kal),
    so neither is used. A *speaker* is a voice plus one setting: ``duration_stretch`` (0.8-1.3),
    ``int_f0_target_mean`` (80-220 Hz; ``rms`` ignores it — measured with librosa.pyin — so it is
    recorded as ``null`` for rms) and a speed warp ``w`` (0.9-1.1) applied after synthesis by
    resampling: the audio is read as if sampled at ``16000 * w`` Hz and resampled to 16 kHz, which
    scales every duration by ``1/w`` and every frequency (formants, pitch) by ``w``; the phone times
    are scaled by exactly the same ``1/w``. Speaker id = ``<voice>-<setting index>``, e.g. ``slt-02``;
    utterance id = ``<speaker>-<index:06d>``. (kal and kal16 are one speaker's recordings: making
    either the test voice leaves the other in training.)

Splits (by voice)
    Every utterance of the test voice (default ``awb``) goes to ``test``, and that voice never
    appears in ``train`` or ``dev``. ``dev`` holds out *sentences*, not voices: each sentence id
    (the utterance index, or the line of ``--text``) is put in dev with probability
    ``dev_fraction`` (default 0.1), so dev speakers are training speakers saying sentences that no
    training utterance says.

Text
    By default sentences of 3-9 words are drawn (per utterance, from its own seeded RNG) from the
    ``vocab_size`` most frequent English words of ``wordfreq`` that are alphabetic ASCII, have a
    CMUdict entry, are not single letters other than ``a``/``i``, and that flite speaks as
    themselves (abbreviations like ``dr`` -> "doctor" and homographs that flite renames, like
    ``read`` -> ``red``, are removed). Word ``k`` (0-based frequency rank) has Zipf weight ``1/(k+1)``.
    With ``--text FILE`` utterance ``i`` says line ``i mod L`` of the ``L`` accepted lines. A line is
    split on white space and ``.,;:!?"`` are stripped from the ends of each token; blank lines
    are ignored; a line with any token that is not alphabetic ASCII after that (``don't``, ``42``)
    or not in CMUdict is rejected: it is logged with ``FILE:LINE`` and the reason, and listed in
    ``summary.json`` under ``rejected_text_lines``. No accepted line at all is a ``SynthError``.
    ``text`` holds the words upper-case; flite is given them lower-case with no punctuation
    (a sentence-final "a" that flite reads as the letter, ``_a``, still counts as "a").

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
    last phone or more than 20 ms after the printed end is skipped.

    ``phones``     the phone string with every ``sil`` removed (leading, trailing and internal
                   pauses): the CTC target.
    ``alignments`` one symbol per 10 ms frame (``sil`` included), from
                   :func:`phonrec.data.segments.segments_to_frame_labels` with
                   ``num_frames`` of the written sample count, so it has exactly as many entries as
                   the utterance has feature frames. Every phone covers at least one frame centre
                   (utterances where one would not are skipped), so the alignment's runs with
                   ``sil`` dropped spell ``phones`` except that two equal adjacent phones
                   (``s s`` in "this said") form one run.

Robustness and determinism
    Each utterance depends only on (seed, index, settings), so the output is the same for any
    ``--jobs``. An utterance is finished when its ``.seg`` file exists (written atomically after
    its wav), so an interrupted run is resumed by running the same command again; OUT made with
    other settings is refused. flite failures, empty audio, unparsable ``-psdur`` output, words
    flite speaks differently from the text (checked per utterance with ``-pr Word``) and phones
    outside the 39 CMU phones are logged, skipped and counted in ``summary.json``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from phonrec.data.datadir import DataDir
from phonrec.data.segments import Segment, segments_to_frame_labels
from phonrec.features import frame_center_seconds, num_frames
from phonrec.lexicon import Lexicon, LexiconError
from phonrec.phones import CMU_PHONES as ALL_CMU_PHONES
from phonrec.phones import SILENCE, flite_to_phonrec

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
SPLITS = ("train", "dev", "test")
#: The 39 CMUdict phones in phonrec's spelling; flite's phones must map into these plus ``sil``.
CMU_PHONES = frozenset(ALL_CMU_PHONES)
_STRIP = ".,;:!?\""
_PSDUR_TOKEN = re.compile(r"^([a-z]+):(\d+(?:\.\d+)?)$")
#: Audio may end this long after flite's printed end of the last pau (clustergen voices: < 5 ms measured).
END_TOLERANCE_S = 0.02


class SynthError(ValueError):
    """Bad settings, a bad ``--text`` file or an OUT made with other settings; the message says which."""


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
class SynthConfig:
    """Everything that determines the corpus (two runs with equal configs write equal data).

    Attributes:
        num_utts: utterances to generate (skipped ones are not replaced).
        seed: seeds speaker settings, sentences, voice choice and the dev split.
        test_voice: the voice whose utterances form ``test`` (and only ``test``).
        voices: the flite voices used (keys of ``VOICES``); must include ``test_voice`` and another.
        speakers_per_voice: settings per voice.
        dev_fraction: probability that a sentence id is held out for ``dev``.
        min_words, max_words: sentence length range for generated text.
        vocab_size: how many of wordfreq's most frequent English words are candidates.
        stretch_range: ``duration_stretch`` range (uniform).
        f0_range: ``int_f0_target_mean`` range in Hz (uniform).
        warp_range: speed warp range (uniform, rounded to 0.01).
    """

    num_utts: int
    seed: int = 0
    test_voice: str = "awb"
    voices: tuple[str, ...] = ("kal16", "kal", "rms", "slt", "awb")
    speakers_per_voice: int = 4
    dev_fraction: float = 0.1
    min_words: int = 3
    max_words: int = 9
    vocab_size: int = 5000
    stretch_range: tuple[float, float] = (0.8, 1.3)
    f0_range: tuple[float, float] = (80.0, 220.0)
    warp_range: tuple[float, float] = (0.9, 1.1)

    def __post_init__(self) -> None:
        if self.num_utts < 1:
            raise SynthError(f"num_utts must be >= 1, got {self.num_utts}")
        unknown = [v for v in self.voices if v not in VOICES]
        if unknown:
            raise SynthError(f"unknown voice(s) {unknown}; expected some of {sorted(VOICES)}")
        if self.test_voice not in self.voices:
            raise SynthError(f"test voice {self.test_voice!r} is not among the voices {list(self.voices)}")
        if len(set(self.voices)) < 2:
            raise SynthError(f"need the test voice and at least one training voice, got {list(self.voices)}")
        if self.speakers_per_voice < 1:
            raise SynthError(f"speakers_per_voice must be >= 1, got {self.speakers_per_voice}")
        if not 0.0 <= self.dev_fraction < 1.0:
            raise SynthError(f"dev_fraction must be in [0, 1), got {self.dev_fraction}")
        if not 1 <= self.min_words <= self.max_words:
            raise SynthError(f"need 1 <= min_words <= max_words, got {self.min_words}, {self.max_words}")
        for name in ("stretch_range", "f0_range", "warp_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise SynthError(f"{name} must be (low, high) with 0 < low <= high, got {(lo, hi)}")


@dataclass(frozen=True)
class Speaker:
    """A voice with one setting. ``f0_mean`` is ``None`` for voices that ignore it."""

    id: str
    voice: str
    duration_stretch: float
    f0_mean: float | None
    warp: float


@dataclass(frozen=True)
class UttSpec:
    """One utterance to make: who says what, and into which split it goes."""

    utt: str
    index: int
    speaker: Speaker
    words: tuple[str, ...]
    split: str


@dataclass(frozen=True)
class UttResult:
    """A finished utterance (``error`` is set, and the rest empty, when it was skipped)."""

    spec: UttSpec
    segments: tuple[Segment, ...] = ()
    num_samples: int = 0
    alignment: tuple[str, ...] = ()
    error: str = ""

    @property
    def phones(self) -> list[str]:
        return [s.label for s in self.segments if s.label != SILENCE]


# --- speakers and text ------------------------------------------------------------------------


def make_speakers(cfg: SynthConfig) -> list[Speaker]:
    """``speakers_per_voice`` seeded settings per voice (independent of ``num_utts``)."""
    speakers = []
    for voice in cfg.voices:
        rng = random.Random(f"{cfg.seed}:speakers:{voice}")
        for k in range(cfg.speakers_per_voice):
            stretch = round(rng.uniform(*cfg.stretch_range), 2)
            f0 = float(round(rng.uniform(*cfg.f0_range)))
            warp = round(rng.uniform(*cfg.warp_range), 2)
            speakers.append(Speaker(f"{voice}-{k:02d}", voice, stretch, f0 if VOICES[voice].f0_control else None, warp))
    return speakers


@functools.lru_cache(maxsize=1)
def cmudict() -> Lexicon:
    """The whole of CMUdict (upper-case words, phonrec symbols), read once per process."""
    try:
        return Lexicon.from_cmudict()
    except LexiconError as e:
        raise SynthError(str(e)) from None


def flite_word_mismatches(words: Sequence[str], *, chunk: int = 400) -> set[str]:
    """Words (lower-case) that flite does not speak as themselves (``dr`` -> doctor, ``fbi`` -> f b i).

    flite's ``Word`` relation is compared with the input by a diff, ``chunk`` words per call.
    """
    bad: set[str] = set()
    for i in range(0, len(words), chunk):
        part = list(words[i : i + chunk])
        spoken = [w.lstrip("_") for w in run_flite_words(" ".join(part))]
        ops = SequenceMatcher(a=part, b=spoken, autojunk=False).get_opcodes()
        for tag, i1, i2, _, _ in ops:
            if tag != "equal":
                bad.update(part[i1:i2])
    return bad


def load_vocabulary(size: int, cmudict_words: set[str]) -> list[str]:
    """Upper-case words in wordfreq's frequency order (see the module docstring for the filters)."""
    try:
        from wordfreq import top_n_list
    except ImportError as e:  # pragma: no cover - wordfreq is a dependency
        raise SynthError("the PyPI package 'wordfreq' is needed for generated text (or pass --text)") from e
    candidates = [
        w
        for w in top_n_list("en", size)
        if w.isascii() and w.isalpha() and (len(w) > 1 or w in ("a", "i")) and w.upper() in cmudict_words
    ]
    bad = flite_word_mismatches(candidates)
    return [w.upper() for w in candidates if w not in bad]


def generate_sentence(rng: random.Random, vocabulary: Sequence[str], cum_weights: Sequence[float], cfg: SynthConfig) -> tuple[str, ...]:
    """``min_words..max_words`` words drawn with Zipf weights (``cum_weights`` from :func:`zipf_cum_weights`)."""
    n = rng.randint(cfg.min_words, cfg.max_words)
    return tuple(rng.choices(vocabulary, cum_weights=cum_weights, k=n))


def zipf_cum_weights(n: int) -> list[float]:
    """Cumulative weights ``1/(k+1)``, k = 0..n-1."""
    total, out = 0.0, []
    for k in range(n):
        total += 1.0 / (k + 1)
        out.append(total)
    return out


@dataclass
class TextFile:
    """Accepted lines of a ``--text`` file and the rejected ones (``file:line: reason``)."""

    sentences: list[tuple[str, ...]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def read_text_file(path: str | Path, cmudict_words: set[str]) -> TextFile:
    """Read one sentence per line (rules in the module docstring).

    Raises:
        SynthError: when the file is missing or no line is accepted.
    """
    path = Path(path)
    if not path.is_file():
        raise SynthError(f"text file {path} does not exist")
    out = TextFile()
    with open(path, encoding="utf-8") as f:
        for line_no, raw in enumerate(f, start=1):
            tokens = [t.strip(_STRIP) for t in raw.split()]
            tokens = [t for t in tokens if t]
            if not tokens:
                continue
            bad = [t for t in tokens if not (t.isascii() and t.isalpha())]
            oov = [t for t in tokens if t not in bad and t.upper() not in cmudict_words]
            if bad or oov:
                reason = f"non-alphabetic token(s) {bad}" if bad else f"word(s) not in CMUdict {oov}"
                out.rejected.append(f"{path}:{line_no}: {reason}")
                log.warning("%s:%d: line rejected: %s", path, line_no, reason)
                continue
            out.sentences.append(tuple(t.upper() for t in tokens))
    if not out.sentences:
        raise SynthError(f"{path}: no usable sentence (need alphabetic words with CMUdict entries, one sentence per line)")
    bad_words = flite_word_mismatches(sorted({w.lower() for s in out.sentences for w in s}))
    if bad_words:
        log.warning("%s: flite speaks these words differently (%s); utterances with them will be skipped", path, sorted(bad_words))
    return out


def plan_utterances(
    cfg: SynthConfig, *, vocabulary: Sequence[str] = (), sentences: Sequence[tuple[str, ...]] = ()
) -> list[UttSpec]:
    """Who says what, per utterance index; depends only on ``cfg`` and the word source.

    Args:
        vocabulary: words for generated sentences (used when ``sentences`` is empty).
        sentences: fixed sentences from ``--text``; utterance ``i`` says ``sentences[i % len]``.
    """
    if not sentences and not vocabulary:
        raise SynthError("need a vocabulary or sentences to plan utterances")
    speakers = make_speakers(cfg)
    by_voice = {v: [s for s in speakers if s.voice == v] for v in cfg.voices}
    cum = zipf_cum_weights(len(vocabulary)) if not sentences else []
    specs = []
    for i in range(cfg.num_utts):
        rng = random.Random(f"{cfg.seed}:utt:{i}")
        voice = rng.choice(cfg.voices)
        speaker = rng.choice(by_voice[voice])
        if sentences:
            sentence_id, words = i % len(sentences), sentences[i % len(sentences)]
        else:
            sentence_id, words = i, generate_sentence(rng, vocabulary, cum, cfg)
        if voice == cfg.test_voice:
            split = "test"
        else:
            dev = random.Random(f"{cfg.seed}:dev:{sentence_id}").random() < cfg.dev_fraction
            split = "dev" if dev else "train"
        specs.append(UttSpec(f"{speaker.id}-{i:06d}", i, speaker, tuple(words), split))
    return specs


# --- flite ------------------------------------------------------------------------------------


def run_flite_words(text: str) -> list[str]:
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


def synthesize(words: Sequence[str], speaker: Speaker, tmp_wav: Path) -> tuple[np.ndarray, int, list[tuple[str, float]]]:
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


def fit_segments_to_audio(segments: list[Segment], duration: float, *, source: str = "") -> list[Segment]:
    """End the final (silence) segment at the audio's end (see "Labels" in the module docstring).

    Raises:
        ValueError: when the last segment is not silence, the audio ends before the last phone
            does, or it runs more than ``END_TOLERANCE_S`` past the printed end.
    """
    where = f"{source}: " if source else ""
    last = segments[-1]
    if last.label != SILENCE or len(segments) < 2:
        raise ValueError(f"{where}flite's phone string does not end in pau: {[s.label for s in segments[-3:]]}")
    if duration <= last.start:
        raise ValueError(f"{where}audio ({duration:.3f} s) ends before the last phone does ({last.start:.3f} s)")
    if duration > last.end + END_TOLERANCE_S:
        raise ValueError(f"{where}audio ({duration:.3f} s) runs past flite's last phone end ({last.end:.3f} s)")
    return segments[:-1] + [Segment(SILENCE, last.start, duration)]


def uncovered_phones(segments: Sequence[Segment], frames: int) -> list[Segment]:
    """Non-silence segments that contain no frame centre among the first ``frames`` frames."""
    out = []
    for s in segments:
        if s.label == SILENCE:
            continue
        t = max(0, int((s.start - frame_center_seconds(0)) * 100.0) - 1)  # a frame at or before the start
        while t < frames and frame_center_seconds(t) < s.start:
            t += 1
        if not (t < frames and frame_center_seconds(t) < s.end):
            out.append(s)
    return out


def read_seg_file(path: Path) -> list[Segment]:
    """An ``OUT/wav/<utt>.seg`` file (``start end phone`` per line)."""
    segments = []
    for line_no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = raw.split()
        if len(fields) != 3:
            raise ValueError(f"{path}:{line_no}: expected 'start end phone', got {raw!r}")
        segments.append(Segment(fields[2], float(fields[0]), float(fields[1])))
    return segments


def write_seg_file(path: Path, segments: Sequence[Segment]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{s.start:.6f} {s.end:.6f} {s.label}\n" for s in segments), encoding="utf-8")
    tmp.replace(path)


def make_utterance(spec: UttSpec, wav_dir: Path) -> UttResult:
    """Synthesise (or reuse, when its ``.seg`` exists) one utterance; failures come back as ``error``."""
    wav_path, seg_path = wav_dir / f"{spec.utt}.wav", wav_dir / f"{spec.utt}.seg"
    try:
        if seg_path.is_file() and wav_path.is_file():
            segments = read_seg_file(seg_path)
            n = sf.info(str(wav_path)).frames
        else:
            spoken = run_flite_words(" ".join(spec.words).lower())
            if [w.lstrip("_").upper() for w in spoken] != list(spec.words):
                raise ValueError(f"flite says {' '.join(spoken)!r} for {' '.join(spec.words).lower()!r}")
            audio, sr, pairs = synthesize(spec.words, spec.speaker, wav_dir / f"{spec.utt}.flite.wav")
            wave = to_16k(audio, sr, spec.speaker.warp)
            n = int(wave.shape[0])
            segments = ends_to_segments(pairs, time_scale=1.0 / spec.speaker.warp)
            segments = fit_segments_to_audio(segments, n / SAMPLE_RATE)
            strange = sorted({s.label for s in segments} - CMU_PHONES - {SILENCE})
            if strange:
                raise ValueError(f"flite phones outside the CMU set: {strange}")
            tmp = wav_dir / f"{spec.utt}.tmp.wav"
            sf.write(tmp, wave, SAMPLE_RATE, subtype="PCM_16")
            tmp.replace(wav_path)
            write_seg_file(seg_path, segments)
        frames = num_frames(n)
        short = uncovered_phones(segments, frames)
        if short:
            raise ValueError(f"phone(s) shorter than a frame: {short[:3]}")
        if not any(s.label != SILENCE for s in segments):
            raise ValueError("no phones")
        alignment = segments_to_frame_labels(segments, frames, source=spec.utt)
        return UttResult(spec, tuple(segments), n, tuple(alignment))
    except (ValueError, RuntimeError, OSError) as e:
        for p in (wav_path, seg_path):
            p.unlink(missing_ok=True)
        return UttResult(spec, error=f"{spec.utt}: {e}")


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _make_utterance_star(args: tuple[UttSpec, Path]) -> UttResult:
    return make_utterance(*args)


# --- the corpus -------------------------------------------------------------------------------


def _fingerprint(cfg: SynthConfig, text_path: Path | None) -> dict:
    text_sha = hashlib.sha256(text_path.read_bytes()).hexdigest() if text_path else None
    return {"config": asdict(cfg), "text_sha256": text_sha}


def _check_out_dir(out: Path, fingerprint: dict) -> str:
    """Create ``out`` or check it was made with the same settings; returns "new", "partial" or "complete"."""
    cfg_file = out / "synth_config.json"
    if out.exists() and any(out.iterdir()):
        if not cfg_file.is_file():
            raise SynthError(f"{out} exists, is not empty and was not made by phonrec.data.synth (no synth_config.json)")
        old = json.loads(cfg_file.read_text(encoding="utf-8"))
        if old != json.loads(json.dumps(fingerprint)):
            raise SynthError(
                f"{out} was made with other settings ({cfg_file}); use another OUT or remove it.\n"
                f"  there: {old}\n  now:   {fingerprint}"
            )
        return "complete" if (out / "summary.json").is_file() else "partial"
    (out / "wav").mkdir(parents=True, exist_ok=True)
    cfg_file.write_text(json.dumps(fingerprint, indent=2) + "\n", encoding="utf-8")
    return "new"


def build_corpus(out: str | Path, cfg: SynthConfig, *, text_path: str | Path | None = None, jobs: int | None = None, progress: bool = True) -> dict:
    """Generate the corpus into ``out`` (layout in the module docstring) and return the summary.

    Args:
        out: output directory (created; a partial one made with the same settings is resumed).
        cfg: what to generate.
        text_path: a file of sentences instead of generated text.
        jobs: worker processes (default ``os.cpu_count()``; 1 runs in this process).
        progress: show a tqdm bar.

    Raises:
        SynthError: bad settings, a bad text file, ``out`` made with other settings, flite missing.
    """
    t0 = time.perf_counter()
    if shutil.which("flite") is None:
        raise SynthError("the 'flite' program is not on PATH (Debian/Ubuntu: apt-get install flite)")
    out = Path(out)
    text_file = Path(text_path) if text_path is not None else None
    state = _check_out_dir(out, _fingerprint(cfg, text_file))
    if state != "new":
        log.info("%s: %s output found, reusing finished utterances", out, state)
    cmu_words = set(cmudict().entries)
    rejected: list[str] = []
    if text_file is not None:
        text = read_text_file(text_file, cmu_words)
        specs, rejected = plan_utterances(cfg, sentences=text.sentences), text.rejected
    else:
        specs = plan_utterances(cfg, vocabulary=load_vocabulary(cfg.vocab_size, cmu_words))
    wav_dir = out / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    jobs = max(1, jobs or os.cpu_count() or 1)

    from tqdm import tqdm

    results: list[UttResult] = []
    bar = tqdm(total=len(specs), unit="utt", desc="synth", disable=not progress)
    tasks = [(s, wav_dir) for s in specs]
    if jobs == 1:
        for task in tasks:
            results.append(_make_utterance_star(task))
            bar.update()
    else:
        with multiprocessing.get_context("fork").Pool(jobs, initializer=_worker_init) as pool:
            for r in pool.imap_unordered(_make_utterance_star, tasks, chunksize=4):
                results.append(r)
                bar.update()
    bar.close()
    results.sort(key=lambda r: r.spec.index)

    ok = [r for r in results if not r.error]
    failed = [r for r in results if r.error]
    for r in failed:
        log.warning("skipped %s", r.error)
    for split in SPLITS:
        part = [r for r in ok if r.spec.split == split]
        DataDir(
            wavs={r.spec.utt: wav_dir / f"{r.spec.utt}.wav" for r in part},
            text={r.spec.utt: " ".join(r.spec.words) for r in part},
            utt2spk={r.spec.utt: r.spec.speaker.id for r in part},
            phones={r.spec.utt: r.phones for r in part},
            alignments={r.spec.utt: list(r.alignment) for r in part},
        ).save(out / split)
    cmudict().restrict(sorted({w for r in ok for w in r.spec.words})).to_kaldi(out / "lexicon.txt")
    summary = _summary(cfg, specs, ok, failed, rejected, jobs, time.perf_counter() - t0, text_file)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "README.txt").write_text(_readme(summary), encoding="utf-8")
    return summary


def _summary(cfg, specs, ok, failed, rejected, jobs, seconds, text_file) -> dict:
    def hours(rs) -> float:
        return round(sum(r.num_samples for r in rs) / SAMPLE_RATE / 3600.0, 4)

    speakers = sorted({s.speaker for s in specs}, key=lambda s: s.id)
    return {
        "requested": cfg.num_utts,
        "utterances": len(ok),
        "hours": hours(ok),
        "skipped": len(failed),
        "skipped_utterances": [r.error for r in failed],
        "rejected_text_lines": rejected,
        "splits": {
            split: {
                "utterances": sum(r.spec.split == split for r in ok),
                "hours": hours([r for r in ok if r.spec.split == split]),
                "speakers": len({r.spec.speaker.id for r in ok if r.spec.split == split}),
                "voices": sorted({r.spec.speaker.voice for r in ok if r.spec.split == split}),
            }
            for split in SPLITS
        },
        "voices": {v: {"kind": VOICES[v].kind, "native_sample_rate": VOICES[v].sample_rate, "split": "test" if v == cfg.test_voice else "train+dev"} for v in cfg.voices},
        "speakers": [asdict(s) for s in speakers],
        "text": str(text_file) if text_file else f"wordfreq top {cfg.vocab_size} (Zipf-weighted)",
        "sample_rate": SAMPLE_RATE,
        "seed": cfg.seed,
        "jobs": jobs,
        "generation_seconds": round(seconds, 2),
    }


def _readme(s: dict) -> str:
    lines = [
        "Synthetic English speech made by phonrec.data.synth with flite (labels: flite's own phone timings).",
        f"{s['utterances']} utterances ({s['hours']:.3f} h of audio) of {s['requested']} requested; "
        f"{s['skipped']} skipped; seed {s['seed']}; generated in {s['generation_seconds']:.1f} s with {s['jobs']} jobs.",
        f"Text: {s['text']}.",
        "",
        "split  utterances  hours   speakers  voices",
    ]
    for split, d in s["splits"].items():
        lines.append(f"{split:<6} {d['utterances']:>10}  {d['hours']:.3f}  {d['speakers']:>8}  {' '.join(d['voices'])}")
    lines += ["", "Test voice never appears in train/dev; dev = held-out sentences of the training speakers.", "", "speaker   voice  stretch  f0_mean  warp"]
    for sp in s["speakers"]:
        f0 = "-" if sp["f0_mean"] is None else f"{sp['f0_mean']:.0f}"
        lines.append(f"{sp['id']:<9} {sp['voice']:<6} {sp['duration_stretch']:>7.2f}  {f0:>7}  {sp['warp']:.2f}")
    lines += ["", "phones: phone string without any sil (CTC targets); alignments: one symbol per 10 ms frame, sil included.",
              "See the docstring of phonrec/data/synth.py for the details.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``phonrec-synth OUT --num-utts N [--seed S] [--jobs J] [--test-voice V] [--text FILE]``."""
    p = argparse.ArgumentParser(prog="phonrec-synth", description=__doc__.split("\n", 1)[0])
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--num-utts", type=int, required=True, help="utterances to generate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--test-voice", default="awb", choices=sorted(VOICES))
    p.add_argument("--text", type=Path, default=None, help="sentences, one per line, instead of generated text")
    p.add_argument("--dev-fraction", type=float, default=0.1)
    p.add_argument("--speakers-per-voice", type=int, default=4)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = SynthConfig(
            num_utts=args.num_utts, seed=args.seed, test_voice=args.test_voice,
            dev_fraction=args.dev_fraction, speakers_per_voice=args.speakers_per_voice,
        )
        s = build_corpus(args.out, cfg, text_path=args.text, jobs=args.jobs, progress=not args.quiet)
    except SynthError as e:
        print(f"phonrec-synth: error: {e}", file=sys.stderr)
        return 2
    print(
        f"{s['utterances']} utterances, {s['hours']:.3f} h, {s['skipped']} skipped, "
        f"{s['generation_seconds']:.1f} s -> {args.out}  "
        + " ".join(f"{k}={v['utterances']}" for k, v in s["splits"].items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
