"""Feature cache, datasets and length-bucketed batching.

Features are computed once per (data directory, feature config) and cached on disk as one
memory-mappable ``feats.npy`` (all frames of all utterances stacked, ``(sum T, F)`` float32)
with an ``index.json`` giving each utterance's offset and length. The index is written last
and names the config and the content fingerprint, so a half-written cache (a killed run) or a
stale one (other config, changed data) is detected and rebuilt, never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from phonrec.audio import AudioError, load_audio
from phonrec.augment import AugmentConfig, augmented_features, scale_frame_labels
from phonrec.data.datadir import DataDir
from phonrec.divergences import IGNORE_INDEX, REGISTRY
from phonrec.features import FeatureConfig, compute_features, speaker_statistics
from phonrec.phones import PhoneSet

log = logging.getLogger(__name__)

CACHE_VERSION = 1
BABBLE_POOL = 32  # babble is mixed from the last this many utterances read
TargetKind = Literal["ctc", "aligned", "label"]
ITEM_KEY: dict[str, str] = {spec.target: spec.item_key for spec in REGISTRY.values()}  # target kind -> item key


def _fingerprint(data: DataDir, cfg: FeatureConfig, augment: dict | None = None) -> str:
    """Hash of the feature config, the augmentation (if any) and every (utt, path, size, mtime) of
    the data directory."""
    h = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode())
    h.update(str(CACHE_VERSION).encode())
    if augment is not None:
        h.update(json.dumps(augment, sort_keys=True).encode())
    for utt in data.utts:
        path = Path(data.wavs[utt])
        try:
            st = path.stat()
            h.update(f"{utt}\0{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{utt}\0{path}\0missing\n".encode())
    return h.hexdigest()


@dataclass
class FeatureCache:
    """Cached features of one data directory: ``feats[offset : offset + length]`` per utterance.

    Attributes:
        feats: ``(sum T, F)`` float32, memory-mapped.
        index: utt -> (offset, length) for every utterance that loaded.
        bad: utt -> reason, for utterances that were reported and skipped.
        factors: utt -> speed factor of an augmented copy (absent = 1.0: the clean features).
    """

    feats: np.ndarray
    index: dict[str, tuple[int, int]]
    bad: dict[str, str]
    factors: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, utt: str) -> torch.Tensor:
        """``(T, F)`` float32 features of ``utt`` (a copy, safe to modify)."""
        offset, length = self.index[utt]
        return torch.from_numpy(np.array(self.feats[offset : offset + length]))

    def lengths(self) -> dict[str, int]:
        return {u: n for u, (_, n) in self.index.items()}

    def iter_features(self) -> Iterator[torch.Tensor]:
        for utt in self.index:
            yield self[utt]

    @classmethod
    def build(
        cls,
        data: DataDir,
        cfg: FeatureConfig,
        cache_dir: str | Path,
        *,
        progress: bool = True,
        augment: AugmentConfig | None = None,
        copy: int = 0,
        seed: int = 0,
    ) -> "FeatureCache":
        """Load the cache in ``cache_dir`` if it matches ``data`` and ``cfg``; else compute and write it.

        With ``augment``, the cache holds augmented copy number ``copy`` (>= 1) of the data: every
        utterance through :func:`phonrec.augment.augmented_features` with a generator seeded by
        ``(seed, copy, utterance id)``, babble mixed from the last utterances read, and the speed
        factors recorded in :attr:`factors`.

        Utterances whose audio cannot be loaded are reported (count and ids, in the log) and skipped.
        """
        cache_dir = Path(cache_dir)
        index_path = cache_dir / "index.json"
        aug_key = None if augment is None else {"augment": augment.cache_key(), "copy": copy, "seed": seed}
        fingerprint = _fingerprint(data, cfg, aug_key)
        if index_path.is_file():
            try:
                meta = json.loads(index_path.read_text())
                if meta.get("fingerprint") == fingerprint:
                    feats = np.load(cache_dir / "feats.npy", mmap_mode="r")
                    if feats.shape == (meta["frames"], cfg.dim):
                        index = {u: (int(o), int(n)) for u, (o, n) in meta["index"].items()}
                        return cls(feats=feats, index=index, bad=meta.get("bad", {}), factors=meta.get("factors", {}))
                log.info("%s: feature cache is stale or incomplete; rebuilding", cache_dir)
            except (OSError, ValueError, KeyError) as e:
                log.warning("%s: feature cache unreadable (%s); rebuilding", cache_dir, e)
        cache_dir.mkdir(parents=True, exist_ok=True)
        index_path.unlink(missing_ok=True)  # the index marks completeness: remove it first

        chunks: list[np.ndarray] = []
        index: dict[str, tuple[int, int]] = {}
        bad: dict[str, str] = {}
        factors: dict[str, float] = {}
        recent: list[torch.Tensor] = []  # clean waveforms of the last utterances read, for babble
        offset = 0
        desc = f"features {cache_dir.name}" + (f" (augmented copy {copy})" if augment is not None else "")
        for utt in tqdm(data.utts, desc=desc, unit="utt", disable=not progress, mininterval=1.0):
            try:
                wave = load_audio(data.wavs[utt], sample_rate=cfg.sample_rate)
                if augment is None:
                    feats = compute_features(wave, cfg)
                else:
                    gen = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{copy}:{utt}".encode()))
                    feats, factors[utt] = augmented_features(wave, cfg, augment, gen, others=recent)
                    recent = (recent + [wave])[-BABBLE_POOL:]
                feats = feats.numpy().astype(np.float32, copy=False)
            except (AudioError, OSError, ValueError) as e:
                bad[utt] = str(e)
                continue
            chunks.append(feats)
            index[utt] = (offset, feats.shape[0])
            offset += feats.shape[0]
        if bad:
            log.warning(
                "%s: %d of %d utterances could not be loaded and are skipped: %s",
                data.path or cache_dir,
                len(bad),
                len(data),
                "; ".join(f"{u}: {r}" for u, r in list(bad.items())[:5]),
            )
        if not index:
            raise ValueError(f"{data.path or cache_dir}: no utterance could be loaded ({len(bad)} bad)")
        all_feats = np.concatenate(chunks) if chunks else np.zeros((0, cfg.dim), np.float32)
        # Per-process temporary names: DDP ranks may build the same cache at once; each
        # rename is atomic and the contents are identical, so the last writer wins harmlessly.
        tmp = cache_dir / f"feats.npy.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, all_feats)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(cache_dir / "feats.npy")
        meta = {
            "version": CACHE_VERSION,
            "fingerprint": fingerprint,
            "frames": int(offset),
            "config": asdict(cfg),
            "index": index,
            "bad": bad,
        }
        if aug_key is not None:
            meta.update(augment=aug_key, factors=factors)
        tmp_index = cache_dir / f"index.json.{os.getpid()}.tmp"
        tmp_index.write_text(json.dumps(meta))
        tmp_index.replace(index_path)
        return cls(feats=np.load(cache_dir / "feats.npy", mmap_mode="r"), index=index, bad=bad, factors=factors)


def sequence_label(text: str) -> str:
    """The class label of an utterance for sequence classification: its lower-cased transcript
    with words joined by ``_`` (``"NINE"`` -> ``nine``, ``"THANK YOU"`` -> ``thank_you``)."""
    return "_".join(text.lower().split())


def _fit_length(labels: list[str], num_frames: int, utt: str, tolerance: int = 2) -> list[str]:
    """Make frame labels exactly ``num_frames`` long: trim or repeat the last label within ``tolerance``."""
    diff = num_frames - len(labels)
    if abs(diff) > tolerance:
        raise ValueError(f"utterance {utt}: alignment has {len(labels)} frames but the features have {num_frames}")
    return labels[:num_frames] if diff <= 0 else labels + [labels[-1]] * diff


class UtteranceDataset(Dataset):
    """Features of a data directory with the targets a divergence needs.

    Items are dicts: ``utt`` (str), ``feats`` ``(T, F)``, and, by ``target``:
      - ``"ctc"``: ``targets`` ``(S,)`` phone ids (silence removed; blank is id 0 of ``phone_set``);
      - ``"aligned"``: ``frame_labels`` ``(T,)`` phone ids from the ``alignments`` file;
      - ``"label"``: ``label`` () the id of :func:`sequence_label` of the utterance's ``text`` in ``phone_set``
        (sequence classification: the "phone set" is then the set of class labels).

    Utterances whose targets are missing or use symbols outside ``phone_set`` are reported and skipped.

    ``versions`` are augmented copies of ``cache`` (:meth:`FeatureCache.build` with ``augment``):
    :meth:`item` reads version 0 (``cache``) or one of them, with frame labels rescaled by the
    copy's speed factor (:func:`phonrec.augment.scale_frame_labels`); indexing reads version 0.

    With ``speaker_cmvn`` every item also holds ``cmvn`` ``(2, F)``: the mean and std of its
    speaker's frames (``utt2spk``) in the version it is read from
    (:func:`phonrec.features.speaker_statistics`; a speed-perturbed copy is a speaker of its own).
    """

    def __init__(
        self,
        data: DataDir,
        cache: FeatureCache,
        phone_set: PhoneSet,
        target: TargetKind,
        *,
        phone_map: dict[str, str] | None = None,
        versions: Sequence[FeatureCache] = (),
        speaker_cmvn: bool = False,
    ) -> None:
        if target not in ITEM_KEY:
            raise ValueError(f"target must be one of {sorted(ITEM_KEY)}, got {target!r}")
        self.cache, self.phone_set, self.target = cache, phone_set, target
        self.caches: list[FeatureCache] = [cache, *versions]
        self.utts: list[str] = []
        self.targets: dict[str, torch.Tensor] = {}
        skipped: dict[str, str] = {}
        mapper = (lambda p: phone_map.get(p, p)) if phone_map else (lambda p: p)
        for utt in data.utts:
            if utt not in cache.index:
                continue  # already reported by the cache
            try:
                self.targets[utt] = self._target(data, utt, cache.index[utt][1], mapper)
            except ValueError as e:
                skipped[utt] = str(e)
                continue
            self.utts.append(utt)
        if skipped:
            log.warning(
                "%s: %d utterances skipped for bad targets: %s",
                data.path,
                len(skipped),
                "; ".join(list(skipped.values())[:5]),
            )
        self.skipped = skipped
        if not self.utts:
            raise ValueError(f"{data.path}: no usable utterance for target {target!r}")
        self.utt2spk = {u: data.utt2spk[u] for u in self.utts}
        # per version: speaker -> (2, F) statistics over that speaker's usable utterances
        self.speaker_stats: list[dict[str, torch.Tensor]] = (
            [self._speaker_stats(c) for c in self.caches] if speaker_cmvn else []
        )

    def _speaker_stats(self, cache: FeatureCache) -> dict[str, torch.Tensor]:
        by_speaker: dict[str, list[str]] = {}
        for utt in self.utts:
            if utt in cache.index:
                by_speaker.setdefault(self.utt2spk[utt], []).append(utt)
        return {spk: speaker_statistics(cache[u] for u in utts) for spk, utts in by_speaker.items()}

    def _target(self, data: DataDir, utt: str, num_frames: int, mapper) -> torch.Tensor:
        ps = self.phone_set
        if self.target == "label":
            label = sequence_label(data.text[utt])
            if label not in ps:
                raise ValueError(f"utterance {utt}: label {label!r} is not in the label set")
            return torch.tensor(ps.index(label), dtype=torch.long)
        if self.target == "ctc":
            if data.phones is None or utt not in data.phones:
                raise ValueError(f"utterance {utt}: no phone transcription")
            phones = [q for q in (mapper(p) for p in data.phones[utt]) if q and q != ps.silence]
            if not phones:
                raise ValueError(f"utterance {utt}: empty phone transcription")
            return torch.tensor(ps.encode(phones, context=f"utterance {utt}"), dtype=torch.long)
        if data.alignments is None or utt not in data.alignments:
            raise ValueError(f"utterance {utt}: no frame alignment")
        labels = _fit_length([mapper(p) or ps.silence for p in data.alignments[utt]], num_frames, utt)
        return torch.tensor(ps.encode(labels, context=f"utterance {utt}"), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.utts)

    def lengths(self) -> list[int]:
        """Frame count of each item, in item order (for the bucketing sampler)."""
        return [self.cache.index[u][1] for u in self.utts]

    def versions_of(self, i: int) -> list[int]:
        """The versions (0 = clean, k = augmented copy k) that hold item ``i``."""
        utt = self.utts[i]
        return [k for k, c in enumerate(self.caches) if utt in c.index]

    def length(self, i: int, version: int = 0) -> int:
        """Frames of item ``i`` in ``version``."""
        return self.caches[version].index[self.utts[i]][1]

    def item(self, i: int, version: int = 0) -> dict:
        """Item ``i`` read from ``version`` (0 = the clean features)."""
        utt, cache = self.utts[i], self.caches[version]
        target = self.targets[utt]
        if self.target == "aligned" and version:
            target = scale_frame_labels(target, cache.factors.get(utt, 1.0), cache.index[utt][1])
        item = {"utt": utt, "feats": cache[utt], ITEM_KEY[self.target]: target}
        if self.speaker_stats:
            item["cmvn"] = self.speaker_stats[version][self.utt2spk[utt]]
        return item

    def __getitem__(self, i: int) -> dict:
        return self.item(i)


class PooledDataset(Dataset):
    """Several :class:`UtteranceDataset` (corpora, each with its augmented versions) as one
    training set whose items are redrawn every epoch (:meth:`set_epoch`).

    Epoch ``e`` holds ``round(weights[c] * len(parts[c]))`` items of corpus ``c``: with weight 1
    every utterance once, with 0.5 a random half, with 2 every utterance twice (a random extra
    pass for a fractional part). Every item is read from a version drawn uniformly among those
    holding it (the clean features and the augmented copies). One corpus with weight 1 and no
    copies gives the corpus's own items in order, so nothing changes for a plain run. The draws
    come from a NumPy generator seeded by ``(seed, epoch)``: every DDP rank makes the same plan.
    """

    def __init__(self, parts: Sequence[UtteranceDataset], weights: Sequence[float] | None = None, seed: int = 0):
        if not parts:
            raise ValueError("PooledDataset: no corpus given")
        weights = [1.0] * len(parts) if weights is None else [float(w) for w in weights]
        if len(weights) != len(parts) or any(not w > 0 for w in weights):
            raise ValueError(f"PooledDataset: expected {len(parts)} positive weights, got {list(weights)}")
        self.parts, self.weights, self.seed = list(parts), weights, seed
        self.plan: list[tuple[int, int, int]] = []  # (corpus, item, version)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the items and versions of epoch ``epoch``."""
        plain = len(self.parts) == 1 and self.weights[0] == 1.0 and len(self.parts[0].caches) == 1
        if plain:
            self.plan = [(0, i, 0) for i in range(len(self.parts[0]))]
            return
        rng = np.random.default_rng([self.seed, epoch, 7])
        plan: list[tuple[int, int, int]] = []
        for c, (part, w) in enumerate(zip(self.parts, self.weights)):
            n = len(part)
            count = int(round(w * n))
            passes = [rng.permutation(n) for _ in range(-(-count // n))]  # none when the share rounds to 0
            for i in np.concatenate(passes)[:count].tolist() if passes else []:
                versions = part.versions_of(i)
                plan.append((c, i, versions[int(rng.integers(len(versions)))] if len(versions) > 1 else 0))
        self.plan = plan

    def __len__(self) -> int:
        return len(self.plan)

    def lengths(self) -> list[int]:
        """Frames of every item of the current epoch, in item order (for the bucketing sampler)."""
        return [self.parts[c].length(i, v) for c, i, v in self.plan]

    def __getitem__(self, j: int) -> dict:
        c, i, v = self.plan[j]
        return self.parts[c].item(i, v)

    @property
    def skipped(self) -> dict[str, str]:
        return {u: r for part in self.parts for u, r in part.skipped.items()}


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length items holding at most ``max_frames`` padded frames each.

    Items are sorted by length (with a small per-epoch jitter so batches change between
    epochs), cut into batches whose ``batch_size * longest <= max_frames``, and the batch order
    is shuffled per epoch. ``max_frames`` is the *global* batch: under DDP every batch is
    split among the ranks (rank ``r`` takes items ``r, r + R, ...``), so a one-process run with
    the same ``max_frames`` sees exactly the same global batches. Batches with fewer items than
    ranks are dropped under DDP (logged once), since some rank would get nothing.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_frames: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        max_batch_size: int | None = None,
    ) -> None:
        if max_frames <= 0:
            raise ValueError(f"max_frames must be positive, got {max_frames}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.max_frames, self.shuffle, self.seed = max_frames, shuffle, seed
        self.num_replicas, self.rank, self.max_batch_size = num_replicas, rank, max_batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int, lengths: Sequence[int] | None = None) -> None:
        """Batches of epoch ``epoch``; ``lengths`` replaces the items' frame counts (a training set
        redrawn per epoch, :class:`PooledDataset`)."""
        self.epoch = epoch
        if lengths is not None:
            self.lengths = np.asarray(lengths, dtype=np.int64)

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        jitter = rng.uniform(-0.1, 0.1, size=len(self.lengths)) if self.shuffle else np.zeros(len(self.lengths))
        order = np.argsort(self.lengths * (1 + jitter), kind="stable")
        batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0
        for i in order:
            n = int(self.lengths[i])
            new_longest = max(longest, n)
            full = self.max_batch_size is not None and len(batch) >= self.max_batch_size
            if batch and (new_longest * (len(batch) + 1) > self.max_frames or full):
                batches.append(batch)
                batch, new_longest = [], n
            batch.append(int(i))
            longest = new_longest
        if batch:
            batches.append(batch)
        if self.shuffle:
            batches = [batches[j] for j in rng.permutation(len(batches))]
        if self.num_replicas > 1:
            small = sum(len(b) < self.num_replicas for b in batches)
            if small and not getattr(self, "_warned", False):
                log.warning("%d batches have fewer items than the %d ranks and are dropped", small, self.num_replicas)
                self._warned = True
            batches = [b[self.rank :: self.num_replicas] for b in batches if len(b) >= self.num_replicas]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())

    def padding_fraction(self) -> float:
        """Share of padded frames over all batches of the current epoch."""
        valid = padded = 0
        for b in self._batches():
            lens = self.lengths[b]
            valid += int(lens.sum())
            padded += int(lens.max()) * len(b)
        return 1.0 - valid / max(padded, 1)


def collate(items: list[dict]) -> dict:
    """Pad a list of dataset items into a batch.

    Returns:
        ``utts`` list[str]; ``feats`` ``(B, T, F)``; ``lengths`` ``(B,)``; and, as present,
        ``targets`` ``(B, S)`` (0-padded) with ``target_lengths`` ``(B,)``,
        ``frame_labels`` ``(B, T)`` (padded with -100), ``labels`` ``(B,)``, ``cmvn`` ``(B, 2, F)``
        (each item's speaker statistics).
    """
    lengths = torch.tensor([it["feats"].shape[0] for it in items], dtype=torch.long)
    feats = torch.nn.utils.rnn.pad_sequence([it["feats"] for it in items], batch_first=True)
    batch = {"utts": [it["utt"] for it in items], "feats": feats, "lengths": lengths}
    if "targets" in items[0]:
        batch["targets"] = torch.nn.utils.rnn.pad_sequence([it["targets"] for it in items], batch_first=True)
        batch["target_lengths"] = torch.tensor([len(it["targets"]) for it in items], dtype=torch.long)
    if "frame_labels" in items[0]:
        batch["frame_labels"] = torch.nn.utils.rnn.pad_sequence(
            [it["frame_labels"] for it in items], batch_first=True, padding_value=IGNORE_INDEX
        )
    if "label" in items[0]:
        batch["labels"] = torch.stack([it["label"] for it in items])
    if "cmvn" in items[0]:
        batch["cmvn"] = torch.stack([it["cmvn"] for it in items])
    return batch
