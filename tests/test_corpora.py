"""Corpus readers: TIMIT (.PHN), speechocean762, FSDD, TextGrid corpora.

TIMIT fixtures are made here from flite output (SPHERE .WAV, .PHN from flite's phone end times,
.TXT, .WRD) under mixed-case folders; real-corpus tests read ../shared/data in place.
Expected values come from independent computations: sample arithmetic by hand, praatio,
torchaudio's Kaldi fbank frame count, the corpus files read directly.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from praatio import textgrid as praat

from phonrec.data.datadir import DataDir
from phonrec.data.fsdd import prepare_fsdd
from phonrec.data.segments import Segment, segments_to_frame_labels
from phonrec.data.speechocean import heldout_speakers_for, prepare_speechocean762, speechocean_lexicon
from phonrec.data.textgrid import prepare_textgrid_corpus, read_textgrid, write_textgrid
from phonrec.data.timit import (
    TIMIT_CORE_TEST_SPEAKERS,
    TIMIT_DEV_SPEAKERS,
    prepare_timit,
    read_phn,
    read_timit_txt,
    write_phn,
)
from phonrec.phones import flite_to_phonrec

SR = 16000
VOWELS = {"aa", "ae", "ah", "ao", "aw", "ax", "ay", "eh", "er", "ey", "ih", "iy", "ow", "oy", "uh", "uw"}


# --- independent helpers -----------------------------------------------------------------------
def brute_force_labels(segments: list[Segment], num_samples: int, fill: str) -> list[str]:
    """Frame t (25 ms window, 10 ms hop, snip_edges) takes the label of the segment whose sample
    range [round(start*SR), round(end*SR)) holds its centre sample 160 t + 200."""
    n_frames = 1 + (num_samples - 400) // 160
    bounds = [(round(s.start * SR), round(s.end * SR), s.label) for s in segments]
    out = []
    for t in range(n_frames):
        centre = 160 * t + 200
        hits = [lab for a, b, lab in bounds if a <= centre < b]
        assert len(hits) <= 1
        out.append(hits[0] if hits else fill)
    return out


def kaldi_frame_count(wav: Path) -> int:
    """Frames torchaudio's Kaldi fbank makes (25 ms / 10 ms, snip_edges=True)."""
    wave, sr = sf.read(str(wav), dtype="float32")
    feats = torchaudio.compliance.kaldi.fbank(torch.from_numpy(wave)[None], sample_frequency=sr, num_mel_bins=23)
    return feats.shape[0]


