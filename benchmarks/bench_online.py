"""Cost of DROL's online classifier on the CPU, per frame and per update.

On the same real clip (``bag.avi``), with the same network (the embedded default model unless
``--model/--weights`` name another):

* init: the plain tracker's ``init`` and the online tracker's (first-frame augmentation,
  feature extraction and Gauss-Newton training), alternated ``--inits`` times;
* per frame: the plain tracker and the online tracker (synchronous updates, as DROL) follow
  the clip, timed alternately frame by frame so both see the same machine load; the online
  tracker's frames are split by what the classifier did: normal (no training), routine update
  (every ``train_skipping`` frames) and hard-negative update (immediate);
* updates alone: one filter update (``cg_iter`` CG iterations) with the memory holding the
  first-frame samples, half full and full, since the cost grows with the samples stored;
* asynchronous mode (the ROS node's): the init and frame-path times of the online tracker
  whose first-frame training and updates run on a worker thread, to show that no frame waits
  for one.

    .venv/bin/python benchmarks/bench_online.py [--frames 120] [--threads 1] [--inits 3]
        [--model NAME --weights FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from siam_core.io.frames import read_frames
from siam_core.online.classifier import HARD_NEGATIVE
from siam_core.tracker.drol import DROLTracker, online_tracker
from siam_core.tracker.siamrpn import build_tracker
from siam_core.zoo import DEFAULT_WEIGHTS

REPO = Path(__file__).resolve().parents[1]
BAG = REPO.parent / "shared" / "data" / "bag.avi"
BAG_INIT = (315.0, 140.0, 112.0, 112.0)


def _ms(values: list[float]) -> str:
    if not values:
        return "      -"
    return f"{1000 * statistics.median(values):7.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--inits", type=int, default=3)
    p.add_argument("--model", default=None)
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if not BAG.is_file():
        raise SystemExit(f"shared clip not found: {BAG}")
    frames = read_frames(BAG, args.frames + 1)
    plain = build_tracker(args.model, args.weights)
    online = online_tracker(plain)
    asyn = online_tracker(plain, {"async_update": True})
    print(f"model {plain.cfg.name}, {len(frames) - 1} frames of bag.avi, {args.threads} thread(s)")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}"
    )

    inits: dict[str, list[float]] = {"plain": [], "online": []}
    for _ in range(args.inits):
        for name, tr in (("plain", plain), ("online", online)):
            start = time.perf_counter()
            tr.init(frames[0], BAG_INIT)
            inits[name].append(time.perf_counter() - start)
    start = time.perf_counter()
    asyn.init(frames[0], BAG_INIT)  # returns at once: the training runs on the worker
    inits["async"] = [time.perf_counter() - start]

    kinds: dict[str, list[float]] = {"plain": [], "normal": [], "routine": [], "hard": []}
    async_times: list[float] = []
    cls = online.online.classifier
    for frame in frames[1:]:
        start = time.perf_counter()
        plain.track(frame)
        kinds["plain"].append(time.perf_counter() - start)
        start = time.perf_counter()
        online.track(frame)
        elapsed = time.perf_counter() - start
        flag = online.online.last.flag if online.online.last else None
        if flag == HARD_NEGATIVE:
            kinds["hard"].append(elapsed)
        elif (cls.frame_num - 1) % cls.cfg.train_skipping == 0:
            kinds["routine"].append(elapsed)
        else:
            kinds["normal"].append(elapsed)
        start = time.perf_counter()
        asyn.track(frame)
        async_times.append(time.perf_counter() - start)
    asyn.online.classifier.wait()

    base = statistics.median(kinds["plain"])
    print(f"\n{'':28s}{'median ms':>10s}{'x plain':>9s}{'frames':>8s}")
    print(f"{'init, plain':28s}{_ms(inits['plain']):>10s}")
    ratio = statistics.median(inits["online"]) / statistics.median(inits["plain"])
    print(f"{'init, online (GN training)':28s}{_ms(inits['online']):>10s}{ratio:9.1f}")
    ratio = inits["async"][0] / statistics.median(inits["plain"])
    print(f"{'init, online, async (node)':28s}{_ms(inits['async']):>10s}{ratio:9.1f}")
    for name, label in (
        ("plain", "frame, plain"),
        ("normal", "frame, online, no update"),
        ("routine", "frame, online, routine upd."),
        ("hard", "frame, online, hard negative"),
    ):
        values = kinds[name]
        r = f"{statistics.median(values) / base:9.2f}" if values else " " * 9
        print(f"{label:28s}{_ms(values):>10s}{r}{len(values):8d}")
    worst = max(async_times)
    print(
        f"{'frame, online, async (node)':28s}{_ms(async_times):>10s}"
        f"{statistics.median(async_times) / base:9.2f}{len(async_times):8d}"
        f"   max {1000 * worst:.1f} ms (plain: max {1000 * max(kinds['plain']):.1f} ms)"
    )

    print("\nfilter update alone (cg_iter iterations), by samples in memory:")
    mem = cls.sample_weights
    saved = mem.clone()
    for stored in (cls.num_init, cls.cfg.sample_memory_size // 2, cls.cfg.sample_memory_size):
        mem.zero_()
        mem[:stored] = 1.0 / stored
        times = []
        for _ in range(3):
            start = time.perf_counter()
            cls._train_filter(cls.cfg.cg_iter)
            times.append(time.perf_counter() - start)
        print(f"  {stored:4d} samples: {_ms(times)} ms")
    mem.copy_(saved)
    assert isinstance(online, DROLTracker)


if __name__ == "__main__":
    main()
