"""``phonrec-decode``: decode a data directory with a model directory and score it.

Usage::

    phonrec-decode model_dir=exp/synth/ctc/model data_dir=data/synth/test decoder=lexicon jobs=2
    python -m phonrec.cli.decode model_dir=... data_dir=... decoder=greedy|beam|lexicon

Writes into ``out_dir`` (default ``<model_dir>/../decode-<decoder>-<data name>``; for a model packaged
with phonrec, by name or by path, ``./decode-<decoder>-<data name>``: never inside the package):

- ``hyp.txt``    Kaldi-format phone hypotheses (``utt ph ph ...``);
- ``words.txt``  word hypotheses (lexicon decoder);
- ``spans.txt``  one line per phone: ``utt phone start_s end_s``;
- ``report.txt`` / ``report.json``: sclite-like summary (``metrics.format_report``: reference
  count, substitutions, deletions, insertions, PER on 39 folded phones without silence, WER),
  frame accuracy of frame-level models, real-time factor. Only utterances with a reference are
  scored: without reference phones (no ``phones`` file) report.json has no ``phones`` block and
  report.txt says there is nothing to score, never a 0% error rate; likewise ``words`` needs
  reference ``text``. ``unscored`` counts the decoded utterances left out for want of a reference.
  With an ``utt2spk`` file in the data directory, report.json's ``per_speaker`` holds the spread
  over speakers (``metrics.SpeakerSummary``: each speaker's errors summed over their utterances;
  number of speakers, mean, std, worst and best with their ids, and a table of utterances,
  reference length, errors and rate per speaker) of the phones and, with words, of the words;
  report.txt ends with the PER summary line and the speakers' table, worst first. Without
  ``utt2spk`` there is no per-speaker summary.

``model_dir`` and ``data_dir`` are required; a user error (missing key, bad path, broken model
directory, bad value) is one line on stderr and exit status 2 (:func:`phonrec.cli.errors.user_errors`).

The network runs batched in the main process; the search runs in ``jobs`` worker processes.
Scoring is :mod:`phonrec.metrics`'s; the decoder config is a :mod:`phonrec.decode.config` dataclass.
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
from phonrec.cli.errors import user_errors
from phonrec.config import CONF_DIR, ConfigError
from phonrec.data.datadir import DataDir
from phonrec.decode.config import (
    BeamConfig,
    DecoderConfig,
    LexiconConfig,
    decoder_config_from,
    resolve_min_duration,
)
from phonrec.decode.search import Search, build_search
from phonrec.lexicon import Lexicon
from phonrec.lm import PhoneBigram, WordLM
from phonrec.metrics import (
    ErrorCounts,
    SpeakerSummary,
    format_report,
    frame_accuracy,
    per_by_utterance,
    speaker_summary,
    wer_by_utterance,
)
from phonrec.phones import PhoneSet
from phonrec.pretrained import PACKAGE_DIR
from phonrec.pretrained import resolve as resolve_model
from phonrec.spans import frames_to_seconds
from phonrec.transcribe import Transcriber

log = logging.getLogger("phonrec.decode")

PROG = "phonrec-decode"
EXAMPLE = f"{PROG} model_dir=exp/synth/ctc/model data_dir=data/synth/test"
REQUIRED_KEYS = ("model_dir", "data_dir")

_WORKER: dict[str, Search] = {}


def load_word_lm(path: Path) -> WordLM:
    """``decoder.lm``: an ARPA file, or a Kaldi ``text`` file (``utt WORD ...``) to estimate a bigram from."""
    if path.suffix == ".arpa":
        return WordLM.from_arpa(path)
    return WordLM.from_text(
        [line.split(maxsplit=1)[1] if " " in line else "" for line in path.read_text().splitlines()]
    )


def build_decoder(cfg: DecoderConfig, phone_set: PhoneSet, model_dir: Path) -> Search:
    """The search for the ``decoder`` config (:func:`phonrec.decode.search.build_search`), with the
    files it names loaded: the beam's bigram (``phone_lm``, or fitted on ``train_data``'s phones),
    the lexicon (``decoder.lexicon`` or ``<model_dir>/lexicon.txt``) and its word LM."""
    bigram = lexicon = word_lm = None
    if isinstance(cfg, BeamConfig) and cfg.phone_lm:
        bigram = PhoneBigram.load(cfg.phone_lm)
    elif isinstance(cfg, BeamConfig) and cfg.train_data:
        phones = DataDir.load(cfg.train_data).phones
        bigram = PhoneBigram.from_phones(phones.values(), phone_set) if phones else None
    if isinstance(cfg, LexiconConfig):
        lex_path = Path(cfg.lexicon or model_dir / "lexicon.txt")
        if not lex_path.is_file():
            hint = "" if cfg.lexicon else " (the model directory has no lexicon: give decoder.lexicon=FILE)"
            raise FileNotFoundError(f"decoder.lexicon: {lex_path} does not exist{hint}")
        lexicon = Lexicon.from_kaldi(lex_path)
        word_lm = load_word_lm(Path(cfg.lm)) if cfg.lm else None
    return build_search(cfg, phone_set, phone_bigram=bigram, lexicon=lexicon, word_lm=word_lm)


def _init_worker(cfg: DecoderConfig, phone_set: PhoneSet, model_dir: Path) -> None:
    torch.set_num_threads(1)
    _WORKER["decode"] = build_decoder(cfg, phone_set, model_dir)


def _decode_one(item: tuple[str, torch.Tensor]):
    """``(utt, spans, words, seconds, error)``: a search that fails is reported, not fatal."""
    utt, lp = item
    t0 = time.perf_counter()
    try:
        spans, hypothesis = _WORKER["decode"](lp)
    except ValueError as e:
        return utt, [], None, time.perf_counter() - t0, str(e)
    words = None if hypothesis is None else hypothesis.words
    return utt, spans, words, time.perf_counter() - t0, None


def _counts_json(counts: ErrorCounts) -> dict[str, Any]:
    return asdict(counts) | {"rate": counts.rate}


def score(
    data: DataDir, hyps: dict[str, list[str]], words: dict[str, list[str]] | None
) -> tuple[dict[str, ErrorCounts] | None, dict[str, ErrorCounts] | None]:
    """Per-utterance ``(phone counts | None, word counts | None)`` (utt -> counts; summed, the corpus
    counts): ``metrics.per`` (39 folded phones, silence removed) of each decoded utterance that has
    reference phones, and ``metrics.wer`` of each decoded utterance that has a reference text (an
    utterance without a word hypothesis scores as deletions). ``None`` where no decoded utterance
    has that reference (nothing to score) or, for words, when the search gives no words."""
    ref_phones = data.phones or {}
    scored = [u for u in hyps if u in ref_phones]
    phones = per_by_utterance({u: ref_phones[u] for u in scored}, {u: hyps[u] for u in scored}) if scored else None
    with_text = [u for u in hyps if data.text.get(u, "").strip()]
    if words is None or not with_text:
        return phones, None
    return phones, wer_by_utterance({u: data.text[u] for u in with_text}, {u: words.get(u, []) for u in with_text})


def speaker_map(data: DataDir) -> dict[str, str] | None:
    """The data directory's ``utt2spk``, or ``None`` when it has no such file (``DataDir.load`` then
    makes every utterance its own speaker, which a per-speaker summary must not pass off as speakers)."""
    if data.path is None or not (Path(data.path) / "utt2spk").is_file():
        return None
    return data.utt2spk


def per_speaker(
    utt2spk: dict[str, str] | None, phones: dict[str, ErrorCounts] | None, words: dict[str, ErrorCounts] | None
) -> dict[str, SpeakerSummary]:
    """report.json's ``per_speaker`` summaries: ``phones`` (PER) and ``words`` (WER), each where
    those utterances were scored; empty without ``utt2spk``."""
    if utt2spk is None:
        return {}
    blocks = {"phones": phones, "words": words}
    return {name: speaker_summary(by_utt, utt2spk) for name, by_utt in blocks.items() if by_utt}


def nothing_to_score_report(title: str, utterances: int, *, skipped: int, rtf: tuple[float, float, float]) -> str:
    """report.txt of a decode without reference phones: what was decoded, and that no rate exists."""
    lines = [
        title,
        f"nothing to score: none of the {utterances} decoded utterances has reference phones "
        "(no `phones` file in data_dir); hypotheses are in hyp.txt and spans.txt",
    ]
    if skipped:
        lines.append(f"{skipped} utterances could not be loaded or decoded (see report.json 'skipped')")
    lines.append(f"real-time factor {rtf[0]:.4f} (network {rtf[1]:.4f}, search {rtf[2]:.4f})")
    return "\n".join(lines) + "\n"


def check_arguments(cfg: DictConfig) -> None:
    """The keys a decode cannot start without, and the top-level values' types, named with an example.

    Raises:
        ConfigError: ``model_dir is required, e.g. phonrec-decode model_dir=... data_dir=...``,
            or ``jobs must be a positive integer, got 'x'``.
    """
    for key in REQUIRED_KEYS:
        if key not in cfg or OmegaConf.is_missing(cfg, key) or not str(cfg[key] or "").strip():
            raise ConfigError(f"{key} is required, e.g. {EXAMPLE}")
    for key, least in (("jobs", 1), ("batch_size", 1), ("num_threads", 0)):
        value = cfg.get(key, least)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            kind = "a positive integer" if least else "an integer >= 0"
            raise ConfigError(f"{key} must be {kind}, got {value!r}")


def frame_accuracy_of(
    data: DataDir, log_probs: dict[str, torch.Tensor], phone_set: PhoneSet, frame_factor: int
) -> float | None:
    """``metrics.frame_accuracy`` of the arg-max symbols against the reference alignments, over the
    utterances that have one (``None`` when none has). ``log_probs`` are ``(T', K)`` with
    ``T' = ceil(T / frame_factor)``: each model frame stands for ``frame_factor`` feature frames."""
    refs = {u: data.alignments[u] for u in log_probs if data.alignments and data.alignments.get(u)}
    if not refs:
        return None
    hyps = {u: phone_set.decode(log_probs[u].argmax(-1).tolist()) for u in refs}
    return frame_accuracy(refs, hyps, frame_factor=frame_factor)


def network_pass(
    tr: Transcriber, data: DataDir, batch_size: int, bad: dict[str, str]
) -> tuple[dict[str, torch.Tensor], float]:
    """Batched forward passes in this process: ``(utt -> log_probs (T', K), seconds of audio)``.
    Utterances whose audio cannot be loaded go into ``bad`` with the reason. A speaker-CMVN model
    reads each speaker's recordings together (:meth:`Transcriber.speaker_batches`)."""
    log_probs: dict[str, torch.Tensor] = {}
    audio_seconds = 0.0
    sample_rate = tr.feature_config.sample_rate
    progress = tqdm(total=len(data.utts), desc="network", unit="utt", mininterval=1.0)

    def read(utt: str) -> torch.Tensor | None:
        progress.update()
        try:
            return load_audio(data.wavs[utt], sample_rate)
        except AudioError as e:
            bad[utt] = str(e)
            return None

    for batch, stats in tr.speaker_batches(data.utts, data.utt2spk, read, batch_size):
        audio_seconds += sum(w.shape[0] for _, w in batch) / sample_rate
        for (u, _), lp in zip(batch, tr.log_probs_batch([w for _, w in batch], speaker_stats=stats)):
            log_probs[u] = lp
    progress.close()
    return log_probs, audio_seconds


def search_pass(
    items: list[tuple[str, torch.Tensor]], worker_args: tuple, jobs: int, bad: dict[str, str]
) -> list[tuple[str, list[Any], list[str] | None]]:
    """The search over ``(utt, log_probs)`` in ``jobs`` worker processes (in this one for ``jobs=1``):
    ``(utt, spans, words | None)`` in ``items`` order; an utterance whose search fails goes into ``bad``."""
    if jobs > 1:
        pool = ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=worker_args)
        results = pool.map(_decode_one, items, chunksize=4)
    else:
        pool, results = None, map(_decode_one, items)
    out = []
    for utt, spans, words, _, error in tqdm(
        results, total=len(items), desc=f"decode ({worker_args[0].name})", unit="utt", mininterval=1.0
    ):
        if error is not None:
            bad[utt] = error
        else:
            out.append((utt, spans, words))
    if pool is not None:
        pool.shutdown()
    return out


