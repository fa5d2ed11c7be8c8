"""``phonrec-plot``: PNG pictures of models, decodes and runs (drawing: :mod:`phonrec.plots`).

Usage::

    phonrec-plot posteriorgram MODEL_DIR AUDIO --out post.png [--data DATA_DIR --utt UTT]
    phonrec-plot confusion DECODE_DIR DATA_DIR --out confusion.png
    phonrec-plot curves EXP_DIR --out curves.png
    phonrec-plot recipe --exp exp/synth --data data/synth/test     # all of them, for a recipe

(``python -m phonrec.cli.plot ...`` is the same command.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from phonrec.audio import load_audio
from phonrec.cli.errors import user_errors
from phonrec.data.datadir import DataDir
from phonrec.features import compute_features
from phonrec.metrics import align_sequences, confusion_matrix
from phonrec.phones import fold_for_scoring
from phonrec.plots import plot_confusion, plot_learning_curves, plot_posteriorgram
from phonrec.spans import frames_to_seconds
from phonrec.transcribe import Transcriber


def posteriorgram_for(
    model_dir: Path, audio: Path, out: Path, data_dir: Path | None = None, utt: str | None = None
) -> Path:
    """The posteriorgram of ``audio`` under the model in ``model_dir``, with its decoded spans and,
    given ``data_dir`` and ``utt``, the reference alignment's spans."""
    tr = Transcriber.from_pretrained(model_dir)
    wave = load_audio(audio, tr.feature_config.sample_rate)
    result = tr.transcribe(wave, sample_rate=tr.feature_config.sample_rate, posteriors=True)
    ref: list[tuple[str, float, float]] = []
    if data_dir is not None and utt is not None:
        data = DataDir.load(data_dir)
        if data.alignments and utt in data.alignments:
            labels = data.alignments[utt]
            start = 0
            for t in range(1, len(labels) + 1):
                if t == len(labels) or labels[t] != labels[start]:
                    ref.append((labels[start], frames_to_seconds(start), frames_to_seconds(t)))
                    start = t
    feats = compute_features(wave, tr.feature_config).numpy()
    return plot_posteriorgram(
        result.posteriors,
        tr.phone_set.symbols,
        out,
        features=feats,
        hyp_spans=result.spans,
        ref_spans=ref,
        hop_seconds=tr.hop_ms / 1000,
        title=str(audio.name),
    )


def confusion_for(decode_dir: Path, data_dir: Path, out: Path) -> Path:
    """The phone confusion matrix of ``decode_dir/hyp.txt`` against ``data_dir``'s phones, folded for
    scoring as the PER is (``metrics.align_sequences`` + ``metrics.confusion_matrix``); the last row and
    column (``<del/ins>``) count insertions and deletions."""
    data = DataDir.load(data_dir)
    pairs = []
    for line in (decode_dir / "hyp.txt").read_text().splitlines():
        utt, *hyp = line.split()
        if data.phones and utt in data.phones:
            pairs += align_sequences(fold_for_scoring(data.phones[utt]), fold_for_scoring(hyp))
    symbols = sorted({p for pair in pairs for p in pair if p is not None})
    matrix = confusion_matrix(pairs, symbols)
    return plot_confusion(matrix, symbols + ["<del/ins>"], out, title=f"confusions: {decode_dir.name}")


def recipe_plots(exp: Path, data_dir: Path, split: str) -> None:
    """Learning curves of every run in ``exp``, and per run a posteriorgram of the first utterance of
    ``data_dir`` and (when decoded) the greedy decode's confusion matrix, into ``exp/plots``."""
    plots = exp / "plots"
    runs = [d for d in sorted(exp.iterdir()) if (d / "metrics.json").is_file()]
    print(plot_learning_curves(runs, plots / "learning_curves.png"))
    data = DataDir.load(data_dir)
    utt = data.utts[0]
    for run in runs:
        print(
            posteriorgram_for(
                run / "model", Path(data.wavs[utt]), plots / f"posteriorgram_{run.name}.png", data_dir, utt
            )
        )
        decode = run / f"decode-greedy-{split}"
        if (decode / "hyp.txt").is_file():
            print(confusion_for(decode, data_dir, plots / f"confusion_{run.name}.png"))


@user_errors("phonrec-plot")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="phonrec-plot", description="Write PNG pictures of models, decodes and runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("posteriorgram")
    p.add_argument("model_dir", type=Path)
    p.add_argument("audio", type=Path)
    p.add_argument("--data", type=Path, help="data directory holding the reference alignment")
    p.add_argument("--utt", help="utterance id of AUDIO in --data")
    p.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("confusion")
    c.add_argument("decode_dir", type=Path)
    c.add_argument("data_dir", type=Path)
    c.add_argument("--out", type=Path, required=True)
    cu = sub.add_parser("curves")
    cu.add_argument("exp_dirs", type=Path, nargs="+")
    cu.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("recipe")
    r.add_argument("--exp", type=Path, required=True)
    r.add_argument("--data", type=Path, required=True, help="the data directory decoded as 'test'")
    r.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    if args.command == "posteriorgram":
        print(posteriorgram_for(args.model_dir, args.audio, args.out, args.data, args.utt))
    elif args.command == "confusion":
        print(confusion_for(args.decode_dir, args.data_dir, args.out))
    elif args.command == "curves":
        print(plot_learning_curves(args.exp_dirs, args.out))
    else:
        recipe_plots(args.exp, args.data, args.split)


if __name__ == "__main__":
    main()
