"""MODNet (Ke et al. 2022), key-compatible with the official ``src/models/modnet.py`` (commit 28165a45).

A MobileNetV2 backbone (width 1.0, ReLU6) feeds three branches: a low-resolution semantic branch (LR, with
an SE block), a high-resolution detail branch (HR) and a fusion branch (F) that produces the matte.

Facts that matter numerically (see also ``../shared/reference/modnet/README.md``):

* **IBNorm** splits C channels: the first ``C // 2`` go through BatchNorm, the rest through InstanceNorm
  (``affine=False``, ``track_running_stats=False``), concatenated BN half first. The IN half normalises with
  per-image statistics (biased variance, eps 1e-5) *even in eval mode*, so the output of one image depends
  on the whole image and IN cannot be folded into a conv.
* Every resize inside the network is bilinear, ``align_corners=False``, no antialias, given as a scale
  factor (2 up; 1/2 and 1/4 for the image). Input sides must therefore be multiples of 32.
* The backbone module is registered twice, as ``backbone`` and ``lr_branch.backbone`` (one module, shared
  tensors), exactly like the official code, so ``state_dict()`` lists 751 keys for 439 distinct tensors.
  Released checkpoints were saved from ``nn.DataParallel`` and prefix every key with ``module.``;
  :func:`load_modnet_state_dict` handles both that and unprefixed or de-duplicated dicts.

Example::

    net = MODNet().eval()
    _, _, matte = net(torch.rand(1, 3, 512, 512) * 2 - 1, inference=True)  # input in [-1, 1]
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cutout.errors import WeightsError

__all__ = ["CheckpointKeysError", "IBNorm", "MODNet", "MODNetMatte", "load_modnet_state_dict"]


def _resize(x: Tensor, scale: float) -> Tensor:
    """Bilinear resize by a scale factor (align_corners=False, no antialias), as in the official code."""
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


# --- MobileNetV2 backbone (width 1.0, ReLU6), keyed ``model.features.{0..18}`` -------------------------


def _conv_bn_relu6(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """Conv (no bias) + BN + ReLU6: features.0 (3x3, stride 2) and features.18 (1x1, 320->1280)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand] -> 3x3 depthwise -> 1x1 linear projection, residual if shape kept.

    With expansion 1 there is no expand conv, so ``conv`` holds indices {0 dw, 1 BN, 3 pw, 4 BN};
    otherwise {0 pw, 1 BN, 3 dw, 4 BN, 6 pw-linear, 7 BN} (ReLU6 at the missing indices).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = round(in_channels * expansion)
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


