"""Boundary accuracy of the forced aligners against exact synthesiser timings (issue 14 item 5).

Every utterance of a data directory made by ``phonrec-synth`` is force-aligned to its reference
phone string (the ``phones`` file) by each aligner option, and each interior reference boundary is
compared with the aligner's time for it. The reference is flite's exact phone timing,
``wav/<utt>.seg`` next to the wav (:func:`phonrec.data.synth.read_seg_file`), not the 10-ms
``alignments`` file (which is itself quantised).

What is counted
    The reference's non-silence phones ``p_0 .. p_{L-1}`` are the targets; every aligner returns
    one (start, end) per target, in the same order, so boundaries are matched one-to-one by
    position (a hypothesis whose non-silence phones differ from the reference's is an error, not
    a score). For each ``i``:

    * ``phone`` boundaries: ``p_i`` and ``p_{i+1}`` touch in the reference (no pause between):
      reference time ``end_i``; hypothesis time the middle of ``[end_i, start_{i+1}]`` (just
      ``start_{i+1}`` when the aligner put no silence between them).
    * ``sil`` (speech/silence) boundaries: where the reference has silence between ``p_i`` and
      ``p_{i+1}``, before ``p_0`` or after ``p_{L-1}``: the speech offset ``end_i`` and the
      onset ``start_{i+1}`` are each compared with the hypothesis's ``end_i`` / ``start_{i+1}``.
      An onset at 0 s or an offset at the audio's end is not interior and not counted.

    ``all`` pools both kinds. Reported: the share of boundaries with ``|error| <= 10 / 20 / 50 ms``,
    the mean absolute and the mean signed error (hypothesis minus reference, ms: negative = early),
    and the pauses the aligner invented (:func:`spurious_pauses`; no boundary counts them).

Aligner options (``--model`` frame-level, ``--ctc-model`` CTC)
    ``viterbi-min{D}``   frame model + :func:`phonrec.align.align_frames`, every phone >= D ms
                         (D = 0 and 10 are the same at 10-ms frames: a phone has >= 1 frame), optional
                         ``sil`` at the edges and between phones (as ``phonrec-align`` runs it);
                         frames -> seconds by :func:`phonrec.spans.frames_to_seconds`.
    ``...@edge``         the same path, boundaries at ``frame * hop`` (phonrec before the offset fix).
    ``...+xing``         boundaries moved to the crossing point of the two neighbouring phones'
                         log-posteriors, interpolated linearly between frame centres.
    ``...+fb``           the Viterbi path's pauses, each edge between two touching phones at its
                         posterior expectation (:func:`phonrec.align.refine_phone_edges`: what
                         ``phonrec-align`` does with a frame-level model).
    ``fb-min{D}``        the same graph, each boundary at its posterior expectation (forward-backward,
                         :func:`phonrec.align.expected_boundaries`): sub-frame, and an average over likely paths.
    ``ctc-widened``      CTC model + :func:`phonrec.align.align_ctc`, spans widened over blanks by
                         :func:`phonrec.align.widen_ctc_spans` (as ``phonrec-align`` writes them).
    ``ctc-onset``        as ``ctc-widened`` but a boundary between two touching phones is placed at
                         the first emitted frame of the right-hand phone.
    ``...+vad``          the same segments with every pause edge (speech/silence) moved to the nearest
                         energy transition of its direction within 50 ms
                         (:func:`phonrec.vad.snap_pause_edges`).
    ``...+vad+spec``     then every edge between two phones moved onto the strongest spectral change
                         within 20 ms (:func:`phonrec.spectral.snap_phone_edges`): what ``phonrec-align``
                         does with a CTC model.
    ``even-vad``         no model: the phones spread evenly over the speech region found by an energy
                         VAD (a user has no reference timings; :func:`vad_region`).

Frame times. Frame ``t``'s label is read at its centre, ``t * hop + win / 2`` (12.5 ms for 25-ms
windows; :func:`phonrec.data.segments.segments_to_frame_labels`), so a change of label between
frames ``t - 1`` and ``t`` says the true boundary lies between the two centres, at
``t * hop + (win - hop) / 2`` on average (:func:`phonrec.spans.boundary_offset_ms`).
A model's calibrated ``boundary_shift_ms`` (``decoding.yaml``, what ``phonrec-align`` adds) is
added to every option but ``@edge``. ``--calibrate DATA_DIR`` first sets it for each model given:
minus the median signed error of the option ``phonrec-align`` runs, on DATA_DIR (seen voices,
never the test data), measured without a shift (:func:`calibrate`).

    PYTHONPATH=. .venv/bin/python bench/boundaries.py --model exp/synth/aligned/model \\
        --ctc-model exp/synth/ctc/model --data data/synth/dev data/synth/test \\
        --json bench/results/boundaries_synth.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from phonrec.align import align_ctc, align_frames, expected_boundaries, refine_phone_edges, widen_ctc_spans
from phonrec.audio import load_audio
from phonrec.data.datadir import DataDir
from phonrec.data.segments import Segment
from phonrec.data.synth import read_seg_file
from phonrec.model_dir import set_boundary_shift
from phonrec.spans import Span, boundary_offset_ms, frames_to_seconds
from phonrec.spectral import PHONE_SNAP_MAX_SHIFT_MS, SHIFT_COST_PER_MS, SPAN, snap_phone_edges, spectral_change
from phonrec.transcribe import Transcriber
from phonrec.vad import energy_track, snap_pause_edges

TOLERANCES_MS = (10, 20, 50)
KINDS = ("phone", "sil", "all")
#: even-vad: speech = 10-ms frames above floor + VAD_FRACTION * (peak - floor) dB (set on 60 dev
#: utterances: 0.1 / 0.2 / 0.3 / 0.5 put 42 / 79 / 78 / 62% of speech on/offsets within 20 ms).
VAD_FRACTION = 0.25
_EPS = 1e-6


# --- the metric -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Boundary:
    """One reference boundary and the aligner's time for it (seconds)."""

    kind: str  # "phone" (between two phones) or "sil" (speech onset/offset)
    ref: float
    hyp: float

    @property
    def error_ms(self) -> float:
        """Signed error, hypothesis minus reference, in milliseconds."""
        return (self.hyp - self.ref) * 1000.0


