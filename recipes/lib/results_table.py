"""Collect the decode reports of a recipe's experiment directory into a Markdown table.

One row per decode: PER, WER, frame accuracy and real-time factor of ``report.json``, then the
per-speaker PER of its ``per_speaker.phones`` block (``metrics.SpeakerSummary``: number of
speakers, unweighted mean over speakers, worst and best speaker with their ids; ``-`` where the
data directory had no ``utt2spk``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from phonrec.metrics import SPEAKER_COLUMNS, SpeakerSummary, speaker_cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp", required=True, type=Path)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--splits", nargs="+", default=["dev", "test"])
    parser.add_argument("--decoders", nargs="+", default=["greedy", "beam", "lexicon"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    columns = ["model", "split", "decoder", "PER %", "WER %", "frame acc %", "RTF", *SPEAKER_COLUMNS]
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for model in args.models:
        for split in args.splits:
            for decoder in args.decoders:
                report = args.exp / model / f"decode-{decoder}-{split}" / "report.json"
                if not report.is_file():
                    continue
                r = json.loads(report.read_text())
                wer = f"{100 * r['words']['rate']:.1f}" if "words" in r else "-"
                fa = f"{100 * r['frame_accuracy']:.1f}" if "frame_accuracy" in r else "-"
                phones = r.get("per_speaker", {}).get("phones")
                speakers = " | ".join(speaker_cells(SpeakerSummary.from_json(phones) if phones else None))
                rows.append(
                    f"| {model} | {split} | {decoder} | "
                    f"{100 * r['phones']['rate']:.1f} | {wer} | {fa} | {r['rtf']:.4f} | {speakers} |"
                )
    table = "\n".join(rows) + "\n"
    if args.out:
        args.out.write_text(table)
    print(table, end="")


if __name__ == "__main__":
    main()
