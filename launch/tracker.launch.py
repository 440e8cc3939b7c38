"""Start the siam_tracker_ros tracker node (plain or lifecycle).

    ros2 launch siam_tracker_ros tracker.launch.py image_topic:=/camera/color/image_raw
    ros2 launch siam_tracker_ros tracker.launch.py model:=siamrpn_alex_dwxcorr \
        weights:=/path/model.pth namespace:=front lifecycle:=true

Arguments: model, weights, params_file, image_topic, namespace, lifecycle. What they mean and
what the node gets is decided in ``siam_tracker_ros.launch_config`` (tested without launch).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from launch import LaunchDescription
from siam_tracker_ros.launch_config import LAUNCH_ARGUMENTS, PACKAGE, tracker_node_settings


def start_tracker(context, *_args, **_kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    default = os.path.join(get_package_share_directory(PACKAGE), "config", "tracker.yaml")
    settings = tracker_node_settings(default, **values)
    node_class = LifecycleNode if settings.executable == "lifecycle_tracker_node" else Node
    return [
        node_class(
            package=PACKAGE,
            executable=settings.executable,
            name=settings.name,
            namespace=settings.namespace,
            parameters=settings.parameters,
            remappings=settings.remappings,
            output="screen",
        )
    ]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(name, default_value=default, description=description)
        for name, (default, description) in LAUNCH_ARGUMENTS.items()
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=start_tracker)])
