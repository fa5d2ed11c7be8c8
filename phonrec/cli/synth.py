"""``phonrec-synth``: write the synthetic corpus (:func:`phonrec.data.synth.build_corpus`).

``python -m phonrec.cli.synth OUT --num-utts N [--seed S] [--jobs J] [--test-voice V] [--text FILE]
[--dev-fraction F] [--speakers-per-voice K] [--quiet]``; the layout of ``OUT`` is in
:mod:`phonrec.data.synth`. Exit status 2, with the reason on stderr, for bad settings, a bad text
file, an ``OUT`` made with other settings or a missing synthesiser.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from phonrec.cli.errors import user_errors
from phonrec.data import synth
from phonrec.data.voices import VOICES


@user_errors("phonrec-synth")
def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``phonrec-synth OUT --num-utts N [--seed S] [--jobs J] [--test-voice V] [--text FILE]``."""
    p = argparse.ArgumentParser(prog="phonrec-synth", description=synth.__doc__.split("\n", 1)[0])
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--num-utts", type=int, required=True, help="utterances to generate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--test-voice", default="awb", choices=sorted(VOICES))
    p.add_argument("--text", type=Path, default=None, help="sentences, one per line, instead of generated text")
    p.add_argument("--dev-fraction", type=float, default=0.1)
    p.add_argument("--speakers-per-voice", type=int, default=4)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = synth.SynthConfig(
            num_utts=args.num_utts,
            seed=args.seed,
            test_voice=args.test_voice,
            dev_fraction=args.dev_fraction,
            speakers_per_voice=args.speakers_per_voice,
        )
        s = synth.build_corpus(args.out, cfg, text_path=args.text, jobs=args.jobs, progress=not args.quiet)
    except synth.SynthError as e:
        print(f"phonrec-synth: error: {e}", file=sys.stderr)
        return 2
    print(
        f"{s['utterances']} utterances, {s['hours']:.3f} h, {s['skipped']} skipped, "
        f"{s['generation_seconds']:.1f} s -> {args.out}  "
        + " ".join(f"{k}={v['utterances']}" for k, v in s["splits"].items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
