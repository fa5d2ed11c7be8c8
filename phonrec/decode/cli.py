"""``phonrec-decode``: decode a data directory with a model directory and score it.

Usage::

    phonrec-decode model_dir=exp/synth/ctc/model data_dir=data/synth/test decoder=lexicon jobs=2

Writes into ``out_dir`` (default ``<model_dir>/../decode-<decoder>-<data name>``):

- ``hyp.txt``    Kaldi-format phone hypotheses (``utt ph ph ...``);
- ``words.txt``  word hypotheses (lexicon decoder);
- ``spans.txt``  one line per phone: ``utt phone start_s end_s``;
- ``report.txt`` / ``report.json``: sclite-like summary (reference count, substitutions,
  deletions, insertions, PER on 39 folded phones without silence, WER), real-time factor.

The network runs batched in the main process; the search runs in ``jobs`` worker processes.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from phonrec.audio import AudioError, load_audio
from phonrec.config import CONF_DIR
from phonrec.data.datadir import DataDir
from phonrec.features import frames_to_seconds
from phonrec.lexicon import Lexicon
from phonrec.metrics import ErrorCounts, edit_distance
from phonrec.phones import PhoneSet, fold_for_scoring

log = logging.getLogger("phonrec.decode")

_WORKER: dict[str, Any] = {}


def build_decoder(dcfg: dict, phone_set: PhoneSet, model_dir: Path, train_phones: list[list[int]] | None):
    """A function ``log_probs (T, K) -> (spans, words | None)`` for the ``decoder`` config."""
    name = dcfg["name"]
    blank = phone_set.blank_id
    if name == "greedy":
        from phonrec.decode.greedy import greedy

        min_duration = dcfg.get("min_duration", 1)
        return lambda lp: (greedy(lp, blank=blank, min_duration=min_duration), None)
    if name == "beam":
        from phonrec.decode.beam import PhoneBigram, phone_beam_search

        lm = None
        if dcfg.get("phone_lm"):
            lm = PhoneBigram.load(dcfg["phone_lm"])
        elif train_phones:
            lm = PhoneBigram.fit(train_phones, num_phones=len(phone_set))
        opts = {k: v for k, v in dcfg.items() if k not in ("name", "phone_lm", "train_data")}
        return lambda lp: (phone_beam_search(lp, lp.shape[0], lm, blank=blank, **opts), None)
    if name == "lexicon":
        from phonrec.decode.lexicon import LexiconDecoder, WordLM

        lex_path = Path(dcfg.get("lexicon") or model_dir / "lexicon.txt")
        if not lex_path.is_file():
            raise FileNotFoundError(f"decoder.lexicon: {lex_path} does not exist")
        lexicon = Lexicon.from_kaldi(lex_path)
        lm = None
        if dcfg.get("lm"):
            lm_path = Path(dcfg["lm"])
            lm = (
                WordLM.from_arpa(lm_path)
                if lm_path.suffix == ".arpa"
                else WordLM.from_text(
                    [line.split(maxsplit=1)[1] if " " in line else "" for line in lm_path.read_text().splitlines()]
                )
            )
        opts = {k: v for k, v in dcfg.items() if k not in ("name", "lexicon", "lm", "train_data")}
        decoder = LexiconDecoder(lexicon, phone_set, blank=blank, lm=lm, **opts)

        def run(lp):
            hyps = decoder.decode(lp)
            # no path through the lexicon survived (e.g. too few frames for min_duration): an
            # empty hypothesis, scored as deletions like sclite does, and counted in the report
            return (hyps[0].spans, hyps[0].words) if hyps else ([], [])

        return run
    raise ValueError(f"decoder.name must be greedy, beam or lexicon, got {name!r}")


def resolve_min_duration(dcfg: dict, frame_ms: float, frame_level: bool) -> dict:
    """Turn ``min_duration_ms`` into ``min_duration`` frames of a model with ``frame_ms`` per output frame.

    The same duration then means the same thing for a 10-ms model and a stacked 30-ms one. CTC
    models (``frame_level`` false) keep ``min_duration`` 1: their blank already absorbs flicker.
    """
    dcfg = dict(dcfg)
    ms = dcfg.pop("min_duration_ms", None)
    if ms is not None and frame_level:
        ms = float(ms)
        if ms <= 0:
            raise ValueError(f"decoder.min_duration_ms must be > 0, got {ms}")
        dcfg["min_duration"] = max(1, round(ms / frame_ms))
    return dcfg


def _init_worker(dcfg: dict, phone_set: PhoneSet, model_dir: Path, train_phones) -> None:
    torch.set_num_threads(1)
    _WORKER["decode"] = build_decoder(dcfg, phone_set, model_dir, train_phones)


def _decode_one(item: tuple[str, torch.Tensor]):
    """``(utt, spans, words, seconds, error)``: a search that fails is reported, not fatal."""
    utt, lp = item
    t0 = time.perf_counter()
    try:
        spans, words = _WORKER["decode"](lp)
    except ValueError as e:
        return utt, [], None, time.perf_counter() - t0, str(e)
    return utt, spans, words, time.perf_counter() - t0, None


def score(data: DataDir, hyps: dict[str, list[str]], words: dict[str, list[str]] | None) -> dict[str, Any]:
    """PER (39 folded phones, silence removed) and WER, errors summed over utterances."""
    per = ErrorCounts(0, 0, 0, 0)
    wer = ErrorCounts(0, 0, 0, 0)
    for utt, hyp in hyps.items():
        if data.phones and utt in data.phones:
            per = per + edit_distance(fold_for_scoring(data.phones[utt]), fold_for_scoring(hyp))
        if words is not None:
            wer = wer + edit_distance(data.text[utt].split(), words.get(utt, []))
    out = {"utterances": len(hyps), "phones": asdict(per) | {"rate": per.rate}}
    if words is not None:
        out["words"] = asdict(wer) | {"rate": wer.rate}
    return out


def frame_accuracy_of(
    data: DataDir, log_probs: dict[str, torch.Tensor], phone_set: PhoneSet, frame_factor: int = 1
) -> float:
    """Share of feature frames whose arg-max symbol equals the reference alignment (frame-level models).

    ``log_probs`` are ``(T', K)`` per utterance with ``T' = ceil(T / frame_factor)`` (stacked or
    subsampled models): each model frame's label stands for the ``frame_factor`` feature frames it covers.
    """
    correct = total = 0
    for utt, lp in log_probs.items():
        ref = data.alignments.get(utt)
        if not ref:
            continue
        hyp = phone_set.decode(lp.argmax(-1).repeat_interleave(frame_factor).tolist())
        n = min(len(ref), len(hyp))
        correct += sum(r == h for r, h in zip(ref[:n], hyp[:n]))
        total += n
    return correct / max(total, 1)


def format_report(summary: dict[str, Any]) -> str:
    lines = [f"{'':8} {'#utt':>6} {'#ref':>7} {'sub':>6} {'del':>6} {'ins':>6} {'err%':>7}"]
    for unit in ("phones", "words"):
        if unit in summary:
            c = summary[unit]
            lines.append(
                f"{unit:8} {summary['utterances']:6d} {c['reference_length']:7d} {c['substitutions']:6d} "
                f"{c['deletions']:6d} {c['insertions']:6d} {100 * c['rate']:7.2f}"
            )
    if summary.get("empty_hypotheses"):
        lines.append(f"{summary['empty_hypotheses']} utterances got an empty hypothesis (scored as deletions)")
    if "frame_accuracy" in summary:
        lines.append(f"frame accuracy {100 * summary['frame_accuracy']:.2f}%")
    if summary.get("skipped"):
        lines.append(
            f"NOT SCORED: {len(summary['skipped'])} utterances could not be loaded or decoded "
            f"(see report.json 'skipped'); the rates above leave them out"
        )
    lines.append(
        f"real-time factor {summary['rtf']:.4f} (network {summary['rtf_network']:.4f}, "
        f"search {summary['rtf_search']:.4f})"
    )
    return "\n".join(lines) + "\n"


def run(cfg: DictConfig) -> dict[str, Any]:
    from phonrec.transcribe import Transcriber

    model_dir = Path(cfg.model_dir)
    data = DataDir.load(cfg.data_dir)
    out_dir = (
        Path(cfg.out_dir)
        if cfg.get("out_dir")
        else model_dir.parent / f"decode-{cfg.decoder.name}-{Path(cfg.data_dir).name}"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("num_threads"):
        torch.set_num_threads(cfg.num_threads)
    tr = Transcriber.from_pretrained(model_dir, device=cfg.get("device", "cpu"))
    dcfg = resolve_min_duration(
        OmegaConf.to_container(cfg.decoder, resolve=True), tr.hop_ms, tr.phone_set.blank_id is None
    )
    train_phones = None
    if dcfg["name"] == "beam" and not dcfg.get("phone_lm") and dcfg.get("train_data"):
        train = DataDir.load(dcfg["train_data"])
        ps = tr.phone_set
        train_phones = [
            [ps.index(p) for p in seq if p in ps and p != ps.silence] for seq in (train.phones or {}).values()
        ]
    args = (dcfg, tr.phone_set, model_dir, train_phones)
    _init_worker(*args)  # builds the decoder now: a bad lexicon or LM fails before the network pass

    # network: batched forward passes in this process
    utts, audio_seconds, log_probs, bad = data.utts, 0.0, {}, {}
    t0 = time.perf_counter()
    batch: list[tuple[str, torch.Tensor]] = []

    def flush() -> None:
        for (u, _), lp in zip(batch, tr.log_probs_batch([w for _, w in batch])):
            log_probs[u] = lp
        batch.clear()

    for utt in tqdm(utts, desc="network", unit="utt", mininterval=1.0):
        try:
            wave = load_audio(data.wavs[utt], tr.feature_config.sample_rate)
        except AudioError as e:
            bad[utt] = str(e)
            continue
        audio_seconds += wave.shape[0] / tr.feature_config.sample_rate
        batch.append((utt, wave))
        if len(batch) >= cfg.batch_size:
            flush()
    if batch:
        flush()
    network_seconds = time.perf_counter() - t0
    if bad:
        log.warning("%d utterances could not be loaded and are skipped: %s", len(bad), list(bad)[:10])

    # search: in worker processes
    t0 = time.perf_counter()
    hyps: dict[str, list[str]] = {}
    words: dict[str, list[str]] = {}
    spans_out: list[str] = []
    items = [(u, log_probs[u]) for u in utts if u in log_probs]
    if cfg.jobs > 1:
        pool = ProcessPoolExecutor(cfg.jobs, initializer=_init_worker, initargs=args)
        results = pool.map(_decode_one, items, chunksize=4)
    else:
        pool, results = None, map(_decode_one, items)
    symbols = tr.phone_set.symbols
    for utt, spans, w, _, error in tqdm(
        results, total=len(items), desc=f"decode ({dcfg['name']})", unit="utt", mininterval=1.0
    ):
        if error is not None:
            bad[utt] = error
            continue
        hyps[utt] = [symbols[s.phone] for s in spans]
        if w is not None:
            words[utt] = list(w)
        spans_out += [
            f"{utt} {symbols[s.phone]} {frames_to_seconds(s.start, tr.hop_ms):.3f} "
            f"{frames_to_seconds(s.end, tr.hop_ms):.3f}"
            for s in spans
        ]
    if pool is not None:
        pool.shutdown()
    search_seconds = time.perf_counter() - t0

    (out_dir / "hyp.txt").write_text("".join(f"{u} {' '.join(h)}\n" for u, h in sorted(hyps.items())))
    (out_dir / "spans.txt").write_text("\n".join(spans_out) + "\n")
    if words:
        (out_dir / "words.txt").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in sorted(words.items())))
    if bad:
        log.warning(
            "%d utterances could not be decoded: %s", len(bad), "; ".join(f"{u}: {r}" for u, r in list(bad.items())[:5])
        )
    summary = score(data, hyps, words if dcfg["name"] == "lexicon" else None)
    if data.alignments and tr.phone_set.blank_id is None:
        summary["frame_accuracy"] = frame_accuracy_of(data, log_probs, tr.phone_set, tr.model.cfg.frame_factor)
    summary |= {
        "decoder": dcfg,
        "model_dir": str(model_dir),
        "data": str(cfg.data_dir),
        "skipped": bad,
        "audio_seconds": audio_seconds,
        "rtf_network": network_seconds / max(audio_seconds, 1e-9),
        "rtf_search": search_seconds / max(audio_seconds, 1e-9),
    }
    summary["rtf"] = summary["rtf_network"] + summary["rtf_search"]
    summary["empty_hypotheses"] = sum(not h for h in hyps.values())
    (out_dir / "report.json").write_text(json.dumps(summary, indent=1))
    report = format_report(summary)
    (out_dir / "report.txt").write_text(report)
    print(f"{out_dir}:\n{report}", end="")
    return summary


def main() -> None:
    import hydra

    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="decode")(run)()


if __name__ == "__main__":
    main()
