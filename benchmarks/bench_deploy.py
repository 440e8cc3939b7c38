"""Deployment speed: model x backend x targets, crop included, beside the pysot procedure.

For each model the same real clip is tracked frame by frame by every configuration, timed in
turn on each frame so that all see the same machine load:

* ``pysot``: the literal pysot procedure (``test/core/_pysot_procedure.py``), one target;
* ``torch`` / ``onnxruntime`` / ``openvino``: ``SiamRPNTracker`` with the network in that
  runtime (the ONNX graphs exported and checked by ``siam_core.deploy.export``), one target;
* ``<backend> xN``: ``MultiTracker`` with N targets in one batched pass per frame;
* ``torch 10 sep.``: ten separate single-target trackers, the baseline multi-target beats.

Prints median ms per frame (all targets), per target, the ratio of the pysot procedure to each
single-target row, and each row's largest box difference from PyTorch fp32 (target 0).

    .venv/bin/python benchmarks/bench_deploy.py [--models alex default] [--frames 60]
        [--backends torch onnxruntime openvino] [--targets 1 4 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test" / "core"))
sys.path.insert(0, str(REPO / "benchmarks"))

from _pysot_procedure import PysotProcedure  # noqa: E402
from bench_track import BAG_INIT, DATA, make_model  # noqa: E402

from siam_core import zoo  # noqa: E402
from siam_core.checkpoint import load_checkpoint  # noqa: E402
from siam_core.deploy.export import export_onnx  # noqa: E402
from siam_core.deploy.runtime import OnnxNet  # noqa: E402
from siam_core.io.frames import read_frames  # noqa: E402
from siam_core.tracker.multi import MultiTracker  # noqa: E402
from siam_core.tracker.siamrpn import SiamRPNTracker  # noqa: E402

MODELS = {"alex": "siamrpn_alex_dwxcorr", "mobilev2": "siamrpn_mobilev2_l234_dwxcorr"}


def _boxes(n: int) -> list[tuple[float, float, float, float]]:
    """N targets: the parity box and boxes shifted around it (all inside the 480x360 clip)."""
    x, y, w, h = BAG_INIT
    offsets = [(0, 0), (-120, 0), (-240, 40), (60, 100), (-60, -100), (-200, -100)]
    offsets += [(-280, 120), (20, -110), (-150, 150), (-300, -120)]
    return [(x + dx, y + dy, w, h) for dx, dy in offsets[:n]]


def _model(key: str, frame: np.ndarray):
    if key == "default":
        model, cfg = load_checkpoint(zoo.DEFAULT_WEIGHTS)
        return model, cfg, "embedded default model"
    return make_model(MODELS[key], frame)


def bench(key: str, frames: list[np.ndarray], backends: list[str], targets: list[int]) -> list:
    model, cfg, weights = _model(key, frames[0])
    export = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    z, x = SiamRPNTracker(model, cfg, optimize=False).patches(frames[0], BAG_INIT)
    manifest = export_onnx(model, cfg, export, z, x, batches=tuple(n for n in targets if n > 1))
    runtimes = {b: OnnxNet(export, b, torch.get_num_threads()) for b in backends if b != "torch"}

    def single(backend: str) -> SiamRPNTracker:
        return SiamRPNTracker(model, cfg, runtime=runtimes.get(backend))

    runs: dict[str, tuple[Callable[[np.ndarray], tuple], int]] = {}
    pysot = PysotProcedure(model, cfg)
    pysot.init(frames[0], BAG_INIT)

    def run_pysot(frame: np.ndarray) -> tuple:
        with torch.no_grad():
            return pysot.track(frame)[0]

    runs["pysot"] = (run_pysot, 1)
    for backend in backends:
        t = single(backend)
        t.init(frames[0], BAG_INIT)
        runs[backend] = ((lambda f, t=t: t.track(f).box), 1)
        for n in targets:
            if n == 1:
                continue
            multi = MultiTracker.from_tracker(single(backend))
            for i, box in enumerate(_boxes(n)):
                multi.add(i, frames[0], box)
            runs[f"{backend} x{n}"] = ((lambda f, m=multi: m.track(f)[0].box), n)
    if "torch" in backends and 10 in targets:
        seps = [single("torch") for _ in range(10)]
        for t, box in zip(seps, _boxes(10), strict=True):
            t.init(frames[0], box)
        runs["torch 10 sep."] = ((lambda f: [t.track(f) for t in seps][0].box), 10)  # noqa: RUF015

    times: dict[str, list[float]] = {name: [] for name in runs}
    diffs: dict[str, float] = dict.fromkeys(runs, 0.0)
    for frame in frames[1:]:
        boxes = {}
        for name, (fn, _) in runs.items():
            start = time.perf_counter()
            boxes[name] = fn(frame)
            times[name].append(time.perf_counter() - start)
        ref = boxes.get("torch")
        if ref is not None:
            for name, box in boxes.items():
                diffs[name] = max(diffs[name], float(np.abs(np.subtract(box, ref)).max()))
    rows = []
    base = statistics.median(times["pysot"])
    for name, (_, n) in runs.items():
        med = statistics.median(times[name])
        rows.append(
            {
                "model": cfg.name,
                "run": name,
                "targets": n,
                "ms": 1000 * med,
                "ms_per_target": 1000 * med / n,
                "speedup": base / med if n == 1 else float("nan"),
                "diff": diffs[name],
            }
        )
    worst = max(manifest["check"]["max_relative_error"].values())
    print(f"{cfg.name}: weights {weights}; export max relative deviation {worst:.1e}")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", default=["alex", "default"])
    p.add_argument("--backends", nargs="+", default=["torch", "onnxruntime", "openvino"])
    p.add_argument("--targets", nargs="+", type=int, default=[1, 4, 10])
    p.add_argument("--frames", type=int, default=61, help="frames per model (first is init)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of every runtime")
    p.add_argument("--video", type=Path, default=DATA / "bag.avi")
    args = p.parse_args(argv)
    if not args.video.is_file():
        raise SystemExit(f"clip not found: {args.video}")
    torch.set_num_threads(args.threads)
    frames = read_frames(args.video, args.frames)
    print(
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"torch {torch.__version__}, {args.threads} threads per runtime; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    rows = [r for key in args.models for r in bench(key, frames, args.backends, args.targets)]
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    head = (
        f"{'model':30} {'run':18} {'targets':>7} {'ms/frame':>9} {'ms/target':>9} "
        f"{'pysot/run':>9} {'max |dbox| vs torch':>20}"
    )
    print(head + "\n" + "-" * len(head))
    for r in rows:
        speed = "" if r["speedup"] != r["speedup"] else f"{r['speedup']:8.2f}x"
        print(
            f"{r['model']:30} {r['run']:18} {r['targets']:7d} {r['ms']:9.1f} "
            f"{r['ms_per_target']:9.1f} {speed:>9} {r['diff']:20.2e}"
        )
    print(f"\nmedians over {len(frames) - 1} frames of {args.video.name}, crop included")
    return 0


if __name__ == "__main__":
    sys.exit(main())
