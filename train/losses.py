"""Training losses for U-2-Net, MODNet and MNet: pure functions on tensors.

* :func:`u2net_loss` — U-2-Net's deep supervision (Qin et al. 2020): the sum of one BCE per output map
  (the fused map and the six side maps), computed from logits for numerical stability; cross-entropy for
  multi-class heads. :func:`u2net_loss_parts` gives the seven terms by name for logging. With ``iou=True``
  each one-channel term adds BASNet's soft IoU loss (Qin et al. 2019, "hybrid loss"), 1 - sum(p t) /
  sum(p + t - p t) per image: it weighs a map's region as a whole, so small objects count as much as big ones.
* :func:`modnet_losses` — MODNet's three sub-objectives (Ke et al. 2022): semantic (L2 at 1/16 against a
  blurred, downsampled matte), detail (L1 inside the trimap's transition band) and matte (L1 plus
  compositional L1, with the band weighted more).
* :func:`mnet_loss` — Semantic Human Matting's alpha-prediction + compositional loss (Chen et al. 2018),
  Charbonnier-style ``sqrt(d^2 + eps^2)``, over the unknown region only.

Trimaps are (N, 1, H, W) tensors with levels 0 (background), 0.5 (unknown) and 1 (foreground), or uint8
0/128/255; the unknown region is read by :func:`cutout.models.mnet.trimap_one_hot`, whose thresholds (0.25
and 0.75) also accept 128/255 and resized trimaps. Images in the compositional losses are RGB in [0, 1].

Example::

    logits = model.forward_logits(images)
    loss = u2net_loss(logits, masks)  # masks: (N, 1, H, W) in [0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from cutout.models.mnet import trimap_one_hot

__all__ = [
    "MODNET_BOUNDARY_WEIGHT",
    "U2NET_OUTPUT_NAMES",
    "blur3x3",
    "mnet_loss",
    "modnet_losses",
    "modnet_semantic_target",
    "soft_iou_loss",
    "u2net_loss",
    "u2net_loss_parts",
    "unknown_region",
]

U2NET_OUTPUT_NAMES = ("fused", "side1", "side2", "side3", "side4", "side5", "side6")
MODNET_BOUNDARY_WEIGHT = 4.0  # extra weight of the transition band in the matte loss (official MODNet code)
MODNET_SEMANTIC_STRIDE = 16


def _shape(tensor: Tensor) -> str:
    return "(" + ", ".join(str(size) for size in tensor.shape) + ")"


def _expect(ok: bool, name: str, expected: str, tensor: Tensor) -> None:
    """Raises ValueError "name must be expected; got (actual shape), dtype" unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} must be {expected}; got shape {_shape(tensor)}, dtype {tensor.dtype}.")


def _expect_map(name: str, tensor: Tensor, channels: int, like: Tensor | None = None, kind: str = "float") -> None:
    """Checks an (N, channels, H, W) tensor (floating unless ``kind`` says otherwise), N, H, W those of ``like``."""
    ok = tensor.dim() == 4 and tensor.shape[1] == channels and (kind != "float" or tensor.is_floating_point())
    expected = f"a {kind} tensor of shape (N, {channels}, H, W)"
    if like is not None:
        ok = ok and tensor.shape[0] == like.shape[0] and tensor.shape[2:] == like.shape[2:]
        expected = f"a {kind} tensor of shape ({like.shape[0]}, {channels}, {like.shape[2]}, {like.shape[3]})"
    _expect(ok, name, expected, tensor)


# --- U-2-Net --------------------------------------------------------------------------------------------


def _u2net_term(logits: Tensor, target: Tensor, iou: bool = False) -> Tensor:
    if logits.shape[1] != 1:
        return F.cross_entropy(logits, target)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    return bce + soft_iou_loss(logits, target) if iou else bce


def soft_iou_loss(logits: Tensor, target: Tensor) -> Tensor:
    """BASNet's IoU loss: 1 - sum(p t) / sum(p + t - p t) per image, p = sigmoid(logits), averaged over the batch.

    An image whose target and prediction are both empty costs nothing.

    Shape: logits, target (N, 1, H, W), target in [0, 1] -> scalar.
    """
    prob = torch.sigmoid(logits.float())
    target = target.float()
    intersection = (prob * target).sum(dim=(1, 2, 3))
    union = (prob + target - prob * target).sum(dim=(1, 2, 3))
    return (1 - (intersection + 1) / (union + 1)).mean()


