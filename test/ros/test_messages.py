"""Messages a user reads: the init box in both conventions, the player's wait for subscribers."""

from __future__ import annotations

from siam_tracker_ros.conversions import box_to_bbox, describe_bbox
from siam_tracker_ros.player import waiting_message


def test_init_box_is_described_as_sent_and_as_the_tracker_sees_it() -> None:
    text = describe_bbox(box_to_bbox((5000.0, 10.0, 50.0, 50.0)))
    assert text == ("centre (5025, 35), size 50 x 50; as top-left x, y, w, h: (5000, 10, 50, 50)")


def test_player_says_how_many_subscribers_it_saw() -> None:
    assert waiting_message("/image_raw", 0, 2, 30.0) == (
        "no subscriber on /image_raw after 30 s (waited for 2)"
    )
    assert waiting_message("/image_raw", 1, 2, 30.0) == (
        "only 1 of 2 subscribers on /image_raw after 30 s"
    )
