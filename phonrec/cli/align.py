"""The alignment command: force-align a data directory with a trained model, and write spans as files.

``python -m phonrec.cli.align MODEL_DIR DATA_DIR OUT_DIR`` (console command ``phonrec-align``)
writes OUT_DIR = DATA_DIR plus a frame ``alignments`` file. The Viterbi primitives it runs live in
:mod:`phonrec.align`; :func:`write_textgrid` and :func:`write_phn` write one utterance's spans
through the corpus writers of :mod:`phonrec.data.textgrid` and :mod:`phonrec.data.timit`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from phonrec.align import align_ctc, align_frames, ctc_frame_labels, frame_labels_from_spans, spans_to_segments
from phonrec.audio import AudioError, load_audio
from phonrec.cli.errors import user_errors
from phonrec.data import textgrid, timit
from phonrec.data.datadir import DataDir
from phonrec.features import num_frames
from phonrec.phones import PhoneSet, PhoneSetError
from phonrec.spans import DEFAULT_HOP_MS, Span, frames_to_seconds
from phonrec.transcribe import Transcriber

log = logging.getLogger("phonrec.align")


def write_textgrid(
    path: str | Path,
    spans: Sequence[Span],
    phone_set: PhoneSet,
    *,
    num_frames: int | None = None,
    hop_ms: float = DEFAULT_HOP_MS,
    tier: str = "phones",
) -> None:
    """Write spans as a one-tier Praat TextGrid (via :func:`phonrec.data.textgrid.write_textgrid`).

    ``num_frames`` sets the end of the TextGrid (default: the end of the last span); gaps (CTC
    blanks) become empty intervals.
    """
    segs = spans_to_segments(spans, phone_set, hop_ms)
    xmax = frames_to_seconds(num_frames, hop_ms) if num_frames is not None else (segs[-1].end if segs else 0.0)
    textgrid.write_textgrid(path, {tier: segs}, xmax)


def write_phn(
    path: str | Path,
    spans: Sequence[Span],
    phone_set: PhoneSet,
    *,
    sample_rate: int = 16000,
    hop_ms: float = DEFAULT_HOP_MS,
) -> None:
    """Write spans as a TIMIT ``.phn`` file (via :func:`phonrec.data.timit.write_phn`)."""
    timit.write_phn(path, spans_to_segments(spans, phone_set, hop_ms), sample_rate)


def align_datadir(
    model_dir: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    batch_size: int = 16,
    min_duration: int = 1,
    progress: bool = True,
) -> dict[str, int]:
    """Force-align every utterance of a data directory with a trained model and write a copy of the
    directory with an ``alignments`` file (one phone per frame, ``sil`` included).

    CTC models align with :func:`align_ctc` and :func:`ctc_frame_labels`; frame-level models with
    :func:`align_frames` (optional silence at the edges and between phones). A model with frame
    subsampling ``k`` aligns at its own rate and each label is repeated ``k`` times (the last one
    as often as needed) to give one label per feature frame. Utterances that cannot be aligned
    (unreadable audio, unknown phones, too few frames) are reported and left out.

    Returns:
        counts: ``aligned`` and ``skipped``.
    """
    tr = Transcriber.from_pretrained(model_dir)
    fcfg = tr.feature_config
    factor = int(round(tr.hop_ms / fcfg.hop_ms))
    ps = tr.phone_set
    sil = ps.silence_id
    if sil is None:
        raise ValueError(f"{model_dir}/phones.txt has no silence symbol {ps.silence!r}")
    data = DataDir.load(data_dir)
    if data.phones is None:
        raise ValueError(f"{data_dir}: no `phones` file to align")
    alignments: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    utts = data.utts
    for i in tqdm(range(0, len(utts), batch_size), desc="align", unit="batch", disable=not progress, mininterval=1.0):
        batch = []
        for utt in utts[i : i + batch_size]:
            try:
                targets = ps.encode(
                    [p for p in data.phones.get(utt, []) if p != ps.silence], context=f"utterance {utt}"
                )
                if not targets:
                    raise ValueError(f"utterance {utt}: empty phone transcription")
                batch.append((utt, targets, load_audio(data.wavs[utt], tr.feature_config.sample_rate)))
            except (AudioError, PhoneSetError, ValueError, OSError) as e:
                skipped[utt] = str(e)
        if not batch:
            continue
        for (utt, targets, wave), lp in zip(batch, tr.log_probs_batch([w for _, _, w in batch])):
            try:
                if ps.blank_id is not None:
                    labels = ctc_frame_labels(align_ctc(lp, targets, ps.blank_id), lp.shape[0], sil)
                else:
                    spans = align_frames(lp, targets, min_duration, optional_silence=sil, silence_between=True)
                    labels = frame_labels_from_spans(spans, lp.shape[0])
            except ValueError as e:
                skipped[utt] = f"utterance {utt}: {e}"
                continue
            if factor > 1:
                T = num_frames(wave.shape[0], fcfg)
                labels = [labels[min(i // factor, len(labels) - 1)] for i in range(T)]
            alignments[utt] = ps.decode(labels)
    if skipped:
        log.warning(
            "%s: %d utterances could not be aligned and are left out: %s",
            data_dir,
            len(skipped),
            "; ".join(list(skipped.values())[:5]),
        )
    out = data.subset(set(alignments))
    out.alignments = alignments
    out.save(out_dir)
    return {"aligned": len(alignments), "skipped": len(skipped)}


@user_errors("phonrec-align")
def main(argv: Sequence[str] | None = None) -> None:
    """``phonrec-align MODEL_DIR DATA_DIR OUT_DIR``: write OUT_DIR = DATA_DIR plus frame ``alignments``."""
    parser = argparse.ArgumentParser(prog="phonrec-align", description=main.__doc__)
    parser.add_argument("model_dir")
    parser.add_argument("data_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--min-duration", type=int, default=1, help="frames per phone (frame-level models)")
    args = parser.parse_args(argv)
    counts = align_datadir(
        args.model_dir, args.data_dir, args.out_dir, batch_size=args.batch_size, min_duration=args.min_duration
    )
    print(f"{args.out_dir}: {counts['aligned']} utterances aligned, {counts['skipped']} skipped")


if __name__ == "__main__":
    main()
