"""phonrec.decode.search.build_search: each decoder config gives exactly the search it names."""

from __future__ import annotations

import pytest
import torch

from phonrec.decode.beam import phone_beam_search
from phonrec.decode.config import BeamConfig, GreedyConfig, LexiconConfig
from phonrec.decode.greedy import greedy
from phonrec.decode.lexicon import LexiconDecoder
from phonrec.decode.search import build_search
from phonrec.lexicon import Lexicon
from phonrec.lm import PhoneBigram
from phonrec.phones import PhoneSet


def _posteriors(phone_set: PhoneSet, ids: list[int], frames_each: int = 4) -> torch.Tensor:
    """(T, K) log-probabilities peaked on ``ids`` in turn, ``frames_each`` frames per phone."""
    lp = torch.full((len(ids) * frames_each, len(phone_set)), -8.0)
    for i, p in enumerate(ids):
        lp[i * frames_each : (i + 1) * frames_each, p] = -0.01
    return lp.log_softmax(-1)


def test_phone_searches_match_the_decoders_called_directly() -> None:
    ps = PhoneSet.from_symbols(["k", "ae", "t", "sil"])
    lp = _posteriors(ps, [ps.index(p) for p in ["sil", "k", "ae", "t", "sil"]])
    lp[5] = lp[5].flip(0)  # one flickering frame
    spans, hyp = build_search(GreedyConfig(min_duration=2), ps)(lp)
    assert hyp is None and spans == greedy(lp, min_duration=2)
    bigram = PhoneBigram.from_phones([["k", "ae", "t"], ["t", "ae", "k"], ["sil", "zz"]], ps)  # unknown zz dropped
    assert bigram.num_phones == len(ps)
    spans, hyp = build_search(BeamConfig(beam=4, lm_weight=0.5, min_duration=2), ps, phone_bigram=bigram)(lp)
    assert hyp is None
    assert spans == phone_beam_search(lp, lp.shape[0], bigram, blank=None, beam=4, lm_weight=0.5, min_duration=2)


def _cat_dog() -> tuple[PhoneSet, Lexicon, torch.Tensor]:
    """A CTC phone set, the lexicon CAT/DOG, and posteriors spelling "cat dog"."""
    ps = PhoneSet.from_symbols(["k", "ae", "t", "d", "ao", "g", "sil"]).with_blank()
    lexicon = Lexicon()
    lexicon.add("CAT", ["k", "ae", "t"])
    lexicon.add("DOG", ["d", "ao", "g"])
    return ps, lexicon, _posteriors(ps, [ps.index(p) for p in ["k", "ae", "t", "d", "ao", "g"]])


def test_lexicon_search_gives_the_hypothesis_or_an_empty_one() -> None:
    ps, lexicon, lp = _cat_dog()
    spans, hyp = build_search(LexiconConfig(), ps, lexicon=lexicon)(lp)
    direct = LexiconDecoder(lexicon, ps).decode(lp)[0]
    assert hyp.words == direct.words == ["CAT", "DOG"] and spans == direct.spans
    frame_level = ps.without_blank()
    too_short = _posteriors(frame_level, [frame_level.index("k")], frames_each=2)
    # two frames fit no phone (nor silence) of at least 3 frames: no path, an empty hypothesis
    spans, hyp = build_search(LexiconConfig(min_duration=3), frame_level, lexicon=lexicon)(too_short)
    assert LexiconDecoder(lexicon, frame_level, min_duration=3).decode(too_short) == []
    assert spans == [] and hyp.words == [] and hyp.score == float("-inf")


def test_lexicon_config_passes_max_active_and_validates_it() -> None:
    """``decoder.max_active`` reaches the decoder (``phonrec-decode decoder.max_active=2000``)."""
    ps, lexicon, lp = _cat_dog()
    spans, hyp = build_search(LexiconConfig(max_active=2), ps, lexicon=lexicon)(lp)
    direct = LexiconDecoder(lexicon, ps, max_active=2).decode(lp)[0]
    assert hyp.words == direct.words and hyp.score == direct.score and spans == direct.spans
    with pytest.raises(ValueError, match="max_active must be >= 1"):
        LexiconConfig(max_active=0)