def target_times(segments: Sequence[Segment], silence: str = "sil") -> tuple[list[str], list[float], list[float]]:
    """The non-silence segments' labels, starts and ends (silence segments dropped)."""
    speech = [s for s in segments if s.label != silence]
    return [s.label for s in speech], [s.start for s in speech], [s.end for s in speech]


def boundary_errors(
    ref: Sequence[Segment],
    hyp: Sequence[Segment],
    *,
    duration: float | None = None,
    silence: str = "sil",
    source: str = "",
) -> list[Boundary]:
    """Match the interior boundaries of ``ref`` with ``hyp`` by phone position (module docstring).

    Args:
        ref: reference segments in time order (``silence`` segments included or not).
        hyp: the aligner's segments for the same phone string.
        duration: the audio's length in seconds (default: the end of ``ref``'s last segment); a
            speech offset at it is not interior.
        source: utterance named in errors.

    Returns:
        one :class:`Boundary` per interior reference boundary, in time order.

    Raises:
        ValueError: when the two non-silence phone strings differ (first difference named).
    """
    where = f"{source}: " if source else ""
    r_lab, r_start, r_end = target_times(ref, silence)
    h_lab, h_start, h_end = target_times(hyp, silence)
    if r_lab != h_lab:
        i = next((k for k, (a, b) in enumerate(zip(r_lab, h_lab)) if a != b), min(len(r_lab), len(h_lab)))
        raise ValueError(
            f"{where}hypothesis phones differ from the reference at position {i} "
            f"(reference {len(r_lab)} phones {r_lab[i : i + 3]}, hypothesis {len(h_lab)} phones {h_lab[i : i + 3]})"
        )
    if not r_lab:
        return []
    end = ref[-1].end if duration is None else duration
    out: list[Boundary] = []
    if r_start[0] > _EPS:
        out.append(Boundary("sil", r_start[0], h_start[0]))
    for i in range(len(r_lab) - 1):
        if abs(r_start[i + 1] - r_end[i]) <= _EPS:
            out.append(Boundary("phone", r_end[i], 0.5 * (h_end[i] + h_start[i + 1])))
        else:
            out.append(Boundary("sil", r_end[i], h_end[i]))
            out.append(Boundary("sil", r_start[i + 1], h_start[i + 1]))
    if r_end[-1] < end - _EPS:
        out.append(Boundary("sil", r_end[-1], h_end[-1]))
    return out


