"""Backbone maps of augmented pairs, computed once and reused while the backbone is frozen.

With a frozen backbone (every BatchNorm in eval mode, no gradient), its output on a pair is a
fixed function of the two patches. A head-only step on images spends most of its time
decoding frames, cropping them and running that backbone; on a cache it runs only neck, head,
loss and optimiser. The cache holds ``pairs`` pairs of one dedicated sampling stream
(``CACHE_STREAM``, never a training epoch) with their labels; each epoch walks a seeded
permutation of it, so a cached run resumes exactly like an image run.

On disk (one folder): ``meta.json`` (fingerprint of everything the maps depend on, shapes,
progress) and one ``.npy`` file per array, written in chunks: an interrupted build continues
where it stopped; a cache made for another recipe is rebuilt. Entry k is pair k of the cache
stream whatever the pool size, so ``pairs`` can change without recomputing: a smaller pool
uses the first entries, a larger one extends the arrays.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from siam_core.train.sampling import PairDataset

# The pair stream of cached pairs: far above any epoch number, so never a trained epoch's.
CACHE_STREAM = 1_000_000
LABELS = ("label_cls", "label_loc", "label_weight")
LABEL_DTYPES = {"label_cls": np.int8, "label_loc": np.float32, "label_weight": np.float32}


class _CachePairs(Dataset):
    """Pairs ``start..pairs-1`` of the cache stream."""

    def __init__(self, dataset: PairDataset, start: int, stop: int) -> None:
        self.dataset, self.start, self.stop = dataset, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.dataset.item(CACHE_STREAM, self.start + i)


def backbone_maps(backbone: nn.Module, patches: torch.Tensor) -> tuple[list[torch.Tensor], bool]:
    """The backbone's maps as a list, and whether it returned a bare tensor."""
    out = backbone(patches)
    if isinstance(out, torch.Tensor):
        return [out], True
    return list(out), False


