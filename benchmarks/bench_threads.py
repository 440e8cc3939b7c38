"""How many PyTorch threads to track with: ``siam-track`` per-frame time per thread setting.

Each setting is a fresh ``siam-track`` process (thread count and OpenMP wait policy only take
effect at start), run on the same clip with the embedded default model; settings are interleaved
round by round so all see the same machine load. Printed: the median over rounds of each run's
median ``track()`` time, and its ratio to ``auto`` (``siam_core.threads``). ``--load K`` adds K
busy processes for the whole measurement (a loaded machine); the load average is printed before
and after, since other users of the machine count too.

    .venv/bin/python benchmarks/bench_threads.py [--threads 1 2 4] [--frames 31] [--rounds 3]
        [--load 2] [--video ../shared/data/bag.avi]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from siam_core.threads import auto_threads, usable_cores  # noqa: E402

VIDEO = REPO.parent / "shared" / "data" / "bag.avi"
BAG_INIT = "315,140,112,112"  # shared/data/README.md


def _spin(stop: float) -> None:
    while time.monotonic() < stop:
        pass


def run_once(video: Path, frames: int, threads: str, wait_policy: str | None, out: Path) -> float:
    """Median ms per frame of one ``siam-track`` process with these settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if wait_policy is not None:
        env["OMP_WAIT_POLICY"] = wait_policy
    cmd = [sys.executable, "-m", "siam_core.cli.track", str(video), "--init", BAG_INIT]
    cmd += ["--out", str(out), "--max-frames", str(frames), "--quiet", "--threads", threads]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"siam-track failed: {done.stderr[-2000:]}")
    return float(json.loads(out.read_text())["median_track_ms"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = usable_cores()
    default_threads = sorted({1, 2, cores})
    parser.add_argument("--threads", nargs="+", type=int, default=default_threads)
    parser.add_argument("--frames", type=int, default=31, help="frames per run (first is init)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load", type=int, default=0, help="busy processes added meanwhile")
    parser.add_argument("--video", type=Path, default=VIDEO)
    args = parser.parse_args(argv)
    if not args.video.is_file():
        print(f"video not found: {args.video} (../shared/data/bag.avi)", file=sys.stderr)
        return 1

    # (label, --threads value, OMP_WAIT_POLICY): the project's settings (siam_core sets PASSIVE)
    # beside OpenMP's own default policy (an empty value: spin a while, then sleep) and ACTIVE
    # (always spin), for every count above one, where the policy matters.
    settings: list[tuple[str, str, str | None]] = [("auto", "auto", None)]
    settings += [(f"{n} thread(s)", str(n), None) for n in args.threads]
    for n in (n for n in args.threads if n > 1):
        settings.append((f"{n} threads, OpenMP default", str(n), ""))
        settings.append((f"{n} threads, ACTIVE", str(n), "ACTIVE"))
    auto = auto_threads(env={})
    print(f"usable cores: {cores}; auto = {auto} thread(s); {args.frames} frames x {args.rounds}")
    print(f"load average before: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    loaders = []
    if args.load:
        stop = time.monotonic() + 24 * 3600
        loaders = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(args.load)]
        for proc in loaders:
            proc.start()
        print(f"added {args.load} busy process(es)")
    times: dict[str, list[float]] = {label: [] for label, _, _ in settings}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "t.json"
            for _ in range(args.rounds):
                for label, threads, policy in settings:
                    times[label].append(run_once(args.video, args.frames, threads, policy, out))
    finally:
        for proc in loaders:
            proc.terminate()
            proc.join()
    print(f"load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    base = statistics.median(times["auto"])
    print(f"{'setting':<26}{'median ms/frame':>16}{'vs auto':>10}")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"{label:<26}{median:>16.1f}{median / base:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
