"""The transcription API: a trained model directory -> phones with times.

Example::

    from phonrec import Transcriber
    tr = Transcriber.from_pretrained("exp/synth/aligned/model")  # or "en": the packaged English model
    result = tr.transcribe("a.wav")
    for phone, start, end in result.spans:
        print(f"{start:6.2f} {end:6.2f} {phone}")

The command ``phonrec-transcribe`` over this class is :mod:`phonrec.cli.transcribe`.

Decoding follows the model directory's ``decoding.yaml`` (:mod:`phonrec.model_dir`): the search its
recipe decodes with, its minimum phone duration (milliseconds, turned into model frames by
:func:`phonrec.decode.config.resolve_min_duration`), the beam's ``phone_bigram.json`` and the
lexicon. Each of ``decoder``, ``min_duration_ms`` and ``beam`` of :meth:`Transcriber.transcribe`
overrides its default; ``from_pretrained(dir, lexicon=FILE)`` replaces the lexicon.

Long recordings are processed in chunks of ``chunk_seconds`` with ``context_seconds`` of extra
audio on each side; only each chunk's centre frames are kept, so the stitched posteriors
match a whole-file pass away from the edges while memory stays bounded by the chunk size.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, Mapping, Sequence

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from phonrec.audio import AudioError, load_audio, validate_waveform, warn_if_truncated
from phonrec.decode.config import (
    DecoderConfig,
    LexiconConfig,
    decoder_config_from,
    resolve_min_duration,
)
from phonrec.decode.lexicon import Hypothesis
from phonrec.decode.search import Search, build_search
from phonrec.features import CMVN, FeatureConfig, compute_features, normalise, num_frames, speaker_statistics
from phonrec.forced_align import Alignment, align_words, snap_alignment
from phonrec.lexicon import Lexicon
from phonrec.lm import PhoneBigram
from phonrec.model_dir import DECODERS, DecodingDefaults, read_model_dir
from phonrec.models.bilstm import BiLSTM
from phonrec.phones import PhoneSet
from phonrec.pretrained import resolve as resolve_model
from phonrec.pronounce import Pronouncer
from phonrec.spans import frames_to_seconds
from phonrec.spectral import PHONE_SNAP_MAX_SHIFT_MS, file_spectral_change, spectral_change
from phonrec.vad import SNAP_MAX_SHIFT_MS, energy_track, file_energy_track

DecoderName = Literal["greedy", "beam", "lexicon"]


@dataclass
class Transcription:
    """What :meth:`Transcriber.transcribe` returns.

    Attributes:
        phones: decoded phone symbols (silence included when the model emits it).
        spans: ``(phone, start_seconds, end_seconds)`` per phone.
        words: decoded words (lexicon decoder only), else ``None``.
        posteriors: ``(T, K)`` per-frame log-probabilities when asked for, else ``None``.
        word_spans: ``(word, start_seconds, end_seconds)`` per word (lexicon decoder only), else
            ``None``; a word spans its phones (silence between words belongs to no word).
    """

    phones: list[str]
    spans: list[tuple[str, float, float]]
    words: list[str] | None = None
    posteriors: np.ndarray | None = field(default=None, repr=False)
    word_spans: list[tuple[str, float, float]] | None = None


class Transcriber:
    """A loaded model directory (``config.yaml``, ``model.safetensors``, ``phones.txt``, ``cmvn.json``,
    and its decoding defaults).

    Attributes:
        progress: show a progress bar (stderr) over the chunks of long files.
    """

    def __init__(
        self,
        model: BiLSTM,
        phone_set: PhoneSet,
        feature_config: FeatureConfig,
        cmvn: CMVN | None,
        cmvn_mode: str,
        *,
        lexicon: Lexicon | None = None,
        device: str = "cpu",
        hop_ms: float = 10.0,
        subsample: int = 1,
        decoding: DecodingDefaults | None = None,
        phone_bigram: PhoneBigram | None = None,
    ) -> None:
        self.model = model.to(device).eval()
        self.phone_set, self.feature_config, self.cmvn, self.cmvn_mode = phone_set, feature_config, cmvn, cmvn_mode
        self.lexicon, self.device = lexicon, torch.device(device)
        self.hop_ms = hop_ms * subsample  # milliseconds per output frame
        self.decoding, self.phone_bigram = decoding or DecodingDefaults(), phone_bigram
        self.progress = False
        self._searches: dict[DecoderConfig, Search] = {}
        self._pronouncer: Pronouncer | None = None

    @classmethod
    def from_pretrained(
        cls, model_dir: str | Path, device: str = "cpu", *, lexicon: str | Path | Lexicon | None = None
    ) -> "Transcriber":
        """Load a model directory written by ``phonrec-train`` or ``phonrec-export``
        (:func:`phonrec.model_dir.read_model_dir`), or a model packaged with phonrec by name
        (``"en"``: :mod:`phonrec.pretrained`). Weights load without executing code.

        Args:
            model_dir: a model directory, or a name of :data:`phonrec.pretrained.NAMES`. A name
                that is also an existing directory (a folder ``en`` in the working directory) is
                read as that directory: the directory wins.
            lexicon: a lexicon (or its Kaldi-format file) used instead of the directory's ``lexicon.txt``.

        Raises:
            phonrec.pretrained.PretrainedModelError: a packaged name whose files are not in this
                installation (one line saying so).
        """
        md = read_model_dir(resolve_model(model_dir))
        if isinstance(lexicon, (str, Path)):
            lexicon = Lexicon.from_kaldi(lexicon)
        return cls(
            md.model,
            md.phone_set,
            md.features,
            md.cmvn,
            md.cmvn_mode,
            lexicon=lexicon if lexicon is not None else md.lexicon,
            device=device,
            hop_ms=md.features.hop_ms,
            subsample=md.model.cfg.frame_factor,
            decoding=md.decoding,
            phone_bigram=md.phone_bigram,
        )

    # --- posteriors --------------------------------------------------------------------------
    def speaker_statistics(self, waves: Iterable[torch.Tensor]) -> torch.Tensor | None:
        """The CMVN statistics ``(2, F)`` of one speaker's recordings (each ``(N_i,)`` at
        ``feature_config.sample_rate``) for a model trained with ``features.cmvn=speaker``
        (:func:`phonrec.features.speaker_statistics`); ``None`` for any other model, which needs none."""
        if self.cmvn_mode != "speaker":
            return None
        return speaker_statistics(compute_features(w, self.feature_config) for w in waves)

    def file_statistics(self, paths: Iterable[str | Path]) -> torch.Tensor | None:
        """:meth:`speaker_statistics` of the audio files ``paths``, all one speaker's, read one at a
        time (one file in memory at once); a file that cannot be read is left out (whoever
        transcribes it reports why). ``None`` for a model that needs no statistics, or when no file
        could be read."""
        if self.cmvn_mode != "speaker":
            return None

        def readable() -> Iterator[torch.Tensor]:
            for path in paths:
                try:
                    yield load_audio(path, self.feature_config.sample_rate)
                except AudioError:
                    continue

        waves = readable()
        first = next(waves, None)
        return None if first is None else self.speaker_statistics(itertools.chain([first], waves))

    def speaker_batches(
        self,
        utts: Sequence[str],
        utt2spk: Mapping[str, str],
        read: Callable[[str], torch.Tensor | None],
        batch_size: int,
    ) -> Iterator[tuple[list[tuple[str, torch.Tensor]], torch.Tensor | None]]:
        """``(batch of (utt, waveform), speaker statistics)`` over ``utts``, at most ``batch_size`` a
        batch: the reading order of a data directory for :meth:`log_probs_batch`.

        A model trained with ``features.cmvn=speaker`` reads each speaker's (``utt2spk``)
        recordings together and every batch comes with their :meth:`speaker_statistics`; any
        other model reads ``batch_size`` recordings at a time in ``utts`` order, statistics ``None``.
        ``read(utt)`` returns the waveform, or ``None`` for one it could not read (it reports why).
        """
        if self.cmvn_mode == "speaker":  # each speaker's recordings read together
            groups: dict[str, list[str]] = {}
            for utt in utts:
                groups.setdefault(utt2spk[utt], []).append(utt)
            parts = list(groups.values())
        else:
            parts = [list(utts[i : i + batch_size]) for i in range(0, len(utts), batch_size)]
        for part in parts:
            waves = [(u, w) for u in part if (w := read(u)) is not None]
            if waves:
                stats = self.speaker_statistics(w for _, w in waves)
                for b in range(0, len(waves), batch_size):
                    yield waves[b : b + batch_size], stats

    @torch.no_grad()
    def log_probs_batch(
        self, waves: Sequence[torch.Tensor], *, speaker_stats: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Per-frame log-probabilities for several waveforms in one padded forward pass.

        Args:
            waves: each ``(N_i,)`` float32 at ``feature_config.sample_rate``.
            speaker_stats: ``(2, F)`` statistics of the speaker of every waveform
                (:meth:`speaker_statistics`), for a ``features.cmvn=speaker`` model; without them
                each recording is normalised by its own statistics.
        Returns:
            one ``(T_i, K)`` tensor per waveform.
        """
        feats = [
            normalise(compute_features(w, self.feature_config), self.cmvn_mode, self.cmvn, speaker_stats=speaker_stats)
            for w in waves
        ]
        lengths = torch.tensor([f.shape[0] for f in feats])
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(self.device)
        log_probs, out_lengths = self.model(padded, lengths.to(self.device))
        return [lp[: int(n)].float().cpu() for lp, n in zip(log_probs, out_lengths)]

    def log_probs(
        self,
        wave: torch.Tensor,
        *,
        chunk_seconds: float = 30.0,
        context_seconds: float = 2.0,
        speaker_stats: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(T, K)`` log-probabilities of one waveform ``(N,)``, chunked when it is long
        (``speaker_stats``: as :meth:`log_probs_batch`)."""
        sr = self.feature_config.sample_rate
        if wave.shape[0] <= (chunk_seconds + 2 * context_seconds) * sr:
            return self.log_probs_batch([wave], speaker_stats=speaker_stats)[0]
        return self._chunked(
            lambda start, stop: wave[start:stop], wave.shape[0], chunk_seconds, context_seconds, speaker_stats
        )

    def _chunked(
        self, read, total: int, chunk_seconds: float, context_seconds: float, speaker_stats: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Stitch the centre frames of overlapping chunks. ``read(start, stop)`` returns samples."""
        cfg = self.feature_config
        hop = int(round(cfg.sample_rate * cfg.hop_ms / 1000)) * (int(round(self.hop_ms / cfg.hop_ms)))
        chunk = max(1, int(chunk_seconds * cfg.sample_rate) // hop) * hop
        context = int(context_seconds * cfg.sample_rate) // hop * hop
        expected = num_frames(total, cfg.sample_rate, cfg.win_ms, cfg.hop_ms) // int(round(self.hop_ms / cfg.hop_ms))
        pieces: list[torch.Tensor] = []
        starts: Iterable[int] = range(0, total, chunk)
        if self.progress:
            starts = tqdm(starts, desc="chunks", unit="chunk", leave=False, file=sys.stderr)
        for start in starts:
            lo = max(0, start - context)
            wave = read(lo, min(total, start + chunk + context))
            if wave.shape[0] < int(cfg.sample_rate * cfg.win_ms / 1000):
                break
            lp = self.log_probs_batch([wave], speaker_stats=speaker_stats)[0]
            skip = (start - lo) // hop
            pieces.append(lp[skip : skip + chunk // hop])
        return torch.cat(pieces)[:expected]

    # --- decoding ----------------------------------------------------------------------------
    def decoder_config(
        self, decoder: DecoderName | None = None, *, min_duration_ms: float | None = None, beam: float | None = None
    ) -> DecoderConfig:
        """The search :meth:`transcribe` runs: the model's defaults (``decoding.yaml``) with the
        arguments given applied, and the minimum duration in model frames.

        Args:
            decoder: ``greedy``, ``beam`` or ``lexicon`` (``None``: the model's default).
            min_duration_ms: frame-level models: shortest phone in ms (``None``: the model's default,
                ``0``: no minimum). CTC models ignore it.
            beam: beam width (``beam``) or score beam (``lexicon``); ``None``: the search's default.

        Raises:
            ConfigError: an unknown decoder, a negative duration, or ``beam`` for the greedy search.
        """
        name = decoder or self.decoding.decoder
        if name not in DECODERS:
            raise ValueError(f"decoder must be 'greedy', 'beam' or 'lexicon', got {name!r}")
        values: dict[str, object] = {"name": name}
        ms = self.decoding.min_duration_ms if min_duration_ms is None else min_duration_ms
        if ms:
            values["min_duration_ms"] = float(ms)
        if beam is not None:
            values["beam"] = int(beam) if values["name"] == "beam" else float(beam)
        cfg = decoder_config_from(values)
        return resolve_min_duration(cfg, self.hop_ms, self.phone_set.blank_id is None)

    def prepare(
        self, decoder: DecoderName | None = None, *, min_duration_ms: float | None = None, beam: float | None = None
    ) -> DecoderConfig:
        """:meth:`decoder_config`, with its search built now (a bad lexicon fails before any audio is read)."""
        cfg = self.decoder_config(decoder, min_duration_ms=min_duration_ms, beam=beam)
        self._search(cfg)
        return cfg

    def _search(self, cfg: DecoderConfig) -> Search:
        """The search for ``cfg`` (:func:`phonrec.decode.search.build_search`), built once per config."""
        if cfg not in self._searches:
            if isinstance(cfg, LexiconConfig) and self.lexicon is None:
                raise ValueError(
                    "decoder='lexicon' needs a lexicon: a lexicon.txt in the model directory, "
                    "or Transcriber.from_pretrained(..., lexicon=FILE)"
                )
            self._searches[cfg] = build_search(
                cfg, self.phone_set, phone_bigram=self.phone_bigram, lexicon=self.lexicon
            )
        return self._searches[cfg]

    def _result(self, log_probs: torch.Tensor, cfg: DecoderConfig, posteriors: bool) -> Transcription:
        spans, hypothesis = self._search(cfg)(log_probs)
        words = None if hypothesis is None else word_frame_spans(hypothesis, self.lexicon, self.phone_set)
        symbols = self.phone_set.symbols

        def seconds(frames: int) -> float:
            return frames_to_seconds(frames, self.hop_ms)

        timed = [(symbols[s.phone], seconds(s.start), seconds(s.end)) for s in spans]
        return Transcription(
            phones=[p for p, _, _ in timed],
            spans=timed,
            words=None if words is None else [w for w, _, _ in words],
            posteriors=log_probs.numpy() if posteriors else None,
            word_spans=None if words is None else [(w, seconds(a), seconds(b)) for w, a, b in words],
        )

    def _wave(self, audio: str | Path | np.ndarray | torch.Tensor, sample_rate: int | None) -> torch.Tensor:
        if isinstance(audio, (str, Path)):
            return load_audio(audio, self.feature_config.sample_rate)
        if sample_rate is None:
            raise ValueError("sample_rate is required when audio is given as an array")
        wave = validate_waveform(audio, sample_rate, source="<array>")
        if sample_rate != self.feature_config.sample_rate:
            import torchaudio.functional as AF

            wave = AF.resample(wave, sample_rate, self.feature_config.sample_rate)
        return wave

    def transcribe(
        self,
        audio: str | Path | np.ndarray | torch.Tensor,
        sample_rate: int | None = None,
        decoder: DecoderName | None = None,
        *,
        posteriors: bool = False,
        min_duration_ms: float | None = None,
        beam: float | None = None,
        speaker_stats: torch.Tensor | None = None,
    ) -> Transcription:
        """Transcribe one recording (a file path, or an array with its ``sample_rate``).

        ``decoder``, ``min_duration_ms`` and ``beam`` override the model's decoding defaults
        (:meth:`decoder_config`). Files longer than about half a minute are read and processed in
        chunks (bounded memory). ``speaker_stats``: the speaker's :meth:`speaker_statistics`, for
        a model trained with ``features.cmvn=speaker`` (without them, the recording's own).
        """
        cfg = self.prepare(decoder, min_duration_ms=min_duration_ms, beam=beam)  # a missing lexicon fails first
        if isinstance(audio, (str, Path)) and self._is_long_file(Path(audio)):
            log_probs = self._file_log_probs_chunked(Path(audio), speaker_stats=speaker_stats)
        else:
            log_probs = self.log_probs(self._wave(audio, sample_rate), speaker_stats=speaker_stats)
        return self._result(log_probs, cfg, posteriors)

    def transcribe_batch(
        self,
        audios: Sequence[str | Path | np.ndarray | torch.Tensor],
        sample_rate: int | None = None,
        decoder: DecoderName | None = None,
        *,
        posteriors: bool = False,
        min_duration_ms: float | None = None,
        beam: float | None = None,
        speaker_stats: torch.Tensor | None = None,
    ) -> list[Transcription]:
        """Transcribe several recordings with one padded forward pass (``[]`` for no recordings);
        ``speaker_stats`` as :meth:`transcribe` (one speaker for all of them)."""
        cfg = self.decoder_config(decoder, min_duration_ms=min_duration_ms, beam=beam)
        if not audios:
            return []
        waves = [self._wave(a, sample_rate) for a in audios]
        return [self._result(lp, cfg, posteriors) for lp in self.log_probs_batch(waves, speaker_stats=speaker_stats)]

    # --- forced alignment --------------------------------------------------------------------
    def pronouncer(self) -> Pronouncer:
        """The default :class:`phonrec.pronounce.Pronouncer` of :meth:`align`: the model directory's
        lexicon (if any) over CMUdict over flite's letter-to-sound rules (built once)."""
        if self._pronouncer is None:
            self._pronouncer = Pronouncer([] if self.lexicon is None else [self.lexicon])
        return self._pronouncer

    def align(
        self,
        audio: str | Path | np.ndarray | torch.Tensor,
        text: str,
        *,
        sample_rate: int | None = None,
        pronouncer: Pronouncer | None = None,
        silence: bool = True,
        min_duration_ms: float | None = None,
        snap_ms: float | None = None,
        phone_snap_ms: float | None = None,
        utterance: str | None = None,
        speaker_stats: torch.Tensor | None = None,
    ) -> Alignment:
        """Force-align a transcript to one recording: word and phone intervals in seconds, each phone
        with its mean posterior (:func:`phonrec.forced_align.align_words`).

        Args:
            audio: a file path, or an array with its ``sample_rate``.
            text: the words spoken (punctuation and case are ignored: :meth:`Pronouncer.words`).
            pronouncer: where pronunciations come from (default :meth:`pronouncer`); words that no
                dictionary has are guessed and recorded in its ``guesses``.
            silence: allow silence between words.
            min_duration_ms: frame-level models: shortest phone (``None``: the model's decoding
                default, ``0``: one frame).
            snap_ms: each pause edge moves to the nearest rise or fall of the recording's energy
                within this many milliseconds, and pauses that are mostly speech are dropped
                (:func:`phonrec.forced_align.snap_alignment`; 0: the model's pauses as they are).
                ``None``: 50 ms for a CTC model, whose pauses are where its blanks are long, and 0
                for a frame-level model, which was trained on pauses (measured on unseen synthetic
                voices with the main job's frame model: 87.2 -> 87.8% of all boundaries within
                20 ms on awb, 86.3 -> 86.7% on the festival voices; ``docs/benchmarks.md``).
            phone_snap_ms: each edge between two phones moves to the strongest spectral change
                within this many milliseconds (:func:`phonrec.spectral.snap_phone_edges`; 0: the
                model's edges as they are). ``None``: 20 ms for a CTC model, whose spikes say little
                about where a phone starts, and 0 for a frame-level model, which was trained on
                boundaries (measured on unseen synthetic voices: 69.9 -> 77.1% of the packaged CTC
                model's boundaries within 20 ms, 84.1 -> 81.1% of a 10-ms frame model's;
                ``docs/benchmarks.md``). A frame-level model's phone edges are at their posterior
                expectation (:func:`phonrec.align.refine_phone_edges`; 85.9 -> 87.2% there).
            utterance: the name used in errors (default: the path, or ``<array>``).
            speaker_stats: the speaker's :meth:`speaker_statistics` (``features.cmvn=speaker`` models).

        Example::

            a = tr.align("a.wav", "the birch canoe")
            for p in a.phones:
                print(p.phone, p.start, p.end, p.score)

        Raises:
            PronunciationError: a word with unknown characters, or one nothing can pronounce.
            AudioError: unreadable audio.
            AlignmentError: a transcript too long for the audio (the numbers named).
        """
        source = utterance or (str(audio) if isinstance(audio, (str, Path)) else "<array>")
        words, prons = (pronouncer or self.pronouncer()).pronounce(text, source=source)  # before any audio
        rate = self.feature_config.sample_rate
        path, wave = None, None
        if isinstance(audio, (str, Path)):  # the tiers end where the file does (not its resampled copy)
            path = Path(audio)
            if self._is_long_file(path):
                log_probs = self._file_log_probs_chunked(path, speaker_stats=speaker_stats)
            else:
                wave = self._wave(path, None)
                log_probs = self.log_probs(wave, speaker_stats=speaker_stats)
            info = sf.info(str(path))
            duration = info.frames / info.samplerate
        else:
            wave = self._wave(audio, sample_rate)
            log_probs = self.log_probs(wave, speaker_stats=speaker_stats)
            duration = audio.shape[-1] / sample_rate  # type: ignore[operator]  # _wave checked sample_rate
        min_duration = self.decoder_config("greedy", min_duration_ms=min_duration_ms).min_duration
        alignment = align_words(
            log_probs,
            words,
            prons,
            self.phone_set,
            hop_ms=self.hop_ms,
            duration=duration,
            min_duration=min_duration,
            silence=silence,
            shift_ms=self.decoding.boundary_shift_ms,
            utterance=source,
        )
        ctc = self.phone_set.blank_id is not None  # only a CTC model's edges are fitted to the signal by default
        snap_ms = (SNAP_MAX_SHIFT_MS if ctc else 0.0) if snap_ms is None else snap_ms
        phone_snap_ms = (PHONE_SNAP_MAX_SHIFT_MS if ctc else 0.0) if phone_snap_ms is None else phone_snap_ms
        track = change = None
        if silence and snap_ms > 0:
            track = energy_track(wave.numpy(), rate) if wave is not None else file_energy_track(path)  # type: ignore[arg-type]
        if phone_snap_ms > 0:
            change = spectral_change(wave.numpy(), rate) if wave is not None else file_spectral_change(path)  # type: ignore[arg-type]
        if track is None and change is None:
            return alignment
        return snap_alignment(alignment, track, max_shift_ms=snap_ms, change=change, phone_shift_ms=phone_snap_ms)

    # --- long files --------------------------------------------------------------------------
    LONG_FILE_SECONDS = 34.0

    def _is_long_file(self, path: Path) -> bool:
        if not path.is_file():
            raise AudioError(f"{path}: no such file")
        try:
            info = sf.info(str(path))
        except Exception as e:
            raise AudioError(f"{path}: cannot read audio ({e})") from None
        long = info.frames / info.samplerate > self.LONG_FILE_SECONDS
        if long:  # load_audio reports a truncated short file
            warn_if_truncated(path, info.frames, info.samplerate)
        return long

    def _file_log_probs_chunked(
        self,
        path: Path,
        chunk_seconds: float = 30.0,
        context_seconds: float = 2.0,
        speaker_stats: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Read ``path`` chunk by chunk (soundfile seeks), never holding the whole waveform."""
        import torchaudio.functional as AF

        info = sf.info(str(path))
        sr_in, sr = info.samplerate, self.feature_config.sample_rate
        total = int(round(info.frames * sr / sr_in))

        def read(start: int, stop: int) -> torch.Tensor:
            a, b = int(start * sr_in / sr), int(np.ceil(stop * sr_in / sr))
            data, _ = sf.read(str(path), start=a, stop=b, dtype="float32", always_2d=True)
            wave = validate_waveform(torch.from_numpy(data.T), sr_in, source=f"{path} (samples {a}-{b})")
            if sr_in != sr:
                wave = AF.resample(wave, sr_in, sr)
            return wave[: stop - start]

        return self._chunked(read, total, chunk_seconds, context_seconds, speaker_stats)


def word_frame_spans(hyp: Hypothesis, lexicon: Lexicon, phone_set: PhoneSet) -> list[tuple[str, int, int]]:
    """``(word, start_frame, end_frame)`` per word of a lexicon-decoder hypothesis.

    The hypothesis spells its words' pronunciations with optional silences between them; each word
    is matched to the pronunciation that its phones spell (the longest that lets the next word
    follow), and spans its phones' frames.
    """
    sil = phone_set.silence_id
    phones, spans, words = hyp.phones, hyp.spans, hyp.words

    def matches(word: str, at: int) -> list[int]:
        """Lengths of ``word``'s pronunciations spelled at phone ``at``, longest first."""
        lengths = set()
        for pron in lexicon.pronunciations(word):
            ids = [phone_set.index(p) for p in pron]
            if phones[at : at + len(ids)] == ids:
                lengths.add(len(ids))
        return sorted(lengths, reverse=True)

    def can_start(word: str, at: int) -> bool:
        while True:
            if matches(word, at):
                return True
            if at < len(phones) and phones[at] == sil:
                at += 1
            else:
                return False

    out: list[tuple[str, int, int]] = []
    at = 0
    for i, word in enumerate(words):
        while not matches(word, at) and at < len(phones) and phones[at] == sil:
            at += 1
        lengths = matches(word, at)
        if not lengths:
            raise RuntimeError(f"word {word!r} is not spelled at phone {at} of the hypothesis {phones}")
        nxt = words[i + 1] if i + 1 < len(words) else None
        n = next((n for n in lengths if nxt is None or can_start(nxt, at + n)), lengths[0])
        out.append((word, spans[at].start, spans[at + n - 1].end))
        at += n
    return out
