"""Exports made on demand: ``backend=onnxruntime|openvino`` without running siam-export first.

The graphs of a (weights file, config) pair go into ``$SIAM_TRACKER_CACHE`` (default
``~/.cache/siam-tracker``) under ``onnx/<key>``, the key a hash of the weights' bytes, the
config, the torch version and the export recipe, so a changed file or exporter never reuses
stale graphs. The export is checked against PyTorch on a real crop pair when the demo clip or
the shared ``bag`` clip is on disk, else on a deterministic textured image; the manifest says
which. An online (DROL) tracker takes the unfolded graphs, under ``onnx/<key>-unfolded``.
int8 graphs (``siam_core.deploy.quantize``) are quantised from an unfolded export of the same
network (made in passing, not kept) into ``onnx/<key>-int8-<q>``, ``q`` a hash of the
calibration set and the quantiser's version; where int8 graphs ship beside the weights
(``quantize.ship``), they are used instead, under ``onnx/<key>-int8-shipped-<id>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from siam_core.config import Config
from siam_core.deploy import export
from siam_core.deploy.export import MANIFEST, export_onnx
from siam_core.models.model import SiameseRPN
from siam_core.tracker.base import synthetic_frame
from siam_core.tracker.siamrpn import SiamRPNTracker

# Real clips that may be on disk: the demo's (fetched by make setup) and the shared data's.
_CHECK_CLIPS = (
    Path(sys.prefix) / "share" / "siam-tracker-demo" / "vtest.avi",
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bag.avi",
)


def cache_root() -> Path:
    return Path(os.environ.get("SIAM_TRACKER_CACHE", Path.home() / ".cache" / "siam-tracker"))


def check_frame() -> tuple[np.ndarray, tuple[float, float, float, float], str]:
    """(frame, box, source) to check an export on: a real frame if one is on disk."""
    for clip in _CHECK_CLIPS:
        if clip.is_file():
            cap = cv2.VideoCapture(str(clip))
            ok, frame = cap.read()
            cap.release()
            if ok and frame is not None:
                h, w = frame.shape[:2]
                return frame, (w / 2 - 40, h / 2 - 40, 80.0, 80.0), f"{clip} frame 0"
    frame, box = synthetic_frame()
    return frame, box, "synthetic textured image (seed 0)"


def _key(weights: str | Path, cfg: Config) -> str:
    h = hashlib.sha256()
    with Path(weights).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    h.update(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    h.update(torch.__version__.encode())
    h.update(export.RECIPE.encode())
    return h.hexdigest()[:20]


def _int8_key() -> str:
    """What an int8 export depends on beyond the float32 one: calibration set and quantiser."""
    import onnxruntime

    from siam_core.deploy import quantize

    h = hashlib.sha256(onnxruntime.__version__.encode())
    h.update(json.dumps([p.name for p in quantize.training_sequences()]).encode())
    h.update(f"{quantize.CALIBRATION_PAIRS} {quantize.SEARCHES_PER_SEQUENCE}".encode())
    h.update(quantize.RECIPE.encode())
    return h.hexdigest()[:8]


def cached_export(
    model: SiameseRPN,
    cfg: Config,
    weights: str | Path,
    precision: str = "fp32",
    fold: bool = True,
) -> Path:
    """The export folder of this model, made (and checked) on first use; ``precision="int8"``
    its quantised graphs (calibrated on the training sequences), made from it on first use;
    ``fold=False`` float32 graphs without ``siam_core.deploy.fold`` (int8 graphs always are)."""
    key = _key(weights, cfg)
    target = cache_root() / "onnx" / (key if fold or precision == "int8" else f"{key}-unfolded")

    def write(tmp: Path, fold: bool = True) -> None:
        frame, box, source = check_frame()
        z, x = SiamRPNTracker(model, cfg, optimize=False).patches(frame, box)
        export_onnx(model, cfg, tmp, z, x, check_image=source, fold=fold)

    if precision != "int8":
        return _publish(target, lambda tmp: write(tmp, fold))
    from siam_core.deploy import quantize

    bits = quantize.weight_bits_for_cpu()  # 7-bit weights where 8-bit ones would saturate
    shipped = quantize.shipped_int8(weights, cfg.to_dict(), bits)
    if shipped is not None:  # graphs shipped beside the weights: no calibration data needed

        def assemble(tmp: Path) -> None:
            with tempfile.TemporaryDirectory(prefix=".export-src-", dir=tmp.parent) as src:
                write(Path(src), fold=False)
                quantize.assemble_shipped(src, tmp, shipped)

        return _publish(target.with_name(f"{key}-int8-shipped-{shipped['id']}"), assemble)

    def int8(tmp: Path) -> None:
        tracker = SiamRPNTracker(model, cfg, optimize=False)
        with tempfile.TemporaryDirectory(prefix=".export-src-", dir=tmp.parent) as src:
            write(Path(src), fold=False)  # the quantiser's source (export_onnx's doc)
            quantize.quantize_export(
                src, tmp, tracker, pairs=quantize.CALIBRATION_PAIRS, weight_bits=bits
            )

    suffix = "" if bits == 8 else f"-{bits}bit"
    return _publish(target.with_name(f"{key}-int8-{_int8_key()}{suffix}"), int8)


def _publish(target: Path, write: Callable[[Path], Any]) -> Path:
    """``target``, written by ``write`` into a temporary folder and renamed unless it exists
    already: a crash never leaves a half export behind."""
    if (target / MANIFEST).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        write(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished the same export first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