# (expansion, out channels, repeats, first stride) of features.1 .. features.17
_MOBILENETV2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2(nn.Module):
    """The feature extractor only (the official model has no classifier when num_classes is None)."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = [_conv_bn_relu6(in_channels, 32, 3, stride=2)]
        channels = 32
        for expansion, out_channels, repeats, stride in _MOBILENETV2_SETTINGS:
            for index in range(repeats):
                first_stride = stride if index == 0 else 1
                blocks.append(InvertedResidual(channels, out_channels, first_stride, expansion))
                channels = out_channels
        blocks.append(_conv_bn_relu6(channels, 1280, 1))
        self.features = nn.Sequential(*blocks)


class MobileNetV2Backbone(nn.Module):
    """Runs the features and taps them at 1/2, 1/4, 1/8, 1/16 and 1/32 (16, 24, 32, 96, 1280 channels)."""

    _TAPS = (2, 4, 7, 14, 19)  # number of blocks run before each tap

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.model = MobileNetV2(in_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        taps = []
        for index, block in enumerate(self.model.features):
            x = block(x)
            if index + 1 in self._TAPS:
                taps.append(x)
        return tuple(taps)


# --- MODNet branches ---------------------------------------------------------------------------------


class IBNorm(nn.Module):
    """Batch norm on the first ``C // 2`` channels, instance norm (no affine, no running stats) on the rest.

    Shape:
        x: (N, C, H, W); returns (N, C, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bnorm_channels = channels // 2
        in_channels = channels - self.bnorm_channels
        self.bnorm = nn.BatchNorm2d(self.bnorm_channels, affine=True)
        self.inorm = nn.InstanceNorm2d(in_channels, affine=False, track_running_stats=False)

    def forward(self, x: Tensor) -> Tensor:
        bn_x = self.bnorm(x[:, : self.bnorm_channels].contiguous())
        in_x = self.inorm(x[:, self.bnorm_channels :].contiguous())
        return torch.cat((bn_x, in_x), 1)


class Conv2dIBNormRelu(nn.Module):
    """Conv (with bias), optional IBNorm, optional ReLU, in ``layers`` as the official keys expect."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        with_ibn: bool = True,
        with_relu: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)]
        if with_ibn:
            layers.append(IBNorm(out_channels))
        if with_relu:
            layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def _head(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> Conv2dIBNormRelu:
    """A final logit conv: no IBNorm, no ReLU, 'same' padding for odd kernels."""
    return Conv2dIBNormRelu(
        in_channels, out_channels, kernel_size, stride, kernel_size // 2, with_ibn=False, with_relu=False
    )


class SEBlock(nn.Module):
    """Squeeze-and-excitation: global average pool, FC C->C/r, ReLU, FC C/r->C, sigmoid, channel scaling."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        n, c = x.shape[:2]
        weight = self.fc(self.pool(x).view(n, c)).view(n, c, 1, 1)
        return x * weight


class LRBranch(nn.Module):
    """Semantic branch: backbone, SE on the 1/32 features, two x2 up-convs to 1/8, optional 1/16 head."""

    def __init__(self, backbone: MobileNetV2Backbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.se_block = SEBlock(1280, reduction=4)
        self.conv_lr16x = Conv2dIBNormRelu(1280, 96, 5, padding=2)
        self.conv_lr8x = Conv2dIBNormRelu(96, 32, 5, padding=2)
        self.conv_lr = _head(32, 1, 3, stride=2)

    def forward(self, img: Tensor, inference: bool) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
        """Returns (semantic or None, lr8x, enc2x, enc4x); semantic is at 1/16 of the input size."""
        enc2x, enc4x, _, _, enc32x = self.backbone(img)
        lr16x = self.conv_lr16x(_resize(self.se_block(enc32x), 2))
        lr8x = self.conv_lr8x(_resize(lr16x, 2))
        semantic = None if inference else torch.sigmoid(self.conv_lr(lr8x))
        return semantic, lr8x, enc2x, enc4x


class HRBranch(nn.Module):
    """Detail branch at 1/2 and 1/4 resolution, fed with the image, backbone taps and the LR features."""

    def __init__(self, hr: int = 32) -> None:
        super().__init__()
        self.tohr_enc2x = Conv2dIBNormRelu(16, hr, 1)
        self.conv_enc2x = Conv2dIBNormRelu(hr + 3, hr, 3, stride=2, padding=1)
        self.tohr_enc4x = Conv2dIBNormRelu(24, hr, 1)
        self.conv_enc4x = Conv2dIBNormRelu(2 * hr, 2 * hr, 3, padding=1)
        self.conv_hr4x = nn.Sequential(
            Conv2dIBNormRelu(3 * hr + 3, 2 * hr, 3, padding=1),
            Conv2dIBNormRelu(2 * hr, 2 * hr, 3, padding=1),
            Conv2dIBNormRelu(2 * hr, hr, 3, padding=1),
        )
        self.conv_hr2x = nn.Sequential(
            Conv2dIBNormRelu(2 * hr, 2 * hr, 3, padding=1),
            Conv2dIBNormRelu(2 * hr, hr, 3, padding=1),
            Conv2dIBNormRelu(hr, hr, 3, padding=1),
            Conv2dIBNormRelu(hr, hr, 3, padding=1),
        )
        self.conv_hr = nn.Sequential(Conv2dIBNormRelu(hr + 3, hr, 3, padding=1), _head(hr, 1, 1))

    def forward(
        self, img: Tensor, enc2x: Tensor, enc4x: Tensor, lr8x: Tensor, inference: bool
    ) -> tuple[Tensor | None, Tensor]:
        """Returns (detail or None, hr2x); the image is downsampled by plain bilinear 1/2 and 1/4."""
        img2x, img4x = _resize(img, 1 / 2), _resize(img, 1 / 4)
        enc2x = self.tohr_enc2x(enc2x)
        hr4x = self.conv_enc2x(torch.cat((img2x, enc2x), 1))
        hr4x = self.conv_enc4x(torch.cat((hr4x, self.tohr_enc4x(enc4x)), 1))
        hr4x = self.conv_hr4x(torch.cat((hr4x, _resize(lr8x, 2), img4x), 1))
        hr2x = self.conv_hr2x(torch.cat((_resize(hr4x, 2), enc2x), 1))
        if inference:
            return None, hr2x
        detail = torch.sigmoid(self.conv_hr(torch.cat((_resize(hr2x, 2), img), 1)))
        return detail, hr2x


class FusionBranch(nn.Module):
    """Fuses the LR features (1/8) with the HR features (1/2) into the full-resolution matte."""

    def __init__(self, hr: int = 32) -> None:
        super().__init__()
        self.conv_lr4x = Conv2dIBNormRelu(32, hr, 5, padding=2)
        self.conv_f2x = Conv2dIBNormRelu(2 * hr, hr, 3, padding=1)
        self.conv_f = nn.Sequential(Conv2dIBNormRelu(hr + 3, hr // 2, 3, padding=1), _head(hr // 2, 1, 1))

    def forward(self, img: Tensor, lr8x: Tensor, hr2x: Tensor) -> Tensor:
        lr2x = _resize(self.conv_lr4x(_resize(lr8x, 2)), 2)
        f2x = self.conv_f2x(torch.cat((lr2x, hr2x), 1))
        return torch.sigmoid(self.conv_f(torch.cat((_resize(f2x, 2), img), 1)))


class MODNet(nn.Module):
    """Trimap-free portrait matting network (official ``MODNet(backbone_pretrained=False)``).

    Input: RGB normalised as ``(x / 255 - 0.5) / 0.5``, sides multiples of 32 (the official demo resizes
    with ``mode='area'`` so the short side is 512).
    """

    def __init__(self, hr_channels: int = 32) -> None:
        super().__init__()
        self.backbone = MobileNetV2Backbone()
        self.lr_branch = LRBranch(self.backbone)  # same module again: the official duplicate keys
        self.hr_branch = HRBranch(hr_channels)
        self.f_branch = FusionBranch(hr_channels)
        self._init_weights()

    def _init_weights(self) -> None:
        """Official default init: Kaiming-uniform convs with zero bias, norm weight 1 / bias 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=0, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, img: Tensor, inference: bool = False) -> tuple[Tensor | None, Tensor | None, Tensor]:
        """Returns (semantic, detail, matte), or (None, None, matte) when ``inference`` is true.

        ``inference`` only skips the two auxiliary heads; the matte is bitwise the same either way.

        Shape:
            img: (N, 3, H, W), H and W multiples of 32, values in [-1, 1]; semantic: (N, 1, H/16, W/16);
            detail and matte: (N, 1, H, W), all in (0, 1).
        """
        semantic, lr8x, enc2x, enc4x = self.lr_branch(img, inference)
        detail, hr2x = self.hr_branch(img, enc2x, enc4x, lr8x, inference)
        matte = self.f_branch(img, lr8x, hr2x)
        return semantic, detail, matte


class MODNetMatte(nn.Module):
    """Inference wrapper returning only the matte (what ONNX export and the backends need).

    Shape:
        img: (N, 3, H, W) as for :class:`MODNet`; returns (N, 1, H, W).
    """

    def __init__(self, model: MODNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, img: Tensor) -> Tensor:
        return self.model(img, inference=True)[2]


# --- Loading checkpoints -----------------------------------------------------------------------------


class CheckpointKeysError(WeightsError, ValueError):
    """A state_dict whose keys or shapes do not match the model it is loaded into."""


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str = "module.") -> dict[str, Tensor]:
    """Drops ``prefix`` when every key carries it (checkpoints saved from ``nn.DataParallel``)."""
    if state_dict and all(key.startswith(prefix) for key in state_dict):
        return {key[len(prefix) :]: value for key, value in state_dict.items()}
    return dict(state_dict)


def fill_num_batches_tracked(state_dict: dict[str, Tensor], expected: Mapping[str, Tensor]) -> None:
    """Adds missing BN ``num_batches_tracked`` counters from ``expected``; inference never reads them."""
    for key, value in expected.items():
        if key.endswith(".num_batches_tracked") and key not in state_dict:
            state_dict[key] = value


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:5])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > 5 else ''})"


def check_state_dict(state_dict: Mapping[str, Tensor], expected: Mapping[str, Tensor], name: str) -> None:
    """Raises :class:`CheckpointKeysError` naming up to 5 missing, unexpected and mis-shaped keys each."""
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    reshaped = [
        f"{key} {tuple(state_dict[key].shape)} vs {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state_dict and state_dict[key].shape != value.shape
    ]
    problems = [f"missing keys: {_listing(missing)}"] if missing else []
    problems += [f"unexpected keys: {_listing(unexpected)}"] if unexpected else []
    problems += [f"shape mismatches (file vs model): {_listing(reshaped)}"] if reshaped else []
    if problems:
        raise CheckpointKeysError(
            f"the checkpoint does not fit {name}: "
            + "; ".join(problems)
            + f". Check that the file holds {name} weights (architecture, channel count)."
        )


def _fill_backbone_aliases(state_dict: dict[str, Tensor]) -> None:
    """Completes each ``backbone.*`` / ``lr_branch.backbone.*`` pair from whichever copy is present."""
    names = {key.removeprefix("lr_branch.") for key in state_dict if key.startswith("lr_branch.backbone.")}
    names |= {key for key in state_dict if key.startswith("backbone.")}
    for key in names:
        alias = "lr_branch." + key
        if key not in state_dict:
            state_dict[key] = state_dict[alias]
        elif alias not in state_dict:
            state_dict[alias] = state_dict[key]
        elif not torch.equal(state_dict[key], state_dict[alias]):
            raise CheckpointKeysError(
                f"{key} and {alias} name the same shared backbone tensor but differ in the checkpoint; "
                "keep one copy (the official MODNet registers its backbone twice)."
            )


def load_modnet_state_dict(model: MODNet, state_dict: Mapping[str, Tensor]) -> None:
    """Loads MODNet weights strictly, accepting the layouts a MODNet checkpoint comes in.

    Accepted: the released layout (every key prefixed ``module.``, both copies of the shared backbone),
    the same without the prefix, and dicts holding only one copy of each ``backbone.*`` /
    ``lr_branch.backbone.*`` pair. Missing ``num_batches_tracked`` counters are filled in (PyTorch's own
    strict load tolerates that too). Anything else raises :class:`CheckpointKeysError` (a ``ValueError``).
    """
    weights = strip_prefix(state_dict)
    _fill_backbone_aliases(weights)
    expected = model.state_dict()
    fill_num_batches_tracked(weights, expected)
    check_state_dict(weights, expected, "MODNet")
    model.load_state_dict(weights, strict=True)
