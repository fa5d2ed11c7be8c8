"""Bad input at every entry point: each gets an error naming the file / line / utterance and the
reason, or the defined behaviour written in docs/reliability.md.

Complements tests/test_audio.py (load_audio's bad files), test_corpora.py (TIMIT / TextGrid
readers), test_phones.py, test_lexicon.py and test_dataset.py, which are not repeated here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF
from helpers import compose_cfg, make_model_dir, make_noise_datadir, noise_overrides, sine_noise
from omegaconf import OmegaConf

from phonrec.align import align_batch, align_ctc, align_frames
from phonrec.audio import AudioError
from phonrec.data.datadir import DataDir, DataDirError, read_kaldi_map
from phonrec.data.dataset import FeatureCache
from phonrec.data.segments import Segment, segments_to_frame_labels
from phonrec.data.textgrid import read_textgrid
from phonrec.data.timit import read_phn
from phonrec.decode.greedy import greedy, greedy_batch
from phonrec.decode.lexicon import LexiconDecoder
from phonrec.divergences import aligned_divergence, ctc_divergence, weighted_frame_divergence
from phonrec.features import FeatureConfig
from phonrec.lexicon import Lexicon, LexiconError
from phonrec.models.bilstm import BiLSTM, BiLSTMConfig
from phonrec.phones import PhoneSet, PhoneSetError
from phonrec.train import run
from phonrec.transcribe import Transcriber

SR = 16000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return make_model_dir(tmp_path_factory.mktemp("bad_input"))


@pytest.fixture(scope="module")
def transcriber(model_dir: Path) -> Transcriber:
    return Transcriber.from_pretrained(model_dir)


# --- Transcriber.transcribe ----------------------------------------------------------------------


def _bad_audio_files(root: Path) -> dict[str, tuple[Path, str]]:
    files = {}
    (root / "empty.wav").write_bytes(b"")
    files["empty file"] = (root / "empty.wav", "cannot read audio")
    (root / "notes.flac").write_text("not audio\n" * 50)
    files["text file"] = (root / "notes.flac", "cannot read audio")
    good = root / "good.flac"
    sf.write(good, sine_noise(1.0), SR, subtype="PCM_16")
    (root / "truncated.flac").write_bytes(good.read_bytes()[:30])
    files["truncated header"] = (root / "truncated.flac", "cannot read audio")
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    files["corrupt"] = (root / "corrupt.wav", "cannot read audio")
    sf.write(root / "zero_samples.wav", np.zeros(0, np.int16), SR, subtype="PCM_16")
    files["zero samples"] = (root / "zero_samples.wav", "empty")
    x = sine_noise(1.0)
    x[123] = np.nan
    sf.write(root / "nan.wav", x, SR, subtype="FLOAT")
    files["nan"] = (root / "nan.wav", "non-finite")
    x[123] = -np.inf
    sf.write(root / "inf.wav", x, SR, subtype="FLOAT")
    files["inf"] = (root / "inf.wav", "non-finite")
    x[123] = 1e30  # finite, but its power spectrum overflows float32
    sf.write(root / "huge.wav", x, SR, subtype="FLOAT")
    files["huge amplitude"] = (root / "huge.wav", "peak")
    sf.write(root / "short.wav", np.zeros(100, np.float32), SR, subtype="FLOAT")
    files["shorter than a window"] = (root / "short.wav", "too short")
    files["missing"] = (root / "absent.wav", "")
    return files


def test_transcribe_bad_files_raise_audio_error_naming_the_file(transcriber: Transcriber, tmp_path: Path) -> None:
    for name, (path, reason) in _bad_audio_files(tmp_path).items():
        with pytest.raises(AudioError) as info:
            transcriber.transcribe(path)
        assert str(path) in str(info.value) and reason in str(info.value), f"{name}: {info.value}"


@pytest.mark.parametrize(
    "wave, reason",
    [
        (np.zeros(0, np.float32), "empty"),
        (np.r_[np.zeros(800, np.float32), np.nan], "non-finite"),
        (torch.full((800,), float("inf")), "non-finite"),
        (np.full(800, 1e30, np.float32), "peak"),
        (np.zeros((1600, 2), np.float32), r"looks like \(N, channels\)"),
    ],
)
def test_transcribe_bad_arrays(transcriber: Transcriber, wave, reason: str) -> None:
    with pytest.raises(AudioError, match=f"<array>.*{reason}"):
        transcriber.transcribe(wave, SR)


def test_transcribe_array_needs_its_rate(transcriber: Transcriber) -> None:
    with pytest.raises(ValueError, match="sample_rate is required"):
        transcriber.transcribe(np.zeros(SR, np.float32))
    with pytest.raises(ValueError, match="decoder must be"):
        transcriber.transcribe(np.zeros(SR, np.float32), SR, decoder="viterbi")  # type: ignore[arg-type]


def test_all_silent_audio_is_transcribed(transcriber: Transcriber, tmp_path: Path) -> None:
    """Defined behaviour: silence is valid input (features at the log floor), not an error."""
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR, np.int16), SR, subtype="PCM_16")
    result = transcriber.transcribe(path, posteriors=True)
    assert result.posteriors.shape == (98, 3) and np.isfinite(result.posteriors).all()
    # constant input -> one phone over the whole second, spans cover every frame
    assert result.spans[0][1] == 0.0 and result.spans[-1][2] == pytest.approx(0.9875)  # 98 frames + 7.5 ms


@pytest.mark.parametrize("rate, channels", [(16000, 2), (8000, 1), (48000, 1), (48000, 2), (44100, 2)])
def test_other_rates_and_stereo_match_an_independent_resample(
    transcriber: Transcriber, tmp_path: Path, rate: int, channels: int
) -> None:
    x = np.stack([sine_noise(2.0, rate, seed=c) for c in range(channels)], axis=1) * 0.5  # (N, C)
    path = tmp_path / f"in_{rate}_{channels}.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    mono = torch.from_numpy(x.mean(axis=1).astype(np.float32))
    expected = transcriber.log_probs_batch([AF.resample(mono, rate, SR) if rate != SR else mono])[0]
    from_file = transcriber.transcribe(path, posteriors=True)
    from_array = transcriber.transcribe(torch.from_numpy(x.T.copy()), rate, posteriors=True)  # (C, N)
    torch.testing.assert_close(torch.from_numpy(from_file.posteriors), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.from_numpy(from_array.posteriors), expected, atol=1e-5, rtol=0)
    assert from_file.phones == from_array.phones


def test_long_file_with_nan_names_the_file(transcriber: Transcriber, tmp_path: Path) -> None:
    x = sine_noise(40.0)
    x[35 * SR] = np.nan
    path = tmp_path / "long_nan.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"long_nan\.wav.*non-finite"):
        transcriber.transcribe(path)


def test_long_file_with_huge_amplitude_names_the_file(transcriber: Transcriber, tmp_path: Path) -> None:
    x = sine_noise(40.0)
    x[35 * SR] = 1e30
    path = tmp_path / "long_huge.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"long_huge\.wav.*peak"):
        transcriber.transcribe(path)


# --- data directories, feature cache, training ---------------------------------------------------


def test_text_files_that_are_not_utf8_name_file_and_line(tmp_path: Path) -> None:
    bad = b"a 1\nb \xe9t\xe9\n"
    for name, reader, error in [
        ("wav.scp", read_kaldi_map, DataDirError),
        ("phones.txt", PhoneSet.from_file, PhoneSetError),
        ("lexicon.txt", Lexicon.from_kaldi, LexiconError),
        ("x.phn", read_phn, ValueError),
    ]:
        (tmp_path / name).write_bytes(bad)
        with pytest.raises(error, match=rf"{name}:2: not UTF-8 text \(byte 0xe9"):
            reader(tmp_path / name)


def test_byte_order_mark_is_not_part_of_the_first_key(tmp_path: Path) -> None:
    (tmp_path / "phones.txt").write_bytes("\ufeffsil\nah\n".encode())
    assert PhoneSet.from_file(tmp_path / "phones.txt").symbols == ("sil", "ah")
    (tmp_path / "text").write_bytes("\ufeffutt1 HELLO\r\nutt2 WORLD\r\n".encode())
    assert read_kaldi_map(tmp_path / "text") == {"utt1": "HELLO", "utt2": "WORLD"}


@pytest.mark.parametrize(
    "content, match",
    [
        ("u1 a.wav\nu1 b.wav\n", r"wav\.scp:2: duplicate key 'u1'"),
        ("u1 a.wav\nu2\n", r"wav\.scp:2: utterance 'u2' has no value"),
    ],
)
def test_malformed_wav_scp(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "wav.scp").write_text(content)
    with pytest.raises(DataDirError, match=match):
        DataDir.load(tmp_path)


def test_missing_audio_files_are_counted_and_named_in_the_log(tmp_path: Path, caplog) -> None:
    data = make_noise_datadir(tmp_path, [0.3, 0.35, 0.4, 0.45, 0.5])
    data.wavs["u001"].unlink()
    data.wavs["u003"].unlink()
    with caplog.at_level(logging.WARNING):
        cache = FeatureCache.build(data, FeatureConfig(n_mels=20), tmp_path / "cache", progress=False)
    assert sorted(cache.index) == ["u000", "u002", "u004"] and sorted(cache.bad) == ["u001", "u003"]
    assert "2 of 5 utterances could not be loaded" in caplog.text
    assert "u001: " in caplog.text and "u003: " in caplog.text and "no such file" in caplog.text


def test_training_skips_and_counts_bad_utterances(tmp_path: Path, caplog) -> None:
    """A corpus with five kinds of bad utterance trains on the good ones; each bad one is named."""
    data = make_noise_datadir(tmp_path, [0.3 + 0.02 * i for i in range(10)], bad=("u001",))  # u001: not audio
    data.wavs["u002"].unlink()  # missing file
    sf.write(data.wavs["u003"], np.zeros(200, np.float32), SR)  # shorter than one window
    data.alignments["u004"][3] = "zz"  # a phone outside data.phones
    data.alignments["u005"] = data.alignments["u005"][:-10]  # alignment 10 frames short
    data.save(tmp_path / "data")
    (tmp_path / "phones.txt").write_text("sil\nah\nb\n")
    cfg = compose_cfg(
        noise_overrides(tmp_path, tmp_path / "data", [f"data.phones={tmp_path / 'phones.txt'}", "trainer.epochs=1"])
    )
    with caplog.at_level(logging.INFO):
        metrics = run(0, 1, cfg)
    assert np.isfinite(metrics["train_loss"])
    assert "train: 5 utterances (5 skipped)" in caplog.text
    for utt, reason in [
        ("u001", "cannot read audio"),
        ("u002", "no such file"),
        ("u003", "too short"),
        ("u004", "unknown phone 'zz'"),
        ("u005", "alignment has"),
    ]:
        assert any(utt in r.getMessage() and reason in r.getMessage() for r in caplog.records), (
            utt,
            caplog.text[-2000:],
        )


def test_decode_cli_skips_unreadable_utterances(model_dir: Path, tmp_path: Path, caplog) -> None:
    from phonrec.cli.decode import run as decode_run

    data = make_noise_datadir(tmp_path, [0.3, 0.4, 0.5, 0.6], bad=("u002",))
    data.wavs["u000"].unlink()
    cfg = OmegaConf.create(
        {
            "model_dir": str(model_dir),
            "data_dir": str(tmp_path / "data"),
            "out_dir": str(tmp_path / "out"),
            "jobs": 1,
            "batch_size": 2,
            "num_threads": 1,
            "device": "cpu",
            "decoder": {"name": "greedy"},
        }
    )
    with caplog.at_level(logging.WARNING):
        summary = decode_run(cfg)
    assert sorted(summary["skipped"]) == ["u000", "u002"] and summary["utterances"] == 2
    assert "2 utterances could not be loaded" in caplog.text
    hyp_ids = [line.split()[0] for line in (tmp_path / "out" / "hyp.txt").read_text().splitlines()]
    assert hyp_ids == ["u001", "u003"]


# --- lexicon decoding ----------------------------------------------------------------------------


def test_lexicon_with_phones_outside_the_phone_set_is_an_error() -> None:
    lex = Lexicon()
    lex.add("CAT", ["k", "ae", "t"])
    lex.add("AH", ["ah"])
    with pytest.raises(ValueError, match=r"lexicon word 'CAT': phone 'k' is not in the 3-symbol phone set"):
        LexiconDecoder(lex, PhoneSet.from_symbols(["sil", "ah", "b"]))


def test_model_lexicon_with_unknown_phones_fails_at_first_lexicon_decode(model_dir: Path, tmp_path: Path) -> None:
    lexdir = tmp_path / "m"
    lexdir.mkdir()
    for f in model_dir.iterdir():
        (lexdir / f.name).write_bytes(f.read_bytes())
    (lexdir / "lexicon.txt").write_text("AB ah b\nKAY k ey\n")
    tr = Transcriber.from_pretrained(lexdir)
    assert tr.transcribe(np.zeros(SR, np.float32), SR).phones  # other decoders are unaffected
    with pytest.raises(ValueError, match="lexicon word 'KAY': phone 'k'"):
        tr.transcribe(np.zeros(SR, np.float32), SR, decoder="lexicon")


def test_out_of_vocabulary_speech_decodes_to_in_vocabulary_words() -> None:
    """Defined behaviour: the search can only output lexicon words; speech of an OOV word comes
    out as the best-scoring in-vocabulary words (scored as word errors), never as the OOV word."""
    ps = PhoneSet.from_symbols(["sil", "ah", "b", "k"])
    lex = Lexicon()
    lex.add("AB", ["ah", "b"])
    lex.add("KAY", ["k"])
    frames = [0] * 3 + [2] * 4 + [1] * 4 + [0] * 3  # "b ah": the OOV word BA
    lp = np.full((len(frames), 4), np.log(0.02), np.float32)
    lp[np.arange(len(frames)), frames] = np.log(0.94)
    hyp = LexiconDecoder(lex, ps).decode(lp)[0]
    assert hyp.words and set(hyp.words) <= {"AB", "KAY"}
    assert np.isfinite(hyp.score)


# --- TextGrid and .phn ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, match",
    [
        ("0 100 h#\n50 200 sh\n", r"x\.phn:2: segment starts at sample 50, before the previous one ends \(100\)"),
        ("0 100 h#\n-5 200 sh\n", r"x\.phn:2: expected 0 <= start <= end"),
        ("0 1.5e3 h#\n", r"x\.phn:1: sample indices must be integers"),
    ],
)
def test_malformed_phn(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "x.phn").write_text(content)
    with pytest.raises(ValueError, match=match):
        read_phn(tmp_path / "x.phn")


def test_malformed_textgrids(tmp_path: Path) -> None:
    path = tmp_path / "t.TextGrid"
    path.write_bytes(b"ooBinaryFile\x08TextGrid" + bytes(40))
    with pytest.raises(ValueError, match=r"t\.TextGrid"):
        read_textgrid(path)
    path.write_text("")
    with pytest.raises(ValueError, match=r"t\.TextGrid:\d+: file ends"):
        read_textgrid(path)
    path.write_text(
        'File type = "ooTextFile"\nObject class = "TextGrid"\nxmin = 0\nxmax = 1\ntiers? <exists>\n'
        'size = 1\nitem []:\n item [1]:\n  class = "IntervalTier"\n  name = "p"\n  xmin = 0\n  xmax = 1\n'
        '  intervals: size = 1\n  intervals [1]:\n   xmin = 0\n   xmax = 1\n   text = "unterminated\n'
    )
    with pytest.raises(ValueError, match=r"t\.TextGrid:\d+: unterminated string"):
        read_textgrid(path)


def test_overlapping_segments_name_the_utterance() -> None:
    with pytest.raises(ValueError, match="utt7: segments overlap"):
        segments_to_frame_labels([Segment("a", 0.0, 0.5), Segment("b", 0.3, 0.8)], 80, source="utt7")


# --- public functions given wrongly shaped tensors -------------------------------------------------

_LP = torch.randn(2, 5, 3).log_softmax(-1)
_LEN = torch.tensor([5, 4])
_MODEL = BiLSTM(4, 3, BiLSTMConfig(hidden=4, layers=1, dropout=0.0))

_SHAPE_CASES = {
    "ctc 1-D targets": (
        lambda: ctc_divergence(_LP, _LEN, torch.tensor([1, 2]), torch.tensor([1, 1])),
        r"targets must be an integer tensor \(B=2, S\)",
    ),
    "ctc target_lengths > S": (
        lambda: ctc_divergence(_LP, _LEN, torch.tensor([[1, 2], [1, 2]]), torch.tensor([1, 3])),
        r"target_lengths must satisfy 0 <= target_lengths <= S=2",
    ),
    "ctc float lengths": (
        lambda: ctc_divergence(_LP, _LEN.float(), torch.tensor([[1], [2]]), torch.tensor([1, 1])),
        r"lengths must be an integer tensor \(B=2,\)",
    ),
    "ctc blank as target": (
        lambda: ctc_divergence(_LP, _LEN, torch.tensor([[0], [2]]), torch.tensor([1, 1])),
        r"never the blank",
    ),
    "aligned lengths for 3": (
        lambda: aligned_divergence(_LP, torch.tensor([5, 5, 5]), torch.zeros(2, 5, dtype=torch.long)),
        r"lengths must be an integer tensor \(B=2,\)",
    ),
    "frame 2-D log_probs": (
        lambda: weighted_frame_divergence(_LP[0], _LEN, torch.tensor([0, 1])),
        r"log_probs must be a float tensor \(B, T, K\)",
    ),
    "frame labels (B, 1)": (
        lambda: weighted_frame_divergence(_LP, _LEN, torch.tensor([[0], [1]])),
        r"labels must be an integer tensor \(B=2,\)",
    ),
    "bilstm float lengths": (
        lambda: _MODEL(torch.randn(2, 5, 4), torch.tensor([5.0, 4.0])),
        r"lengths must be an integer tensor of shape \(B=2,\)",
    ),
    "bilstm lengths for 3": (
        lambda: _MODEL(torch.randn(2, 5, 4), torch.tensor([5, 4, 3])),
        r"lengths must be an integer tensor of shape \(B=2,\)",
    ),
    "bilstm (T, F) feats": (lambda: _MODEL(torch.randn(5, 4), torch.tensor([5])), r"feats must be \(B, T, F=4\)"),
    "bilstm zero length": (lambda: _MODEL(torch.randn(2, 5, 4), torch.tensor([5, 0])), r"1 <= lengths <= T=5"),
    "greedy_batch (T, K)": (lambda: greedy_batch(_LP[0], [5]), r"expected shape \(B, T, K\)"),
    "greedy_batch lengths for 3": (lambda: greedy_batch(_LP, [5, 4, 3]), r"expected 2 entries"),
    "greedy_batch length > T": (lambda: greedy_batch(_LP, [5, 6]), r"lengths must lie in \[0, T=5\]"),
    "greedy_batch blank out of range": (lambda: greedy_batch(_LP, [5, 4], blank=3), r"blank id 3 outside"),
    "greedy (B, T, K)": (lambda: greedy(_LP), r"expected shape \(T, K\)"),
    "greedy NaN": (lambda: greedy(torch.full((4, 3), float("nan"))), r"contains NaN"),
    "align_ctc target out of range": (lambda: align_ctc(_LP[0], [1, 7]), r"targets\[1\] = 7 outside \[0, K=3\)"),
    "align_ctc too many targets": (
        lambda: align_ctc(_LP[0], [1, 1, 1, 1]),
        r"cannot align 4 targets \(needing 7 CTC frames\) to 5",
    ),
    "align_frames no targets": (lambda: align_frames(_LP[0], []), r"at least one target"),
    "align_batch mismatched": (lambda: align_batch(_LP, [5], [[1], [2]], blank=0), r"batch of 2: got 1 lengths and 2"),
    "align_batch names the item": (
        lambda: align_batch(_LP, [5, 1], [[1], [1, 2]], blank=0),
        r"batch item 1: cannot align",
    ),
}


@pytest.mark.parametrize("case", sorted(_SHAPE_CASES))
def test_wrong_shapes_are_value_errors_saying_what_was_expected(case: str) -> None:
    call, match = _SHAPE_CASES[case]
    with pytest.raises(ValueError, match=match):
        call()
