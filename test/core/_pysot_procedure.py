"""A literal, unoptimised transcription of pysot's SiamRPN inference, written from its
documented steps (pysot-compat.md, seeds-spec §6.4) to check and time ours against: a whole-frame
padding canvas per crop, the template branch re-run on every frame through ``model(z, x)``, NCHW
tensors, float64 state. Used by the tests and by ``benchmarks/bench_track.py`` (the baseline).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch


def pysot_subwindow(im, pos, model_sz, original_sz, avg_chans):
    """pysot ``get_subwindow``: pad the whole frame with the mean colour, slice, resize."""
    sz = original_sz
    c = (original_sz + 1) / 2
    xmin = np.floor(pos[0] - c + 0.5)
    ymin = np.floor(pos[1] - c + 0.5)
    xmax, ymax = xmin + sz - 1, ymin + sz - 1
    left, top = int(max(0.0, -xmin)), int(max(0.0, -ymin))
    right = int(max(0.0, xmax - im.shape[1] + 1))
    bottom = int(max(0.0, ymax - im.shape[0] + 1))
    xmin, xmax, ymin, ymax = xmin + left, xmax + left, ymin + top, ymax + top
    r, cols, k = im.shape
    canvas = np.zeros((r + top + bottom, cols + left + right, k), np.uint8)
    canvas[top : top + r, left : left + cols] = im
    canvas[:top] = avg_chans
    canvas[r + top :] = avg_chans
    canvas[:, :left] = avg_chans
    canvas[:, cols + left :] = avg_chans
    patch = canvas[int(ymin) : int(ymax + 1), int(xmin) : int(xmax + 1)]
    if model_sz != original_sz:
        patch = cv2.resize(patch, (model_sz, model_sz))
    return torch.from_numpy(patch.transpose(2, 0, 1)[None].astype(np.float32))


class PysotProcedure:
    """pysot ``SiamRPNTracker`` step for step (short-term), on a ``SiameseRPN`` model."""

    def __init__(self, model, cfg):
        self.model, self.cfg = model, cfg
        t = cfg.tracker
        self.score_size = (t.instance_size - t.exemplar_size) // 8 + 1 + t.base_size
        hanning = np.hanning(self.score_size)
        self.window = np.tile(np.outer(hanning, hanning).flatten(), cfg.anchor.num)
        rows = []
        for r in cfg.anchor.ratios:
            ws = int(math.sqrt(64 / r))
            hs = int(ws * r)
            for s in cfg.anchor.scales:
                rows.append([0, 0, ws * s, hs * s])
        base = np.array(rows, np.float32)
        anchor = np.tile(base, self.score_size**2).reshape(-1, 4)
        ori = -(self.score_size // 2) * 8
        xx, yy = np.meshgrid(
            [ori + 8 * d for d in range(self.score_size)],
            [ori + 8 * d for d in range(self.score_size)],
        )
        anchor[:, 0] = np.tile(xx.flatten(), (cfg.anchor.num, 1)).flatten()
        anchor[:, 1] = np.tile(yy.flatten(), (cfg.anchor.num, 1)).flatten()
        self.anchors = anchor

    def init(self, img, bbox):
        self.center = np.array([bbox[0] + (bbox[2] - 1) / 2, bbox[1] + (bbox[3] - 1) / 2])
        self.size = np.array([bbox[2], bbox[3]])
        ctx = self.cfg.tracker.context_amount * np.sum(self.size)
        s_z = round(np.sqrt((self.size[0] + ctx) * (self.size[1] + ctx)))
        self.avg = np.mean(img, axis=(0, 1))
        self.z = pysot_subwindow(img, self.center, 127, s_z, self.avg)

    def track(self, img):
        t = self.cfg.tracker
        ctx = t.context_amount * np.sum(self.size)
        s_z = np.sqrt((self.size[0] + ctx) * (self.size[1] + ctx))
        scale_z = 127 / s_z
        s_x = s_z * (t.instance_size / 127)
        x = pysot_subwindow(img, self.center, t.instance_size, round(s_x), self.avg)
        with torch.no_grad():
            cls, loc = self.model(self.z, x)
        score = cls.permute(1, 2, 3, 0).contiguous().view(2, -1).permute(1, 0)
        score = torch.softmax(score, dim=1)[:, 1].numpy()
        d = loc.permute(1, 2, 3, 0).contiguous().view(4, -1).numpy().copy()
        a = self.anchors
        d[0] = d[0] * a[:, 2] + a[:, 0]
        d[1] = d[1] * a[:, 3] + a[:, 1]
        d[2] = np.exp(d[2]) * a[:, 2]
        d[3] = np.exp(d[3]) * a[:, 3]

        def change(r):
            return np.maximum(r, 1.0 / r)

        def sz(w, h):
            pad = (w + h) * 0.5
            return np.sqrt((w + pad) * (h + pad))

        s_c = change(sz(d[2], d[3]) / sz(self.size[0] * scale_z, self.size[1] * scale_z))
        r_c = change((self.size[0] / self.size[1]) / (d[2] / d[3]))
        penalty = np.exp(-(r_c * s_c - 1) * t.penalty_k)
        pscore = penalty * score * (1 - t.window_influence) + self.window * t.window_influence
        best = np.argmax(pscore)
        bbox = d[:, best] / scale_z
        lr = penalty[best] * score[best] * t.lr
        cx, cy = bbox[0] + self.center[0], bbox[1] + self.center[1]
        width = self.size[0] * (1 - lr) + bbox[2] * lr
        height = self.size[1] * (1 - lr) + bbox[3] * lr
        cx, cy = max(0, min(cx, img.shape[1])), max(0, min(cy, img.shape[0]))
        width, height = max(10, min(width, img.shape[1])), max(10, min(height, img.shape[0]))
        self.center, self.size = np.array([cx, cy]), np.array([width, height])
        return [cx - width / 2, cy - height / 2, width, height], float(score[best])


def calibrate_on_frame(model, cfg, frame, box) -> None:
    """Bring an untrained model's outputs into a trained model's range, measured on the real
    template and search crops of ``box`` in ``frame`` (see ``calibrate_untrained``)."""
    from siam_core.models.model import calibrate_untrained

    probe = PysotProcedure(model, cfg)
    probe.init(frame, box)
    size = cfg.tracker.instance_size
    ctx = cfg.tracker.context_amount * (box[2] + box[3])
    side = math.sqrt((box[2] + ctx) * (box[3] + ctx)) * size / cfg.tracker.exemplar_size
    x = pysot_subwindow(frame, probe.center, size, round(side), probe.avg)
    calibrate_untrained(model, probe.z, x)
