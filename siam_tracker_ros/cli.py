"""The shared ``main`` of the project's one-node command-line tools (player, simulator)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import rclpy
from rclpy.node import Node

from siam_tracker_ros.lifetime import close_node


def run_node_tool(
    prog: str,
    node_name: str,
    parse_args: Callable[[list[str]], argparse.Namespace],
    body: Callable[[Node, argparse.Namespace], int],
    argv: list[str] | None = None,
) -> int:
    """Parse the tool's own arguments (``--ros-args ...`` go to rclpy), run ``body`` on a node
    of its own; bad input (``ValueError``, missing files) is logged and exits with status 1."""
    argv = sys.argv[1:] if argv is None else argv
    ros_args = argv[argv.index("--ros-args") :] if "--ros-args" in argv else []
    args = parse_args(argv[: len(argv) - len(ros_args)])
    rclpy.init(args=[prog, *ros_args])
    node = rclpy.create_node(node_name)
    try:
        return body(node, args)
    except (ValueError, FileNotFoundError) as exc:
        node.get_logger().error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        close_node(node)