def write_flac(path: Path, seconds: float = 0.3, sr: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sf.write(str(path), (0.1 * rng.standard_normal(int(seconds * sr))).astype(np.float32), sr, format="FLAC")


# --- .PHN / .TXT ---------------------------------------------------------------------------
def test_read_phn_converts_samples_to_seconds_and_write_phn_round_trips(tmp_path):
    text = "0 3050 h#\n3050 4559 sh\n4559 5723 ix\n5723 5723 q\n"
    (tmp_path / "a.phn").write_text(text)
    segs = read_phn(tmp_path / "a.phn")
    assert segs == [
        Segment("h#", 0.0, 3050 / 16000),
        Segment("sh", 3050 / 16000, 4559 / 16000),
        Segment("ix", 4559 / 16000, 5723 / 16000),
        Segment("q", 5723 / 16000, 5723 / 16000),
    ]
    write_phn(tmp_path / "b.phn", segs, SR)
    assert (tmp_path / "b.phn").read_text() == text
    # 8 kHz: the same sample numbers are twice as long
    assert read_phn(tmp_path / "a.phn", sample_rate=8000)[1] == Segment("sh", 3050 / 8000, 4559 / 8000)


@pytest.mark.parametrize(
    "bad_line",
    ["3050 4559", "3050 45x9 sh", "4559 3050 sh", "3000 4559 sh", "-1 4559 sh", "3050 4559 sh extra"],
)
def test_read_phn_malformed_line_names_file_and_line(tmp_path, bad_line):
    path = tmp_path / "x.PHN"
    path.write_text(f"0 3050 h#\n{bad_line}\n")
    with pytest.raises(ValueError, match=r"x\.PHN:2: "):
        read_phn(path)


def test_read_phn_empty_file_is_an_error(tmp_path):
    (tmp_path / "e.phn").write_text("\n")
    with pytest.raises(ValueError, match="no segments"):
        read_phn(tmp_path / "e.phn")


def test_timit_txt_drops_offsets_upper_cases_and_strips_punctuation(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text('0 46797 She had your dark suit, in "greasy" wash-water -- don\'t ask; all year.\n')
    assert read_timit_txt(path) == "SHE HAD YOUR DARK SUIT IN GREASY WASH-WATER DON'T ASK ALL YEAR"
    path.write_text("She had\n")
    with pytest.raises(ValueError, match=r"s\.txt:1"):
        read_timit_txt(path)


def test_standard_speaker_lists_have_the_documented_shape():
    # Core test: 2 men + 1 woman from each of 8 dialect regions; dev: 50 speakers; disjoint.
    assert len(TIMIT_CORE_TEST_SPEAKERS) == 24
    assert sum(s.startswith("m") for s in TIMIT_CORE_TEST_SPEAKERS) == 16
    assert sum(s.startswith("f") for s in TIMIT_CORE_TEST_SPEAKERS) == 8
    assert len(TIMIT_DEV_SPEAKERS) == 50
    assert not TIMIT_DEV_SPEAKERS & TIMIT_CORE_TEST_SPEAKERS


# --- a TIMIT-layout corpus made from flite -------------------------------------------------
def _write_timit_sentence(spk_dir: Path, sent: str, utt, *, upper: bool, with_wav: bool = True) -> None:
    """SENT.WAV (SPHERE), SENT.PHN (flite phone times in samples), SENT.TXT, SENT.WRD."""
    spk_dir.mkdir(parents=True, exist_ok=True)
    name = sent.upper() if upper else sent.lower()
    ext = (lambda e: e.upper()) if upper else (lambda e: e.lower())
    if with_wav:
        wave, sr = sf.read(str(utt.wav), dtype="int16")
        sf.write(str(spk_dir / f"{name}.{ext('wav')}"), wave, sr, format="NIST", subtype="PCM_16")
    (spk_dir / f"{name}.{ext('phn')}").write_text(
        "".join(f"{round(s.start * SR)} {round(s.end * SR)} {s.label}\n" for s in utt.segments)
    )
    (spk_dir / f"{name}.{ext('txt')}").write_text(f"0 {utt.num_samples} {utt.text.capitalize()}.\n")
    words = utt.text.split()
    step = utt.num_samples // (len(words) + 1)
    (spk_dir / f"{name}.{ext('wrd')}").write_text(
        "".join(f"{i * step} {(i + 1) * step} {w}\n" for i, w in enumerate(words))
    )


@pytest.fixture(scope="module")
def timit_root(flite_utterances, tmp_path_factory) -> Path:
    u = flite_utterances
    root = tmp_path_factory.mktemp("timit") / "TIMIT"
    _write_timit_sentence(root / "TRAIN" / "DR1" / "FCJF0", "SI1027", u[0], upper=True)
    _write_timit_sentence(root / "TRAIN" / "DR1" / "FCJF0", "SX127", u[1], upper=True)
    _write_timit_sentence(root / "TRAIN" / "DR1" / "FCJF0", "SA1", u[2], upper=True)
    _write_timit_sentence(root / "TRAIN" / "dr2" / "mabc0", "si500", u[1], upper=False)
    _write_timit_sentence(root / "TRAIN" / "dr2" / "mabc0", "sx20", u[2], upper=False)  # malformed .phn below
    with open(root / "TRAIN" / "dr2" / "mabc0" / "sx20.phn", "a") as f:
        f.write("40000 oops h#\n")
    _write_timit_sentence(root / "TRAIN" / "dr2" / "mabc0", "sx30", u[0], upper=False, with_wav=False)
    _write_timit_sentence(root / "test" / "Dr1" / "FAKS0", "SI943", u[2], upper=True)  # dev speaker
    _write_timit_sentence(root / "test" / "dr7" / "mdab0", "sx139", u[0], upper=False)  # core test speaker
    _write_timit_sentence(root / "test" / "DR3" / "MZZZ0", "SI1", u[1], upper=True)  # in neither set
    return root


def test_prepare_timit_splits_ids_text_and_phones(timit_root, flite_utterances, tmp_path, caplog):
    u = flite_utterances
    with caplog.at_level(logging.WARNING):
        dirs = prepare_timit(timit_root, tmp_path / "data")
    assert set(dirs) == {"train", "dev", "test"}
    assert dirs["train"].utts == ["fcjf0_si1027", "fcjf0_sx127", "mabc0_si500"]  # SA excluded
    assert dirs["dev"].utts == ["faks0_si943"]
    assert dirs["test"].utts == ["mdab0_sx139"]
    assert dirs["train"].utt2spk == {"fcjf0_si1027": "fcjf0", "fcjf0_sx127": "fcjf0", "mabc0_si500": "mabc0"}
    assert dirs["dev"].text["faks0_si943"] == u[2].text.upper()
    assert dirs["train"].phones["mabc0_si500"] == [s.label for s in u[1].segments]
    assert dirs["train"].wavs["fcjf0_si1027"].name == "SI1027.WAV"
    assert sf.info(str(dirs["train"].wavs["fcjf0_si1027"])).format == "NIST"
    # bad utterances: reported (count, ids, the file:line at fault) and skipped
    report = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "2 utterances skipped" in report
    assert "mabc0_sx20" in report and f"sx20.phn:{len(u[2].segments) + 1}" in report
    assert "mabc0_sx30" in report and "no .WAV" in report
    # the saved directory reads back the same
    assert DataDir.load(tmp_path / "data" / "train") == dirs["train"]


def test_prepare_timit_include_sa_and_subset_of_sets(timit_root, tmp_path):
    dirs = prepare_timit(timit_root, tmp_path / "data", sets=("train",), include_sa=True)
    assert set(dirs) == {"train"}
    assert "fcjf0_sa1" in dirs["train"].utts
    assert not (tmp_path / "data" / "dev").exists()
    with pytest.raises(ValueError, match="unknown TIMIT set"):
        prepare_timit(timit_root, tmp_path / "x", sets=("core",))


def test_phn_textgrid_and_flite_labels_give_the_same_frame_alignment(timit_root, flite_utterances, tmp_path):
    """One utterance, three sources of timing (.PHN in samples, an MFA-style TextGrid written by
    praatio, flite's -psdur times): the same per-frame phones, equal to a brute-force count."""
    timit = prepare_timit(timit_root, tmp_path / "timit", sets=("train",))["train"]
    # an MFA-style corpus: speaker folders, CMU phones with stress, silence as empty intervals
    wav_dir, grid_dir = tmp_path / "corpus", tmp_path / "aligned"
    pairs = {"fcjf0_si1027": flite_utterances[0], "fcjf0_sx127": flite_utterances[1]}
    for utt, fu in pairs.items():
        (wav_dir / "fcjf0").mkdir(parents=True, exist_ok=True)
        (grid_dir / "fcjf0").mkdir(parents=True, exist_ok=True)
        (wav_dir / "fcjf0" / f"{utt}.wav").write_bytes(fu.wav.read_bytes())
        duration = fu.num_samples / fu.sample_rate
        phones = []
        for s in fu.segments:
            p = flite_to_phonrec(s.label)
            label = "" if p == "sil" else p.upper() + ("1" if p in VOWELS else "")
            phones.append((s.start, s.end, label))
        speech = [s for s in fu.segments if s.label != "pau"]
        words = fu.text.upper().split()
        step = (speech[-1].end - speech[0].start) / len(words)
        word_entries = [(speech[0].start + i * step, speech[0].start + (i + 1) * step, w) for i, w in enumerate(words)]
        tg = praat.Textgrid()
        tg.addTier(praat.IntervalTier("words", word_entries, 0, duration))
        tg.addTier(praat.IntervalTier("phones", [p for p in phones if p[2]], 0, duration))
        tg.save(str(grid_dir / "fcjf0" / f"{utt}.TextGrid"), format="short_textgrid", includeBlankSpaces=True)
    mfa = prepare_textgrid_corpus(wav_dir, grid_dir, tmp_path / "mfa")
    assert mfa.utts == sorted(pairs)
    for utt, fu in pairs.items():
        expected = [flite_to_phonrec(p) for p in brute_force_labels(fu.segments, fu.num_samples, fill="pau")]
        assert len(expected) == kaldi_frame_count(fu.wav)
        from_phn = [flite_to_phonrec(p) for p in timit.alignments[utt]]
        from_textgrid = mfa.alignments[utt]
        from_flite = [flite_to_phonrec(p) for p in segments_to_frame_labels(fu.segments, len(expected), fill="pau")]
        assert from_phn == expected
        assert from_textgrid == expected
        assert from_flite == expected
        assert mfa.text[utt] == fu.text.upper()
        # phones: the interval labels, silences merged
        merged = []
        for s in fu.segments:
            p = flite_to_phonrec(s.label)
            if not (p == "sil" and merged and merged[-1] == "sil"):
                merged.append(p)
        assert mfa.phones[utt] == merged


# --- TextGrid reading / writing against praatio ------------------------------------------------
def _praatio_tiers(path: Path) -> dict[str, list[tuple[str, float, float]]]:
    tg = praat.openTextgrid(str(path), includeEmptyIntervals=True)
    out = {}
    for name in tg.tierNames:
        tier = tg.getTier(name)
        if isinstance(tier, praat.IntervalTier):
            out[name] = [(e.label, e.start, e.end) for e in tier.entries]
        else:
            out[name] = [(e.label, e.time, e.time) for e in tier.entries]
    return out


def _ours(tiers: dict[str, list[Segment]]) -> dict[str, list[tuple[str, float, float]]]:
    return {name: [(s.label, s.start, s.end) for s in segs] for name, segs in tiers.items()}


@pytest.mark.parametrize("fmt", ["long_textgrid", "short_textgrid"])
def test_read_textgrid_matches_praatio(tmp_path, fmt):
    tg = praat.Textgrid()
    tg.addTier(praat.IntervalTier("words", [(0.05, 0.61, "hello"), (0.7, 1.234567, 'say "hi"')], 0, 1.5))
    tg.addTier(
        praat.IntervalTier(
            "phones", [(0.05, 0.1, "HH"), (0.1, 0.3, "AH0"), (0.3, 0.61, "L OW1"), (0.7, 1.0, "ʃ")], 0, 1.5
        )
    )
    tg.addTier(praat.PointTier("events", [(0.2, "click"), (1.1, "")], 0, 1.5))
    path = tmp_path / f"{fmt}.TextGrid"
    tg.save(str(path), format=fmt, includeBlankSpaces=True)
    ours = read_textgrid(path)
    assert list(ours) == ["words", "phones", "events"]
    assert _ours(ours) == _praatio_tiers(path)
    assert ours["phones"][0] == Segment("", 0.0, 0.05)  # the empty (silence) interval praatio filled in
    # Praat writes UTF-16 with a byte-order mark when a label is not ASCII
    utf16 = tmp_path / "utf16.TextGrid"
    utf16.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))
    assert read_textgrid(utf16) == ours


