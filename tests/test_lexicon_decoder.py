"""Lexicon-constrained search: recovery of planted words, CTC repeat rules, LM, flashlight comparison."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio.functional as taf

from phonrec.decode.lexicon import LexiconDecoder, PrefixTree
from phonrec.lexicon import Lexicon
from phonrec.lm import WordLM
from phonrec.phones import PhoneSet
from phonrec.spans import Span

PHONES = "aa ae ah ao aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t th uh uw v w y z zh".split()
CTC_SET = PhoneSet.from_symbols(PHONES + ["sil"], blank=True)
FRAME_SET = PhoneSet.from_symbols(PHONES + ["sil"])


def random_lexicon(rng: np.random.Generator, n: int = 120) -> Lexicon:
    """Random words of 3-6 phones, some with two pronunciations, plus two homophones."""
    lex = Lexicon()
    for i in range(n):
        pron = tuple(PHONES[j] for j in rng.integers(0, len(PHONES), int(rng.integers(3, 7))))
        lex.add(f"W{i}", pron)
        if i % 10 == 0:
            lex.add(f"W{i}", pron[:-1] + (PHONES[int(rng.integers(0, len(PHONES)))],))
    lex.add("HOMO", lex.entries["W1"][0])
    return lex


def plant(words, lex, ps, rng, *, ctc: bool, noise=1.0, strength=5.0):
    """Log-probs (T, K) for a word string; each phone lasts 2-5 frames; returns (lp, phone ids)."""
    prons = [lex.entries[w][int(rng.integers(0, len(lex.entries[w])))] for w in words]
    phones = [ps.index(p) for pr in prons for p in pr]
    frames: list[int] = [0] * int(rng.integers(1, 3)) if ctc else [ps.index("sil")] * 3
    for p in phones:
        if ctc and frames and frames[-1] == p:
            frames.append(0)
        frames += [p] * int(rng.integers(2, 6))
        if ctc:
            frames += [0] * int(rng.integers(0, 2))
    frames += [0] if ctc else [ps.index("sil")] * 2
    x = rng.normal(0, noise, (len(frames), len(ps)))
    x[np.arange(len(frames)), frames] += strength
    return (x - np.logaddexp.reduce(x, axis=1, keepdims=True)).astype(np.float32), phones


def test_prefix_tree_layout():
    """Breadth-first ids: each node's children are consecutive ids, the one repeating its phone last."""
    rng = np.random.default_rng(3)
    lex = random_lexicon(rng, 300)
    lex.add("AAA", ("aa", "aa", "aa"))
    lex.add("AAB", ("aa", "aa", "b"))
    t = PrefixTree.build(lex, CTC_SET, CTC_SET.index("sil"))
    n = len(t)
    inner = np.flatnonzero(t.parent >= 0)
    assert (t.parent[inner] < inner).all() and (np.diff(t.parent[inner]) >= 0).all()
    assert (t.parent[: n - inner.size] == -1).all()
    for node in np.unique(t.parent[inner]):
        kids = np.flatnonzero(t.parent == node)
        assert (np.diff(kids) == 1).all()
        same = t.phone[kids] == t.phone[node]
        assert same.sum() <= 1 and (not same.any() or same[-1])
    for w, prons in lex.entries.items():  # every pronunciation still ends at its entry node
        for pron in prons:
            ends = t.ent_node[[i for i, wi in enumerate(t.ent_word) if wi >= 0 and t.words[wi] == w]]
            assert [CTC_SET.index(p) for p in pron] in [t.node_phones(int(e)) for e in ends]


