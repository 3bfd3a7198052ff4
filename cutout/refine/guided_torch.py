"""The fast guided filter in torch, on any device, with exactly the definitions of ``cutout.refine.guided``.

    >>> from cutout.refine.guided_torch import fast_guided_filter_torch
    >>> alpha = fast_guided_filter_torch(image, alpha, radius=28, eps=1e-3, scale=5)   # doctest: +SKIP

Block-mean subsampling with replicate padding, window means normalised by the in-image count (``avg_pool2d`` with
``count_include_pad=False``, one axis at a time), the same closed-form 3 x 3 solve (``solve_coefficients``), and
bilinear upsampling with ``align_corners=False`` to the padded size, cropped. The numpy module's docstring has the
definitions; the two agree to about 1e-6.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cutout.refine.guided import CHANNEL_PAIRS, coarse_radius, refine_settings, solve_coefficients
from cutout.refine.trimap import UNKNOWN, trimap_from_alpha


def box_mean_torch(values: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the (2 radius + 1)^2 window around each pixel, over the window's pixels inside the image.

    Shape: (N, C, H, W) -> (N, C, H, W).
    """
    size = 2 * radius + 1
    across = F.avg_pool2d(values, (1, size), stride=1, padding=(0, radius), count_include_pad=False)
    return F.avg_pool2d(across, (size, 1), stride=1, padding=(radius, 0), count_include_pad=False)


def block_mean_torch(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Mean of each scale x scale block after replicate-padding the bottom and right to a multiple of scale.

    Shape: (N, C, H, W) -> (N, C, ceil(H / scale), ceil(W / scale)).
    """
    height, width = image.shape[-2:]
    padded = F.pad(image, (0, -width % scale, 0, -height % scale), mode="replicate")
    return F.avg_pool2d(padded, scale)


def _mean_coefficients(guide: torch.Tensor, source: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """Window means of a_r, a_g, a_b and b on the grid of the inputs.

    Shape: guide (N, 3, h, w), source (N, 1, h, w) -> (N, 4, h, w).
    """
    channels = list(guide.split(1, dim=1))
    products = [channels[i] * channels[j] for i, j in CHANNEL_PAIRS] + [c * source for c in channels]
    means = list(box_mean_torch(torch.cat([guide, source, *products], dim=1), radius).split(1, dim=1))
    coefficients = solve_coefficients(means[:3], means[3], means[4:10], means[10:], eps)
    return box_mean_torch(torch.cat(coefficients, dim=1), radius)


def fast_guided_filter_torch(
    guide: torch.Tensor, source: torch.Tensor, radius: int, eps: float, scale: int
) -> torch.Tensor:
    """The fast guided filter of ``cutout.refine.guided.fast_guided_filter``, batched.

    Args:
        guide: Colour images on a 0..1 scale.
        source: The images to filter (alpha on a 0..1 scale), on the guide's device and dtype.
        radius: Window half-width in full-resolution pixels.
        eps: Regularisation.
        scale: Subsampling factor (1 is the plain guided filter).

    Shape: guide (N, 3, H, W), source (N, 1, H, W) -> (N, 1, H, W).
    """
    if guide.ndim != 4 or guide.shape[1] != 3 or source.shape != (guide.shape[0], 1, *guide.shape[2:]):
        raise ValueError(
            f"fast_guided_filter_torch needs a guide (N, 3, H, W) and a source (N, 1, H, W), got "
            f"{tuple(guide.shape)} and {tuple(source.shape)}"
        )
    height, width = source.shape[-2:]
    coarse = _mean_coefficients(
        block_mean_torch(guide, scale), block_mean_torch(source, scale), coarse_radius(radius, scale), eps
    )
    size = (coarse.shape[-2] * scale, coarse.shape[-1] * scale)
    full = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)[..., :height, :width]
    return (full[:, :3] * guide).sum(dim=1, keepdim=True) + full[:, 3:]


def refine_alpha_guided_torch(image: np.ndarray, alpha: np.ndarray, device: str | torch.device) -> np.ndarray:
    """``cutout.refine.guided.refine_alpha_guided`` on a torch device (a GPU): the same settings and trimap,
    the filter run over the whole image (cheap on a GPU) and kept in the unknown band only.

    Shape: image (H, W, 3) uint8, alpha (H, W) uint8 -> (H, W) uint8.
    """
    trimap = trimap_from_alpha(alpha)
    unknown = trimap == UNKNOWN
    if not unknown.any():
        return alpha.copy()
    radius, eps, scale = refine_settings(*alpha.shape)
    # torch.tensor copies (into the device's memory): a read-only array (a decoded PIL image) is fine as it is,
    # where torch.from_numpy would warn that it cannot share it
    guide = torch.tensor(image, device=device).permute(2, 0, 1)[None].float() / 255
    source = torch.tensor(alpha, device=device)[None, None].float() / 255
    filtered = fast_guided_filter_torch(guide, source, radius, eps, scale)[0, 0].clamp(0, 1)
    values = torch.round(filtered * 255).to(torch.uint8).cpu().numpy()
    refined = alpha.copy()
    refined[unknown] = values[unknown]
    return refined
