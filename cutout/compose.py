"""Putting a cut-out subject on something: transparency, a colour, another image, or a blur of the photo itself.

    >>> from cutout.compose import compose, parse_background
    >>> out = compose(rgb, alpha, parse_background("#00ff00"))        # doctest: +SKIP

Everything here is a pure function on uint8 arrays. Opaque results are ``round(fg * a + bg * (1 - a))`` with
``a = alpha / 255``, computed exactly in 16-bit integers, in row blocks that stay in the CPU cache (about 45 ms
for a 4000 x 3000 image over a colour on one core).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageCms, ImageColor, ImageFilter, ImageOps

from cutout.errors import UsageError
from cutout.hdr import HLG, PQ, colour_to_hdr, is_hdr, sdr_to_hdr

BACKGROUND_FORMS = (
    "a colour name (--bg white), hex (--bg '#00ff00' or '#00ff0080'), r,g,b or r,g,b,a from 0 to 255 "
    "(--bg 0,0,0,128), an image file (--bg beach.jpg), or a blur of the photo itself (--bg blur, --bg blur:15)"
)
#: The largest --bg blur:RADIUS, in pixels.
MAX_BLUR_RADIUS = 100_000
_BLOCK_ELEMENTS = 1 << 17  # values per row block: ~256 KiB of uint16 temporaries, which stay in L2
#: Backgrounds scaled to cover a frame, kept for the next photo of the same size, up to this many bytes in all
#: (the latest one is kept whatever its size). A folder of photos from several cameras has many sizes: 40 product
#: photos of 18 sizes take 197 MB, and scaling a 24 MP background again for each photo cost 0.16 s a photo.
COVER_CACHE_BYTES = 256 << 20


@dataclass(frozen=True)
class Background:
    """What goes behind the subject.

    Attributes:
        kind: ``"color"``, ``"image"`` (a file, scaled to cover the frame) or ``"blur"`` (the photo, blurred).
        color: RGBA, 0-255, for ``kind="color"``; an alpha below 255 gives a semi-transparent result.
        path: the image file for ``kind="image"``.
        radius: Gaussian blur radius in pixels for ``kind="blur"``; None scales it to the image (2% of the short
            side, at least 3).
        hdr: the HDR signal of the frames it goes behind, as (transfer, primaries) codes (PQ 16 or HLG 18; BT.2020
            9): the colour's or image's sRGB values are converted into it (:mod:`cutout.hdr`). None: as they are.
        pixel_aspect: the width over the height of a pixel of the frames it goes behind (anamorphic video: 4/3):
            an image covers the frame as it is shown, not squeezed.
        orientation: how the frames it goes behind are shown (a phone's video is stored sideways, with a
            rotation to show it by): counter-clockwise quarter turns, and whether they are flipped upside down
            first (:func:`shown`). An image goes behind them turned back, so it shows upright.
        profile: the ICC profile (RGB) of the photo it goes behind, None for sRGB: a colour (sRGB, as typed) and
            an image (in its own profile, else sRGB) are converted into it, so that a phone's Display P3 photo
            gets the same red as --bg '#ff0000' means, not a more saturated one.
    """

    kind: Literal["color", "image", "blur"]
    color: tuple[int, int, int, int] = (0, 0, 0, 255)
    path: Path | None = None
    radius: float | None = None
    hdr: tuple[int, int] | None = None
    pixel_aspect: Fraction = Fraction(1)
    profile: bytes | None = None
    orientation: tuple[int, bool] = (0, False)

    def __post_init__(self) -> None:
        if self.kind not in ("color", "image", "blur"):
            raise UsageError(f"background kind {self.kind!r} is not one of 'color', 'image', 'blur'")
        if len(self.color) != 4 or not all(isinstance(v, int) and 0 <= v <= 255 for v in self.color):
            raise UsageError(f"background colour {self.color!r} must be 4 whole numbers (r, g, b, a) from 0 to 255")
        if self.kind == "image" and self.path is None:
            raise UsageError("an image background needs a path, e.g. Background('image', path=Path('beach.jpg'))")
        if self.radius is not None and not (math.isfinite(self.radius) and 0 < self.radius <= MAX_BLUR_RADIUS):
            raise UsageError(
                f"blur radius {self.radius!r} must be a positive number of pixels up to {MAX_BLUR_RADIUS}, e.g. 15"
            )
        if self.hdr is not None and not is_hdr(self.hdr[0]):
            raise UsageError(f"hdr {self.hdr!r} must start with an HDR transfer: {PQ} (PQ) or {HLG} (HLG)")

    @property
    def signal_color(self) -> tuple[int, int, int, int]:
        """``color`` in the signal of the frames: as given, or converted into :attr:`hdr`'s."""
        if self.hdr is not None:
            return colour_to_hdr(self.color, *self.hdr)
        if _is_srgb(self.profile):  # also a profile lcms cannot use: the colour as it is
            return self.color
        r, g, b = _converted_colour(self.color[:3], self.profile)
        return r, g, b, self.color[3]

    @property
    def opaque(self) -> bool:
        """True when the result has no transparency left: blur, colours with alpha 255, images without any."""
        if self.kind == "image" and self.path is not None:
            return _source_image(*_cache_key(self.path)).mode == "RGB"
        return self.kind != "color" or self.color[3] == 255


