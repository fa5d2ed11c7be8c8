"""phonrec.vad: frame energies, their transitions, and pause edges snapped to them."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from phonrec.data.segments import Segment
from phonrec.forced_align import Alignment, PhoneInterval, WordInterval, snap_alignment
from phonrec.vad import EnergyTrack, energy_track, file_energy_track, snap_pause_edges

SR = 16000


def burst_wave(spans_s: list[tuple[float, float]], duration_s: float, seed: int = 0) -> np.ndarray:
    """Faint noise with loud noise bursts over ``spans_s`` (seconds)."""
    rng = np.random.default_rng(seed)
    x = 1e-3 * rng.standard_normal(int(duration_s * SR))
    for a, b in spans_s:
        x[int(a * SR) : int(b * SR)] += 0.3 * rng.standard_normal(int(b * SR) - int(a * SR))
    return x.astype(np.float32)


def test_frame_energies_match_a_direct_computation_and_blocks_give_the_same_track():
    x = burst_wave([(0.2, 0.5)], 1.0)
    track = energy_track(x, SR, hop_ms=5.0, win_ms=10.0)
    hop, win = 80, 160
    n = (len(x) - win) // hop + 1
    direct = [10 * np.log10(np.mean(x[i * hop : i * hop + win].astype(np.float64) ** 2) + 1e-12) for i in range(n)]
    np.testing.assert_allclose(track.db, direct, rtol=1e-9)
    blocks = [x[i : i + 1234] for i in range(0, len(x), 1234)]  # cuts that fall inside frames
    np.testing.assert_allclose(energy_track(iter(blocks), SR).db, track.db, rtol=1e-9)


def test_transitions_are_found_within_one_hop_of_the_signal_edges():
    onsets, offsets = energy_track(burst_wave([(0.2, 0.5), (0.8, 1.1)], 1.4), SR).transitions()
    np.testing.assert_allclose(onsets, [0.2, 0.8], atol=0.005)
    np.testing.assert_allclose(offsets, [0.5, 1.1], atol=0.005)


def test_file_track_reads_the_file_at_its_own_rate_and_averages_channels(tmp_path):
    x = burst_wave([(0.2, 0.5)], 1.0)
    sf.write(tmp_path / "a.wav", np.stack([x, x], axis=1), SR, subtype="FLOAT")
    track = file_energy_track(tmp_path / "a.wav")
    np.testing.assert_allclose(track.db, energy_track(x, SR).db, rtol=1e-6)


def test_pause_edges_move_onto_transitions_and_speech_edges_stay():
    track = energy_track(burst_wave([(0.2, 0.5), (0.8, 1.1)], 1.4), SR)
    segs = [
        Segment("sil", 0.0, 0.23),  # onset 30 ms late
        Segment("a", 0.23, 0.35),
        Segment("b", 0.35, 0.47),  # offset 30 ms early
        Segment("sil", 0.47, 0.9),  # onset 100 ms late: beyond 50 ms, stays
        Segment("c", 0.9, 1.1),
        Segment("sil", 1.1, 1.4),
    ]
    out = snap_pause_edges(segs, track, silence="sil", max_shift_ms=50)
    assert [s.label for s in out] == [s.label for s in segs]
    assert abs(out[0].end - 0.2) <= 0.005 and out[1].start == out[0].end
    assert out[1].end == 0.35 and out[2].start == 0.35  # between two phones: untouched
    assert abs(out[2].end - 0.5) <= 0.005 and out[3].start == out[2].end
    assert out[3].end == 0.9 and out[4].start == 0.9
    assert all(a.end == b.start for a, b in zip(out, out[1:]))


def test_a_snap_never_empties_a_neighbour_and_zero_reach_changes_nothing():
    track = energy_track(burst_wave([(0.2, 0.5)], 1.0), SR)
    segs = [Segment("sil", 0.0, 0.16), Segment("a", 0.16, 0.185), Segment("sil", 0.185, 1.0)]
    out = snap_pause_edges(segs, track, silence="sil", max_shift_ms=50)
    assert out[1].end - out[1].start >= 0.01 - 1e-9  # the onset at 0.2 would have emptied "a"
    assert snap_pause_edges(segs, track, silence="sil", max_shift_ms=0) == segs
    with pytest.raises(ValueError, match="max_shift_ms"):
        snap_pause_edges(segs, track, max_shift_ms=-1)


def test_silent_or_empty_tracks_leave_the_segments_alone():
    segs = [Segment("", 0.0, 0.3), Segment("a", 0.3, 0.6)]
    assert snap_pause_edges(segs, EnergyTrack(np.zeros(0))) == segs
    assert snap_pause_edges(segs, energy_track(np.zeros(SR, dtype=np.float32), SR)) == segs


def test_snap_alignment_moves_the_word_tier_with_its_phones():
    track = energy_track(burst_wave([(0.2, 0.5), (0.8, 1.1)], 1.4), SR)
    phones = [
        PhoneInterval("", 0.0, 0.23, None, None),
        PhoneInterval("a", 0.23, 0.35, 0.9, 1),
        PhoneInterval("b", 0.35, 0.47, 0.8, 1),
        PhoneInterval("", 0.47, 0.83, None, None),
        PhoneInterval("c", 0.83, 1.12, 0.7, 3),
        PhoneInterval("", 1.12, 1.4, None, None),
    ]
    words = [
        WordInterval("", 0.0, 0.23),
        WordInterval("ab", 0.23, 0.47),
        WordInterval("", 0.47, 0.83),
        WordInterval("c", 0.83, 1.12),
        WordInterval("", 1.12, 1.4),
    ]
    a = snap_alignment(Alignment("x", 1.4, words, phones, [("a", "b"), ("c",)], -1.0), track)
    assert [p.score for p in a.phones] == [p.score for p in phones]
    for w in a.words:
        inside = [p for p in a.phones if p.start >= w.start - 1e-9 and p.end <= w.end + 1e-9]
        assert inside and inside[0].start == w.start and inside[-1].end == w.end
    assert all(x.end == y.start for x, y in zip(a.words, a.words[1:])) and a.words[-1].end == 1.4
    np.testing.assert_allclose([w.start for w in a.words if w.word], [0.2, 0.8], atol=0.005)
    np.testing.assert_allclose([w.end for w in a.words if w.word], [0.5, 1.1], atol=0.005)


def test_a_pause_inside_speech_is_dropped_and_its_neighbours_meet_at_its_middle():
    track = energy_track(burst_wave([(0.2, 1.0)], 1.2), SR)
    segs = [Segment("sil", 0.0, 0.2), Segment("a", 0.2, 0.5), Segment("sil", 0.5, 0.6), Segment("b", 0.6, 1.0)]
    segs.append(Segment("sil", 1.0, 1.2))
    out = snap_pause_edges(segs, track, silence="sil")
    assert [s.label for s in out] == ["sil", "a", "b", "sil"]
    assert out[1].end == out[2].start == pytest.approx(0.55)


def test_snap_alignment_drops_a_silence_word_the_signal_fills():
    track = energy_track(burst_wave([(0.2, 1.0)], 1.2), SR)
    phones = [
        PhoneInterval("", 0.0, 0.2, None, None),
        PhoneInterval("a", 0.2, 0.5, 0.9, 1),
        PhoneInterval("", 0.5, 0.6, None, None),
        PhoneInterval("b", 0.6, 1.0, 0.8, 3),
        PhoneInterval("", 1.0, 1.2, None, None),
    ]
    words = [WordInterval(w, a, b) for w, a, b in [("", 0, 0.2), ("a", 0.2, 0.5), ("", 0.5, 0.6), ("b", 0.6, 1.0)]]
    words.append(WordInterval("", 1.0, 1.2))
    a = snap_alignment(Alignment("x", 1.2, words, phones, [("a",), ("b",)], -1.0), track)
    assert [w.word for w in a.words] == ["", "a", "b", ""]
    assert [(p.phone, p.word) for p in a.phones] == [("", None), ("a", 1), ("b", 2), ("", None)]
    assert a.words[1].end == a.words[2].start == pytest.approx(0.55)
