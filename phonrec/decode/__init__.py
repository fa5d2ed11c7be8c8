"""Decoders: per-frame phone log-probabilities (T, K) -> phones with frame spans, or words.

* :mod:`phonrec.decode.greedy` — best path (arg-max, merge repeats, drop blanks).
* :mod:`phonrec.decode.beam` — CTC prefix beam search and a Viterbi phone loop with a phone bigram.
* :mod:`phonrec.decode.lexicon` — dictionary-constrained Viterbi search with an optional word LM.

The language models (:class:`PhoneBigram`, :class:`WordLM`) live in :mod:`phonrec.lm` and the span
type in :mod:`phonrec.spans`; they are re-exported here for ``from phonrec.decode import ...``.
"""

from phonrec.decode.beam import phone_beam_search, viterbi_phone_loop
from phonrec.decode.greedy import greedy, greedy_batch
from phonrec.decode.lexicon import Hypothesis, LexiconDecoder
from phonrec.lm import PhoneBigram, WordLM
from phonrec.spans import Span, spans_to_seconds

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
