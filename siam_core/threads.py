"""How many CPU threads PyTorch uses: one rule for every CLI, the ROS node and the demo.

PyTorch's default (one thread per core) is the worst choice where a tracker shares a few cores
with a camera driver, DDS and other processes: on a busy 2-core machine ``siam-track`` took
723 ms per frame with the default against 125 ms with one thread, and a training step 117 s
against 23 s (issue 18; ``benchmarks/bench_threads.py`` measures it side by side). ``auto``
therefore means: ``OMP_NUM_THREADS`` when the user set it, else one thread on machines with at
most two usable cores, else half the usable cores up to four (leaving the rest to the camera,
DDS and the frame conversions, which run beside the network).

This module imports no torch at import time: ``siam_core`` imports it first thing so that
OpenMP's wait policy is set before the OpenMP runtime starts (see :func:`passive_openmp`).
"""

from __future__ import annotations

import os

AUTO = "auto"


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask, e.g. under ``taskset`` or a cgroup)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_threads(env: dict[str, str] | None = None, cores: int | None = None) -> int:
    """The thread count ``auto`` stands for (see the module docstring)."""
    env = os.environ if env is None else env
    requested = env.get("OMP_NUM_THREADS", "").strip()
    if requested.isdigit() and int(requested) > 0:
        return int(requested)
    cores = usable_cores() if cores is None else cores
    return 1 if cores <= 2 else min(4, cores // 2)


def parse_threads(value: str | int | None) -> int:
    """``auto``/None/0 -> :func:`auto_threads`; a positive integer as it is; else ValueError."""
    if value is None or value == AUTO or value == 0 or value == "0":
        return auto_threads()
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"threads must be 'auto' or a positive integer, got {value!r}") from None
    if count < 1:
        raise ValueError(f"threads must be 'auto' or a positive integer, got {value!r}")
    return count


def set_threads(value: str | int | None) -> int:
    """Apply ``value`` (see :func:`parse_threads`) to PyTorch; returns the count in force."""
    count = parse_threads(value)
    import torch

    torch.set_num_threads(count)
    return count


def passive_openmp(env: dict[str, str] | None = None) -> None:
    """Make idle OpenMP workers sleep instead of spinning (unless the user chose otherwise).

    With the active policy every PyTorch worker thread busy-waits after each parallel region,
    which steals the cores that the node's other threads and neighbouring processes need. Only
    effective before the OpenMP runtime starts, i.e. before torch is imported.
    """
    env = os.environ if env is None else env
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
