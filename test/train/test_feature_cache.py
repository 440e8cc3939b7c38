"""Training on cached backbone maps: the same step as on images, exact resume, resumable build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_trainer import recipe

from siam_core.train.config import train_config_from_dict
from siam_core.train.feature_cache import CACHE_STREAM
from siam_core.train.trainer import Trainer


def cached_recipe(seq: Path, cache_dir: Path, pairs: int = 8, dtype: str = "float32") -> dict:
    data = recipe(
        seq,
        pairs_per_epoch=24,
        backbone={"unfreeze_epoch": 1, "lr_mult": 0.5},
        feature_cache={"pairs": pairs, "dir": str(cache_dir), "dtype": dtype},
    )
    data["runtime"] = {"num_workers": 0, "checkpoint_every": 2, "seed": 3, "image_every": 2}
    return data


def test_cached_step_equals_the_step_on_images(sequences, tmp_path: Path) -> None:
    """Same initial weights, same pairs: one step from cached float32 maps and one step from
    the images give the same losses and the same updated weights."""
    torch.set_num_threads(1)
    cfg = train_config_from_dict(cached_recipe(sequences, tmp_path / "cache"), tmp_path)
    on_cache = Trainer(cfg, tmp_path / "a")
    cache = on_cache.open_cache()
    assert cache.pairs == 8
    cached_losses = on_cache.cached_step(cache.batch(np.arange(8)))

    on_images = Trainer(cfg, tmp_path / "b")
    items = [on_images.dataset.item(CACHE_STREAM, k) for k in range(8)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    assert batch["negative"].any() or (batch["label_cls"] == 1).any()
    on_images._apply_stage(0)
    image_losses = on_images.step(batch)

    assert cached_losses.keys() == image_losses.keys()
    for key, value in image_losses.items():
        assert cached_losses[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    fresh = Trainer(cfg, tmp_path / "c")
    moved = 0
    for (name, a), b, c in zip(
        on_cache.model.named_parameters(),
        on_images.model.parameters(),
        fresh.model.parameters(),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        moved += int(not torch.equal(a, c))
    assert moved > 0, "the step changed no weight"
    with pytest.raises(RuntimeError, match="frozen"):
        on_cache._apply_stage(1)
        on_cache.cached_step(cache.batch(np.arange(8)))


def test_cached_run_resumes_exactly_and_reuses_its_cache(sequences, tmp_path: Path) -> None:
    """Epoch 1 from the cache, epoch 2 on images with the backbone training: a run resumed
    at step 2 (inside the cached epoch) ends bit-identical to the uninterrupted one, and the
    cache built by the first run is reused, not rebuilt."""
    torch.set_num_threads(1)
    cfg = train_config_from_dict(
        cached_recipe(sequences, tmp_path / "cache", pairs=16, dtype="float16"), tmp_path
    )
    full = Trainer(cfg, tmp_path / "full")
    full.fit()
    full.close()
    stamp = (tmp_path / "cache" / "x0.npy").stat().st_mtime_ns
    resumed = Trainer(cfg, tmp_path / "resumed")
    resumed.resume(full.checkpoint_path(2))
    resumed.fit()
    resumed.close()
    assert (tmp_path / "cache" / "x0.npy").stat().st_mtime_ns == stamp
    assert resumed.global_step == full.global_step == 6
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), f"{key} differs after resume"


def test_interrupted_build_continues_pool_resizes_and_stale_cache_is_rebuilt(
    sequences, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    folder = tmp_path / "cache"
    cfg = train_config_from_dict(cached_recipe(sequences, folder, pairs=16), tmp_path)
    complete = Trainer(cfg, tmp_path / "a").open_cache()
    reference = {n: np.array(a) for n, a in complete.arrays.items()}
    del complete
    # Pretend the build stopped after the first batch (8 pairs): the rest is garbage.
    meta = json.loads((folder / "meta.json").read_text())
    meta["done"] = 8
    (folder / "meta.json").write_text(json.dumps(meta))
    x0 = np.load(folder / "x0.npy", mmap_mode="r+")
    x0[8:] = 0
    x0.flush()
    del x0
    with pytest.raises(ValueError, match="incomplete"):
        from siam_core.train.feature_cache import FeatureCache

        FeatureCache(folder)
    finished = Trainer(cfg, tmp_path / "b").open_cache()
    for name, array in reference.items():
        np.testing.assert_array_equal(finished.arrays[name], array, err_msg=name)
    # A smaller pool is the first entries, computed nothing new; a larger one extends it.
    small = Trainer(
        train_config_from_dict(cached_recipe(sequences, folder, 8), tmp_path), tmp_path / "s"
    )
    assert small.open_cache().pairs == 8
    assert json.loads((folder / "meta.json").read_text())["done"] == 16
    large = Trainer(
        train_config_from_dict(cached_recipe(sequences, folder, 24), tmp_path), tmp_path / "l"
    )
    grown = large.open_cache()
    assert grown.pairs == 24 and grown.arrays["x0"].shape[0] == 24
    np.testing.assert_array_equal(grown.arrays["x0"][:16], reference["x0"])
    assert np.abs(grown.arrays["x0"][16:]).sum() > 0
    # Another recipe (other augmentation) must not read these maps.
    other = cached_recipe(sequences, folder, pairs=16)
    other["data"]["search_aug"]["shift"] = 8
    rebuilt = Trainer(train_config_from_dict(other, tmp_path), tmp_path / "c").open_cache()
    assert json.loads((folder / "meta.json").read_text())["key"] != meta["key"]
    assert not np.array_equal(rebuilt.arrays["x0"], reference["x0"])