def see_through(background: Background | None) -> str:
    """Why a result over ``background`` would keep transparency, for an error about an opaque format ("" if none)."""
    if background is None:
        return "no --bg given"
    if background.kind == "image" and not background.opaque:
        return f"the --bg image {background.path} has transparency"
    if background.kind == "color" and not background.opaque:
        return f"the --bg colour has alpha {background.color[3]}"
    return ""


def parse_background(text: str) -> Background:
    """A :class:`Background` from what a user types after ``--bg``; :data:`BACKGROUND_FORMS` lists the forms."""
    value = text.strip()
    if not value:
        raise UsageError(f"--bg is empty; give {BACKGROUND_FORMS}")
    if value.lower() == "blur" or value.lower().startswith("blur:"):
        return Background("blur", radius=_parse_radius(value))
    if "," in value and "(" not in value and not Path(value).is_file():  # r,g,b[,a]; CSS rgb(...) goes on
        return Background("color", color=_parse_numbers(value))
    try:
        rgba = ImageColor.getcolor(value, "RGBA")  # names, #rgb, #rgba, #rrggbb, #rrggbbaa, rgb(...), hsl(...)
    except ValueError:
        rgba = None
    if isinstance(rgba, tuple) and len(rgba) == 4:
        return Background("color", color=(rgba[0], rgba[1], rgba[2], rgba[3]))
    path = Path(value).expanduser()
    if path.is_file():
        return image_background(path)
    if path.exists():
        raise UsageError(f"--bg {text!r} is a folder, not an image file; give {BACKGROUND_FORMS}")
    raise UsageError(f"--bg {text!r} is not a colour, an existing image file or blur; give {BACKGROUND_FORMS}")


def image_background(path: Path) -> Background:
    """A background of the image file ``path``, read now: a file that is no image fails here, naming the file,
    rather than on the first cutout.

    Raises:
        UsageError: ``path`` is not a file, or not an image that can be read.
    """
    if not path.is_file():
        raise UsageError(f"background image {path} does not exist (or is not a file)")
    _source_image(*_cache_key(path))
    return Background("image", path=path)


