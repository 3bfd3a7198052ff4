"""Images as people have them, turned into RGB arrays; cutouts encoded and written back (see :mod:`cutout.io.encode`).

    >>> from cutout.io.images import load_image, rgb_array
    >>> image = load_image("photo.jpg")                     # doctest: +SKIP
    >>> rgb = rgb_array(image)                              # (H, W, 3) uint8, upright

Formats: whatever Pillow reads (JPEG, PNG, WebP, TIFF, BMP, GIF's first frame, ...), in every pixel mode, 16-bit
and float included. AVIF is read by Pillow itself where it is built with libavif (recent Pillow wheels are, Pillow 13
here; ``python -c "from PIL import features; print(features.check('avif'))"`` says). HEIC/HEIF needs the optional
extra ``pip install 'cutout[heif]'`` (pillow-heif), which cutout registers with Pillow by itself the first time it
meets such a file; without it, HEIC files fail with a message that says so.

Pillow's own decompression-bomb limit is switched off when this module is imported; ``max_pixels`` (``--max-pixels``
on the command line) is the limit instead, checked from the header before any pixel is decoded.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from cutout.errors import CutoutError, InputError
from cutout.io.encode import OUTPUT_FORMATS, encode_image, format_for, needs_opaque, write_atomic
from cutout.io.iptc import iim_records, xmp_with_iim
from cutout.io.xmp import kept_xmp
from cutout.options import DEFAULT_MAX_PIXELS

try:  # libjpeg-turbo into numpy without Pillow's 4-byte pixels: see plain_jpeg_rgb
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - a dependency; Pillow decodes every JPEG without it
    _simplejpeg = None

__all__ = [
    "OUTPUT_FORMATS",
    "ImageLike",
    "encode_image",
    "format_for",
    "icc_profile",
    "kept_exif",
    "print_resolution",
    "load_image",
    "needs_opaque",
    "pixels",
    "rgb_array",
    "write_atomic",
]

ImageLike = np.ndarray | Image.Image | bytes | bytearray | memoryview | str | Path

Image.MAX_IMAGE_PIXELS = None  # ours (max_pixels) applies instead, with a message that says how to raise it
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_heif_registered = False
ORIENTATION_TAG = 0x0112
#: EXIF tags a cutout keeps from its photo (first IFD): caption, camera make and model, print resolution, date,
#: artist and copyright. Not the GPS place, the orientation (the pixels are upright), thumbnails or maker notes.
KEPT_TAGS = (0x010E, 0x010F, 0x0110, 0x011A, 0x011B, 0x0128, 0x0132, 0x013B, 0x8298)
#: ... and from the Exif IFD: when it was taken and digitised, with time zone offsets and fractions of a second.
KEPT_EXIF_TAGS = (0x9003, 0x9004, 0x9010, 0x9011, 0x9012, 0x9290, 0x9291, 0x9292)
_EXIF_IFD = 0x8769
_reading = threading.local()  # the image each thread is reading: see reading()


def load_image(
    source: ImageLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, draft: tuple[int, int] | None = None
) -> Image.Image:
    """A decoded PIL image, upright (EXIF orientation applied), from an array, a PIL image, encoded bytes or a path.

    Args:
        source: a (H, W[, 1|3|4]) uint8 array, a PIL image (returned as it is), encoded bytes, or a file path.
        max_pixels: refuse encoded images with more pixels than this; None for no limit.
        draft: for JPEG files, decode at a reduced scale (1/2, 1/4 or 1/8, done inside the JPEG decoder, several
            times faster) as long as the stored image stays at least this (width, height). The upright size of
            the full image is then in ``image.info["full_size"]`` as (width, height); see :func:`full_size`.

    Raises:
        InputError: the source cannot be read, is empty, is not an image, is corrupt, or is too large.
    """
    if isinstance(source, Image.Image):
        if 0 in source.size:
            raise InputError(f"the image has no pixels ({source.width} x {source.height})")
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise InputError("the image is empty (0 bytes)")
        return _decode(io.BytesIO(data), "the data", max_pixels, draft)
    if isinstance(source, (str, Path)):
        return _load_path(Path(source), max_pixels, draft)
    raise InputError(f"cannot use a {type(source).__name__} as an image; give an array, PIL image, bytes or path")


def reading() -> str | None:
    """The image this thread is reading, if any: Pillow's own warnings ("Corrupt EXIF data ...") do not name it,
    so the command line adds it to them."""
    return getattr(_reading, "what", None)


@contextlib.contextmanager
def reading_image(what: str) -> Iterator[None]:
    """Within this block, :func:`reading` says ``what`` (on this thread)."""
    before = reading()
    _reading.what = what
    try:
        yield
    finally:
        _reading.what = before


def full_size(image: Image.Image) -> tuple[int, int]:
    """The (width, height) of the whole upright image, also when :func:`load_image` decoded a draft."""
    size = image.info.get("full_size")
    return (int(size[0]), int(size[1])) if size else image.size


def _load_path(path: Path, max_pixels: int | None, draft: tuple[int, int] | None) -> Image.Image:
    try:
        handle = path.open("rb")
    except OSError as error:
        if path.is_symlink() and not path.exists():
            raise InputError(f"cannot read {path}: it is a broken symbolic link to {os.readlink(path)}") from None
        raise InputError(f"cannot read {path}: {_reason(error)}") from None
    with handle:
        status = os.fstat(handle.fileno())
        if stat.S_ISREG(status.st_mode) and status.st_size == 0:
            raise InputError(f"{path} is empty (0 bytes)")
        return _decode(handle, str(path), max_pixels, draft)


def _reason(error: OSError) -> str:
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]


def _decode(stream: IO[bytes], what: str, max_pixels: int | None, draft: tuple[int, int] | None) -> Image.Image:
    with reading_image(what):
        return _decode_named(stream, what, max_pixels, draft)


def _decode_named(stream: IO[bytes], what: str, max_pixels: int | None, draft: tuple[int, int] | None) -> Image.Image:
    if not stream.seekable():
        stream = io.BytesIO(stream.read())
    head = stream.read(16)
    stream.seek(0)
    with _corrupt_if_it_fails(what):
        image = _open(stream, head, what)
        _check_size(image, what, max_pixels)
        stored = image.size
        if draft is not None and image.format == "JPEG":
            image.draft(image.mode, draft)
        image.load()
        if image.size != stored:
            turned = image.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8)
            image.info["full_size"] = stored[::-1] if turned else stored
        _warn_if_animated(image, what)
        return _upright(image, what)


@contextlib.contextmanager
def _corrupt_if_it_fails(what: str) -> Iterator[None]:
    """Any failure of Pillow's decoders in this block is the file's: an InputError that says it is corrupt.

    Pillow's plugins raise more than OSError on a damaged file: a TIFF whose size tags are broken raises TypeError
    ("Missing dimensions"); that must fail the one file, not a batch.
    """
    try:
        yield
    except (CutoutError, MemoryError):
        raise
    except Exception as error:
        reason = str(error) or type(error).__name__
        raise InputError(f"{what} is corrupt or truncated: {reason}") from None


def is_animation(image: Image.Image) -> bool:
    """Whether ``image`` is an animated GIF, PNG (APNG) or WebP, of which a still use takes the first frame.

    Other formats with several frames are no animation: a camera's MPO holds a second, hidden picture, and a
    TIFF's pages are pages.
    """
    return image.format in ("GIF", "PNG", "WEBP") and bool(getattr(image, "is_animated", False))


def _warn_if_animated(image: Image.Image, what: str) -> None:
    """Say so when an animation (:func:`is_animation`) or a TIFF of several pages (a scan, a layered export) is
    cut out as its first frame or page only."""
    pages = _tiff_pages(image) if image.format == "TIFF" else 1
    if pages is None:
        warnings.warn(
            f"{what} is a TIFF whose pages after the first are damaged: only the first is cut out", stacklevel=3
        )
    elif pages > 1:
        warnings.warn(
            f"{what} is a TIFF of {pages} pages: only the first is cut out (save each page as a file to cut it out)",
            stacklevel=3,
        )
    if not is_animation(image):
        return
    count = f"{getattr(image, 'n_frames', 'several')} frames"
    if what == "the data":
        advice = "to cut out every frame, save it as a file and give that to `cutout video`"
    else:
        advice = f"`cutout video {what}` cuts out every frame (into {Path(what).stem}.cutout{Path(what).suffix})"
    warnings.warn(f"{what} is animated ({count}): only its first frame is cut out; {advice}", stacklevel=3)


def _tiff_pages(image: Image.Image) -> int | None:
    """How many pages a TIFF has; None when a later page's directory is damaged (Pillow: TypeError "Missing
    dimensions" and the like). The first page, already decoded, then stays the image, its own tags restored."""
    try:
        return int(getattr(image, "n_frames", 1))
    except MemoryError:
        raise
    except Exception:
        image.seek(0)  # counting left the damaged page's tags in place
        return None


