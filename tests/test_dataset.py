"""Feature cache, dataset targets, bucketing sampler and collate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from helpers import make_noise_datadir

from phonrec.data.dataset import IGNORE_INDEX, BucketBatchSampler, FeatureCache, UtteranceDataset, collate
from phonrec.features import FeatureConfig, compute_features, num_frames
from phonrec.phones import PhoneSet


def test_cache_matches_direct_features_and_skips_bad(tmp_path: Path, caplog) -> None:
    data = make_noise_datadir(tmp_path, [0.5, 0.8, 0.3], bad=("u001",))
    cfg = FeatureConfig()
    cache = FeatureCache.build(data, cfg, tmp_path / "cache", progress=False)
    assert set(cache.index) == {"u000", "u002"} and "u001" in cache.bad
    assert "u001" in caplog.text  # reported, not silent
    wave, sr = sf.read(data.wavs["u000"], dtype="float32")
    expected = compute_features(torch.from_numpy(wave), cfg)
    torch.testing.assert_close(cache["u000"], expected)


def test_half_written_cache_is_rebuilt(tmp_path: Path) -> None:
    data = make_noise_datadir(tmp_path, [0.5, 0.4])
    cfg = FeatureConfig()
    FeatureCache.build(data, cfg, tmp_path / "cache", progress=False)
    # a killed rebuild: index gone, feats truncated
    (tmp_path / "cache" / "index.json").unlink()
    (tmp_path / "cache" / "feats.npy").write_bytes(b"\x93NUMPY garbage")
    cache = FeatureCache.build(data, cfg, tmp_path / "cache", progress=False)
    assert cache["u001"].shape == (num_frames(int(0.4 * 16000)), cfg.dim)
    # an index that does not match the file on disk (frames) is not trusted either
    meta = json.loads((tmp_path / "cache" / "index.json").read_text())
    meta["frames"] += 7
    (tmp_path / "cache" / "index.json").write_text(json.dumps(meta))
    cache = FeatureCache.build(data, cfg, tmp_path / "cache", progress=False)
    assert sum(cache.lengths().values()) == cache.feats.shape[0]


def test_dataset_targets(tmp_path: Path) -> None:
    data = make_noise_datadir(tmp_path, [0.5, 0.6])
    cache = FeatureCache.build(data, FeatureConfig(), tmp_path / "cache", progress=False)
    ps = PhoneSet.from_symbols(["ah", "b", "sil"])
    ctc = UtteranceDataset(data, cache, ps.with_blank(), "ctc")
    assert ctc[0]["targets"].tolist() == [1, 2]  # blank is 0
    aligned = UtteranceDataset(data, cache, ps, "aligned")
    item = aligned[1]
    assert item["frame_labels"].shape[0] == item["feats"].shape[0]
    assert item["frame_labels"][0] == ps.index("sil") and item["frame_labels"][-1] == ps.index("b")
    labels = UtteranceDataset(data, cache, PhoneSet.from_symbols(["no", "yes"]), "label")
    assert [labels[i]["label"].item() for i in range(2)] == [0, 1]


def test_unknown_phone_is_reported_and_skipped(tmp_path: Path, caplog) -> None:
    data = make_noise_datadir(tmp_path, [0.5, 0.6])
    data.phones["u001"] = ["ah", "zz"]
    cache = FeatureCache.build(data, FeatureConfig(), tmp_path / "cache", progress=False)
    ds = UtteranceDataset(data, cache, PhoneSet.from_symbols(["ah", "b", "sil"], blank=True), "ctc")
    assert ds.utts == ["u000"]
    assert "u001" in caplog.text and "zz" in caplog.text


def test_bucketing_low_padding_and_frame_budget() -> None:
    rng = np.random.default_rng(1)
    lengths = rng.integers(100, 1000, size=500).tolist()
    sampler = BucketBatchSampler(lengths, max_frames=6000, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(500))  # every item exactly once
    for b in batches:
        assert max(lengths[i] for i in b) * len(b) <= 6000 or len(b) == 1
    assert sampler.padding_fraction() < 0.10
    sampler.set_epoch(1)
    assert list(sampler) != batches  # reshuffled per epoch
    sampler.set_epoch(0)
    assert list(sampler) == batches  # ... deterministically


def test_ddp_shards_split_each_global_batch() -> None:
    lengths = list(range(50, 250))
    one = list(BucketBatchSampler(lengths, max_frames=2000, seed=5))
    r0 = list(BucketBatchSampler(lengths, max_frames=2000, seed=5, num_replicas=2, rank=0))
    r1 = list(BucketBatchSampler(lengths, max_frames=2000, seed=5, num_replicas=2, rank=1))
    assert len(r0) == len(r1)
    kept = [b for b in one if len(b) >= 2]
    assert [sorted(a + b) for a, b in zip(r0, r1)] == [sorted(b) for b in kept]


def test_collate_pads_with_ignore_index() -> None:
    items = [
        {"utt": "a", "feats": torch.ones(3, 2), "frame_labels": torch.tensor([1, 2, 3])},
        {"utt": "b", "feats": torch.ones(5, 2), "frame_labels": torch.tensor([1, 1, 1, 2, 2])},
    ]
    batch = collate(items)
    assert batch["feats"].shape == (2, 5, 2) and batch["lengths"].tolist() == [3, 5]
    assert batch["frame_labels"][0, 3:].tolist() == [IGNORE_INDEX, IGNORE_INDEX]
    assert batch["feats"][0, 3:].abs().sum() == 0
