"""ONNX export of an RPN-family network as template and search graphs, checked against PyTorch.

A Siamese tracker's correlation takes a template-dependent kernel, so one monolithic graph of
``forward(z, x)`` would recompute the template branch every frame. The export splits the network
where the tracker splits it (``SiameseRPN.template`` / ``features`` / ``rpn_head.track``):

* ``template.onnx``: exemplar patch ``z`` (B, 3, 127, 127) -> the head's kernels
  ``kernel_0 … kernel_{K-1}``, computed once per target;
* ``features.onnx``: search patch ``x`` (B, 3, S, S), any S -> the maps the head takes,
  ``feat_0 … feat_{L-1}`` (the neck's, or the backbone's on a level whose neck is folded into
  the head: ``siam_core.deploy.fold``, listed as ``folded_levels`` in the manifest);
* ``head_b{B}.onnx``: kernels and search maps of B targets -> ``cls`` (B, 2k, s, s) and
  ``loc`` (B, 4k, s, s). The correlation is a grouped convolution whose group count is the
  batch times the channels, a static ONNX attribute, so the head is exported per batch size.

Together the features and head graphs are the search branch: it takes the crop and the
template's kernels as inputs, so one set of graphs serves any target. The batch-1 head is
always written; other batch sizes on request. ``manifest.json`` records the model config, the
graphs' input/output names and shapes, the opset and the largest deviation from PyTorch
measured on the given patch pair.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from siam_core.config import Config
from siam_core.deploy.fold import FoldedSearch, foldable
from siam_core.models.model import SiameseRPN

OPSET = 17
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
# what the graphs hold beyond weights and config: a change here re-exports cached folders
RECIPE = "search branch folded (siam_core.deploy.fold), features and head merged v2"


class _Template(nn.Module):
    def __init__(self, net: SiameseRPN) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net.template(z))


class _Search(nn.Module):
    """The search branch as exported: ``FoldedSearch`` where the network is ``foldable``
    (``siam_core.deploy.fold``), else the network's own ``features`` and ``rpn_head.track``."""

    def __init__(self, net: SiameseRPN, fold: bool) -> None:
        super().__init__()
        self.net = net
        self.fold = FoldedSearch(net).eval() if fold and foldable(net) else None

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.fold.features(x) if self.fold else self.net.features(x)

    def head(self, kernels: list, feats: list) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fold:
            return self.fold.head(kernels, feats)
        cls, loc = self.net.rpn_head.track(kernels, feats)
        return cls, loc


class _Features(nn.Module):
    def __init__(self, search: _Search) -> None:
        super().__init__()
        self.search = search

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.search.features(x))


class _Head(nn.Module):
    def __init__(self, search: _Search, num_kernels: int) -> None:
        super().__init__()
        self.search = search
        self.num_kernels = num_kernels

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kernels, feats = list(tensors[: self.num_kernels]), list(tensors[self.num_kernels :])
        return self.search.head(kernels, feats)


@dataclass(frozen=True)
class GraphSpec:
    """Names and (export-time) shapes of one graph's inputs and outputs."""

    file: str
    inputs: dict[str, list[int]]
    outputs: dict[str, list[int]]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "inputs": self.inputs, "outputs": self.outputs}


def head_file(batch: int) -> str:
    return f"head_b{batch}.onnx"


def search_file(batch: int) -> str:
    return f"search_b{batch}.onnx"