def test_write_textgrid_is_read_by_praatio(tmp_path):
    tiers = {
        "words": [Segment("HELLO", 0.1, 0.5), Segment('a "quoted" word', 0.5, 0.9)],
        "phones": [Segment("HH", 0.1, 0.2), Segment("AH0", 0.2, 0.35), Segment("", 0.35, 0.4), Segment("L", 0.4, 0.9)],
    }
    path = tmp_path / "w.TextGrid"
    write_textgrid(path, tiers, xmax=1.25)
    assert _praatio_tiers(path) == {
        "words": [("", 0.0, 0.1), ("HELLO", 0.1, 0.5), ('a "quoted" word', 0.5, 0.9), ("", 0.9, 1.25)],
        "phones": [
            ("", 0.0, 0.1),
            ("HH", 0.1, 0.2),
            ("AH0", 0.2, 0.35),
            ("", 0.35, 0.4),
            ("L", 0.4, 0.9),
            ("", 0.9, 1.25),
        ],
    }
    with pytest.raises(ValueError, match="tier 'x' segment 1"):
        write_textgrid(tmp_path / "bad.TextGrid", {"x": [Segment("a", 0.0, 0.5), Segment("b", 0.4, 0.6)]}, xmax=1.0)
    with pytest.raises(ValueError, match="tier 'x' segment 0"):
        write_textgrid(tmp_path / "bad.TextGrid", {"x": [Segment("a", 0.0, 1.5)]}, xmax=1.0)


