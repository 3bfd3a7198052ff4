"""U-2-Net and U-2-NetP (Qin et al. 2020), key-compatible with the official ``model/u2net.py``.

Both networks are a U-Net of eleven RSU blocks ("residual U-blocks", each a small U-Net of its own). The
module names, registration order and tensor shapes reproduce the official ``U2NET``/``U2NETP`` exactly, so
the released ``u2net.pth``/``u2netp.pth`` (flat state_dicts) load with ``strict=True``.

Conventions that matter numerically (all from the official code):

* every REBNCONV is ``conv_s1`` (3x3, with bias even though BN follows) + ``bn_s1`` (eps 1e-5) + ReLU;
* pooling is ``MaxPool2d(2, 2, ceil_mode=True)``, so odd sizes round up;
* every upsampling is bilinear with ``align_corners=False`` to the *size of a target tensor* (never a
  scale factor), which is what makes any input size work;
* side logits are upsampled first and passed through the sigmoid afterwards; ``outconv`` fuses the six
  pre-sigmoid logits.

``forward`` returns seven sigmoid maps, fused map first. **Index 0 (the fused map) is what the official
test script and rembg use**; the official script calls it ``d1``, which is easy to confuse with side1.

Example::

    net = U2NetP().eval()
    fused = net(torch.rand(1, 3, 320, 320))[0]  # 1x1x320x320 in (0, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["RSU", "REBNConv", "U2Net", "U2NetP"]


def upsample_like(x: Tensor, target: Tensor) -> Tensor:
    """Bilinearly resizes ``x`` to the spatial size of ``target`` (align_corners=False, no antialias).

    Shape:
        x: (N, C, h, w); target: (N, *, H, W); returns (N, C, H, W).
    """
    return F.interpolate(x, size=target.shape[2:], mode="bilinear", align_corners=False)


def _pool(x: Tensor) -> Tensor:
    """2x2 max pooling, stride 2, rounding odd sizes up (ceil_mode=True) like the official model."""
    return F.max_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)


class REBNConv(nn.Module):
    """3x3 conv (with bias) -> BatchNorm -> ReLU; padding equals dilation so the size is kept."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)
        self.bn_s1 = nn.BatchNorm2d(out_channels)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """Residual U-block of ``height`` levels (RSU7 ... RSU4) or its dilated, pool-free variant (RSU4F).

    Pooled variant (``dilated=False``): levels 1..height-1 use dilation 1 with a 2x2 pool between
    consecutive levels (none before the innermost), the innermost level uses dilation 2; the decoder
    upsamples to the skip's size. Dilated variant: no pooling, encoder dilations 1, 2, 4, 8 and decoder
    dilations 4, 2, 1. The decoder concatenates (decoder feature, encoder skip) in that order, and the
    block returns ``decoded + rebnconvin(x)``.

    Submodules are named ``rebnconvin``, ``rebnconv1..rebnconv{height}``, ``rebnconv{height-1}d..rebnconv1d``
    and registered in that order, which is the official state_dict order.
    """

    def __init__(
        self, height: int, in_channels: int, mid_channels: int, out_channels: int, dilated: bool = False
    ) -> None:
        super().__init__()
        self.height = height
        self.dilated = dilated
        enc_dilations = [2**i for i in range(height)] if dilated else [1] * (height - 1) + [2]
        self.rebnconvin = REBNConv(in_channels, out_channels)
        for level, dilation in enumerate(enc_dilations, start=1):
            level_in = out_channels if level == 1 else mid_channels
            self.add_module(f"rebnconv{level}", REBNConv(level_in, mid_channels, dilation))
        for level in range(height - 1, 0, -1):
            dilation = enc_dilations[level - 1] if dilated else 1
            level_out = out_channels if level == 1 else mid_channels
            self.add_module(f"rebnconv{level}d", REBNConv(2 * mid_channels, level_out, dilation))

    def _conv(self, name: str, x: Tensor) -> Tensor:
        module: nn.Module = getattr(self, name)
        return module(x)

    def forward(self, x: Tensor) -> Tensor:
        """Shape: x: (N, in_channels, H, W); returns (N, out_channels, H, W)."""
        hxin = self.rebnconvin(x)
        skips = [self._conv("rebnconv1", hxin)]
        for level in range(2, self.height + 1):
            below = skips[-1]
            if not self.dilated and level < self.height:
                below = _pool(below)
            skips.append(self._conv(f"rebnconv{level}", below))
        decoded = skips[-1]
        for level in range(self.height - 1, 0, -1):
            skip = skips[level - 1]
            if not self.dilated and level < self.height - 1:
                decoded = upsample_like(decoded, skip)
            decoded = self._conv(f"rebnconv{level}d", torch.cat((decoded, skip), 1))
        return decoded + hxin