def merge_search(features: Path, head: Path, out: Path) -> None:
    """``features`` and ``head`` as one graph (``x`` and the kernels in, ``cls`` and ``loc``
    out): the runtime keeps the maps in its own layout between the two, with no copy out and
    back (OpenVINO int8: 11.8-12.6 against 14.4-15.1 ms a call on one thread)."""
    import onnx
    from onnx import compose

    f = compose.add_prefix(onnx.load(str(features)), "f/")
    h = compose.add_prefix(onnx.load(str(head)), "h/")
    maps = [o.name for o in f.graph.output]
    merged = compose.merge_models(f, h, io_map=[(m, "h/" + m[2:]) for m in maps])
    graph = merged.graph
    renames = {v.name: v.name[2:] for v in [*graph.input, *graph.output]}
    for value in [*graph.input, *graph.output]:
        value.name = renames[value.name]
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    onnx.save(merged, str(out))


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic: dict[str, dict[int, str]],
) -> None:
    # The TorchScript-based exporter: it needs no onnxscript, keeps grouped convolutions as
    # plain Conv nodes and exports in seconds (the dynamo exporter took minutes here).
    # dynamo=False is its documented switch in torch 2.x; its deprecation and tracer notes
    # (shape checks become constants) are expected and silenced.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def _spatial(names: list[str], batch_dynamic: bool) -> dict[str, dict[int, str]]:
    """Dynamic axes: height and width always (search sizes vary), batch where allowed."""
    axes: dict[str, dict[int, str]] = {}
    for name in names:
        axes[name] = {2: f"{name}_h", 3: f"{name}_w"}
        if batch_dynamic:
            axes[name][0] = "batch"
    return axes


def inference_net(model: SiameseRPN) -> SiameseRPN:
    """A float32 CPU eval copy to export. BatchNorm stays: the runtimes fuse it themselves, and
    PyTorch's tracker runs it unfolded (folding moved pysot parity by ~1e-4, issue 10)."""
    return copy.deepcopy(model).float().cpu().eval()


def _rel_err(ref: list[torch.Tensor], got: list[np.ndarray]) -> float:
    worst = 0.0
    for r, g in zip(ref, got, strict=True):
        r_np = r.detach().numpy()
        if r_np.shape != g.shape:
            raise RuntimeError(f"exported graph gives shape {g.shape}, PyTorch {r_np.shape}")
        scale = float(np.abs(r_np).max()) + 1e-6
        worst = max(worst, float(np.abs(r_np - g).max()) / scale)
    return worst


def export_head(search: _Search, out_dir: Path, batch: int, kernels: list, feats: list) -> str:
    """Write ``head_b{batch}.onnx`` for stacked kernels/maps of ``batch`` targets."""
    k_names = [f"kernel_{i}" for i in range(len(kernels))]
    f_names = [f"feat_{i}" for i in range(len(feats))]
    args = tuple(t.repeat(batch, 1, 1, 1) for t in [*kernels, *feats])
    dyn = _spatial(f_names, batch_dynamic=False)
    dyn.update(_spatial(["cls", "loc"], batch_dynamic=False))
    name = head_file(batch)
    _export(
        _Head(search, len(kernels)), args, out_dir / name, k_names + f_names, ["cls", "loc"], dyn
    )
    return name


