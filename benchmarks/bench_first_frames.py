"""The first seconds after ``init_target``: the node's default tracker at camera rate.

The tracker the node builds with its defaults (``backend``/``precision`` ``auto``, the online
classifier training on a worker thread, the node's thread count) follows ``make demo``'s
pedestrian for ``--frames`` frames of vtest.avi, paced at ``--fps`` as a camera would be (a
frame done early waits for the next; the classifier's worker gets that time). Variants, each
built afresh and run in turn ``--rounds`` times so that all see the same machine load:

* ``cold, DROL order``: no warm-up, the classifier's arithmetic in DROL's order
  (``OnlineConfig.drol_order``), as the node ran before both changes;
* ``warm, DROL order``: ``Tracker.warm_up()`` first (as the node now does);
* ``warm`` (the node's default now): warm-up and the fast order.

Every variant takes the first-frame features one crop at a time on the worker (there is no
switch for that). Prints, per variant, medians over the rounds of: frame 1's ms, the slowest
frame, p90, frames over the 40 ms goal, and the frame at which the classifier became ready
(its first-frame training done), and the warm-up's own time (paid when the node loads the
model), with ratios to the cold variant.

    .venv/bin/python benchmarks/bench_first_frames.py [--frames 100] [--rounds 3] [--fps 25]
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

from siam_core.io.frames import read_frames
from siam_core.threads import set_threads
from siam_core.tracker.base import Tracker
from siam_core.zoo import load_tracker, resolve_runtime

CLIP = Path(sys.prefix) / "share" / "siam-tracker-demo" / "vtest.avi"
BOX = (642.0, 240.0, 40.0, 80.0)  # make demo's pedestrian (siam_tracker_ros.demo.BOX)
VARIANTS = (
    ("cold, DROL order", False, True),
    ("warm, DROL order", True, True),
    ("warm (node default)", True, False),
)


def node_tracker(threads: int, **online: object) -> Tracker:
    """The node's default tracker (runtime ``auto``, the classifier's updates on its worker)
    with these ``OnlineConfig`` overrides."""
    backend, precision = resolve_runtime("auto", "auto", "cpu", "", "", "eager")
    return load_tracker(
        device="cpu",
        backend=backend,
        threads=threads,
        online={"async_update": True, **online},
        precision=precision,
    )


def one_run(
    frames: list[np.ndarray], warm: bool, drol_order: bool, threads: int, period: float
) -> dict[str, float]:
    tracker = node_tracker(threads, drol_order=drol_order)
    start = time.perf_counter()
    if warm:
        tracker.warm_up()
    warm_up_s = time.perf_counter() - start
    classifier = tracker.online.classifier  # type: ignore[attr-defined]
    tracker.init(frames[0], BOX)
    times, ready = [], float(len(frames))  # not ready within the run
    for index, frame in enumerate(frames[1:], 1):
        start = time.perf_counter()
        tracker.track(frame)
        spent = time.perf_counter() - start
        times.append(spent)
        if ready == len(frames) and classifier.ready:
            ready = index
        time.sleep(max(0.0, period - spent))
    tracker.close()  # type: ignore[attr-defined]
    ms = np.array(times) * 1000
    return {
        "frame 1": float(ms[0]),
        "max": float(ms.max()),
        "p90": float(np.percentile(ms, 90)),
        "> 40 ms": float((ms > 40).sum()),
        "ready at": ready,
        "warm-up ms": 1000 * warm_up_s,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--clip", type=Path, default=CLIP)
    args = p.parse_args()
    if not args.clip.is_file():
        raise SystemExit(f"clip not found: {args.clip} (make demo fetches it)")
    threads = set_threads(0)  # the node's rule (siam_core.threads)
    frames = read_frames(args.clip, args.frames + 1)
    print(
        f"{len(frames) - 1} frames of {args.clip.name} at {args.fps:g} fps, {threads} thread(s), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    )
    rows: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in VARIANTS}
    for _ in range(args.rounds):
        for name, warm, drol_order in VARIANTS:
            rows[name].append(one_run(frames, warm, drol_order, threads, 1 / args.fps))
    keys = list(rows[VARIANTS[0][0]][0])
    print(f"\n{'median of ' + str(args.rounds) + ' runs':22s}" + "".join(f"{k:>11s}" for k in keys))
    base = {k: statistics.median(r[k] for r in rows[VARIANTS[0][0]]) for k in keys}
    for name, _, _ in VARIANTS:
        med = {k: statistics.median(r[k] for r in rows[name]) for k in keys}
        print(f"{name:22s}" + "".join(f"{med[k]:11.1f}" for k in keys))
        ratios = [med[k] / base[k] if base[k] else float("nan") for k in keys[:-1]]
        print(f"{'  x cold':22s}" + "".join(f"{r:11.2f}" for r in ratios))
    print(
        f"load average {os.getloadavg()[0]:.1f} "
        f"(ms; 'ready at' in frames, {len(frames)}: not within the run)"
    )


if __name__ == "__main__":
    main()