def _long_textgrid(tmp_path: Path) -> Path:
    tg = praat.Textgrid()
    tg.addTier(praat.IntervalTier("phones", [(0.1, 0.3, "AH0"), (0.3, 0.5, "B")], 0, 1.0))
    path = tmp_path / "g.TextGrid"
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)
    return path


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_malformed_textgrids_name_file_and_line(tmp_path):
    path = _long_textgrid(tmp_path)
    good = path.read_text()
    # a number that is not a number
    bad = good.replace("xmin = 0.3", "xmin = 0.3x", 1)
    path.write_text(bad)
    with pytest.raises(ValueError, match=rf"g\.TextGrid:{_line_of(bad, '0.3x')}: unexpected '0.3x'"):
        read_textgrid(path)
    # an interval that ends before it starts
    bad = good.replace("xmax = 0.5", "xmax = 0.2", 1)
    path.write_text(bad)
    with pytest.raises(
        ValueError, match=rf"g\.TextGrid:{_line_of(bad, 'xmin = 0.3')}: interval 3 of tier 'phones' ends"
    ):
        read_textgrid(path)
    # a missing label where a string is expected
    bad = good.replace('text = "B"', "text = 7", 1)
    path.write_text(bad)
    with pytest.raises(ValueError, match=rf"g\.TextGrid:{_line_of(bad, 'text = 7')}: expected text of interval 3"):
        read_textgrid(path)
    # truncated
    path.write_text(good[: good.index('text = "B"')])
    with pytest.raises(ValueError, match=r"g\.TextGrid:\d+: file ends where text of interval 3"):
        read_textgrid(path)
    # not a TextGrid at all
    path.write_text('File type = "ooTextFile"\nObject class = "Sound"\n')
    with pytest.raises(ValueError, match=r"g\.TextGrid:2: object class is 'Sound'"):
        read_textgrid(path)