def fingerprint(recipe: dict[str, Any], dtype: str) -> str:
    """Hash of what the cached maps and labels depend on (not the solver schedule, nor the
    pool size: entry k is the same pair in a pool of any size)."""
    keys = ("model", "init", "data", "targets")
    relevant = {k: recipe[k] for k in keys}
    relevant["seed"] = recipe["runtime"]["seed"]
    relevant["train_layers"] = recipe["solver"]["backbone"]["train_layers"]
    relevant.update(dtype=dtype, stream=CACHE_STREAM)
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_order(seed: int, epoch: int, pairs_per_epoch: int, pairs: int) -> np.ndarray:
    """Cache entries of one epoch, in order: seeded permutations of the pool back to back."""
    rng = np.random.default_rng([seed, epoch, CACHE_STREAM])
    reps = -(-pairs_per_epoch // pairs)
    return np.concatenate([rng.permutation(pairs) for _ in range(reps)])[:pairs_per_epoch]


class FeatureCache:
    """The first ``pairs`` entries of a cache folder (all of them by default), read-only."""

    def __init__(self, folder: Path, pairs: int | None = None) -> None:
        meta = json.loads((folder / "meta.json").read_text())
        pairs = int(meta["pairs"]) if pairs is None else pairs
        if meta["done"] < pairs:
            raise ValueError(f"feature cache {folder} is incomplete ({meta['done']}/{pairs})")
        self.folder = folder
        self.pairs = pairs
        self.levels = int(meta["levels"])
        self.tensor_output = bool(meta["tensor_output"])
        self.arrays = {
            name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _array_names(meta)
        }

    def batch(self, indices: np.ndarray) -> dict[str, Any]:
        """Maps (float32 lists ``zf``, ``xf``) and labels of the given entries."""
        order = np.sort(indices)  # sequential reads; the batch is a set, order is irrelevant
        out: dict[str, Any] = {}
        for branch in ("z", "x"):
            out[f"{branch}f"] = [
                torch.from_numpy(np.ascontiguousarray(self.arrays[f"{branch}{i}"][order])).float()
                for i in range(self.levels)
            ]
        out["label_cls"] = torch.from_numpy(self.arrays["label_cls"][order].astype(np.int64))
        for name in ("label_loc", "label_weight"):
            out[name] = torch.from_numpy(np.ascontiguousarray(self.arrays[name][order]))
        return out


def _array_names(meta: dict[str, Any]) -> list[str]:
    levels = range(int(meta["levels"]))
    return [f"z{i}" for i in levels] + [f"x{i}" for i in levels] + list(LABELS)


def build_feature_cache(
    folder: Path,
    model: nn.Module,
    dataset: PairDataset,
    pairs: int,
    dtype: str,
    key: str,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    log: Callable[[str], None] = print,
) -> FeatureCache:
    """Fill (or finish) the cache in ``folder`` and open it.

    ``model.backbone`` must be in its frozen state (eval-mode BatchNorm); it runs under
    ``no_grad``. Progress is committed after every batch, so an interrupted build resumes.
    """
    meta_path = folder / "meta.json"
    meta: dict[str, Any] | None = None
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key:
            log(f"feature cache {folder} was made for another recipe: rebuilding it")
            shutil.rmtree(folder)
            meta = None
    if meta is not None and meta["done"] >= pairs:
        return FeatureCache(folder, pairs)
    folder.mkdir(parents=True, exist_ok=True)
    start = 0 if meta is None else int(meta["done"])
    if meta is not None and meta["pairs"] < pairs:
        _grow(folder, meta, pairs)
    loader = DataLoader(
        _CachePairs(dataset, start, pairs),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=None,
    )
    np_dtype = np.float16 if dtype == "float16" else np.float32
    arrays: dict[str, np.ndarray] = {}
    if meta is not None:
        arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r+") for n in _array_names(meta)}
    done = start
    backbone = model.backbone
    with torch.no_grad():
        for batch in loader:
            zf, tensor_output = backbone_maps(backbone, batch["template"].to(device).float())
            xf, _ = backbone_maps(backbone, batch["search"].to(device).float())
            if meta is None:
                meta = {
                    "key": key,
                    "pairs": pairs,
                    "dtype": dtype,
                    "levels": len(zf),
                    "tensor_output": tensor_output,
                    "done": 0,
                }
                shapes = {f"z{i}": tuple(f.shape[1:]) for i, f in enumerate(zf)}
                shapes |= {f"x{i}": tuple(f.shape[1:]) for i, f in enumerate(xf)}
                for name in _array_names(meta):
                    shape = shapes.get(name) or tuple(batch[name].shape[1:])
                    arrays[name] = np.lib.format.open_memmap(
                        folder / f"{name}.npy",
                        mode="w+",
                        dtype=LABEL_DTYPES.get(name, np_dtype),
                        shape=(pairs, *shape),
                    )
            n = len(batch["template"])
            values = {f"z{i}": f for i, f in enumerate(zf)} | {f"x{i}": f for i, f in enumerate(xf)}
            values |= {name: batch[name] for name in LABELS}
            for name, value in values.items():
                arrays[name][done : done + n] = value.cpu().numpy().astype(arrays[name].dtype)
            done += n
            for array in arrays.values():
                array.flush()
            meta["done"] = done
            tmp = meta_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(meta))
            tmp.replace(meta_path)
            if done == pairs or (done // n) % 20 == 0:
                log(f"feature cache: {done}/{pairs} pairs")
    del arrays
    return FeatureCache(folder, pairs)


def _grow(folder: Path, meta: dict[str, Any], pairs: int) -> None:
    """Extend every array of a cache to ``pairs`` entries, keeping the computed ones."""
    for name in _array_names(meta):
        path = folder / f"{name}.npy"
        old = np.load(path, mmap_mode="r")
        tmp = folder / f"{name}.grow.npy"
        new = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=old.dtype, shape=(pairs, *old.shape[1:])
        )
        new[: meta["done"]] = old[: meta["done"]]
        new.flush()
        del old, new
        tmp.replace(path)
    meta["pairs"] = pairs
    (folder / "meta.json").write_text(json.dumps(meta))
