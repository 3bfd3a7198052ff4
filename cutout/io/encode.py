"""Cutouts as files: choosing the format, encoding (a fast PNG writer of our own), and atomic writes.

    >>> from cutout.io.encode import encode_image, format_for, write_atomic
    >>> data = encode_image(rgba, format_for(Path("out.png"), None))     # doctest: +SKIP
    >>> write_atomic(Path("out/out.png"), data)                          # doctest: +SKIP

PNG is written here with numpy and deflate: the "Up" filter on every row but the first, then level 1 of
ISA-L's deflate (the ``isal`` package; about 4x faster than zlib's level 1 with smaller output), or zlib's
level 1 where isal is not installed. On a 4000 x 3000 RGBA photo zlib alone is already about 1.8x faster than
Pillow's ``compress_level=1``; encoding is the slowest step after the model, so this matters. WebP, JPEG and
TIFF go through Pillow.
An ICC profile is embedded in every format when it matches the array (an RGB profile for RGB(A), grey for L).
Every file also says it was made by cutout (:data:`SOFTWARE`: a PNG "Software" text chunk, the EXIF Software tag
elsewhere), which :func:`made_by_cutout` reads: ``cutout image a.jpg b.jpg --overwrite`` will not replace a photo
that it cannot tell from an earlier result.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import struct
import types
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from cutout import __version__
from cutout.compose import cutout_rgba
from cutout.errors import DiskFullError, OutputError, UsageError, disk_full

_deflate: types.ModuleType
try:  # ISA-L deflate: same zlib stream format, several times faster at level 1
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - isal has wheels for the common platforms
    _deflate = zlib

OUTPUT_FORMATS = ("png", "webp", "jpg", "tif")
_NAMES = {"png": "png", "webp": "webp", "jpg": "jpg", "jpeg": "jpg", "tif": "tif", "tiff": "tif"}
_PILLOW: dict[str, tuple[str, dict[str, Any]]] = {
    "webp": ("WEBP", {"quality": 95, "lossless": False, "method": 4}),
    "jpg": ("JPEG", {"quality": 95}),
    "tif": ("TIFF", {"compression": "tiff_adobe_deflate"}),
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # grey, RGB, RGBA
_PNG_BLOCK_BYTES = 1 << 20  # rows filtered and compressed per step: bounded memory, cache-friendly
_MAX_CHUNK = (1 << 31) - 1
_NAME_MAX = 255  # bytes in a file name on Linux, macOS and Windows (UTF-16 units there)
#: What every file cutout writes names as the program that made it.
SOFTWARE = f"cutout {__version__}"
_SOFTWARE_TAG = 0x0131  # EXIF and TIFF "Software"
_EXIF_IFD = 0x8769


def format_for(path: Path | None, explicit: str | None = None) -> str:
    """The output format: ``explicit`` if given, else from the extension of ``path``; PNG for stdout (None).

    ``explicit`` names the format of a file whose extension says none (``out.img``); one that contradicts the
    extension (``out.png`` with ``jpg``) is refused, as the file would hold other bytes than its name says.
    """
    name = None if path is None else _NAMES.get(path.suffix.lower().lstrip("."))
    if explicit is not None:
        chosen = _NAMES.get(explicit.lower().lstrip("."))
        if chosen is None:
            raise UsageError(f"unknown output format {explicit!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
        if path is not None and name is not None and name != chosen:
            raise UsageError(
                f"{path} is named as {name.upper()} but --format {explicit} asks for {chosen.upper()}; name it "
                f"{path.with_suffix('.' + chosen).name} or leave out --format"
            )
        return chosen
    if path is None:
        return "png"
    if name is None:
        raise UsageError(
            f"cannot tell the output format of {path} from its extension ({path.suffix or 'none'}); "
            f"name it .png, .webp, .jpg or .tif, or choose one of {', '.join(OUTPUT_FORMATS)} with --format"
        )
    return name


def needs_opaque(format: str) -> bool:
    """True for formats without transparency (JPEG): cutouts must be composited over an opaque background."""
    return format == "jpg"


def encode_image(
    array: np.ndarray,
    format: str,
    *,
    icc_profile: bytes | None = None,
    exif: Image.Exif | None = None,
    dpi: tuple[float, float] | None = None,
    xmp: bytes | None = None,
    text: dict[str, str] | None = None,
) -> bytes:
    """The encoded file: PNG (our writer), WebP (quality 95), JPEG (quality 95, no alpha) or TIFF (deflate).

    ``icc_profile`` is embedded when it suits the array (an RGB profile for RGB/RGBA, a grey one for L) and
    left out otherwise, so a mask is never labelled with the photo's RGB profile. ``exif``: tags kept from the
    photo (:func:`cutout.io.images.kept_exif`), written with the Software tag. ``dpi``: the photo's print
    resolution (PNG pHYs, JPEG JFIF density, TIFF resolution; WebP has only its EXIF), so a cutout placed in a
    layout comes out the photo's size. ``xmp``: the packet kept from the photo (:func:`cutout.io.xmp.kept_xmp`):
    a PNG iTXt chunk, JPEG APP1 (left out beyond its 64 KiB), WebP's XMP chunk, TIFF's tag 700. ``text``: the
    photo's text notes (:func:`cutout.io.images.kept_text`), written into a PNG only (the other formats carry
    the same facts in their EXIF and XMP).

    Shape: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, uint8.

    Raises:
        ValueError: a bad array, an unknown format, or RGBA for JPEG (composite over a background first).
        OutputError: an image too large for the format (WebP: 16383 pixels a side, JPEG: 65500).
    """
    channels = _check_array(array)
    profile = icc_profile if _profile_suits(icc_profile, channels) else None
    if format == "png":
        return encode_png(array, icc_profile=profile, exif=exif, dpi=dpi, xmp=xmp, text=text)
    if format not in _PILLOW:
        raise ValueError(f"unknown output format {format!r}; expected one of {', '.join(OUTPUT_FORMATS)}")
    if format == "jpg" and channels == 4:
        raise ValueError("JPEG has no alpha channel: composite the (H, W, 4) cutout over a background first")
    height, width = array.shape[:2]
    limit = _MAX_SIDE.get(format)
    if limit is not None and max(height, width) > limit:
        raise OutputError(
            f"a {format.upper()} image is at most {limit} pixels a side and this one is {width} x {height}: choose "
            "--format png or tif"
        )
    pillow_name, options = _PILLOW[format]
    # Pillow frames the EXIF as each format wants ("Exif\0\0" first in JPEG's APP1)
    # TIFF takes the first IFD's tags as its own; Pillow's libtiff writer cannot add the Exif IFD (the dates)
    exif = software_exif(exif, dates=format != "tif")
    if xmp and format == "tif":
        exif[_XMP_TAG] = xmp  # Pillow's TIFF writer takes XMP as this tag only
    extra: dict[str, Any] = {"exif": exif, **({"icc_profile": profile} if profile else {})}
    if xmp and format in ("webp", "jpg") and (format == "webp" or len(xmp) <= _JPEG_XMP_MAX):
        extra["xmp"] = xmp
    if dpi is not None and format != "webp":
        extra["dpi"] = dpi
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format=pillow_name, **options, **extra)
    return buffer.getvalue()


_XMP_TAG = 700  # TIFF's XMLPacket
_JPEG_XMP_MAX = 65533 - 29  # the data of an APP1 segment, less its header "http://ns.adobe.com/xap/1.0/\0"
#: The longest side each format's encoder takes (libwebp, libjpeg-turbo); PNG and TIFF take far more.
_MAX_SIDE = {"webp": 16383, "jpg": 65500}


def _check_array(array: np.ndarray) -> int:
    channels = 1 if array.ndim == 2 else array.shape[-1]
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or channels not in _PNG_COLOUR_TYPES or 0 in array.shape:
        raise ValueError(
            f"expected a non-empty uint8 (H, W), (H, W, 3) or (H, W, 4) array, got {array.dtype} {array.shape}"
        )
    return channels


def _profile_suits(profile: bytes | None, channels: int) -> bool:
    return profile is not None and len(profile) >= 128 and profile[16:20] == (b"GRAY" if channels == 1 else b"RGB ")


def encode_png(
    array: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    level: int = 1,
    exif: Image.Exif | None = None,
    dpi: tuple[float, float] | None = None,
    xmp: bytes | None = None,
    text: dict[str, str] | None = None,
) -> bytes:
    """A PNG of an 8-bit grey, RGB or RGBA array: filter "Up" on rows after the first, zlib ``level``.

    Shape: (H, W), (H, W, 3) or (H, W, 4) uint8.
    """
    channels = _check_array(array)
    height, width = array.shape[:2]
    rows = np.ascontiguousarray(array).reshape(height, width * channels)
    block = lambda top, bottom: rows[top:bottom]  # noqa: E731
    return _png(height, width, channels, block, icc_profile, level, exif, dpi, xmp, text)


def encode_cutout_png(
    rgb: np.ndarray,
    alpha: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    exif: Image.Exif | None = None,
    dpi: tuple[float, float] | None = None,
    xmp: bytes | None = None,
    text: dict[str, str] | None = None,
) -> bytes:
    """Exactly ``encode_png(compose(rgb, alpha, None))``, built row block by row block.

    The transparent cutout is the common case; assembling it in cache-sized blocks skips a full-size RGBA
    array (48 MB for 12 megapixels) and a pass over it.

    Shape: rgb (H, W, 3) uint8, alpha (H, W) uint8.
    """
    if rgb.dtype != np.uint8 or alpha.dtype != np.uint8 or rgb.shape != (*alpha.shape, 3) or 0 in alpha.shape:
        raise ValueError(f"expected (H, W, 3) and (H, W) uint8 arrays, got {rgb.shape} {rgb.dtype}, {alpha.shape}")
    height, width = alpha.shape

    def block(top: int, bottom: int) -> np.ndarray:
        return cutout_rgba(rgb[top:bottom], alpha[top:bottom]).reshape(bottom - top, width * 4)

    profile = icc_profile if _profile_suits(icc_profile, 4) else None
    return _png(height, width, 4, block, profile, 1, exif, dpi, xmp, text)


def _png(
    height: int,
    width: int,
    channels: int,
    block: Callable[[int, int], np.ndarray],
    icc_profile: bytes | None,
    level: int,
    exif: Image.Exif | None = None,
    dpi: tuple[float, float] | None = None,
    xmp: bytes | None = None,
    text: dict[str, str] | None = None,
) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    parts = [_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"tEXt", b"Software\0" + SOFTWARE.encode())]
    if icc_profile:
        parts.append(_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile)))  # name, NUL, method 0
    if exif is not None:  # the photo's date, author and copyright; Software stays in tEXt, where PNG tools look
        parts.append(_chunk(b"eXIf", exif.tobytes().removeprefix(b"Exif\0\0")))  # eXIf holds the TIFF data alone
    if dpi is not None:  # pixels per metre, unit 1 (the metre)
        parts.append(_chunk(b"pHYs", struct.pack(">IIB", round(dpi[0] / 0.0254), round(dpi[1] / 0.0254), 1)))
    if xmp:  # iTXt: keyword, NUL, not compressed (0, 0), no language, NUL, no translated keyword, NUL, UTF-8 text
        parts.append(_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp))
    for keyword, value in (text or {}).items():
        parts.append(_text_chunk(keyword, value))
    data = _deflate_rows(height, width * channels, block, level)
    parts.extend(_chunk(b"IDAT", data[start : start + _MAX_CHUNK]) for start in range(0, len(data), _MAX_CHUNK))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def _deflate_rows(height: int, row_bytes: int, block: Callable[[int, int], np.ndarray], level: int) -> bytes:
    """The deflate stream of the filtered rows: a filter-type byte, then the row minus the row above (mod 256).

    ``block(top, bottom)`` gives rows top..bottom-1 as a (rows, row_bytes) uint8 array.
    """
    step = max(1, _PNG_BLOCK_BYTES // (row_bytes + 1))
    compressor = _deflate.compressobj(level)
    pieces = []
    previous: np.ndarray | None = None
    for top in range(0, height, step):
        bottom = min(top + step, height)
        rows = block(top, bottom)
        filtered = np.empty((bottom - top, row_bytes + 1), np.uint8)
        filtered[:, 0] = 2  # "Up"
        if previous is None:
            filtered[0, 0] = 0  # "None": the first row has no row above
            filtered[0, 1:] = rows[0]
        else:
            np.subtract(rows[0], previous, out=filtered[0, 1:])
        np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
        previous = rows[-1].copy()
        pieces.append(compressor.compress(filtered.data))
    pieces.append(compressor.flush())
    return b"".join(pieces)


def software_exif(kept: Image.Exif | None = None, *, dates: bool = True) -> Image.Exif:
    """EXIF whose Software tag is :data:`SOFTWARE`, with the tags ``kept`` from the photo (without its Exif IFD,
    where the dates taken are, unless ``dates``)."""
    exif = Image.Exif()
    if kept is not None:
        exif.load(kept.tobytes())
        if not dates:
            exif.pop(_EXIF_IFD, None)
    exif[_SOFTWARE_TAG] = SOFTWARE
    return exif


def made_by_cutout(path: Path) -> bool:
    """Whether ``path`` is an image or video that cutout wrote (its Software text, tag or comment names cutout);
    False for anything else, unreadable files included."""
    software: object = None
    if not os.path.isfile(path):  # a folder, a device or a pipe (whose reading would block) is not ours
        return False
    try:
        with Image.open(path) as image:
            software = image.info.get("Software") or image.info.get("comment") or image.getexif().get(_SOFTWARE_TAG)
    except Exception:  # no image Pillow knows: a video, or not ours at all
        try:
            import av

            with av.open(str(path)) as container:
                software = container.metadata.get("comment") or container.metadata.get("COMMENT")
        except Exception:  # unreadable, damaged, not a media file: not ours
            return False
    if isinstance(software, bytes):
        software = software.decode("utf-8", "replace")
    return isinstance(software, str) and software.startswith("cutout ")


def _text_chunk(keyword: str, value: str) -> bytes:
    """A tEXt chunk where keyword and text are Latin-1 (what PNG readers expect), else iTXt in UTF-8."""
    try:
        name = keyword.encode("latin-1") if keyword.isprintable() else b""
    except UnicodeEncodeError:
        name = b""
    if not 1 <= len(name) <= 79 or "\0" in keyword or "\0" in value:
        raise ValueError(f"a PNG text keyword is 1 to 79 Latin-1 characters and no text holds NUL: {keyword!r}")
    try:
        return _chunk(b"tEXt", name + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:  # iTXt: keyword, NUL, not compressed (0, 0), no language, NUL, none translated, NUL
        return _chunk(b"iTXt", name + b"\0\0\0\0\0" + value.encode())


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    Parent folders are created. The data goes to ``.<name>.<random>.part`` in the same folder, is flushed to
    disk, and renamed over ``path``; on any failure, Ctrl-C included, the temporary file is removed.

    Raises:
        OutputError: the folder or file cannot be written (permission denied, a file in the way, disk full, ...).
    """
    temporary = temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never follow or reuse a file someone else made; 0o666 lets the umask decide, as for any new file
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as error:
        raise _output_error(path, error) from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _output_error(path, error) from None
        raise