def test_textgrid_corpus_reports_and_skips_bad_utterances(tmp_path, caplog):
    wav_dir, grid_dir = tmp_path / "wav", tmp_path / "grid"
    for utt in ("a", "b", "c"):
        write_flac(wav_dir / "spk" / f"{utt}.flac")
    good = {"words": [Segment("HI", 0.05, 0.25)], "phones": [Segment("HH", 0.05, 0.12), Segment("AY1", 0.12, 0.25)]}
    (grid_dir / "spk").mkdir(parents=True)
    write_textgrid(grid_dir / "spk" / "a.TextGrid", good, xmax=0.3)
    write_textgrid(grid_dir / "spk" / "b.TextGrid", {**good, "phones": [Segment("spn", 0.05, 0.25)]}, xmax=0.3)
    write_textgrid(grid_dir / "spk" / "d.TextGrid", good, xmax=0.3)  # no audio
    # c.flac has no TextGrid (MFA could not align it)
    with caplog.at_level(logging.WARNING):
        data = prepare_textgrid_corpus(wav_dir, grid_dir, tmp_path / "out")
    assert data.utts == ["spk_a"]
    assert data.utt2spk == {"spk_a": "spk"}
    assert data.text == {"spk_a": "HI"}
    assert data.phones == {"spk_a": ["sil", "hh", "ay", "sil"]}
    # 0.3 s at 16 kHz -> 4800 samples -> 1 + (4800 - 400) // 160 = 28 frames; centres at 12.5 + 10 t ms
    expected = [
        "sil" if c < 50 or c >= 250 else ("hh" if c < 120 else "ay") for c in (12.5 + 10 * t for t in range(28))
    ]
    assert data.alignments == {"spk_a": expected}
    report = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "3 utterances skipped" in report
    assert "spk_b" in report and "'spn'" in report
    assert "spk_d" in report and "no audio" in report
    assert "spk/c" in report and "not aligned" in report