def _open(stream: IO[bytes], head: bytes, what: str) -> Image.Image:
    """Image.open, registering pillow-heif first when a HEIF file is not identified without it."""
    try:
        return Image.open(stream)
    except UnidentifiedImageError:
        if not (head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS):
            video = _video_container(head)
            if video:
                raise InputError(f"{what} is a video ({video}), not an image: cut it out with `cutout video`") from None
            raise InputError(f"{what} is not an image Pillow can read (it starts with {head[:16]!r})") from None
        if _heif_registered or not _register_heif():
            raise InputError(
                f"{what} is a HEIC/HEIF image (brand {head[8:12].decode('latin-1')!r}), which this installation "
                "cannot read; HEIC needs `pip install 'cutout[heif]'` (pillow-heif)"
            ) from None
    stream.seek(0)
    return Image.open(stream)


def video_container(path: str | Path) -> str:
    """The video container the file at ``path`` starts as ("MP4/MOV", "MKV/WebM", "AVI"), or "" (none, unreadable)."""
    try:
        with open(path, "rb") as handle:
            return _video_container(handle.read(16))
    except OSError:
        return ""


def _video_container(head: bytes) -> str:
    """The video container a file's first bytes announce ("MP4/MOV", "MKV/WebM", "AVI"), or "" if none."""
    if head[4:8] == b"ftyp" and head[8:12] not in _HEIF_BRANDS | {b"avif", b"avis"}:
        return "MP4/MOV"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "MKV/WebM"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    return ""


