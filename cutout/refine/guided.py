"""He et al.'s colour guided filter and its fast variant (He & Sun 2015), in numpy, to refine alpha along edges.

    >>> from cutout.refine.guided import refine_alpha_guided
    >>> refined = refine_alpha_guided(image, alpha)          # uint8 (H, W, 3) and (H, W) -> (H, W)   # doctest: +SKIP

The guided filter fits, in every (2 r + 1)^2 window, alpha as a linear function of the colour, a . I + b (a
ridge regression with penalty eps), averages the coefficients of all windows covering a pixel and evaluates them
with the pixel's own colour: q = mean_a . I + mean_b. Edges of the image thus become edges of the alpha.

The fast variant computes the coefficients on a grid ``scale`` times coarser and only evaluates them at full
resolution. Both resamplings are defined exactly, and ``cutout.refine.guided_torch`` implements the same ones:

* down: the mean of each scale x scale block, after repeating the last row and column (replicate padding) until
  the size is a multiple of scale, so the coarse grid is (ceil(H / scale), ceil(W / scale));
* up: bilinear with pixel centres at half-integers and clamped edges, i.e. full-resolution pixel x reads coarse
  position clip((x + 0.5) / scale - 0.5, 0, h - 1): torch's ``interpolate(mode="bilinear", align_corners=False)``
  to (h * scale, w * scale), cropped to (H, W).

Window means divide by the number of window pixels inside the image (He's ``boxfilter(ones)`` normalisation).
Since only the unknown band of a trimap needs new alpha, ``refine_alpha_guided`` computes the coefficients on the
band's bounding box and evaluates them at the band's pixels only (``evaluate_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cutout.refine.trimap import UNKNOWN, band_radius, trimap_from_alpha, unknown_box, window_sum

#: The filter radius of ``refine_alpha_guided`` in units of the trimap's band radius.
RADIUS_PER_BAND = 3.0
#: Regularisation of ``refine_alpha_guided`` (colours and alpha on a 0..1 scale): lower follows colour edges more.
EPS = 1e-4  # tuned on ../shared/eval/matting (tests/benchmarks/eval_refine.py): 1e-3 and 1e-2 did worse
#: ``refine_alpha_guided`` subsamples so that the coarse grid's long side is about this many pixels.
COARSE_LONG_SIDE = 384
#: Band pixels evaluated at once by ``refine_alpha_guided``.
_EVALUATE_BATCH = 1 << 17
#: The pairs of guide channels whose products the covariance needs: rr, rg, rb, gg, gb, bb.
CHANNEL_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2 radius + 1)^2 window around each pixel, over the window's pixels inside the image.

    Shape: (..., H, W) float32 -> (..., H, W) float32.
    """
    height, width = values.shape[-2:]
    counts = np.outer(_window_counts(height, radius), _window_counts(width, radius))
    return window_sum(values, radius) / counts


def _window_counts(size: int, radius: int) -> np.ndarray:
    """How many of the 2 radius + 1 positions around each index fall inside [0, size). Shape: () -> (size,)."""
    index = np.arange(size)
    return (np.minimum(index + radius, size - 1) - np.maximum(index - radius, 0) + 1).astype(np.float32)