def spurious_pauses(ref: Sequence[Segment], hyp: Sequence[Segment], silence: str = "sil") -> int:
    """Pauses the aligner put between two phones where the reference has none: ``silence`` segments
    of ``hyp`` with speech on both sides that overlap no ``silence`` segment of ``ref``."""
    pauses = [(s.start, s.end) for s in ref if s.label == silence]
    count = 0
    for before, seg, after in zip(hyp, hyp[1:], hyp[2:]):
        if seg.label != silence or before.label == silence or after.label == silence or seg.end <= seg.start:
            continue
        count += not any(a < seg.end and seg.start < b for a, b in pauses)
    return count


def summarise(bounds: Sequence[Boundary], tolerances_ms: Sequence[float] = TOLERANCES_MS) -> dict[str, dict]:
    """Per kind (``phone``, ``sil``, ``all``): count, share within each tolerance (%), mean |error|
    and mean signed error (ms). An empty kind has ``n = 0`` and ``None`` for the rest."""
    out: dict[str, dict] = {}
    for kind in KINDS:
        err = np.array([b.error_ms for b in bounds if kind == "all" or b.kind == kind], dtype=np.float64)
        row: dict[str, float | int | None] = {"n": int(err.size)}
        for tol in tolerances_ms:
            row[f"within_{tol:g}ms"] = round(100.0 * float(np.mean(np.abs(err) <= tol + 1e-9)), 2) if err.size else None
        row["mean_abs_ms"] = round(float(np.mean(np.abs(err))), 2) if err.size else None
        row["mean_signed_ms"] = round(float(np.mean(err)), 2) if err.size else None
        out[kind] = row
    return out


