"""What the online classifier's updates cost the frame path: memory size and update interval.

The node's default tracker (``backend``/``precision`` ``auto``, the classifier's updates on a
worker thread, the node's thread count) follows ``make demo``'s pedestrian through
``--frames`` frames of vtest.avi, paced at ``--fps`` as a camera would be. An update goes over
every stored sample, so its CPU grows with ``sample_memory_size`` and comes every
``train_skipping`` frames; on 2 cores the worker's updates slow the frames beside them. Each
variant (``--variants MEMORY/SKIPPING ...``; the first is the reference, by default the paper's
250/10) is built afresh and run in turn ``--rounds`` times, so that all see the same load.

Prints, per variant, medians over the rounds of: the per-frame ``track`` time (p50, p90, p99),
frames over the 40 ms goal, and the cores the process used (its CPU time over the wall time),
with ratios to the reference. The frames before the classifier's memory fills (``--skip``,
default 60) are left out of the per-frame figures: the first-frame training is
``bench_first_frames``' subject.

    .venv/bin/python benchmarks/bench_update_cost.py [--frames 500] [--rounds 3] \\
        [--variants 250/10 125/10 60/10]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from bench_first_frames import BOX, CLIP, node_tracker  # this folder: the same tracker and clip

from siam_core.io.frames import read_frames
from siam_core.threads import set_threads


def variant(text: str) -> tuple[int, int]:
    memory, _, skipping = text.partition("/")
    return int(memory), int(skipping)


def one_run(
    frames: list[np.ndarray], memory: int, skipping: int, threads: int, period: float, skip: int
) -> dict[str, float]:
    tracker = node_tracker(threads, sample_memory_size=memory, train_skipping=skipping)
    tracker.warm_up()  # as the node does when it loads a model
    tracker.init(frames[0], BOX)
    times = []
    wall, cpu = 0.0, 0.0
    for index, frame in enumerate(frames[1:], 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        tracker.track(frame)
        spent = time.perf_counter() - start
        time.sleep(max(0.0, period - spent))
        if index > skip:
            times.append(spent)
            wall += time.perf_counter() - start
            cpu += time.process_time() - start_cpu
    tracker.close()  # type: ignore[attr-defined]
    ms = np.array(times) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "> 40 ms": float((ms > 40).sum()),
        "cores": cpu / wall,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--skip", type=int, default=60, help="first frames left out of the figures")
    p.add_argument("--variants", nargs="+", type=variant, default=[(250, 10), (125, 10), (60, 10)])
    p.add_argument("--clip", type=Path, default=CLIP)
    args = p.parse_args()
    if not args.clip.is_file():
        raise SystemExit(f"clip not found: {args.clip} (make demo fetches it)")
    if args.frames <= args.skip:
        raise SystemExit(f"--frames ({args.frames}) must exceed --skip ({args.skip})")
    threads = set_threads(0)  # the node's rule (siam_core.threads)
    frames = read_frames(args.clip, args.frames + 1)
    print(
        f"{len(frames) - 1} frames of {args.clip.name} at {args.fps:g} fps (first {args.skip} "
        f"left out), {threads} thread(s), {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    names = [f"{m}/{s}" for m, s in args.variants]
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    period = 1 / args.fps
    for _ in range(args.rounds):
        for name, (memory, skipping) in zip(names, args.variants, strict=True):
            rows[name].append(one_run(frames, memory, skipping, threads, period, args.skip))
    keys = list(rows[names[0]][0])
    title = f"memory/skipping, median of {args.rounds}"
    print(f"\n{title:34s}" + "".join(f"{k:>9s}" for k in keys))
    base = {k: statistics.median(r[k] for r in rows[names[0]]) for k in keys}
    for name in names:
        med = {k: statistics.median(r[k] for r in rows[name]) for k in keys}
        print(f"{name:34s}" + "".join(f"{med[k]:9.2f}" for k in keys))
        ratios = [med[k] / base[k] if base[k] else float("nan") for k in keys]
        print(f"{'  x ' + names[0]:34s}" + "".join(f"{r:9.2f}" for r in ratios))
    print(f"load average {os.getloadavg()[0]:.1f} (ms; cores: process CPU time / wall time)")


if __name__ == "__main__":
    main()
