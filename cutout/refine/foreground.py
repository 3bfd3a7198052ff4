"""Foreground colours for soft edges (Blur-Fusion), so a cutout shows no halo of the old background.

    >>> from cutout.refine.foreground import estimate_foreground
    >>> foreground = estimate_foreground(image, alpha)      # doctest: +SKIP

Where alpha is between 0 and 1 the photo mixes the subject with the old background, I = a F + (1 - a) B; saved as
RGBA (or pasted on a new background) such a pixel keeps the old background's colour, a visible fringe. Blur-Fusion
(Forte & Pitie 2021, "Approximate Fast Foreground Colour Estimation", ICIP) estimates F from local means:

    F_blur = blur(F a) / blur(a)    B_blur = blur(B (1 - a)) / blur(1 - a)
    F_hat  = F_blur + a (I - a F_blur - (1 - a) B_blur)

applied twice ("x2", as in the authors' code): with a large box and F = B = I, then with a small box, F the first
pass's F_hat (clipped to 0..255) and B its B_blur. The paper's sizes are 90 and 6 for images of about a megapixel;
here they are radii that grow with the image's diagonal: 90 s and 6 s, s = sqrt(height * width / 1e6), at least 1
(on the 18 matting test images these do better than windows of 90 and 6, and larger ones do better still). Means
count only pixels inside the image.

The cost follows the soft band, not the image. The large blur runs on a grid of cells ``factor`` pixels wide (a
power of 2 up to a quarter of the radius, at most 32; each cell the mean of 2 x 2 samples) and is interpolated
bilinearly; everything else runs only on the tiles (8 to 32 pixels wide) that hold soft pixels, read with the small
radius as margin. On one shared core: 3 ms for 640 x 480 and 25 ms for 2000 x 1500 with 2 % of the pixels soft,
about 400 ns per soft pixel in general; an alpha that is soft everywhere, as a network's raw output can be, costs
about 150 ms a megapixel.
"""

from __future__ import annotations

import functools

import numpy as np