def solve_coefficients(
    mean_i: Sequence[Any], mean_p: Any, mean_ii: Sequence[Any], mean_ip: Sequence[Any], eps: float
) -> tuple[Any, Any, Any, Any]:
    """The per-window coefficients a (3) and b from window means, for numpy arrays and torch tensors alike.

    a = (Sigma + eps U)^-1 cov(I, p) with the 3 x 3 symmetric system solved in closed form (adjugate over
    determinant), b = mean_p - a . mean_i.

    Args:
        mean_i: Means of the guide's 3 channels.
        mean_p: Mean of the source.
        mean_ii: Means of the channel products in CHANNEL_PAIRS order.
        mean_ip: Means of each guide channel times the source.
        eps: Regularisation added to the diagonal of the covariance.

    Returns:
        a_r, a_g, a_b, b, each shaped like ``mean_p``.
    """
    rr, rg, rb, gg, gb, bb = (m - mean_i[i] * mean_i[j] for m, (i, j) in zip(mean_ii, CHANNEL_PAIRS, strict=True))
    rr, gg, bb = rr + eps, gg + eps, bb + eps
    cr, cg, cb = (m - mi * mean_p for m, mi in zip(mean_ip, mean_i, strict=True))
    inv_rr, inv_rg, inv_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    inv_gg, inv_gb, inv_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
    det = rr * inv_rr + rg * inv_rg + rb * inv_rb
    a_r = (inv_rr * cr + inv_rg * cg + inv_rb * cb) / det
    a_g = (inv_rg * cr + inv_gg * cg + inv_gb * cb) / det
    a_b = (inv_rb * cr + inv_gb * cg + inv_bb * cb) / det
    return a_r, a_g, a_b, mean_p - a_r * mean_i[0] - a_g * mean_i[1] - a_b * mean_i[2]


