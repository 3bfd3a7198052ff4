"""Images as people have them, turned into RGB arrays; cutouts written back.

>>> from cutout.io.images import load_image, rgb_array     # doctest: +SKIP
>>> rgb = rgb_array(load_image(open("photo.jpg", "rb").read()))
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cutout.errors import InputError

ImageLike = np.ndarray | Image.Image | bytes | bytearray | memoryview | str | Path


def load_image(source: ImageLike) -> Image.Image:
    """A PIL image from an array, a PIL image, encoded bytes or a path, with EXIF orientation applied."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise InputError("the image is empty (0 bytes)")
        return _decode(io.BytesIO(data), "the image bytes")
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            with path.open("rb") as handle:
                data = handle.read()
        except OSError as error:
            raise InputError(f"cannot read {path}: {error.strerror or error}") from None
        if not data:
            raise InputError(f"{path} is empty (0 bytes)")
        return _decode(io.BytesIO(data), str(path))
    raise InputError(f"cannot use a {type(source).__name__} as an image; give an array, PIL image, bytes or path")


def _decode(stream: io.BytesIO, what: str) -> Image.Image:
    try:
        image = Image.open(stream)
        image.load()
    except UnidentifiedImageError:
        raise InputError(f"{what} is not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(f"{what} is corrupt or truncated: {error}") from None
    return ImageOps.exif_transpose(image)


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        raise InputError(f"expected a uint8 image array, got dtype {array.dtype}; convert with .astype(np.uint8)")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4)):
        return Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    raise InputError(f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {array.shape}")


def rgb_array(image: Image.Image) -> np.ndarray:
    """The image as (H, W, 3) uint8 RGB. An alpha channel is dropped, as rembg does.

    Shape: (H, W, 3) uint8.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)
