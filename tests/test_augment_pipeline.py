"""Augmentation and pooled corpora in the training pipeline: the cached augmented copies, the
per-epoch training set (:class:`PooledDataset`), and the ``augment`` / ``data.train`` config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import compose_cfg, make_noise_datadir, noise_overrides

from phonrec.audio import load_audio
from phonrec.augment import DEFAULT, STRONG, AugmentConfig, augmented_features, scale_frame_labels, speed_perturb
from phonrec.config import CONF_DIR
from phonrec.data.dataset import FeatureCache, PooledDataset, UtteranceDataset, collate
from phonrec.features import FeatureConfig, compute_features
from phonrec.phones import PhoneSet
from phonrec.train import augment_config, run

FCFG = FeatureConfig(n_mels=20)
PHONES = PhoneSet.from_symbols(["ah", "b", "sil"])
SPEED_ONLY = AugmentConfig(copies=1, speed_factors=(0.9,))


def test_augmented_copy_is_the_augmented_audio_features_and_reproducible(tmp_path: Path) -> None:
    data = make_noise_datadir(tmp_path, [0.5, 0.7])
    copy = FeatureCache.build(data, FCFG, tmp_path / "aug", progress=False, augment=SPEED_ONLY, copy=1, seed=3)
    for utt in data.utts:
        wave = load_audio(data.wavs[utt], sample_rate=16000)
        expected = compute_features(speed_perturb(wave, 16000, 0.9), FCFG)  # an independent computation
        assert torch.allclose(copy[utt], expected, atol=1e-5)
        assert copy.factors[utt] == pytest.approx(0.9)
    # the reloaded cache keeps its factors; another seed or config is another cache
    again = FeatureCache.build(data, FCFG, tmp_path / "aug", progress=False, augment=SPEED_ONLY, copy=1, seed=3)
    assert again.factors == copy.factors and np.array_equal(again.feats, copy.feats)
    meta = json.loads((tmp_path / "aug" / "index.json").read_text())
    fast = AugmentConfig(copies=1, speed_factors=(1.1,))
    other = FeatureCache.build(data, FCFG, tmp_path / "aug", progress=False, augment=fast, copy=1, seed=3)
    assert json.loads((tmp_path / "aug" / "index.json").read_text())["fingerprint"] != meta["fingerprint"]
    assert other[data.utts[0]].shape[0] < copy[data.utts[0]].shape[0]


def test_strong_copies_draw_per_utterance_and_copy(tmp_path: Path) -> None:
    data = make_noise_datadir(tmp_path, [0.6, 0.6, 0.6])
    cfg = AugmentConfig(**{**STRONG.__dict__, "babble_prob": 1.0, "noise_prob": 1.0})
    one = FeatureCache.build(data, FCFG, tmp_path / "c1", progress=False, augment=cfg, copy=1)
    two = FeatureCache.build(data, FCFG, tmp_path / "c2", progress=False, augment=cfg, copy=2)
    clean = FeatureCache.build(data, FCFG, tmp_path / "clean", progress=False)
    for utt in data.utts:
        assert one[utt].shape[1] == FCFG.dim and torch.isfinite(one[utt]).all()
        assert not torch.equal(one[utt], two[utt]) or one.factors[utt] != two.factors[utt]
        assert one[utt].shape[0] != clean[utt].shape[0] or not torch.allclose(one[utt], clean[utt])


def test_augmented_features_with_everything_off_are_the_clean_features() -> None:
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1)
    feats, factor = augmented_features(wave, FCFG, AugmentConfig(), torch.Generator().manual_seed(0))
    assert factor == 1.0 and torch.equal(feats, compute_features(wave, FCFG))


def test_versions_rescale_frame_labels_with_the_audio(tmp_path: Path) -> None:
    data = make_noise_datadir(tmp_path, [0.5, 0.8])
    clean = FeatureCache.build(data, FCFG, tmp_path / "clean", progress=False)
    copy = FeatureCache.build(data, FCFG, tmp_path / "aug", progress=False, augment=SPEED_ONLY, copy=1)
    ds = UtteranceDataset(data, clean, PHONES, "aligned", versions=[copy])
    for i, utt in enumerate(ds.utts):
        assert ds.versions_of(i) == [0, 1]
        item = ds.item(i, 1)
        assert item["feats"].shape[0] == copy.index[utt][1] == ds.length(i, 1)
        assert item["frame_labels"].shape[0] == item["feats"].shape[0]
        labels = ds.item(i, 0)["frame_labels"]
        assert torch.equal(item["frame_labels"], scale_frame_labels(labels, 0.9, item["feats"].shape[0]))
        # slower speech: every phone lasts about 1/0.9 as many frames
        for p in range(len(PHONES)):
            assert abs(int((item["frame_labels"] == p).sum()) - int((labels == p).sum()) / 0.9) <= 2
    ctc = UtteranceDataset(data, clean, PHONES.with_blank(), "ctc", versions=[copy])
    assert torch.equal(ctc.item(0, 1)["targets"], ctc.item(0, 0)["targets"])


def test_speaker_cmvn_statistics_per_speaker_and_version(tmp_path: Path) -> None:
    """With ``speaker_cmvn`` every item carries its speaker's statistics (utt2spk) over the version
    it is read from (a speed-perturbed copy is a speaker of its own), and collate stacks them."""
    data = make_noise_datadir(tmp_path, [0.5, 0.8, 0.3, 0.6])  # spk0: u000 u003, spk1: u001, spk2: u002
    clean = FeatureCache.build(data, FCFG, tmp_path / "clean", progress=False)
    copy = FeatureCache.build(data, FCFG, tmp_path / "aug", progress=False, augment=SPEED_ONLY, copy=1)
    ds = UtteranceDataset(data, clean, PHONES.with_blank(), "ctc", versions=[copy], speaker_cmvn=True)
    means = []
    for version, cache in enumerate([clean, copy]):
        frames = np.concatenate([cache["u000"].double().numpy(), cache["u003"].double().numpy()])
        for utt in ("u000", "u003"):
            stats = ds.item(ds.utts.index(utt), version)["cmvn"]
            np.testing.assert_allclose(stats[0].numpy(), frames.mean(0), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(stats[1].numpy(), frames.std(0), rtol=1e-5, atol=1e-5)
        alone = cache["u001"].double().numpy()
        np.testing.assert_allclose(ds.item(ds.utts.index("u001"), version)["cmvn"][0].numpy(), alone.mean(0), atol=1e-5)
        means.append(frames.mean(0))
    assert not np.allclose(means[0], means[1], atol=1e-3)  # the copy's statistics are its own
    batch = collate([ds.item(0), ds.item(1, 1)])
    assert batch["cmvn"].shape == (2, 2, FCFG.dim)
    assert torch.equal(batch["cmvn"][1], ds.item(1, 1)["cmvn"])
    assert "cmvn" not in UtteranceDataset(data, clean, PHONES.with_blank(), "ctc").item(0)


def test_pooled_dataset_weights_versions_and_plain_identity(tmp_path: Path) -> None:
    a = make_noise_datadir(tmp_path / "a", [0.3] * 6)
    b = make_noise_datadir(tmp_path / "b", [0.4] * 4)
    part_a = UtteranceDataset(a, FeatureCache.build(a, FCFG, tmp_path / "ca", progress=False), PHONES, "aligned")
    copy_b = FeatureCache.build(b, FCFG, tmp_path / "cb1", progress=False, augment=SPEED_ONLY, copy=1)
    part_b = UtteranceDataset(
        b, FeatureCache.build(b, FCFG, tmp_path / "cb", progress=False), PHONES, "aligned", versions=[copy_b]
    )
    plain = PooledDataset([part_a])
    assert [plain[j]["utt"] for j in range(len(plain))] == part_a.utts
    assert plain.lengths() == part_a.lengths()

    pooled = PooledDataset([part_a, part_b], [0.5, 2.0], seed=1)
    seen_versions = set()
    for epoch in range(1, 5):
        pooled.set_epoch(epoch)
        corpora = [c for c, _, _ in pooled.plan]
        assert corpora.count(0) == 3 and corpora.count(1) == 8  # round(0.5 * 6), 2 * 4
        items_b = [i for c, i, _ in pooled.plan if c == 1]
        assert sorted(items_b) == sorted(list(range(4)) * 2)  # weight 2: every utterance twice
        assert len({i for c, i, _ in pooled.plan if c == 0}) == 3  # weight 0.5: a half, no repeats
        seen_versions |= {v for c, _, v in pooled.plan if c == 1}
        assert all(v == 0 for c, _, v in pooled.plan if c == 0)
        assert pooled.lengths() == [pooled[j]["feats"].shape[0] for j in range(len(pooled))]
    assert seen_versions == {0, 1}
    pooled.set_epoch(2)
    first = list(pooled.plan)
    pooled.set_epoch(2)
    assert pooled.plan == first  # the same plan on every rank
    with pytest.raises(ValueError, match="positive weights"):
        PooledDataset([part_a, part_b], [1.0, 0.0])


def test_presets_match_the_hydra_group() -> None:
    for name, preset in (("default", DEFAULT), ("strong", STRONG)):
        assert augment_config(compose_cfg([f"augment={name}"])) == preset
    none = augment_config(compose_cfg(["augment=none"]))
    assert none == AugmentConfig()
    spec = augment_config(compose_cfg([])).specaugment  # the default: the masks phonrec always used
    assert (spec.freq_masks, spec.freq_width, spec.time_masks, spec.time_width, spec.time_ratio) == (2, 15, 2, 40, 0.05)
    assert {p.stem for p in (CONF_DIR / "augment").glob("*.yaml")} == {"none", "specaugment", "default", "strong"}


def test_training_with_augmented_copies_and_pooled_corpora(tmp_path: Path, caplog) -> None:
    make_noise_datadir(tmp_path / "a", [0.5, 0.6, 0.7, 0.5])
    make_noise_datadir(tmp_path / "b", [0.4, 0.8])
    extra = [
        "divergence=aligned",
        f"data.train=[{tmp_path / 'a' / 'data'},{tmp_path / 'b' / 'data'}]",
        "data.train_weights=[1,0.5]",
        "augment=default",
        "augment.copies=1",
        f"data.cache_dir={tmp_path / 'cache'}",
        "trainer.epochs=2",
    ]
    with caplog.at_level("INFO", logger="phonrec.train"):
        metrics = run(0, 1, compose_cfg(noise_overrides(tmp_path, tmp_path / "a" / "data", extra)))
    assert np.isfinite(metrics["dev_loss"])
    caches = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len([c for c in caches if "-aug" in c]) == 2  # one copy of each training corpus
    assert len([c for c in caches if c.startswith("train-")]) == 4 and "dev-logmel" in caches
    assert "in 2 corpora, 1 augmented copies" in caplog.text
    assert (tmp_path / "exp" / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.train_weights=[1,2]", "data.train_weights"),
        ("data.train_weights=[-1]", "data.train_weights"),
        ("data.train=[]", "data.train"),
    ],
)
def test_bad_pooling_config_names_the_key(tmp_path: Path, override: str, message: str) -> None:
    make_noise_datadir(tmp_path, [0.3, 0.3])
    cfg = compose_cfg(noise_overrides(tmp_path, tmp_path / "data", [override]))
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        run(0, 1, cfg)


def test_telephone_band_removes_everything_above_4_khz() -> None:
    from phonrec.augment import telephone_band

    t = torch.arange(16000, dtype=torch.float64) / 16000
    low, high = torch.sin(2 * torch.pi * 1000 * t), torch.sin(2 * torch.pi * 6000 * t)
    out = telephone_band((low + high).float(), 16000)
    assert out.shape == (16000,)
    spectrum = torch.fft.rfft(out[1000:-1000].double()).abs()  # 14000 samples: bin k at k * 16000/14000 Hz
    at = lambda hz: float(spectrum[round(hz * 14000 / 16000)])  # noqa: E731
    assert at(1000) > 0.9 * 7000 and at(6000) < 1e-3 * at(1000)
    cfg = AugmentConfig(copies=1, telephone_prob=1.0)
    feats, _ = augmented_features((low + high).float(), FeatureConfig(), cfg, torch.Generator().manual_seed(0))
    assert torch.isfinite(feats).all()
