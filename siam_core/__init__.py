"""siam_core: Siamese single-object tracking (networks, trackers, training, evaluation).

Framework-agnostic: PyTorch, NumPy and OpenCV only. Never imports ROS (a test enforces it).
"""

__version__ = "0.1.0"
