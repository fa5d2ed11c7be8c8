"""A synthetic English corpus with exact phone timings, made with the flite synthesiser.

This module plans the corpus and writes it; the voices (flite, speaker settings, phone timings) are
:mod:`phonrec.data.voices`. ``python -m phonrec.cli.synth OUT --num-utts N [--seed S] [--jobs J]
[--test-voice awb] [--text FILE]`` (console script ``phonrec-synth``) runs :func:`build_corpus`, which writes::

    OUT/train OUT/dev OUT/test   Kaldi-style data directories (wav.scp text utt2spk spk2utt phones alignments)
    OUT/wav/<utt>.wav            16 kHz mono 16-bit audio
    OUT/wav/<utt>.seg            the utterance's phone segments, ``start end phone`` in seconds per line
    OUT/lexicon.txt              CMUdict pronunciations (phonrec symbols) of every word in ``text``
    OUT/summary.json, README.txt utterance/hour/speaker counts per split, voices, skips, generation time
    OUT/synth_config.json        the settings OUT was made with (a re-run must use the same ones)

Speakers
    A *speaker* is a voice of :data:`~phonrec.data.voices.VOICES` plus one seeded setting (what
    each does is in :mod:`phonrec.data.voices`): ``duration_stretch`` (0.8-1.3),
    ``int_f0_target_mean`` (80-220 Hz; recorded as ``null`` for ``rms``, which ignores it) and a
    speed warp ``w`` (0.9-1.1). Speaker id = ``<voice>-<setting index>``, e.g. ``slt-02``;
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
    themselves (:func:`phonrec.data.voices.word_mismatches` removes the others).
    Word ``k`` (0-based frequency rank) has Zipf weight ``1/(k+1)``.
    With ``--text FILE`` utterance ``i`` says line ``i mod L`` of the ``L`` accepted lines. A line is
    split on white space and ``.,;:!?"`` are stripped from the ends of each token; blank lines
    are ignored; a line with any token that is not alphabetic ASCII after that (``don't``, ``42``)
    or not in CMUdict is rejected: it is logged with ``FILE:LINE`` and the reason, and listed in
    ``summary.json`` under ``rejected_text_lines``. No accepted line at all is a ``SynthError``.
    ``text`` holds the words upper-case.

Labels
    ``OUT/wav/<utt>.seg`` holds the segments :func:`phonrec.data.voices.speak` returned (its last
    ``sil`` ends at the audio's end; see "Labels" there).

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
    other settings is refused. Utterances the voice refuses (flite failures, empty audio,
    unparsable ``-psdur`` output, words flite speaks differently from the text, phones outside
    the 39 CMU phones) are logged, skipped and counted in ``summary.json``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import multiprocessing
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import soundfile as sf

from phonrec.data.datadir import DataDir
from phonrec.data.segments import Segment, segments_to_frame_labels
from phonrec.data.voices import SAMPLE_RATE, VOICES, Speaker, check_installed, speak, word_mismatches
from phonrec.features import frame_center_seconds, num_frames
from phonrec.lexicon import Lexicon, LexiconError
from phonrec.phones import SILENCE

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
_STRIP = '.,;:!?"'


class SynthError(ValueError):
    """Bad settings, a bad ``--text`` file or an OUT made with other settings; the message says which."""


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
    bad = word_mismatches(candidates)
    return [w.upper() for w in candidates if w not in bad]


def generate_sentence(
    rng: random.Random, vocabulary: Sequence[str], cum_weights: Sequence[float], cfg: SynthConfig
) -> tuple[str, ...]:
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
        raise SynthError(
            f"{path}: no usable sentence (need alphabetic words with CMUdict entries, one sentence per line)"
        )
    bad_words = word_mismatches(sorted({w.lower() for s in out.sentences for w in s}))
    if bad_words:
        log.warning(
            "%s: flite speaks these words differently (%s); utterances with them will be skipped",
            path,
            sorted(bad_words),
        )
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


# --- one utterance ----------------------------------------------------------------------------


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
            speech = speak(spec.words, spec.speaker, wav_dir / f"{spec.utt}.flite.wav")
            n, segments = int(speech.wave.shape[0]), speech.segments
            tmp = wav_dir / f"{spec.utt}.tmp.wav"
            sf.write(tmp, speech.wave, SAMPLE_RATE, subtype="PCM_16")
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
            raise SynthError(
                f"{out} exists, is not empty and was not made by phonrec.data.synth (no synth_config.json)"
            )
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


def build_corpus(
    out: str | Path,
    cfg: SynthConfig,
    *,
    text_path: str | Path | None = None,
    jobs: int | None = None,
    progress: bool = True,
) -> dict:
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
    try:
        check_installed()
    except FileNotFoundError as e:
        raise SynthError(str(e)) from None
    out = Path(out)
    text_file = Path(text_path) if text_path is not None else None
    state = _check_out_dir(out, _fingerprint(cfg, text_file))
    if state != "new":
        log.info("%s: %s output found, reusing finished utterances", out, state)
    specs, rejected = _plan(cfg, text_file)
    wav_dir = out / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    jobs = max(1, jobs or os.cpu_count() or 1)
    results = _make_utterances(specs, wav_dir, jobs, progress)
    ok = [r for r in results if not r.error]
    failed = [r for r in results if r.error]
    for r in failed:
        log.warning("skipped %s", r.error)
    _write_data_dirs(out, wav_dir, ok)
    summary = _summary(cfg, specs, ok, failed, rejected, jobs, time.perf_counter() - t0, text_file)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "README.txt").write_text(_readme(summary), encoding="utf-8")
    return summary


def _plan(cfg: SynthConfig, text_file: Path | None) -> tuple[list[UttSpec], list[str]]:
    """The utterances to make, from ``text_file``'s sentences or generated text; and the rejected text lines."""
    cmu_words = set(cmudict().entries)
    if text_file is None:
        return plan_utterances(cfg, vocabulary=load_vocabulary(cfg.vocab_size, cmu_words)), []
    text = read_text_file(text_file, cmu_words)
    return plan_utterances(cfg, sentences=text.sentences), text.rejected