@pytest.mark.parametrize("ctc", [True, False])
def test_recovers_planted_words(ctc):
    rng = np.random.default_rng(7)
    lex = random_lexicon(rng)
    ps = CTC_SET if ctc else FRAME_SET
    dec = LexiconDecoder(lex, ps, min_duration=1 if ctc else 2, beam=16.0, word_penalty=-1.0)
    vocab = [w for w in lex.words if w != "HOMO"]
    ok = 0
    for _ in range(200):
        words = [vocab[i] for i in rng.integers(0, len(vocab), int(rng.integers(3, 6)))]
        lp, _ = plant(words, lex, ps, rng, ctc=ctc)
        hyp = dec.decode(torch.from_numpy(lp))[0]
        assert all(w in lex for w in hyp.words)  # never a word outside the lexicon
        # the phones spell the words (each word by one of its pronunciations, silences aside)
        sil = ps.index("sil")
        spelled = [p for p in hyp.phones if p != sil]
        pos = 0
        for w in hyp.words:
            match = [pr for pr in lex.entries[w] if ps.encode(pr) == spelled[pos : pos + len(pr)]]
            assert match, (w, spelled)
            pos += len(match[0])
        assert pos == len(spelled)
        # HOMO and W1 are homophones: without an LM either is a correct answer
        ok += ["W1" if w == "HOMO" else w for w in hyp.words] == words
    assert ok >= 192, f"{ok}/200 word strings recovered"


def ctc_path_score(lp: np.ndarray, phones: list[int]) -> float:
    """Independent best CTC path log-probability (torchaudio.functional.forced_align)."""
    _, scores = taf.forced_align(torch.from_numpy(lp)[None], torch.tensor([phones], dtype=torch.int32), blank=0)
    return float(scores.sum())


def test_score_is_objective_and_beats_the_truth():
    rng = np.random.default_rng(3)
    lex = random_lexicon(rng, 40)
    pen = -0.7
    dec = LexiconDecoder(lex, CTC_SET, beam=math.inf, word_penalty=pen, silence=None)
    vocab = lex.words
    for _ in range(30):
        words = [vocab[i] for i in rng.integers(0, len(vocab), 3)]
        lp, phones = plant(words, lex, CTC_SET, rng, ctc=True, noise=1.5, strength=3.0)
        hyp = dec.decode(lp)[0]
        assert hyp.score == pytest.approx(ctc_path_score(lp, hyp.phones) + pen * len(hyp.words), abs=1e-3)
        # exact search: no planted string may score better
        assert hyp.score >= ctc_path_score(lp, phones) + pen * len(words) - 1e-3


def test_ctc_repeated_phone_across_words_needs_blank():
    lex = Lexicon({"AK": [("aa", "k")], "KI": [("k", "iy")], "AKKI": [("aa", "k", "iy")]})
    ps = CTC_SET
    a, k, i = ps.index("aa"), ps.index("k"), ps.index("iy")

    def lp_of(frames):
        x = np.full((len(frames), len(ps)), -8.0)
        x[np.arange(len(frames)), frames] = -0.01
        return x.astype(np.float32)

    dec = LexiconDecoder(lex, ps, silence=None)
    assert dec.decode(lp_of([a, a, k, k, k, i, i]))[0].words == ["AKKI"]  # k k k is one k
    assert dec.decode(lp_of([a, a, k, k, 0, k, i, i]))[0].words == ["AK", "KI"]  # blank separates


def test_homophones_and_lm(tmp_path):
    lex = Lexicon({"RED": [("r", "eh", "d")], "READ": [("r", "eh", "d"), ("r", "iy", "d")], "BOOK": [("b", "uh", "k")]})
    ps = FRAME_SET
    frames = [ps.index(p) for p in ("b", "b", "uh", "uh", "k", "k", "r", "r", "eh", "eh", "d", "d")]
    x = np.full((len(frames), len(ps)), -6.0)
    x[np.arange(len(frames)), frames] = -0.01
    lm = WordLM.from_text(["BOOK READ", "A BOOK READ", "RED CAR"])
    dec = LexiconDecoder(lex, ps, lm=lm, lm_weight=1.0, min_duration=2)
    hyps = dec.decode(x, nbest=2)
    assert hyps[0].words == ["BOOK", "READ"]
    assert hyps[0].lm == pytest.approx(lm.sentence_log_prob(["BOOK", "READ"]))
    assert len(hyps) == 2 and hyps[1].words == ["BOOK", "RED"] and hyps[1].score < hyps[0].score
    assert hyps[0].score - hyps[1].score == pytest.approx(
        lm.sentence_log_prob(["BOOK", "READ"]) - lm.sentence_log_prob(["BOOK", "RED"])
    )
    # LM: probabilities of every history sum to one over the predicted vocabulary
    V = len(lm.vocab)
    for h in range(V):
        p = np.exp(lm.score_ids(np.full(V, h), np.arange(V)))
        assert p.sum() == pytest.approx(1.0, abs=1e-6)
    lm.to_arpa(tmp_path / "lm.arpa")
    lm2 = WordLM.from_arpa(tmp_path / "lm.arpa")
    for s in (["READ", "BOOK"], ["RED", "CAR"], ["BOOK", "UNSEEN"]):
        assert lm2.sentence_log_prob(s) == pytest.approx(lm.sentence_log_prob(s), abs=1e-5)