@dataclass(frozen=True)
class _Layout:
    """Channel plan of one U-2-Net variant: (height, in, mid, out, dilated) per stage, side input widths."""

    stages: dict[str, tuple[int, int, int, int, bool]]
    side_channels: tuple[int, ...]


def _u2net_layout(in_channels: int) -> _Layout:
    return _Layout(
        stages={
            "stage1": (7, in_channels, 32, 64, False),
            "stage2": (6, 64, 32, 128, False),
            "stage3": (5, 128, 64, 256, False),
            "stage4": (4, 256, 128, 512, False),
            "stage5": (4, 512, 256, 512, True),
            "stage6": (4, 512, 256, 512, True),
            "stage5d": (4, 1024, 256, 512, True),
            "stage4d": (4, 1024, 128, 256, False),
            "stage3d": (5, 512, 64, 128, False),
            "stage2d": (6, 256, 32, 64, False),
            "stage1d": (7, 128, 16, 64, False),
        },
        side_channels=(64, 64, 128, 256, 512, 512),
    )


def _u2netp_layout(in_channels: int) -> _Layout:
    heights = {"1": 7, "2": 6, "3": 5, "4": 4, "5": 4, "6": 4}
    stages: dict[str, tuple[int, int, int, int, bool]] = {}
    for level in "123456":
        stages[f"stage{level}"] = (heights[level], in_channels if level == "1" else 64, 16, 64, level in "56")
    for level in "54321":
        stages[f"stage{level}d"] = (heights[level], 128, 16, 64, level == "5")
    return _Layout(stages=stages, side_channels=(64,) * 6)


class _U2NetBase(nn.Module):
    """Shared encoder/decoder wiring of U-2-Net and U-2-NetP; subclasses only choose the channel plan."""

    def __init__(self, layout: _Layout, out_channels: int) -> None:
        super().__init__()
        for name, (height, cin, mid, cout, dilated) in layout.stages.items():
            self.add_module(name, RSU(height, cin, mid, cout, dilated))
        for index, channels in enumerate(layout.side_channels, start=1):
            self.add_module(f"side{index}", nn.Conv2d(channels, out_channels, 3, padding=1))
        self.outconv = nn.Conv2d(6 * out_channels, out_channels, 1)

    def _run(self, name: str, x: Tensor) -> Tensor:
        module: nn.Module = getattr(self, name)
        return module(x)

    def _decode(self, x: Tensor) -> list[Tensor]:
        """Runs encoder and decoder; returns the stage outputs feeding side1..side6 (hx1d .. hx5d, hx6)."""
        encoded = [self._run("stage1", x)]
        for level in range(2, 7):
            encoded.append(self._run(f"stage{level}", _pool(encoded[-1])))
        decoded = [encoded[5]]
        for level in range(5, 0, -1):
            skip = encoded[level - 1]
            up = upsample_like(decoded[0], skip)
            decoded.insert(0, self._run(f"stage{level}d", torch.cat((up, skip), 1)))
        return decoded

    def forward_logits(self, x: Tensor) -> tuple[Tensor, ...]:
        """The seven pre-sigmoid maps (fused d0, then side1..side6), all at the input size.

        Use these with ``BCEWithLogitsLoss`` for training; ``forward`` is their sigmoid.

        Shape:
            x: (N, in_channels, H, W), any H and W; returns 7 tensors of (N, out_channels, H, W).
        """
        features = self._decode(x)
        sides = [self._run("side1", features[0])]
        for index in range(2, 7):
            sides.append(upsample_like(self._run(f"side{index}", features[index - 1]), sides[0]))
        fused = self.outconv(torch.cat(sides, 1))
        return (fused, *sides)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """The seven sigmoid maps, fused map first (index 0 is the one rembg and the official test use).

        Shape:
            x: (N, in_channels, H, W); returns 7 tensors of (N, out_channels, H, W) in (0, 1).
        """
        return tuple(torch.sigmoid(logits) for logits in self.forward_logits(x))


class U2Net(_U2NetBase):
    """Full U-2-Net (44.0 M parameters), the architecture of u2net.pth, u2net_human_seg and portrait."""

    def __init__(self, in_channels: int = 3, out_channels: int = 1) -> None:
        super().__init__(_u2net_layout(in_channels), out_channels)


class U2NetP(_U2NetBase):
    """U-2-NetP, the small variant (1.13 M parameters): same wiring, 16 mid / 64 out channels everywhere."""

    def __init__(self, in_channels: int = 3, out_channels: int = 1) -> None:
        super().__init__(_u2netp_layout(in_channels), out_channels)
