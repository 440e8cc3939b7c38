"""How the project's ROS processes spin and stop: a signal ends them, every time, in bounded time.

Two things in rclpy and its DDS layer can keep a process alive after its first SIGTERM; one
function here bounds each. :func:`run_executor` spins without ever waiting unboundedly, and
:func:`close_node` tears down under a watchdog that needs no Python thread.
"""

from __future__ import annotations

import faulthandler
from collections.abc import Callable

import rclpy
from rclpy.context import Context
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.node import Node

# How often the spinning thread re-checks that the context is still up (see run_executor).
SHUTDOWN_POLL_S = 0.25
# How long close_node lets the teardown take before it ends the process (normally well under
# a second; several seconds on a loaded 2-core host).
TEARDOWN_DEADLINE_S = 10.0


def run_executor(
    executor: Executor, context: Context, report: Callable[[Exception], None] | None = None
) -> None:
    """Spin ``executor`` until ``context`` shuts down, with a bounded delay after a signal.

    Why not ``executor.spin()``: rclpy's signal handling thread first triggers the executors'
    signal guard conditions and only then shuts the contexts down (``rclpy/src/rclpy/
    signal_handler.cpp``: ``trigger_guard_conditions(); rclpy::shutdown_contexts();``). An
    executor woken by the guard can check ``context.ok()`` in between, see it still true, and go
    back to an unbounded wait that nothing wakes again: the node then ignores that SIGTERM (a
    second one ends it). SIGINT escapes by a KeyboardInterrupt; SIGTERM has no Python handler.
    Waiting at most ``SHUTDOWN_POLL_S`` per round re-checks the context after every wake-up.
    With ``report``, an exception escaping a callback (ours are guarded; rclpy's own parameter
    services are not) is reported and spinning carries on.
    """
    while context.ok():
        try:
            executor.spin_once(timeout_sec=SHUTDOWN_POLL_S)
        except (KeyboardInterrupt, ExternalShutdownException):
            return
        except Exception as exc:
            # SIGINT/SIGTERM shut the context down from rclpy's signal handler; the executor
            # can then fail building its wait set: that is the shutdown itself.
            if not context.ok():
                return
            if report is None:
                raise
            report(exc)


def close_node(
    node: Node, executor: Executor | None = None, deadline_s: float = TEARDOWN_DEADLINE_S
) -> None:
    """Shut ``executor`` down, destroy ``node`` and shut its context down, or end the process.

    Why the deadline: rclpy's native node destruction can deadlock inside Fast DDS. The last
    node of a context destroys the DDS participant (rcl_node_fini -> rmw_destroy_node ->
    rmw_fastrtps_shared_cpp::destroy_participant), which calls
    ``DomainParticipant::set_listener`` and waits for any listener callback in progress. In
    the hung processes (gdb, Fast DDS 3.2 of the Kilted wheels) that wait spun for good while a
    discovery thread, handling another participant's departure, sat in the listener's
    ``on_reader_discovery`` blocked on a mutex, and the other DDS threads queued behind it.
    Seen in CI (2026-12-03) and here about once in 700 stops of six nodes at once beside busy
    loops. rclpy's binding holds the GIL through that call, so no Python thread can act then;
    the watchdog is faulthandler's own C thread. Past ``deadline_s`` it prints every thread's
    Python stack to stderr ("Timeout (0:00:10)!") and ends the process with status 1. Close
    files and bags before calling this: nothing after the deadline runs.
    """
    faulthandler.dump_traceback_later(deadline_s, exit=True)
    try:
        if executor is not None:
            executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=node.context)
    finally:
        faulthandler.cancel_dump_traceback_later()
