"""Trimaps from a coarse alpha: definite foreground, definite background, and an unknown band to refine.

    >>> from cutout.refine.trimap import trimap_from_alpha, unknown_box
    >>> trimap = trimap_from_alpha(alpha)     # doctest: +SKIP
    >>> unknown_box(trimap)                   # (top, bottom, left, right), or None   # doctest: +SKIP

Morphology uses a square (2 r + 1) x (2 r + 1) structuring element and costs O(pixels) for any radius: the number
of set pixels in every window comes from cumulative sums along each axis (a summed-area table, one axis at a time).
"""

from __future__ import annotations

import math

import numpy as np

#: Half-width of the unknown band as a share of sqrt(height * width): 0.008 gives 14 px on a 3-megapixel photo.
BAND_FRACTION = 0.008
#: The band is never narrower than this many pixels on each side of the edge.
MIN_BAND_RADIUS = 2
#: Alpha at or below LOW counts as background and at or above HIGH as foreground; anything between is unknown.
LOW, HIGH = 25, 230
#: Trimap values.
BACKGROUND, UNKNOWN, FOREGROUND = 0, 128, 255


def band_radius(height: int, width: int) -> int:
    """Half-width in pixels of the unknown band for an image of this size (BAND_FRACTION, at least MIN_BAND_RADIUS)."""
    return max(MIN_BAND_RADIUS, round(BAND_FRACTION * math.sqrt(height * width)))


def window_sum(values: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the (2 radius + 1)^2 window around each pixel, over the pixels of the window inside the image.

    Booleans are counted in int32; anything else is accumulated in float64 (so that differences of large running
    sums stay exact enough) and returned as float32. Columns are summed like rows, on the transposed array: numpy
    adds whole rows quickly but runs slowly along them or down strided columns.

    Shape: (..., H, W) -> (..., H, W).
    """
    accumulate = np.int32 if values.dtype == np.bool_ else np.float64
    down = _window_sum_down(values, radius, accumulate)
    across = _window_sum_down(np.ascontiguousarray(np.swapaxes(down, -1, -2)), radius, accumulate)
    return np.ascontiguousarray(np.swapaxes(across, -1, -2), None if accumulate is np.int32 else np.float32)


def _window_sum_down(values: np.ndarray, radius: int, accumulate: type) -> np.ndarray:
    """Sum over rows [i - radius, i + radius] (clipped to the array) as a difference of two running sums of rows.

    Shape: (..., N, W) -> (..., N, W) of dtype accumulate.
    """
    size = values.shape[-2]
    running = np.empty((*values.shape[:-2], size + 1, values.shape[-1]), accumulate)
    running[..., 0, :] = 0  # running[..., i, :] is the sum of the rows above row i
    for row in range(size):
        np.add(running[..., row, :], values[..., row, :], out=running[..., row + 1, :])
    index = np.arange(size)
    upper = np.minimum(index + radius + 1, size)
    lower = np.maximum(index - radius, 0)
    return np.take(running, upper, axis=-2) - np.take(running, lower, axis=-2)


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """True where the whole (2 radius + 1)^2 square around the pixel is True.

    Pixels outside the image count as True, so the image border itself does not erode the mask.

    Shape: (H, W) bool -> (H, W) bool.
    """
    return window_sum(~mask, radius) == 0


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """True where any pixel of the (2 radius + 1)^2 square around the pixel is True (outside pixels count as False).

    Shape: (H, W) bool -> (H, W) bool.
    """
    return window_sum(mask, radius) > 0


def trimap_from_alpha(alpha: np.ndarray, radius: int | None = None, low: int = LOW, high: int = HIGH) -> np.ndarray:
    """Foreground (255) where alpha >= high for radius pixels around, background (0) where alpha <= low for radius
    pixels around, unknown (128) elsewhere.

    So every soft pixel (low < alpha < high) is unknown, and so is a band of +-radius pixels (square neighbourhood)
    around every edge between foreground and background.

    Args:
        alpha: The coarse alpha.
        radius: Half-width of the band; None uses ``band_radius`` of the image size.
        low: Highest alpha that counts as background.
        high: Lowest alpha that counts as foreground.

    Shape: (H, W) uint8 -> (H, W) uint8 with values 0, 128 and 255 only.
    """
    if alpha.ndim != 2 or alpha.dtype != np.uint8:
        raise ValueError(f"trimap_from_alpha needs an (H, W) uint8 alpha, got shape {alpha.shape} and {alpha.dtype}")
    if radius is None:
        radius = band_radius(*alpha.shape)
    trimap = np.full(alpha.shape, UNKNOWN, np.uint8)
    trimap[erode(alpha >= high, radius)] = FOREGROUND
    trimap[~dilate(alpha > low, radius)] = BACKGROUND
    return trimap


def unknown_box(trimap: np.ndarray) -> tuple[int, int, int, int] | None:
    """The smallest box holding every unknown pixel, as slice bounds (top, bottom, left, right); None if there is none.

    ``trimap[top:bottom, left:right]`` is the box (bottom and right are exclusive).

    Shape: trimap (H, W) uint8.
    """
    unknown = trimap == UNKNOWN
    rows = np.flatnonzero(unknown.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(unknown.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
