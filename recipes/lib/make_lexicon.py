"""A decoding lexicon: the corpus vocabulary plus seeded random CMUdict distractor words."""

from __future__ import annotations

import argparse
from pathlib import Path

from phonrec.lexicon import Lexicon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus-lexicon", required=True, type=Path)
    parser.add_argument("--distractors", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    lexicon = Lexicon.from_kaldi(args.corpus_lexicon)
    lexicon = lexicon.with_distractors(args.distractors, Lexicon.from_cmudict(), seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lexicon.to_kaldi(args.out)
    print(f"{args.out}: {len(lexicon)} words ({args.distractors} distractors)")


if __name__ == "__main__":
    main()