_LARGE_RADIUS, _SMALL_RADIUS = 90.0, 6.0  # at one megapixel
_COARSE_RADIUS = 4  # the large blur's radius in coarse cells, at least: smooth enough for bilinear interpolation
_SAMPLES = 2  # samples per coarse cell and axis
_TILES = (8, 32)  # smallest and largest side of the fine pass's tiles: the smallest power of 2 >= 3 small radii
_BATCH_PIXELS = 1 << 17  # tile pixels per batch: bounds the memory for the float temporaries
#: Colours are re-estimated where SOFT_LOW <= alpha <= SOFT_HIGH. Outside, the old background shows by at most
#: 1.2% (or the pixel by at most 1.2%): invisible. A network's raw mask is faintly soft almost everywhere
#: (values 1 or 2 far from the subject); skipping those keeps the cost on the outline (150 -> ~10 ms/MP).
SOFT_LOW, SOFT_HIGH = 3, 252


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The subject's own colours at soft pixels: ``image`` where alpha is 0 or 255, Blur-Fusion x2 elsewhere.

    Returns a new array (the input is never changed); only pixels with SOFT_LOW <= alpha <= SOFT_HIGH differ from
    ``image``.

    Shape: image (H, W, 3) uint8, alpha (H, W) uint8 -> (H, W, 3) uint8.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"estimate_foreground needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if alpha.shape != image.shape[:2] or alpha.dtype != np.uint8:
        raise ValueError(
            f"estimate_foreground needs a uint8 alpha of shape {image.shape[:2]} to match the image, "
            f"got {alpha.shape} {alpha.dtype}"
        )
    image, alpha = np.ascontiguousarray(image), np.ascontiguousarray(alpha)  # flat views for np.take
    out = image.copy()
    large, small = blur_radii(*alpha.shape)
    tile = min(max(1 << (3 * small - 1).bit_length(), _TILES[0]), _TILES[1])
    factor = min(tile, 1 << max(0, (large // _COARSE_RADIUS).bit_length() - 1))  # tiles hold whole cells
    origins = _soft_tiles(alpha, tile)
    if len(origins):
        coarse = _coarse_blurs(image, alpha, max(1, round(large / factor)), factor)
        batch = max(1, _BATCH_PIXELS // (tile + 2 * small) ** 2)
        for start in range(0, len(origins), batch):
            where, colours = _fine_pass(image, alpha, coarse, origins[start : start + batch], factor, tile, small)
            out.reshape(-1, 3)[where] = colours
    return out


def blur_radii(height: int, width: int) -> tuple[int, int]:
    """Radii of Blur-Fusion's large and small box blurs for an image of this size: 90 s and 6 s, s = sqrt(MP)."""
    scale = np.sqrt(height * width / 1e6)
    return max(1, round(_LARGE_RADIUS * scale)), max(1, round(_SMALL_RADIUS * scale))


def _soft_tiles(alpha: np.ndarray, tile: int) -> np.ndarray:
    """Top-left corners of the ``tile`` x ``tile`` squares that hold a soft pixel (SOFT_LOW <= alpha <= SOFT_HIGH).

    Shape: (H, W) uint8 -> (N, 2) int64.
    """
    soft = (alpha - np.uint8(SOFT_LOW)) <= SOFT_HIGH - SOFT_LOW  # below SOFT_LOW wraps round to large values
    return np.argwhere(_any_per_block(_any_per_block(soft, tile).T, tile).T) * tile


def _any_per_block(mask: np.ndarray, size: int) -> np.ndarray:
    """Whether each run of ``size`` rows (the last one may be shorter) has a True, column by column.

    Shape: (H, W) bool -> (ceil(H / size), W) bool.
    """
    whole = len(mask) // size * size
    blocks = np.logical_or.reduce(mask[:whole].reshape(-1, size, mask.shape[1]), axis=1)
    if whole == len(mask):
        return blocks
    return np.concatenate([blocks, np.logical_or.reduce(mask[whole:], axis=0, keepdims=True)])


def _coarse_blurs(image: np.ndarray, alpha: np.ndarray, radius: int, factor: int) -> np.ndarray:
    """The first pass's F_blur and B_blur (F = B = I) on cells of ``factor`` x ``factor`` pixels, in 0..255.

    A cell holds 2 x 2 samples spread over it (fewer in a cut-off last row or column of cells, all its pixels where
    ``factor`` is 1); the blurs are ratios of box sums over samples, so cells outside the image count for nothing.

    Shape: (H, W, 3) uint8, (H, W) uint8 -> (ceil(H / factor), ceil(W / factor), 6) float32: F_blur, B_blur.
    """
    samples = min(factor, _SAMPLES)
    offsets = (2 * np.arange(samples) + 1) * factor // (2 * samples)  # centred in the cell
    height, width = alpha.shape
    rows, cols = [np.minimum(offsets, size - 1) for size in (height, width)]
    shape = (-(-height // factor), -(-width // factor))
    level_sum = np.zeros(shape, np.uint32)
    colour_sum, product_sum = np.zeros((*shape, 3), np.uint32), np.zeros((*shape, 3), np.uint32)
    for row in rows:
        for col in cols:
            colour, level = image[row::factor, col::factor], alpha[row::factor, col::factor]
            cells = (slice(len(level)), slice(level.shape[1]))
            level_sum[cells] += level
            colour_sum[cells] += colour
            product_sum[cells] += colour * level[..., None].astype(np.uint16)
    fields = np.concatenate([level_sum[..., None], colour_sum, product_sum], axis=2, dtype=np.float64)
    blurred = _box_sum(_box_sum(fields, radius, 0), radius, 1)  # exact: integers below 2 ** 53
    counts = [_box_sum(_samples_per_cell(offsets, size, factor), radius, 0) for size in (height, width)]
    blurred_count = np.multiply.outer(*counts)[..., None] * 255
    blurred_alpha, blurred_i, blurred_fa = blurred[..., :1], blurred[..., 1:4], blurred[..., 4:]
    f_blur = _ratio(blurred_fa, blurred_alpha)
    b_blur = _ratio(blurred_i * 255 - blurred_fa, blurred_count - blurred_alpha)
    return np.concatenate([f_blur, b_blur], axis=2).astype(np.float32)


def _samples_per_cell(offsets: np.ndarray, size: int, factor: int) -> np.ndarray:
    """How many of the sample offsets (clamped to the image) fall in each cell along an axis of ``size`` pixels.

    Shape: (S,) -> (ceil(size / factor),) float64.
    """
    positions = np.minimum(offsets, size - 1)[:, None] + np.arange(0, size, factor)
    return (positions < size).sum(axis=0, dtype=np.float64)


def _fine_pass(
    image: np.ndarray, alpha: np.ndarray, coarse: np.ndarray, origins: np.ndarray, factor: int, tile: int, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """Blur-Fusion's second, small pass (after the first one's F_hat) on the soft pixels of some tiles.

    Each ``tile`` x ``tile`` square (a multiple of ``factor``) is read with a margin of ``radius`` pixels, weight 0
    outside the image, so its box sums are exact.

    Shape: image (H, W, 3) uint8 C-contiguous, origins (N, 2) -> flat pixel indices (P,), colours (P, 3) uint8 of
    the P soft pixels in the tiles.
    """
    span = tile + 2 * radius
    index, inside = _window_indices(origins, span, radius, alpha.shape)
    colour = np.take(image.reshape(-1, 3), index, axis=0).transpose(0, 3, 1, 2).astype(np.float32)
    fields = np.empty((len(origins), 8, span, span), np.float32)  # what the small pass blurs
    weight, weighted_f, background, weighted_b = fields[:, :1], fields[:, 1:4], fields[:, 4:5], fields[:, 5:]
    np.multiply(np.take(alpha.reshape(-1), index)[:, None], inside * np.float32(1 / 255), out=weight)
    np.subtract(inside, weight, out=background)
    blurs = _upsample(coarse, origins, factor, span, radius)
    np.multiply(blurs[:, 3:], background, out=weighted_b)
    f_hat = _fuse(colour, weight, blurs[:, :3], weighted_b)
    np.multiply(np.clip(f_hat, 0, 255, out=f_hat), weight, out=weighted_f)
    window = _box_matrix(tile, radius)
    sums = window @ fields @ window.T
    core = (slice(None), slice(None), slice(radius, radius + tile), slice(radius, radius + tile))
    colour, weight, index = colour[core], weight[core][:, 0], index[core[:1] + core[2:]]
    tiles, y, x = np.nonzero((weight >= SOFT_LOW / 255 - 1e-6) & (weight <= SOFT_HIGH / 255 + 1e-6))
    sums, weight = sums[tiles, :, y, x], weight[tiles, y, x, None]  # sums of weights > 0 at soft pixels
    f_blur, b_blur = sums[:, 1:4] / sums[:, :1], sums[:, 5:] / sums[:, 4:5]
    estimate = _fuse(colour[tiles, :, y, x], weight, f_blur, b_blur * (1 - weight))
    return index[tiles, y, x], np.rint(np.clip(estimate, 0, 255, out=estimate)).astype(np.uint8)


def _fuse(image: np.ndarray, alpha: np.ndarray, f_blur: np.ndarray, weighted_b: np.ndarray) -> np.ndarray:
    """Blur-Fusion's estimate F_blur + alpha (I - alpha F_blur - (1 - alpha) B_blur), given (1 - alpha) B_blur.

    It is F_blur corrected by alpha times what the local means leave unexplained in the image.
    """
    out = alpha * f_blur
    np.subtract(image, out, out=out)
    out -= weighted_b
    out *= alpha
    out += f_blur
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (a window without weight, whose value goes unused)."""
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape), numerator.dtype)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _window_indices(
    origins: np.ndarray, span: int, margin: int, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices of each tile's window (clamped into the image) and whether each pixel is inside it.

    Shape: origins (N, 2) -> (N, span, span) int64, (N, 1, span, span) bool.
    """
    height, width = shape
    rows, cols = (origins[:, axis, None] - margin + np.arange(span) for axis in (0, 1))
    index = np.clip(rows, 0, height - 1)[:, :, None] * width + np.clip(cols, 0, width - 1)[:, None, :]
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    return index, inside[:, None]


def _upsample(coarse: np.ndarray, origins: np.ndarray, factor: int, span: int, margin: int) -> np.ndarray:
    """Bilinear interpolation of the coarse fields on each tile's window, edges clamped.

    Tiles start on cell boundaries, so every window sits the same way on the coarse grid and one interpolation
    matrix M serves all of them: window = M @ patch @ M.T.

    Shape: coarse (h, w, C), origins (N, 2) -> (N, C, span, span) float32.
    """
    matrix, first = _interpolation_matrix(span, margin, factor)
    size = matrix.shape[1]
    padded = np.pad(coarse, ((-first, size), (-first, size), (0, 0)), mode="edge")
    rows, cols = (origins[:, axis, None] // factor + np.arange(size) for axis in (0, 1))
    patches = padded[rows[:, :, None], cols[:, None, :]].transpose(0, 3, 1, 2)
    return matrix @ patches @ matrix.T


@functools.lru_cache(maxsize=16)
def _interpolation_matrix(span: int, margin: int, factor: int) -> tuple[np.ndarray, int]:
    """Bilinear weights from cells to the pixels of a window, and the first cell it uses relative to the tile's.

    Pixel p of a window of a tile starting at cell c sits at cell coordinate c + (p - margin + 0.5) / factor - 0.5.

    Shape: -> (span, K) float32, K the number of cells the window touches.
    """
    position = (np.arange(span) - margin + 0.5) / factor - 0.5
    first = int(np.floor(position[0]))
    position -= first
    lower = np.floor(position).astype(np.int64)
    matrix = np.zeros((span, int(lower[-1]) + 2), np.float32)
    matrix[np.arange(span), lower] = 1 - (position - lower)
    matrix[np.arange(span), lower + 1] = position - lower
    return matrix, first


@functools.lru_cache(maxsize=16)
def _box_matrix(tile: int, radius: int) -> np.ndarray:
    """Box sums of radius ``radius`` at a tile's pixels from its window as a matrix product (fastest in numpy).

    Shape: -> (tile, tile + 2 radius) float32 of 0 and 1.
    """
    offsets = np.arange(tile + 2 * radius) - np.arange(tile)[:, None]
    return ((offsets >= 0) & (offsets <= 2 * radius)).astype(np.float32)


def _box_sum(values: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Sums over windows of 2 radius + 1 along ``axis``, of what lies inside the array.

    Shape: any -> the same.
    """
    values = np.moveaxis(values, axis, 0)
    size = len(values)
    totals = np.zeros((size + 2 * radius + 1, *values.shape[1:]), values.dtype)
    np.cumsum(values, axis=0, out=totals[radius + 1 : radius + 1 + size])
    totals[radius + 1 + size :] = totals[radius + size]
    return np.moveaxis(totals[2 * radius + 1 :] - totals[:size], 0, axis)