def _parse_radius(text: str) -> float | None:
    if ":" not in text:
        return None
    given = text.split(":", 1)[1]
    try:
        radius = float(given)
    except ValueError:
        radius = math.nan
    if not (math.isfinite(radius) and radius > 0):
        raise UsageError(f"--bg {text!r}: the blur radius must be a positive number of pixels, e.g. --bg blur:15")
    if radius > MAX_BLUR_RADIUS:  # Pillow overflowed on 1e308 ("radius must be >= 0") for every photo
        raise UsageError(
            f"--bg {text!r}: the blur radius is at most {MAX_BLUR_RADIUS} pixels (beyond the photo's size a blur is "
            "its mean colour), e.g. --bg blur:15"
        )
    return radius


def _parse_numbers(text: str) -> tuple[int, int, int, int]:
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (3, 4) or not all(part.isdigit() and int(part) <= 255 for part in parts):
        raise UsageError(f"--bg {text!r}: give 3 or 4 whole numbers from 0 to 255, e.g. --bg 0,0,0 or --bg 0,0,0,128")
    numbers = [int(part) for part in parts] + [255]
    return numbers[0], numbers[1], numbers[2], numbers[3]


def compose(rgb: np.ndarray, alpha: np.ndarray, background: Background | None) -> np.ndarray:
    """The subject (``rgb`` where ``alpha`` is high) over ``background``.

    None gives a straight (not premultiplied) RGBA cutout whose fully transparent pixels are (0, 0, 0, 0): the
    hidden colours carry no information and cost file size (PNG files about halve). An opaque background gives
    RGB; a colour with alpha below 255 gives RGBA by the Porter-Duff "over" operator.

    Shape: rgb (H, W, 3) uint8, alpha (H, W) uint8 -> (H, W, 4) or (H, W, 3) uint8.
    """
    _check_shapes(rgb, alpha)
    height, width = alpha.shape
    if background is None:
        return cutout_rgba(rgb, alpha)
    if background.kind == "color" and not background.opaque:
        color = background.signal_color
        return _over_translucent(rgb, alpha, np.asarray(color[:3], np.uint8), color[3])
    if background.kind == "color":
        bg: np.ndarray = np.asarray(background.signal_color[:3], np.uint8)
    elif background.kind == "blur":
        bg = blurred(rgb, background.radius)
    else:
        bg = _background_layers(background, height, width)
        if bg.shape[2] == 4:  # an image with transparency: the result keeps what shows through both
            return _over_translucent(rgb, alpha, bg[..., :3], bg[..., 3])
    return _over_opaque(rgb, alpha, bg)


