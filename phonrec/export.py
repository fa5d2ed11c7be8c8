"""Export a trained model directory as a compact, shippable one (``phonrec-export``,
:mod:`phonrec.cli.export`), optionally with fp16 weights, plus its model card.

The export holds exactly what :func:`phonrec.model_dir.read_model_dir` reads: ``model.safetensors``
(fp32, or fp16 with ``fp16=True``: stored half, upcast to fp32 on reading), ``config.yaml``,
``phones.txt``, and whichever of ``cmvn.json``, ``lexicon.txt``, ``decoding.yaml`` and
``phone_bigram.json`` the source has; then ``MODEL_CARD.md`` and ``card.json``
(:mod:`phonrec.model_card`). Nothing else (checkpoints, TensorBoard logs) is copied.

The fp16 check runs before anything is written: the model with fp32 weights and the model with
the fp16-rounded weights (upcast back, as reading the export does) see the same seeded random
features (standard normal: the scale of CMVN-normalised features); the largest absolute
difference of their log-probabilities must be within ``tolerance`` and their greedy outputs
must be identical. After writing, the export is read back with :func:`read_model_dir` and must
give the same log-probabilities as the checked fp16 (or fp32) model, bit for bit.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

import phonrec
from phonrec.decode.greedy import greedy_batch
from phonrec.model_card import CARD_FILE, FACTS_FILE, CardFacts, ComputedFacts, model_size_mb, write_card
from phonrec.model_dir import CONFIG, OPTIONAL, PHONES, WEIGHTS, ModelDir, read_model_dir
from phonrec.models.bilstm import BiLSTM

EXPORT_FILES = (CONFIG, WEIGHTS, PHONES, *OPTIONAL, CARD_FILE, FACTS_FILE)  # all an export may hold
DIVERGENCE_WORDS = {"ctc": "CTC", "aligned": "frame-level (aligned divergence)", "frame": "frame divergence"}


@dataclass(frozen=True)
class Fp16Check:
    """The fp16 check's result.

    Attributes:
        max_abs_diff: max |log p(fp16 weights) - log p(fp32 weights)| over every valid frame and symbol.
        utterances: random feature sequences compared.
        frames: model output frames compared, in all.
        greedy_differs: how many of the utterances' greedy outputs differ (0: identical).
        tolerance: the bound ``max_abs_diff`` had to keep.
    """

    max_abs_diff: float
    utterances: int
    frames: int
    greedy_differs: int
    tolerance: float

    @property
    def ok(self) -> bool:
        """Log-probs within the tolerance and every greedy output identical."""
        return self.max_abs_diff <= self.tolerance and self.greedy_differs == 0

    def summary(self) -> str:
        """One line: what was compared and what came out."""
        return (
            f"{self.utterances} random feature sequences, {self.frames} model frames: max abs log-prob difference "
            f"{self.max_abs_diff:.3g} (tolerance {self.tolerance:g}), greedy outputs "
            + ("identical" if self.greedy_differs == 0 else f"differ in {self.greedy_differs}")
        )


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model_dir` wrote.

    Attributes:
        out_dir: the export.
        computed: the facts read off it (the card's computed part).
        fp16: the fp16 check (``None`` for an fp32 export).
    """

    out_dir: Path
    computed: ComputedFacts
    fp16: Fp16Check | None