def export_onnx(
    model: SiameseRPN,
    cfg: Config,
    out_dir: str | Path,
    z: np.ndarray,
    x: np.ndarray,
    batches: tuple[int, ...] = (1,),
    tolerance: float = 1e-3,
    check_image: str = "",
    fold: bool = True,
) -> dict[str, Any]:
    """Export ``model`` to ``out_dir`` and check every graph on the uint8 crop pair ``z``, ``x``
    ((S, S, 3) BGR, as the tracker crops them, from ``check_image``) with ONNX Runtime
    against PyTorch.

    ``fold``: compose the search branch's linear layers where the network allows
    (``siam_core.deploy.fold``; float32 runtimes gain 4-8 %). The int8 quantiser starts from an
    unfolded export: quantised, the folded graphs were slower and further from fp32.

    Raises ``RuntimeError`` when a graph's largest relative deviation exceeds ``tolerance``;
    returns the manifest (also written to ``out_dir/manifest.json``).
    """
    from siam_core.deploy.runtime import OnnxNet  # onnxruntime is needed only to check

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = inference_net(model)
    search = _Search(net, fold)
    zt = torch.from_numpy(np.ascontiguousarray(z)).permute(2, 0, 1)[None].float()
    xt = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float()
    started = time.perf_counter()
    with torch.no_grad():
        kernels = net.template(zt)
        feats = search.features(xt)
        # the reference is the network as trained: folding must not change what it computes
        cls, loc = net.rpn_head.track(kernels, net.features(xt))
    k_names = [f"kernel_{i}" for i in range(len(kernels))]
    f_names = [f"feat_{i}" for i in range(len(feats))]
    _export(_Template(net), (zt,), out / "template.onnx", ["z"], k_names, _spatial(["z"], True))
    _export(
        _Features(search),
        (xt,),
        out / "features.onnx",
        ["x"],
        f_names,
        _spatial(["x", *f_names], batch_dynamic=True),
    )
    heads = {b: export_head(search, out, b, kernels, feats) for b in sorted({1, *batches})}
    for b, name in heads.items():  # the search branch in one call: what a plain tracker runs
        merge_search(out / "features.onnx", out / name, out / search_file(b))

    graphs = {
        "template": GraphSpec(
            "template.onnx",
            {"z": list(zt.shape)},
            {n: list(t.shape) for n, t in zip(k_names, kernels, strict=True)},
        ),
        "features": GraphSpec(
            "features.onnx",
            {"x": list(xt.shape)},
            {n: list(t.shape) for n, t in zip(f_names, feats, strict=True)},
        ),
    }
    for b, name in heads.items():
        graphs[f"head_b{b}"] = GraphSpec(
            name,
            {n: [b, *t.shape[1:]] for n, t in zip(k_names + f_names, kernels + feats, strict=True)},
            {"cls": [b, *cls.shape[1:]], "loc": [b, *loc.shape[1:]]},
        )
        graphs[f"search_b{b}"] = GraphSpec(
            search_file(b),
            {
                "x": [b, *xt.shape[1:]],
                **{n: [b, *t.shape[1:]] for n, t in zip(k_names, kernels, strict=True)},
            },
            {"cls": [b, *cls.shape[1:]], "loc": [b, *loc.shape[1:]]},
        )
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "config": cfg.to_dict(),
        "opset": OPSET,
        "num_kernels": len(kernels),
        "num_features": len(feats),
        "head_batches": sorted(heads),
        "search_batches": sorted(heads),  # features and head_b{N} merged: search_b{N}.onnx
        # per level: the neck composed into the head's search convolution (feat_i is then
        # the backbone's map); empty where the network was exported unfolded
        "folded_levels": list(search.fold.folded) if search.fold else [],
        "graphs": {k: v.to_dict() for k, v in graphs.items()},
        "input_layout": "float32 BGR 0..255, (B, 3, S, S), no normalisation",
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))

    onnx_net = OnnxNet(out, provider="onnxruntime")
    got_k = onnx_net.template(zt)
    got_f = onnx_net.features(xt)
    got_cls, got_loc = onnx_net.rpn_head.track(got_k, got_f)
    one_cls, one_loc = onnx_net.search(xt, got_k)
    errors = {
        "template": _rel_err(kernels, [t.numpy() for t in got_k]),
        "features": _rel_err(feats, [t.numpy() for t in got_f]),
        "head_b1": _rel_err([cls, loc], [got_cls.numpy(), got_loc.numpy()]),
        "search_b1": _rel_err([cls, loc], [one_cls.numpy(), one_loc.numpy()]),
    }
    worst = max(errors.values())
    if not worst <= tolerance:
        raise RuntimeError(
            f"{cfg.name}: ONNX graphs deviate from PyTorch by {worst:.2e} (relative), above the "
            f"tolerance {tolerance:.0e}: {errors}"
        )
    manifest["check"] = {
        "max_relative_error": errors,
        "tolerance": tolerance,
        "search_size": int(xt.shape[-1]),
        "image": check_image,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """The manifest of an export folder, with a clear error when it is missing or malformed."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{out_dir}: no {MANIFEST}; export the model with siam-export")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION:
        raise ValueError(f"{path}: not a siam-export manifest of version {MANIFEST_VERSION}")
    for key in ("config", "graphs", "num_kernels", "num_features"):
        if key not in manifest:
            raise ValueError(f"{path}: manifest lacks '{key}'")
    return manifest