def cutout_rgba(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``compose(rgb, alpha, None)`` without its checks: straight RGBA, hidden pixels (0, 0, 0, 0).

    Channel by channel: numpy copies a 3-channel array into 4 channels about 3x slower than three 1-channel copies
    (120 vs 37 ms at 12 megapixels); hidden pixels are cleared by one 32-bit multiply each.

    Shape: rgb (H, W, 3) uint8, alpha (H, W) uint8 -> (H, W, 4) uint8.
    """
    out = np.empty((*alpha.shape, 4), np.uint8)
    for channel in range(3):
        out[..., channel] = rgb[..., channel]
    out[..., 3] = alpha
    pixels = out.view(np.uint32).reshape(alpha.shape)
    np.multiply(pixels, alpha != 0, out=pixels)
    return out


def _check_shapes(rgb: np.ndarray, alpha: np.ndarray) -> None:
    if rgb.dtype != np.uint8 or alpha.dtype != np.uint8:
        raise ValueError(f"compose needs uint8 arrays, got rgb {rgb.dtype} and alpha {alpha.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or alpha.shape != rgb.shape[:2]:
        raise ValueError(f"compose needs rgb (H, W, 3) and alpha (H, W), got {rgb.shape} and {alpha.shape}")


def _blocks(height: int, width: int) -> range:
    """Start rows of row blocks small enough to keep the temporaries of one block in cache."""
    return range(0, height, max(1, _BLOCK_ELEMENTS // (width * 3)))


def _over_opaque(rgb: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """round(fg * a + bg * (1 - a)) exactly: x = fg * alpha + bg * (255 - alpha) <= 65025 fits in uint16.

    Shape: rgb (H, W, 3), alpha (H, W), bg (3,) or (H, W, 3) -> (H, W, 3) uint8.
    """
    height, width = alpha.shape
    step = _blocks(height, width).step
    fg_rows = np.ascontiguousarray(rgb).reshape(height, width * 3)
    bg_rows = np.tile(bg.astype(np.uint16), width) if bg.ndim == 1 else np.ascontiguousarray(bg).reshape(height, -1)
    out = np.empty((height, width * 3), np.uint8)
    for top in range(0, height, step):
        rows = slice(top, top + step)
        alpha3 = np.repeat(alpha[rows], 3, axis=1)  # same shape as the colour rows: contiguous, vectorised ops
        x = np.multiply(fg_rows[rows], alpha3, dtype=np.uint16)
        y = np.subtract(255, alpha3, dtype=np.uint16)
        y *= bg_rows if bg.ndim == 1 else bg_rows[rows]
        x += y
        out[rows] = _div255(x)
    return out.reshape(height, width, 3)


def _div255(x: np.ndarray) -> np.ndarray:
    """round(x / 255) for 0 <= x <= 65025 without a division: (t + (t >> 8)) >> 8 with t = x + 128. Overwrites x."""
    x += 128
    x += x >> 8
    x >>= 8
    return x


def _over_translucent(rgb: np.ndarray, alpha: np.ndarray, color: np.ndarray, back: int | np.ndarray) -> np.ndarray:
    """Porter-Duff "over" in straight alpha onto a background with alpha ``b`` (a colour, or an image's own), in
    float32.

    With a = alpha/255: out_a = a + b(1-a); out_rgb = (fg a + bg b (1-a)) / out_a, scaled so that every term is an
    integer below 2**24 (exact in float32): out_rgb = (255 fg alpha + bg b (255 - alpha)) / (255 b + alpha (255 - b)).

    Shape: rgb (H, W, 3), alpha (H, W), color (3,) with back an int, or (H, W, 3) with back (H, W) -> (H, W, 4)
    uint8.
    """
    height, width = alpha.shape
    step = _blocks(height, width).step
    each_pixel = np.ndim(back) == 2
    if not each_pixel:  # bg * b per colour value of a row, the same for every row
        weighted = np.tile(color.astype(np.float32) * back, width)
    fg_rows = np.ascontiguousarray(rgb).reshape(height, width * 3)
    out = np.empty((height, width, 4), np.uint8)
    for top in range(0, height, step):
        rows = slice(top, top + step)
        alpha3 = np.repeat(alpha[rows], 3, axis=1)
        behind = np.asarray(back)[rows] if each_pixel else back  # b for these rows' pixels, or the colour's
        back3: int | np.ndarray = back
        if each_pixel:
            back3 = np.repeat(behind, 3, axis=1).astype(np.float32)
            weighted = np.multiply(np.asarray(color)[rows].reshape(-1, width * 3), back3, dtype=np.float32)
        denominator = np.multiply(alpha3, 255 - back3, dtype=np.float32)
        denominator += 255 * back3
        np.maximum(denominator, 1, out=denominator)  # 0 only where alpha = b = 0, and then the numerator is 0 too
        numerator = np.multiply(fg_rows[rows], alpha3, dtype=np.float32)
        numerator *= 255
        numerator += np.subtract(255, alpha3, dtype=np.float32) * weighted
        numerator /= denominator
        numerator += 0.5
        out[rows, :, :3] = numerator.reshape(-1, width, 3)  # float -> uint8 truncates: floor(x + 0.5)
        out_alpha = np.multiply(alpha[rows], 255 - behind, dtype=np.uint16)
        out_alpha += np.multiply(255, behind, dtype=np.uint16)  # (255 alpha + b (255 - alpha)) / 255
        out[rows, :, 3] = _div255(out_alpha)
    return out


def blurred(rgb: np.ndarray, radius: float | None = None) -> np.ndarray:
    """The photo itself under a Gaussian blur; ``radius`` None is 2% of the short side, at least 3 pixels.

    Shape: (H, W, 3) uint8 -> (H, W, 3) uint8.
    """
    if radius is None:
        radius = max(3.0, 0.02 * min(rgb.shape[:2]))
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(radius)))


def background_array(background: Background, height: int, width: int) -> np.ndarray:
    """The background of a ``height`` x ``width`` frame: a colour filled in, or an image scaled to cover it (its
    colours: :func:`compose` also uses an image's own transparency).

    Images keep their aspect ratio: they are scaled until both sides cover the frame and centre-cropped. Decoded
    files and the last few frame sizes are cached, so a batch decodes a background once; the result is read-only.

    Shape: -> (height, width, 3) uint8.
    """
    if background.kind == "color":
        return np.full((height, width, 3), background.signal_color[:3], np.uint8)
    layers = _background_layers(background, height, width)
    return layers if layers.shape[2] == 3 else layers[..., :3]


def _background_layers(background: Background, height: int, width: int) -> np.ndarray:
    """An image background scaled to cover the frame: RGB, or RGBA where the image has transparency.

    Shape: -> (height, width, 3 or 4) uint8, read-only.
    """
    if background.kind != "image" or background.path is None:
        raise ValueError(f"background_array needs a colour or an image background, got {background.kind!r}")
    key = _cache_key(background.path)
    aspect, profile = background.pixel_aspect, background.profile
    return _covering(*key, height, width, background.hdr, aspect, profile, background.orientation)


def _cache_key(path: Path) -> tuple[str, int]:
    """The path and its modification time, so that an edited file is decoded again."""
    try:
        return str(path.resolve()), path.stat().st_mtime_ns
    except OSError as error:
        raise UsageError(f"cannot read the background image {path}: {error.strerror or error}") from None


@functools.lru_cache(maxsize=4)
def _source_image(path: str, mtime_ns: int) -> Image.Image:
    from cutout.io.images import is_animation, rgb_array, video_container  # cutout.io.images imports this module

    try:
        with Image.open(path) as opened:
            if is_animation(opened):
                warnings.warn(
                    f"the background {path} is animated ({getattr(opened, 'n_frames', 'several')} frames): a photo "
                    "gets its first frame (`cutout video` plays it behind a clip)",
                    stacklevel=2,
                )
            image = ImageOps.exif_transpose(opened)
            transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
            if image.mode in ("I", "F", "CMYK") or image.mode.startswith("I;16"):
                # as a photo's: 16-bit grey scaled (Pillow's convert clips it: a 16-bit scan gave a white
                # background), CMYK colour-managed into sRGB; their profiles (grey, CMYK) are no RGB profile that
                # _covering could convert from, so none is kept
                image = Image.fromarray(rgb_array(image))
            else:
                image = image.convert("RGBA" if transparent else "RGB")
            if transparent and image.getchannel("A").getextrema()[0] == 255:  # an alpha that hides nothing
                image = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        video = video_container(path)
        if video:
            raise UsageError(
                f"the background {path} is a video ({video}): a photo takes an image as --bg; a video background "
                "goes with `cutout video`"
            ) from None
        raise UsageError(
            f"the background {path} is not an image Pillow can read ({error}); give {BACKGROUND_FORMS}"
        ) from None
    return image


def _covering(
    path: str,
    mtime_ns: int,
    height: int,
    width: int,
    hdr: tuple[int, int] | None = None,
    aspect: Fraction = Fraction(1),
    profile: bytes | None = None,
    orientation: tuple[int, bool] = (0, False),
) -> np.ndarray:
    """The background image scaled to cover a frame and in the frame's colours: cached by size (a batch of
    mixed sizes scales it once per size while the cache holds COVER_CACHE_BYTES), read-only."""
    key = (path, mtime_ns, height, width, hdr, aspect, profile, orientation)
    with _covered_lock:
        if key in _covered:
            _covered.move_to_end(key)
            return _covered[key]
    array = _covered_array(path, mtime_ns, height, width, hdr, aspect, profile, orientation)
    with _covered_lock:
        _covered[key] = array
        total = sum(kept.nbytes for kept in _covered.values())
        while total > COVER_CACHE_BYTES and len(_covered) > 1:
            total -= _covered.popitem(last=False)[1].nbytes
    return array


_covered: OrderedDict[tuple[object, ...], np.ndarray] = OrderedDict()  # _covering's, least recently used first
_covered_lock = threading.Lock()  # the encode threads share it


def _covered_array(
    path: str,
    mtime_ns: int,
    height: int,
    width: int,
    hdr: tuple[int, int] | None,
    aspect: Fraction,
    profile: bytes | None,
    orientation: tuple[int, bool] = (0, False),
) -> np.ndarray:
    from cutout.io.images import icc_profile  # not at the top: cutout.io.images imports this

    source = _source_image(path, mtime_ns)
    array = cover(source, height, width, aspect, Fraction(1), orientation)
    if hdr is not None:
        array[..., :3] = sdr_to_hdr(array[..., :3], *hdr)
    else:  # from the image's own profile (sRGB if none) into the photo's
        own = icc_profile(source)
        if own != profile and not (_is_srgb(own) and _is_srgb(profile)):
            with contextlib.suppress(UsageError):  # a profile lcms cannot use: the colours as they are
                array[..., :3] = _convert(np.ascontiguousarray(array[..., :3]), own, profile)
    array.flags.writeable = False
    return array


@functools.lru_cache(maxsize=16)
def _is_srgb(profile: bytes | None) -> bool:
    """Whether an ICC profile is sRGB in effect (None is): it maps the primaries, secondaries and greys of sRGB to
    within a level of themselves. Names say little: Facebook's compact sRGB profile is called "c2"."""
    if profile is None:
        return True
    probe = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]]], np.uint8)
    probe = np.concatenate([probe, np.array([[[v, v, v] for v in (0, 64, 128, 192, 230, 255)]], np.uint8)], axis=1)
    try:
        moved = _convert(probe, None, profile)
    except UsageError:
        return True  # a profile lcms cannot use: the colours as they are, as before
    return int(np.abs(moved.astype(np.int16) - probe).max()) <= 1