def _check_u2net_inputs(logits: Sequence[Tensor], target: Tensor) -> None:
    if len(logits) == 0:
        raise ValueError("logits must hold at least one map (U-2-Net gives 7: fused, then side1..side6); got none.")
    first = logits[0]
    _expect(first.dim() == 4 and first.is_floating_point(), "logits[0]", "a float tensor (N, C, H, W)", first)
    for index, item in enumerate(logits[1:], start=1):
        _expect(item.shape == first.shape, f"logits[{index}]", f"shaped like logits[0] {_shape(first)}", item)
    n, channels, height, width = first.shape
    if channels == 1:
        expected = f"a float tensor of shape ({n}, 1, {height}, {width}) with values in [0, 1]"
        _expect(target.is_floating_point() and target.shape == first.shape, "target", expected, target)
        low, high = (float(value) for value in torch.aminmax(target))
        if low < 0 or high > 1:
            raise ValueError(f"target values must lie in [0, 1]; got [{low:.4g}, {high:.4g}] (a 0..255 mask?).")
    else:
        expected = f"an int64 tensor of class indices of shape ({n}, {height}, {width}) for {channels}-class logits"
        _expect(target.dtype == torch.long and target.shape == (n, height, width), "target", expected, target)


def u2net_loss_parts(logits: Sequence[Tensor], target: Tensor, iou: bool = False) -> dict[str, Tensor]:
    """The deep-supervision terms, one mean-reduced loss per output map, keyed "fused", "side1", ...

    One channel: binary cross-entropy with logits against a soft or hard target in [0, 1] (plus
    :func:`soft_iou_loss` with ``iou``). C > 1 channels: cross-entropy against class indices.

    Shape:
        logits: a sequence (fused first, as ``forward_logits`` returns it) of (N, C, H, W) tensors;
        target: (N, 1, H, W) float in [0, 1] when C == 1, (N, H, W) int64 in [0, C) otherwise.
    """
    _check_u2net_inputs(logits, target)
    names = [U2NET_OUTPUT_NAMES[i] if i < len(U2NET_OUTPUT_NAMES) else f"side{i}" for i in range(len(logits))]
    return {name: _u2net_term(item, target, iou) for name, item in zip(names, logits, strict=True)}


def u2net_loss(logits: Sequence[Tensor], target: Tensor, iou: bool = False) -> Tensor:
    """U-2-Net's training loss: the sum of the per-output terms of :func:`u2net_loss_parts`.

    Shape:
        as for :func:`u2net_loss_parts`; returns a scalar.
    """
    return torch.stack(list(u2net_loss_parts(logits, target, iou).values())).sum()


# --- trimaps and blurring ---------------------------------------------------------------------------------


def unknown_region(trimap: Tensor) -> Tensor:
    """1.0 where the trimap is unknown (0.5, or 128 of uint8), 0.0 in the background and the foreground.

    Shape:
        trimap: (N, 1, H, W); returns (N, 1, H, W) float.
    """
    return trimap_one_hot(trimap)[:, 1:2]


def blur3x3(x: Tensor) -> Tensor:
    """A 3x3 Gaussian blur, the separable kernel [1, 2, 1] / 4 with reflected borders, per channel.

    [1, 2, 1] / 4 is OpenCV's default 3x3 Gaussian and, to within 0.1 %, the kernel of the blur layer in
    the official MODNet trainer (``scipy.ndimage.gaussian_filter`` of a 3x3 delta at sigma 0.8).

    Shape:
        x: (N, C, H, W); returns (N, C, H, W).
    """
    _expect(x.dim() == 4 and x.is_floating_point(), "x", "a float tensor of shape (N, C, H, W)", x)
    taps = torch.tensor([0.25, 0.5, 0.25], dtype=x.dtype, device=x.device)
    channels = x.shape[1]
    kernel = torch.outer(taps, taps).expand(channels, 1, 3, 3)
    mode = "reflect" if min(x.shape[2:]) > 1 else "replicate"  # reflect needs 2+ pixels per side
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode=mode), kernel, groups=channels)


# --- MODNet -----------------------------------------------------------------------------------------------