def write_hypotheses(out_dir: Path, decoded: list[tuple[str, list[Any], list[str] | None]], symbols, hop_ms: float):
    """``hyp.txt``, ``spans.txt`` and (when the search gives words) ``words.txt``; returns
    ``(utt -> phones, utt -> words)``."""
    hyps = {utt: [symbols[s.phone] for s in spans] for utt, spans, _ in decoded}
    words = {utt: list(w) for utt, _, w in decoded if w is not None}
    spans_out = [
        f"{utt} {symbols[s.phone]} {frames_to_seconds(s.start, hop_ms):.3f} {frames_to_seconds(s.end, hop_ms):.3f}"
        for utt, spans, _ in decoded
        for s in spans
    ]
    (out_dir / "hyp.txt").write_text("".join(f"{u} {' '.join(h)}\n" for u, h in sorted(hyps.items())))
    (out_dir / "spans.txt").write_text("\n".join(spans_out) + "\n")
    if words:
        (out_dir / "words.txt").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in sorted(words.items())))
    return hyps, words


def default_out_dir(model_dir: Path, decoder: str, data_dir: Path) -> Path:
    """``<model_dir>/../decode-<decoder>-<data dir name>``, or that name in the working directory
    when ``model_dir`` is a packaged model (a name such as ``en`` or a path into
    :data:`phonrec.pretrained.PACKAGE_DIR`, read as :func:`phonrec.pretrained.resolve` reads it for
    the transcriber): an installed package is no place for a user's results."""
    name = f"decode-{decoder}-{data_dir.name}"
    if resolve_model(model_dir).resolve().is_relative_to(PACKAGE_DIR):
        return Path(name)
    return model_dir.parent / name


