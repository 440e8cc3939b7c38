"""Benchmark (not a test): memory and time of replaying a long bag through the node's code.

A bag of ``--frames`` frames (default 10 000) is made from a real sequence looped (Crossing,
360x240, JPEG ``CompressedImage`` as a robot would record it; stamps keep increasing), plus a
bag a tenth as long. Each measurement runs in a fresh process so its peak RSS is its own:

1. stream: read and decode every image (the node's conversion), nothing else;
2. replay: every-frame replay through the worker with ``--tracker`` (default KCF, fast, so
   the figures show the replay machinery rather than the network; ``--tracker
   node:<model>:<weights>`` for a Siamese model as the node loads it), per-frame results kept.

Printed side by side: frames/s and per-frame median (ms), peak RSS of the short and the long
bag and their ratio (about 1 when the bag is streamed; the decoded frames alone would need
``frames x 259 kB``).

    .venv/bin/python benchmarks/bench_bag_replay.py [--frames 10000] [--tracker KCF]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
CROSSING = SHARED / "sequences" / "otb" / "Crossing"


def measure(bag: str, what: str, tracker: str) -> dict:
    """Runs in the child process: one measurement, printed as JSON."""
    import numpy as np
    import torch

    from siam_tracker_ros.bag.bagfile import frames, image_connection, open_bag
    from siam_tracker_ros.bag.jobs import Job, _ground_truth_init, build_tracker
    from siam_tracker_ros.bag.replay import replay
    from siam_tracker_ros.conversions import message_to_bgr

    torch.set_num_threads(1)
    reader = open_bag(bag)
    connection = image_connection(reader, "image_raw")
    n = connection.msgcount
    start = time.perf_counter()
    if what == "stream":
        times = []
        for frame in frames(reader, connection):
            t = time.perf_counter()
            message_to_bgr(frame.msg)
            times.append(time.perf_counter() - t)
        median_ms = float(np.median(times) * 1e3)
    else:
        job = Job(bag, "image_raw", "t", tracker, "every-frame", 1.0, "", "", 0, "cpu")
        inits = _ground_truth_init(reader, connection, job)
        table, info = replay(build_tracker(tracker), "t", frames(reader, connection), n, inits)
        assert info.processed == n, info
        median_ms = float(np.nanmedian(table.latency_ms))
    seconds = time.perf_counter() - start
    reader.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"frames": n, "seconds": seconds, "median_ms": median_ms, "rss_mb": rss_mb}


def child(bag: Path, what: str, tracker: str) -> dict:
    cmd = [sys.executable, __file__, "--child", str(bag), what, "--tracker", tracker]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} on {bag} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--tracker", default="KCF")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1], args.tracker)))
        return 0
    if not CROSSING.is_dir():
        print(f"needs {CROSSING}")
        return 1
    from siam_tracker_ros.bag.convert import sequence_to_bag

    with tempfile.TemporaryDirectory() as tmp:
        bags = {}
        for n in (args.frames // 10, args.frames):
            bags[n] = Path(tmp) / f"bag{n}"
            t = time.perf_counter()
            repeat = -(-n // 120)
            sequence_to_bag(CROSSING, bags[n], 30.0, compressed=True, repeat=repeat)
            size = sum(p.stat().st_size for p in bags[n].iterdir()) / 1e6
            print(
                f"wrote {bags[n].name}: {repeat * 120} frames, {size:.0f} MB, "
                f"{time.perf_counter() - t:.1f} s"
            )
        print(f"tracker: {args.tracker}")
        print(
            f"{'measurement':<10} {'frames':>7} {'s':>8} {'frames/s':>9} {'median ms':>10} "
            f"{'peak RSS MB':>12}"
        )
        for what in ("stream", "replay"):
            rows = [child(bags[n], what, args.tracker) for n in sorted(bags)]
            for r in rows:
                print(
                    f"{what:<10} {r['frames']:>7} {r['seconds']:>8.1f} "
                    f"{r['frames'] / r['seconds']:>9.1f} {r['median_ms']:>10.2f} "
                    f"{r['rss_mb']:>12.0f}"
                )
            ratio = rows[1]["rss_mb"] / rows[0]["rss_mb"]
            print(
                f"{what:<10} peak RSS long/short bag: {ratio:.2f} "
                f"(frames ratio {rows[1]['frames'] / rows[0]['frames']:.0f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
