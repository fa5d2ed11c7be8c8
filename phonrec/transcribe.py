"""The transcription API: a trained model directory -> phones with times.

Example::

    from phonrec import Transcriber
    tr = Transcriber.from_pretrained("exp/synth/aligned/model")
    result = tr.transcribe("a.wav")
    for phone, start, end in result.spans:
        print(f"{start:6.2f} {end:6.2f} {phone}")

The command ``phonrec-transcribe`` over this class is :mod:`phonrec.cli.transcribe`.

Long recordings are processed in chunks of ``chunk_seconds`` with ``context_seconds`` of extra
audio on each side; only each chunk's centre frames are kept, so the stitched posteriors
match a whole-file pass away from the edges while memory stays bounded by the chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import soundfile as sf
import torch

from phonrec.audio import AudioError, load_audio, validate_waveform
from phonrec.decode.beam import phone_beam_search
from phonrec.decode.greedy import greedy
from phonrec.decode.lexicon import LexiconDecoder
from phonrec.features import CMVN, FeatureConfig, compute_features, normalise, num_frames
from phonrec.lexicon import Lexicon
from phonrec.model_dir import read_model_dir
from phonrec.models.bilstm import BiLSTM
from phonrec.phones import PhoneSet
from phonrec.spans import Span, frames_to_seconds

DecoderName = Literal["greedy", "beam", "lexicon"]


@dataclass
class Transcription:
    """What :meth:`Transcriber.transcribe` returns.

    Attributes:
        phones: decoded phone symbols (silence included when the model emits it).
        spans: ``(phone, start_seconds, end_seconds)`` per phone.
        words: decoded words (lexicon decoder only), else ``None``.
        posteriors: ``(T, K)`` per-frame log-probabilities when asked for, else ``None``.
    """

    phones: list[str]
    spans: list[tuple[str, float, float]]
    words: list[str] | None = None
    posteriors: np.ndarray | None = field(default=None, repr=False)


class Transcriber:
    """A loaded model directory (``config.yaml``, ``model.safetensors``, ``phones.txt``, ``cmvn.json``)."""

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
    ) -> None:
        self.model = model.to(device).eval()
        self.phone_set, self.feature_config, self.cmvn, self.cmvn_mode = phone_set, feature_config, cmvn, cmvn_mode
        self.lexicon, self.device = lexicon, torch.device(device)
        self.hop_ms = hop_ms * subsample  # milliseconds per output frame
        self._lexicon_decoder = None

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str = "cpu") -> "Transcriber":
        """Load a model directory written by ``phonrec-train`` (:func:`phonrec.model_dir.read_model_dir`).
        Weights load without executing code."""
        md = read_model_dir(model_dir)
        return cls(
            md.model,
            md.phone_set,
            md.features,
            md.cmvn,
            md.cmvn_mode,
            lexicon=md.lexicon,
            device=device,
            hop_ms=md.features.hop_ms,
            subsample=md.model.cfg.frame_factor,
        )

    # --- posteriors --------------------------------------------------------------------------
    @torch.no_grad()
    def log_probs_batch(self, waves: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Per-frame log-probabilities for several waveforms in one padded forward pass.

        Args:
            waves: each ``(N_i,)`` float32 at ``feature_config.sample_rate``.
        Returns:
            one ``(T_i, K)`` tensor per waveform.
        """
        feats = [normalise(compute_features(w, self.feature_config), self.cmvn_mode, self.cmvn) for w in waves]
        lengths = torch.tensor([f.shape[0] for f in feats])
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(self.device)
        log_probs, out_lengths = self.model(padded, lengths.to(self.device))
        return [lp[: int(n)].float().cpu() for lp, n in zip(log_probs, out_lengths)]

    def log_probs(
        self, wave: torch.Tensor, *, chunk_seconds: float = 30.0, context_seconds: float = 2.0
    ) -> torch.Tensor:
        """``(T, K)`` log-probabilities of one waveform ``(N,)``, chunked when it is long."""
        sr = self.feature_config.sample_rate
        if wave.shape[0] <= (chunk_seconds + 2 * context_seconds) * sr:
            return self.log_probs_batch([wave])[0]
        return self._chunked(lambda start, stop: wave[start:stop], wave.shape[0], chunk_seconds, context_seconds)

    def _chunked(self, read, total: int, chunk_seconds: float, context_seconds: float) -> torch.Tensor:
        """Stitch the centre frames of overlapping chunks. ``read(start, stop)`` returns samples."""
        cfg = self.feature_config
        hop = int(round(cfg.sample_rate * cfg.hop_ms / 1000)) * (int(round(self.hop_ms / cfg.hop_ms)))
        chunk = max(1, int(chunk_seconds * cfg.sample_rate) // hop) * hop
        context = int(context_seconds * cfg.sample_rate) // hop * hop
        expected = num_frames(total, cfg.sample_rate, cfg.win_ms, cfg.hop_ms) // int(round(self.hop_ms / cfg.hop_ms))
        pieces: list[torch.Tensor] = []
        for start in range(0, total, chunk):
            lo = max(0, start - context)
            wave = read(lo, min(total, start + chunk + context))
            if wave.shape[0] < int(cfg.sample_rate * cfg.win_ms / 1000):
                break
            lp = self.log_probs_batch([wave])[0]
            skip = (start - lo) // hop
            pieces.append(lp[skip : skip + chunk // hop])
        return torch.cat(pieces)[:expected]

    # --- decoding ----------------------------------------------------------------------------
    def _decode(self, log_probs: torch.Tensor, decoder: DecoderName) -> tuple[list[Span], list[str] | None]:
        blank = self.phone_set.blank_id
        if decoder == "greedy":
            return greedy(log_probs, blank=blank), None
        if decoder == "beam":
            return phone_beam_search(log_probs, log_probs.shape[0], None, blank=blank), None
        if decoder == "lexicon":
            if self.lexicon is None:
                raise ValueError("decoder='lexicon' needs a lexicon.txt in the model directory")
            if self._lexicon_decoder is None:
                self._lexicon_decoder = LexiconDecoder(self.lexicon, self.phone_set)
            hyp = self._lexicon_decoder.decode(log_probs)[0]
            return hyp.spans, hyp.words
        raise ValueError(f"decoder must be 'greedy', 'beam' or 'lexicon', got {decoder!r}")

    def _result(self, log_probs: torch.Tensor, decoder: DecoderName, posteriors: bool) -> Transcription:
        spans, words = self._decode(log_probs, decoder)
        symbols = self.phone_set.symbols
        timed = [
            (symbols[s.phone], frames_to_seconds(s.start, self.hop_ms), frames_to_seconds(s.end, self.hop_ms))
            for s in spans
        ]
        return Transcription(
            phones=[p for p, _, _ in timed],
            spans=timed,
            words=words,
            posteriors=log_probs.numpy() if posteriors else None,
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
        decoder: DecoderName = "greedy",
        *,
        posteriors: bool = False,
    ) -> Transcription:
        """Transcribe one recording (a file path, or an array with its ``sample_rate``).

        Files longer than about half a minute are read and processed in chunks (bounded memory).
        """
        if isinstance(audio, (str, Path)) and self._is_long_file(Path(audio)):
            return self._result(self._file_log_probs_chunked(Path(audio)), decoder, posteriors)
        return self._result(self.log_probs(self._wave(audio, sample_rate)), decoder, posteriors)

    def transcribe_batch(
        self,
        audios: Sequence[str | Path | np.ndarray | torch.Tensor],
        sample_rate: int | None = None,
        decoder: DecoderName = "greedy",
        *,
        posteriors: bool = False,
    ) -> list[Transcription]:
        """Transcribe several recordings with one padded forward pass."""
        waves = [self._wave(a, sample_rate) for a in audios]
        return [self._result(lp, decoder, posteriors) for lp in self.log_probs_batch(waves)]

    # --- long files --------------------------------------------------------------------------
    LONG_FILE_SECONDS = 34.0

    def _is_long_file(self, path: Path) -> bool:
        if not path.is_file():
            raise AudioError(f"{path}: no such file")
        try:
            info = sf.info(str(path))
        except Exception as e:
            raise AudioError(f"{path}: cannot read audio ({e})") from None
        return info.frames / info.samplerate > self.LONG_FILE_SECONDS

    def _file_log_probs_chunked(
        self, path: Path, chunk_seconds: float = 30.0, context_seconds: float = 2.0
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

        return self._chunked(read, total, chunk_seconds, context_seconds)
