"""ROS_DOMAIN_IDs for tests: each pytest process (each xdist worker) draws from its own slice.

Tests run in parallel (``make test`` uses pytest-xdist), so two tests that run at once must
never share a domain, or their nodes would see each other. Fast DDS accepts domain ids 0..232
with default ports; the tests use 100..219, split evenly between the workers, and count
through their slice from a per-process offset (separate pytest runs on one host seldom meet).
"""

from __future__ import annotations

import itertools
import os

FIRST, COUNT = 100, 120
_drawn = itertools.count()


def next_domain() -> int:
    """A domain id no other test of this run is using now (slices of 120 / workers ids)."""
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = COUNT // workers
    return FIRST + (worker % workers) * size + (os.getpid() * 13 + next(_drawn)) % size
