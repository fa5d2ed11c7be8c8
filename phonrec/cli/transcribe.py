"""``phonrec-transcribe [MODEL] INPUT ... [options]``: print phones (and words) with times for
audio files (``python -m phonrec.cli.transcribe``), over :class:`phonrec.transcribe.Transcriber`.

The model: ``--model DIR|NAME``, else the first argument when it names one, else ``en``, the English
model packaged with phonrec (:mod:`phonrec.pretrained`; without it installed, one line says so).
The first argument is taken as the model when it is a directory holding a model directory's files
(``config.yaml``, ``model.safetensors`` or ``phones.txt``), a packaged name (``en``) that is no
existing path, or a path that does not exist, has no audio extension and is followed by inputs
(so a mistyped model directory is reported as one). So ``phonrec-transcribe a.wav`` uses ``en``
and ``phonrec-transcribe exp/synth/aligned/model a.wav`` (the older form) that model.

Inputs are audio files, folders (searched recursively for the ``--ext`` types, by default the
types this libsndfile reads: ``phonrec.audio.AUDIO_EXTENSIONS``) and ``--list FILE`` (one path a
line; relative paths resolve against the list's folder; blank lines and ``#`` comments skipped).
A file named twice is transcribed once.

Decoding follows the model directory's defaults (``decoding.yaml``: the recipe's search, minimum
phone duration, phone bigram and lexicon; :mod:`phonrec.model_dir`); ``--decoder``,
``--min-duration-ms`` (``0``: none), ``--beam`` and ``--lexicon FILE`` override them. With a
lexicon the output has the words and their times, and the TextGrid a ``words`` tier.

``--ipa`` writes the phones in IPA (:mod:`phonrec.ipa`; silence becomes the empty label, as in MFA's
TextGrids, and is left out of the text output's phone line) instead of phonrec's ARPAbet.

``--textgrid DIR`` writes one TextGrid per input, named by its path relative to the inputs' common
folder (``x/a.wav`` and ``y/a.wav`` -> ``DIR/x/a.TextGrid``, ``DIR/y/a.TextGrid``); inputs that
still share a name keep their extension (``fox.ogg`` and ``fox.mp3`` -> ``fox.ogg.TextGrid``,
``fox.mp3.TextGrid``). An existing TextGrid is never replaced unless ``--overwrite`` is given:
the command refuses before decoding anything, naming the file.

A model trained with per-speaker CMVN (``features.cmvn=speaker``, as the packaged ``en``) reads
each file with its own statistics, since nothing says who speaks in it. ``--single-speaker`` (MFA's
``--single_speaker``) says that all the inputs are one speaker's: their statistics are computed over
all of them first (one more pass over the files) and every file is normalised by them, as
``phonrec-decode`` does for each utt2spk speaker and ``phonrec-align`` for each speaker folder.
Other models need no statistics and ignore it.

``--jobs N`` decodes files in N worker processes (each with ``--threads`` torch threads, default
1); ``--threads N`` alone sets the torch threads of a single process. A progress bar over files
(and over the chunks of a long file) goes to stderr when stderr is a terminal, unless ``--quiet``;
the transcript on stdout is printed between bar updates, never into them.

A file that cannot be read is reported and skipped (exit status 1); a user error (a broken model
directory, an existing output, a bad option) prints one line and exits 2 (:mod:`phonrec.cli.errors`).

``--write-defaults`` records decoding defaults in the model directory instead of transcribing
(what a recipe runs after training)::

    phonrec-transcribe exp/synth/aligned/model --write-defaults --decoder beam --min-duration-ms 30 \\
        --bigram-from data/synth/train --lexicon exp/synth/lexicon.txt
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import soundfile as sf
import torch
from tqdm import tqdm

from phonrec.audio import AUDIO_EXTENSIONS
from phonrec.cli.errors import user_errors
from phonrec.data.datadir import DataDir
from phonrec.data.segments import Segment
from phonrec.data.textgrid import write_textgrid
from phonrec.ipa import check_ipa, to_ipa
from phonrec.lm import PhoneBigram
from phonrec.model_dir import DECODERS, PHONES, REQUIRED, write_decoding_defaults
from phonrec.phones import PhoneSet
from phonrec.pretrained import NAMES
from phonrec.transcribe import Transcriber, Transcription

PROG = "phonrec-transcribe"
DEFAULT_MODEL = "en"  # the packaged English model (phonrec.pretrained)
log = logging.getLogger("phonrec.transcribe")
_WORKER: dict[str, object] = {}  # the Transcriber and decoding options of this process (inherited by forked workers)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (module docstring)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        usage="%(prog)s [MODEL] INPUT ... [options]",
        description="Print phones (and words) with times for audio files.",
    )
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help=f"audio files or folders (searched recursively), after an optional MODEL (default: {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--model", help=f"a model directory or a packaged model name ({', '.join(NAMES)}); default: {DEFAULT_MODEL}"
    )
    p.add_argument("--list", metavar="FILE", help="a file listing audio paths, one a line")
    p.add_argument(
        "--ext",
        default=",".join(AUDIO_EXTENSIONS),
        help="extensions searched for in folders (default: %(default)s)",
    )
    p.add_argument("--decoder", choices=DECODERS, help="default: the model's (decoding.yaml)")
    p.add_argument("--min-duration-ms", type=float, help="frame-level models: shortest phone (0: none)")
    p.add_argument("--beam", type=float, help="beam width (beam) or score beam (lexicon)")
    p.add_argument("--lexicon", metavar="FILE", help="decode words with this lexicon (implies --decoder lexicon)")
    p.add_argument("--textgrid", metavar="DIR", help="also write one Praat TextGrid per file into DIR")
    p.add_argument("--overwrite", action="store_true", help="replace TextGrids that already exist")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    p.add_argument("--ipa", action="store_true", help="phones in IPA instead of ARPAbet")
    p.add_argument(
        "--single-speaker",
        action="store_true",
        help="all inputs are one speaker's: normalise them by their common statistics (per-speaker CMVN models)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("--threads", type=int, help="torch threads per process")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--write-defaults", action="store_true", help="record --decoder etc. in the model directory")
    p.add_argument("--bigram-from", metavar="DATA_DIR", help="with --write-defaults: fit the phone bigram here")
    args = p.parse_args(argv)
    if args.write_defaults:
        args.model_dir = args.model or (args.inputs.pop(0) if args.inputs else None)
        if args.model_dir is None:
            p.error("--write-defaults needs the model directory to write to")
        if args.inputs or args.list:
            p.error("--write-defaults takes no audio inputs")
    else:
        more = len(args.inputs) > 1 or bool(args.list)
        first_is_model = args.model is None and bool(args.inputs) and names_model(args.inputs[0], more=more)
        args.model_dir = args.model or (args.inputs.pop(0) if first_is_model else DEFAULT_MODEL)
        if not args.inputs and not args.list:
            p.error("give audio files, folders or --list FILE")
        if args.bigram_from:
            p.error("--bigram-from is for --write-defaults")
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        p.error("--jobs and --threads must be >= 1")
    return args


def names_model(arg: str, *, more: bool) -> bool:
    """Whether the first positional argument ``arg`` is the model rather than an input (module
    docstring); ``more``: other inputs follow it."""
    path = Path(arg)
    if path.is_dir():
        return any((path / name).is_file() for name in REQUIRED)
    if path.exists():
        return False
    return arg in NAMES or (more and path.suffix.lower().lstrip(".") not in AUDIO_EXTENSIONS)


def collect_inputs(inputs: Iterable[str], list_file: str | None, extensions: Iterable[str]) -> list[Path]:
    """The audio files to transcribe, in order: files as given, folders searched recursively for
    ``extensions`` (sorted), then ``list_file``'s paths; each file once.

    Raises:
        FileNotFoundError: the list file is missing, or a folder holds no audio file of those types.
        ValueError: nothing to transcribe.
    """
    exts = {e.strip().lower().lstrip(".") for e in extensions if e.strip()}
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower().lstrip(".") in exts)
            if not found:
                raise FileNotFoundError(f"{path}: no audio files ({', '.join(sorted(exts))}) in this folder")
            paths += found
        else:
            paths.append(path)
    if list_file is not None:
        base = Path(list_file).parent
        for line in Path(list_file).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                paths.append(base / line)
    unique = list({os.path.abspath(p): p for p in reversed(paths)}.values())[::-1]  # first occurrence kept
    if not unique:
        raise ValueError("no audio files to transcribe")
    return unique


def textgrid_names(paths: list[Path]) -> list[Path]:
    """One relative TextGrid path per input that no two inputs share (module docstring).

    Raises:
        ValueError: naming two inputs that would still share a name.
    """
    absolute = [Path(os.path.abspath(p)) for p in paths]
    root = Path(os.path.commonpath([p.parent for p in absolute]))
    relative = [p.relative_to(root) for p in absolute]
    stems = [r.with_suffix(".TextGrid") for r in relative]
    clashes = Counter(stems)
    names = [r.with_name(r.name + ".TextGrid") if clashes[s] > 1 else s for r, s in zip(relative, stems)]
    seen: dict[Path, Path] = {}
    for path, name in zip(paths, names):
        if name in seen:
            raise ValueError(f"{seen[name]} and {path} would both write {name}; rename one of them")
        seen[name] = path
    return names


def refuse_existing(outputs: list[Path], overwrite: bool) -> None:
    """Raise ``FileExistsError`` naming the first of ``outputs`` that exists, unless ``overwrite``."""
    existing = [o for o in outputs if o.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]} already exists{more}; pass --overwrite to replace it")


def _transcribe_one(path: Path) -> tuple[Path, Transcription | None, str | None]:
    """``(path, result, None)`` or ``(path, None, reason)``: a file that cannot be read is reported."""
    tr: Transcriber = _WORKER["transcriber"]  # type: ignore[assignment]
    try:
        return path, tr.transcribe(path, **_WORKER["options"]), None  # type: ignore[arg-type]
    except (ValueError, OSError) as e:
        return path, None, str(e)


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def transcribe_all(
    paths: list[Path], jobs: int, threads: int
) -> Iterator[tuple[Path, Transcription | None, str | None]]:
    """:func:`_transcribe_one` over ``paths`` in order: in this process, or in ``jobs`` forked workers
    (each inherits the loaded model)."""
    if jobs == 1 or len(paths) == 1:
        yield from map(_transcribe_one, paths)
        return
    with multiprocessing.get_context("fork").Pool(min(jobs, len(paths)), _init_worker, (threads,)) as pool:
        yield from pool.imap(_transcribe_one, paths)


def ipa_result(result: Transcription) -> Transcription:
    """``result`` with its phones in IPA (silence: ``""``)."""
    return replace(
        result,
        phones=[to_ipa(p) for p in result.phones],
        spans=[(to_ipa(p), s, e) for p, s, e in result.spans],
    )


def format_text(path: Path, result: Transcription) -> str:
    """The plain-text report of one file: phones, then ``start end phone`` lines, then words."""
    lines = [f"{path}: {' '.join(p for p in result.phones if p)}"]
    lines += [f"  {s:8.3f} {e:8.3f}  {p}" for p, s, e in result.spans]
    if result.word_spans is not None:
        lines.append(f"  words: {' '.join(result.words or [])}")
        lines += [f"  {s:8.3f} {e:8.3f}  {w}" for w, s, e in result.word_spans]
    return "\n".join(lines)


def format_json(path: Path, result: Transcription) -> str:
    """One JSON line: file, phones, words, spans (and word_spans with a lexicon)."""
    record: dict[str, object] = {
        "file": str(path),
        "phones": result.phones,
        "words": result.words,
        "spans": [{"phone": p, "start": round(s, 3), "end": round(e, 3)} for p, s, e in result.spans],
    }
    if result.word_spans is not None:
        record["word_spans"] = [{"word": w, "start": round(s, 3), "end": round(e, 3)} for w, s, e in result.word_spans]
    return json.dumps(record)


def write_result_textgrid(out: Path, audio: Path, result: Transcription) -> None:
    """A TextGrid with a ``phones`` tier (and a ``words`` tier with a lexicon) over the whole file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tiers = {"phones": [Segment(p, s, e) for p, s, e in result.spans]}
    if result.word_spans is not None:
        tiers["words"] = [Segment(w, s, e) for w, s, e in result.word_spans]
    write_textgrid(out, tiers, sf.info(str(audio)).duration)


