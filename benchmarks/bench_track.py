"""Per-frame ``track()`` latency of the SiamRPN-family trackers on CPU, side by side.

For each model, three trackers follow the same real clip frame by frame, timed alternately so
that all see the same machine load:

* ``ours``: ``SiamRPNTracker`` as shipped (channels-last, template kernels
  precomputed, OpenCV crops, ``torch.inference_mode``), with its stage breakdown;
* ``plain``: the same tracker with ``optimize=False`` (the model as loaded, NCHW);
* ``pysot``: a literal transcription of the official pysot procedure
  (``test/core/_pysot_procedure.py``: whole-frame padding per crop, template branch re-run every
  frame, NCHW; under ``no_grad``, which pysot's own test loop does not even use).

Networks without shipped weights use seeded random weights, calibrated to a trained model's
output range (speed does not depend on the values). The largest box difference between
``ours`` and ``pysot`` is printed too: the speed-up must come with the same output. Ratios to
the official figures quoted in issue 3 (pysot on a 2-vCPU machine: alex 100 ms, mobilev2
115 ms, r50 650 ms) are printed as well, but the side-by-side ``pysot`` column is the fair one.

    .venv/bin/python benchmarks/bench_track.py [--models alex mobilev2 r50] [--frames 120]
        [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test" / "core"))  # the literal pysot procedure lives with tests

from _pysot_procedure import PysotProcedure, calibrate_on_frame  # noqa: E402

from siam_core.checkpoint import load_checkpoint  # noqa: E402
from siam_core.config import load_config  # noqa: E402
from siam_core.io.frames import read_frames  # noqa: E402
from siam_core.models.model import build_model  # noqa: E402
from siam_core.tracker.siamrpn import SiamRPNTracker  # noqa: E402

MODELS = {
    "alex": "siamrpn_alex_dwxcorr",
    "mobilev2": "siamrpn_mobilev2_l234_dwxcorr",
    "r50": "siamrpn_r50_l234_dwxcorr",
    "upchannel": "siamrpn_alex_upchannel",
}
OFFICIAL_MS = {"alex": 100.0, "mobilev2": 115.0, "r50": 650.0}  # issue 3, pysot on 2 vCPU
# SIAM_BENCH_DATA: the shared data elsewhere (tools/gpu_bench_on_device.sh packs a copy)
DATA = Path(os.environ.get("SIAM_BENCH_DATA", REPO.parent / "shared" / "data"))
PARITY_WEIGHTS = DATA / "parity" / "pysot_siamrpn_alex_dwxcorr" / "weights.safetensors"
BAG_INIT = (315.0, 140.0, 112.0, 112.0)  # shared/data/README.md


def make_model(name: str, first: np.ndarray):
    """Model and config ``name``: pysot's seeded parity weights for ``siamrpn_alex_dwxcorr``,
    random weights calibrated on ``first`` otherwise (speed does not depend on the values)."""
    cfg = load_config(name)
    if name == "siamrpn_alex_dwxcorr" and PARITY_WEIGHTS.is_file():
        model, cfg = load_checkpoint(PARITY_WEIGHTS, cfg)
        return model, cfg, "pysot parity weights"
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    calibrate_on_frame(model, cfg, first, BAG_INIT)
    return model, cfg, "random (seed 0, calibrated)"


def bench(key: str, frames: list[np.ndarray]) -> dict:
    model, cfg, weights = make_model(MODELS[key], frames[0])
    ours = SiamRPNTracker(model, cfg)
    plain = SiamRPNTracker(model, cfg, optimize=False)
    pysot = PysotProcedure(model, cfg)
    for t in (ours, plain, pysot):
        t.init(frames[0], BAG_INIT)
    times: dict[str, list[float]] = {"ours": [], "plain": [], "pysot": []}
    stages: dict[str, list[float]] = {}
    max_diff = 0.0
    for frame in frames[1:]:
        start = time.perf_counter()
        result = ours.track(frame)
        times["ours"].append(time.perf_counter() - start)
        for stage, value in result.timings.items():
            stages.setdefault(stage, []).append(value)
        start = time.perf_counter()
        plain.track(frame)
        times["plain"].append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.no_grad():
            ref_box, _ = pysot.track(frame)
        times["pysot"].append(time.perf_counter() - start)
        max_diff = max(max_diff, float(np.abs(np.subtract(result.box, ref_box)).max()))
    med = {k: 1000 * statistics.median(v) for k, v in times.items()}
    med.update({f"stage_{k}": 1000 * statistics.median(v) for k, v in stages.items()})
    return {
        "model": cfg.name,
        "weights": weights,
        "frames": len(frames) - 1,
        "diff": max_diff,
        **med,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", default=["alex", "mobilev2"], choices=sorted(MODELS))
    p.add_argument("--frames", type=int, default=121, help="frames per model (first is init)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--video", type=Path, default=DATA / "bag.avi")
    args = p.parse_args(argv)
    if not args.video.is_file():
        raise SystemExit(f"clip not found: {args.video}")
    torch.set_num_threads(args.threads)
    frames = read_frames(args.video, args.frames)
    print(
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"clip: {args.video.name}, {len(frames) - 1} timed frames per model; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    rows = [bench(key, frames) for key in args.models]
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    head = (
        f"{'model':31} {'ours':>7} {'crop':>6} {'backb.':>7} {'head':>6} {'post':>6} "
        f"{'plain':>7} {'pysot':>7} {'pysot/ours':>10} {'official':>8} {'off./ours':>9} "
        f"{'max |dbox|':>10}"
    )
    print(head + "\n" + "-" * len(head))
    for key, r in zip(args.models, rows, strict=True):
        official = OFFICIAL_MS.get(key)
        print(
            f"{r['model']:31} {r['ours']:7.1f} {r['stage_crop']:6.2f} {r['stage_backbone']:7.1f} "
            f"{r['stage_head']:6.1f} {r['stage_post']:6.2f} {r['plain']:7.1f} {r['pysot']:7.1f} "
            f"{r['pysot'] / r['ours']:9.2f}x "
            f"{official if official else float('nan'):8.0f} "
            f"{(official / r['ours']) if official else float('nan'):8.2f}x {r['diff']:10.2e}"
        )
    print(
        "\nmedians in ms per track() call; weights: "
        + "; ".join(f"{r['model']}: {r['weights']}" for r in rows)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