def write_all(stream: BinaryIO, data: bytes | bytearray | memoryview, name: str = "standard output") -> None:
    """Write every byte of ``data`` to ``stream`` and flush it.

    A buffered stream's ``write`` may take fewer bytes than it is given and say so only in its return value (a
    pipe whose reader went away part-way, a disk that filled up): ignoring it would truncate the output silently.
    Here the rest is written again until the stream takes it or fails.

    Raises:
        BrokenPipeError: the program reading a pipe ended (``| head``): the caller decides how quiet to be.
        OutputError: any other failure to write (no space left, an I/O error, a stream that takes nothing).
    """
    view = memoryview(data).cast("B")
    try:
        while len(view):
            count = stream.write(view)
            if not count:
                raise OSError(f"the stream took no bytes of the {len(view)} left")
            view = view[count:]
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputError(f"cannot write to {name}: {reason[:1].lower() + reason[1:]}") from None


def temporary_path(path: Path, suffix: str = "") -> Path:
    """A fresh ``.NAME.XXXXXXXX.part`` + ``suffix`` beside ``path``, NAME shortened to fit a file name's 255 bytes.

    A valid output name of up to 255 bytes must not fail for its temporary name's 15 more: NAME keeps its start
    (whole characters) and the random part keeps each temporary name unique.
    """
    tail = f".{secrets.token_hex(4)}.part{suffix}"
    return path.with_name(f".{_shortened(path.name, _NAME_MAX - 1 - len(tail))}{tail}")


