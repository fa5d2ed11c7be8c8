"""Forced alignment of a transcript: words, their pronunciations and a model's per-frame
log-probabilities -> word and phone intervals in seconds, each phone with a posterior score.

:func:`align_words` runs the Viterbi primitives of :mod:`phonrec.align` on the phone string the
words spell:

* CTC models (the phone set has ``<blank>``): :func:`phonrec.align.align_ctc_scored`. A phone's
  CTC span is the run of frames that emit it; it is widened over the blank frames next to it by
  :func:`phonrec.align.widen_ctc_spans` (up to 40 ms each side, a short gap split at its middle),
  and what is left between two words is silence.
* frame-level models: :func:`phonrec.align.align_frames_scored` with ``sil`` optional before,
  after and between the phones, and each phone at least ``min_duration`` frames (lowered to what
  fits when the audio is too short for it, down to one frame a phone).

Inside a word there is no silence: a gap (or inserted ``sil``) between two phones of one word is
split between them at its middle. With ``silence=False`` the gaps between words are split the
same way and the first and last phones reach the ends of the file. A word with several
pronunciations gets the one that scores best: every word starts at its first pronunciation, then,
in word order, each alternative is tried with the other words fixed and kept when the whole
path's log-probability improves (one pass, one Viterbi run per alternative).

Times: frame ``f`` starts at ``frames_to_seconds(f, hop_ms)``; the last interval ends at the
audio's duration (the final partial window), so the intervals of each tier, the empty ones
included, tile ``[0, duration]``. A phone's ``score`` is its mean posterior probability (0..1) over
the frames the path gives it (CTC: the frames that emit it, without the blanks it was widened
over): the raw material of pronunciation scoring (goodness of pronunciation).

:func:`snap_alignment` then moves the edges of every pause (speech onsets and offsets, the word
tier's too) to where the recording's energy rises or falls, within 50 ms (:mod:`phonrec.vad`):
what :meth:`phonrec.transcribe.Transcriber.align` and ``phonrec-align`` return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from phonrec.align import align_ctc_scored, align_frames_scored, refine_phone_edges, widen_ctc_spans
from phonrec.data.segments import Segment
from phonrec.divergences import ctc_min_frames
from phonrec.lexicon import Pron
from phonrec.phones import PhoneSet, PhoneSetError
from phonrec.spans import DEFAULT_HOP_MS, as_numpy_log_probs, frames_to_seconds
from phonrec.spectral import PHONE_SNAP_MAX_SHIFT_MS, ChangeTrack, snap_phone_edges
from phonrec.vad import SNAP_MAX_SHIFT_MS, EnergyTrack, snap_pause_edges


class AlignmentError(ValueError):
    """A transcript that cannot be aligned to its audio; the message names the utterance and the numbers."""


@dataclass(frozen=True)
class WordInterval:
    """A word (lower-case, as the tier shows it) from ``start`` to ``end`` seconds; ``""`` for a silence."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class PhoneInterval:
    """A phone from ``start`` to ``end`` seconds; ``""`` (with ``score`` and ``word`` ``None``) for a silence.

    Attributes:
        score: mean posterior probability (0..1) of the phone over its frames.
        word: index into :attr:`Alignment.words` of the word it belongs to.
    """

    phone: str
    start: float
    end: float
    score: float | None
    word: int | None


@dataclass
class Alignment:
    """What :func:`align_words` (and :meth:`phonrec.transcribe.Transcriber.align`) return.

    Attributes:
        utterance: the name used in errors (a file, or ``<array>``).
        duration: seconds of audio; both tiers tile ``[0, duration]``.
        words: word intervals in time order, silences (``""``) included.
        phones: phone intervals in time order, silences (``""``) included.
        pronunciations: the pronunciation chosen for each word, in word order.
        log_likelihood: the Viterbi path's log-probability (sum over frames).
    """

    utterance: str
    duration: float
    words: list[WordInterval]
    phones: list[PhoneInterval]
    pronunciations: list[Pron]
    log_likelihood: float

    def word_score(self, index: int) -> float | None:
        """Mean :attr:`PhoneInterval.score` of the phones of ``words[index]`` (``None`` for a silence)."""
        scores = [p.score for p in self.phones if p.word == index and p.score is not None]
        return float(np.mean(scores)) if scores else None