def modnet_semantic_target(gt_matte: Tensor) -> Tensor:
    """The semantic branch's target: the matte bilinearly downsampled 16x, then :func:`blur3x3`.

    Downsampling is plain bilinear (align_corners=False, no antialias), as in the official trainer; the
    blur removes the fine structure (hair) that the 1/16 semantic branch should not try to predict.

    Shape:
        gt_matte: (N, 1, H, W); returns (N, 1, H // 16, W // 16).
    """
    _expect_map("gt_matte", gt_matte, 1)
    size = (gt_matte.shape[2] // MODNET_SEMANTIC_STRIDE, gt_matte.shape[3] // MODNET_SEMANTIC_STRIDE)
    _expect(min(size) >= 1, "gt_matte", "at least 16 x 16 pixels", gt_matte)
    return blur3x3(F.interpolate(gt_matte, size=size, mode="bilinear", align_corners=False))


def modnet_losses(
    pred_semantic: Tensor,
    pred_detail: Tensor,
    pred_matte: Tensor,
    image: Tensor,
    trimap: Tensor,
    gt_matte: Tensor,
    *,
    semantic_scale: float = 10.0,
    detail_scale: float = 10.0,
    matte_scale: float = 1.0,
    boundary_weight: float = MODNET_BOUNDARY_WEIGHT,
) -> dict[str, Tensor]:
    """MODNet's scaled sub-objective losses "semantic", "detail", "matte" and their sum "total".

    * semantic: mean squared error against :func:`modnet_semantic_target` (all pixels);
    * detail: mean absolute error over the transition band (trimap unknown) only, i.e. divided by the
      number of band pixels in the batch; 0 when the batch has no band;
    * matte: per-pixel weight ``1 + boundary_weight`` in the band and 1 elsewhere, applied to the alpha L1
      and to the compositional L1 ``|image * pred_matte - image * gt_matte|``, both averaged over all
      pixels (and colour channels) and added.

    Shape:
        pred_semantic: (N, 1, H/16, W/16); pred_detail, pred_matte, trimap, gt_matte: (N, 1, H, W);
        image: (N, 3, H, W) RGB in [0, 1]; returns scalars.
    """
    _expect_map("gt_matte", gt_matte, 1)
    for name, tensor in (("pred_detail", pred_detail), ("pred_matte", pred_matte)):
        _expect_map(name, tensor, 1, like=gt_matte)
    _expect_map("trimap", trimap, 1, like=gt_matte, kind="float or uint8")
    _expect_map("image", image, 3, like=gt_matte)
    semantic_target = modnet_semantic_target(gt_matte)
    _expect_map("pred_semantic", pred_semantic, 1, like=semantic_target)
    band = unknown_region(trimap)

    semantic = F.mse_loss(pred_semantic, semantic_target)
    detail = ((pred_detail - gt_matte).abs() * band).sum() / band.sum().clamp_min(1.0)
    weight = 1.0 + boundary_weight * band
    matte_l1 = (weight * (pred_matte - gt_matte).abs()).mean()
    compositional = (weight * (image * pred_matte - image * gt_matte).abs()).mean()

    losses = {
        "semantic": semantic_scale * semantic,
        "detail": detail_scale * detail,
        "matte": matte_scale * (matte_l1 + compositional),
    }
    losses["total"] = losses["semantic"] + losses["detail"] + losses["matte"]
    return losses


# --- MNet (Semantic Human Matting) ------------------------------------------------------------------------


def mnet_loss(
    pred_alpha: Tensor,
    gt_alpha: Tensor,
    image: Tensor,
    foreground: Tensor,
    background: Tensor,
    trimap: Tensor,
    *,
    eps: float = 1e-6,
) -> Tensor:
    """SHM's prediction loss ``0.5 * alpha_loss + 0.5 * compositional_loss`` over the unknown region.

    ``alpha_loss`` averages ``sqrt((pred_alpha - gt_alpha)^2 + eps^2)`` over unknown pixels;
    ``compositional_loss`` averages ``sqrt((c - image)^2 + eps^2)`` over unknown pixels and the three colour
    channels, where ``c = pred_alpha * foreground + (1 - pred_alpha) * background`` and ``image`` is the
    composite with the true alpha. The minimum is ``eps`` (perfect alpha of an exact composite); a batch
    without unknown pixels gives 0.

    Shape:
        pred_alpha, gt_alpha, trimap: (N, 1, H, W); image, foreground, background: (N, 3, H, W) in [0, 1];
        returns a scalar.
    """
    _expect_map("gt_alpha", gt_alpha, 1)
    _expect_map("pred_alpha", pred_alpha, 1, like=gt_alpha)
    _expect_map("trimap", trimap, 1, like=gt_alpha, kind="float or uint8")
    for name, tensor in (("image", image), ("foreground", foreground), ("background", background)):
        _expect_map(name, tensor, 3, like=gt_alpha)
    unknown = unknown_region(trimap)
    count = unknown.sum()

    alpha_error = torch.sqrt((pred_alpha - gt_alpha) ** 2 + eps**2)
    alpha_loss = (alpha_error * unknown).sum() / count.clamp_min(1.0)
    composite = pred_alpha * foreground + (1.0 - pred_alpha) * background
    composite_error = torch.sqrt((composite - image) ** 2 + eps**2)
    compositional_loss = (composite_error * unknown).sum() / (3.0 * count).clamp_min(1.0)
    return 0.5 * alpha_loss + 0.5 * compositional_loss