# --- frame times ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameClock:
    """Output-frame timing of a model: ``hop_ms`` per output frame; output frame ``t``'s label is
    read at ``t * hop_ms + centre0_ms`` (the centre of the feature frame training took it from)."""

    hop_ms: float
    centre0_ms: float
    offset_ms: float  # boundary before frame t at t * hop_ms + offset_ms

    @classmethod
    def of(cls, tr: Transcriber, *, edge: bool = False) -> "FrameClock":
        """The clock of a loaded model, with its calibrated ``boundary_shift_ms`` (as ``phonrec-align``
        times boundaries); ``edge``: boundaries at ``t * hop`` (no offset, no shift)."""
        f = tr.feature_config
        factor = int(round(tr.hop_ms / f.hop_ms))
        centre0 = (factor // 2) * f.hop_ms + f.win_ms / 2  # phonrec.train.subsample_labels picks factor // 2
        offset = 0.0 if edge else boundary_offset_ms(factor, f.win_ms, f.hop_ms) + tr.decoding.boundary_shift_ms
        return cls(tr.hop_ms, centre0, offset)

    def boundary(self, t: int) -> float:
        """Seconds of the boundary before output frame ``t`` (0 for ``t = 0``, never negative)."""
        return max(frames_to_seconds(t, self.hop_ms, offset_ms=self.offset_ms), 0.0)

    def centre(self, t: float) -> float:
        """Seconds of output frame ``t``'s label centre."""
        return (t * self.hop_ms + self.centre0_ms) / 1000.0


def spans_to_timed(spans: Sequence[Span], symbols: Sequence[str], clock: FrameClock) -> list[Segment]:
    """Frame spans -> segments in seconds through ``clock``."""
    return [Segment(symbols[s.phone], clock.boundary(s.start), clock.boundary(s.end)) for s in spans]


def crossing_times(spans: Sequence[Span], log_probs: np.ndarray, clock: FrameClock, *, window: int = 2) -> list[float]:
    """Refined times of the boundaries between consecutive spans (``len(spans) - 1`` of them).

    Between span ``a`` (ending at frame ``t``) and span ``b`` (starting there), ``d(u) =
    log p(a | u) - log p(b | u)`` is examined for ``u`` within ``window`` frames of ``t`` (and inside
    both spans); the boundary is the interpolated zero of ``d`` between the centres of the frames
    where it turns from >= 0 to < 0 nearest ``t``, else the frame boundary ``clock.boundary(t)``.
    The result keeps the boundaries in order.

    Args:
        spans: tiling ``[0, T)`` (e.g. :func:`phonrec.align.align_frames`' output).
        log_probs: (T, K) the frame-level log-probabilities the spans were aligned to.
    """
    out: list[float] = []
    for a, b in zip(spans, spans[1:]):
        t = b.start
        lo, hi = max(a.start, t - window), min(b.end - 1, t + window - 1)  # u and u + 1 in [lo, hi]
        d = log_probs[lo : hi + 1, a.phone] - log_probs[lo : hi + 1, b.phone]
        turns = [k for k in range(len(d) - 1) if d[k] >= 0 > d[k + 1]]
        if not turns:
            out.append(clock.boundary(t))
            continue
        k = min(turns, key=lambda k: abs(lo + k + 1 - t))  # the turn nearest the Viterbi cut
        out.append(clock.centre(lo + k + float(d[k] / (d[k] - d[k + 1]))))
    lo_bound = 0.0
    for i in range(len(out)):  # keep the order (each span keeps a positive length)
        hi_bound = clock.boundary(spans[i + 1].end) if i + 1 < len(spans) else np.inf
        out[i] = min(max(out[i], lo_bound), hi_bound)
        lo_bound = out[i]
    return out


def spans_with_crossings(
    spans: Sequence[Span], log_probs: np.ndarray, symbols: Sequence[str], clock: FrameClock
) -> list[Segment]:
    """Segments of ``spans`` with interior boundaries at :func:`crossing_times`."""
    cuts = crossing_times(spans, log_probs, clock)
    starts = [clock.boundary(spans[0].start)] + cuts
    ends = cuts + [clock.boundary(spans[-1].end)]
    return [Segment(symbols[s.phone], a, b) for s, a, b in zip(spans, starts, ends)]


def expected_segments(
    log_probs: np.ndarray,
    targets: Sequence[int],
    min_duration: int,
    symbols: Sequence[str],
    silence: int,
    clock: FrameClock,
) -> list[Segment]:
    """Segments at :func:`expected_boundaries` (silence where the expected gap is positive)."""
    starts, ends = expected_boundaries(log_probs, targets, min_duration, silence)
    T = log_probs.shape[0]
    phones = [Segment(symbols[p], clock.boundary(a), clock.boundary(b)) for p, a, b in zip(targets, starts, ends)]
    out, t = [], 0.0
    for seg in phones:
        if seg.start > t + 1e-9:
            out.append(Segment(symbols[silence], t, seg.start))
        out.append(seg)
        t = seg.end
    if clock.boundary(T) > t + 1e-9:
        out.append(Segment(symbols[silence], t, clock.boundary(T)))
    return out


# --- the aligners -----------------------------------------------------------------------------


def ctc_widened_spans(lp: np.ndarray, targets: Sequence[int], blank: int, silence: int, hop_ms: float) -> list[Span]:
    """CTC forced alignment widened over blanks (silence where a gap is long), as ``phonrec-align``
    writes it (:func:`phonrec.align.widen_ctc_spans`, one span per emitted phone, so two equal
    adjacent phones are cut at the middle of the blanks between them)."""
    emitted = align_ctc(lp, targets, blank)
    return _fill_silence(widen_ctc_spans(emitted, lp.shape[0], hop_ms=hop_ms), lp.shape[0], silence)


def _fill_silence(phones: Sequence[Span], num_frames: int, silence: int) -> list[Span]:
    """Ordered phone spans plus ``silence`` spans over the frames none covers."""
    out: list[Span] = []
    t = 0
    for s in phones:
        if s.start > t:
            out.append(Span(silence, t, s.start))
        out.append(s)
        t = s.end
    if t < num_frames:
        out.append(Span(silence, t, num_frames))
    return out


def ctc_onset_spans(lp: np.ndarray, targets: Sequence[int], blank: int, silence: int, hop_ms: float) -> list[Span]:
    """:func:`ctc_widened_spans`, with each boundary between two touching phones moved to the first
    emitted frame of the right-hand phone (the CTC spike onset)."""
    emitted = align_ctc(lp, targets, blank)
    phones = widen_ctc_spans(emitted, lp.shape[0], hop_ms=hop_ms)
    for k in range(len(phones) - 1):
        a, b = phones[k], phones[k + 1]
        if a.end == b.start:  # touching phones: the cut goes to the right phone's first emitted frame
            cut = emitted[k + 1].start
            phones[k], phones[k + 1] = Span(a.phone, a.start, cut), Span(b.phone, cut, b.end)
    return _fill_silence(phones, lp.shape[0], silence)


def vad_region(wave: np.ndarray, sample_rate: int, *, fraction: float = VAD_FRACTION) -> tuple[float, float]:
    """``(start, end)`` seconds of the speech found by an energy VAD.

    Speech = 10-ms frames above the :meth:`phonrec.vad.EnergyTrack.speech` threshold; the region
    runs from the first speech frame's start to the last one's end (pauses inside are not looked for).
    """
    speech = np.flatnonzero(energy_track(wave, sample_rate, hop_ms=10.0, win_ms=10.0).speech(fraction))
    if speech.size == 0:
        return 0.0, len(wave) / sample_rate
    hop = sample_rate // 100
    return speech[0] * hop / sample_rate, (speech[-1] + 1) * hop / sample_rate


def even_spread(phones: Sequence[str], wave: np.ndarray, sample_rate: int, silence: str = "sil") -> list[Segment]:
    """The phones in equal shares of the VAD's speech region, ``silence`` before and after."""
    start, end = vad_region(wave, sample_rate)
    cuts = np.linspace(start, end, len(phones) + 1)
    segs = [Segment(p, float(a), float(b)) for p, a, b in zip(phones, cuts[:-1], cuts[1:])]
    duration = len(wave) / sample_rate
    return (
        ([Segment(silence, 0.0, start)] if start > 0 else [])
        + segs
        + ([Segment(silence, end, duration)] if end < duration else [])
    )


# --- running it -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    """One reference utterance: its exact segments, phone string and audio."""

    utt: str
    segments: list[Segment]
    phones: list[str]
    wave: torch.Tensor  # (N,) float32
    duration: float
    speaker: str


def load_references(data_dir: str | Path, sample_rate: int = 16000, limit: int | None = None) -> list[Utterance]:
    """Utterances of a ``phonrec-synth`` data dir with their exact timings (``<wav>.seg``).

    Raises:
        ValueError: a missing ``.seg`` file, or one whose phones differ from ``phones``.
    """
    data = DataDir.load(data_dir)
    if data.phones is None:
        raise ValueError(f"{data_dir}: no `phones` file")
    out = []
    for utt in data.utts[:limit]:
        seg = data.wavs[utt].with_suffix(".seg")
        if not seg.is_file():
            raise ValueError(
                f"{data_dir}: utterance {utt}: no exact timings {seg} (a corpus made by phonrec-synth has them)"
            )
        segments = read_seg_file(seg)
        phones = [s.label for s in segments if s.label != "sil"]
        if phones != data.phones[utt]:
            raise ValueError(f"{seg}: its phones differ from {data_dir}/phones for utterance {utt}")
        wave = load_audio(data.wavs[utt], sample_rate)
        out.append(Utterance(utt, segments, phones, wave, wave.shape[0] / sample_rate, data.utt2spk[utt]))
    return out


Aligner = Callable[[Utterance, np.ndarray], list[Segment]]


def snapped(u: Utterance, segments: list[Segment]) -> list[Segment]:
    """``segments`` with their pause edges on the audio's energy transitions (``...+vad``)."""
    return snap_pause_edges(segments, energy_track(u.wave.numpy(), 16000), silence="sil")


#: ``...+spec``'s settings (phonrec.spectral defaults; :func:`spec_snapped` takes others)
SPEC_SETTINGS = {"span": SPAN, "max_shift_ms": PHONE_SNAP_MAX_SHIFT_MS, "cost_per_ms": SHIFT_COST_PER_MS}


def spec_snapped(u: Utterance, segments: list[Segment], settings: dict | None = None) -> list[Segment]:
    """:func:`snapped`, then the phone-phone edges on the spectral change (``...+vad+spec``)."""
    cfg = {**SPEC_SETTINGS, **(settings or {})}
    track = spectral_change(u.wave.numpy(), 16000, span=int(cfg["span"]))
    return snap_phone_edges(
        snapped(u, segments), track, silence="sil", max_shift_ms=cfg["max_shift_ms"], cost_per_ms=cfg["cost_per_ms"]
    )


def frame_aligners(tr: Transcriber, min_durations_ms: Sequence[float]) -> dict[str, Aligner]:
    """The frame-level model's options (module docstring), keyed by name."""
    ps, symbols = tr.phone_set, tr.phone_set.symbols
    sil = ps.silence_id
    if sil is None or ps.blank_id is not None:
        raise ValueError("--model must be a frame-level model with a silence symbol")
    clock, edge = FrameClock.of(tr), FrameClock.of(tr, edge=True)
    out: dict[str, Aligner] = {}
    for ms in min_durations_ms:
        frames = max(1, int(round(ms / tr.hop_ms)))

        def viterbi(u: Utterance, lp: np.ndarray, frames: int = frames) -> list[Span]:
            return align_frames(lp, ps.encode(u.phones), frames, optional_silence=sil, silence_between=True)

        def viterbi_fb(u: Utterance, lp: np.ndarray, frames: int = frames) -> list[Segment]:
            spans = viterbi(u, lp, frames)
            phones = [(s.start, s.end) for s in spans if s.phone != sil]
            refined = iter(refine_phone_edges(phones, lp, ps.encode(u.phones), frames, sil))
            timed = [(s.start, s.end) if s.phone == sil else next(refined) for s in spans]
            return [Segment(symbols[s.phone], clock.boundary(a), clock.boundary(b)) for s, (a, b) in zip(spans, timed)]

        name = f"viterbi-min{ms:g}"
        out[name] = lambda u, lp, f=viterbi: spans_to_timed(f(u, lp), symbols, clock)
        out[f"{name}+fb"] = viterbi_fb
        out[f"{name}+fb+vad"] = lambda u, lp, f=viterbi_fb: snapped(u, f(u, lp))
        out[f"{name}@edge"] = lambda u, lp, f=viterbi: spans_to_timed(f(u, lp), symbols, edge)
        out[f"{name}+vad"] = lambda u, lp, f=viterbi: snapped(u, spans_to_timed(f(u, lp), symbols, clock))
        out[f"{name}+vad+spec"] = lambda u, lp, f=viterbi: spec_snapped(u, spans_to_timed(f(u, lp), symbols, clock))
        out[f"{name}+xing"] = lambda u, lp, f=viterbi: spans_with_crossings(f(u, lp), lp, symbols, clock)
        out[f"fb-min{ms:g}"] = lambda u, lp, n=frames: expected_segments(
            lp, ps.encode(u.phones), n, symbols, sil, clock
        )
    return out


def ctc_aligners(tr: Transcriber) -> dict[str, Aligner]:
    """The CTC model's options (module docstring), keyed by name."""
    ps, symbols = tr.phone_set, tr.phone_set.symbols
    if ps.blank_id is None or ps.silence_id is None:
        raise ValueError("--ctc-model must be a CTC model with a silence symbol")
    blank, sil = ps.blank_id, ps.silence_id
    clock, edge = FrameClock.of(tr), FrameClock.of(tr, edge=True)

    def widened(u: Utterance, lp: np.ndarray) -> list[Span]:
        return ctc_widened_spans(lp, ps.encode(u.phones), blank, sil, tr.hop_ms)

    def onset(u: Utterance, lp: np.ndarray) -> list[Span]:
        return ctc_onset_spans(lp, ps.encode(u.phones), blank, sil, tr.hop_ms)

    return {
        "ctc-widened": lambda u, lp: spans_to_timed(widened(u, lp), symbols, clock),
        "ctc-widened@edge": lambda u, lp: spans_to_timed(widened(u, lp), symbols, edge),
        "ctc-widened+vad": lambda u, lp: snapped(u, spans_to_timed(widened(u, lp), symbols, clock)),
        "ctc-widened+vad+spec": lambda u, lp: spec_snapped(u, spans_to_timed(widened(u, lp), symbols, clock)),
        "ctc-onset": lambda u, lp: spans_to_timed(onset(u, lp), symbols, clock),
        "ctc-onset@edge": lambda u, lp: spans_to_timed(onset(u, lp), symbols, edge),
    }


def run_aligners(
    utts: Sequence[Utterance], aligners: dict[str, Aligner], tr: Transcriber | None, *, batch_size: int = 16
) -> tuple[dict[str, list[Boundary]], dict[str, list[str]], dict[str, int]]:
    """Every option on every utterance: the boundaries per option, the utterances it failed on, and
    its :func:`spurious_pauses` summed over the utterances. The model reads the utterances as
    ``phonrec-decode`` reads a data directory (:meth:`Transcriber.speaker_batches`)."""
    bounds: dict[str, list[Boundary]] = {name: [] for name in aligners}
    failed: dict[str, list[str]] = {name: [] for name in aligners}
    spurious: dict[str, int] = {name: 0 for name in aligners}
    by_id = {u.utt: u for u in utts}
    if tr is None:
        batches = [([(u.utt, u.wave) for u in utts[i : i + batch_size]], None) for i in range(0, len(utts), batch_size)]
    else:
        batches = tr.speaker_batches(list(by_id), {u.utt: u.speaker for u in utts}, lambda k: by_id[k].wave, batch_size)
    for items, stats in batches:
        batch = [by_id[k] for k, _ in items]
        waves = [u.wave for u in batch]
        lps = tr.log_probs_batch(waves, speaker_stats=stats) if tr is not None else [None] * len(batch)
        for u, lp in zip(batch, lps):
            arr = None if lp is None else lp.numpy()
            for name, align in aligners.items():
                try:
                    hyp = align(u, arr)
                except ValueError as e:
                    failed[name].append(f"{u.utt}: {e}")
                    continue
                bounds[name] += boundary_errors(u.segments, hyp, duration=u.duration, source=u.utt)
                spurious[name] += spurious_pauses(u.segments, hyp)
    return bounds, failed, spurious


def measure(
    data_dir: str | Path,
    *,
    model_dir: str | Path | None = None,
    ctc_model_dir: str | Path | None = None,
    min_durations_ms: Sequence[float] = (10, 20, 30),
    limit: int | None = None,
) -> dict[str, dict]:
    """Boundary accuracy of every option on one data dir: ``{option: {"phone"|"sil"|"all": summary,
    "utterances": n, "failed": [...]}}`` (:func:`summarise` rows)."""
    utts = load_references(data_dir, limit=limit)
    results: dict[str, dict] = {}

    def add(bounds: dict[str, list[Boundary]], failed: dict[str, list[str]], spurious: dict[str, int]) -> None:
        for name, b in bounds.items():
            n = len(utts) - len(failed[name])
            results[name] = {**summarise(b), "utterances": n, "failed": failed[name], "spurious_pauses": spurious[name]}

    add(*run_aligners(utts, {"even-vad": lambda u, _: even_spread(u.phones, u.wave.numpy(), 16000)}, None))
    if model_dir is not None:
        tr = Transcriber.from_pretrained(model_dir)
        add(*run_aligners(utts, frame_aligners(tr, min_durations_ms), tr))
    if ctc_model_dir is not None:
        tr = Transcriber.from_pretrained(ctc_model_dir)
        add(*run_aligners(utts, ctc_aligners(tr), tr))
    return results


def markdown_table(results: dict[str, dict[str, dict]], kind: str = "all") -> str:
    """``results[split][option]`` -> one markdown table of the ``kind`` rows."""
    lines = [
        "| split | option | boundaries | <= 10 ms % | <= 20 ms % | <= 50 ms % | mean abs ms | mean signed ms "
        "| spurious pauses |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for split, options in results.items():
        for name, r in options.items():
            row = r[kind]
            if not row["n"]:
                continue
            lines.append(
                f"| {split} | {name} | {row['n']} | {row['within_10ms']:.1f} | {row['within_20ms']:.1f} | "
                f"{row['within_50ms']:.1f} | {row['mean_abs_ms']:.1f} | {row['mean_signed_ms']:+.1f} | "
                f"{r.get('spurious_pauses', '-')} |"
            )
    return "\n".join(lines)


def calibrate(model_dir: str | Path, data_dir: str | Path, *, limit: int | None = None) -> tuple[float, int]:
    """The ``boundary_shift_ms`` that centres the model's forced-alignment boundaries on ``data_dir``'s
    exact timings: minus the median signed error of the option ``phonrec-align`` runs (CTC:
    ``ctc-widened``; frame-level: Viterbi at the model's default minimum duration), measured
    without a shift. Returns ``(shift_ms, boundaries counted)``."""
    tr = Transcriber.from_pretrained(model_dir)
    tr.decoding = replace(tr.decoding, boundary_shift_ms=0.0)
    if tr.phone_set.blank_id is not None:
        option, aligners = "ctc-widened", ctc_aligners(tr)
    else:
        ms = tr.decoder_config("greedy").min_duration * tr.hop_ms
        option, aligners = f"viterbi-min{ms:g}", frame_aligners(tr, [ms])
    bounds, _, _ = run_aligners(load_references(data_dir, limit=limit), {option: aligners[option]}, tr)
    errors = [b.error_ms for b in bounds[option]]
    if not errors:
        raise ValueError(f"{data_dir}: no boundary to calibrate on")
    return -float(np.median(errors)), len(errors)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="frame-level model dir")
    parser.add_argument("--ctc-model", help="CTC model dir")
    parser.add_argument("--data", nargs="+", required=True, help="phonrec-synth data dirs (split = dir name)")
    parser.add_argument("--min-durations-ms", type=float, nargs="+", default=[10, 20, 30])
    parser.add_argument("--limit", type=int, help="first N utterances of each dir")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument(
        "--calibrate",
        metavar="DATA_DIR",
        help="first set each given model's boundary_shift_ms (decoding.yaml) from this data dir (calibrate())",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    calibrated = {}
    for model in (m for m in (args.model, args.ctc_model) if m is not None and args.calibrate):
        shift, n = calibrate(model, args.calibrate, limit=args.limit)
        defaults = set_boundary_shift(model, shift)
        calibrated[model] = {"boundary_shift_ms": defaults.boundary_shift_ms, "boundaries": n, "data": args.calibrate}
        print(
            f"{model}: boundary_shift_ms {defaults.boundary_shift_ms:+.1f} "
            f"(median of {n} boundaries of {args.calibrate})"
        )
    results = {}
    for d in args.data:
        results[Path(d).name] = measure(
            d,
            model_dir=args.model,
            ctc_model_dir=args.ctc_model,
            min_durations_ms=args.min_durations_ms,
            limit=args.limit,
        )
    seconds = time.perf_counter() - t0
    for kind in KINDS:
        print(f"\n### {kind} boundaries\n\n{markdown_table(results, kind)}")
    print(f"\n{seconds:.1f} s")
    if args.json:
        doc = {
            "command": " ".join(["bench/boundaries.py", *(argv if argv is not None else sys.argv[1:])]),
            "model": args.model,
            "ctc_model": args.ctc_model,
            "tolerances_ms": list(TOLERANCES_MS),
            "vad_fraction": VAD_FRACTION,
            "calibrated": calibrated,
            "seconds": round(seconds, 1),
            "results": results,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
