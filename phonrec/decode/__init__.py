"""Decoders: per-frame phone log-probabilities (T, K) -> phones with frame spans, or words.

* :mod:`phonrec.decode.greedy` — best path (arg-max, merge repeats, drop blanks).
* :mod:`phonrec.decode.beam` — phone bigram, CTC prefix beam search, Viterbi phone loop.
* :mod:`phonrec.decode.lexicon` — dictionary-constrained Viterbi search with an optional word LM.
"""

from phonrec.decode.beam import PhoneBigram, phone_beam_search, viterbi_phone_loop
from phonrec.decode.greedy import Span, greedy, greedy_batch, spans_to_seconds
from phonrec.decode.lexicon import Hypothesis, LexiconDecoder, WordLM

__all__ = [
    "Hypothesis",
    "LexiconDecoder",
    "PhoneBigram",
    "Span",
    "WordLM",
    "greedy",
    "greedy_batch",
    "phone_beam_search",
    "spans_to_seconds",
    "viterbi_phone_loop",
]
