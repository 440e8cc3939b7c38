"""ResNet-50 with the SiamRPN++ modifications, in the layout of pysot's published checkpoints.

SiamRPN++ (spec §2.2) keeps padding but sets conv4/conv5 (``layer3``/``layer4``) to unit stride
with dilation, so conv3–conv5 all have stride 8: a 127 template gives 15×15 maps and a 255
search 31×31. The unpadded conv1 and the unpadded stride-2 block of ``layer2`` (with a 3×3
projection shortcut) are what make those sizes come out and pysot's weights fit; a stock
torchvision ResNet-50 differs in both. Padding, dilation and key facts come from pysot's
``pysot/models/backbone/resnet_atrous.py`` and ``shared/design/pysot-compat.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from siam_core.registry import BACKBONES

# pysot resnet50: bottleneck counts per layer and their widths (output = width * 4).
_BLOCKS = (3, 4, 6, 3)
_WIDTHS = (64, 128, 256, 512)
_EXPANSION = 4


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 residual block; the 3×3 carries the stride, padding and dilation."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int,
        padding: int,
        dilation: int,
        downsample: nn.Module | None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride=stride, padding=padding, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * _EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * _EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


def _make_layer(
    inplanes: int, planes: int, blocks: int, stride: int, dilation: int
) -> nn.Sequential:
    """One ResNet stage with pysot's atrous padding rules.

    pysot: a shortcut that changes stride or dilation is a 3×3 conv (padding 0 when strided,
    else dilation//2), and the first block of a dilated stage uses half the dilation so the
    receptive field grows gradually; a stride-2 3×3 has padding 0 (``padding = 2 - stride``).
    """
    out_ch = planes * _EXPANSION
    downsample: nn.Module | None = None
    first_dilation = dilation
    if stride != 1 or inplanes != out_ch:
        if stride == 1 and dilation == 1:
            shortcut = nn.Conv2d(inplanes, out_ch, 1, bias=False)
        else:
            if dilation > 1:
                first_dilation = dilation // 2
            sc_pad = first_dilation if dilation > 1 else 0
            shortcut = nn.Conv2d(
                inplanes,
                out_ch,
                3,
                stride=stride,
                padding=sc_pad,
                dilation=first_dilation,
                bias=False,
            )
        downsample = nn.Sequential(shortcut, nn.BatchNorm2d(out_ch))
    first_pad = 0 if stride == 2 else first_dilation
    layers = [Bottleneck(inplanes, planes, stride, first_pad, first_dilation, downsample)]
    layers += [Bottleneck(out_ch, planes, 1, dilation, dilation, None) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


@BACKBONES.register("ResNet50")
class ResNet50(nn.Module):
    """pysot's ``resnet50`` (``resnet_atrous``); ``forward`` returns the ``used_layers`` outputs.

    Layer indices are pysot's: 0 = conv1 (after BN/ReLU, before the max-pool), 1–4 = ``layer1``
    … ``layer4``. Like pysot, ``layer3``/``layer4`` are only built when listed in
    ``used_layers`` (otherwise they are identities), so the state-dict keys match pysot's for
    the same config. The forward pass stops after the deepest used layer.
    """

    def __init__(self, used_layers: Sequence[int] = (2, 3, 4)) -> None:
        super().__init__()
        used = [int(i) for i in used_layers]
        if not used or len(set(used)) != len(used) or not all(0 <= i <= 4 for i in used):
            raise ValueError(
                f"ResNet50 used_layers must be distinct indices in 0..4, got {list(used_layers)}"
            )
        self.used_layers = used
        self._depth = max(used)
        # pysot: conv1 7×7/2 with padding 0, max-pool 3×3/2 with padding 1.
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _make_layer(64, _WIDTHS[0], _BLOCKS[0], stride=1, dilation=1)
        self.layer2 = _make_layer(256, _WIDTHS[1], _BLOCKS[1], stride=2, dilation=1)
        channels = [64, 256, 512, 512, 512]
        inplanes = 512
        self.layer3: nn.Module = nn.Identity()
        self.layer4: nn.Module = nn.Identity()
        if 3 in used:
            self.layer3 = _make_layer(inplanes, _WIDTHS[2], _BLOCKS[2], stride=1, dilation=2)
            inplanes = _WIDTHS[2] * _EXPANSION
            channels[3:] = [inplanes, inplanes]
        if 4 in used:
            self.layer4 = _make_layer(inplanes, _WIDTHS[3], _BLOCKS[3], stride=1, dilation=4)
            channels[4] = _WIDTHS[3] * _EXPANSION
        self.out_channels = [channels[i] for i in used]
        self._init_weights()

    def _init_weights(self) -> None:
        """pysot's init: He-normal over fan-out for convs, BN scale 1 and shift 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"ResNet50 expects a (N, 3, H, W) tensor, got {tuple(x.shape)}")
        x = self.relu(self.bn1(self.conv1(x)))
        outs = [x]
        if self._depth >= 1:
            outs.append(self.layer1(self.maxpool(x)))
        for stage in (self.layer2, self.layer3, self.layer4)[: self._depth - 1]:
            outs.append(stage(outs[-1]))
        return [outs[i] for i in self.used_layers]
