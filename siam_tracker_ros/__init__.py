"""siam_tracker_ros: the thin ROS 2 layer over siam_core (nodes, conversions, launch helpers).

The project's generated interfaces (``siam_tracker_ros.msg``, ``siam_tracker_ros.srv``) are
installed by rosidl into another directory named ``siam_tracker_ros``: colcon's install space,
where they merge with this code, or, on a machine without ROS, the virtualenv (see
``tools/setup_env.py``). Extending ``__path__`` makes both halves one package in either case.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

from siam_tracker_ros.dds import apply_default_profile

# Before any DDS participant exists in this process (rclpy.init comes later): loopback only.
apply_default_profile()