def _make_utterances(specs: Sequence[UttSpec], wav_dir: Path, jobs: int, progress: bool) -> list[UttResult]:
    """:func:`make_utterance` for every spec, in ``jobs`` processes; results in utterance-index order."""
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
    return results


def _write_data_dirs(out: Path, wav_dir: Path, ok: Sequence[UttResult]) -> None:
    """``out/{train,dev,test}`` data directories and ``out/lexicon.txt`` of the finished utterances."""
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
        "voices": {
            v: {
                "kind": VOICES[v].kind,
                "native_sample_rate": VOICES[v].sample_rate,
                "split": "test" if v == cfg.test_voice else "train+dev",
            }
            for v in cfg.voices
        },
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
        f"{s['skipped']} skipped; seed {s['seed']}; "
        f"generated in {s['generation_seconds']:.1f} s with {s['jobs']} jobs.",
        f"Text: {s['text']}.",
        "",
        "split  utterances  hours   speakers  voices",
    ]
    for split, d in s["splits"].items():
        lines.append(f"{split:<6} {d['utterances']:>10}  {d['hours']:.3f}  {d['speakers']:>8}  {' '.join(d['voices'])}")
    lines += [
        "",
        "Test voice never appears in train/dev; dev = held-out sentences of the training speakers.",
        "",
        "speaker   voice  stretch  f0_mean  warp",
    ]
    for sp in s["speakers"]:
        f0 = "-" if sp["f0_mean"] is None else f"{sp['f0_mean']:.0f}"
        lines.append(f"{sp['id']:<9} {sp['voice']:<6} {sp['duration_stretch']:>7.2f}  {f0:>7}  {sp['warp']:.2f}")
    lines += [
        "",
        "phones: phone string without any sil (CTC targets); alignments: one symbol per 10 ms frame, sil included.",
        "See the docstring of phonrec/data/synth.py for the details.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(
        "phonrec.data.synth is the corpus library now; the command is: python -m phonrec.cli.synth OUT --num-utts N"
    )
