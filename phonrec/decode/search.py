"""One search for each decoder config: the decode command and :class:`phonrec.Transcriber` both
build theirs here, so a recipe's decode and a user's transcription run the same search.

Example::

    search = build_search(GreedyConfig(), phone_set)
    spans, hypothesis = search(log_probs)  # hypothesis: the lexicon decoder's words, else None
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from phonrec.decode.beam import phone_beam_search
from phonrec.decode.config import BeamConfig, DecoderConfig, GreedyConfig, LexiconConfig
from phonrec.decode.greedy import greedy
from phonrec.decode.lexicon import Hypothesis, LexiconDecoder
from phonrec.lexicon import Lexicon
from phonrec.lm import PhoneBigram, WordLM
from phonrec.phones import PhoneSet
from phonrec.spans import Span

# log_probs (T, K) -> (phone spans, the lexicon decoder's hypothesis | None for phone decoders)
Search = Callable[[torch.Tensor], tuple[list[Span], Hypothesis | None]]


def no_path() -> Hypothesis:
    """What the lexicon search gives when no word string fits the frames (e.g. too few frames for
    ``min_duration``): no words, scored as deletions like sclite does."""
    return Hypothesis(words=[], phones=[], spans=[], score=float("-inf"))


def build_search(
    cfg: DecoderConfig,
    phone_set: PhoneSet,
    *,
    phone_bigram: PhoneBigram | None = None,
    lexicon: Lexicon | None = None,
    word_lm: WordLM | None = None,
) -> Search:
    """The search ``cfg`` describes, over a model's output ``phone_set`` (CTC when it has a blank).

    Args:
        cfg: a validated decoder config (``min_duration`` already in model frames:
            :func:`phonrec.decode.config.resolve_min_duration`).
        phone_bigram: the beam's phone LM (``None``: no LM).
        lexicon: the lexicon decoder's words (required for :class:`LexiconConfig`).
        word_lm: the lexicon decoder's word LM (``None``: none).

    Raises:
        ValueError: a lexicon config without a lexicon.
    """
    blank = phone_set.blank_id
    if isinstance(cfg, GreedyConfig):
        return lambda lp: (greedy(lp, blank=blank, min_duration=cfg.min_duration), None)
    if isinstance(cfg, BeamConfig):
        return lambda lp: (
            phone_beam_search(
                lp,
                lp.shape[0],
                phone_bigram,
                blank=blank,
                beam=cfg.beam,
                lm_weight=cfg.lm_weight,
                min_duration=cfg.min_duration,
            ),
            None,
        )
    if isinstance(cfg, LexiconConfig):
        if lexicon is None:
            raise ValueError("decoder=lexicon needs a lexicon")
        decoder = LexiconDecoder(
            lexicon,
            phone_set,
            lm=word_lm,
            lm_weight=cfg.lm_weight,
            word_penalty=cfg.word_penalty,
            beam=cfg.beam,
            min_duration=cfg.min_duration,
            max_active=cfg.max_active,
        )

        def search(lp: torch.Tensor) -> tuple[list[Span], Hypothesis]:
            hyps = decoder.decode(lp)
            best = hyps[0] if hyps else no_path()
            return best.spans, best

        return search
    raise TypeError(f"build_search: not a decoder config: {cfg!r}")