# --- speechocean762 -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def speechocean(shared_data, tmp_path_factory) -> tuple[Path, dict[str, DataDir]]:
    root = shared_data / "speechocean762"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    return root, prepare_speechocean762(root, tmp_path_factory.mktemp("so"))


def test_speechocean_counts_match_the_readme_and_split_by_speaker(speechocean):
    root, dirs = speechocean
    train, dev = dirs["train"], dirs["dev"]
    # README: 2500 utterances, 125 speakers (counted here from the corpus file directly)
    utt2spk = dict(line.split() for line in (root / "train" / "utt2spk").read_text().splitlines())
    assert len(utt2spk) == 2500 and len(set(utt2spk.values())) == 125
    assert len(train) + len(dev) == 2500
    assert set(train.utts) | set(dev.utts) == set(utt2spk)
    assert len(train.speakers()) + len(dev.speakers()) == 125
    assert not set(train.speakers()) & set(dev.speakers())
    assert len(dev.speakers()) == round(0.1 * 125)
    assert all(utt2spk[u] == s for d in (train, dev) for u, s in d.utt2spk.items())
    assert train.alignments is None and dev.alignments is None


def test_speechocean_phones_of_a_known_utterance(speechocean):
    root, dirs = speechocean
    d = dirs["train"] if "000010011" in dirs["train"].wavs else dirs["dev"]
    # text-phone: W_B IY0_E | K_B AO0_I L_E | IH0_B T_E | B_B EH0_I R_E
    assert d.text["000010011"] == "WE CALL IT BEAR"
    assert d.phones["000010011"] == ["w", "iy", "k", "ao", "l", "ih", "t", "b", "eh", "r"]
    assert d.wavs["000010011"] == root / "WAVE" / "SPEAKER0001" / "000010011.flac"
    assert speechocean_lexicon(root) == root / "resource" / "lexicon.txt"


def test_speechocean_heldout_choice_is_deterministic_and_seeded():
    speakers = [f"{i:04d}" for i in range(125)]
    a = heldout_speakers_for(speakers, 0.1, seed=0)
    assert a == heldout_speakers_for(list(reversed(speakers)), 0.1, seed=0)
    assert len(a) == 12 and set(a) <= set(speakers)
    assert heldout_speakers_for(speakers, 0.1, seed=1) != a
    with pytest.raises(ValueError, match="fraction"):
        heldout_speakers_for(speakers, 1.0, seed=0)


def _fake_speechocean(root: Path) -> None:
    """Six utterances, three speakers; four of them bad in different ways."""
    (root / "train").mkdir(parents=True)
    (root / "resource").mkdir()
    utts = {
        "u1": ("s1", "WE CALL"),
        "u2": ("s1", "IT"),
        "u3": ("s2", "BEAR ME"),
        "u4": ("s2", "ONE"),
        "u5": ("s3", "TWO"),
    }
    (root / "train" / "wav.scp").write_text("".join(f"{u}\tWAVE/{s}/{u}.flac\n" for u, (s, _) in utts.items()))
    (root / "train" / "text").write_text("".join(f"{u}\t{t}\n" for u, (_, t) in utts.items()) + "u6\tSIX\n")
    (root / "train" / "utt2spk").write_text(
        "".join(f"{u} {s}\n" for u, (s, _) in utts.items()) + "u6 s3\n"
    )  # u6: no audio entry
    for u, (s, _) in utts.items():
        if u != "u2":  # u2: audio missing
            write_flac(root / "WAVE" / s / f"{u}.flac")
    (root / "resource" / "text-phone").write_text(
        "u1.0\tW_B IY0_E\nu1.1\tK_B AO0_I L_E\n"
        "u2.0\tIH0_B T_E\n"
        "u3.0\tB_B EH0_I R_E\n"  # u3: two words, one pronunciation
        "u5.0\tT_B UW1_E\n"  # u4: no text-phone entry at all
    )
    (root / "resource" / "lexicon.txt").write_text("WE\tW IY0\n")


