"""Fixtures shared by the core tests that run whole clips (deployment backends, GPU path)."""

from __future__ import annotations

import numpy as np
import pytest
from _siamrpn_data import BAG, need, parity_alex, read_video


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Every frame of bag.avi (a module may override this with a shorter clip)."""
    return read_video(need(BAG))


@pytest.fixture(scope="module")
def alex():
    """pysot's AlexNet with the parity reference's seeded weights: (model, config)."""
    return parity_alex()
