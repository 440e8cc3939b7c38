"""CPU thread defaults (siam_core.threads): the auto rule, explicit counts, bad values, the
OpenMP wait policy set before torch loads, and siam-track recording what it used."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from siam_core import threads


def test_auto_rule() -> None:
    assert threads.auto_threads(env={}, cores=1) == 1
    assert threads.auto_threads(env={}, cores=2) == 1
    assert threads.auto_threads(env={}, cores=4) == 2
    assert threads.auto_threads(env={}, cores=16) == 4
    # The user's OMP_NUM_THREADS wins (make test sets 1); nonsense in it is ignored.
    assert threads.auto_threads(env={"OMP_NUM_THREADS": "3"}, cores=16) == 3
    assert threads.auto_threads(env={"OMP_NUM_THREADS": "x"}, cores=2) == 1


def test_parse_and_apply() -> None:
    auto = threads.auto_threads()
    for value in ("auto", None, 0, "0"):
        assert threads.parse_threads(value) == auto
    assert threads.parse_threads("3") == 3
    for bad in ("-1", "many", -2, "1.5"):
        with pytest.raises(ValueError, match="'auto' or a positive integer"):
            threads.parse_threads(bad)
    before = torch.get_num_threads()
    try:
        assert threads.set_threads(2) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_openmp_waits_passively_unless_the_user_chose() -> None:
    env: dict[str, str] = {}
    threads.passive_openmp(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    own = {"OMP_WAIT_POLICY": "ACTIVE"}
    threads.passive_openmp(own)
    assert own == {"OMP_WAIT_POLICY": "ACTIVE"}
    # In a fresh process, importing siam_core (first in any of its modules) sets it, before
    # torch is loaded.
    code = (
        "import os, sys; import siam_core; "
        "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.stdout.split() == ["PASSIVE", "False"], done.stderr
