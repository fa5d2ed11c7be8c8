"""Isolated-word accuracy table of the FSDD recipe (Markdown).

One row per weighting of the frame divergence: the classifier's accuracy on the held-out speaker
(``final.dev_acc`` of ``EXP/frame_<weighting>/metrics.json``: the arg-max of the log-posteriors
weighted as in training (``last``: the last frame alone), computed by the trainer on ``data.dev``,
which the recipe points at the test speaker).
One row for the CTC phone model with the lexicon decoder: the share of test utterances whose
decoded word sequence is exactly the reference word (``EXP/ctc/decode-lexicon-test/words.txt``
against ``DATA/text``; an utterance with no hypothesis counts as wrong), with the WER and the
greedy PER of the decode reports. With ``--phone-model-label``, the same row for another phone model
(one that never saw FSDD, or a pooled one) decoded into ``EXP/external``.

The last columns are the per-speaker accuracy (``metrics.SpeakerSummary`` with
``measure="accuracy"``: number of speakers, unweighted mean over speakers, worst and best speaker
with their ids) of the lexicon decode, from its report.json's per-speaker word counts (the share
of each speaker's scored utterances without a word error). The classifier rows have ``-`` there:
the trainer keeps ``dev_acc`` only, not which utterances it got right.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from phonrec.data.datadir import DataDir, read_kaldi_map
from phonrec.metrics import SPEAKER_COLUMNS, SpeakerSummary, speaker_cells, wer


def exact_match_accuracy(ref: dict[str, str], hyp: dict[str, str]) -> tuple[int, int]:
    """(utterances whose hypothesis equals the reference word sequence, reference utterances): the
    utterances without a word error in ``metrics.wer`` (a missing hypothesis is empty, so wrong)."""
    counts = wer(ref, {u: hyp.get(u, "") for u in ref})
    return counts.utterances - counts.utterances_with_errors, counts.utterances


def lexicon_row(model_exp: Path, label: str, test: DataDir) -> str | None:
    """The row of a phone model decoded with the 10-word lexicon (``MODEL_EXP/decode-lexicon-test``),
    None when it was not decoded."""
    lexicon_dir = model_exp / "decode-lexicon-test"
    if not (lexicon_dir / "report.json").is_file():
        return None
    report = json.loads((lexicon_dir / "report.json").read_text())
    words_file = lexicon_dir / "words.txt"
    hyp = read_kaldi_map(words_file, allow_empty_value=True) if words_file.is_file() else {}
    correct, total = exact_match_accuracy(test.text, hyp)
    greedy = model_exp / "decode-greedy-test" / "report.json"
    per = f"{100 * json.loads(greedy.read_text())['phones']['rate']:.1f} (greedy)" if greedy.is_file() else "-"
    by_speaker = report.get("per_speaker", {}).get("words")
    speakers = speaker_cells(SpeakerSummary.from_json(by_speaker, "accuracy") if by_speaker else None)
    return (
        f"| {label} | 10-word lexicon | {total} | {100 * correct / max(total, 1):.1f} | "
        f"{100 * report['words']['rate']:.1f} | {per} | {' | '.join(speakers)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--exp", required=True, type=Path)
    parser.add_argument("--weights", nargs="+", default=["uniform", "last", "linear"])
    parser.add_argument("--data", required=True, type=Path, help="the test data directory")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--phone-model-label", help="a row for the phone model decoded into EXP/external (the recipe's --phone-model)"
    )
    args = parser.parse_args()
    test = DataDir.load(args.data)
    columns = ["model", "decoding", "test utterances", "accuracy %", "WER %", "PER %", *SPEAKER_COLUMNS]
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    no_speakers = " | ".join(speaker_cells(None))
    for w in args.weights:
        metrics = args.exp / f"frame_{w}" / "metrics.json"
        if not metrics.is_file():
            continue
        final = json.loads(metrics.read_text())["final"]
        rows.append(
            f"| frame divergence, weights={w} | arg-max of the {w}-weighted posteriors "
            f"| {len(test)} | {100 * final['dev_acc']:.1f} | - | - | {no_speakers} |"
        )
    rows.append(lexicon_row(args.exp / "ctc", "CTC phones (CMUdict)", test))
    if args.phone_model_label:
        rows.append(lexicon_row(args.exp / "external", args.phone_model_label, test))
    rows = [r for r in rows if r]
    table = "\n".join(rows) + "\n"
    if args.out:
        args.out.write_text(table)
    print(table, end="")


if __name__ == "__main__":
    main()
