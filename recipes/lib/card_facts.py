"""The measured facts of a model card (FACTS.json for ``phonrec-export --card-json``), from a
template (the card's words: title, licences, credits) and the reports a recipe just wrote.

    python recipes/lib/card_facts.py --template recipes/speechocean762/model_card_facts.json \
        --dev-report EXP/decode-greedy-dev/report.json --test-report EXP/decode-greedy-test/report.json \
        --boundaries EXP/boundaries.json --boundary-option ctc-widened+vad+spec \
        --recipe-command "bash recipes/pretrained_en/run.sh" --out EXP/facts.json

Every figure comes from a file named on the command line; the notes say which file and what it
measured. The result is checked by :func:`phonrec.model_card.read_facts` before it is written,
so a template with a bad key fails here, not at export time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from phonrec.config import ConfigError
from phonrec.model_card import read_facts, read_json_object

#: The tolerance the card's single boundary figure is quoted at (the issue's 20 ms).
BOUNDARY_TOLERANCE_MS = 20


def report_per(path: Path) -> tuple[float, int, dict[str, Any]]:
    """``(PER %, utterances, report)`` of a ``phonrec-decode`` report.json.

    Raises:
        SystemExit: the report has no phone scores (a data directory without references).
    """
    report = read_json_object(path, "decode report")
    phones = report.get("phones")
    if not isinstance(phones, dict) or "rate" not in phones:
        sys.exit(f"{path}: no phone scores (decoded data without reference phones?)")
    return round(100.0 * float(phones["rate"]), 1), int(phones.get("utterances", report["utterances"])), report


def boundary_share(path: Path, split: str, option: str) -> tuple[float, dict[str, Any], dict[str, Any] | None]:
    """Share (%) of all boundaries within :data:`BOUNDARY_TOLERANCE_MS` for ``option`` on
    ``split`` of a ``bench/boundaries.py --json`` file, that option's row, and the calibration the
    run made first (``None``: none)."""
    doc = read_json_object(path, "boundary results")
    try:
        row = doc["results"][split][option]
    except KeyError:
        sys.exit(f"{path}: no results for split {split!r}, option {option!r}")
    calibrated = next(iter(doc.get("calibrated", {}).values()), None)
    return float(row["all"][f"within_{BOUNDARY_TOLERANCE_MS}ms"]), row, calibrated


def git_commit() -> str | None:
    """The checkout's short commit (with ``+changes`` when the tree is dirty), or ``None`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + (" +changes" if dirty.stdout.strip() else "")


def build_facts(args: argparse.Namespace) -> dict[str, Any]:
    """The template's fields plus the measured ones (module docstring)."""
    facts = read_json_object(Path(args.template), "card facts template")
    dev_per, dev_n, dev = report_per(Path(args.dev_report))
    test_per, test_n, test = report_per(Path(args.test_report))
    facts |= {
        "recipe_command": args.recipe_command,
        "commit": args.commit or git_commit(),
        "dev_per": dev_per,
        "dev_per_note": (
            f"{args.dev_name}: {dev_n} utterances, greedy, 39 folded phones, silence removed ({args.dev_report})"
        ),
        "test_per": test_per,
        "test_per_note": f"{args.test_name}: {test_n} utterances, greedy ({args.test_report})",
        "rtf": round(float(dev["rtf"]), 4),
        "rtf_note": (
            f"phonrec-decode greedy on {args.dev_name}, {args.threads} torch thread(s), network + search "
            f"time / audio time ({args.dev_report})"
        ),
        "test_bound_per": args.test_bound_per,
    }
    if args.boundaries:
        share, row, calibrated = boundary_share(Path(args.boundaries), args.boundary_split, args.boundary_option)
        facts["boundary_accuracy"] = round(share, 1)
        a = row["all"]
        shift = (
            f", boundary_shift_ms {calibrated['boundary_shift_ms']:+.1f} calibrated on {calibrated['data']}"
            if calibrated
            else ""
        )
        facts["boundary_accuracy_note"] = (
            f"share of {a['n']} phone and speech/silence boundaries within {BOUNDARY_TOLERANCE_MS} ms of exact "
            f"synthesiser timings on {args.test_name} ({row['utterances']} utterances, reference phones given), "
            f"aligner {args.boundary_option}: within 10 / 20 / 50 ms {a['within_10ms']} / {a['within_20ms']} / "
            f"{a['within_50ms']}%, mean |error| {a['mean_abs_ms']} ms{shift} ({args.boundaries})"
        )
    return facts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--template", required=True, help="FACTS.json with the card's words (no figures needed)")
    p.add_argument("--dev-report", required=True, help="phonrec-decode report.json on held-out speakers")
    p.add_argument("--dev-name", default="speechocean762 dev (held-out speakers)")
    p.add_argument("--test-report", required=True, help="phonrec-decode report.json on an unseen voice")
    p.add_argument("--test-name", default="unseen synthetic voice awb (data/synth/test)")
    p.add_argument("--boundaries", help="bench/boundaries.py --json output")
    p.add_argument("--boundary-split", default="test")
    p.add_argument(
        "--boundary-option", default="ctc-widened+vad+spec", help="the aligner phonrec-align uses for this model"
    )
    p.add_argument("--recipe-command", required=True)
    p.add_argument("--commit", help="default: git rev-parse --short HEAD")
    p.add_argument("--threads", type=int, default=1, help="torch threads the decodes ran with (for the RTF note)")
    p.add_argument("--test-bound-per", type=float, default=60.0, help="PER bound tests/test_pretrained.py asserts")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        facts = build_facts(args)
        text = json.dumps(facts, indent=2, ensure_ascii=False) + "\n"
        with tempfile.TemporaryDirectory() as tmp:  # validated as phonrec-export will read it
            check = Path(tmp) / "facts.json"
            check.write_text(text, encoding="utf-8")
            read_facts(check)
    except (ConfigError, FileNotFoundError) as e:
        sys.exit(f"card_facts.py: {e}")
    Path(args.out).write_text(text, encoding="utf-8")
    print(
        f"{args.out}: dev PER {facts['dev_per']}%, test PER {facts['test_per']}%, "
        f"boundaries {facts.get('boundary_accuracy')}% within {BOUNDARY_TOLERANCE_MS} ms, RTF {facts['rtf']}"
    )


if __name__ == "__main__":
    main()