@functools.lru_cache(maxsize=64)
def _converted_colour(rgb: tuple[int, ...], profile: bytes | None) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in _convert(np.array([[rgb]], np.uint8), None, profile)[0, 0])
    return r, g, b


def _convert(rgb: np.ndarray, source: bytes | None, target: bytes | None) -> np.ndarray:
    """RGB pixels from one ICC profile into another (None: sRGB), relative colorimetric as lcms does it.

    Shape: (H, W, 3) uint8 -> (H, W, 3) uint8.
    """
    transform = _transform(source, target)
    image = Image.fromarray(rgb)
    return np.asarray(ImageCms.applyTransform(image, transform))


@functools.lru_cache(maxsize=8)
def _transform(source: bytes | None, target: bytes | None) -> ImageCms.ImageCmsTransform:
    def profile(data: bytes | None) -> ImageCms.ImageCmsProfile:
        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB") if data is None else io.BytesIO(data))

    try:
        return ImageCms.buildTransform(
            profile(source), profile(target), "RGB", "RGB", ImageCms.Intent.RELATIVE_COLORIMETRIC
        )
    except (ImageCms.PyCMSError, OSError, ValueError) as error:
        raise UsageError(f"cannot use the ICC profile to convert a background's colours: {error}") from None


def cover(
    source: Image.Image | np.ndarray,
    height: int,
    width: int,
    aspect: Fraction = Fraction(1),
    source_aspect: Fraction = Fraction(1),
    orientation: tuple[int, bool] = (0, False),
) -> np.ndarray:
    """``source`` scaled to cover a ``height`` x ``width`` frame, aspect ratio kept, centre-cropped (LANCZOS).

    ``aspect`` and ``source_aspect`` are the width over the height of a pixel of the frame and of the source (not
    1 for anamorphic video: HDV's 1440 x 1080 at 4/3 shows 16:9): the source covers the frame as both are shown.
    ``orientation``: how a video's frame, stored ``height`` x ``width``, is shown (:func:`shown`: a phone's clip
    is stored sideways): the source covers it as it is shown, upright, and is turned back to how it is stored.

    Shape: (h, w, 3) uint8, or an RGB or RGBA image -> (height, width, 3 or 4) uint8 (RGBA resized premultiplied),
    C-contiguous where it is turned.
    """
    turns, flipped = orientation[0] % 4, orientation[1]
    if turns or flipped:
        if turns % 2:  # shown on its side: the other way round, and a pixel's width is its height
            covered = cover(source, width, height, 1 / aspect, source_aspect)
        else:
            covered = cover(source, height, width, aspect, source_aspect)
        return np.ascontiguousarray(stored(covered, orientation))
    if isinstance(source, np.ndarray):
        if source.shape[:2] == (height, width) and aspect == source_aspect:
            return source
        source = Image.fromarray(source)
    src_width, src_height = source.size
    shown = Fraction(width) * aspect / height  # the frame's shape as shown, width over height
    if src_width * source_aspect > src_height * shown:  # wider than the frame: the full height, sides cropped
        crop_width = float(src_height * shown / source_aspect)
        box = ((src_width - crop_width) / 2, 0.0, (src_width + crop_width) / 2, float(src_height))
    else:  # taller: the full width, top and bottom cropped
        crop_height = float(src_width * source_aspect / shown)
        box = (0.0, (src_height - crop_height) / 2, float(src_width), (src_height + crop_height) / 2)
    # reducing_gap: from 6x smaller on, a box reduction first (as for the model's input): a 24 MP background to
    # 640 x 480 in 0.05 s instead of 0.16, within 3 levels of the exact resize (0.2 on average)
    return np.array(source.resize((width, height), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0))