def half_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with every floating-point tensor stored as float16 (others unchanged)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def _random_features(feat_dim: int, utterances: int, frames: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(feats (B, T, F), lengths (B,))``: seeded standard-normal features of a few lengths."""
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(utterances, frames, feat_dim, generator=gen)
    lengths = torch.tensor([frames - (i * frames) // (2 * utterances) for i in range(utterances)])
    return feats, lengths


@torch.no_grad()
def _outputs(model: BiLSTM, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    return model(feats, lengths)


def check_fp16(
    model: BiLSTM,
    blank: int | None,
    *,
    tolerance: float = 0.05,
    utterances: int = 4,
    frames: int = 300,
    seed: int = 0,
) -> tuple[Fp16Check, BiLSTM]:
    """Compare ``model`` with its fp16-rounded copy (module docstring).

    Args:
        model: the fp32 model (left unchanged).
        blank: the blank id for greedy decoding (``None``: a frame-level model).
        tolerance: the largest allowed absolute log-probability difference.
        utterances, frames: how many random feature sequences, and the longest one's feature frames.
        seed: the features' seed.

    Returns:
        the check, and the fp16-rounded model (fp32 tensors holding fp16 values).
    """
    rounded = copy.deepcopy(model)
    rounded.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in half_state(model.state_dict()).items()}
    )
    feats, lengths = _random_features(model.input_dim, utterances, frames, seed)
    lp32, out_lengths = _outputs(model, feats, lengths)
    lp16, _ = _outputs(rounded, feats, lengths)
    valid = torch.arange(lp32.shape[1])[None, :] < out_lengths[:, None]  # (B, T')
    diff = float((lp32 - lp16).abs()[valid].max())
    g32, g16 = greedy_batch(lp32, out_lengths, blank), greedy_batch(lp16, out_lengths, blank)
    differs = sum(a != b for a, b in zip(g32, g16))
    return Fp16Check(diff, utterances, int(out_lengths.sum()), differs, tolerance), rounded


def prepare_out_dir(out_dir: Path, source: Path, overwrite: bool) -> None:
    """Refuse an ``out_dir`` that is the source, a file, or non-empty without ``overwrite``; with
    ``overwrite``, refuse one holding files an export does not write (they are named).

    Raises:
        FileExistsError: naming the directory (and the first foreign file).
        ValueError: ``out_dir`` is the source directory.
    """
    if out_dir.exists() and out_dir.resolve() == source.resolve():
        raise ValueError(f"{out_dir}: OUT_DIR is the model directory being exported; choose another")
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f"{out_dir} already exists; pass --overwrite to replace the export in it")
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in EXPORT_FILES)
    if foreign:
        raise FileExistsError(
            f"{out_dir} holds {foreign[0]}"
            + (f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else "")
            + ", which phonrec-export does not write; --overwrite only replaces an earlier export: "
            "remove it or choose another OUT_DIR"
        )


def describe(md: ModelDir) -> tuple[str, str]:
    """``(architecture, features)`` of a model directory in words, for the card: the divergence,
    the network's size and model frame length, then every setting of its ``model`` group (so a
    setting added to :class:`phonrec.models.bilstm.BiLSTMConfig` later is listed too)."""
    cfg, m = md.config, md.model.cfg
    divergence = str(cfg.divergence.get("name", "unknown")) if "divergence" in cfg else "unknown"
    kind = "BiLSTM" if m.bidirectional else "LSTM"
    frame_ms = md.features.hop_ms * m.frame_factor
    settings = ", ".join(f"{k}={v}" for k, v in asdict(m).items())
    arch = f"{DIVERGENCE_WORDS.get(divergence, divergence)} {kind} {m.layers}x{m.hidden}, {frame_ms:g} ms model frames"
    arch += f" (model: {settings})"
    f = md.features
    bins = f"{f.n_mfcc} coefficients" if f.kind == "mfcc" else f"{f.n_mels} bins"
    feats = f"{f.kind}, {bins}, {f.win_ms:g} ms window, {f.hop_ms:g} ms hop, {f.sample_rate} Hz, CMVN {md.cmvn_mode}"
    if f.deltas:
        feats += f", deltas {f.deltas}"
    return arch, feats


def export_model_dir(
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    fp16: bool = False,
    facts: CardFacts | None = None,
    overwrite: bool = False,
    tolerance: float = 0.05,
) -> ExportResult:
    """Write the compact export of ``model_dir`` to ``out_dir`` (module docstring).

    Args:
        model_dir: a model directory written by ``phonrec-train``.
        out_dir: the export (created; an existing non-empty one only with ``overwrite``, and only
            when it holds nothing but an earlier export's files).
        fp16: store the weights as float16 (after the fp16 check).
        facts: the card's given facts (:func:`phonrec.model_card.read_facts`); ``None``: none.
        overwrite: replace an earlier export in ``out_dir``.
        tolerance: the fp16 check's bound on the absolute log-probability difference.

    Raises:
        ValueError: the fp16 check failed (its numbers named; nothing written), ``out_dir`` is the source.
        FileExistsError: ``out_dir`` is in use (see ``overwrite``).
        FileNotFoundError, ConfigError: ``model_dir`` is not a valid model directory (named).
    """
    source, out = Path(model_dir), Path(out_dir)
    md = read_model_dir(source)
    prepare_out_dir(out, source, overwrite)
    blank = md.phone_set.blank_id
    state = md.model.state_dict()
    check, reference = None, md.model
    if fp16:
        check, reference = check_fp16(md.model, blank, tolerance=tolerance)
        if not check.ok:
            raise ValueError(
                f"{source}: fp16 weights change the model's outputs ({check.summary()}); export without --fp16"
            )
        state = half_state(state)

    tmp = out.parent / f".{out.name}.export-tmp"
    if tmp.exists():
        shutil.rmtree(tmp)  # a crashed export's leftovers (a name only this function uses)
    tmp.mkdir(parents=True)
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / WEIGHTS), metadata={"format": "pt"})
        (tmp / WEIGHTS).chmod(0o644)  # safetensors writes 0600; package data must be readable by every user
        for name in (CONFIG, PHONES, *OPTIONAL):
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
        exported = read_model_dir(tmp)
        feats, lengths = _random_features(md.model.input_dim, 2, 120, seed=1)
        if not torch.equal(_outputs(exported.model, feats, lengths)[0], _outputs(reference, feats, lengths)[0]):
            raise RuntimeError(f"{tmp}: the written export does not reproduce the model it was written from")
        arch, feat_words = describe(md)
        computed = ComputedFacts(
            name=out.name,
            phone_set=tuple(exported.phone_set.symbols),
            parameters=sum(p.numel() for p in exported.model.parameters()),
            size_mb=model_size_mb(tmp),
            weights_mb=round((tmp / WEIGHTS).stat().st_size / 1e6, 3),
            weights_dtype="float16" if fp16 else "float32",
            architecture=arch,
            features=feat_words,
            decoder=exported.decoding.decoder,
            fp16_max_abs_diff=None if check is None else check.max_abs_diff,
            fp16_check=None if check is None else check.summary(),
            phonrec_version=phonrec.__version__,
        )
        write_card(tmp, facts or CardFacts(), computed)
        if out.is_dir():
            for name in EXPORT_FILES:
                (out / name).unlink(missing_ok=True)
            for f in tmp.iterdir():
                f.replace(out / f.name)
            tmp.rmdir()
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return ExportResult(out, computed, check)