def run(cfg: DictConfig) -> dict[str, Any]:
    """Decode ``cfg.data_dir`` with ``cfg.model_dir``, write hypotheses and report; returns report.json's dict.

    ``out_dir`` defaults to :func:`default_out_dir`.
    """
    check_arguments(cfg)
    dcfg = decoder_config_from(OmegaConf.to_container(cfg.decoder, resolve=True))  # a typo fails before any work
    model_dir = Path(cfg.model_dir)
    data = DataDir.load(cfg.data_dir)
    out_dir = Path(cfg.out_dir) if cfg.get("out_dir") else default_out_dir(model_dir, dcfg.name, Path(cfg.data_dir))
    if cfg.get("num_threads"):
        torch.set_num_threads(cfg.num_threads)
    tr = Transcriber.from_pretrained(model_dir, device=cfg.get("device", "cpu"))
    dcfg = resolve_min_duration(dcfg, tr.hop_ms, tr.phone_set.blank_id is None)
    args = (dcfg, tr.phone_set, model_dir)
    _init_worker(*args)  # builds the decoder now: a bad lexicon or LM fails before the network pass
    out_dir.mkdir(parents=True, exist_ok=True)  # only once the model and the decoder are known to load

    bad: dict[str, str] = {}
    t0 = time.perf_counter()
    log_probs, audio_seconds = network_pass(tr, data, cfg.batch_size, bad)
    network_seconds = time.perf_counter() - t0
    if bad:
        log.warning("%d utterances could not be loaded and are skipped: %s", len(bad), list(bad)[:10])
    t0 = time.perf_counter()
    decoded = search_pass([(u, log_probs[u]) for u in data.utts if u in log_probs], args, cfg.jobs, bad)
    search_seconds = time.perf_counter() - t0
    hyps, words = write_hypotheses(out_dir, decoded, tr.phone_set.symbols, tr.hop_ms)
    if bad:
        log.warning(
            "%d utterances could not be decoded: %s", len(bad), "; ".join(f"{u}: {r}" for u, r in list(bad.items())[:5])
        )

    phone_utts, word_utts = score(data, hyps, words if isinstance(dcfg, LexiconConfig) else None)
    phone_counts = ErrorCounts.sum(phone_utts.values()) if phone_utts is not None else None
    word_counts = ErrorCounts.sum(word_utts.values()) if word_utts is not None else None
    speakers = per_speaker(speaker_map(data), phone_utts, word_utts)
    summary: dict[str, Any] = {"utterances": len(hyps)}
    if phone_counts is not None:
        summary["phones"] = _counts_json(phone_counts)
    summary["unscored"] = len(hyps) - (phone_counts.utterances if phone_counts is not None else 0)
    if word_counts is not None:
        summary["words"] = _counts_json(word_counts)
    if speakers:
        summary["per_speaker"] = {name: s.to_json() for name, s in speakers.items()}
    if tr.phone_set.blank_id is None:  # frame-level models: one label per frame, as the alignments
        frame_acc = frame_accuracy_of(data, log_probs, tr.phone_set, tr.model.cfg.frame_factor)
        if frame_acc is not None:
            summary["frame_accuracy"] = frame_acc
    summary |= {
        "decoder": asdict(dcfg),
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
    title = f"{Path(cfg.data_dir).name}: {dcfg.name} decoder"
    rtf = (summary["rtf"], summary["rtf_network"], summary["rtf_search"])
    if phone_counts is None:
        report = nothing_to_score_report(title, len(hyps), skipped=len(bad), rtf=rtf)
    else:
        report = format_report(
            phone_counts,
            title=title,
            words=word_counts,
            speakers=speakers.get("phones"),
            frame_acc=summary.get("frame_accuracy"),
            empty_hypotheses=summary["empty_hypotheses"],
            skipped=len(bad),
            rtf=rtf,
        )
        if summary["unscored"]:
            report += f"{summary['unscored']} decoded utterances have no reference phones and are not scored\n"
    (out_dir / "report.txt").write_text(report)
    print(f"{out_dir}:\n{report}", end="")
    return summary


def main() -> None:
    """Console entry point ``phonrec-decode`` (a Hydra app over ``phonrec/conf/decode.yaml``)."""
    import hydra

    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="decode")(user_errors(PROG)(run))()


if __name__ == "__main__":
    main()
