"""Trackers behind the one ``Tracker`` interface."""

from siam_core.tracker.base import Box, Tracker, TrackResult, TrackState, check_box, check_image

__all__ = ["Box", "TrackResult", "TrackState", "Tracker", "check_box", "check_image"]
