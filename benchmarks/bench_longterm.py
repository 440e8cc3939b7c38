"""Extra cost of the distractor-aware module and of long-term (lost-mode) search, per frame.

For each model, on the same real clip:

* short-term: ``SiamRPNTracker`` and ``DistractorAwareTracker`` (paper settings; template
  embeddings from the search features, the default, and from 127 crops) with the same network
  follow the clip, timed alternately frame by frame so all see the same machine load; the
  distractor module's own stages (re-ranking, template learning) and the mean number of
  distractors learned per frame are printed;
* lost mode: ``LongTermTracker`` held in the LOST state, searching at each lost size in turn on
  every frame (sizes interleaved, so all see the same load), next to the short-term size;
  ``siamfcplus`` (SiamFC+ CIResNet-22 with the SiamDW parity weights, three scales per search)
  has no distractor module and is timed in lost mode only.

Networks without shipped weights use seeded random weights rescaled to a trained model's output
range (speed does not depend on the values). How many distractors are learned per frame
depends on the weights (random ones find the maximum, 4, on every frame: the worst case).

    .venv/bin/python benchmarks/bench_longterm.py [--models alex upchannel mobilev2 siamfcplus]
        [--frames 60] [--sizes 383 511 767 831] [--threads 2] [--device cpu|cuda]
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
from bench_track import BAG_INIT, make_model  # same folder: one way to build models

from siam_core.config import load_config
from siam_core.io.frames import read_frames
from siam_core.models.siamdw_compat import load_siamdw_model
from siam_core.tracker.base import TrackState
from siam_core.tracker.distractor import DistractorAwareTracker, DistractorConfig
from siam_core.tracker.longterm import LongTermConfig, LongTermTracker
from siam_core.tracker.siamfc import SiamFCTracker
from siam_core.tracker.siamrpn import SiamRPNTracker

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MODELS = {
    "alex": "siamrpn_alex_dwxcorr",
    "upchannel": "dasiamrpn_otb",
    "mobilev2": "siamrpn_mobilev2_l234_dwxcorr",
    "r50": "siamrpn_r50_l234_dwxcorr",
    "r50lt": "siamrpn_r50_l234_dwxcorr_lt",
    "siamfcplus": "siamfcplus_ciresnet22_vot",
}
SIAMDW_PARITY = DATA / "parity" / "siamdw_siamfcres22" / "weights.safetensors"


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_short(model, cfg, frames, device: str) -> dict:
    """Plain SiamRPN and the distractor module with template embeddings from the search
    features (default) and from 127 crops, timed alternately on every frame."""
    trackers = {
        "plain": SiamRPNTracker(model, cfg, device=device),
        "search": DistractorAwareTracker(model, cfg, DistractorConfig(), device=device),
        "crop": DistractorAwareTracker(
            model, cfg, DistractorConfig(template_source="crop"), device=device
        ),
    }
    for t in trackers.values():
        t.init(frames[0], BAG_INIT)
    times: dict[str, list[float]] = {k: [] for k in trackers}
    stages: dict[str, list[float]] = {"post": [], "learn": [], "learn_crop": []}
    counts = []
    for frame in frames[1:]:
        for name, tracker in trackers.items():
            result, dt = _timed(lambda f=frame, t=tracker: t.track(f))
            times[name].append(dt)
            if name == "search":
                stages["post"].append(result.timings["post"])
                stages["learn"].append(result.timings["learn"])
                counts.append(len(tracker.last_distractors))
            elif name == "crop":
                stages["learn_crop"].append(result.timings["learn"])
    med = {k: 1000 * statistics.median(v) for k, v in {**times, **stages}.items()}
    med["distractors"] = float(np.mean(counts))
    return med


def bench_lost(make_inner, cfg, frames, sizes: list[int]) -> dict[int, float]:
    """Median ms per LOST-state frame at each search size (the short-term size included);
    ``make_inner()`` builds the wrapped tracker (RPN or SiamFC family)."""
    usable = [s for s in sizes if s > cfg.tracker.instance_size]
    trackers = {cfg.tracker.instance_size: LongTermTracker(make_inner())}
    for size in usable:
        lt_cfg = LongTermConfig(lost_instance_sizes=(size,))
        trackers[size] = LongTermTracker(make_inner(), lt_cfg)
    for t in trackers.values():
        t.init(frames[0], BAG_INIT)
    times: dict[int, list[float]] = {s: [] for s in trackers}
    short = cfg.tracker.instance_size
    for frame in frames[1:]:
        for size, t in trackers.items():
            state = t.tracker.center_pos.copy(), t.tracker.size.copy(), vars(t.tracker).get("s_x")
            if size != short:  # hold it in the lost state, searching at ``size``
                t.machine.state, t.machine.lost_frames = TrackState.LOST, 1
            else:  # short-term: as long as it is not lost
                t.machine.state, t.machine.lost_frames = TrackState.TRACKING, 0
            _, dt = _timed(lambda f=frame, tr=t: tr.track(f))
            times[size].append(dt)
            t.tracker.center_pos, t.tracker.size = state[:2]  # same search centre every frame
            if state[2] is not None:  # SiamFC: and the same search side
                t.tracker.s_x = state[2]
    return {s: 1000 * statistics.median(v) for s, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--models", nargs="+", default=["alex", "upchannel", "mobilev2"], choices=sorted(MODELS)
    )
    p.add_argument("--frames", type=int, default=61, help="frames per model (first is init)")
    p.add_argument("--sizes", nargs="+", type=int, default=[383, 511, 767, 831])
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--video", type=Path, default=DATA / "bag.avi")
    args = p.parse_args(argv)
    if not args.video.is_file():
        raise SystemExit(f"clip not found: {args.video}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but PyTorch sees no CUDA device")
    torch.set_num_threads(args.threads)
    frames = read_frames(args.video, args.frames)
    where = (
        torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"device: {args.device} ({where}), torch {torch.__version__}")
    load = os.getloadavg()[0]
    print(f"clip: {args.video.name}, {len(frames) - 1} timed frames; load avg {load:.2f}")
    print("\nshort-term, ms per track() (median)")
    head = (
        f"{'model':30} {'plain':>7} {'+distr.':>8} {'ratio':>6} {'re-rank':>8} {'learn':>6} "
        f"{'+d.crop':>8} {'ratio':>6} {'learn':>6} {'distr./frame':>12}"
    )
    print(head + "\n" + "-" * len(head))
    lost_rows = []
    for key in args.models:
        if key == "siamfcplus":
            net = load_siamdw_model(MODELS[key], SIAMDW_PARITY)  # speed only: any weights do
            cfg = load_config(MODELS[key])
            make = lambda n=net, c=cfg: SiamFCTracker(n, c, device=args.device)  # noqa: E731
            lost_rows.append((cfg, bench_lost(make, cfg, frames, args.sizes)))
            continue
        model, cfg, weights = make_model(MODELS[key], frames[0])
        s = bench_short(model, cfg, frames, args.device)
        print(
            f"{cfg.name:30} {s['plain']:7.1f} {s['search']:8.1f} {s['search'] / s['plain']:5.2f}x "
            f"{s['post']:8.2f} {s['learn']:6.1f} {s['crop']:8.1f} {s['crop'] / s['plain']:5.2f}x "
            f"{s['learn_crop']:6.1f} {s['distractors']:12.2f}   ({weights})"
        )
        make = lambda m=model, c=cfg: SiamRPNTracker(m, c, device=args.device)  # noqa: E731
        lost_rows.append((cfg, bench_lost(make, cfg, frames, args.sizes)))
    print("\nlost mode, ms per frame (median) at each search size; ratio to the short-term size")
    for cfg, row in lost_rows:
        short = row[cfg.tracker.instance_size]
        cells = "  ".join(
            f"{size}: {ms:7.1f} ({ms / short:4.1f}x)" for size, ms in sorted(row.items())
        )
        print(f"{cfg.name:30} {cells}")
    print(f"\nload avg after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