def _shortened(name: str, size: int) -> str:
    """The start of ``name`` in at most ``size`` bytes: whole characters of a UTF-8 name, else whole bytes.

    A name that is not UTF-8 (Latin-1 from an old camera or a zip made on Windows) reaches Python with its bytes
    kept as surrogates; ``os.fsencode`` gives them back.
    """
    raw = os.fsencode(name)
    try:
        raw.decode()
    except UnicodeDecodeError:
        return os.fsdecode(raw[:size])
    return raw[:size].decode(errors="ignore")


def _output_error(path: Path, error: OSError) -> OutputError:
    reason = error.strerror or str(error)
    size = len(os.fsencode(path.name))
    if error.errno == errno.ENAMETOOLONG and size > _NAME_MAX:
        return OutputError(
            f"cannot write {path}: its name is {size} bytes, more than the {_NAME_MAX} a file name may have; use a "
            "shorter name"
        )
    if disk_full(error):
        return DiskFullError(
            f"cannot write {path}: {reason[:1].lower() + reason[1:]}; free some space there, or "
            "choose another output folder"
        )
    in_the_way = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
    if in_the_way is not None:
        reason = f"{in_the_way} is a file, not a folder"
    return OutputError(f"cannot write {path}: {reason[:1].lower() + reason[1:]}; choose another output folder")
