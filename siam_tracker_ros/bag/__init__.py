"""Recorded runs as rosbag2 files: record, label, replay through the node's code, score.

``siam-bag`` (:mod:`.cli`) is the user's entry point. Bags are read and written with the pure
Python ``rosbags`` package (mcap or sqlite3, the same CDR bytes as rclpy), always as a stream of
messages, so a bag of any length replays in bounded memory.
"""
