"""Cost of DROL's online classifier on the CPU, per frame and per update.

On the same real clip (``bag.avi``), with the same network (the embedded default model unless
``--model/--weights`` name another):

* init: the plain tracker's ``init`` and the online tracker's (first-frame augmentation,
  feature extraction and Gauss-Newton training), the latter also in DROL's order of arithmetic
  (``drol_order``), alternated ``--inits`` times;
* per frame: the plain tracker and the online tracker (synchronous updates, as DROL) follow
  the clip, timed alternately frame by frame so both see the same machine load; the online
  tracker's frames are split by what the classifier did: normal (no training), routine update
  (every ``train_skipping`` frames) and hard-negative update (immediate); a clip may hold no
  hard negative, so every ``--force-hard``-th frame the classifier's flag is forced to
  ``hard_negative`` (its sample at rate 0.02 and ``hard_negative_cg_iter`` CG iterations at
  once, DROL's rule), and those frames are reported on their own row;
* updates alone: one filter update (``cg_iter`` CG iterations) with the memory holding the
  first-frame samples, half full and full, since the cost grows with the samples stored, in
  the default order and in DROL's;
* asynchronous mode (the ROS node's): the init and frame-path times of the online tracker
  whose first-frame training and updates run on a worker thread, to show that no frame waits
  for one;
* DROL-FC (``drol_siamfc_alex_upxcorr_vot``, seeded random weights: cost only) against the
  plain SiamFC tracker on the same network: init and frames split as above;
* several targets (the node's ``MultiTracker``): the frame path with 1 and with 3 online
  targets while their first-frame trainings run on the worker, next to the same targets
  without the classifier, timed alternately frame by frame; once with one worker thread
  shared by all targets (the node's), once with a thread per target; and the time until every
  classifier is ready.

    .venv/bin/python benchmarks/bench_online.py [--frames 120] [--threads 1] [--inits 3]
        [--multi-frames 200] [--force-hard 7] [--model NAME --weights FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from siam_core.io.frames import read_frames
from siam_core.online.classifier import HARD_NEGATIVE, Localisation
from siam_core.tracker.base import Tracker
from siam_core.tracker.drol import DROLSiamFCTracker, online_tracker
from siam_core.tracker.multi import MultiTracker
from siam_core.tracker.siamfc import SiamFCTracker
from siam_core.tracker.siamrpn import build_tracker
from siam_core.zoo import DEFAULT_WEIGHTS, build

REPO = Path(__file__).resolve().parents[1]
BAG = REPO.parent / "shared" / "data" / "bag.avi"
BAG_INIT = (315.0, 140.0, 112.0, 112.0)
# three targets of bag.avi for the multi-target rows: the bag, a patch left, one at the top
TARGETS = (BAG_INIT, (60.0, 150.0, 90.0, 120.0), (200.0, 20.0, 70.0, 60.0))


def _ms(values: list[float]) -> str:
    if not values:
        return "      -"
    return f"{1000 * statistics.median(values):7.1f}"


def time_inits(pairs: list[tuple[str, Tracker]], image: np.ndarray, n: int) -> dict:
    """Median-ready init times of each tracker, alternated ``n`` times."""
    inits: dict[str, list[float]] = {name: [] for name, _ in pairs}
    for _ in range(n):
        for name, tr in pairs:
            start = time.perf_counter()
            tr.init(image, BAG_INIT)
            inits[name].append(time.perf_counter() - start)
    return inits


def time_frames(
    plain: Tracker, online: Any, frames: list[np.ndarray], force_hard: int, extra: Any = None
) -> dict:
    """Plain and online frames timed alternately; the online ones split by what the classifier
    did (normal, routine update, hard negative; every ``force_hard``-th frame's flag forced to
    hard negative). ``extra``: a third tracker timed beside."""
    kinds: dict[str, list[float]] = {"plain": [], "normal": [], "routine": [], "hard": []}
    kinds["forced"], kinds["extra"] = [], []
    cls = online.online.classifier
    states = cls._states

    def hard(scores: torch.Tensor) -> Localisation:
        return replace(states(scores), flag=HARD_NEGATIVE)

    for k, frame in enumerate(frames, 1):
        start = time.perf_counter()
        plain.track(frame)
        kinds["plain"].append(time.perf_counter() - start)
        forced = force_hard > 0 and k % force_hard == 0
        cls._states = hard if forced else states
        start = time.perf_counter()
        online.track(frame)
        elapsed = time.perf_counter() - start
        cls._states = states
        flag = online.online.last.flag if online.online.last else None
        if forced:
            kinds["forced"].append(elapsed)
        elif flag == HARD_NEGATIVE:
            kinds["hard"].append(elapsed)
        elif (cls.frame_num - 1) % cls.cfg.train_skipping == 0:
            kinds["routine"].append(elapsed)
        else:
            kinds["normal"].append(elapsed)
        if extra is not None:
            start = time.perf_counter()
            extra.track(frame)
            kinds["extra"].append(time.perf_counter() - start)
    return kinds


def print_table(inits: dict, kinds: dict, what: str) -> None:
    base = statistics.median(kinds["plain"])
    print(f"\n{what:34s}{'median ms':>10s}{'x plain':>9s}{'frames':>8s}")
    plain_init = statistics.median(inits["plain"])
    print(f"{'init, plain':34s}{_ms(inits['plain']):>10s}")
    ratio = statistics.median(inits["online"]) / plain_init
    print(f"{'init, online (GN training)':34s}{_ms(inits['online']):>10s}{ratio:9.1f}")
    if "drol_order" in inits:
        ratio = statistics.median(inits["drol_order"]) / plain_init
        print(f"{'init, online, DROL order':34s}{_ms(inits['drol_order']):>10s}{ratio:9.1f}")
    if "async" in inits:
        ratio = statistics.median(inits["async"]) / plain_init
        print(f"{'init, online, async (node)':34s}{_ms(inits['async']):>10s}{ratio:9.1f}")
    for name, label in (
        ("plain", "frame, plain"),
        ("normal", "frame, online, no update"),
        ("routine", "frame, online, routine update"),
        ("hard", "frame, online, hard negative"),
        ("forced", "frame, online, hard neg. (forced)"),
    ):
        values = kinds[name]
        r = f"{statistics.median(values) / base:9.2f}" if values else " " * 9
        print(f"{label:34s}{_ms(values):>10s}{r}{len(values):8d}")
    if kinds["extra"]:
        times = kinds["extra"]
        print(
            f"{'frame, online, async (node)':34s}{_ms(times):>10s}"
            f"{statistics.median(times) / base:9.2f}{len(times):8d}"
            f"   max {1000 * max(times):.1f} ms (plain: max {1000 * max(kinds['plain']):.1f} ms)"
        )


def multi_rows(plain: Any, frames: list[np.ndarray], count: int, limit: int) -> None:
    """Frame path of ``count`` online targets while their first-frame trainings run (async,
    as the node), beside ``count`` plain targets; shared worker, then a thread per target."""
    targets = TARGETS[:count]
    for shared in (True, False):
        online = MultiTracker.from_tracker(
            online_tracker(plain, {"async_update": True}), shared_worker=shared
        )
        base = MultiTracker.from_tracker(plain)
        for k, box in enumerate(targets):
            base.add(k, frames[0], box)
        start = time.perf_counter()
        for k, box in enumerate(targets):
            online.add(k, frames[0], box)
        added = time.perf_counter() - start
        classifiers = [online._targets[k].online.classifier for k in range(count)]
        times: dict[str, list[float]] = {"plain": [], "online": []}
        first_ready = ready_after = None
        for i in range(limit):
            frame = frames[1 + i % (len(frames) - 1)]
            for name, tracker in (("plain", base), ("online", online)):
                t0 = time.perf_counter()
                tracker.track(frame)
                times[name].append(time.perf_counter() - t0)
            if first_ready is None and any(c.ready for c in classifiers):
                first_ready = time.perf_counter() - start
            if all(c.ready for c in classifiers):
                ready_after = time.perf_counter() - start
                break
        for c in classifiers:
            c.wait()
            if first_ready is None:
                first_ready = time.perf_counter() - start
        done = time.perf_counter() - start
        online.close()
        p, o = statistics.median(times["plain"]), statistics.median(times["online"])
        worker = "1 shared worker " if shared else "thread per target"
        ready = f"{ready_after:6.1f} s" if ready_after is not None else f">{done:5.1f} s"
        print(
            f"{count} target(s), {worker}: plain {1000 * p:6.1f} ms, online {1000 * o:6.1f} ms "
            f"(x{o / p:.2f}; max {1000 * max(times['online']):.0f} ms) over {len(times['online'])}"
            f" frames; {count} init(s) {1000 * added:.1f} ms; first classifier ready after"
            f" {first_ready:.1f} s, all after {ready}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--inits", type=int, default=3)
    p.add_argument("--multi-frames", type=int, default=200, help="most frames per multi row")
    p.add_argument("--force-hard", type=int, default=7, help="force a hard negative every N frames")
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
        f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}"
    )

    # the same training in DROL's order of arithmetic (``OnlineConfig.drol_order``): F.conv2d
    # for the filter, the projection first; the default folds it into per-tap matmuls
    drol = online_tracker(plain, {"drol_order": True})
    inits = time_inits(
        [("plain", plain), ("online", online), ("drol_order", drol)], frames[0], args.inits
    )
    start = time.perf_counter()
    asyn.init(frames[0], BAG_INIT)  # returns at once: the training runs on the worker
    inits["async"] = [time.perf_counter() - start]
    kinds = time_frames(plain, online, frames[1:], args.force_hard, asyn)
    asyn.online.classifier.wait()
    print_table(inits, kinds, f"{plain.cfg.name} (RPN)")

    print("\nfilter update alone (cg_iter iterations), by samples in memory:")
    print(f"  {'samples':>7s}{'default ms':>12s}{'DROL order ms':>15s}{'ratio':>7s}")
    cls = online.online.classifier
    fast_cfg, drol_cfg = cls.cfg, cls.cfg.replace(drol_order=True)
    mem = cls.sample_weights
    saved = mem.clone()
    for stored in (cls.num_init, cls.cfg.sample_memory_size // 2, cls.cfg.sample_memory_size):
        mem.zero_()
        mem[:stored] = 1.0 / stored
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(3):
            for order in (False, True):  # alternated: both see the same load
                cls.cfg = drol_cfg if order else fast_cfg
                start = time.perf_counter()
                cls._train_filter(cls.cfg.cg_iter)
                times[order].append(time.perf_counter() - start)
        cls.cfg = fast_cfg
        ratio = statistics.median(times[True]) / statistics.median(times[False])
        print(f"  {stored:7d}{_ms(times[False]):>12s}{_ms(times[True]):>15s}{ratio:7.1f}")
    mem.copy_(saved)
    asyn.close()
    drol.close()

    print("\nseveral targets, async (the node's MultiTracker), while the trainings run:")
    for count in (1, 3):
        multi_rows(plain, frames, count, args.multi_frames)

    torch.manual_seed(0)  # seeded random weights: DROL-FC's cost, not its accuracy
    fc_online = build("drol_siamfc_alex_upxcorr_vot")
    assert isinstance(fc_online, DROLSiamFCTracker)
    fc_plain = SiamFCTracker(fc_online.model, fc_online.cfg)
    fc_inits = time_inits([("plain", fc_plain), ("online", fc_online)], frames[0], args.inits)
    fc_kinds = time_frames(fc_plain, fc_online, frames[1:], args.force_hard)
    print_table(fc_inits, fc_kinds, "drol_siamfc_alex_upxcorr_vot (FC)")


if __name__ == "__main__":
    main()