@dataclass(frozen=True)
class _Path:
    """One Viterbi run: per-target frame intervals (widened/owned), scoring frames, path score."""

    owned: list[tuple[float, float]]  # fractional once refine_phone_edges has moved them
    scored: list[tuple[int, int]]
    score: float


def align_words(
    log_probs: torch.Tensor | np.ndarray,
    words: Sequence[str],
    pronunciations: Sequence[Sequence[Pron]],
    phone_set: PhoneSet,
    *,
    hop_ms: float = DEFAULT_HOP_MS,
    duration: float | None = None,
    min_duration: int = 1,
    silence: bool = True,
    shift_ms: float = 0.0,
    utterance: str = "<array>",
) -> Alignment:
    """Align ``words`` (with their candidate pronunciations) to ``log_probs`` (module docstring).

    Args:
        log_probs: (T, K) per-frame log-probabilities of a model whose phone set is ``phone_set``.
        words: the words in order (any case; the tiers show them lower-case).
        pronunciations: per word, one or more phone-symbol tuples (e.g. from
            :meth:`phonrec.pronounce.Pronouncer.pronunciations`).
        hop_ms: milliseconds per model frame.
        duration: seconds of audio (default ``T * hop_ms``); the last interval ends there.
        min_duration: frame-level models: fewest frames per phone.
        silence: allow silence between words (and at the edges).
        shift_ms: added to every boundary inside the audio, kept within ``[0, duration]`` (the
            model's calibrated ``boundary_shift_ms``, :mod:`phonrec.model_dir`).
        utterance: named in errors.

    Raises:
        AlignmentError: no words, a word none of whose pronunciations uses only the model's phones,
            or a transcript that needs more frames than the audio has (the numbers named).
    """
    lp = as_numpy_log_probs(log_probs)
    T = lp.shape[0]
    if len(pronunciations) != len(words):
        raise ValueError(f"{len(words)} words but {len(pronunciations)} pronunciation lists")
    if not words:
        raise AlignmentError(f"{utterance}: empty transcript (no words to align)")
    if min_duration < 1:
        raise ValueError(f"min_duration must be >= 1, got {min_duration}")
    duration = frames_to_seconds(T, hop_ms) if duration is None else float(duration)
    candidates = [_candidates(w, p, phone_set, utterance) for w, p in zip(words, pronunciations)]
    blank, sil = phone_set.blank_id, phone_set.silence_id

    def flat(choice: list[int]) -> list[int]:
        return [p for cands, c in zip(candidates, choice) for p in cands[c]]

    def frames_per_phone(targets: list[int]) -> int:  # min_duration, or less when the audio is short
        return max(1, min(min_duration, T // len(targets)))

    def run(choice: list[int]) -> _Path:
        targets = flat(choice)
        if blank is not None:
            return _ctc_path(lp, targets, blank, hop_ms)
        return _frame_path(lp, targets, frames_per_phone(targets), sil if silence else None)

    shortest = [min(range(len(c)), key=lambda j, c=c: len(c[j])) for c in candidates]
    need = _frames_needed(flat(shortest), blank is not None)
    if T < need:
        phones = sum(len(c[j]) for c, j in zip(candidates, shortest))
        raise AlignmentError(
            f"{utterance}: transcript too long for the audio: {len(words)} words, {phones} phones need at least "
            f"{need} frames ({frames_to_seconds(need, hop_ms):.2f} s), the audio has {T} ({duration:.2f} s)"
        )
    choice = [0] * len(words)
    if T < _frames_needed(flat(choice), blank is not None):
        choice = list(shortest)
    best = run(choice)
    for i, cands in enumerate(candidates):
        for j in range(len(cands)):
            if j == choice[i]:
                continue
            trial = choice[:i] + [j] + choice[i + 1 :]
            if T < _frames_needed(flat(trial), blank is not None):
                continue
            path = run(trial)
            if path.score > best.score:
                best, choice = path, trial
    if blank is None and silence and sil is not None:  # frame-level model: phone-phone edges at their expectation
        targets = flat(choice)
        best = replace(best, owned=refine_phone_edges(best.owned, lp, targets, frames_per_phone(targets), sil))
    return _assemble(lp, words, candidates, choice, best, phone_set, hop_ms, duration, silence, shift_ms, utterance)


def _candidates(word: str, prons: Sequence[Pron], phone_set: PhoneSet, utterance: str) -> list[list[int]]:
    """The pronunciations of ``word`` as phone ids of the model (silence-free, known phones only)."""
    out: list[list[int]] = []
    unknown: set[str] = set()
    for pron in prons:
        if not pron or phone_set.silence in pron:
            continue
        try:
            ids = phone_set.encode(list(pron))
        except PhoneSetError:
            unknown |= {p for p in pron if p not in phone_set}
            continue
        if ids not in out:
            out.append(ids)
    if not out:
        why = f" (the model has no phone {', '.join(sorted(unknown))})" if unknown else ""
        raise AlignmentError(f"{utterance}: no usable pronunciation of {word!r}{why}")
    return out


def _frames_needed(targets: list[int], ctc: bool) -> int:
    if not ctc:
        return len(targets)
    return int(ctc_min_frames(torch.tensor([targets]), torch.tensor([len(targets)]))[0])


def _ctc_path(lp: np.ndarray, targets: list[int], blank: int, hop_ms: float) -> _Path:
    result = align_ctc_scored(lp, targets, blank)
    owned = [(s.start, s.end) for s in widen_ctc_spans(result.spans, lp.shape[0], hop_ms=hop_ms)]  # over blanks
    return _Path(owned, [(s.start, s.end) for s in result.spans], result.score)


def _frame_path(lp: np.ndarray, targets: list[int], min_duration: int, sil: int | None) -> _Path:
    result = align_frames_scored(lp, targets, min_duration, optional_silence=sil, silence_between=sil is not None)
    owned = [(s.start, s.end) for s in result.spans if sil is None or s.phone != sil]  # targets never hold sil
    return _Path(owned, owned, result.score)


def _assemble(
    lp: np.ndarray,
    words: Sequence[str],
    candidates: list[list[list[int]]],
    choice: list[int],
    path: _Path,
    phone_set: PhoneSet,
    hop_ms: float,
    duration: float,
    silence: bool,
    shift_ms: float,
    utterance: str,
) -> Alignment:
    """Per-target frame intervals -> tiers in seconds (gaps inside words split, silences between words)."""
    T = lp.shape[0]
    targets = [p for cands, c in zip(candidates, choice) for p in cands[c]]
    word_of = [i for i, (cands, c) in enumerate(zip(candidates, choice)) for _ in cands[c]]
    bounds = [list(b) for b in path.owned]
    for k in range(len(bounds) - 1):
        end, start = bounds[k][1], bounds[k + 1][0]
        if start > end and (word_of[k] == word_of[k + 1] or not silence):
            mid = (end + start + 1) // 2
            bounds[k][1], bounds[k + 1][0] = mid, mid
    if not silence:
        bounds[0][0], bounds[-1][1] = 0, T

    def seconds(frame: float) -> float:
        if frame <= 0 or frame >= T:
            return 0.0 if frame <= 0 else duration
        return min(max(frames_to_seconds(frame, hop_ms) + shift_ms / 1000.0, 0.0), duration)

    probs = np.exp(lp)
    phones: list[PhoneInterval] = []
    word_bounds: list[tuple[int, int]] = []
    t = 0
    for k, ((a, b), (sa, sb), pid) in enumerate(zip(bounds, path.scored, targets)):
        if a > t:
            phones.append(PhoneInterval("", seconds(t), seconds(a), None, None))
        score = float(probs[sa:sb, pid].mean())
        phones.append(PhoneInterval(phone_set.symbols[pid], seconds(a), seconds(b), score, word_of[k]))
        t = b
        if k == 0 or word_of[k] != word_of[k - 1]:
            word_bounds.append((a, b))
        else:
            word_bounds[-1] = (word_bounds[-1][0], b)
    if t < T:
        phones.append(PhoneInterval("", seconds(t), duration, None, None))
    word_intervals: list[WordInterval] = []
    t = 0
    for w, (a, b) in zip(words, word_bounds):
        if a > t:
            word_intervals.append(WordInterval("", seconds(t), seconds(a)))
        word_intervals.append(WordInterval(w.lower(), seconds(a), seconds(b)))
        t = b
    if t < T:
        word_intervals.append(WordInterval("", seconds(t), duration))
    word_intervals = [w for w in word_intervals if w.word or w.end > w.start]  # silences clipped to nothing
    # each phone's word index refers to the word list with its silences
    index = [i for i, w in enumerate(word_intervals) if w.word]
    phones = [
        p if p.word is None else PhoneInterval(p.phone, p.start, p.end, p.score, index[p.word])
        for p in phones
        if p.word is not None or p.end > p.start
    ]
    chosen = [tuple(phone_set.symbols[p] for p in cands[c]) for cands, c in zip(candidates, choice)]
    return Alignment(utterance, duration, word_intervals, phones, chosen, path.score)


def snap_alignment(
    alignment: Alignment,
    track: EnergyTrack | None,
    *,
    max_shift_ms: float = SNAP_MAX_SHIFT_MS,
    change: ChangeTrack | None = None,
    phone_shift_ms: float = PHONE_SNAP_MAX_SHIFT_MS,
) -> Alignment:
    """``alignment`` fitted to the recording: its pauses to the energy (``track``,
    :func:`phonrec.vad.snap_pause_edges`: pauses that are mostly speech dropped, the others' edges on
    the energy's rises and falls, within ``max_shift_ms``), then the edges between phones to the
    spectral change (``change``, :func:`phonrec.spectral.snap_phone_edges`, within
    ``phone_shift_ms``); either step is skipped when its track is ``None``. The word tier follows its
    phones; scores and pronunciations are unchanged."""
    moved = [Segment(p.phone, p.start, p.end) for p in alignment.phones]
    if track is not None:
        moved = snap_pause_edges(moved, track, silence="", max_shift_ms=max_shift_ms)
    if change is not None:
        moved = snap_phone_edges(moved, change, silence="", max_shift_ms=phone_shift_ms)
    speech = iter(p for p in alignment.phones if p.phone)  # in step with the moved speech segments
    words: list[WordInterval] = []
    phones: list[PhoneInterval] = []
    word_of_last_phone: int | None = None  # index into alignment.words
    for s in moved:
        if not s.label:
            phones.append(PhoneInterval("", s.start, s.end, None, None))
            continue
        p = next(speech)
        if p.word != word_of_last_phone:  # a word begins: a pause before it if there is a gap
            gap_start = words[-1].end if words else 0.0
            if s.start > gap_start:
                words.append(WordInterval("", gap_start, s.start))
            words.append(WordInterval(alignment.words[p.word].word, s.start, s.end))  # type: ignore[index]
            word_of_last_phone = p.word
        else:
            words[-1] = replace(words[-1], end=s.end)
        phones.append(PhoneInterval(p.phone, s.start, s.end, p.score, len(words) - 1))
    end = words[-1].end if words else 0.0
    if end < alignment.duration:
        words.append(WordInterval("", end, alignment.duration))
    return replace(alignment, phones=phones, words=words)
