"""Cut chosen words out of read sentences into a data directory of isolated-word recordings.

Each utterance of the input data directories whose transcript contains one of ``--words`` is
force-aligned with a phonrec model (:meth:`phonrec.transcribe.Transcriber.align`, the packaged
``en`` model by default); every occurrence of such a word becomes one FLAC clip, its aligned
interval widened by ``--pad-ms`` on each side (within the recording), at the recording's own
sample rate or resampled to ``--sample-rate`` (``8000`` band-limits 16 kHz speech to telephone
bandwidth, as FSDD's recordings are). The output data directory has ``wav.scp`` (the clips), ``text`` (the word),
``utt2spk`` (the source speaker, prefixed with ``--speaker-prefix``) and ``phones`` (the word's
first pronunciation in ``--lexicon``).

Used by ``recipes/fsdd/run.sh --so762 DIR``: speechocean762's ~410 spoken digits from 91
speakers, pooled with FSDD's three training speakers.

    python recipes/lib/word_clips.py data/speechocean762/train data/speechocean762/dev \\
        --words zero one two three four five six seven eight nine \\
        --lexicon data/fsdd/lexicon.txt --sample-rate 8000 --out data/fsdd/so762_digits
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import soundfile as sf
import torch
import torchaudio.functional as AF
from tqdm import tqdm

from phonrec.audio import load_audio
from phonrec.data.datadir import DataDir, log_skipped
from phonrec.lexicon import Lexicon
from phonrec.transcribe import Transcriber

logger = logging.getLogger("word_clips")


def clip_bounds(start: float, end: float, pad_s: float, num_samples: int, sample_rate: int) -> tuple[int, int]:
    """Sample range ``[first, last)`` of the word ``start..end`` seconds widened by ``pad_s``, within the file."""
    first = max(0, int(round((start - pad_s) * sample_rate)))
    last = min(num_samples, int(round((end + pad_s) * sample_rate)))
    return first, last


def read_native(path: Path) -> tuple[torch.Tensor, int]:
    """A recording as ``(samples,)`` mono at its own rate, with :func:`load_audio`'s checks and messages."""
    try:
        rate = sf.info(str(path)).samplerate
    except RuntimeError:  # missing or unreadable: load_audio raises naming the file and the reason
        rate = 16000
    return load_audio(path, rate), rate


def cut_word_clips(
    sources: list[DataDir],
    words: set[str],
    lexicon: Lexicon,
    out: Path,
    *,
    model: str = "en",
    pad_ms: float = 50.0,
    speaker_prefix: str = "",
    sample_rate: int | None = None,
) -> DataDir:
    """Align the utterances that contain ``words`` and write one clip per occurrence under ``out/wav``.

    Args:
        sources: data directories with word transcripts (any case).
        words: upper-case words to cut out; each must be in ``lexicon``.
        lexicon: gives the clips' ``phones`` (each word's first pronunciation).
        sample_rate: the clips' rate (resampled from the recording's); ``None`` keeps the recording's.

    Returns:
        The clips' data directory (also saved to ``out``). Utterances that cannot be read or
        aligned are reported by name and skipped.
    """
    missing = sorted(w for w in words if w not in lexicon)
    if missing:
        raise ValueError(f"words not in the lexicon: {missing}")
    tr = Transcriber.from_pretrained(model)
    wav_dir = out / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    clips = DataDir(wavs={}, text={}, utt2spk={}, phones={})
    skipped: dict[str, str] = {}
    todo = [(d, utt) for d in sources for utt in d.utts if words & set(d.text[utt].upper().split())]
    for data, utt in tqdm(todo, desc="align and cut", unit="utt"):
        try:  # read once, and align what was read
            audio, sr = read_native(data.wavs[utt])
            ali = tr.align(audio, data.text[utt], sample_rate=sr, utterance=utt)
        except (OSError, RuntimeError, ValueError) as e:  # unreadable audio, unalignable transcript
            skipped[utt] = str(e)
            continue
        for k, w in enumerate(ali.words):
            if w.word.upper() not in words:
                continue
            first, last = clip_bounds(w.start, w.end, pad_ms / 1000, len(audio), sr)
            name = f"{speaker_prefix}{utt}_{k}"
            path = wav_dir / f"{name}.flac"
            clip = audio[first:last]
            if sample_rate is not None and sample_rate != sr:
                clip = AF.resample(clip, orig_freq=sr, new_freq=sample_rate)
            sf.write(path, clip.numpy(), sample_rate or sr)
            clips.wavs[name] = path.resolve()
            clips.text[name] = w.word.upper()
            clips.utt2spk[name] = speaker_prefix + data.utt2spk[utt]
            clips.phones[name] = list(lexicon.pronunciations(w.word.upper())[0])
    log_skipped(logger, "word clips", skipped)
    if not clips.wavs:
        raise ValueError(f"no occurrence of {sorted(words)} could be cut out")
    clips.save(out)
    return clips


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("sources", nargs="+", type=Path, help="data directories with word transcripts")
    parser.add_argument("--words", nargs="+", required=True, help="the words to cut out (any case)")
    parser.add_argument("--lexicon", type=Path, required=True, help="Kaldi lexicon giving the clips' phones")
    parser.add_argument("--out", type=Path, required=True, help="the output data directory")
    parser.add_argument("--model", default="en", help="aligning model: a packaged name or a model directory")
    parser.add_argument("--pad-ms", type=float, default=50.0, help="silence kept on each side of a word")
    parser.add_argument("--sample-rate", type=int, help="resample the clips to this rate (default: the recording's)")
    parser.add_argument("--speaker-prefix", default="so762_", help="prefixed to clip and speaker ids")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if (args.out / "wav.scp").exists():  # never overwrite a data directory silently
        sys.exit(f"word_clips.py: {args.out} already holds a data directory: remove it or choose another --out")
    try:
        clips = cut_word_clips(
            [DataDir.load(p) for p in args.sources],
            {w.upper() for w in args.words},
            Lexicon.from_kaldi(args.lexicon),
            args.out,
            model=args.model,
            pad_ms=args.pad_ms,
            speaker_prefix=args.speaker_prefix,
            sample_rate=args.sample_rate,
        )
    except (OSError, ValueError) as e:  # a bad data dir, lexicon or model, named by the error; no traceback
        sys.exit(f"word_clips.py: {e}")
    print(f"{args.out}: {len(clips)} clips, {len(clips.speakers())} speakers")


if __name__ == "__main__":
    main()