def _register_heif() -> bool:
    """Register pillow-heif's opener with Pillow if the package is installed; True if it now is."""
    global _heif_registered
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    _heif_registered = True
    return True


def _check_size(image: Image.Image, what: str, max_pixels: int | None) -> None:
    width, height = image.size
    pixels = width * height
    if max_pixels is not None and pixels > max_pixels:
        raise InputError(
            f"{what} is {width} x {height} = {pixels:,} pixels, more than the limit of {max_pixels:,}; if you "
            "trust it, raise the limit with --max-pixels"
        )


def _upright(image: Image.Image, what: str) -> Image.Image:
    """The image turned as its EXIF orientation says (in place: no copy when it is already upright)."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except (*_DECODE_ERRORS, KeyError, TypeError) as error:
        warnings.warn(f"{what}: cannot read its EXIF orientation ({error}); using it as stored", stacklevel=3)
    return image


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        raise InputError(f"expected a uint8 image array, got dtype {array.dtype}; {_to_uint8_hint(array)}")
    if array.ndim in (2, 3) and 0 in array.shape[:2]:
        raise InputError(f"the image has no pixels (shape {array.shape})")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4)):
        return Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    hint = ""
    if array.ndim == 3 and array.shape[0] in (1, 3, 4):
        hint = " (channels first, as torch has them? array.transpose(1, 2, 0) puts them last)"
    raise InputError(f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {array.shape}{hint}")


def _to_uint8_hint(array: np.ndarray) -> str:
    """How to make 8-bit pixels of an array of another type: .astype(np.uint8) alone would wrap or zero them."""
    if array.dtype == np.bool_:
        return "a boolean mask becomes one with array.astype(np.uint8) * 255"
    if array.dtype.kind == "f":
        return "for values from 0 to 1 use (array * 255).round().astype(np.uint8)"
    if array.dtype == np.uint16:
        return "for 16-bit values use (array >> 8).astype(np.uint8)"
    return "for values from 0 to 255 use array.astype(np.uint8)"


def plain_jpeg_rgb(source: Path | bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray | None:
    """The RGB pixels of a plain JPEG decoded straight into an array by libjpeg-turbo (simplejpeg), or None where
    :func:`load_image` and :func:`rgb_array` must decode it.

    Plain: a JPEG in colour (YCbCr or RGB) or grey, stored upright (EXIF orientation absent or 1), within
    ``max_pixels``. Its pixels are Pillow's (both run libjpeg-turbo's default decoder; tested), but Pillow keeps RGB
    as 4 bytes a pixel and the array needs them packed into 3: on the image benchmark's 40 photos (640 x 480 to
    12 MP) simplejpeg takes 0.5 CPU-s where Pillow and the packing take 1.0 to 1.15, and a 12 MP photo needs 36
    instead of 84 MB while it is decoded. Other formats, CMYK, turned photos, anything simplejpeg refuses (a
    corrupt or truncated file: Pillow then says what is wrong), or simplejpeg missing: None.

    Shape: -> (H, W, 3) uint8, writable and owned by the caller.
    """
    if _simplejpeg is None:
        return None
    try:
        data = source.read_bytes() if isinstance(source, Path) else bytes(source)
        if data[:3] != b"\xff\xd8\xff":
            return None
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG" or image.mode not in ("RGB", "L"):
                return None
            if max_pixels is not None and image.width * image.height > max_pixels:
                return None
            if image.getexif().get(ORIENTATION_TAG, 1) != 1:
                return None
        rgb = _simplejpeg.decode_jpeg(data, colorspace="RGB")
    except (*_DECODE_ERRORS, KeyError, TypeError, Image.DecompressionBombError):  # Pillow will say what is wrong
        return None
    return rgb if isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3 else None


def rgb_array(image: Image.Image) -> np.ndarray:
    """The image as 8-bit RGB, from any pixel mode.

    An alpha channel (RGBA, LA, PA, palette transparency) is dropped, as rembg does: the model sees the stored
    colours (the cutout then keeps the input's transparency: see :func:`alpha_array`). 16-bit grey (I;16*, I)
    is scaled by 1/257 and rounded; float grey (F) is clipped to 0..255; CMYK with an embedded profile is
    colour-managed to sRGB, other modes go through Pillow's ``convert``.

    Shape: -> (H, W, 3) uint8.
    """
    mode = image.mode
    if mode == "RGB":
        return pixels(image)
    if mode == "I" or mode.startswith("I;16"):
        values = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
        return _grey_to_rgb(((values + 128) // 257).astype(np.uint8))  # round(v / 257): no ties for integers
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
        return _grey_to_rgb(np.rint(np.clip(values, 0, 255)).astype(np.uint8))
    if mode == "CMYK" and icc_profile(image, colour_space=b"CMYK"):
        return _cmyk_to_srgb(image)
    if mode == "P" and isinstance(image.info.get("transparency"), bytes):
        # the same colours as convert("RGB"), without Pillow's warning that such images be converted to RGBA
        return np.ascontiguousarray(np.asarray(image.convert("RGBA"))[..., :3])
    try:
        return pixels(image.convert("RGB"))
    except ValueError as error:
        raise InputError(f"cannot turn a {mode} image into RGB ({error}); convert it to RGB first") from None


def alpha_array(image: Image.Image) -> np.ndarray | None:
    """The image's own transparency as 8-bit alpha, or None where it has none or is opaque everywhere.

    From an alpha channel (RGBA, LA, PA) or a transparent colour (a palette's, or a grey or RGB colour key).
    A cutout keeps it (:func:`cutout.compose.keep_transparency`): what the input hid stays hidden, whatever
    colours it stores there.

    Shape: -> (H, W) uint8.
    """
    if image.mode in ("RGBA", "LA", "PA"):
        alpha = np.asarray(image.getchannel("A"))
    elif image.mode in ("P", "L", "RGB") and "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA").getchannel("A"))
    else:
        return None
    return None if alpha.size == 0 or alpha.min() == 255 else alpha


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def _cmyk_to_srgb(image: Image.Image) -> np.ndarray:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        converted = ImageCms.profileToProfile(image, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (OSError, ImageCms.PyCMSError):
        converted = None  # a broken profile: fall back to Pillow's plain conversion
    return pixels(converted if converted is not None else image.convert("RGB"))


def pixels(image: Image.Image) -> np.ndarray:
    """An 8-bit RGB or grey (L) image's pixels as a read-only array: the same as ``np.asarray(image)``, faster.

    ``np.asarray`` goes through ``Image.tobytes``, which packs the pixels in 64 KB pieces and then joins them:
    85 ms for a 12-megapixel RGB photo here, about as long as decoding it. Packed in one piece it takes 45 ms.
    Other modes, and anything unexpected from the packer, take ``np.asarray``'s way.

    Shape: -> (H, W, 3) or (H, W) uint8.
    """
    channels = {"RGB": 3, "L": 1}.get(image.mode)
    if channels is None or image.width == 0 or image.height == 0:
        return np.asarray(image)
    image.load()
    size = image.width * image.height * channels
    packer = Image._getencoder(image.mode, "raw", image.mode)
    try:
        packer.setimage(image.im, (0, 0, *image.size))
        _, code, data = packer.encode(size)
    finally:
        packer.cleanup()
    if code != 1 or len(data) != size:  # pragma: no cover - the raw packer writes everything in one go
        return np.asarray(image)
    shape = (image.height, image.width, 3) if channels == 3 else (image.height, image.width)
    return np.frombuffer(data, np.uint8).reshape(shape)


def icc_profile(image: Image.Image, colour_space: bytes = b"RGB ") -> bytes | None:
    """The image's embedded ICC profile if it describes ``colour_space``, else None.

    cutout's outputs are RGB(A), so only an RGB profile can be carried over: a CMYK or grey one would mislabel them.
    """
    profile = image.info.get("icc_profile")
    if isinstance(profile, bytes) and len(profile) >= 128 and profile[16:20] == colour_space:
        return profile
    return None


def kept_exif(image: Image.Image) -> Image.Exif | None:
    """The EXIF a cutout of ``image`` keeps (:data:`KEPT_TAGS`, :data:`KEPT_EXIF_TAGS`), or None when it has none.

    A photo library then sorts a cutout with its photo, and a photographer's name and copyright stay on it.
    Damaged EXIF is dropped, not an error: the pixels are what was asked for.
    """
    if "exif" not in image.info and image.format != "TIFF":  # a TIFF's own tags are its EXIF
        return None
    try:
        source = image.getexif()
        kept = Image.Exif()
        for tag in KEPT_TAGS:
            if tag in source:
                kept[tag] = source[tag]
        _drop_bad_resolution(kept)
        inner = source.get_ifd(_EXIF_IFD)
        dates = {tag: inner[tag] for tag in KEPT_EXIF_TAGS if tag in inner}
        if dates:
            kept.get_ifd(_EXIF_IFD).update(dates)
        if not len(kept) and not dates:
            return None
        kept.tobytes()  # what cannot be written again (a value of a type Pillow cannot write) fails here, not later
    except Exception:  # Pillow's EXIF reader and writer raise assorted errors on damaged data
        return None
    return kept


_RESOLUTION_TAGS = (0x011A, 0x011B)  # XResolution, YResolution
_RESOLUTION_UNIT_TAG = 0x0128  # 1 none, 2 inch, 3 centimetre


def _drop_bad_resolution(exif: Image.Exif) -> None:
    """Remove a damaged print resolution from ``exif``: a unit other than 1, 2 or 3 (and then the resolution it
    would measure), a resolution that is not a positive finite number. libtiff refuses to write either, which
    failed the photo for a ``.tif`` output."""
    if exif.get(_RESOLUTION_UNIT_TAG, 2) not in (1, 2, 3):
        for tag in (*_RESOLUTION_TAGS, _RESOLUTION_UNIT_TAG):
            exif.pop(tag, None)
    for tag in _RESOLUTION_TAGS:
        value = exif.get(tag)
        try:
            sane = value is None or (math.isfinite(float(value)) and float(value) > 0)
        except (TypeError, ValueError, ZeroDivisionError):
            sane = False
        if not sane:
            exif.pop(tag, None)


def kept_xmp_of(image: Image.Image) -> bytes | None:
    """The XMP a cutout of ``image`` keeps (keywords, title, caption, rating, rights: :mod:`cutout.io.xmp`), with
    what the photo's IPTC-IIM block says and its XMP does not (an agency's credit line and copyright notice:
    :mod:`cutout.io.iptc`), or None. Pillow gives every format's packet as ``info["xmp"]`` (JPEG, PNG, WebP, TIFF,
    AVIF)."""
    packet = image.info.get("xmp")
    kept = kept_xmp(packet) if isinstance(packet, (bytes, str)) else None
    return xmp_with_iim(kept, iim_records(image))


#: PNG's predefined text keywords (PNG specification, 11.3.4.2) that a cutout keeps: what the picture is, who
#: made it and its rights. Software becomes cutout's own; other keywords (ImageMagick's file dates, a tool's
#: settings, an image generator's prompt) say nothing true of the cutout and are left out.
KEPT_TEXT_KEYWORDS = (
    "Title",
    "Author",
    "Description",
    "Copyright",
    "Creation Time",
    "Disclaimer",
    "Warning",
    "Source",
    "Comment",
)
_TEXT_MAX = 1 << 16  # characters of one kept text: a caption or a licence, not a payload


def kept_text(image: Image.Image) -> dict[str, str] | None:
    """The text notes a cutout of ``image`` keeps in a PNG (:data:`KEPT_TEXT_KEYWORDS`), or None.

    A PNG's text chunks (tEXt, zTXt, iTXt) with those keywords, as Pillow gives the ones before the image data
    (chunks after it would need the whole image decoded first); a JPEG's or GIF's comment as "Comment". Texts that
    are empty, hold a NUL (which no PNG text may) or run past 65536 characters are left out.
    """
    notes: dict[str, str] = {}
    if image.format == "PNG":
        for keyword in KEPT_TEXT_KEYWORDS:
            value = image.info.get(keyword)
            if isinstance(value, str):
                notes[keyword] = str(value)  # iTXt values are a str subclass carrying the language
    elif image.format in ("JPEG", "MPO", "GIF"):
        comment = image.info.get("comment")
        if isinstance(comment, bytes):
            comment = comment.rstrip(b"\0")  # some writers end it as a C string
            try:
                notes["Comment"] = comment.decode()
            except UnicodeDecodeError:
                notes["Comment"] = comment.decode("latin-1")  # JPEG sets no encoding; old tools wrote Latin-1
        elif isinstance(comment, str):
            notes["Comment"] = comment
    kept = {k: v for k, v in notes.items() if v.strip() and "\0" not in v and len(v) <= _TEXT_MAX}
    return kept or None


def print_resolution(image: Image.Image) -> tuple[float, float] | None:
    """The image's print resolution in dots per inch (a JPEG's JFIF density or EXIF, a PNG's pHYs, a TIFF's
    resolution tags), or None when it has none or a nonsensical one."""
    dpi = image.info.get("dpi")
    try:
        x, y = (float(v) for v in dpi)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return (x, y) if 1 <= x <= 100_000 and 1 <= y <= 100_000 else None