def write_defaults(args: argparse.Namespace) -> None:
    """``--write-defaults``: record the decoding defaults in the model directory and say what was written."""
    model_dir = Path(args.model_dir)
    bigram = None
    if args.bigram_from:
        ps = PhoneSet.from_file(model_dir / PHONES)
        train = DataDir.load(args.bigram_from)
        if not train.phones:
            raise ValueError(f"{args.bigram_from}: no phones file to fit the phone bigram on")
        bigram = PhoneBigram.from_phones(train.phones.values(), ps)
    decoder = args.decoder or ("lexicon" if args.lexicon else "greedy")
    defaults = write_decoding_defaults(
        model_dir,
        decoder=decoder,
        min_duration_ms=args.min_duration_ms or None,
        phone_bigram=bigram,
        lexicon=args.lexicon,
    )
    extra = (" + phone_bigram.json" if bigram else "") + (" + lexicon.txt" if args.lexicon else "")
    print(f"{model_dir}/decoding.yaml: decoder={defaults.decoder} min_duration_ms={defaults.min_duration_ms}{extra}")


@user_errors(PROG)
def main(argv: list[str] | None = None) -> None:
    """The ``phonrec-transcribe`` command (module docstring)."""
    args = parse_args(argv)
    logging.basicConfig(format=f"{PROG}: %(levelname)s: %(message)s", level=logging.WARNING)
    if args.write_defaults:
        write_defaults(args)
        return
    paths = collect_inputs(args.inputs, args.list, args.ext.split(","))
    outputs = [Path(args.textgrid) / n for n in textgrid_names(paths)] if args.textgrid else None
    if outputs:
        refuse_existing(outputs, args.overwrite)
    threads = args.threads or (1 if args.jobs > 1 else torch.get_num_threads())
    torch.set_num_threads(threads)
    tr = Transcriber.from_pretrained(args.model_dir, device=args.device, lexicon=args.lexicon)
    if args.ipa:
        check_ipa(tr.phone_set, args.model_dir)
    options = {
        "decoder": args.decoder or ("lexicon" if args.lexicon else None),
        "min_duration_ms": args.min_duration_ms,
        "beam": args.beam,
    }
    tr.prepare(**options)  # a bad option or lexicon fails before any audio is read (and before workers fork)
    if args.single_speaker:
        options["speaker_stats"] = tr.file_statistics(paths)
    bars = not args.quiet and sys.stderr.isatty()
    tr.progress = bars and args.jobs == 1
    _WORKER.update(transcriber=tr, options=options)
    status = 0
    results = tqdm(
        transcribe_all(paths, args.jobs, threads),
        total=len(paths),
        desc="files",
        unit="file",
        disable=not bars,
        file=sys.stderr,
    )
    for i, (path, result, error) in enumerate(results):
        if result is None:
            tqdm.write(f"{PROG}: {error}", file=sys.stderr)
            status = 1
            continue
        if args.ipa:
            result = ipa_result(result)
        tqdm.write(format_json(path, result) if args.json else format_text(path, result), file=sys.stdout)
        if outputs:
            write_result_textgrid(outputs[i], path, result)
    sys.exit(status)


if __name__ == "__main__":
    main()
