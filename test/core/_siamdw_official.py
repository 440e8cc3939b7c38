"""A restatement of SiamDW's official code, for checking the models no reference file covers.

Written from researchmm/SiamDW (commit c82b059) for facts only and deliberately in a different
form from ``siam_core``: the backbones as functions over the official state-dict keys
(``lib/models/modules.py`` ``Inception`` / ``ResNeXt``), the ``RPN_Up`` head with its grouped
convolution (``lib/models/connect.py``), and the SiamRPN tracking procedure on a state dict
(``lib/tracker/siamrpn.py``, ``lib/utils/utils.py``: ``get_subwindow_tracking`` with its padded
copy of the frame, ``python2round``, ``generate_anchor``, ``cxy_wh_2_rect``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

Tensors = dict[str, torch.Tensor]


def _bn(sd: Tensors, prefix: str, x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    return F.batch_norm(
        x,
        sd[prefix + ".running_mean"],
        sd[prefix + ".running_var"],
        sd[prefix + ".weight"],
        sd[prefix + ".bias"],
        False,
        0.0,
        eps,
    )


def _conv(sd: Tensors, prefix: str, x: torch.Tensor, **kw) -> torch.Tensor:
    return F.conv2d(x, sd[prefix + ".weight"], sd.get(prefix + ".bias"), **kw)


def _crop1(x: torch.Tensor) -> torch.Tensor:
    return x[:, :, 1:-1, 1:-1].contiguous()


def _two_stages(x: torch.Tensor, unit) -> torch.Tensor:
    """The official wide networks' stages: 3 units in ``layer1``; in ``layer2`` one unit, the
    2x2/2 max-pool at index 1, 3 more. ``unit(prefix, x, last)`` computes one unit."""
    for stage, count in (("layer1", 3), ("layer2", 5)):
        for i in range(count):
            if stage == "layer2" and i == 1:
                x = F.max_pool2d(x, 2, 2)
            else:
                last = stage == "layer2" and i == count - 1
                x = unit(f"features.features.{stage}.{i}.", x, last)
    return x


def incep22_features(sd: Tensors, x: torch.Tensor) -> torch.Tensor:
    """Official ``Incep22`` (keys ``features.features.*``): conv1 7x7/2 unpadded, 3x3/2 pool,
    ``InceptionM`` units (3x3 bottleneck and 1x1 branch, each ReLU'd unless last, concatenated,
    cropped)."""

    def unit(q: str, x: torch.Tensor, last: bool) -> torch.Tensor:
        b = F.relu(_bn(sd, q + "branch3x3.bn1", _conv(sd, q + "branch3x3.conv1", x)))
        b = F.relu(_bn(sd, q + "branch3x3.bn2", _conv(sd, q + "branch3x3.conv2", b, padding=1)))
        b = _bn(sd, q + "branch3x3.bn3", _conv(sd, q + "branch3x3.conv3", b))
        s = _bn(sd, q + "branch1x1.bn", _conv(sd, q + "branch1x1.conv", x), eps=0.001)
        if not last:
            b, s = F.relu(b), F.relu(s)
        return _crop1(torch.cat([b, s], 1))

    p = "features.features."
    x = F.relu(_bn(sd, p + "bn1", _conv(sd, p + "conv1", x, stride=2)))
    return _two_stages(F.max_pool2d(x, 3, 2), unit)


def next22_features(sd: Tensors, x: torch.Tensor) -> torch.Tensor:
    """Official ``ResNeXt22``: conv0 7x7/2 unpadded (with bias), 3x3/2 pool, ``BasicBlock_C``
    units (32 groups; BN on the sum of body and shortcut)."""

    def unit(q: str, x: torch.Tensor, last: bool) -> torch.Tensor:
        b = F.relu(_bn(sd, q + "basic.bn1", _conv(sd, q + "basic.conv1_0", x)))
        b = F.relu(
            _bn(sd, q + "basic.bn2", _conv(sd, q + "basic.conv3_0", b, padding=1, groups=32))
        )
        b = _bn(sd, q + "basic.bn3", _conv(sd, q + "basic.conv1_1", b))
        short = _conv(sd, q + "shortcut.0", x) if q + "shortcut.0.weight" in sd else x
        out = _bn(sd, q + "bn0", b + short)
        return _crop1(out if last else F.relu(out))

    p = "features.features."
    x = F.relu(_bn(sd, p + "bn0", _conv(sd, p + "conv0", x, stride=2)))
    return _two_stages(F.max_pool2d(x, 3, 2), unit)


def rpn_up(sd: Tensors, zf: torch.Tensor, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Official ``RPN_Up.forward`` (batch 1): lifted template kernels, grouped correlation."""
    p = "connect_model."
    cls_k, reg_k = _conv(sd, p + "template_cls", zf), _conv(sd, p + "template_reg", zf)
    cls_f, reg_f = _conv(sd, p + "search_cls", xf), _conv(sd, p + "search_reg", xf)

    def group(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        pk = k.view(-1, x.size(1), k.size(2), k.size(3))
        return F.conv2d(x.view(1, -1, x.size(2), x.size(3)), pk, groups=1)

    return group(cls_f, cls_k), _conv(sd, p + "adjust", group(reg_f, reg_k))


def python2round(f: float) -> float:
    return f + abs(f) / f * 0.5 if round(f + 1) - round(f) != 1 else round(f)


def subwindow(im: np.ndarray, pos, model_sz: int, original_sz: float, avg: np.ndarray):
    """``get_subwindow_tracking``: pad a copy of the frame, slice, resize; float CHW tensor."""
    sz = original_sz
    c = (original_sz + 1) / 2
    xmin = round(pos[0] - c)
    xmax = xmin + sz - 1
    ymin = round(pos[1] - c)
    ymax = ymin + sz - 1
    left, top = int(max(0.0, -xmin)), int(max(0.0, -ymin))
    right, bottom = int(max(0.0, xmax - im.shape[1] + 1)), int(max(0.0, ymax - im.shape[0] + 1))
    xmin, xmax, ymin, ymax = xmin + left, xmax + left, ymin + top, ymax + top
    r, cc, k = im.shape
    if any([top, bottom, left, right]):
        te = np.zeros((r + top + bottom, cc + left + right, k), np.uint8)
        te[top : top + r, left : left + cc, :] = im
        if top:
            te[0:top, left : left + cc, :] = avg
        if bottom:
            te[r + top :, left : left + cc, :] = avg
        if left:
            te[:, 0:left, :] = avg
        if right:
            te[:, cc + left :, :] = avg
        patch = te[int(ymin) : int(ymax + 1), int(xmin) : int(xmax + 1), :]
    else:
        patch = im[int(ymin) : int(ymax + 1), int(xmin) : int(xmax + 1), :]
    if not np.array_equal(model_sz, original_sz):
        patch = cv2.resize(patch, (model_sz, model_sz))
    return torch.from_numpy(np.transpose(patch.copy(), (2, 0, 1))).float()


def anchors(stride: int, ratios, scales, score_size: int) -> np.ndarray:
    """``generate_anchor``: (4, k, S, S) anchors cx, cy, w, h around the patch centre."""
    k = len(ratios) * len(scales)
    base = np.zeros((k, 4), dtype=np.float32)
    n = 0
    for ratio in ratios:
        ws = int(np.sqrt(stride * stride / ratio))
        hs = int(ws * ratio)
        for scale in scales:
            base[n, 2:] = ws * scale, hs * scale
            n += 1
    grid = np.tile(base, score_size * score_size).reshape((-1, 4))
    ori = -(score_size // 2) * stride
    xx, yy = np.meshgrid(
        [ori + stride * d for d in range(score_size)], [ori + stride * d for d in range(score_size)]
    )
    grid[:, 0] = np.tile(xx.flatten(), (k, 1)).flatten()
    grid[:, 1] = np.tile(yy.flatten(), (k, 1)).flatten()
    return np.transpose(grid.reshape((k, score_size, score_size, 4)), (3, 0, 1, 2))


class OfficialSiamRPN:
    """SiamDW's ``SiamRPN`` tracker for a VOT2017 or OTB run (``vot2017`` selects 271 / 287)."""

    def __init__(
        self,
        backbone,
        sd: Tensors,
        penalty_k: float,
        window_influence: float,
        lr: float,
        instance_size: int = 255,
        vot2017: bool = False,
    ) -> None:
        self.backbone, self.sd = backbone, sd
        self.penalty_k, self.window_influence, self.lr = penalty_k, window_influence, lr
        self.instance_size, self.vot2017 = instance_size, vot2017

    def init(self, im: np.ndarray, rect) -> None:
        x, y, w, h = rect
        self.pos, self.sz = np.array([x + w / 2, y + h / 2]), np.array([w, h], dtype=float)
        self.im_h, self.im_w = im.shape[:2]
        if self.vot2017:
            small = (w * h) / float(self.im_h * self.im_w) < 0.004
            self.instance_size = 287 if small else 271
        self.score_size = (self.instance_size - 127) // 8 + 1
        self.anchor = anchors(8, [0.33, 0.5, 1, 2, 3], [8], self.score_size)
        self.avg = np.mean(im, axis=(0, 1))
        wc, hc = w + 0.5 * (w + h), h + 0.5 * (w + h)
        s_z = python2round(np.sqrt(wc * hc))
        with torch.no_grad():
            self.zf = self.backbone(subwindow(im, self.pos, 127, s_z, self.avg).unsqueeze(0))
        hann = np.outer(np.hanning(self.score_size), np.hanning(self.score_size))
        self.window = np.repeat(hann[None], 5, axis=0)

    def track(self, im: np.ndarray) -> list[float]:
        wc = self.sz[1] + 0.5 * sum(self.sz)
        hc = self.sz[0] + 0.5 * sum(self.sz)
        s_z = np.sqrt(wc * hc)
        scale_z = 127 / s_z
        s_x = s_z + 2 * ((self.instance_size - 127) / 2 / scale_z)
        crop = subwindow(im, self.pos, self.instance_size, python2round(s_x), self.avg)
        with torch.no_grad():
            score, delta = rpn_up(self.sd, self.zf, self.backbone(crop.unsqueeze(0)))
        s = delta.size(2)
        delta = delta.permute(1, 2, 3, 0).contiguous().view(4, -1, s, s).numpy()
        score = torch.sigmoid(score).squeeze().numpy()
        a = self.anchor
        delta[0] = delta[0] * a[2] + a[0]
        delta[1] = delta[1] * a[3] + a[1]
        delta[2] = np.exp(delta[2]) * a[2]
        delta[3] = np.exp(delta[3]) * a[3]
        tsz = self.sz * scale_z

        def size(w, h):
            pad = (w + h) * 0.5
            return np.sqrt((w + pad) * (h + pad))

        def change(r):
            return np.maximum(r, 1.0 / r)

        s_c = change(size(delta[2], delta[3]) / size(tsz[0], tsz[1]))
        r_c = change((tsz[0] / tsz[1]) / (delta[2] / delta[3]))
        penalty = np.exp(-(r_c * s_c - 1) * self.penalty_k)
        pscore = penalty * score
        pscore = pscore * (1 - self.window_influence) + self.window * self.window_influence
        best = np.unravel_index(pscore.argmax(), pscore.shape)
        target = delta[(slice(None), *best)] / scale_z
        lr = penalty[best] * score[best] * self.lr
        pos = np.array([target[0] + self.pos[0], target[1] + self.pos[1]])
        prev = tsz / scale_z
        sz = np.array([prev[0] * (1 - lr) + target[2] * lr, prev[1] * (1 - lr) + target[3] * lr])
        pos[0], pos[1] = max(0, min(self.im_w, pos[0])), max(0, min(self.im_h, pos[1]))
        sz[0], sz[1] = max(10, min(self.im_w, sz[0])), max(10, min(self.im_h, sz[1]))
        self.pos, self.sz = pos, sz
        return [max(0.0, pos[0] - sz[0] / 2), max(0.0, pos[1] - sz[1] / 2), sz[0], sz[1]]


def seeded_weights(model: torch.nn.Module, z: torch.Tensor, x: torch.Tensor, seed: int) -> None:
    """Random weights with batch-norm statistics from one real crop pair (as the parity
    references were made), so every layer sees realistic inputs."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                torch.nn.init.normal_(m.bias, std=0.01)
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = 1.0
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.normal_(m.bias, std=0.1)
    model.train()
    with torch.no_grad():
        model.backbone(torch.cat([x, torch.nn.functional.interpolate(z, size=x.shape[-2:])]))
    model.eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
