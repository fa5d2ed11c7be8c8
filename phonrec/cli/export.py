"""``phonrec-export MODEL_DIR OUT_DIR [--fp16] [--card-json FACTS.json] [--overwrite]``
(``python -m phonrec.cli.export``): a compact, shippable copy of a trained model directory with
its model card (:mod:`phonrec.export`, :mod:`phonrec.model_card`).

``--fp16`` stores the weights as float16 (half the size; computed in fp32 after loading) once a
check on seeded random features shows the log-probabilities within ``--tolerance`` of the fp32
model's and the greedy outputs identical; the check's figures are printed, and a failed check
writes nothing. ``--card-json`` gives the card's measured facts (training data and licences,
recipe command, commit, PER, boundary accuracy, RTF, ``test_bound_per``); a fact not given is
written as "not measured". An existing OUT_DIR is refused unless ``--overwrite`` (which only
replaces an earlier export's files).

The packaged English model is made this way::

    phonrec-export exp/.../model phonrec/pretrained/en --fp16 --card-json FACTS.json
"""

from __future__ import annotations

import argparse
import logging

from phonrec.cli.errors import user_errors
from phonrec.export import export_model_dir
from phonrec.model_card import CardFacts, read_facts

PROG = "phonrec-export"
log = logging.getLogger("phonrec.export")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (module docstring)."""
    p = argparse.ArgumentParser(prog=PROG, description="Export a model directory compactly, with its model card.")
    p.add_argument("model_dir", help="model directory written by phonrec-train")
    p.add_argument("out_dir", help="the export (must not exist, or be empty, unless --overwrite)")
    p.add_argument("--fp16", action="store_true", help="store the weights as float16 (checked first)")
    p.add_argument("--tolerance", type=float, default=0.05, help="fp16 check: max abs log-prob difference")
    p.add_argument("--card-json", metavar="FACTS.json", help="measured facts for MODEL_CARD.md")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT_DIR")
    args = p.parse_args(argv)
    if not args.tolerance > 0:
        p.error("--tolerance must be > 0")
    return args


@user_errors(PROG)
def main(argv: list[str] | None = None) -> None:
    """The ``phonrec-export`` command (module docstring)."""
    args = parse_args(argv)
    logging.basicConfig(format=f"{PROG}: %(levelname)s: %(message)s", level=logging.WARNING)
    facts = read_facts(args.card_json) if args.card_json else CardFacts()
    if facts.test_bound_per is None:
        log.warning("no test_bound_per in the card facts: tests/test_pretrained.py needs it for a packaged model")
    result = export_model_dir(
        args.model_dir, args.out_dir, fp16=args.fp16, facts=facts, overwrite=args.overwrite, tolerance=args.tolerance
    )
    c = result.computed
    if result.fp16 is not None:
        print(f"fp16 check: {result.fp16.summary()}")
    print(
        f"{result.out_dir}: {c.parameters:,} parameters, {c.weights_dtype} weights, {c.size_mb:.2f} MB "
        f"(weights {c.weights_mb:.2f} MB), {len(c.phone_set)} symbols; card: {result.out_dir}/MODEL_CARD.md"
    )


if __name__ == "__main__":
    main()
