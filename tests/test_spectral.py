"""phonrec.spectral: spectral change, and the edges between phones moved onto it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import lfilter

from phonrec.data.segments import Segment
from phonrec.forced_align import Alignment, PhoneInterval, WordInterval, snap_alignment
from phonrec.spectral import (
    MIN_PHONE_MS,
    ChangeTrack,
    change_of_frames,
    file_spectral_change,
    snap_phone_edges,
    spectral_change,
)

SR = 16000


def tones(parts: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """Consecutive stretches of noise, each through its own resonance ``[(hz, seconds), ...]``
    (a two-pole filter, 200 Hz wide, like a formant), the noise itself continuous: the spectrum
    changes exactly where one stretch ends, with no click."""
    rng = np.random.default_rng(seed)
    r = np.exp(-np.pi * 200 / SR)
    state = np.zeros(2)  # the filter's memory, carried from one stretch into the next
    pieces = []
    for hz, seconds in parts:
        a = [1.0, -2 * r * np.cos(2 * np.pi * hz / SR), r * r]
        y, state = lfilter([1.0], a, rng.standard_normal(int(seconds * SR)), zi=state)
        pieces.append(y)
    out = np.concatenate(pieces)
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def test_change_matches_a_direct_computation():
    rng = np.random.default_rng(1)
    feats = rng.standard_normal((37, 5))
    span = 4
    direct = np.zeros(37)
    for i in range(span, 37 - span + 1):
        direct[i] = np.sqrt(np.sum((feats[i - span : i].mean(0) - feats[i : i + span].mean(0)) ** 2))
    np.testing.assert_allclose(change_of_frames(feats, span), direct, rtol=1e-12)
    assert not change_of_frames(feats[:7], span).any()  # too short for one full window pair
    with pytest.raises(ValueError, match="span"):
        change_of_frames(feats, 0)


def test_the_change_peaks_where_one_tone_gives_way_to_another():
    track = spectral_change(tones([(500, 0.3), (2000, 0.3), (900, 0.3)]), SR)
    times, values = track.times(), track.values
    first = times[np.argmax(np.where(times < 0.45, values, 0))]
    second = times[np.argmax(np.where(times > 0.45, values, 0))]
    assert first == pytest.approx(0.3, abs=0.0075) and second == pytest.approx(0.6, abs=0.0075)  # 1.5 hops


def test_a_file_read_in_blocks_gives_the_whole_waves_track(tmp_path: Path):
    left = tones([(500, 0.4), (2000, 0.5), (700, 0.6)])
    right = tones([(300, 0.7), (1200, 0.8)], seed=2)[: left.size]
    path = tmp_path / "a.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    whole = spectral_change((left + right) / 2, SR)
    blocked = file_spectral_change(path, block_seconds=0.1)  # many blocks, cuts inside frames
    assert blocked.values.shape == whole.values.shape
    np.testing.assert_allclose(blocked.values, whole.values, rtol=1e-4, atol=1e-4)


def test_a_44_1_khz_file_has_its_change_where_a_16_khz_copy_has_it(tmp_path: Path):
    import torchaudio.functional as AF

    wave = tones([(500, 0.3), (2000, 0.3)])
    fast = AF.resample(torch.from_numpy(wave), SR, 44100).numpy()
    sf.write(tmp_path / "a.wav", fast, 44100, subtype="FLOAT")
    track = file_spectral_change(tmp_path / "a.wav")
    peak = track.times()[np.argmax(track.values)]
    assert peak == pytest.approx(track_peak(spectral_change(wave, SR)), abs=0.0051)


def track_peak(track: ChangeTrack) -> float:
    return float(track.times()[np.argmax(track.values)])


def test_phone_edges_move_onto_the_change_within_reach_and_pauses_stay():
    track = spectral_change(tones([(500, 0.3), (2000, 0.3), (900, 0.3)]), SR)
    segs = [
        Segment("a", 0.0, 0.315),  # 15 ms late: moves onto 0.3
        Segment("b", 0.315, 0.66),  # 60 ms late, beyond the 20-ms reach: stays
        Segment("sil", 0.66, 0.9),
    ]
    out = snap_phone_edges(segs, track, silence="sil")
    assert [s.label for s in out] == ["a", "b", "sil"]
    assert out[0].end == out[1].start == pytest.approx(0.3, abs=0.0075)
    assert out[1].end == out[2].start == 0.66  # a pause edge is not a phone edge
    assert snap_phone_edges(segs, track, silence="sil", max_shift_ms=0) == segs
    assert snap_phone_edges(segs, ChangeTrack(np.zeros(0)), silence="sil") == segs
    with pytest.raises(ValueError, match="max_shift_ms"):
        snap_phone_edges(segs, track, max_shift_ms=-1)


def test_an_edge_never_squeezes_a_neighbour_below_the_minimum():
    track = spectral_change(tones([(500, 0.3), (2000, 0.3)]), SR)
    segs = [Segment("a", 0.0, 0.29), Segment("b", 0.29, 0.305), Segment("c", 0.305, 0.6)]
    out = snap_phone_edges(segs, track)
    assert all(s.end - s.start >= MIN_PHONE_MS / 1000 - 1e-9 for s in out)
    assert all(x.end == y.start for x, y in zip(out, out[1:])) and out[0].start == 0.0 and out[-1].end == 0.6


def test_snap_alignment_moves_a_word_edge_between_phones_with_its_word_tier():
    wave = tones([(500, 0.3), (2000, 0.3)])
    phones = [PhoneInterval("a", 0.0, 0.312, 0.9, 0), PhoneInterval("b", 0.312, 0.6, 0.8, 1)]
    words = [WordInterval("x", 0.0, 0.312), WordInterval("y", 0.312, 0.6)]
    a = snap_alignment(
        Alignment("u", 0.6, words, phones, [("a",), ("b",)], -1.0), None, change=spectral_change(wave, SR)
    )
    assert a.phones[0].end == a.phones[1].start == pytest.approx(0.3, abs=0.0075)
    assert [(w.word, w.start, w.end) for w in a.words] == [
        ("x", 0.0, a.phones[0].end),
        ("y", a.phones[1].start, 0.6),
    ]
    assert [p.score for p in a.phones] == [0.9, 0.8]
