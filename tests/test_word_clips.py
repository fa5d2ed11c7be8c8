"""``recipes/lib/word_clips.py``: words cut out of read sentences by forced alignment.

Checked on flite utterances against flite's own phone timings (``-psdur``): each clip is an
exact slice of its recording that covers the word as flite spoke it.
"""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO_ROOT

from phonrec.data.datadir import DataDir
from phonrec.lexicon import Lexicon

# one word of each FLITE_SENTENCES sentence, with flite's phones for it (kal16)
FLITE_WORDS = {"DARK": ["d", "aa", "r", "k"], "CARRY": ["k", "ae", "r", "iy"], "BIRCH": ["b", "er", "ch"]}


def _word_clips():
    spec = importlib.util.spec_from_file_location("recipes_word_clips", REPO_ROOT / "recipes" / "lib" / "word_clips.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _sources(flite_utterances) -> DataDir:
    utts = [f"utt{i}" for i in range(len(flite_utterances))]
    return DataDir(
        wavs={u: f.wav for u, f in zip(utts, flite_utterances)},
        text={u: f.text for u, f in zip(utts, flite_utterances)},
        utt2spk={u: "kal" for u in utts},
    )


def _flite_word_interval(utterance, phones: list[str]) -> tuple[float, float]:
    """Start and end (s) of the first run of ``phones`` in flite's segmentation."""
    labels = [s.label for s in utterance.segments]
    for i in range(len(labels) - len(phones) + 1):
        if labels[i : i + len(phones)] == phones:
            return utterance.segments[i].start, utterance.segments[i + len(phones) - 1].end
    raise AssertionError(f"{phones} not in flite's phones {labels}")


def _offset_in(source: np.ndarray, clip: np.ndarray) -> int:
    """Where ``clip`` lies in ``source`` sample for sample (-1: nowhere)."""
    for start in np.flatnonzero(source[: len(source) - len(clip) + 1] == clip[0]):
        if np.array_equal(source[start : start + len(clip)], clip):
            return int(start)
    return -1


def test_clip_bounds_pad_and_clamp():
    wc = _word_clips()
    assert wc.clip_bounds(1.0, 1.5, 0.05, 40000, 16000) == (15200, 24800)
    assert wc.clip_bounds(0.02, 2.49, 0.05, 40000, 16000) == (0, 40000)  # within the recording


def test_cut_word_clips_cover_flite_words(flite_utterances, tmp_path, caplog):
    wc = _word_clips()
    sources = _sources(flite_utterances)
    sources.wavs["gone"] = tmp_path / "missing.wav"  # an unreadable recording: reported, skipped
    sources.text["gone"], sources.utt2spk["gone"] = "a dark room", "kal"
    lexicon = Lexicon.from_cmudict(FLITE_WORDS)
    with caplog.at_level(logging.WARNING):
        clips = wc.cut_word_clips([sources], set(FLITE_WORDS), lexicon, tmp_path / "out", speaker_prefix="x_")
    assert f"1 utterances skipped: gone: {tmp_path / 'missing.wav'}: no such file" in caplog.text
    assert sorted(clips.text.values()) == sorted(FLITE_WORDS)  # one clip per sentence
    saved = DataDir.load(tmp_path / "out")
    assert saved.text == clips.text and set(saved.utt2spk.values()) == {"x_kal"}
    for utt, flite in zip(sorted(u for u in sources.utts if u != "gone"), flite_utterances):
        (name,) = [n for n in clips.utts if n.startswith(f"x_{utt}_")]
        word = clips.text[name]
        assert clips.phones[name] == list(lexicon.pronunciations(word)[0])
        source, sr = sf.read(flite.wav, dtype="int16")
        clip, clip_sr = sf.read(clips.wavs[name], dtype="int16")
        assert clip_sr == sr == 16000
        start = _offset_in(source, clip)
        assert start >= 0, f"{name} is not a slice of {flite.wav}"
        lo, hi = start / sr, (start + len(clip)) / sr
        w_lo, w_hi = _flite_word_interval(flite, FLITE_WORDS[word])
        overlap = min(hi, w_hi) - max(lo, w_lo)
        assert overlap >= 0.8 * (w_hi - w_lo), f"{word}: clip {lo:.3f}-{hi:.3f} s, flite {w_lo:.3f}-{w_hi:.3f} s"
        assert hi - lo < (w_hi - w_lo) + 0.4  # the word and its padding, not the sentence


def test_cut_word_clips_resample_and_errors(flite_utterances, tmp_path):
    wc = _word_clips()
    sources = _sources(flite_utterances[:1])
    lexicon = Lexicon.from_cmudict(["DARK", "SUIT"])
    clips = wc.cut_word_clips([sources], {"DARK"}, lexicon, tmp_path / "a", sample_rate=8000, pad_ms=0)
    (path,) = clips.wavs.values()
    assert sf.info(path).samplerate == 8000
    with pytest.raises(ValueError, match="not in the lexicon: \\['CARRY'\\]"):
        wc.cut_word_clips([sources], {"CARRY"}, lexicon, tmp_path / "b")
    with pytest.raises(ValueError, match="no occurrence of \\['SUIT'\\]"):
        wc.cut_word_clips([_sources(flite_utterances[1:2])], {"SUIT"}, lexicon, tmp_path / "c")


def test_command_names_user_errors_and_keeps_an_existing_output(flite_utterances, tmp_path):
    """The command line: a word no lexicon has, or an --out that already holds a data directory,
    is one short message (no traceback), and the existing directory is left as it was."""
    sources = _sources(flite_utterances[:1])
    sources.save(tmp_path / "src")
    (tmp_path / "lexicon.txt").write_text("dark d aa r k\n")
    script = REPO_ROOT / "recipes" / "lib" / "word_clips.py"
    common = [sys.executable, str(script), str(tmp_path / "src"), "--lexicon", str(tmp_path / "lexicon.txt")]
    proc = subprocess.run([*common, "--words", "suit", "--out", str(tmp_path / "a")], capture_output=True, text=True)
    assert proc.returncode == 1 and "words not in the lexicon: ['SUIT']" in proc.stderr
    assert "Traceback" not in proc.stderr
    before = (tmp_path / "src" / "wav.scp").read_text()
    proc = subprocess.run([*common, "--words", "dark", "--out", str(tmp_path / "src")], capture_output=True, text=True)
    assert proc.returncode == 1 and "already holds a data directory" in proc.stderr
    assert (tmp_path / "src" / "wav.scp").read_text() == before and not (tmp_path / "src" / "wav").exists()
