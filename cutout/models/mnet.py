"""MNet, the matting network of Semantic Human Matting (Chen et al., ACM MM 2018), used as an edge refiner.

MNet takes an RGB image and a trimap and predicts alpha. Its layout follows the paper's description of
the DIM-style encoder-decoder it builds on:

* input: 6 channels, the RGB image followed by the trimap as three one-hot channels (background,
  unknown, foreground; see :func:`trimap_one_hot`);
* encoder: the 13 3x3 convolutions of VGG-16 in five stages of (2, 2, 3, 3, 3) convolutions with
  (64, 128, 256, 512, 512) channels, each followed by BatchNorm and ReLU, and a 2x2 max-pooling that keeps
  its indices after each of the first four stages (SHM drops DIM's fifth pooling and its fc6 layer);
* decoder: one 5x5 convolution at 1/16, then four times "unpool with the encoder's indices
  (``nn.MaxUnpool2d``), 5x5 convolution" back to full size, each convolution with BatchNorm and ReLU,
  and a last 5x5 convolution to one channel whose sigmoid is the alpha (6 decoder convolutions in all).

``width`` scales every channel count (1.0 is the paper's network, 0.25 a slim one that runs on a CPU).
Any input size works: the input is padded on the right and bottom to a multiple of 16 by repeating the
edge pixels and the alpha is cropped back. The network does not care how the RGB channels are normalised;
use the same convention for training and inference.

Example::

    net = MNet(width=0.25).eval()
    x = torch.cat([image, trimap_one_hot(trimap)], dim=1)  # (N, 3, H, W) + (N, 3, H, W)
    alpha = net(x)  # (N, 1, H, W) in (0, 1)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MNET_STRIDE", "TRIMAP_HIGH", "TRIMAP_LOW", "MNet", "mnet_input", "trimap_one_hot"]

MNET_STRIDE = 16  # four 2x2 poolings
# Trimap levels are 0 (background), 0.5 (unknown) and 1 (foreground). Anything below TRIMAP_LOW counts as
# background and above TRIMAP_HIGH as foreground, so 128/255 (= 0.502) and resized trimaps still work.
TRIMAP_LOW, TRIMAP_HIGH = 0.25, 0.75

_ENCODER = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))  # (convolutions, channels) per stage


def _trimap_levels(trimap: Tensor) -> Tensor:
    """A trimap as floats in [0, 1]: uint8 (0/128/255) is divided by 255, floating point taken as it is."""
    if trimap.dim() != 4 or trimap.shape[1] != 1:
        raise ValueError(f"trimap must have shape (N, 1, H, W); got {tuple(trimap.shape)}.")
    if trimap.dtype == torch.uint8:
        return trimap.float() / 255.0
    if not trimap.is_floating_point():
        raise ValueError(f"trimap must be float (0/0.5/1) or uint8 (0/128/255); got dtype {trimap.dtype}.")
    return trimap


def trimap_one_hot(trimap: Tensor) -> Tensor:
    """Background, unknown and foreground masks of a trimap, as float channels.

    Levels are 0, 0.5 and 1 for a floating-point trimap, 0, 128 and 255 for uint8. Values below
    ``TRIMAP_LOW`` (of 1) are background, above ``TRIMAP_HIGH`` foreground, the rest unknown, so exactly
    one channel is 1 at every pixel.

    Shape:
        trimap: (N, 1, H, W); returns (N, 3, H, W) in the trimap's dtype (float32 for uint8).
    """
    levels = _trimap_levels(trimap)
    background = levels < TRIMAP_LOW
    foreground = levels > TRIMAP_HIGH
    unknown = ~(background | foreground)
    return torch.cat([background, unknown, foreground], dim=1).to(levels.dtype)


def mnet_input(image: Tensor, trimap: Tensor) -> Tensor:
    """The 6-channel MNet input: the (normalised) image followed by :func:`trimap_one_hot` of the trimap.

    Shape:
        image: (N, 3, H, W); trimap: (N, 1, H, W); returns (N, 6, H, W).
    """
    if image.dim() != 4 or image.shape[1] != 3 or image.shape[2:] != trimap.shape[2:]:
        raise ValueError(
            f"image must have shape (N, 3, H, W) matching the trimap {tuple(trimap.shape)}; got {tuple(image.shape)}."
        )
    return torch.cat([image, trimap_one_hot(trimap).to(image.dtype)], dim=1)


def _unpool(x: Tensor, indices: Tensor) -> Tensor:
    """Max-unpooling of a 2x2 pooling: each value goes back to where its maximum was, zeros elsewhere.

    The same as ``nn.MaxUnpool2d(2, 2)``, written as a scatter so that it exports to ONNX with dynamic sizes.

    Shape: x, indices (N, C, h, w) -> (N, C, 2h, 2w).
    """
    batch, channels, height, width = x.shape
    flat = x.new_zeros(batch, channels, 4 * height * width)
    return flat.scatter(2, indices.flatten(2), x.flatten(2)).view(batch, channels, 2 * height, 2 * width)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """Convolution (no bias: BatchNorm follows) + BatchNorm + ReLU, 'same' padding."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class MNet(nn.Module):
    """SHM's matting network: VGG-style encoder with index-keeping pooling, unpooling decoder, sigmoid alpha.

    Args:
        width: multiplier of every channel count; 1.0 is the paper's network (25.7 M parameters),
            0.25 a slim variant (1.6 M).
        in_channels: 6 for RGB + one-hot trimap.
    """

    def __init__(self, width: float = 1.0, in_channels: int = 6) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be a positive multiplier such as 1.0 or 0.25; got {width}.")
        self.width = width
        self.in_channels = in_channels
        channels = [max(1, round(count * width)) for _, count in _ENCODER]
        previous = in_channels
        for index, ((convs, _), out) in enumerate(zip(_ENCODER, channels, strict=True), start=1):
            layers = [_conv_bn_relu(previous if i == 0 else out, out, 3) for i in range(convs)]
            self.add_module(f"encode{index}", nn.Sequential(*layers))
            previous = out
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        # decode5 works at 1/16; decode{k} for k < 5 follows the unpooling that undoes pool k, so its input
        # has the channels of encode{k} and its output the channels of encode{k-1} (encode1's for decode1).
        self.decode5 = _conv_bn_relu(channels[4], channels[3], 5)
        for level in range(4, 0, -1):
            out = channels[max(level - 2, 0)]
            self.add_module(f"decode{level}", _conv_bn_relu(channels[level - 1], out, 5))
        self.alpha_head = nn.Conv2d(channels[0], 1, 5, padding=2)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def _stage(self, name: str, x: Tensor) -> Tensor:
        module: nn.Module = getattr(self, name)
        return module(x)

    def forward(self, x: Tensor) -> Tensor:
        """The alpha matte of a 6-channel input (see :func:`mnet_input`).

        Shape:
            x: (N, 6, H, W), any H and W; returns (N, 1, H, W) in (0, 1).
        """
        if not torch.jit.is_tracing() and (x.dim() != 4 or x.shape[1] != self.in_channels):
            raise ValueError(f"MNet expects (N, {self.in_channels}, H, W): RGB + one-hot trimap; got {tuple(x.shape)}.")
        height, width = x.shape[2:]
        pad_bottom, pad_right = -height % MNET_STRIDE, -width % MNET_STRIDE
        if torch.jit.is_tracing() or pad_bottom or pad_right:  # a traced export pads whatever the size
            x = F.pad(x, (0, pad_right, 0, pad_bottom), mode="replicate")
        indices: list[Tensor] = []
        for level in range(1, 5):
            x, index = self.pool(self._stage(f"encode{level}", x))
            indices.append(index)
        x = self.decode5(self._stage("encode5", x))
        for level in range(4, 0, -1):
            x = self._stage(f"decode{level}", _unpool(x, indices[level - 1]))
        alpha = torch.sigmoid(self.alpha_head(x))
        return alpha[:, :, :height, :width]
