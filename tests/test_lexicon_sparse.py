"""Active-state lexicon search vs brute-force enumeration of word strings on tiny lexicons.

The decoder only updates the states inside the beam; with ``beam=inf`` (no pruning) it must find
the optimum of the objective in the module docstring of :mod:`phonrec.decode.lexicon`, which is
computed here independently: every string of lexicon entries (words and the silence
pseudo-word) is spelled, and its best path is found by enumerating all frame labellings (CTC) or
all phone segmentations (frame-level output).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np
import pytest

from phonrec.decode.lexicon import LexiconDecoder
from phonrec.lexicon import Lexicon
from phonrec.lm import WordLM
from phonrec.phones import PhoneSet

CTC_SET = PhoneSet.from_symbols(["a", "b", "c", "sil"], blank=True)
FRAME_SET = PhoneSet.from_symbols(["a", "b", "c", "sil"])
# homophones (A, AH), a repeated phone inside a word (CC), two pronunciations (BA)
LEX = Lexicon(
    {
        "A": [("a",)],
        "AH": [("a",)],
        "AB": [("a", "b")],
        "BA": [("b", "a"), ("b", "c")],
        "C": [("c",)],
        "CC": [("c", "c")],
    }
)
LM_TEXT = ["A AB C", "C CC A", "BA A", "AB AB", "C A BA"]


def ctc_best_paths(lp: np.ndarray, blank: int) -> dict[tuple[int, ...], float]:
    """Best path score of every collapsed label string, by enumerating all K**T frame labellings."""
    T, K = lp.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    scores = lp[np.arange(T), paths].sum(axis=1, dtype=np.float64)
    best: dict[tuple[int, ...], float] = {}
    for path, s in zip(paths.tolist(), scores.tolist()):
        out = tuple(p for i, p in enumerate(path) if p != blank and (i == 0 or path[i - 1] != p))
        if s > best.get(out, -math.inf):
            best[out] = s
    return best


def frame_best_path(lp: np.ndarray, phones: tuple[int, ...], d: int) -> float:
    """Best segmentation of the T frames into ``phones`` with >= d frames each (all cut points enumerated)."""
    T, n = lp.shape[0], len(phones)
    if n == 0 or n * d > T:
        return -math.inf
    best = -math.inf
    for cuts in itertools.combinations(range(1, T), n - 1):
        bounds = (0, *cuts, T)
        if any(b - a < d for a, b in zip(bounds, bounds[1:])):
            continue
        best = max(best, sum(float(lp[a:b, p].sum(dtype=np.float64)) for p, a, b in zip(phones, bounds, bounds[1:])))
    return best


def entry_strings(ps: PhoneSet, max_phones: int):
    """Every string of lexicon entries (word pronunciations and ``sil``) spelling 1..max_phones phones."""
    tokens = [(w, ps.encode(pr)) for w in LEX.words for pr in LEX.entries[w]] + [(None, [ps.index("sil")])]

    def grow(prefix_words, prefix_phones):
        for w, ph in tokens:
            phones = prefix_phones + tuple(ph)
            if len(phones) > max_phones:
                continue
            words = prefix_words + ((w,) if w else ())
            yield words, phones
            yield from grow(words, phones)

    return grow((), ())


def brute_force(lp: np.ndarray, ps: PhoneSet, *, ctc: bool, d: int, pen: float, lm: WordLM | None, lm_weight: float):
    """Optimum of the objective, and the objective of every word string (best over its spellings)."""
    T = lp.shape[0]
    paths = ctc_best_paths(lp, 0) if ctc else None

    @lru_cache(maxsize=None)
    def acoustic(phones: tuple[int, ...]) -> float:
        return paths.get(phones, -math.inf) if ctc else frame_best_path(lp, phones, d)

    per_words: dict[tuple[str, ...], float] = {}
    for words, phones in entry_strings(ps, T):
        s = acoustic(phones) + pen * len(words) + (lm_weight * lm.sentence_log_prob(list(words)) if lm else 0.0)
        if s > per_words.get(words, -math.inf):
            per_words[words] = s
    return max(per_words.values()), per_words


def random_log_probs(rng: np.random.Generator, T: int, K: int) -> np.ndarray:
    x = rng.normal(0.0, 2.0, (T, K))
    return (x - np.logaddexp.reduce(x, axis=1, keepdims=True)).astype(np.float32)


CASES = [  # (ctc, min_duration, lm order or None, word_penalty)
    (True, 1, None, 0.0),
    (True, 1, None, -0.5),
    (True, 1, 1, 0.3),
    (False, 1, None, -0.5),
    (False, 2, None, 0.0),
    (False, 1, 1, 0.0),
    (False, 2, 1, -0.3),
]


@pytest.mark.parametrize("ctc,d,order,pen", CASES)
def test_exact_search_matches_brute_force(ctc, d, order, pen):
    rng = np.random.default_rng(100 + 10 * ctc + d + (order or 0))
    ps = CTC_SET if ctc else FRAME_SET
    lm = WordLM.from_text(LM_TEXT, order=order) if order else None
    dec = LexiconDecoder(LEX, ps, min_duration=d, beam=math.inf, word_penalty=pen, lm=lm, lm_weight=0.7)
    T = 5 if ctc else 6
    for _ in range(6):
        lp = random_log_probs(rng, T, len(ps))
        opt, per_words = brute_force(lp, ps, ctc=ctc, d=d, pen=pen, lm=lm, lm_weight=0.7)
        hyp = dec.decode(lp)[0]
        assert hyp.score == pytest.approx(opt, abs=1e-4)
        assert per_words[tuple(hyp.words)] == pytest.approx(hyp.score, abs=1e-4)


@pytest.mark.parametrize("ctc,d", [(True, 1), (False, 1), (False, 2)])
def test_bigram_lm_scores_its_words_exactly(ctc, d):
    """With a bigram LM the single-tree search may miss the optimum (never beat it) and reports the exact
    objective of the phone string it returns."""
    rng = np.random.default_rng(7 + d + 10 * ctc)
    ps = CTC_SET if ctc else FRAME_SET
    lm = WordLM.from_text(LM_TEXT, order=2)
    dec = LexiconDecoder(LEX, ps, min_duration=d, beam=math.inf, word_penalty=-0.2, lm=lm, lm_weight=1.5)
    hits = 0
    for _ in range(6):
        lp = random_log_probs(rng, 5 if ctc else 6, len(ps))
        opt, per_words = brute_force(lp, ps, ctc=ctc, d=d, pen=-0.2, lm=lm, lm_weight=1.5)
        hyp = dec.decode(lp)[0]
        ac = ctc_best_paths(lp, 0)[tuple(hyp.phones)] if ctc else frame_best_path(lp, tuple(hyp.phones), d)
        assert hyp.score == pytest.approx(ac - 0.2 * len(hyp.words) + 1.5 * lm.sentence_log_prob(hyp.words), abs=1e-4)
        assert hyp.score <= per_words[tuple(hyp.words)] + 1e-4 <= opt + 2e-4
        hits += hyp.score >= opt - 1e-4
    assert hits >= 3, f"optimum found on {hits}/6 utterances"


def test_silence_spelled_word_uses_per_entry_exits():
    """A word spelled as the lone silence phone shares the silence node but pays the word penalty."""
    lex = Lexicon({**{w: LEX.entries[w] for w in LEX.words}, "HUSH": [("sil",)]})
    ps = CTC_SET
    rng = np.random.default_rng(5)
    dec = LexiconDecoder(lex, ps, beam=math.inf, word_penalty=-1.0)
    sil = ps.index("sil")
    for _ in range(4):
        lp = random_log_probs(rng, 5, len(ps))
        lp[:, sil] += 2.0  # make silence frames likely
        lp = (lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)).astype(np.float32)
        hyp = dec.decode(lp)[0]
        assert "HUSH" not in hyp.words  # same phones as the free silence, minus a word penalty
        opt, _ = brute_force(lp, ps, ctc=True, d=1, pen=-1.0, lm=None, lm_weight=0.0)
        assert hyp.score == pytest.approx(opt, abs=1e-4)


@pytest.mark.parametrize("ctc", [True, False])
def test_pruned_search_never_beats_exact_and_finds_planted(ctc):
    rng = np.random.default_rng(21 + ctc)
    ps = CTC_SET if ctc else FRAME_SET
    kw = dict(word_penalty=-0.3)
    exact = LexiconDecoder(LEX, ps, beam=math.inf, **kw)
    pruned = [LexiconDecoder(LEX, ps, beam=b, max_active=m, **kw) for b, m in ((2.0, None), (6.0, 3), (math.inf, 2))]
    for _ in range(8):
        lp = random_log_probs(rng, 7, len(ps))
        best = exact.decode(lp)[0].score
        for dec in pruned:
            hyps = dec.decode(lp)
            assert not hyps or hyps[0].score <= best + 1e-4
    # strongly planted emissions: the narrow beams find the exact optimum
    words = ["BA", "C", "AB"]  # the only segmentation of b a c a b into lexicon words
    phones = ps.encode(("b", "a", "c", "a", "b"))
    frames = []
    for i, p in enumerate(phones):
        if ctc and i and phones[i - 1] == p:
            frames.append(0)  # CTC: a blank between repeated phones
        frames += [p, p]
    x = np.full((len(frames), len(ps)), -9.0)
    x[np.arange(len(frames)), frames] = -0.001
    best = exact.decode(x)[0]
    assert best.words == words
    for dec in pruned[:2]:
        hyp = dec.decode(x)[0]
        assert hyp.words == words and hyp.score == pytest.approx(best.score, abs=1e-6)


def test_ctc_repeated_phone_inside_a_word():
    """CC (c c) is reached through the blank state of its first c: c c <blank> c c spells CC, not C C."""
    ps = CTC_SET
    c = ps.index("c")
    frames = [c, c, 0, c, c]
    x = np.full((len(frames), len(ps)), -9.0)
    x[np.arange(len(frames)), frames] = -0.001
    for beam in (math.inf, 4.0):
        hyp = LexiconDecoder(LEX, ps, beam=beam, word_penalty=-0.5).decode(x)[0]
        assert hyp.words == ["CC"]
        assert hyp.score == pytest.approx(float(x[np.arange(5), frames].sum()) - 0.5, abs=1e-5)
