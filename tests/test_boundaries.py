"""bench/boundaries.py's boundary metric, and phonrec's frames -> seconds convention pinned against
flite's exact phone timings.

The metric is checked on hand-made segmentations whose errors are known by construction; the
convention by turning exact timings into frame labels the way the training data is made
(:func:`phonrec.data.segments.segments_to_frame_labels`) and back through
:func:`phonrec.spans.frames_to_seconds`: every boundary must come back within half a frame.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import make_model_dir

from phonrec.data.segments import Segment, segments_to_frame_labels
from phonrec.features import DEFAULT_WIN_MS, FeatureConfig
from phonrec.phones import CMU_PHONES
from phonrec.spans import DEFAULT_WIN_MS as SPANS_WIN_MS
from phonrec.spans import Span, boundary_offset_ms, frames_to_seconds, runs_to_spans
from phonrec.transcribe import Transcriber

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_boundaries", ROOT / "bench" / "boundaries.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


B = _bench()

# sil | a b | sil | c | sil : one phone boundary (a|b), four speech/silence boundaries
REF = [
    Segment("sil", 0.0, 0.2),
    Segment("a", 0.2, 0.3),
    Segment("b", 0.3, 0.45),
    Segment("sil", 0.45, 0.6),
    Segment("c", 0.6, 0.7),
    Segment("sil", 0.7, 1.0),
]


def shifted(segments: list[Segment], dt: float, duration: float = 1.0) -> list[Segment]:
    """Every boundary strictly inside (0, duration) moved by ``dt``."""

    def move(t: float) -> float:
        return t if t <= 0.0 or t >= duration else t + dt

    return [Segment(s.label, move(s.start), move(s.end)) for s in segments]


def test_exact_hypothesis_has_no_error_and_kinds_are_counted():
    bounds = B.boundary_errors(REF, REF, duration=1.0)
    assert [(b.kind, b.ref) for b in bounds] == [
        ("sil", 0.2),
        ("phone", 0.3),
        ("sil", 0.45),
        ("sil", 0.6),
        ("sil", 0.7),
    ]
    s = B.summarise(bounds)
    assert (s["phone"]["n"], s["sil"]["n"], s["all"]["n"]) == (1, 4, 5)
    assert s["all"]["within_10ms"] == 100.0 and s["all"]["mean_abs_ms"] == 0.0 and s["all"]["mean_signed_ms"] == 0.0


def test_shift_of_15_ms_is_outside_10_inside_20():
    late = B.summarise(B.boundary_errors(REF, shifted(REF, 0.015), duration=1.0))["all"]
    assert (late["within_10ms"], late["within_20ms"], late["within_50ms"]) == (0.0, 100.0, 100.0)
    assert late["mean_abs_ms"] == pytest.approx(15.0) and late["mean_signed_ms"] == pytest.approx(15.0)
    early = B.summarise(B.boundary_errors(REF, shifted(REF, -0.015), duration=1.0))["all"]
    assert early["mean_signed_ms"] == pytest.approx(-15.0) and early["within_20ms"] == 100.0


def test_mixed_errors_give_the_hand_counted_shares():
    hyp = [
        Segment("sil", 0.0, 0.205),  # onset +5 ms
        Segment("a", 0.205, 0.33),  # a|b +30 ms
        Segment("b", 0.33, 0.45),  # offset exact
        Segment("sil", 0.45, 0.66),  # onset +60 ms
        Segment("c", 0.66, 0.69),  # offset -10 ms (exactly 10: within)
        Segment("sil", 0.69, 1.0),
    ]
    bounds = B.boundary_errors(REF, hyp, duration=1.0)
    assert [round(b.error_ms, 6) for b in bounds] == [5.0, 30.0, 0.0, 60.0, -10.0]
    s = B.summarise(bounds)
    assert (s["all"]["within_10ms"], s["all"]["within_20ms"], s["all"]["within_50ms"]) == (60.0, 60.0, 80.0)
    assert s["phone"]["within_50ms"] == 100.0 and s["phone"]["within_20ms"] == 0.0
    assert s["all"]["mean_signed_ms"] == pytest.approx(17.0) and s["all"]["mean_abs_ms"] == pytest.approx(21.0)


def test_missing_extra_or_wrong_phone_is_an_error():
    missing = [s for s in REF if s.label != "b"]
    extra = REF[:3] + [Segment("d", 0.45, 0.5)] + REF[3:]
    wrong = [Segment("x" if s.label == "c" else s.label, s.start, s.end) for s in REF]
    for hyp, where in ((missing, "position 1"), (extra, "position 2"), (wrong, "position 2")):
        with pytest.raises(ValueError, match=f"utt1: hypothesis phones differ from the reference at {where}"):
            B.boundary_errors(REF, hyp, duration=1.0, source="utt1")


def test_edges_of_the_audio_are_not_interior():
    ref = [Segment("a", 0.0, 0.1), Segment("b", 0.1, 0.25)]  # speech from 0 s to the audio's end
    bounds = B.boundary_errors(ref, ref, duration=0.25)
    assert [(b.kind, b.ref) for b in bounds] == [("phone", 0.1)]
    # ... but an offset before the audio's end is (the reference need not list the final silence)
    assert [(b.kind, b.ref) for b in B.boundary_errors(ref, ref, duration=0.4)] == [("phone", 0.1), ("sil", 0.25)]


def test_hypothesis_silences_are_matched_to_the_reference():
    # the aligner inserts a silence inside a|b: the boundary is the middle of it
    hyp = REF[:1] + [Segment("a", 0.2, 0.29), Segment("sil", 0.29, 0.33), Segment("b", 0.33, 0.45)] + REF[3:]
    b = B.boundary_errors(REF, hyp, duration=1.0)[1]
    assert (b.kind, round(b.error_ms, 6)) == ("phone", 10.0)
    # the aligner skips the pause b|c: its one boundary is compared with both the offset and the onset
    hyp = REF[:2] + [Segment("b", 0.3, 0.52), Segment("c", 0.52, 0.7)] + REF[5:]
    errs = [round(x.error_ms, 6) for x in B.boundary_errors(REF, hyp, duration=1.0)]
    assert errs == [0.0, 0.0, 70.0, -80.0, 0.0]


def test_default_window_is_the_features_window():
    assert SPANS_WIN_MS == DEFAULT_WIN_MS == FeatureConfig().win_ms


def test_boundary_offset_is_the_midpoint_between_label_centres():
    # 10-ms frames: centres at 12.5 ms + 10 t, so boundary t at 10 t + 7.5 ms
    assert boundary_offset_ms(1) == 7.5 and frames_to_seconds(4) == pytest.approx(0.0475)
    # stacked frames take the label of feature frame k t + k // 2 (phonrec.train.subsample_labels)
    for k in (2, 3, 4):
        centre = [(t * k + k // 2) * 10 + 12.5 for t in (0, 1)]
        assert boundary_offset_ms(k) == pytest.approx((centre[0] + centre[1]) / 2 - k * 10)
    assert frames_to_seconds(2, 30.0) == pytest.approx(0.0675)
    assert frames_to_seconds(0) == 0.0 and frames_to_seconds(3, offset_ms=0.0) == pytest.approx(0.03)


def label_runs(labels: list[str]) -> list[tuple[str, Span]]:
    """String frame labels -> (label, span) per run, through :func:`runs_to_spans`."""
    ids = {lab: k for k, lab in enumerate(dict.fromkeys(labels))}
    names = list(ids)
    return [(names[s.phone], s) for s in runs_to_spans([ids[lab] for lab in labels])]


def quantised_round_trip(segments: list[Segment], duration: float, *, offset_ms: float | None = None) -> list[Segment]:
    """Exact segments -> 10-ms frame labels (centre rule, as the corpora's ``alignments``) -> runs ->
    seconds through :func:`frames_to_seconds`; ``None`` when two equal phones touch (one run)."""
    T = 1 + int((duration * 1000 - 25) // 10)
    runs = label_runs(segments_to_frame_labels(segments, T))
    out = [timed(lab, s, offset_ms) for lab, s in runs]
    return out if [s.label for s in out] == [s.label for s in segments] else None


def timed(label: str, span: Span, offset_ms: float | None) -> Segment:
    return Segment(
        label, frames_to_seconds(span.start, offset_ms=offset_ms), frames_to_seconds(span.end, offset_ms=offset_ms)
    )


def test_frame_labels_come_back_within_half_a_frame_of_random_timings():
    rng = np.random.default_rng(0)
    errors, old = [], []
    for _ in range(50):
        cuts = np.cumsum(rng.uniform(0.03, 0.15, size=12))
        labels = ["sil"] + [f"p{i % 3}" for i in range(10)] + ["sil"]
        segs = [Segment(lab, float(a), float(b)) for lab, a, b in zip(labels, np.r_[0.0, cuts[:-1]], cuts)]
        hyp = quantised_round_trip(segs, float(cuts[-1]))
        assert hyp is not None
        errors += [b.error_ms for b in B.boundary_errors(segs, hyp, duration=float(cuts[-1]))]
        old += [
            b.error_ms
            for b in B.boundary_errors(
                segs, quantised_round_trip(segs, float(cuts[-1]), offset_ms=0.0), duration=float(cuts[-1])
            )
        ]
    assert len(errors) == 50 * 11 and max(abs(e) for e in errors) <= 5.0 + 1e-6
    assert abs(np.mean(errors)) < 1.0  # no offset left
    assert np.mean(old) == pytest.approx(-7.5, abs=1.0)  # frame * hop alone is 7.5 ms early


# --- on a flite corpus ------------------------------------------------------------------------

needs_flite = pytest.mark.skipif(
    shutil.which("flite") is None, reason="flite is not installed (Debian: apt-get install flite)"
)

SENTENCES = ("she had your dark suit in greasy wash water all year", "the birch canoe slid on the smooth planks")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from phonrec.data import synth as S

    out = tmp_path_factory.mktemp("bounds") / "corpus"
    text = out.parent / "text.txt"
    text.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    S.build_corpus(out, S.SynthConfig(num_utts=8, seed=1), text_path=text, jobs=1, progress=False)
    return out


@needs_flite
def test_flite_alignments_converted_by_frames_to_seconds_match_flite_timings(corpus):
    """The corpus's own frame labels, as a perfect aligner would output them, are within half a
    frame of flite's printed times, with no mean offset: this pins the frames -> seconds
    convention (and the old ``frame * hop`` one is 7.5 ms early)."""
    from phonrec.data.datadir import DataDir
    from phonrec.data.synth import read_seg_file

    new, old, used = [], [], 0
    for split in ("train", "dev", "test"):
        data = DataDir.load(corpus / split)
        for utt in data.utts:
            exact = read_seg_file(data.wavs[utt].with_suffix(".seg"))
            runs = label_runs(data.alignments[utt])
            if [lab for lab, _ in runs if lab != "sil"] != data.phones[utt]:
                continue  # two equal phones touch: one run
            used += 1
            for offset, out in ((None, new), (0.0, old)):
                hyp = [timed(lab, s, offset) for lab, s in runs]
                duration = exact[-1].end
                out += [b.error_ms for b in B.boundary_errors(exact, hyp, duration=duration, source=utt)]
    assert used >= 4, used
    assert max(abs(e) for e in new) <= 5.0 + 1e-3 and abs(np.mean(new)) < 1.5
    assert np.mean(old) == pytest.approx(-7.5, abs=1.5)


@needs_flite
def test_measure_runs_every_option_on_a_flite_corpus(corpus, tmp_path):
    frame_model = make_model_dir(tmp_path / "frame", phones=("sil",) + CMU_PHONES)
    ctc_model = make_model_dir(tmp_path / "ctc", phones=("sil",) + CMU_PHONES, ctc=True)
    refs = B.load_references(corpus / "train")
    assert refs
    expected = sum(len(B.boundary_errors(u.segments, u.segments, duration=u.duration)) for u in refs)
    results = B.measure(corpus / "train", model_dir=frame_model, ctc_model_dir=ctc_model, min_durations_ms=(10, 30))
    names = {"even-vad", "ctc-widened", "ctc-widened@edge", "ctc-widened+vad", "ctc-widened+vad+spec"}
    names |= {"ctc-onset", "ctc-onset@edge"}
    suffixes = (("viterbi", ""), ("viterbi", "@edge"), ("viterbi", "+xing"), ("viterbi", "+vad"), ("fb", ""))
    suffixes += (("viterbi", "+fb"), ("viterbi", "+fb+vad"))
    names |= {f"{v}-min{d}{s}" for d in (10, 30) for v, s in (*suffixes, ("viterbi", "+vad+spec"))}
    assert set(results) == names
    for name, r in results.items():
        assert r["failed"] == [] and r["utterances"] == len(refs), name
        assert r["all"]["n"] == r["phone"]["n"] + r["sil"]["n"] == expected, name
        assert 0 <= r["all"]["within_10ms"] <= r["all"]["within_20ms"] <= r["all"]["within_50ms"] <= 100, name
    # the same Viterbi path: @edge times are 7.5 ms earlier, except a boundary at frame 0 (0 s in both)
    for d in (10, 30):
        a, e = results[f"viterbi-min{d}"]["all"], results[f"viterbi-min{d}@edge"]["all"]
        shift = a["mean_signed_ms"] - e["mean_signed_ms"]
        assert 7.5 * (1 - len(refs) / expected) - 0.05 <= shift <= 7.5 + 0.05, (shift, name)


@needs_flite
def test_calibration_is_the_median_error_and_measure_applies_the_recorded_shift(corpus, tmp_path):
    """``calibrate`` returns minus the median signed error of ctc-widened (measured without any
    recorded shift); once a shift is recorded (``set_boundary_shift``), ``measure`` reports
    ctc-widened moved by it and @edge unchanged."""
    from phonrec.model_dir import set_boundary_shift

    ctc_model = make_model_dir(tmp_path / "ctc", phones=("sil",) + CMU_PHONES, ctc=True)
    tr = Transcriber.from_pretrained(ctc_model)
    refs = B.load_references(corpus / "train")
    bounds, _, _ = B.run_aligners(refs, {"w": B.ctc_aligners(tr)["ctc-widened"]}, tr)
    shift, n = B.calibrate(ctc_model, corpus / "train")
    assert (shift, n) == (pytest.approx(-float(np.median([b.error_ms for b in bounds["w"]]))), len(bounds["w"]))
    before = B.measure(corpus / "train", ctc_model_dir=ctc_model)
    set_boundary_shift(ctc_model, 20.0)  # 20 ms later, but a boundary at 0 s stays there
    after = B.measure(corpus / "train", ctc_model_dir=ctc_model)
    assert after["ctc-widened@edge"] == before["ctc-widened@edge"]
    moved = after["ctc-widened"]["all"]["mean_signed_ms"] - before["ctc-widened"]["all"]["mean_signed_ms"]
    assert 15.0 <= moved <= 20.0 + 0.01
    assert B.calibrate(ctc_model, corpus / "train")[0] == pytest.approx(shift)


def test_expected_boundaries_of_sharp_posteriors_are_the_viterbi_cuts():
    from phonrec.align import align_frames, expected_boundaries

    # K = 3 (0 = sil): frames 0-1 sil, 2-5 phone 1, 6-8 phone 2, 9 sil; near-certain posteriors
    truth = [0, 0, 1, 1, 1, 1, 2, 2, 2, 0]
    lp = np.full((10, 3), np.log(1e-6), dtype=np.float32)
    lp[np.arange(10), truth] = np.log(1 - 2e-6)
    starts, ends = expected_boundaries(lp, [1, 2], 1, 0)
    assert np.allclose(starts, [2, 6], atol=1e-3) and np.allclose(ends, [6, 9], atol=1e-3)
    spans = align_frames(lp, [1, 2], 1, optional_silence=0, silence_between=True)
    assert [s for s in spans if s.phone] == [Span(1, 2, 6), Span(2, 6, 9)]


def test_crossing_point_is_interpolated_between_frame_centres():
    # two spans a = phone 0 on frames 0-2, b = phone 1 on 3-5; d = lp_a - lp_b = +3, +1, -1, -3 at frames 1..4
    lp = np.zeros((6, 2), dtype=np.float32)
    d = np.array([5.0, 3.0, 1.0, -1.0, -3.0, -5.0])
    lp[:, 0], lp[:, 1] = d / 2, -d / 2
    clock = B.FrameClock(hop_ms=10.0, centre0_ms=12.5, offset_ms=7.5)
    (cut,) = B.crossing_times([Span(0, 0, 3), Span(1, 3, 6)], lp, clock)
    assert cut == pytest.approx((2.5 * 10 + 12.5) / 1000)  # half way between the centres of frames 2 and 3
    d2 = np.array([5.0, 3.0, 3.0, -1.0, -3.0, -5.0])  # zero a quarter of a frame before frame 3's centre
    lp[:, 0], lp[:, 1] = d2 / 2, -d2 / 2
    (cut,) = B.crossing_times([Span(0, 0, 3), Span(1, 3, 6)], lp, clock)
    assert cut == pytest.approx((2.75 * 10 + 12.5) / 1000)


def test_spurious_pauses_counts_only_inner_pauses_the_reference_lacks():
    ref = [Segment("sil", 0, 0.1), Segment("a", 0.1, 0.3), Segment("b", 0.3, 0.5), Segment("sil", 0.5, 0.7)]
    ref += [Segment("c", 0.7, 0.9)]
    hyp = [Segment("sil", 0, 0.12), Segment("a", 0.12, 0.28), Segment("sil", 0.28, 0.32), Segment("b", 0.32, 0.5)]
    hyp += [Segment("sil", 0.5, 0.68), Segment("c", 0.68, 0.9)]
    assert B.spurious_pauses(ref, hyp) == 1  # the one between a and b; the edges and the real pause don't count
    assert B.spurious_pauses(ref, ref) == 0
