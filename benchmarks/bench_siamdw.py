"""Per-frame ``track()`` latency of every SiamDW model next to the RPN-family models, on CPU.

All trackers follow the same real clip; each frame is timed for every tracker in turn (round
robin), so all see the same machine load, and the table prints medians and the ratio to
``siamrpn_alex_dwxcorr`` measured in this run. SiamFC+ runs two ways: as shipped
(``optimize=False``: the official float32 arithmetic, which the parity test holds to the
official boxes) and ``optimize=True`` (BatchNorm folded, channels-last). Weights are seeded
random ones, calibrated for the RPN heads (speed does not depend on the values).

    .venv/bin/python benchmarks/bench_siamdw.py [--frames 21] [--threads 2] [--models ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_track import BAG_INIT, DATA, make_model  # noqa: E402

from siam_core.config import load_config  # noqa: E402
from siam_core.io.frames import read_frames  # noqa: E402
from siam_core.models.model import build_model  # noqa: E402
from siam_core.tracker.base import Tracker  # noqa: E402
from siam_core.tracker.siamdw import SiamDWRPNTracker  # noqa: E402
from siam_core.tracker.siamfc import SiamFCTracker  # noqa: E402
from siam_core.tracker.siamrpn import SiamRPNTracker  # noqa: E402

SIAMFC = [
    "siamfcplus_ciresnet16",
    "siamfcplus_ciresnet19",
    "siamfcplus_ciresnet22_vot",
    "siamfcplus_ciresnet43",
    "siamfcplus_ciresinception22_vot",
    "siamfcplus_ciresnext22_vot",
]
RPN = ["siamrpnplus_ciresnet22_otb", "siamrpn_alex_dwxcorr", "siamrpn_alex_upchannel"]
RPN += ["siamrpn_mobilev2_l234_dwxcorr"]
BASE = "siamrpn_alex_dwxcorr"


def trackers(name: str, first) -> dict[str, Tracker]:
    """The tracker(s) timed for one model, keyed by their row label."""
    cfg = load_config(name)
    if cfg.tracker.is_siamfc:
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        return {
            name: SiamFCTracker(model, cfg),
            f"{name} (optimize)": SiamFCTracker(model, cfg, optimize=True),
        }
    model, cfg, _ = make_model(name, first)
    cls = SiamDWRPNTracker if name.startswith("siamrpnplus") else SiamRPNTracker
    return {name: cls(model, cfg)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", default=SIAMFC + RPN)
    p.add_argument("--frames", type=int, default=21, help="frames (the first is the init)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--video", type=Path, default=DATA / "bag.avi")
    args = p.parse_args(argv)
    if not args.video.is_file():
        raise SystemExit(f"clip not found: {args.video}")
    if BASE not in args.models:
        args.models.append(BASE)
    torch.set_num_threads(args.threads)
    frames = read_frames(args.video, args.frames)
    print(
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; clip {args.video.name}, "
        f"{len(frames) - 1} timed frames; load average before: {os.getloadavg()[0]:.2f}"
    )
    timed: dict[str, Tracker] = {}
    for name in args.models:
        timed.update(trackers(name, frames[0]))
    for tracker in timed.values():
        tracker.init(frames[0], BAG_INIT)
    times: dict[str, list[float]] = {label: [] for label in timed}
    for frame in frames[1:]:
        for label, tracker in timed.items():
            start = time.perf_counter()
            tracker.track(frame)
            times[label].append(time.perf_counter() - start)
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    base = statistics.median(times[BASE])
    head = f"{'model':45} {'ms/frame':>9} {'x ' + BASE:>26}"
    print(head + "\n" + "-" * len(head))
    for label, values in times.items():
        med = statistics.median(values)
        print(f"{label:45} {1000 * med:9.1f} {med / base:25.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
