"""A test set of festival-voice utterances with exact reference phones (a Kaldi-style data directory).

    python bench/festival_testset.py OUT_DIR [--voices kal_diphone,ked_diphone,cmu_us_slt_arctic_hts]
        [--num-utts 200] [--seed 0] [--exclude DATA_DIR ...]

Sentences
    Drawn exactly as the synthetic corpus draws its generated text
    (:func:`phonrec.data.synth.generate_sentence`: 3-9 words, Zipf-weighted over wordfreq's 5000
    most frequent words that CMUdict and flite accept), but from RNG streams of their own
    (``festival:<seed>:<index>``), so they are not the synthetic corpus's sentences. A sentence
    that any ``--exclude`` data directory's ``text`` holds is drawn again, so
    ``--exclude data/synth/train`` guarantees that no training sentence is in the test set.
    Utterance ``i`` is said by voice ``i mod len(voices)``.

Audio and labels
    Each voice runs once, ``festival -b OUT_DIR/festival/<voice>.scm``: per utterance the script
    synthesises the text, saves the wave and prints the ``Segment`` relation (phone name, end
    time) and the ``Word`` relation. The wave is resampled to 16 kHz mono 16-bit
    (:func:`phonrec.data.voices.to_16k`); phones map to phonrec's symbols with
    :func:`phonrec.phones.flite_to_phonrec` (``ax`` -> ``ah``, ``pau`` -> ``sil``; adjacent silences
    merged, :func:`phonrec.data.voices.ends_to_segments`). The diphone voices' audio runs 21-23 ms
    past the end of their last ``pau`` (HTS: exactly to it), so the final silence is extended to the
    audio's end; more than ``END_TOLERANCE_S`` of extra audio, audio ending inside the last phone,
    phones outside the 39 CMU phones, or festival saying other words than the text (its ``Word``
    relation) skip the utterance with a message. Voices that festival does not list are skipped
    with a message.

OUT_DIR (must not exist, or be empty) becomes a data directory in the synthetic corpus's format:
``wav.scp text utt2spk spk2utt phones alignments`` (speaker = voice), ``wav/<utt>.wav`` and
``wav/<utt>.seg`` (``start end phone`` per line), ``festival/<voice>.scm`` (the scripts run),
``summary.json`` and ``README.txt``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phonrec.cli.errors import user_errors  # noqa: E402
from phonrec.data import synth  # noqa: E402
from phonrec.data.datadir import DataDir  # noqa: E402
from phonrec.data.segments import Segment, segments_to_frame_labels  # noqa: E402
from phonrec.data.voices import CMU_PHONES, SAMPLE_RATE, ends_to_segments, fit_segments_to_audio, to_16k  # noqa: E402
from phonrec.features import num_frames  # noqa: E402
from phonrec.phones import SILENCE  # noqa: E402

PROG = "festival_testset"
DEFAULT_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
#: Audio may run this long past festival's last phone end (diphone voices: 21-23 ms measured).
END_TOLERANCE_S = 0.05


@dataclass(frozen=True)
class Planned:
    """One utterance to make: ``utt`` = ``<voice>-<index:06d>``, said by ``voice``."""

    utt: str
    voice: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class FestivalOutput:
    """What festival printed for one utterance: ``(phone, end_seconds)`` pairs and its words."""

    pairs: list[tuple[str, float]]
    words: list[str]


def check_festival() -> None:
    """Raises ``FileNotFoundError`` (saying how to install it) when ``festival`` is not on PATH."""
    if shutil.which("festival") is None:
        raise FileNotFoundError("the 'festival' program is not on PATH (Debian/Ubuntu: apt-get install festival)")


def installed_voices() -> list[str]:
    """The voices festival lists (``(voice.list)``)."""
    proc = subprocess.run(
        ["festival", "--pipe"], input='(format t "VOICES %l\\n" (voice.list))\n', capture_output=True, text=True
    )
    m = re.search(r"^VOICES \((.*)\)$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"festival did not list its voices: {proc.stderr.strip()[:200]}")
    return m.group(1).split()


def excluded_sentences(dirs: list[Path]) -> set[tuple[str, ...]]:
    """Every sentence (upper-case words) of the ``text`` files of ``dirs``."""
    out: set[tuple[str, ...]] = set()
    for d in dirs:
        out.update(tuple(t.upper().split()) for t in DataDir.load(d).text.values())
    return out


def plan(voices: list[str], num_utts: int, seed: int, exclude: set[tuple[str, ...]]) -> tuple[list[Planned], int]:
    """Utterance ``i``: voice ``voices[i % len]`` says a sentence from RNG ``festival:<seed>:<i>``
    (redrawn while it is in ``exclude``). Returns the plan and how many draws were excluded."""
    cfg = synth.SynthConfig(num_utts=max(1, num_utts))  # the corpus's sentence settings
    vocabulary = synth.load_vocabulary(cfg.vocab_size, set(synth.cmudict().entries))
    cum = synth.zipf_cum_weights(len(vocabulary))
    planned, redrawn = [], 0
    for i in range(num_utts):
        rng = random.Random(f"festival:{seed}:{i}")
        words = synth.generate_sentence(rng, vocabulary, cum, cfg)
        while words in exclude:
            redrawn += 1
            words = synth.generate_sentence(rng, vocabulary, cum, cfg)
        voice = voices[i % len(voices)]
        planned.append(Planned(f"{voice}-{i:06d}", voice, words))
    return planned, redrawn


def festival_script(voice: str, items: list[Planned], raw_dir: Path) -> str:
    """The Scheme program that synthesises ``items`` with ``voice`` into ``raw_dir/<utt>.wav`` and
    prints, per utterance, ``UTT id``, ``SEG phone end`` lines, ``WORD word`` lines and ``END id``
    (``FAIL id`` when festival raises an error for it)."""
    lines = [f"(voice_{voice})"]
    for p in items:
        text = " ".join(p.words).lower()
        lines.append(
            "(unwind-protect (begin\n"
            f'  (set! u (utt.synth (Utterance Text "{text}")))\n'
            f'  (utt.save.wave u "{raw_dir / (p.utt + ".wav")}" \'riff)\n'
            f'  (format t "UTT {p.utt}\\n")\n'
            '  (mapcar (lambda (s) (format t "SEG %s %f\\n" (item.name s) (item.feat s "end")))'
            " (utt.relation.items u 'Segment))\n"
            '  (mapcar (lambda (w) (format t "WORD %s\\n" (item.name w))) (utt.relation.items u \'Word))\n'
            f'  (format t "END {p.utt}\\n"))\n'
            f'  (format t "FAIL {p.utt}\\n"))'
        )
    return "\n".join(lines) + "\n"


def parse_festival_output(stdout: str) -> dict[str, FestivalOutput]:
    """The utterances the script finished (``UTT ... END`` blocks); failed or cut-off ones are absent."""
    done: dict[str, FestivalOutput] = {}
    current: str | None = None
    pairs: list[tuple[str, float]] = []
    words: list[str] = []
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "UTT":
            current, pairs, words = fields[1], [], []
        elif current and len(fields) == 3 and fields[0] == "SEG":
            pairs.append((fields[1], float(fields[2])))
        elif current and len(fields) == 2 and fields[0] == "WORD":
            words.append(fields[1])
        elif current and fields == ["END", current]:
            done[current] = FestivalOutput(pairs, words)
            current = None
    return done


def finish_utterance(p: Planned, out: FestivalOutput, raw_wav: Path, wav_dir: Path) -> tuple[list[Segment], int]:
    """Check festival's output for ``p``, write ``wav/<utt>.wav`` (16 kHz) and ``.seg``; returns
    ``(segments, samples)``.

    Raises:
        ValueError: other words than the text, no or unknown phones, unreadable audio (the reason named).
    """
    if [w.upper() for w in out.words] != list(p.words):
        raise ValueError(f"festival says {' '.join(out.words)!r} for {' '.join(p.words).lower()!r}")
    if not out.pairs:
        raise ValueError("festival printed no segments")
    audio, sr = sf.read(raw_wav, dtype="int16")
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"festival wrote {'multi-channel' if audio.ndim != 1 else 'empty'} audio")
    wave = to_16k(audio, sr, 1.0)
    segments = fit_segments_to_audio(
        ends_to_segments(out.pairs), wave.shape[0] / SAMPLE_RATE, synthesiser="festival", tolerance_s=END_TOLERANCE_S
    )
    strange = sorted({s.label for s in segments} - CMU_PHONES - {SILENCE})
    if strange:
        raise ValueError(f"festival phones outside the 39 CMU phones: {strange}")
    if all(s.label == SILENCE for s in segments):
        raise ValueError("no phones")
    sf.write(wav_dir / f"{p.utt}.wav", wave, SAMPLE_RATE, subtype="PCM_16")
    synth.write_seg_file(wav_dir / f"{p.utt}.seg", segments)
    return segments, int(wave.shape[0])


def build(out: Path, voices: list[str], num_utts: int, seed: int, exclude_dirs: list[Path]) -> dict:
    """Write the test set into ``out`` (layout in the module docstring); returns the summary.

    Raises:
        ValueError: ``out`` is not empty, no voice is installed, ``num_utts < 1``, or nothing was made.
        FileNotFoundError: festival is not installed.
    """
    t0 = time.perf_counter()
    check_festival()
    if num_utts < 1:
        raise ValueError(f"--num-utts must be >= 1, got {num_utts}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty directory; give a new OUT_DIR or remove it")
    available = installed_voices()
    missing = [v for v in voices if v not in available]
    for v in missing:
        print(f"{PROG}: voice {v} is not installed (festival lists {available}); skipped", file=sys.stderr)
    voices = [v for v in voices if v in available]
    if not voices:
        raise ValueError(f"none of the voices is installed (festival lists {available})")
    planned, redrawn = plan(voices, num_utts, seed, excluded_sentences(exclude_dirs))
    wav_dir, raw_dir, scm_dir = out / "wav", out / "raw", out / "festival"
    for d in (wav_dir, raw_dir, scm_dir):
        d.mkdir(parents=True, exist_ok=True)
    made: dict[str, tuple[Planned, list[Segment], int]] = {}
    skipped: dict[str, str] = {}
    for voice in voices:
        items = [p for p in planned if p.voice == voice]
        script = scm_dir / f"{voice}.scm"
        script.write_text(festival_script(voice, items, raw_dir.resolve()), encoding="utf-8")
        proc = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True)
        printed = parse_festival_output(proc.stdout)
        for p in items:
            if p.utt not in printed:
                skipped[p.utt] = f"festival failed on it (exit {proc.returncode}): {proc.stderr.strip()[-200:]}"
                continue
            try:
                segments, n = finish_utterance(p, printed[p.utt], raw_dir / f"{p.utt}.wav", wav_dir)
                made[p.utt] = (p, segments, n)
            except (ValueError, RuntimeError, OSError) as e:
                skipped[p.utt] = str(e)
    shutil.rmtree(raw_dir)
    for utt, why in sorted(skipped.items()):
        print(f"{PROG}: skipped {utt}: {why}", file=sys.stderr)
    if not made:
        raise ValueError(f"no utterance was made ({len(skipped)} skipped)")
    DataDir(
        wavs={u: wav_dir / f"{u}.wav" for u in made},
        text={u: " ".join(p.words) for u, (p, _, _) in made.items()},
        utt2spk={u: p.voice for u, (p, _, _) in made.items()},
        phones={u: [s.label for s in segs if s.label != SILENCE] for u, (_, segs, _) in made.items()},
        alignments={u: segments_to_frame_labels(segs, num_frames(n), source=u) for u, (_, segs, n) in made.items()},
    ).save(out)
    summary = {
        "utterances": len(made),
        "requested": num_utts,
        "hours": round(sum(n for _, _, n in made.values()) / SAMPLE_RATE / 3600, 4),
        "per_voice": {v: sum(p.voice == v for p, _, _ in made.values()) for v in voices},
        "voices_missing": missing,
        "seed": seed,
        "excluded_text_of": [str(d) for d in exclude_dirs],
        "redrawn_excluded": redrawn,
        "skipped": skipped,
        "festival": subprocess.run(["festival", "--version"], capture_output=True, text=True).stdout.strip(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    (out / "README.txt").write_text(readme(summary, sys.argv), encoding="utf-8")
    return summary


def readme(s: dict, argv: list[str]) -> str:
    """OUT_DIR/README.txt: what the directory is and how it was made."""
    voices = ", ".join(f"{v} ({n})" for v, n in s["per_voice"].items())
    return "\n".join(
        [
            "Festival-voice test set with exact reference phones, made by phonrec's bench/festival_testset.py:",
            "  python " + " ".join(argv),
            f"{s['utterances']} utterances of {s['requested']} requested ({s['hours']:.3f} h), "
            f"{len(s['skipped'])} skipped; voices (utterances): {voices}; seed {s['seed']}; {s['festival']}.",
            "Sentences: the synthetic corpus's generated text (phonrec.data.synth.generate_sentence) from RNG",
            "streams 'festival:<seed>:<index>'; sentences in the text of "
            f"{s['excluded_text_of'] or 'no data directory'} were redrawn ({s['redrawn_excluded']} draws).",
            "Audio: festival -b festival/<voice>.scm (utt.synth, utt.save.wave), resampled to 16 kHz mono 16-bit.",
            "Labels: festival's Segment relation (phone, end time) mapped by phonrec.phones.flite_to_phonrec",
            "(ax -> ah, pau -> sil); the final silence ends at the audio's end. phones: the phone string without",
            "sil; alignments: one symbol per 10 ms frame; wav/<utt>.seg: start end phone (seconds).",
            "Speaker = voice. Details: the docstring of bench/festival_testset.py; summary.json lists skips.",
            "",
        ]
    )


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n", 1)[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--voices", default=",".join(DEFAULT_VOICES), help="comma-separated festival voices")
    parser.add_argument("--num-utts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude", type=Path, nargs="*", default=[], help="data dirs whose sentences are not used")
    args = parser.parse_args(argv)
    voices = [v for v in args.voices.split(",") if v]
    s = build(args.out_dir, voices, args.num_utts, args.seed, args.exclude)
    print(
        f"{s['utterances']} utterances ({s['hours']:.3f} h), {len(s['skipped'])} skipped, "
        f"{s['seconds']:.1f} s -> {args.out_dir}  " + " ".join(f"{v}={n}" for v, n in s["per_voice"].items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