def test_blank_comes_from_the_phone_set():
    """A CTC phone set decodes CTC paths without being told its blank (blank frames belong to no
    span); a set without ``<blank>`` decodes frame-level output (spans tile all frames)."""
    lex = Lexicon({"A": [("aa",)]})
    assert LexiconDecoder(lex, CTC_SET).blank == CTC_SET.blank_id == 0
    assert LexiconDecoder(lex, FRAME_SET).blank is None
    aa = CTC_SET.index("aa")
    frames = [0, aa, aa, 0]
    lp = np.full((len(frames), len(CTC_SET)), np.log(1e-3), np.float32)
    lp[np.arange(len(frames)), frames] = 0.0
    assert LexiconDecoder(lex, CTC_SET, silence=None).decode(lp)[0].spans == [Span(aa, 1, 3)]
    with pytest.raises(TypeError):
        LexiconDecoder(lex, CTC_SET, blank=0)  # the blank is the phone set's, not a parameter


def test_frame_priors_and_min_duration_validation():
    lex = Lexicon({"A": [("aa",)]})
    with pytest.raises(ValueError, match="min_duration"):
        LexiconDecoder(lex, CTC_SET, min_duration=2)
    with pytest.raises(ValueError, match="not in the"):
        LexiconDecoder(Lexicon({"Q": [("qq",)]}), FRAME_SET)
    dec = LexiconDecoder(lex, FRAME_SET, min_duration=3)
    assert dec.decode(np.zeros((2, len(FRAME_SET)), np.float32)) == []  # too short for any word


def _bench_module():
    spec = importlib.util.spec_from_file_location(
        "bench_decode", Path(__file__).resolve().parents[1] / "bench" / "decode.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.mark.parametrize("style", ["peaky", "multi"])
def test_against_flashlight(style):
    """Same CTC emissions, lexicon and beam: where the word strings differ, phonrec scores >= flashlight."""
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
    bench = _bench_module()
    rng = np.random.default_rng(11)
    lex = random_lexicon(rng, 200)
    ps = CTC_SET
    pen = -1.0
    ours = LexiconDecoder(lex, ps, beam=16.0, word_penalty=pen)
    fl = bench.FlashlightLexiconDecoder(lex, ps, beam_size=200, beam_threshold=16.0, word_score=pen)
    vocab = [w for w in lex.words if w != "HOMO"]
    agree = 0
    for _ in range(25):
        words = [vocab[i] for i in rng.integers(0, len(vocab), 4)]
        lp, _ = bench.plant(words, lex, ps, rng, style=style, noise=1.0, strength=4.0)
        hyp = ours.decode(lp)[0]
        fw, ft = fl.decode(lp)
        assert all(w in lex for w in fw)
        if hyp.words == fw:
            agree += 1
            continue
        fl_obj = ours._rescore(lp, fw, ft).score  # flashlight's phone string under our objective
        assert hyp.score >= fl_obj - 1e-3, (hyp.words, fw)
    print(f"{style}: word strings agree on {agree}/25")
