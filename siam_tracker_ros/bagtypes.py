"""A rosbags type store that knows vision_msgs and this project's messages.

rosbags (pure Python, no ROS needed) writes and reads real rosbag2 files with the same CDR bytes
as rclpy, but ships only the core message types. The definitions are read from the ``.msg``
files that rosidl installed (share/<package>/msg/), so the bag always matches the wire types.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

PACKAGES = ("vision_msgs", "siam_tracker_ros")


def message_definitions(package: str) -> dict[str, str]:
    """``{"pkg/msg/Name": definition}`` for every installed ``.msg`` of ``package``."""
    share = Path(get_package_share_directory(package)) / "msg"
    return {f"{package}/msg/{p.stem}": p.read_text() for p in sorted(share.glob("*.msg"))}


@cache
def typestore() -> Typestore:
    """The Kilted type store plus vision_msgs and siam_tracker_ros messages (built once)."""
    store = get_typestore(Stores.ROS2_KILTED)
    for package in PACKAGES:
        types = {}
        for name, text in message_definitions(package).items():
            types.update(get_types_from_msg(text, name))
        store.register(types)
    return store
