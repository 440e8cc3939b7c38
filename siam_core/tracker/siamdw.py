"""SiamRPN+ as SiamDW's code runs it (researchmm/SiamDW ``lib/tracker/siamrpn.py``).

It is the RPN family's procedure (``SiamRPNTracker``) with the official conventions kept as
settings or small overrides, nothing copied:

* a box is centred at (x + w / 2, y + h / 2) (``run_video.py``), as DaSiamRPN's code does
  (``OfficialSiamRPNTracker``); the VOT2017 preset searches at 287 instead of 271 when the first
  box covers less than 0.4 % of the frame (the official ``'2017' in dataset`` rule);
* one sigmoid logit per anchor (``RPN_Up``; ``SiamRPNTracker._foreground`` takes either layout);
* crops start at ``round(c - (sz + 1) / 2)``, half to even (``get_subwindow_tracking``:
  ``round_origin``, as the SiamFC tracker's ``crop_rounded``);
* the reported box is ``cxy_wh_2_rect``: x and y clipped at 0, w and h as tracked.

* template and search sides rounded half away from zero (``python2round``), inherited from
  ``OfficialSiamRPNTracker.round_size``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from siam_core.config import Config
from siam_core.tracker.base import TrackResult
from siam_core.tracker.dasiamrpn import OfficialSettings, OfficialSiamRPNTracker

# experiments/test/VOT/SiamRPNRes22.yaml is used with VOT2017: 271, 287 for small targets
OFFICIAL = {
    "siamrpnplus_ciresnet22_vot": OfficialSettings(small_target_instance_size=287),
    "siamrpnplus_ciresnet22_otb": OfficialSettings(),
}


class SiamDWRPNTracker(OfficialSiamRPNTracker):
    """SiamRPN+ (official ``SiamRPNRes22`` tracker) on the ``Tracker`` API."""

    round_origin = staticmethod(round)  # get_subwindow_tracking: half to even

    def __init__(self, model: Any, cfg: Config, **kwargs: Any) -> None:
        official = kwargs.pop("official", None) or OFFICIAL.get(cfg.name, OfficialSettings())
        super().__init__(model, cfg, official=official, **kwargs)

    def _track(self, image: np.ndarray) -> TrackResult:
        res = super()._track(image)
        x, y, w, h = res.box
        return TrackResult(
            (max(0.0, x), max(0.0, y), w, h), res.score, res.state, res.search_region, res.timings
        )
