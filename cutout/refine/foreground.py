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

The cost follows the soft band, not the image. The large blur runs on a grid of square cells (at least 4 to the
radius, at most 32 pixels wide below a megapixel; each cell the mean of 2 x 2 samples) and is interpolated
bilinearly; everything else runs only on the tiles (8 to 32 pixels or samples wide) that hold soft pixels, read
with the small radius as margin.

Images over a megapixel sample both passes: they run on every ``step``-th pixel along each axis (sample_step: at
most 0.6 megapixels of samples, step 5 for 12 MP), with the small box 2 n + 1 samples wide, n step about 6 s, and
the large one as wide as unsampled. The second pass's F_blur and B_blur, smooth at that scale, are computed at the
samples of the cells (step x step pixels) that hold soft pixels and interpolated bilinearly; only the last line,
F_hat, runs on every soft pixel, with its own I and a, so the estimate keeps the photo's full detail. Should a
window of samples miss all of the subject (an isolated strand thinner than the step), the first pass's blurs stand
in. On the matting test images this changes the pasted error by under 1 %, at their own size and enlarged to
12 MP; on a 12 MP photo with u2netp's mask the colours move by 0.4 (of 255) on average from the unsampled estimate.

On one shared core: 3.5 ms for 640 x 480 with 2 % of the pixels soft, 16 ms for 1024 x 768 and 48 ms (unsampled:
300 ms) for 4000 x 3000 with u2netp's mask, 8 % soft; an alpha that is soft everywhere, as a network's raw output
can be, costs about 100 ms at a megapixel and 260 ms at 12 MP.
"""

from __future__ import annotations

import functools

import numpy as np

_LARGE_RADIUS, _SMALL_RADIUS = 90.0, 6.0  # at one megapixel
_COARSE_RADIUS = 4  # the large blur's radius in coarse cells, at least: smooth enough for bilinear interpolation
_SAMPLES = 2  # samples per coarse cell and axis
_TILES = (8, 32)  # smallest and largest side of the fine pass's tiles: the smallest power of 2 >= 3 small radii
_BATCH_PIXELS = 1 << 15  # window samples per batch of the small pass: its float temporaries stay in the cache
_CELL_BATCH_PIXELS = 1 << 15  # pixels per batch of the final estimate on the grid, for the same reason
_FULL_PIXELS, _GRID_PIXELS = 1e6, 6e5  # every pixel up to the first, larger images a grid up to the second
_SMALL_PRODUCT = 1 << 16  # multiply-adds of one matrix product: OpenBLAS runs those up to 4 x 65536 on one thread
_EMPTY = 1e-6  # weight of the large pass's F_blur and B_blur in the small one's: stands in for an empty window
#: Colours are re-estimated where SOFT_LOW <= alpha <= SOFT_HIGH. Outside, the old background shows by at most
#: 1.2% (or the pixel by at most 1.2%): invisible. A network's raw mask is faintly soft almost everywhere
#: (values 1 or 2 far from the subject); skipping those keeps the cost on the outline (150 -> ~10 ms/MP).
SOFT_LOW, SOFT_HIGH = 3, 252


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """The subject's own colours at soft pixels: ``image`` where alpha is 0 or 255, Blur-Fusion x2 elsewhere.

    Only pixels with SOFT_LOW <= alpha <= SOFT_HIGH differ from ``image``. Returns a new array, unless
    ``in_place`` and ``image`` is writable and C-contiguous: then ``image`` itself is changed and returned,
    saving a copy of the photo (36 MB at 12 MP) for an owner that no longer needs its original colours.

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
    out = image if in_place and image.flags.writeable else image.copy()
    height, width = alpha.shape
    step = sample_step(height, width)
    large, radius = blur_radii(height, width)
    small = max(1, round((2 * radius + 1 - step) / (2 * step)))  # in samples: 2 small + 1 of them span ~2 radius + 1
    cells = _soft_blocks(alpha, step)  # step x step pixels, their sample at the top left
    wanted = cells  # the samples whose F_blur and B_blur are needed: those of the cells and the next ones on
    if step > 1:
        wanted = cells.copy()
        wanted[1:] |= cells[:-1]
        wanted[:, 1:] |= wanted[:, :-1].copy()
    tile = _tile_side(small)
    factor = min(tile, 1 << max(0, (large // step // _COARSE_RADIUS).bit_length() - 1))  # tiles hold whole cells
    origins = np.argwhere(_reduce_blocks(wanted, tile, np.logical_or)) * tile
    if not len(origins):
        return out
    coarse_radius = (_large_window(height, width) / (factor * step) - 1) / 2  # in cells, whole if step is 1
    coarse = _coarse_blurs(image, alpha, coarse_radius, factor * step)
    fields = np.zeros((6, wanted.size), np.float32) if step > 1 else None
    batch = max(1, _BATCH_PIXELS // (tile + 2 * small) ** 2)
    estimates = []  # unsampled: written once every window has been read (``out`` may be ``image``)
    for start in range(0, len(origins), batch):
        where, blurs = _fine_pass(
            image, alpha, coarse, origins[start : start + batch], wanted, factor, tile, small, step
        )
        if fields is not None:
            fields[:, where] = blurs
        else:  # samples are pixels
            colour = np.take(image.reshape(-1, 3), where, axis=0)
            estimates.append((where, _estimate(colour, np.take(alpha.reshape(-1), where), blurs)))
    for where, estimate in estimates:
        out.reshape(-1, 3)[where] = estimate
    if fields is not None:  # each cell's pixels are read before they are written: in place is safe
        _fuse_cells(out, image, alpha, fields, cells, step)
    return out


def blur_radii(height: int, width: int) -> tuple[int, int]:
    """Radii of Blur-Fusion's large and small box blurs for an image of this size: 90 s and 6 s, s = sqrt(MP)."""
    scale = np.sqrt(height * width / 1e6)
    return max(1, round(_LARGE_RADIUS * scale)), max(1, round(_SMALL_RADIUS * scale))


def _large_window(height: int, width: int) -> int:
    """The large box's width in pixels: 2 round(L / c) + 1 cells of c pixels, L the large radius.

    c is the largest power of 2 up to L / 4 and up to the side of the tiles at full resolution: the coarse cells of
    an image that is not sampled. Sampled images keep this width (their box has a fractional radius) rather than
    2 L + 1, which it misses by up to a cell: where it is wider, the matting test images do better.
    """
    large, small = blur_radii(height, width)
    cell = min(large // _COARSE_RADIUS, _tile_side(small), _TILES[1])
    cell = 1 << max(0, cell.bit_length() - 1)
    return (2 * max(1, round(large / cell)) + 1) * cell


def _tile_side(radius: int) -> int:
    """Side of the fine pass's tiles for a small radius: the smallest power of 2 >= 3 radii, 8 to 32."""
    return min(max(1 << (3 * radius - 1).bit_length(), _TILES[0]), _TILES[1])


def sample_step(height: int, width: int) -> int:
    """Every how many pixels (along each axis) the two passes sample an image of this size.

    1 up to a megapixel, then the smallest step that leaves at most 0.6 megapixels: 2 up to 2.4 MP, 4 up to 9.6 MP,
    5 for 12 MP.
    """
    if height * width <= _FULL_PIXELS:
        return 1
    return int(np.ceil(np.sqrt(height * width / _GRID_PIXELS)))


def _soft_blocks(alpha: np.ndarray, size: int) -> np.ndarray:
    """Whether each ``size`` x ``size`` block (cut off at the bottom and right edges) holds a soft pixel.

    A block does if its smallest alpha - SOFT_LOW (wrapping round below SOFT_LOW) is at most SOFT_HIGH - SOFT_LOW.

    Shape: (H, W) uint8 -> (ceil(H / size), ceil(W / size)) bool.
    """
    return _reduce_blocks(alpha - np.uint8(SOFT_LOW), size, np.minimum) <= SOFT_HIGH - SOFT_LOW


def _reduce_blocks(array: np.ndarray, size: int, combine: np.ufunc) -> np.ndarray:
    """``combine`` (np.logical_or, np.minimum) over each ``size`` x ``size`` block, cut off at the bottom and right.

    Shape: (H, W) -> (ceil(H / size), ceil(W / size)).
    """
    if size == 1:
        return array
    whole = len(array) // size * size
    rows = combine.reduce(array[:whole].reshape(-1, size, array.shape[1]), axis=1)
    if whole < len(array):
        rows = np.concatenate([rows, combine.reduce(array[whole:], axis=0, keepdims=True)])
    blocks = rows[:, ::size].copy()
    for offset in range(1, min(size, rows.shape[1])):  # strided: reducing runs along rows is slow in numpy
        part = rows[:, offset::size]
        combine(blocks[:, : part.shape[1]], part, out=blocks[:, : part.shape[1]])
    return blocks


def _coarse_blurs(image: np.ndarray, alpha: np.ndarray, radius: float, factor: int) -> np.ndarray:
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
    blurred = _box_sum(_box_sum(fields, radius, 0), radius, 1)  # exact for a whole radius: integers below 2 ** 53
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
    image: np.ndarray,
    alpha: np.ndarray,
    coarse: np.ndarray,
    origins: np.ndarray,
    wanted: np.ndarray,
    factor: int,
    tile: int,
    radius: int,
    step: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Blur-Fusion's second, small pass (after the first one's F_hat): its F_blur and B_blur at the wanted samples.

    Works on the grid of samples (pixel (step i, step j) is sample (i, j); ``wanted`` has the grid's shape): each
    ``tile`` x ``tile`` square of samples (a multiple of ``factor``) is read with a margin of ``radius`` samples,
    weight 0 outside the image, so its box sums are exact. Where a window has no weight (possible only if step > 1)
    the blurs are the large pass's.

    Shape: image (H, W, 3) uint8 and alpha (H, W) uint8 C-contiguous, origins (N, 2), wanted (h, w) bool -> flat
    grid indices (P,) of the P wanted samples in the tiles, their F_blur and B_blur (6, P) float32.
    """
    span = tile + 2 * radius
    index, inside = _window_indices(origins, span, radius, wanted.shape, step, alpha.shape[1])
    colour = np.take(image.reshape(-1, 3), index, axis=0).transpose(0, 3, 1, 2).astype(np.float32)
    fields = np.empty((len(origins), 8, span, span), np.float32)  # what the small pass blurs
    weight, weighted_f, background, weighted_b = fields[:, :1], fields[:, 1:4], fields[:, 4:5], fields[:, 5:]
    level = np.take(alpha.reshape(-1), index)[:, None]
    np.multiply(level, inside * np.float32(1 / 255), out=weight)
    np.multiply(255 - level, inside * np.float32(1 / 255), out=background)  # exactly 0 where alpha is 255
    blurs = _upsample(coarse, origins, factor, span, radius, 0.5 / step)
    np.multiply(blurs[:, 3:], background, out=weighted_b)
    f_hat = _fuse(colour, weight, blurs[:, :3], weighted_b)
    np.multiply(np.clip(f_hat, 0, 255, out=f_hat), weight, out=weighted_f)
    window = _box_matrix(tile, radius)
    sums = window @ fields @ window.T
    core = (slice(None), slice(None), slice(radius, radius + tile), slice(radius, radius + tile))
    grid = _core_indices(origins, tile, wanted.shape)
    picked = np.flatnonzero(np.take(wanted.reshape(-1), grid) & inside[core][:, 0])
    sums = np.take(sums.transpose(1, 0, 2, 3).reshape(8, -1), picked, axis=1)
    blurs = np.take(blurs[core].transpose(1, 0, 2, 3).reshape(6, -1), picked, axis=1)
    blurs[:3] = (sums[1:4] + _EMPTY * blurs[:3]) / (sums[:1] + _EMPTY)
    blurs[3:] = (sums[5:] + _EMPTY * blurs[3:]) / (sums[4:5] + _EMPTY)
    return np.take(grid, picked), blurs


def _fuse_cells(
    out: np.ndarray, image: np.ndarray, alpha: np.ndarray, fields: np.ndarray, cells: np.ndarray, step: int
) -> None:
    """Blur-Fusion's estimate at the soft pixels of the cells, F_blur and B_blur interpolated from the samples.

    Cell (i, j) is the ``step`` x ``step`` square of pixels with sample (i, j), pixel (step i, step j), at its top
    left; its pixels interpolate bilinearly between that sample and the next ones down and to the right (clamped to
    the grid). Whole cells are read and written a row of ``step`` pixels at a time (as one record), cells cut off by
    the bottom or right edge pixel by pixel.

    Shape: out, image (H, W, 3) uint8 C-contiguous, alpha (H, W) uint8 C-contiguous, fields (6, h * w) float32
    F_blur and B_blur at least at the samples the cells use, cells (h, w) bool.
    """
    height, width = alpha.shape
    runs = [_runs(array, step) for array in (out, image, alpha)]
    cell_y, cell_x = np.nonzero(cells)
    cut = (cell_y >= height // step) | (cell_x >= width // step)
    batch = max(1, _CELL_BATCH_PIXELS // step**2)
    for is_cut in (False, True):
        group_y, group_x = cell_y[cut == is_cut], cell_x[cut == is_cut]
        for start in range(0, len(group_y), batch):
            y, x = group_y[start : start + batch], group_x[start : start + batch]
            blurs = _interpolate(fields, y, x, cells.shape, step)
            lines = y[:, None] * step + np.arange(step)  # (n, step)
            if not is_cut:
                first = lines * width + x[:, None] * step  # each row's first pixel
                colour = runs[1][first].view(np.uint8).reshape(-1, 3)
                level = runs[2][first].view(np.uint8).reshape(-1)
                estimate = _estimate(colour, level, blurs).reshape(len(y), step, step * 3)
                runs[0][first] = estimate.view(runs[0].dtype)[..., 0]  # not np.put: runs overlap
                continue
            columns = x[:, None] * step + np.arange(step)
            inside = ((lines < height)[:, :, None] & (columns < width)[:, None, :]).reshape(-1)
            pixel = (np.minimum(lines, height - 1) * width)[:, :, None] + np.minimum(columns, width - 1)[:, None, :]
            pixel = pixel.reshape(-1)
            colour, level = np.take(image.reshape(-1, 3), pixel, axis=0), np.take(alpha.reshape(-1), pixel)
            out.reshape(-1, 3)[pixel[inside]] = _estimate(colour, level, blurs)[inside]


def _runs(array: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` pixels from each pixel on (in reading order) of a C-contiguous image, as one record each.

    Records overlap: index them (np.take and np.put would copy them all first), and write none that overlap.

    Shape: (H, W, C) or (H, W) uint8 -> (max(0, H W - length + 1),) void records of ``length`` C bytes.
    """
    channels = array.size // max(1, array.shape[0] * array.shape[1])
    count = max(0, array.size // max(1, channels) - length + 1)
    return np.ndarray((count,), np.dtype((np.void, length * channels)), array, strides=(channels,))


def _interpolate(fields: np.ndarray, y: np.ndarray, x: np.ndarray, grid: tuple[int, ...], step: int) -> np.ndarray:
    """The fields at the pixels of cells (y, x), bilinear between the samples at the cells' corners.

    The matrix products are split so each stays small: BLAS would run a large one on several threads, which is
    far slower on a busy machine than one thread.

    Shape: fields (C, h * w), y and x (n,) -> (C, n * step * step), pixels by cell, row and column.
    """
    below, right = np.minimum(y + 1, grid[0] - 1) * grid[1], np.minimum(x + 1, grid[1] - 1)
    corners = np.take(fields, np.stack([y * grid[1] + x, y * grid[1] + right, below + x, below + right], axis=1), 1)
    weights = _bilinear_weights(step)
    out = np.empty((len(fields), len(y), step * step), np.float32)
    size = max(1, _SMALL_PRODUCT // (4 * step * step))  # cells per product
    whole = len(y) // size * size
    np.matmul(
        corners[:, :whole].reshape(len(fields), -1, size, 4),
        weights,
        out=out[:, :whole].reshape(len(fields), -1, size, step * step),
    )
    np.matmul(corners[:, whole:], weights, out=out[:, whole:])
    return out.reshape(len(fields), -1)


def _estimate(colour: np.ndarray, level: np.ndarray, blurs: np.ndarray) -> np.ndarray:
    """Blur-Fusion's final estimate F_blur + a (I - a F_blur - (1 - a) B_blur) at the soft pixels, I elsewhere.

    Computed as a I + (1 - a^2) F_blur - a (1 - a) B_blur, channel by channel, with the coefficients looked up by
    level (a = 1 at pixels that are not soft gives I exactly). Overwrites ``blurs``.

    Shape: colour I (P, 3) uint8, level (P,) uint8 alpha, blurs (6, P) float32 F_blur and B_blur -> (P, 3) uint8.
    """
    coefficients = np.take(_coefficients(), level, axis=1)
    estimate = colour.T.astype(np.float32, order="C")
    estimate *= coefficients[0]
    estimate += np.multiply(blurs[:3], coefficients[1], out=blurs[:3])
    estimate -= np.multiply(blurs[3:], coefficients[2], out=blurs[3:])
    out = np.empty_like(colour)
    for channel, values in enumerate(_to_uint8(estimate)):  # faster than a transposed copy
        out[:, channel] = values
    return out


@functools.cache
def _coefficients() -> np.ndarray:
    """_estimate's coefficients of I, F_blur and -B_blur for each alpha level: a, 1 - a^2, a (1 - a); 1, 0, 0 where
    the level is not soft.

    Shape: -> (3, 256) float32.
    """
    weight = np.arange(256) / 255
    weight[:SOFT_LOW], weight[SOFT_HIGH + 1 :] = 1, 1
    return np.stack([weight, 1 - weight**2, weight * (1 - weight)]).astype(np.float32)


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


def _to_uint8(colour: np.ndarray) -> np.ndarray:
    """Rounded and clipped to 0..255."""
    return np.rint(np.clip(colour, 0, 255, out=colour)).astype(np.uint8)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator in 0..255, 0 where the denominator is 0 (a window without weight).

    "0" is up to 1e-6: with a fractional radius, a window that is all subject leaves rounding noise for its
    background weight.
    """
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape), numerator.dtype)
    np.divide(numerator, denominator, out=out, where=denominator > 1e-6)
    return np.clip(out, 0, 255, out=out)


def _window_indices(
    origins: np.ndarray, span: int, margin: int, grid: tuple[int, ...], step: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices of each tile's window of samples (clamped into the grid) and whether each is inside it.

    Sample (i, j) of the ``grid`` is pixel (step i, step j) of an image ``width`` pixels wide.

    Shape: origins (N, 2) -> (N, span, span) int64, (N, 1, span, span) bool.
    """
    rows, cols = (origins[:, axis, None] - margin + np.arange(span) for axis in (0, 1))
    index = (np.clip(rows, 0, grid[0] - 1) * (step * width))[:, :, None] + np.clip(cols, 0, grid[1] - 1)[:, None] * step
    inside = ((rows >= 0) & (rows < grid[0]))[:, :, None] & ((cols >= 0) & (cols < grid[1]))[:, None, :]
    return index, inside[:, None]


def _core_indices(origins: np.ndarray, tile: int, grid: tuple[int, ...]) -> np.ndarray:
    """Flat grid indices of each tile's samples, clamped into the grid.

    Shape: origins (N, 2) -> (N, tile, tile) int64.
    """
    rows, cols = (np.minimum(origins[:, axis, None] + np.arange(tile), grid[axis] - 1) for axis in (0, 1))
    return (rows * grid[1])[:, :, None] + cols[:, None, :]


def _upsample(
    coarse: np.ndarray, origins: np.ndarray, factor: int, span: int, margin: int, centre: float
) -> np.ndarray:
    """Bilinear interpolation of the coarse fields on each tile's window, edges clamped.

    Tiles start on cell boundaries, so every window sits the same way on the coarse grid and one interpolation
    matrix M serves all of them: window = M @ patch @ M.T.

    Shape: coarse (h, w, C), origins (N, 2) -> (N, C, span, span) float32.
    """
    matrix, first = _interpolation_matrix(span, margin, factor, centre)
    size = matrix.shape[1]
    padded = np.pad(coarse, ((-first, size), (-first, size), (0, 0)), mode="edge")
    rows, cols = (origins[:, axis, None] // factor + np.arange(size) for axis in (0, 1))
    patches = padded[rows[:, :, None], cols[:, None, :]].transpose(0, 3, 1, 2)
    return matrix @ patches @ matrix.T


@functools.lru_cache(maxsize=16)
def _interpolation_matrix(span: int, margin: int, factor: int, centre: float) -> tuple[np.ndarray, int]:
    """Bilinear weights from cells to the samples of a window, and the first cell it uses relative to the tile's.

    Sample p of a window of a tile starting at cell c sits at cell coordinate c + (p - margin + centre) / factor
    - 0.5: ``centre`` is where its pixel's centre lies in its own cell of the sample grid (0.5 / step).

    Shape: -> (span, K) float32, K the number of cells the window touches.
    """
    position = (np.arange(span) - margin + centre) / factor - 0.5
    first = int(np.floor(position[0]))
    position -= first
    lower = np.floor(position).astype(np.int64)
    matrix = np.zeros((span, int(lower[-1]) + 2), np.float32)
    matrix[np.arange(span), lower] = 1 - (position - lower)
    matrix[np.arange(span), lower + 1] = position - lower
    return matrix, first


@functools.lru_cache(maxsize=16)
def _bilinear_weights(step: int) -> np.ndarray:
    """Weights of a cell's pixels on the samples at its top left, top right, bottom left and bottom right corners.

    Shape: -> (4, step * step) float32, pixels in row-major order.
    """
    fraction = np.arange(step) / step
    y, x = np.repeat(fraction, step), np.tile(fraction, step)
    return np.stack([(1 - y) * (1 - x), (1 - y) * x, y * (1 - x), y * x]).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _box_matrix(tile: int, radius: int) -> np.ndarray:
    """Box sums of radius ``radius`` at a tile's pixels from its window as a matrix product (fastest in numpy).

    Shape: -> (tile, tile + 2 radius) float32 of 0 and 1.
    """
    offsets = np.arange(tile + 2 * radius) - np.arange(tile)[:, None]
    return ((offsets >= 0) & (offsets <= 2 * radius)).astype(np.float32)


def _box_sum(values: np.ndarray, radius: float, axis: int) -> np.ndarray:
    """Sums over windows of 2 radius + 1 along ``axis``, of what lies inside the array.

    A fractional radius n + f counts the two values just beyond the whole n with weight f.

    Shape: any -> the same.
    """
    whole, part = int(radius), radius - int(radius)
    values = np.moveaxis(values, axis, 0)
    size, pad = len(values), whole + (part > 0)
    totals = np.zeros((size + 2 * pad + 1, *values.shape[1:]), values.dtype)
    np.cumsum(values, axis=0, out=totals[pad + 1 : pad + 1 + size])
    totals[pad + 1 + size :] = totals[pad + size]
    sums = totals[pad + whole + 1 : pad + whole + 1 + size] - totals[pad - whole : pad - whole + size]
    if part:
        wider = totals[pad + whole + 2 : pad + whole + 2 + size] - totals[pad - whole - 1 : pad - whole - 1 + size]
        sums += part * (wider - sums)
    return np.moveaxis(sums, 0, axis)
