"""phonrec-transcribe and Transcriber: outputs never collide or overwrite, broken model directories
answer in one line, folders / lists / truncated files, the empty batch, and decoding with the
model directory's defaults (minimum duration, phone bigram, lexicon) as the recipes do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
from helpers import make_model_dir, sine_noise
from praatio import textgrid

from phonrec.cli.transcribe import main
from phonrec.decode.beam import phone_beam_search
from phonrec.lm import PhoneBigram
from phonrec.model_dir import write_decoding_defaults
from phonrec.transcribe import Transcriber

REPO = Path(__file__).resolve().parents[1]
SR = 16000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return make_model_dir(tmp_path_factory.mktemp("cli_transcribe"))


def _wav(path: Path, seconds: float = 1.0, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, sine_noise(seconds, seed=seed), SR)
    return path


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (exit status, stdout, stderr)."""
    try:
        main([str(a) for a in argv])
        status = 0
    except SystemExit as e:
        status = int(e.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def _command(argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PHONREC_DEBUG": ""}
    return subprocess.run(
        [sys.executable, "-m", "phonrec.cli.transcribe", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def _copy(model_dir: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    for f in model_dir.iterdir():
        (to / f.name).write_bytes(f.read_bytes())
    return to


# --- 1. two inputs with one stem; existing outputs --------------------------------------------------


def test_same_stem_other_extension_writes_two_textgrids(model_dir: Path, tmp_path: Path, capsys) -> None:
    ogg, flac = tmp_path / "fox.ogg", tmp_path / "fox.flac"
    sf.write(ogg, sine_noise(1.0, seed=1), SR)
    sf.write(flac, sine_noise(0.5, seed=2), SR)
    status, out, _ = _run([model_dir, ogg, flac, "--textgrid", tmp_path / "out"], capsys)
    assert status == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fox.flac.TextGrid", "fox.ogg.TextGrid"]
    durations = {p.name: textgrid.openTextgrid(str(p), False).maxTimestamp for p in (tmp_path / "out").iterdir()}
    assert durations == {"fox.ogg.TextGrid": pytest.approx(1.0), "fox.flac.TextGrid": pytest.approx(0.5)}


def test_same_name_in_two_folders_keeps_the_relative_path(model_dir: Path, tmp_path: Path, capsys) -> None:
    a, b = _wav(tmp_path / "x" / "a.wav", 1.0), _wav(tmp_path / "y" / "a.wav", 0.5)
    status, _, _ = _run([model_dir, a, b, "--textgrid", tmp_path / "out"], capsys)
    assert status == 0
    out = tmp_path / "out"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.TextGrid")) == ["x/a.TextGrid", "y/a.TextGrid"]
    assert textgrid.openTextgrid(str(out / "y" / "a.TextGrid"), False).maxTimestamp == pytest.approx(0.5)


def test_existing_textgrid_is_refused_unless_overwrite(model_dir: Path, tmp_path: Path, capsys) -> None:
    audio = _wav(tmp_path / "a.wav")
    existing = tmp_path / "out" / "a.TextGrid"
    existing.parent.mkdir()
    existing.write_text("an earlier run's work")
    status, out, err = _run([model_dir, audio, "--textgrid", tmp_path / "out"], capsys)
    assert status == 2 and out == ""
    assert f"{existing} already exists; pass --overwrite to replace it" in err
    assert existing.read_text() == "an earlier run's work"
    status, _, _ = _run([model_dir, audio, "--textgrid", tmp_path / "out", "--overwrite"], capsys)
    assert status == 0 and existing.read_text().startswith('File type = "ooTextFile"')


def test_a_file_given_twice_is_transcribed_once(model_dir: Path, tmp_path: Path, capsys) -> None:
    audio = _wav(tmp_path / "a.wav")
    status, out, _ = _run([model_dir, audio, tmp_path / "." / "a.wav", "--json"], capsys)
    assert status == 0 and len(out.splitlines()) == 1


# --- 2. and 3. broken model directories through the command -----------------------------------------


def _no_cmvn(m: Path) -> None:
    (m / "cmvn.json").unlink()


def _pickle_weights(m: Path) -> None:
    torch.save({"rnns.0.weight_ih_l0": torch.zeros(2)}, m / "model.safetensors")


def _empty_phones(m: Path) -> None:
    (m / "phones.txt").write_bytes(b"")


def _bad_yaml(m: Path) -> None:
    (m / "config.yaml").write_text("features: {n_mels: 20\n")


@pytest.mark.parametrize(
    "breaks, message",
    [
        (_no_cmvn, r"features\.cmvn=global but cmvn\.json"),
        (_pickle_weights, r"model\.safetensors: not a valid safetensors file"),
        (_empty_phones, r"phones\.txt"),
        (_bad_yaml, r"config\.yaml: not valid YAML"),
    ],
    ids=["no_cmvn", "pickle_weights", "empty_phones", "bad_yaml"],
)
def test_broken_model_directory_is_one_line_without_traceback(
    model_dir: Path, tmp_path: Path, breaks, message: str
) -> None:
    broken = _copy(model_dir, tmp_path / "broken")
    breaks(broken)
    audio = _wav(tmp_path / "a.wav")
    with pytest.raises(Exception, match=message) as api_error:
        Transcriber.from_pretrained(broken)
    proc = _command([broken, audio])
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first == f"phonrec-transcribe: error: {api_error.value}"  # the API's message, as it is


# --- 4. folders, lists, truncated files ---------------------------------------------------------------


def test_folder_is_searched_recursively_with_an_extension_filter(model_dir: Path, tmp_path: Path, capsys) -> None:
    _wav(tmp_path / "audio" / "b.wav")
    _wav(tmp_path / "audio" / "deep" / "er" / "a.wav")
    sf.write(tmp_path / "audio" / "c.flac", sine_noise(0.5), SR)
    (tmp_path / "audio" / "notes.txt").write_text("not audio")
    status, out, _ = _run([model_dir, tmp_path / "audio", "--json"], capsys)
    assert status == 0
    files = [line.split('"file": "')[1].split('"')[0] for line in out.splitlines()]
    audio = tmp_path / "audio"
    assert files == [str(audio / "b.wav"), str(audio / "c.flac"), str(audio / "deep" / "er" / "a.wav")]
    status, out, _ = _run([model_dir, audio, "--ext", "flac", "--json"], capsys)
    assert status == 0 and len(out.splitlines()) == 1 and "c.flac" in out


def test_folder_without_audio_is_an_error_naming_it(model_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    status, _, err = _run([model_dir, tmp_path / "empty"], capsys)
    assert status == 2 and f"{tmp_path / 'empty'}: no audio files (" in err


def test_file_list_paths_resolve_against_the_list(model_dir: Path, tmp_path: Path, capsys) -> None:
    _wav(tmp_path / "lists" / "wav" / "a.wav")
    _wav(tmp_path / "lists" / "wav" / "b.wav")
    listing = tmp_path / "lists" / "files.txt"
    listing.write_text("# two files\nwav/b.wav\n\nwav/a.wav\n")
    status, out, _ = _run([model_dir, "--list", listing, "--json"], capsys)
    assert status == 0
    assert [line.split('"file": "')[1].split('"')[0] for line in out.splitlines()] == [
        str(tmp_path / "lists" / "wav" / "b.wav"),
        str(tmp_path / "lists" / "wav" / "a.wav"),
    ]


def test_truncated_wav_is_transcribed_with_a_warning(model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    sf.write(path, sine_noise(2.0), SR, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[: 44 + 2 * SR])  # 1 s of the 2 s declared
    proc = _command([model_dir, path, "--json"])
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1
    assert (
        f"phonrec-transcribe: WARNING: {path}: truncated: 1.000 s of audio read, its header declares 2.000 s"
        in proc.stderr
    )


def test_unreadable_file_is_reported_and_the_others_transcribed(model_dir: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    status, out, err = _run([model_dir, bad, _wav(tmp_path / "good.wav"), "--json"], capsys)
    assert status == 1 and len(out.splitlines()) == 1 and "good.wav" in out
    assert f"phonrec-transcribe: {bad}: cannot read audio" in err


# --- 5. empty batch -------------------------------------------------------------------------------------


def test_empty_batch_returns_an_empty_list(model_dir: Path) -> None:
    assert Transcriber.from_pretrained(model_dir).transcribe_batch([]) == []


# --- 6. decoding as the recipes do ---------------------------------------------------------------------


def _durations_ms(result) -> list[float]:
    return [round(1000 * (e - s)) for _, s, e in result.spans]


def test_model_defaults_apply_min_duration_and_an_argument_overrides(model_dir: Path, tmp_path: Path) -> None:
    audio = _wav(tmp_path / "a.wav", 3.0)
    plain = Transcriber.from_pretrained(model_dir).transcribe(audio)
    assert min(_durations_ms(plain)) == 10  # the random model flickers: 10-ms phones without a minimum
    recipe = _copy(model_dir, tmp_path / "recipe")
    write_decoding_defaults(recipe, decoder="greedy", min_duration_ms=30)
    tr = Transcriber.from_pretrained(recipe)
    assert tr.decoder_config().min_duration == 3  # 30 ms of a 10-ms model
    result = tr.transcribe(audio)
    assert min(_durations_ms(result)) >= 30 and result.spans[-1][2] == plain.spans[-1][2]
    assert tr.transcribe(audio, min_duration_ms=0).spans == plain.spans  # the argument wins
    assert min(_durations_ms(tr.transcribe(audio, min_duration_ms=50))) >= 50


def test_beam_default_uses_the_model_directory_bigram(model_dir: Path, tmp_path: Path) -> None:
    audio = _wav(tmp_path / "a.wav", 2.0)
    recipe = _copy(model_dir, tmp_path / "recipe")
    bigram = PhoneBigram.fit([[1, 2, 1, 2], [2, 1]], num_phones=3)
    write_decoding_defaults(recipe, decoder="beam", min_duration_ms=20, phone_bigram=bigram)
    tr = Transcriber.from_pretrained(recipe)
    result = tr.transcribe(audio, posteriors=True)
    lp = torch.from_numpy(result.posteriors)
    expected = phone_beam_search(lp, lp.shape[0], bigram, blank=None, beam=8, lm_weight=0.5, min_duration=2)
    assert [tr.phone_set.symbols[s.phone] for s in expected] == result.phones
    no_lm = phone_beam_search(lp, lp.shape[0], None, blank=None, beam=8, lm_weight=0.5, min_duration=2)
    assert [s.phone for s in no_lm] != [s.phone for s in expected]  # the bigram changes the answer
    assert tr.transcribe(audio, decoder="greedy", min_duration_ms=0).phones != result.phones


def test_command_flags_override_the_defaults(model_dir: Path, tmp_path: Path, capsys) -> None:
    audio = _wav(tmp_path / "a.wav", 2.0)
    recipe = _copy(model_dir, tmp_path / "recipe")
    status, out, _ = _run([recipe, "--write-defaults", "--min-duration-ms", "30"], capsys)
    assert status == 0 and "decoder=greedy min_duration_ms=30.0" in out
    tr = Transcriber.from_pretrained(recipe)
    _, default, _ = _run([recipe, audio], capsys)
    _, override, _ = _run([recipe, audio, "--min-duration-ms", "0"], capsys)
    assert default.splitlines()[0] == f"{audio}: {' '.join(tr.transcribe(audio).phones)}"
    assert override.splitlines()[0] == f"{audio}: {' '.join(tr.transcribe(audio, min_duration_ms=0).phones)}"
    assert default != override


def test_write_defaults_fits_the_bigram_on_training_phones(model_dir: Path, tmp_path: Path, capsys) -> None:
    from helpers import make_noise_datadir

    from phonrec.model_dir import read_model_dir

    make_noise_datadir(tmp_path, [0.3, 0.4])  # phones "ah b" per utterance
    recipe = _copy(model_dir, tmp_path / "recipe")
    status, out, _ = _run([recipe, "--write-defaults", "--decoder", "beam", "--bigram-from", tmp_path / "data"], capsys)
    assert status == 0 and "+ phone_bigram.json" in out
    md = read_model_dir(recipe)
    ps = md.phone_set
    expected = PhoneBigram.fit([[ps.index("ah"), ps.index("b")]] * 2, num_phones=len(ps))
    assert md.decoding.decoder == "beam" and (md.phone_bigram.log_probs == expected.log_probs).all()


def test_lexicon_gives_words_with_times_and_a_words_tier(model_dir: Path, tmp_path: Path, capsys) -> None:
    audio = _wav(tmp_path / "a.wav", 2.0)
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("AB ah b\nBA b ah\nA ah\nB b\n")
    status, out, _ = _run(
        [model_dir, audio, "--lexicon", lexicon, "--min-duration-ms", "30", "--textgrid", tmp_path / "tg"], capsys
    )
    assert status == 0
    tr = Transcriber.from_pretrained(model_dir, lexicon=lexicon)
    result = tr.transcribe(audio, decoder="lexicon", min_duration_ms=30)
    assert result.words and [w for w, _, _ in result.word_spans] == result.words
    assert f"  words: {' '.join(result.words)}" in out.splitlines()
    assert f"  {result.word_spans[0][1]:8.3f} {result.word_spans[0][2]:8.3f}  {result.words[0]}" in out
    # each word spans its phones: its start and end are phone boundaries, words in order
    starts, ends = {s for _, s, _ in result.spans}, {e for _, _, e in result.spans}
    assert all(s in starts and e in ends and s < e for _, s, e in result.word_spans)
    assert all(a[2] <= b[1] for a, b in zip(result.word_spans, result.word_spans[1:]))
    tg = textgrid.openTextgrid(str(tmp_path / "tg" / "a.TextGrid"), includeEmptyIntervals=True)
    assert tg.tierNames == ("phones", "words")
    for name in tg.tierNames:
        entries = tg.getTier(name).entries
        assert entries[0].start == 0 and entries[-1].end == pytest.approx(2.0)
        assert all(a.end == pytest.approx(b.start) for a, b in zip(entries, entries[1:]))  # no gaps
    words = [e.label for e in tg.getTier("words").entries if e.label]
    assert words == result.words


def test_lexicon_decoder_without_lexicon_is_one_line(model_dir: Path, tmp_path: Path, capsys) -> None:
    status, _, err = _run([model_dir, _wav(tmp_path / "a.wav"), "--decoder", "lexicon"], capsys)
    assert status == 2 and "decoder='lexicon' needs a lexicon" in err


def test_jobs_give_the_same_output_as_one_process(model_dir: Path, tmp_path: Path, capsys) -> None:
    files = [_wav(tmp_path / f"{i}.wav", 0.5 + 0.25 * i, seed=i) for i in range(4)]
    _, one, _ = _run([model_dir, *files, "--json"], capsys)
    status, two, err = _run([model_dir, *files, "--json", "--jobs", "2"], capsys)
    assert status == 0 and two == one and len(one.splitlines()) == 4
    assert "files" not in err  # stderr is not a terminal here: no progress bar
