"""bench/festival_testset.py: a 3-utterance festival test set has exact, well-formed reference phones.

Checked independently of the script: the phones are in phonrec's 39 CMU phones, the ``.seg``
segments tile the audio (contiguous, increasing, ending within 20 ms of the wav's length), the
``phones`` file is the segments without silence, ``alignments`` has one label per feature frame,
the audio is 16 kHz mono 16-bit, and the leading ``pau`` is silent in the audio (the times
belong to this waveform). Skipped when festival is not installed.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from phonrec.data.datadir import DataDir
from phonrec.data.segments import Segment
from phonrec.data.voices import fit_segments_to_audio
from phonrec.features import num_frames
from phonrec.phones import CMU_PHONES, SILENCE

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_festival_testset", ROOT / "bench" / "festival_testset.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


F = _bench()


def read_seg(path: Path) -> list[Segment]:
    rows = [line.split() for line in path.read_text().splitlines()]
    return [Segment(label, float(a), float(b)) for a, b, label in rows]


@pytest.fixture(scope="module")
def testset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("festival") is None:
        pytest.skip("festival is not installed (apt-get install festival festvox-kallpc16k)")
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (the sentence vocabulary is filtered with it)")
    out = tmp_path_factory.mktemp("fest") / "set"
    voices = [v for v in F.DEFAULT_VOICES if v in F.installed_voices()] or ["kal_diphone"]
    summary = F.build(out, voices, 3, 0, [])
    assert summary["utterances"] == 3, summary["skipped"]
    return out


def test_reference_phones_are_exact_and_cover_the_audio(testset: Path) -> None:
    data = DataDir.load(testset)
    assert len(data) == 3 and data.phones is not None and data.alignments is not None
    for utt in data.utts:
        info = sf.info(str(data.wavs[utt]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        duration = info.frames / info.samplerate
        segments = read_seg(testset / "wav" / f"{utt}.seg")
        assert segments[0].start == 0.0
        for a, b in zip(segments, segments[1:]):
            assert a.end == pytest.approx(b.start, abs=1e-6), (utt, a, b)
        assert all(s.end > s.start for s in segments), utt
        assert abs(segments[-1].end - duration) <= 0.020, (utt, segments[-1], duration)
        phones = [s.label for s in segments if s.label != SILENCE]
        assert phones and data.phones[utt] == phones
        assert set(phones) <= set(CMU_PHONES), set(phones) - set(CMU_PHONES)
        assert len(data.alignments[utt]) == num_frames(info.frames)
        assert set(data.alignments[utt]) <= set(CMU_PHONES) | {SILENCE}
        assert data.utt2spk[utt] == utt.rsplit("-", 1)[0]  # speaker = voice
        # the leading pau is (near) silent in this waveform, the speech after it is not
        wave, sr = sf.read(data.wavs[utt], dtype="float32")
        lead_end = int((segments[0].end - 0.02) * sr) if segments[0].label == SILENCE else 0
        assert lead_end > 0, (utt, segments[0])
        speech = wave[int(segments[1].start * sr) : int(segments[-1].start * sr)]
        assert np.sqrt(np.mean(wave[:lead_end] ** 2)) < 0.05 * np.sqrt(np.mean(speech**2)), utt
    assert (testset / "README.txt").read_text().startswith("Festival-voice test set")


def test_a_non_empty_out_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("the user's file")
    if shutil.which("festival") is None:
        pytest.skip("festival is not installed")
    with pytest.raises(ValueError, match="exists and is not an empty directory"):
        F.build(tmp_path, ["kal_diphone"], 3, 0, [])
    assert (tmp_path / "mine.txt").read_text() == "the user's file"


def test_festival_output_parsing_keeps_only_finished_utterances() -> None:
    stdout = "UTT a\nSEG pau 0.2\nSEG hh 0.3\nSEG pau 0.5\nWORD hi\nEND a\nFAIL b\nUTT c\nSEG pau 0.1\n"
    done = F.parse_festival_output(stdout)
    assert list(done) == ["a"]
    assert done["a"].pairs == [("pau", 0.2), ("hh", 0.3), ("pau", 0.5)] and done["a"].words == ["hi"]


def test_final_silence_is_fitted_to_the_audio() -> None:
    segs = [Segment("sil", 0.0, 0.2), Segment("hh", 0.2, 0.3), Segment("sil", 0.3, 0.5)]

    def fit(duration: float) -> list[Segment]:
        return fit_segments_to_audio(segs, duration, synthesiser="festival", tolerance_s=F.END_TOLERANCE_S)

    assert fit(0.521)[-1] == Segment("sil", 0.3, 0.521)  # 21 ms past: the diphone voices' overhang
    with pytest.raises(ValueError, match="past festival's last phone"):
        fit(0.5 + F.END_TOLERANCE_S + 0.01)
    with pytest.raises(ValueError, match="ends before the last phone"):
        fit(0.25)
