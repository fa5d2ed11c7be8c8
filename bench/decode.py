"""Decoding benchmark: greedy, phone beam and lexicon search vs flashlight-text's lexicon decoder.

Synthetic CTC emissions are planted from word strings of a CMUdict-based lexicon (phones are
phonrec's lower-case ARPAbet, K = 39 phones + sil + <blank>), then decoded. Reported per lexicon
size: real-time factor (decode seconds / audio seconds at 100 frames/s; the lexicon decoders also
report their CPU seconds, process time, which a shared machine's load disturbs far less than
wall time: both run in this process on one thread), PER (greedy, beam) or
WER (lexicon search), and for the two lexicon decoders how often their word strings agree and
whether phonrec's objective is >= flashlight's where they differ.

    .venv/bin/python bench/decode.py --utts 50 --sizes 1000 10000 full --json out.json
    .venv/bin/python bench/decode.py --style peaky      # one frame per phone + blanks (real CTC-like)
    .venv/bin/python bench/decode.py --sizes full --utts 20 --max-active none 500 1000 2000 5000

``--max-active`` gives phonrec's histogram pruning (one table row per value, all on the same
emissions and one flashlight run per lexicon size). A flashlight hypothesis is a (trie node, LM
state, previous token) triple; with no LM (``ZeroLM``: one LM state) that is a tree node plus
"last token was blank or phone", which is what a phonrec active state is (the phone or the
blank state of a tree node, CTC). So flashlight ``beam_size=500`` keeps about as many
hypotheses as phonrec ``max_active=500``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from phonrec.decode.beam import phone_beam_search
from phonrec.decode.greedy import greedy
from phonrec.decode.lexicon import LexiconDecoder
from phonrec.lexicon import Lexicon
from phonrec.metrics import edit_distance
from phonrec.phones import PhoneSet

CMU_PHONES = (
    "aa ae ah ao aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t th uh uw v w y z zh"
).split()


def phone_set() -> PhoneSet:
    return PhoneSet.from_symbols(CMU_PHONES + ["sil"], blank=True)


def lexicon_of_size(size: int | None) -> Lexicon:
    """The ``size`` most frequent English words (wordfreq) found in CMUdict; ``None``: all of CMUdict."""
    if size is None:
        return Lexicon.from_cmudict()
    from wordfreq import top_n_list

    full = Lexicon.from_cmudict(top_n_list("en", size * 3))
    words = [w for w in top_n_list("en", size * 3) if w.upper() in full.entries]
    seen: list[str] = []
    for w in words:
        if w.upper() not in seen:
            seen.append(w.upper())
        if len(seen) == size:
            break
    return Lexicon({w: full.entries[w] for w in seen})


def plant(
    words: list[str], lex: Lexicon, ps: PhoneSet, rng: np.random.Generator, *, style: str, noise: float, strength: float
) -> tuple[np.ndarray, list[int]]:
    """CTC log-probs (T, K) for a word string (first pronunciation of each word).

    ``style="multi"``: each phone lasts 2-5 frames, 0-2 blanks between phones (a repeated phone
    always gets >= 1 blank). ``style="peaky"``: one frame per phone, 1-3 blanks between.
    """
    phones = [ps.index(p) for w in words for p in lex.entries[w][0]]
    frames: list[int] = [0] * int(rng.integers(1, 4))
    prev = -1
    for p in phones:
        if p == prev and frames[-1] != 0:
            frames.append(0)
        if style == "multi":
            frames += [p] * int(rng.integers(2, 6)) + [0] * int(rng.integers(0, 3))
        else:
            frames += [p] + [0] * int(rng.integers(1, 4))
        prev = p
    frames += [0] * int(rng.integers(1, 4))
    T, K = len(frames), len(ps)
    x = rng.normal(0.0, noise, (T, K))
    x[np.arange(T), frames] += strength
    x = x - np.logaddexp.reduce(x, axis=1, keepdims=True)
    return x.astype(np.float32), phones


@dataclass
class FlashlightLexiconDecoder:
    """flashlight-text 0.0.7 ``LexiconDecoder`` (CTC criterion, no LM) over a phonrec lexicon."""

    lexicon: Lexicon
    phone_set: PhoneSet
    beam_size: int = 500
    beam_threshold: float = 16.0
    word_score: float = 0.0
    sil_score: float = 0.0

    def __post_init__(self) -> None:
        from flashlight.lib.text.decoder import (
            CriterionType,
            LexiconDecoder,
            LexiconDecoderOptions,
            SmearingMode,
            Trie,
            ZeroLM,
        )

        ps = self.phone_set
        self.words = self.lexicon.words
        sil = ps.index("sil")
        trie = Trie(len(ps), sil)
        for wi, w in enumerate(self.words):
            for pron in self.lexicon.entries[w]:
                trie.insert([ps.index(p) for p in pron], wi, 0.0)
        trie.smear(SmearingMode.MAX)
        opts = LexiconDecoderOptions(
            beam_size=self.beam_size,
            beam_size_token=len(ps),
            beam_threshold=self.beam_threshold,
            lm_weight=0.0,
            word_score=self.word_score,
            unk_score=float("-inf"),
            sil_score=self.sil_score,
            log_add=False,
            criterion_type=CriterionType.CTC,
        )
        self._lm = ZeroLM()  # keep a reference: the decoder does not own it
        self._trie = trie
        self.decoder = LexiconDecoder(opts, trie, self._lm, sil, ps.blank_id, len(self.words), [], False)

    def decode(self, log_probs: np.ndarray) -> tuple[list[str], list[int]]:
        """(T, K) log-probs -> (words, collapsed token string without blanks)."""
        em = torch.from_numpy(np.ascontiguousarray(log_probs, dtype=np.float32))
        res = self.decoder.decode(em.data_ptr(), em.shape[0], em.shape[1])[0]
        words = [self.words[i] for i in res.words if i >= 0]
        toks: list[int] = []
        prev = None
        for tk in res.tokens:
            if tk != prev and tk != self.phone_set.blank_id and tk >= 0:
                toks.append(int(tk))
            prev = tk
        return words, toks


def objective_of(dec: LexiconDecoder, log_probs: np.ndarray, words: list[str], phones: list[int]) -> float:
    """phonrec's objective (best CTC path of ``phones`` + word penalties) of a decoder's output."""
    return dec._rescore(log_probs, words, phones).score


def run(args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(1)
    ps = phone_set()
    rows = []
    for size_s in args.sizes:
        size = None if size_s == "full" else int(size_s)
        t0 = time.perf_counter()
        lex = lexicon_of_size(size)
        rng = np.random.default_rng(args.seed)
        vocab = lex.words if size is not None else lexicon_of_size(1000).words  # sentences from common words
        utts = []
        for _ in range(args.utts):
            ws = [vocab[i] for i in rng.integers(0, len(vocab), int(rng.integers(4, 9)))]
            x, ph = plant(ws, lex, ps, rng, style=args.style, noise=args.noise, strength=args.strength)
            utts.append((ws, ph, x))
        audio_s = sum(u[2].shape[0] for u in utts) / 100.0
        t1 = time.perf_counter()
        ours = LexiconDecoder(lex, ps, beam=args.beam, word_penalty=args.word_penalty)
        t_build_ours = time.perf_counter() - t1
        t1 = time.perf_counter()
        fl = FlashlightLexiconDecoder(
            lex, ps, beam_size=args.fl_beam_size, beam_threshold=args.beam, word_score=args.word_penalty
        )
        t_build_fl = time.perf_counter() - t1
        res: dict = {
            "lexicon_words": len(lex),
            "tree_nodes": len(ours.tree),
            "utts": args.utts,
            "audio_s": audio_s,
            "build_s": {"phonrec": t_build_ours, "flashlight": t_build_fl},
            "style": args.style,
        }
        for name in ("greedy", "beam"):
            t1 = time.perf_counter()
            hyps = [
                greedy(x, blank=0) if name == "greedy" else phone_beam_search(x, None, None, blank=0, beam=8)
                for _, _, x in utts
            ]
            el = time.perf_counter() - t1
            err = sum(
                (edit_distance(ph, [s.phone for s in h]) for (_, ph, _), h in zip(utts, hyps)),
                start=edit_distance([], []),
            )
            res[name] = {"rtf": el / audio_s, "per": err.rate}
        t1, c1 = time.perf_counter(), time.process_time()
        fl_out = [fl.decode(x) for _, _, x in utts]
        el_fl, cpu_fl = time.perf_counter() - t1, time.process_time() - c1
        werr_f = edit_distance([], [])
        for (ws, _, _), (fw, _) in zip(utts, fl_out):
            werr_f = werr_f + edit_distance(ws, fw)
        for max_active in args.max_active:
            ours.max_active = max_active  # histogram pruning only: the tree and tables stay
            t1, c1 = time.perf_counter(), time.process_time()
            ours_out = [ours.decode(x)[0] for _, _, x in utts]
            el_ours, cpu_ours = time.perf_counter() - t1, time.process_time() - c1
            agree, ours_better, fl_better = 0, 0, 0
            werr_o = edit_distance([], [])
            for (ws, _, x), h, (fw, ft) in zip(utts, ours_out, fl_out):
                werr_o = werr_o + edit_distance(ws, h.words)
                if h.words == fw:
                    agree += 1
                    continue
                so, sf = h.score, objective_of(ours, x, fw, ft)
                ours_better += so >= sf - 1e-3
                fl_better += sf > so + 1e-3
            row = dict(res, max_active=max_active)
            row["phonrec_lexicon"] = {
                "rtf": el_ours / audio_s,
                "wer": werr_o.rate,
                "seconds": el_ours,
                "cpu_s": cpu_ours,
            }
            row["flashlight_lexicon"] = {"rtf": el_fl / audio_s, "wer": werr_f.rate, "seconds": el_fl, "cpu_s": cpu_fl}
            row["agree"] = agree
            row["differ_phonrec_objective_ge"] = ours_better
            row["differ_flashlight_objective_gt"] = fl_better
            row["total_s"] = time.perf_counter() - t0
            rows.append(row)
        print(f"# size {size_s}: done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return rows


def _max_active(s: str) -> int | None:
    return None if s.lower() == "none" else int(s)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["1000", "10000", "full"], help="lexicon sizes (words) or 'full'")
    ap.add_argument("--utts", type=int, default=50)
    ap.add_argument("--style", choices=["multi", "peaky"], default="multi")
    ap.add_argument("--noise", type=float, default=1.0, help="std of the Gaussian logit noise")
    ap.add_argument("--strength", type=float, default=4.0, help="logit added to the planted symbol")
    ap.add_argument("--beam", type=float, default=16.0, help="log-prob beam (phonrec beam, flashlight beam_threshold)")
    ap.add_argument("--fl-beam-size", type=int, default=500, help="flashlight beam_size (hypotheses kept)")
    ap.add_argument(
        "--max-active",
        nargs="+",
        type=_max_active,
        default=[None],
        metavar="N",
        help="phonrec max_active (states kept per frame; 'none': no limit); several values: one row each",
    )
    ap.add_argument("--word-penalty", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    rows = run(args)
    hdr = (
        f"{'words':>7} {'nodes':>7} {'max_act':>7} | {'greedy PER':>10} {'RTF':>7} | {'beam PER':>8} {'RTF':>7} | "
        f"{'phonrec WER':>11} {'RTF':>7} {'CPU s':>7} | {'fl WER':>7} {'RTF':>7} {'CPU s':>7} | "
        f"{'RTF ratio':>9} {'CPU ratio':>9} | agree  ours>=fl  fl>ours"
    )
    print(
        f"style={args.style} utts={args.utts} noise={args.noise} strength={args.strength} "
        f"beam={args.beam} fl_beam_size={args.fl_beam_size} max_active={args.max_active} "
        f"word_penalty={args.word_penalty}"
    )
    print(hdr)
    for r in rows:
        o, f = r["phonrec_lexicon"], r["flashlight_lexicon"]
        print(
            f"{r['lexicon_words']:>7} {r['tree_nodes']:>7} {str(r['max_active']):>7} | "
            f"{r['greedy']['per']:>10.3f} {r['greedy']['rtf']:>7.4f} | "
            f"{r['beam']['per']:>8.3f} {r['beam']['rtf']:>7.4f} | {o['wer']:>11.3f} "
            f"{o['rtf']:>7.4f} {o['cpu_s']:>7.2f} | {f['wer']:>7.3f} {f['rtf']:>7.4f} {f['cpu_s']:>7.2f} | "
            f"{o['rtf'] / max(f['rtf'], 1e-12):>9.2f} {o['cpu_s'] / max(f['cpu_s'], 1e-12):>9.2f} | {r['agree']:>5}  "
            f"{r['differ_phonrec_objective_ge']:>7}  {r['differ_flashlight_objective_gt']:>6}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
