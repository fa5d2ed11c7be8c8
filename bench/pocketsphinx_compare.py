"""pocketsphinx's phone recogniser against a phonrec model on the same audio, scored the same way.

    python bench/pocketsphinx_compare.py --data DIR [DIR ...] [--model MODEL_DIR] [--max-utts N] [--json OUT]

Systems
    ``pocketsphinx``: ``pip install pocketsphinx`` (5.x; phonrec's ``bench`` extra), its bundled
        en-us acoustic model in ``allphone`` mode with the bundled phonetic LM
        (``allphone=<model>/en-us/en-us-phone.lm.bin``) and the settings of CMU's "Phoneme
        Recognition" tutorial: ``lw=2.0 beam=1e-20 pbeam=1e-20`` (the options ``--lw --beam
        --pbeam`` change them). Everything else is pocketsphinx's default (``allphone_ci=yes``,
        live CMN). Each utterance is one ``process_raw(..., full_utt=True)`` call of 16 kHz
        16-bit samples. Its output tokens map to phonrec's symbols by
        :func:`pocketsphinx_to_phonrec` (``SIL`` and the ``+NSN+``/``+SPN+`` fillers dropped).
    ``phonrec``: ``Transcriber.from_pretrained(MODEL_DIR)``, greedy search (a frame-level model
        keeps its ``decoding.yaml`` minimum duration). Without ``--model`` only pocketsphinx runs.

Scoring is ``phonrec-decode``'s (:func:`phonrec.cli.decode.score`: ``metrics.per`` of each
utterance with reference phones, 39 folded classes, silence removed). Audio is read by
:func:`phonrec.audio.load_audio` (resampled to 16 kHz) for both systems. RTF = decode seconds /
audio seconds in this process with one thread (``torch.set_num_threads(1)``; pocketsphinx is
single-threaded), audio loading and model loading excluded, measured in CPU seconds of this process
(``time.process_time``), which a busy shared machine does not inflate; ``rtf_wall`` (wall-clock
seconds) is beside it and equals it on an idle machine. ``--max-utts N`` takes N utterances
spread evenly over the sorted ids (every k-th), so every speaker of a data directory can appear.
Prints a markdown table; ``--json`` also writes the rows and the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phonrec.audio import AudioError, load_audio  # noqa: E402
from phonrec.cli.decode import score  # noqa: E402
from phonrec.cli.errors import user_errors  # noqa: E402
from phonrec.data.datadir import DataDir  # noqa: E402
from phonrec.metrics import ErrorCounts  # noqa: E402
from phonrec.phones import CMU_PHONES, cmu_to_phonrec  # noqa: E402

PROG = "pocketsphinx_compare"
SAMPLE_RATE = 16000
#: pocketsphinx's non-phone tokens: silence and the noise-dictionary fillers (``+NSN+``, ``+SPN+``).
SILENCE_TOKENS = frozenset({"SIL", "<sil>", "<s>", "</s>"})
_CMU = frozenset(CMU_PHONES)

Recogniser = Callable[[torch.Tensor], list[str]]  # (N,) float32 16 kHz wave -> phonrec phones


@dataclass(frozen=True)
class Row:
    """One system on one data directory: error counts over its scored utterances and its speed."""

    data: str
    system: str
    utterances: int
    reference_phones: int
    per: float
    substitutions: int
    deletions: int
    insertions: int
    audio_seconds: float
    cpu_seconds: float
    wall_seconds: float
    rtf: float
    rtf_wall: float
    skipped: int


def pocketsphinx_to_phonrec(tokens: Sequence[str]) -> list[str]:
    """pocketsphinx allphone tokens (``SIL DH AH +NSN+ K AE T SIL``) -> phonrec phones (``dh ah k ae t``).

    Raises:
        ValueError: for a token that is neither silence, a ``+...+`` filler nor one of the 39 CMU phones.
    """
    out = []
    for token in tokens:
        if token in SILENCE_TOKENS or (token.startswith("+") and token.endswith("+")):
            continue
        phone = cmu_to_phonrec(token)
        if phone not in _CMU:
            raise ValueError(f"pocketsphinx token {token!r} is not a CMU phone, silence or filler")
        out.append(phone)
    return out


def pocketsphinx_settings(lw: float, beam: float, pbeam: float) -> dict[str, object]:
    """The ``Decoder`` keywords of the allphone recogniser (bundled en-us model and phone LM)."""
    from pocketsphinx import get_model_path

    model = get_model_path()
    return {
        "hmm": os.path.join(model, "en-us", "en-us"),
        "allphone": os.path.join(model, "en-us", "en-us-phone.lm.bin"),
        "lw": lw,
        "beam": beam,
        "pbeam": pbeam,
        "loglevel": "FATAL",
    }


def pocketsphinx_recogniser(settings: dict[str, object]) -> Recogniser:
    """A function wave -> phones running one pocketsphinx ``Decoder`` in allphone mode."""
    from pocketsphinx import Decoder

    decoder = Decoder(**settings)

    def recognise(wave: torch.Tensor) -> list[str]:
        pcm = np.clip(np.round(wave.numpy() * 32768.0), -32768, 32767).astype("<i2")
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        return pocketsphinx_to_phonrec([seg.word for seg in decoder.seg()])

    return recognise


def phonrec_recogniser(model_dir: Path) -> Recogniser:
    """A function wave -> phones: ``Transcriber.from_pretrained(model_dir)``, greedy search."""
    from phonrec.transcribe import Transcriber

    tr = Transcriber.from_pretrained(model_dir)
    if tr.feature_config.sample_rate != SAMPLE_RATE:
        raise ValueError(f"{model_dir}: the model reads {tr.feature_config.sample_rate} Hz audio, not 16 kHz")
    tr.prepare("greedy")
    return lambda wave: tr.transcribe(wave, SAMPLE_RATE, decoder="greedy").phones


def pick_utterances(data: DataDir, max_utts: int | None) -> list[str]:
    """The utterances with reference phones; ``max_utts`` of them spread evenly over the sorted ids."""
    utts = [u for u in data.utts if data.phones and data.phones.get(u)]
    if max_utts is not None and len(utts) > max_utts:
        utts = [utts[i * len(utts) // max_utts] for i in range(max_utts)]
    return utts


def score_system(
    data: DataDir,
    hyps: dict[str, list[str]],
    *,
    name: str,
    system: str,
    audio_s: float,
    cpu_s: float,
    wall_s: float,
    skipped: int,
) -> Row:
    """A :class:`Row` of ``hyps`` scored exactly as ``phonrec-decode`` scores (``cli.decode.score``)."""
    by_utt, _ = score(data, hyps, None)
    total = ErrorCounts.sum((by_utt or {}).values())
    return Row(
        data=name,
        system=system,
        utterances=len(by_utt or {}),
        reference_phones=total.reference_length,
        per=total.rate,
        substitutions=total.substitutions,
        deletions=total.deletions,
        insertions=total.insertions,
        audio_seconds=round(audio_s, 2),
        cpu_seconds=round(cpu_s, 2),
        wall_seconds=round(wall_s, 2),
        rtf=cpu_s / max(audio_s, 1e-9),
        rtf_wall=wall_s / max(audio_s, 1e-9),
        skipped=skipped,
    )


def compare(data_dir: Path, systems: dict[str, Recogniser], max_utts: int | None) -> list[Row]:
    """Decode the chosen utterances of ``data_dir`` with every system; one :class:`Row` per system.

    Raises:
        ValueError: the data directory has no utterance with reference phones.
    """
    data = DataDir.load(data_dir)
    utts = pick_utterances(data, max_utts)
    if not utts:
        raise ValueError(f"{data_dir}: no utterance has reference phones (a 'phones' file)")
    hyps: dict[str, dict[str, list[str]]] = {name: {} for name in systems}
    cpu, wall = dict.fromkeys(systems, 0.0), dict.fromkeys(systems, 0.0)
    audio_s, bad = 0.0, {}
    for utt in utts:
        try:
            wave = load_audio(data.wavs[utt], SAMPLE_RATE)
        except AudioError as e:
            bad[utt] = str(e)
            continue
        audio_s += wave.shape[0] / SAMPLE_RATE
        for name, recognise in systems.items():
            c0, t0 = time.process_time(), time.perf_counter()
            hyps[name][utt] = recognise(wave)
            cpu[name] += time.process_time() - c0
            wall[name] += time.perf_counter() - t0
    for utt, why in bad.items():
        print(f"{PROG}: {data_dir}: skipped {utt}: {why}", file=sys.stderr)
    name = str(data_dir)
    return [
        score_system(
            data, hyps[s], name=name, system=s, audio_s=audio_s, cpu_s=cpu[s], wall_s=wall[s], skipped=len(bad)
        )
        for s in systems
    ]


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as a markdown table (PER in %, RTFs to 3 decimals)."""
    lines = [
        "| data | system | utterances | ref phones | PER % | sub | del | ins | RTF (CPU, 1 thread) | RTF (wall) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.data} | {r.system} | {r.utterances} | {r.reference_phones} | {100 * r.per:.1f} | "
            f"{r.substitutions} | {r.deletions} | {r.insertions} | {r.rtf:.3f} | {r.rtf_wall:.3f} |"
        )
    return "\n".join(lines)


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="data directories with a phones file")
    parser.add_argument("--model", type=Path, default=None, help="a phonrec model directory")
    parser.add_argument("--max-utts", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--lw", type=float, default=2.0, help="pocketsphinx language weight")
    parser.add_argument("--beam", type=float, default=1e-20, help="pocketsphinx beam")
    parser.add_argument("--pbeam", type=float, default=1e-20, help="pocketsphinx phone beam")
    args = parser.parse_args(argv)
    if args.max_utts is not None and args.max_utts < 1:
        raise ValueError(f"--max-utts must be >= 1, got {args.max_utts}")
    if args.json is not None and args.json.exists():
        raise ValueError(f"{args.json} exists; give another --json path or remove it")
    try:
        settings = pocketsphinx_settings(args.lw, args.beam, args.pbeam)
    except ImportError:
        raise ValueError(
            "pocketsphinx is not installed: pip install pocketsphinx (or pip install -e '.[bench]')"
        ) from None
    torch.set_num_threads(1)
    systems = {"pocketsphinx": pocketsphinx_recogniser(settings)}
    if args.model is not None:
        systems[f"phonrec ({args.model})"] = phonrec_recogniser(args.model)
    rows = [row for d in args.data for row in compare(d, systems, args.max_utts)]
    print(markdown_table(rows))
    if args.json is not None:
        from importlib.metadata import version

        blob = {
            "pocketsphinx": {"version": version("pocketsphinx")} | settings,
            "model": str(args.model) if args.model else None,
            "max_utts": args.max_utts,
            "rows": [asdict(r) for r in rows],
        }
        args.json.write_text(json.dumps(blob, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
