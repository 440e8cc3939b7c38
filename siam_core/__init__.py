"""siam_core: Siamese single-object tracking (networks, trackers, training, evaluation).

Framework-agnostic: PyTorch, NumPy and OpenCV only. Never imports ROS (a test enforces it).
"""

__version__ = "0.1.0"

from siam_core.threads import passive_openmp

# Before torch (and so OpenMP) is imported anywhere in this process: idle workers sleep.
passive_openmp()
