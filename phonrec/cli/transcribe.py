"""``phonrec-transcribe MODEL_DIR a.wav b.flac [--decoder ...] [--textgrid OUT_DIR] [--json]``:
print phones with times for audio files (``python -m phonrec.cli.transcribe``), over
:class:`phonrec.transcribe.Transcriber`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import soundfile as sf

from phonrec.audio import AudioError
from phonrec.data.segments import Segment
from phonrec.data.textgrid import write_textgrid
from phonrec.transcribe import Transcriber


def main(argv: list[str] | None = None) -> None:
    """``phonrec-transcribe MODEL_DIR a.wav ... [--decoder greedy|beam|lexicon] [--textgrid DIR] [--json]``."""
    parser = argparse.ArgumentParser(prog="phonrec-transcribe", description="Print phones with times for audio files.")
    parser.add_argument("model_dir", help="model directory written by phonrec-train")
    parser.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg, sph)")
    parser.add_argument("--decoder", default="greedy", choices=["greedy", "beam", "lexicon"])
    parser.add_argument("--textgrid", metavar="DIR", help="also write one Praat TextGrid per file into DIR")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    tr = Transcriber.from_pretrained(args.model_dir, device=args.device)
    status = 0
    for path in args.audio:
        try:
            result = tr.transcribe(path, decoder=args.decoder)
        except (AudioError, ValueError, OSError) as e:
            print(f"phonrec-transcribe: {e}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            print(
                json.dumps(
                    {
                        "file": path,
                        "phones": result.phones,
                        "words": result.words,
                        "spans": [{"phone": p, "start": round(s, 3), "end": round(e, 3)} for p, s, e in result.spans],
                    }
                )
            )
        else:
            print(f"{path}: {' '.join(result.phones)}")
            if result.words is not None:
                print(f"  words: {' '.join(result.words)}")
            for p, s, e in result.spans:
                print(f"  {s:8.3f} {e:8.3f}  {p}")
        if args.textgrid:
            out = Path(args.textgrid)
            out.mkdir(parents=True, exist_ok=True)
            info = sf.info(path)
            write_textgrid(
                out / (Path(path).stem + ".TextGrid"),
                {"phones": [Segment(p, s, e) for p, s, e in result.spans]},
                info.frames / info.samplerate,
            )
    sys.exit(status)


if __name__ == "__main__":
    main()