def shown(array: np.ndarray, orientation: tuple[int, bool]) -> np.ndarray:
    """A stored video frame as it is shown: flipped upside down if ``orientation[1]``, then turned
    ``orientation[0]`` quarter turns counter-clockwise (:attr:`cutout.io.video.VideoInfo.mirrored`).

    Shape: (H, W, ...) -> (H, W, ...) or (W, H, ...) for an odd number of turns; a view.
    """
    turns, flipped = orientation
    return np.rot90(array[::-1] if flipped else array, turns)


def stored(array: np.ndarray, orientation: tuple[int, bool]) -> np.ndarray:
    """What :func:`shown` turns into ``array``: a picture to go behind frames stored so, shown upright with them.

    Shape: (H, W, ...) -> (H, W, ...) or (W, H, ...) for an odd number of turns; a view.
    """
    turns, flipped = orientation
    turned = np.rot90(array, -turns)
    return turned[::-1] if flipped else turned


def over_background(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The subject over a background frame of the same size (exact integer "over").

    Shape: rgb (H, W, 3), alpha (H, W), background (H, W, 3) uint8 -> (H, W, 3) uint8.
    """
    _check_shapes(rgb, alpha)
    if background.shape != rgb.shape:
        raise ValueError(f"background {background.shape} does not match the frame {rgb.shape}")
    return _over_opaque(rgb, alpha, background)


def keep_transparency(mask: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """The mask within the input's own alpha (their product): a cutout never shows what its input hid.

    Shape: mask (H, W) uint8, alpha (H, W) uint8 or None -> (H, W) uint8.
    """
    if alpha is None:
        return mask
    return ((mask.astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
