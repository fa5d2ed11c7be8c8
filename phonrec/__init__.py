"""phonrec: speech phoneme recognition.

The public face::

    import phonrec
    tr = phonrec.Transcriber.from_pretrained("exp/synth/model")
    result = tr.transcribe("a.wav")
    print(result.phones, result.spans)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# name -> module; resolved lazily so `import phonrec` stays cheap and modules load on first use.
_EXPORTS = {
    "Transcriber": "phonrec.transcribe",
    "Transcription": "phonrec.transcribe",
    "PhoneSet": "phonrec.phones",
    "Lexicon": "phonrec.lexicon",
    "DataDir": "phonrec.data.datadir",
    "AudioError": "phonrec.audio",
    "load_audio": "phonrec.audio",
    "FeatureConfig": "phonrec.features",
    "compute_features": "phonrec.features",
    "BiLSTM": "phonrec.models.bilstm",
    "edit_distance": "phonrec.metrics",
    "Pronouncer": "phonrec.pronounce",
    "Alignment": "phonrec.forced_align",
    "AlignmentError": "phonrec.forced_align",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'phonrec' has no attribute {name!r}")