def _mean_coefficients(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Window means of a_r, a_g, a_b and b on the grid of the inputs.

    Shape: guide (h, w, 3), source (h, w) -> (4, h, w) float32.
    """
    channels = list(np.moveaxis(guide, -1, 0))
    products = [channels[i] * channels[j] for i, j in CHANNEL_PAIRS] + [c * source for c in channels]
    means = list(box_mean(np.stack([*channels, source, *products]), radius))
    coefficients = solve_coefficients(means[:3], means[3], means[4:10], means[10:], eps)
    return box_mean(np.stack(coefficients), radius)


def _check_inputs(guide: np.ndarray, source: np.ndarray) -> None:
    if guide.ndim != 3 or guide.shape[2] != 3 or source.shape != guide.shape[:2]:
        raise ValueError(
            f"the guided filter needs a guide (H, W, 3) and a source (H, W), got {guide.shape} and {source.shape}"
        )


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """The colour guided filter at full resolution: the reference for the fast variant.

    Args:
        guide: Colour image on a 0..1 scale.
        source: The image to filter (alpha on a 0..1 scale).
        radius: Window half-width in pixels.
        eps: Regularisation: larger values smooth more, smaller ones follow the guide's edges more.

    Shape: guide (H, W, 3) float32, source (H, W) float32 -> (H, W) float32.
    """
    _check_inputs(guide, source)
    mean_a_r, mean_a_g, mean_a_b, mean_b = _mean_coefficients(guide, source, radius, eps)
    return mean_a_r * guide[..., 0] + mean_a_g * guide[..., 1] + mean_a_b * guide[..., 2] + mean_b


def coarse_radius(radius: int, scale: int) -> int:
    """The window half-width on the grid subsampled by scale for a full-resolution radius (at least 1)."""
    return max(1, round(radius / scale))


def block_mean(image: np.ndarray, scale: int) -> np.ndarray:
    """Mean of each scale x scale block after replicate-padding the bottom and right to a multiple of scale.

    Shape: (H, W, ...) -> (ceil(H / scale), ceil(W / scale), ...) float32.
    """
    height, width = image.shape[:2]
    if height % scale or width % scale:
        padding = [(0, -height % scale), (0, -width % scale)] + [(0, 0)] * (image.ndim - 2)
        image = np.pad(image, padding, mode="edge")
    rows = image[0::scale].astype(np.float32)  # strided slices: much faster than a reduction over a reshape
    for offset in range(1, scale):
        rows += image[offset::scale]
    blocks = rows[:, 0::scale].copy()
    for offset in range(1, scale):
        blocks += rows[:, offset::scale]
    return blocks / np.float32(scale * scale)


def guided_coefficients(
    guide: np.ndarray, source: np.ndarray, radius: int, eps: float, scale: int
) -> tuple[np.ndarray, np.ndarray]:
    """The fast guided filter's averaged coefficients on the coarse grid, to evaluate with ``evaluate_at``.

    Args:
        guide: Colour image on a 0..1 scale.
        source: The image to filter.
        radius: Window half-width in full-resolution pixels (``coarse_radius`` on the coarse grid).
        eps: Regularisation.
        scale: Subsampling factor (1 is the plain guided filter).

    Returns:
        mean_a (h, w, 3) and mean_b (h, w) with (h, w) = (ceil(H / scale), ceil(W / scale)).

    Shape: guide (H, W, 3) float32, source (H, W) float32.
    """
    _check_inputs(guide, source)
    coarse = _mean_coefficients(block_mean(guide, scale), block_mean(source, scale), coarse_radius(radius, scale), eps)
    return np.moveaxis(coarse[:3], 0, -1), coarse[3]


def _bilinear_taps(positions: np.ndarray, scale: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The coarse indices before and after each full-resolution position, and the weight of the one after.

    Shape: (P,) int -> (P,) intp, (P,) intp, (P,) float32.
    """
    coarse = np.clip((positions.astype(np.float32) + 0.5) / scale - 0.5, 0, size - 1)
    before = coarse.astype(np.intp)  # the floor, as coarse >= 0
    return before, np.minimum(before + 1, size - 1), coarse - before


def _lerp(start: np.ndarray, end: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """start + (end - start) * weight, reusing the temporary (these arrays can be full-resolution)."""
    out = end - start
    out *= weight
    out += start
    return out


def _upsample(coarse: np.ndarray, scale: int, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling as defined in the module docstring, along rows first (on the coarse rows, where it is
    cheap), then down the columns (gathering whole rows, which is fast).

    Shape: (C, h, w) -> (C, H, W).
    """
    left, right, weight = _bilinear_taps(np.arange(width), scale, coarse.shape[-1])
    across = _lerp(coarse[..., left], coarse[..., right], weight)
    above, below, weight = _bilinear_taps(np.arange(height), scale, coarse.shape[-2])
    return _lerp(np.take(across, above, axis=-2), np.take(across, below, axis=-2), weight[:, None])


def fast_guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float, scale: int) -> np.ndarray:
    """The fast guided filter: coefficients on a grid subsampled by scale, evaluated with the full-resolution guide.

    Args: as for ``guided_coefficients``.

    Shape: guide (H, W, 3) float32, source (H, W) float32 -> (H, W) float32.
    """
    mean_a, mean_b = guided_coefficients(guide, source, radius, eps, scale)
    a_r, a_g, a_b, b = _upsample(np.concatenate([np.moveaxis(mean_a, -1, 0), mean_b[None]]), scale, *source.shape)
    return a_r * guide[..., 0] + a_g * guide[..., 1] + a_b * guide[..., 2] + b


def evaluate_at(
    mean_a: np.ndarray,
    mean_b: np.ndarray,
    guide: np.ndarray,
    scale: int,
    rows: np.ndarray,
    cols: np.ndarray,
    unit: float = 1.0,
) -> np.ndarray:
    """The fast guided filter's output at the given full-resolution pixels only (the same numbers as at full size).

    ``unit``: what one step of ``guide`` is worth (1 / 255 for an 8-bit guide, read as 0..1).

    Shape: mean_a (h, w, 3), mean_b (h, w), guide (H, W, 3), rows and cols (P,) int -> (P,) float32.
    """
    coarse = np.dstack([mean_a, mean_b])
    above, below, row_weight = _bilinear_taps(rows, scale, coarse.shape[0])
    left, right, col_weight = _bilinear_taps(cols, scale, coarse.shape[1])
    upper = _lerp(coarse[above, left], coarse[above, right], col_weight[:, None])
    lower = _lerp(coarse[below, left], coarse[below, right], col_weight[:, None])
    a_r, a_g, a_b, b = _lerp(upper, lower, row_weight[:, None]).T
    colours = guide[rows, cols].astype(np.float32) * np.float32(unit)
    return a_r * colours[:, 0] + a_g * colours[:, 1] + a_b * colours[:, 2] + b


def refine_settings(height: int, width: int) -> tuple[int, float, int]:
    """``refine_alpha_guided``'s radius (full-resolution pixels), eps and scale for an image of this size."""
    radius = round(RADIUS_PER_BAND * band_radius(height, width))
    return radius, EPS, max(1, round(max(height, width) / COARSE_LONG_SIDE))


def _working_box(
    box: tuple[int, int, int, int], margin: int, scale: int, height: int, width: int
) -> tuple[int, int, int, int]:
    """The box grown by margin and clipped to the image, its top-left corner on the image's scale x scale grid.

    On the grid, the coarse blocks are the whole image's, so the result inside the box is the whole image's.
    """
    top, bottom, left, right = box
    top, left = max(0, top - margin) // scale * scale, max(0, left - margin) // scale * scale
    return top, min(height, bottom + margin), left, min(width, right + margin)


def _check_refine_inputs(image: np.ndarray, alpha: np.ndarray, trimap: np.ndarray | None) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or alpha.shape != image.shape[:2] or alpha.dtype != np.uint8:
        raise ValueError(
            f"refine_alpha_guided needs an (H, W, 3) image and an (H, W) uint8 alpha, got shapes "
            f"{image.shape} and {alpha.shape}, alpha dtype {alpha.dtype}"
        )
    if trimap is not None and trimap.shape != alpha.shape:
        raise ValueError(f"the trimap must have the alpha's shape {alpha.shape}, got {trimap.shape}")


def refine_alpha_guided(image: np.ndarray, alpha: np.ndarray, trimap: np.ndarray | None = None) -> np.ndarray:
    """Alpha whose unknown band follows the image's edges: the fast guided filter of alpha guided by the colours.

    Pixels outside the trimap's unknown band keep their alpha. Inside it, the result is the fast guided filter of
    the whole image (settings from ``refine_settings``), but computed only on the band's bounding box plus the
    filter's reach and evaluated only at the band's pixels, so the cost follows the length of the boundary.

    Args:
        image: The RGB image.
        alpha: The coarse alpha.
        trimap: 0 / 128 / 255 trimap; None derives it with ``trimap_from_alpha``.

    Shape: image (H, W, 3) uint8, alpha (H, W) uint8, trimap (H, W) uint8 -> (H, W) uint8.
    """
    _check_refine_inputs(image, alpha, trimap)
    trimap = trimap_from_alpha(alpha) if trimap is None else trimap
    box = unknown_box(trimap)
    if box is None:
        return alpha.copy()
    height, width = alpha.shape
    radius, eps, scale = refine_settings(height, width)
    margin = (2 * coarse_radius(radius, scale) + 2) * scale  # reach of box means of a, b and of the bilinear taps
    top, bottom, left, right = _working_box(box, margin, scale, height, width)
    # guided_coefficients and evaluate_at without a float copy of the box (~190 MB at 12 megapixels): its block
    # means come from the 8-bit pixels (linear: the same numbers up to float rounding), and evaluate_at reads
    # only the band's colours
    guide, source = image[top:bottom, left:right], alpha[top:bottom, left:right]
    inverse = np.float32(1 / 255)
    coarse = _mean_coefficients(
        block_mean(guide, scale) * inverse, block_mean(source, scale) * inverse, coarse_radius(radius, scale), eps
    )
    rows, cols = np.nonzero(trimap[top:bottom, left:right] == UNKNOWN)
    mean_a, mean_b = np.moveaxis(coarse[:3], 0, -1), coarse[3]
    refined = alpha.copy()
    for start in range(0, len(rows), _EVALUATE_BATCH):  # its temporaries are ~100 bytes per pixel
        part = slice(start, start + _EVALUATE_BATCH)
        values = evaluate_at(mean_a, mean_b, guide, scale, rows[part], cols[part], 1 / 255)
        refined[rows[part] + top, cols[part] + left] = np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8)
    return refined
