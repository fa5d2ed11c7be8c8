"""The alignment command (console command ``phonrec-align``, or ``python -m phonrec.cli.align``).

Corpus mode, the Montreal Forced Aligner's conventions::

    phonrec-align CORPUS_DIR OUT_DIR [--model en|MODEL_DIR] [--dictionary FILE] [--jobs N] [--ipa] [--overwrite]

CORPUS_DIR holds audio files (``phonrec.audio.AUDIO_EXTENSIONS``: wav, flac, ogg, sph, ...), each
with a transcript of the same stem beside it (``.lab``, else ``.txt``), in speaker sub-folders or
not. OUT_DIR mirrors the folders: ``OUT_DIR/<spk>/<stem>.TextGrid`` with a ``words`` and a
``phones`` tier (silences are empty intervals; phones in phonrec's ARPAbet, or IPA with ``--ipa``:
:mod:`phonrec.ipa`), plus ``alignments.csv`` (``file,tier,start,end,label,score``: every interval
of every file, silences with an empty label and no score; a word's score is the mean of its
phones') and ``alignments.json`` (the same per file, with the failures and the guessed words).
Pronunciations: ``--dictionary`` over CMUdict over flite's letter-to-sound rules
(:mod:`phonrec.pronounce`); the guessed words are written to ``OUT_DIR/oov_pronunciations.txt``
in the dictionary format, to correct and pass back with ``--dictionary``. A file that cannot be
aligned (unreadable audio, a missing or empty transcript, a transcript too long for the audio,
unknown characters or a word with no pronunciation) is reported with its reason in
``OUT_DIR/failed.txt`` and the rest are aligned; the summary line says how many. An OUT_DIR that
already holds TextGrids or tables is refused unless ``--overwrite``. ``--jobs N`` aligns in N
worker processes (one torch thread each); a progress bar goes to stderr (``--quiet``: none).
A model trained with per-speaker CMVN (``features.cmvn=speaker``) normalises the recordings of
each speaker sub-folder by their pooled statistics (:func:`folder_statistics`); a recording
directly in CORPUS_DIR is a speaker of its own. ``--model en`` (the default) is the English
model packaged with phonrec (:func:`phonrec.pretrained.model_path`).

Data-directory mode: ``phonrec-align MODEL_DIR DATA_DIR OUT_DIR`` writes OUT_DIR = DATA_DIR plus a
frame ``alignments`` file (:func:`align_datadir`).

The Viterbi primitives live in :mod:`phonrec.align`, the word-level alignment in
:mod:`phonrec.forced_align`; :func:`write_textgrid` and :func:`write_phn` write one utterance's
spans through the corpus writers of :mod:`phonrec.data.textgrid` and :mod:`phonrec.data.timit`.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import multiprocessing
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from phonrec.align import align_ctc, align_frames, ctc_frame_labels, frame_labels_from_spans, spans_to_segments
from phonrec.audio import AUDIO_EXTENSIONS, AudioError, load_audio
from phonrec.cli.errors import user_errors
from phonrec.data import textgrid, timit
from phonrec.data.datadir import DataDir
from phonrec.data.segments import Segment
from phonrec.features import num_frames
from phonrec.forced_align import Alignment
from phonrec.ipa import check_ipa, to_ipa
from phonrec.lexicon import Lexicon
from phonrec.phones import PhoneSet, PhoneSetError
from phonrec.pretrained import NAMES, PretrainedModelError, model_path
from phonrec.pronounce import Pronouncer, PronunciationError
from phonrec.spans import DEFAULT_HOP_MS, Span, frames_to_seconds
from phonrec.transcribe import Transcriber

PROG = "phonrec-align"
log = logging.getLogger("phonrec.align")
OOV_FILE = "oov_pronunciations.txt"
FAILED_FILE = "failed.txt"
TABLES = ("alignments.csv", "alignments.json")
_WORKER: dict[str, object] = {}  # the Transcriber and Pronouncer of this process (inherited by forked workers)


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
    targets_of: dict[str, list[int]] = {}

    def read(utt: str) -> torch.Tensor | None:
        try:
            targets = ps.encode([p for p in data.phones.get(utt, []) if p != ps.silence], context=f"utterance {utt}")
            if not targets:
                raise ValueError(f"utterance {utt}: empty phone transcription")
            targets_of[utt] = targets
            return load_audio(data.wavs[utt], tr.feature_config.sample_rate)
        except (AudioError, PhoneSetError, ValueError, OSError) as e:
            skipped[utt] = str(e)
            return None

    batches = tr.speaker_batches(data.utts, data.utt2spk, read, batch_size)
    for batch, stats in tqdm(batches, desc="align", unit="batch", disable=not progress, mininterval=1.0):
        for (utt, wave), lp in zip(batch, tr.log_probs_batch([w for _, w in batch], speaker_stats=stats)):
            targets = targets_of[utt]
            try:
                if ps.blank_id is not None:
                    labels = ctc_frame_labels(align_ctc(lp, targets, ps.blank_id), lp.shape[0], sil, hop_ms=tr.hop_ms)
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


# --- corpus mode ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusFile:
    """One recording of a corpus folder: its audio, its path relative to the corpus (``rel``, which
    names it in every message and in OUT_DIR) and its transcript (``None`` when there is none)."""

    audio: Path
    rel: Path
    transcript: Path | None


@dataclass
class CorpusResult:
    """What :func:`align_corpus` did: the files it aligned (``rel`` -> alignment, in corpus order),
    the ones it could not (``rel`` -> reason), and where the guessed pronunciations went."""

    total: int
    aligned: dict[str, Alignment] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    guesses_file: Path | None = None
    guessed: list[str] = field(default_factory=list)


def find_corpus(corpus_dir: str | Path, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[CorpusFile]:
    """The recordings of a corpus folder (searched recursively, sorted) with their ``.lab``/``.txt``.

    Raises:
        FileNotFoundError: ``corpus_dir`` is not a folder, or holds no audio file.
        ValueError: two audio files of one folder share a stem (``a.wav`` and ``a.flac`` would both
            be ``a.TextGrid`` and share ``a.lab``).
    """
    root = Path(corpus_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder (expected a corpus folder of audio files and transcripts)")
    exts = {e.lower().lstrip(".") for e in extensions}
    audio = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower().lstrip(".") in exts)
    if not audio:
        raise FileNotFoundError(f"{root}: no audio files ({', '.join(sorted(exts))}) in this folder")
    files: list[CorpusFile] = []
    seen: dict[Path, Path] = {}
    for path in audio:
        stem = path.with_suffix("")
        if stem in seen:
            raise ValueError(f"{seen[stem]} and {path} share the name {stem.name}: rename one of them")
        seen[stem] = path
        transcript = next((t for t in (stem.with_suffix(".lab"), stem.with_suffix(".txt")) if t.is_file()), None)
        files.append(CorpusFile(path, path.relative_to(root), transcript))
    return files


def read_transcript(f: CorpusFile) -> str:
    """The transcript of ``f`` as one line of text.

    Raises:
        ValueError: no transcript, one that is not UTF-8 text, or one with no words; each naming ``f.rel``.
    """
    if f.transcript is None:
        stem = f.rel.with_suffix("")
        raise ValueError(f"{f.rel}: missing transcript (no {stem}.lab or {stem}.txt beside it)")
    try:
        text = f.transcript.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{f.rel}: transcript {f.transcript.name} is not UTF-8 text ({e.reason})") from None
    if not text.split():
        raise ValueError(f"{f.rel}: empty transcript ({f.transcript.name} has no words)")
    return " ".join(text.split())


def check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse an OUT_DIR that already holds TextGrids or alignment tables, unless ``overwrite``."""
    if overwrite or not out_dir.is_dir():
        return
    existing = sorted(out_dir.rglob("*.TextGrid")) + [out_dir / t for t in TABLES if (out_dir / t).exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(
            f"{out_dir} already holds alignments: {existing[0]}{more}; pass --overwrite to replace them"
        )


def _init_worker() -> None:
    torch.set_num_threads(1)


def folder_statistics(transcriber: Transcriber, files: Sequence[CorpusFile]) -> dict[Path, torch.Tensor]:
    """Speaker sub-folder -> the CMVN statistics ``(2, F)`` of its readable recordings, for a model
    trained with ``features.cmvn=speaker`` (the corpus convention: a sub-folder is a speaker);
    empty for any other model. Recordings directly in the corpus folder get none (each is its
    own speaker), and an unreadable one is left out here (its own alignment reports it)."""
    if transcriber.cmvn_mode != "speaker":
        return {}
    folders: dict[Path, list[Path]] = {}
    for f in files:
        if f.rel.parent != Path("."):
            folders.setdefault(f.rel.parent, []).append(f.audio)
    stats = {folder: transcriber.file_statistics(paths) for folder, paths in folders.items()}
    return {folder: s for folder, s in stats.items() if s is not None}


def _align_one(
    item: tuple[int, str, str, str, torch.Tensor | None],
) -> tuple[int, Alignment | None, str | None]:
    """``(index, alignment, None)`` or ``(index, None, reason)`` for one corpus file."""
    index, audio, rel, text, stats = item
    tr: Transcriber = _WORKER["transcriber"]  # type: ignore[assignment]
    pronouncer: Pronouncer = _WORKER["pronouncer"]  # type: ignore[assignment]
    try:
        return index, tr.align(audio, text, pronouncer=pronouncer, utterance=rel, speaker_stats=stats), None
    except AudioError as e:
        return index, None, f"unreadable audio: {e}"
    except (ValueError, OSError) as e:
        return index, None, str(e)


def _tiers(alignment: Alignment, ipa: bool) -> dict[str, list[Segment]]:
    """The ``words`` and ``phones`` tiers (silences empty; phones in IPA with ``ipa``)."""
    label = to_ipa if ipa else (lambda p: p)
    return {
        "words": [Segment(w.word, w.start, w.end) for w in alignment.words],
        "phones": [Segment(label(p.phone) if p.phone else "", p.start, p.end) for p in alignment.phones],
    }


def _records(rel: str, alignment: Alignment, ipa: bool) -> dict[str, object]:
    """One file's entry of ``alignments.json`` (times in seconds, scores 0..1, ``None`` for silences)."""
    label = to_ipa if ipa else (lambda p: p)

    def interval(text: str, start: float, end: float, score: float | None) -> dict[str, object]:
        return {"label": text, "start": round(start, 6), "end": round(end, 6), "score": score and round(score, 4)}

    return {
        "file": rel,
        "duration": round(alignment.duration, 6),
        "words": [interval(w.word, w.start, w.end, alignment.word_score(i)) for i, w in enumerate(alignment.words)],
        "phones": [interval(label(p.phone) if p.phone else "", p.start, p.end, p.score) for p in alignment.phones],
    }


def write_tables(out_dir: Path, records: list[dict[str, object]], result: CorpusResult, guesses: list[dict]) -> None:
    """``alignments.csv`` (``file,tier,start,end,label,score``) and ``alignments.json``."""
    with open(out_dir / TABLES[0], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "tier", "start", "end", "label", "score"])
        for rec in records:
            for tier in ("words", "phones"):
                for iv in rec[tier]:  # type: ignore[union-attr]
                    s = iv["score"]
                    writer.writerow([rec["file"], tier, iv["start"], iv["end"], iv["label"], "" if s is None else s])
    failed = [{"file": rel, "reason": reason} for rel, reason in result.failed.items()]
    doc = {"files": records, "failed": failed, "guessed": guesses}
    (out_dir / TABLES[1]).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def align_corpus(
    transcriber: Transcriber,
    corpus_dir: str | Path,
    out_dir: str | Path,
    *,
    pronouncer: Pronouncer | None = None,
    dictionary: str | Path | None = None,
    jobs: int = 1,
    ipa: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> CorpusResult:
    """Align every recording of a corpus folder and write OUT_DIR (module docstring).

    Transcripts are read and pronounced first, in this process (so the words flite guesses are
    known before any audio is read); then the audio is aligned here or in ``jobs`` forked workers.

    Args:
        pronouncer: default :meth:`Pronouncer.from_files` over ``dictionary`` with the model
            directory's lexicon, CMUdict and flite.
        dictionary: the ``--dictionary`` file: the guesses are never written over it (they go to
            ``oov_pronunciations.new.txt`` when it is OUT_DIR's ``oov_pronunciations.txt``).

    Raises:
        FileExistsError: OUT_DIR holds alignments and not ``overwrite`` (checked before any work).
    """
    out = Path(out_dir)
    files = find_corpus(corpus_dir)
    check_out_dir(out, overwrite)
    if pronouncer is None:
        pronouncer = Pronouncer.from_files(dictionary, extra=transcriber.lexicon)
    result = CorpusResult(total=len(files))
    failed: dict[int, str] = {}
    work: list[tuple[int, str, str, str, torch.Tensor | None]] = []
    stats = folder_statistics(transcriber, files)
    for i, f in enumerate(files):
        rel = f.rel.as_posix()
        try:
            text = read_transcript(f)
            words, _ = pronouncer.pronounce(text, source=rel)
            if not words:
                raise ValueError(f"{rel}: empty transcript ({f.transcript.name} has only punctuation)")  # type: ignore[union-attr]
        except (PronunciationError, ValueError, OSError) as e:
            failed[i] = str(e)
            continue
        work.append((i, str(f.audio), rel, text, stats.get(f.rel.parent)))
    _WORKER.update(transcriber=transcriber, pronouncer=pronouncer)
    aligned: dict[int, Alignment] = {}
    bar = tqdm(total=len(work), desc="align", unit="file", disable=not progress, file=sys.stderr)
    if jobs == 1 or len(work) <= 1:
        outcomes = map(_align_one, work)
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(min(jobs, len(work)), _init_worker)
        outcomes = pool.imap(_align_one, work)
    try:
        for i, alignment, reason in outcomes:
            if alignment is None:
                failed[i] = reason or "failed"
            else:
                aligned[i] = alignment
                grid = out / files[i].rel.with_suffix(".TextGrid")
                grid.parent.mkdir(parents=True, exist_ok=True)
                textgrid.write_textgrid(grid, _tiers(alignment, ipa), alignment.duration)
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    out.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        rel = f.rel.as_posix()
        if i in aligned:
            result.aligned[rel] = aligned[i]
        elif i in failed:
            result.failed[rel] = failed[i].removeprefix(f"{rel}: ")
            stale = out / f.rel.with_suffix(".TextGrid")
            if stale.is_file():  # only reachable with --overwrite: an earlier run's grid would now mislead
                stale.unlink()
                log.warning("%s: removed the TextGrid of an earlier run (this file failed now)", stale)
    records = [_records(rel, a, ipa) for rel, a in result.aligned.items()]
    guesses = [{"word": g.word, "phones": list(g.phones), "method": g.method} for g in pronouncer.guesses.values()]
    write_tables(out, records, result, guesses)
    failed_path = out / FAILED_FILE
    if result.failed:
        failed_path.write_text("".join(f"{rel}: {why}\n" for rel, why in result.failed.items()), encoding="utf-8")
    elif failed_path.is_file():
        failed_path.unlink()  # an earlier run's list (this run's output replaces it)
    if pronouncer.guesses:
        target = out / OOV_FILE
        if dictionary is not None and target.resolve() == Path(dictionary).resolve():
            target = out / OOV_FILE.replace(".txt", ".new.txt")
        pronouncer.write_guesses(target)
        result.guesses_file, result.guessed = target, list(pronouncer.guesses)
    return result


def resolve_model(value: str) -> Path:
    """``--model``: a model directory (an existing one wins), or a name packaged with phonrec
    (``en``: :func:`phonrec.pretrained.model_path`).

    Raises:
        FileNotFoundError: no such directory, or a packaged name whose files are not installed
            (:class:`phonrec.pretrained.PretrainedModelError`, prefixed with ``--model NAME:``).
    """
    path = Path(value)
    if path.is_dir():
        return path
    if value in NAMES:
        try:
            return model_path(value)
        except PretrainedModelError as e:
            raise PretrainedModelError(f"--model {value}: {e}") from None
    raise FileNotFoundError(f"--model {value}: no such model directory (or a packaged model name: {', '.join(NAMES)})")


def warn_unknown_phones(lexicon: Lexicon, phone_set: PhoneSet, source: str | Path) -> None:
    """Warn (once) about dictionary words whose every pronunciation uses a phone the model lacks: the
    files that say them fail with that reason."""
    bad = {
        w: sorted({p for pron in prons for p in pron if p not in phone_set})
        for w, prons in lexicon.entries.items()
        if all(any(p not in phone_set for p in pron) for pron in prons)
    }
    if bad:
        phones = sorted({p for ps in bad.values() for p in ps})
        log.warning(
            "%s: %d word(s) use phones the model does not have (%s), e.g. %s; files with them will fail",
            source,
            len(bad),
            " ".join(phones[:10]),
            ", ".join(list(bad)[:5]),
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line of both modes (module docstring)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        usage=(
            "%(prog)s CORPUS_DIR OUT_DIR [--model en|MODEL_DIR] [--dictionary FILE] [--jobs N] [--ipa] [--overwrite]\n"
            "       %(prog)s MODEL_DIR DATA_DIR OUT_DIR [--batch-size N] [--min-duration N]   (data-directory mode)"
        ),
        description="Force-align a corpus folder (audio + .lab/.txt) into TextGrids, or a data directory.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="CORPUS_DIR OUT_DIR, or MODEL_DIR DATA_DIR OUT_DIR")
    corpus = p.add_argument_group("corpus mode")
    corpus.add_argument("--model", help="a model directory, or 'en' (default: en)")
    corpus.add_argument("--dictionary", metavar="FILE", help="pronunciations (WORD PH PH ...) over CMUdict")
    corpus.add_argument("--jobs", type=int, default=1, help="worker processes (default: 1)")
    corpus.add_argument("--ipa", action="store_true", help="phones tier in IPA instead of ARPAbet")
    corpus.add_argument("--overwrite", action="store_true", help="replace the alignments OUT_DIR holds")
    corpus.add_argument("--quiet", action="store_true", help="no progress bar")
    datadir = p.add_argument_group("data-directory mode")
    datadir.add_argument("--batch-size", type=int, default=16)
    datadir.add_argument("--min-duration", type=int, default=1, help="frames per phone (frame-level models)")
    args = p.parse_args(argv)
    if len(args.paths) not in (2, 3):
        p.error("give CORPUS_DIR OUT_DIR (corpus mode) or MODEL_DIR DATA_DIR OUT_DIR (data-directory mode)")
    if len(args.paths) == 3:
        given = [f"--{k.replace('_', '-')}" for k in ("model", "dictionary", "ipa", "overwrite") if getattr(args, k)]
        if given or args.jobs != 1:
            p.error(f"{' '.join(given) or '--jobs'} is for corpus mode (CORPUS_DIR OUT_DIR)")
    elif args.jobs < 1:
        p.error("--jobs must be >= 1")
    return args


def summary(result: CorpusResult, out_dir: Path) -> list[str]:
    """The lines printed at the end: counts, one line per failed file, where the guesses went."""
    n, k = len(result.aligned), len(result.failed)
    lines = [f"aligned {n} of {result.total} files; {k} failed" + (f" (see {out_dir / FAILED_FILE})" if k else "")]
    lines += [f"  {rel}: {why}" for rel, why in result.failed.items()]
    if result.guesses_file is not None:
        shown = ", ".join(result.guessed[:10]) + (
            f" and {len(result.guessed) - 10} more" if len(result.guessed) > 10 else ""
        )
        lines.append(
            f"{len(result.guessed)} word(s) not in the dictionaries were guessed by flite letter-to-sound ({shown}): "
            f"{result.guesses_file} (correct it and pass it back with --dictionary)"
        )
    return lines


@user_errors(PROG)
def main(argv: Sequence[str] | None = None) -> None:
    """``phonrec-align CORPUS_DIR OUT_DIR [options]`` or ``MODEL_DIR DATA_DIR OUT_DIR`` (module docstring)."""
    args = parse_args(argv)
    logging.basicConfig(format=f"{PROG}: %(levelname)s: %(message)s", level=logging.WARNING)
    if len(args.paths) == 3:
        model_dir, data_dir, out_dir = args.paths
        counts = align_datadir(model_dir, data_dir, out_dir, batch_size=args.batch_size, min_duration=args.min_duration)
        print(f"{out_dir}: {counts['aligned']} utterances aligned, {counts['skipped']} skipped")
        return
    corpus_dir, out_dir = args.paths
    find_corpus(corpus_dir)  # a wrong folder fails before the model loads
    check_out_dir(Path(out_dir), args.overwrite)
    model_dir = resolve_model(args.model or "en")
    tr = Transcriber.from_pretrained(model_dir)
    if args.ipa:
        check_ipa(tr.phone_set, model_dir)
    pronouncer = Pronouncer.from_files(args.dictionary, extra=tr.lexicon)
    if args.dictionary:
        warn_unknown_phones(pronouncer.dictionaries[0], tr.phone_set, args.dictionary)
    result = align_corpus(
        tr,
        corpus_dir,
        out_dir,
        pronouncer=pronouncer,
        dictionary=args.dictionary,
        jobs=args.jobs,
        ipa=args.ipa,
        overwrite=args.overwrite,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    print("\n".join(summary(result, Path(out_dir))))
    sys.exit(1 if result.failed else 0)


if __name__ == "__main__":
    main()