def test_speechocean_bad_utterances_are_reported_and_skipped(tmp_path, caplog):
    root = tmp_path / "speechocean762"
    _fake_speechocean(root)
    with caplog.at_level(logging.WARNING):
        dirs = prepare_speechocean762(root, tmp_path / "out", heldout_speakers=["s3"])
    assert dirs["train"].utts == ["u1"] and dirs["dev"].utts == ["u5"]
    assert dirs["train"].phones == {"u1": ["w", "iy", "k", "ao", "l"]}
    report = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "4 utterances skipped" in report
    assert "u2: audio file missing" in report
    assert "u6: not in wav.scp" in report
    assert "u3: text has 2 words but text-phone has word indices [0]" in report
    assert "u4: text has 1 words but text-phone has word indices []" in report
    assert DataDir.load(tmp_path / "out" / "dev").phones == {"u5": ["t", "uw"]}
    with pytest.raises(ValueError, match="held-out speakers not in"):
        prepare_speechocean762(root, tmp_path / "out2", heldout_speakers=["s9"])


# --- FSDD -----------------------------------------------------------------------------------
DIGITS = {
    "0": "ZERO",
    "1": "ONE",
    "2": "TWO",
    "3": "THREE",
    "4": "FOUR",
    "5": "FIVE",
    "6": "SIX",
    "7": "SEVEN",
    "8": "EIGHT",
    "9": "NINE",
}


def test_fsdd_counts_match_the_readme_and_split_by_speaker(shared_data, tmp_path):
    root = shared_data / "fsdd"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    dirs = prepare_fsdd(root, tmp_path / "fsdd")
    train, test = dirs["train"], dirs["test"]
    files = sorted((root / "recordings").glob("*.flac"))
    assert len(files) == 2000 and len(train) + len(test) == 2000
    assert test.speakers() == ["george"] and len(test) == 500
    assert train.speakers() == ["jackson", "lucas", "nicolas"]
    for f in files:
        digit, speaker, index = f.stem.split("_")
        d = test if speaker == "george" else train
        utt = f"{speaker}_{digit}_{index}"
        assert d.text[utt] == DIGITS[digit] and d.utt2spk[utt] == speaker and d.wavs[utt] == f
    assert sf.info(str(files[0])).samplerate == 8000


def test_fsdd_bad_names_are_reported_and_skipped(tmp_path, caplog):
    rec = tmp_path / "fsdd" / "recordings"
    for name in ("0_alice_0.flac", "9_alice_12.flac", "3_bob_7.flac", "x_bob_1.flac", "2-bob-3.flac", "12_bob_1.flac"):
        write_flac(rec / name, sr=8000)
    (rec / "README.txt").write_text("not audio\n")
    with caplog.at_level(logging.WARNING):
        dirs = prepare_fsdd(tmp_path / "fsdd", tmp_path / "out", test_speaker="bob")
    assert dirs["train"].text == {"alice_0_0": "ZERO", "alice_9_12": "NINE"}
    assert dirs["test"].text == {"bob_3_7": "THREE"}
    report = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "3 files skipped" in report
    assert all(n in report for n in ("x_bob_1.flac", "2-bob-3.flac", "12_bob_1.flac"))
    with pytest.raises(ValueError, match="test speaker 'carol' has no recordings"):
        prepare_fsdd(tmp_path / "fsdd", tmp_path / "out", test_speaker="carol")


def test_resaving_a_data_dir_drops_stale_optional_files(tmp_path):
    """Preparing a corpus again into the same folder, now without alignments, must not leave the
    old ``alignments`` file for ``DataDir.load`` to pick up."""
    wav = tmp_path / "a.flac"
    write_flac(wav)
    DataDir({"a": wav}, {"a": "HI"}, {"a": "s"}, phones={"a": ["hh", "ay"]}, alignments={"a": ["sil"] * 28}).save(
        tmp_path / "d"
    )
    DataDir({"a": wav}, {"a": "HI"}, {"a": "s"}).save(tmp_path / "d")
    loaded = DataDir.load(tmp_path / "d")
    assert loaded.phones is None and loaded.alignments is None
