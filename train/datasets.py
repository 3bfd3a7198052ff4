"""Datasets as they are published, found on disk: DUTS, P3M-10k, DIM-style foregrounds, folders, labelme.

Finders return :class:`Pair` lists (image, mask, optional trimap); readers turn files into arrays. Nothing here
imports torch: :mod:`train.data` wraps these in torch datasets.

    data/DUTS-TR/DUTS-TR-Image/*.jpg + DUTS-TR-Mask/*.png     find_duts("train", data_dir)   (DUTS-TE for "val")
    data/P3M-10k/train/blurred_image + train/mask              find_p3m("train", data_dir)
    data/P3M-10k/validation/P3M-500-P/blurred_image + mask (+ trimap), P3M-500-NP/original_image + mask (+ trimap)
    my/images + my/masks (same names, any image extension)     find_pairs(images, masks)
    my/labelme/*.json (+ the images they name)                 find_labelme(folder)
    my/dim/fg + my/dim/alpha (same names) + my/dim/bg          find_composites(folder)

``data_dir`` defaults to ``$CUTOUT_DATA``; DUTS missing there can be fetched with :func:`download_duts`.
"""

from __future__ import annotations

import base64
import json
import math
import os
import secrets
import shutil
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw

from cutout.compose import shown
from cutout.errors import InputError, UsageError
from cutout.io.images import ORIENTATION_TAG, alpha_array, load_image, rgb_array

Split = Literal["train", "val"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
IGNORE_INDEX = -100  #: class id of 'void' pixels (255 in a class mask), torch's cross_entropy default ignore_index
DUTS_URL = "http://saliencydetection.net/duts/download/"
#: Image counts of the published DUTS splits (Wang et al., CVPR 2017). The site publishes no archive hashes, so a
#: download is checked by its extracted layout (every image has a mask) and these counts.
DUTS_COUNTS = {"DUTS-TR": 10553, "DUTS-TE": 5019}
P3M_HOME = "https://github.com/JizhiziLi/P3M"
_GREY_MODES = ("I", "F")


@dataclass(frozen=True)
class Pair:
    """One sample on disk: the image, its mask (an image, or a labelme .json) and, where published, a trimap."""

    name: str
    image: Path
    mask: Path
    trimap: Path | None = None


# --- finders ----------------------------------------------------------------------------------------------


def data_roots(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Where datasets are looked for: ``data_dir`` and ``$CUTOUT_DATA``, in that order."""
    roots = [Path(data_dir)] if data_dir is not None else []
    if os.environ.get("CUTOUT_DATA"):
        roots.append(Path(os.environ["CUTOUT_DATA"]))
    return roots


def list_images(folder: Path) -> dict[str, Path]:
    """The image files directly in ``folder`` by stem, sorted (of two files with one stem, the first by name)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.setdefault(path.stem, path)
    return found


def find_pairs(
    images_dir: Path, masks_dir: Path, trimaps_dir: Path | None = None, *, prefix: str = ""
) -> tuple[list[Pair], list[Path]]:
    """Images and masks matched by stem whatever their extensions (a.jpg with a.png); also the images that have
    no mask. ``prefix`` is put before each sample's name."""
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise UsageError(f"{folder} is not a folder; expected images in {images_dir} and masks in {masks_dir}")
    masks = list_images(masks_dir)
    trimaps = list_images(trimaps_dir) if trimaps_dir is not None and trimaps_dir.is_dir() else {}
    pairs, unmatched = [], []
    for stem, image in list_images(images_dir).items():
        if stem in masks:
            pairs.append(Pair(prefix + stem, image, masks[stem], trimaps.get(stem)))
        else:
            unmatched.append(image)
    return pairs, unmatched


def report_unmatched(unmatched: Sequence[Path], masks_dir: Path) -> None:
    """Warn about images left out because ``masks_dir`` has no mask of their name."""
    if unmatched:
        names = ", ".join(path.name for path in unmatched[:5]) + (", ..." if len(unmatched) > 5 else "")
        which = "images have no mask in {} and are" if len(unmatched) > 1 else "image has no mask in {} and is"
        warnings.warn(f"{len(unmatched)} {which.format(masks_dir)} left out: {names}", stacklevel=3)


def find_duts(split: Split, data_dir: str | os.PathLike[str] | None = None) -> list[Pair]:
    """DUTS-TR (``train``) or DUTS-TE (``val``) under ``data_dir`` or ``$CUTOUT_DATA``."""
    folder = locate_duts(split, data_roots(data_dir))
    if folder is None:
        raise UsageError(_duts_missing(split, data_roots(data_dir)))
    return _duts_pairs(folder, _duts_name(split))


def locate_duts(split: Split, roots: Sequence[Path]) -> Path | None:
    """The extracted ``DUTS-TR`` / ``DUTS-TE`` folder in one of ``roots`` (also under ``duts/`` or ``DUTS/``)."""
    name = _duts_name(split)
    for root in roots:
        for folder in (root / name, root / "duts" / name, root / "DUTS" / name, root):
            if (folder / f"{name}-Image").is_dir() and (folder / f"{name}-Mask").is_dir():
                return folder
    return None


def _duts_name(split: Split) -> str:
    return "DUTS-TR" if split == "train" else "DUTS-TE"


def _duts_pairs(folder: Path, name: str) -> list[Pair]:
    masks_dir = folder / f"{name}-Mask"
    pairs, unmatched = find_pairs(folder / f"{name}-Image", masks_dir)
    report_unmatched(unmatched, masks_dir)
    if not pairs:
        raise UsageError(f"{folder} holds no image with a mask of the same name")
    return pairs


def _duts_missing(split: Split, roots: Sequence[Path]) -> str:
    name = _duts_name(split)
    where = ", ".join(str(root) for root in roots) or "nowhere: no data folder given and $CUTOUT_DATA is not set"
    return (
        f"{name} was not found (looked in {where}). Download {DUTS_URL}{name}.zip and unzip it into your data "
        f"folder, so that <data>/{name}/{name}-Image and <data>/{name}/{name}-Mask exist; then pass that folder as "
        f"data_dir (--data-dir) or set CUTOUT_DATA"
    )


def find_p3m(split: Split, data_dir: str | os.PathLike[str] | None = None) -> list[Pair]:
    """P3M-10k: ``train`` (blurred images), or ``val`` = P3M-500-P (blurred) and P3M-500-NP (original) with
    their trimaps; validation names start with the subset (``P3M-500-P/p_...``)."""
    root = _locate_p3m(data_roots(data_dir))
    if root is None:
        where = (
            ", ".join(str(r) for r in data_roots(data_dir))
            or "nowhere: no data folder given and $CUTOUT_DATA is not set"
        )
        raise UsageError(
            f"P3M-10k was not found (looked in {where}). Request it as {P3M_HOME} explains and extract it so that "
            "<data>/P3M-10k/train/blurred_image and <data>/P3M-10k/train/mask exist; pass that folder as --data-dir "
            "(data_dir in Python) or set CUTOUT_DATA"
        )
    if split == "train":
        pairs, unmatched = find_pairs(root / "train" / "blurred_image", root / "train" / "mask")
        report_unmatched(unmatched, root / "train" / "mask")
        return pairs
    pairs = []
    for subset, images in (("P3M-500-P", "blurred_image"), ("P3M-500-NP", "original_image")):
        folder = root / "validation" / subset
        if folder.is_dir():
            found, unmatched = find_pairs(folder / images, folder / "mask", folder / "trimap", prefix=f"{subset}/")
            report_unmatched(unmatched, folder / "mask")
            pairs += found
    if not pairs:
        raise UsageError(f"{root / 'validation'} holds neither P3M-500-P nor P3M-500-NP with images and masks")
    return pairs


def _locate_p3m(roots: Sequence[Path]) -> Path | None:
    for root in roots:
        for folder in (root / "P3M-10k", root / "p3m-10k", root / "p3m", root / "P3M", root):
            if (folder / "train" / "blurred_image").is_dir() or (folder / "validation").is_dir():
                return folder
    return None


def find_labelme(folder: Path) -> list[Pair]:
    """Every labelme ``.json`` in ``folder`` with the image it names (or one of its stem, or its embedded
    ``imageData``); the pair's mask is the .json itself."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder of labelme .json files")
    by_stem, pairs = list_images(folder), []
    for path in sorted(folder.glob("*.json")):
        try:
            document = read_labelme(path)
        except InputError as error:  # one broken file does not stop a run: it is left out, and said so
            warnings.warn(f"{error}; it is left out", stacklevel=2)
            continue
        named = folder / str(document.get("imagePath") or "").replace("\\", "/")  # labelme on Windows writes '\\'
        image = named if named.is_file() else by_stem.get(path.stem)
        if image is None and document.get("imageData"):
            image = path  # the image is embedded in the .json
        if image is None:
            warnings.warn(f"{path}: the image {named.name} is missing and no imageData is embedded", stacklevel=2)
        else:
            pairs.append(Pair(path.stem, image, path))
    if not pairs:
        raise UsageError(f"{folder} holds no labelme .json file with its image")
    return pairs


def labelme_classes(folder: Path) -> list[str]:
    """The sorted union of the shape labels of every labelme file in ``folder`` and its subfolders."""
    labels: set[str] = set()
    for path in sorted(folder.rglob("*.json")):
        try:
            shapes = read_labelme(path).get("shapes", [])
        except InputError:  # find_labelme warns of it and leaves it out
            continue
        labels.update(str(shape.get("label", "")) for shape in shapes if isinstance(shape, dict))
    return sorted(labels)


def find_composites(folder: Path) -> tuple[list[Pair], list[Path]]:
    """Foregrounds ``fg/`` with their alphas ``alpha/`` (same stems) and the backgrounds ``bg/`` (any images)."""
    for name in ("fg", "alpha", "bg"):
        if not (folder / name).is_dir():
            raise UsageError(f"{folder} needs folders fg/ (foregrounds), alpha/ (their alphas) and bg/ (backgrounds)")
    pairs, unmatched = find_pairs(folder / "fg", folder / "alpha")
    report_unmatched(unmatched, folder / "alpha")
    backgrounds = list(list_images(folder / "bg").values())
    if not pairs or not backgrounds:
        raise UsageError(f"{folder} needs at least one foreground with an alpha and one background")
    return pairs, backgrounds


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


# --- readers ----------------------------------------------------------------------------------------------


def read_rgb(path: Path) -> np.ndarray:
    """An image file (or a labelme .json's embedded image) as upright RGB. Shape: -> (H, W, 3) uint8."""
    if path.suffix.lower() == ".json":
        embedded = read_labelme(path).get("imageData")
        try:
            data = base64.b64decode(embedded if isinstance(embedded, str) else "", validate=True)
            return rgb_array(load_image(data, max_pixels=None))
        except (ValueError, InputError):
            raise InputError(f"{path}: its imageData is not a base64 image") from None
    return rgb_array(load_image(path, max_pixels=None))


#: EXIF orientation -> how it shows the stored pixels: counter-clockwise quarter turns, and whether they are flipped
#: upside down first (:func:`cutout.compose.shown`)
_EXIF_SHOWN = {
    1: (0, False),
    2: (2, True),
    3: (2, False),
    4: (0, True),
    5: (3, True),
    6: (3, False),
    7: (1, True),
    8: (1, False),
}


def stored_orientation(path: Path) -> int:
    """The EXIF orientation (1 to 8) an image file is shown by; 1 when it has none or it cannot be read."""
    try:
        with Image.open(path) as image:
            value = image.getexif().get(ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (H, W, ...) as a photo's EXIF ``orientation`` shows its stored pixels (as ``exif_transpose``)."""
    return np.ascontiguousarray(shown(array, _EXIF_SHOWN.get(orientation, (0, False))))


def read_grey(path: Path) -> np.ndarray:
    """A mask file as 8-bit grey (16-bit and float masks scaled as :func:`rgb_array` does). Shape: -> (H, W) uint8.

    A file with an alpha channel that is not opaque everywhere (RGBA, LA, or a palette with transparent colours,
    as pngquant makes) is a cutout, as cutout and other tools save them: its alpha is the mask (its colours are
    the subject's, which as grey would be no mask at all). A grey mask's colour key does not count: soft values
    would become opaque.
    """
    image = load_image(path, max_pixels=None)
    if image.mode.startswith(_GREY_MODES):
        return rgb_array(image)[..., 0]
    alpha = None if image.mode in ("L", "RGB") else alpha_array(image)  # a colour key is no cutout's alpha
    return alpha if alpha is not None else np.asarray(image.convert("L"))


def read_alpha(path: Path) -> np.ndarray:
    """A mask or alpha matte in [0, 1]. Shape: -> (H, W) float32."""
    return read_grey(path).astype(np.float32) / np.float32(255)


def read_trimap(path: Path) -> np.ndarray:
    """A trimap file (0 / 128 / 255) as 0 / 0.5 / 1. Shape: -> (H, W) float32."""
    grey = read_grey(path)
    return np.where(grey < 85, 0.0, np.where(grey > 170, 1.0, 0.5)).astype(np.float32)


def read_class_map(path: Path, num_classes: int) -> np.ndarray:
    """A class mask: pixel values (or palette indices) are class ids 0..num_classes-1; 255 is 'void' and becomes
    :data:`IGNORE_INDEX`. Shape: -> (H, W) int64."""
    image = load_image(path, max_pixels=None)
    if image.mode not in ("P", "L", "I", "I;16") and not image.mode.startswith("I;16"):
        raise InputError(
            f"{path} is a {image.mode} image; a class mask must hold class ids: a palette (P) or grey (L) PNG"
        )
    ids = np.asarray(image).astype(np.int64)
    ids[ids == 255] = IGNORE_INDEX
    bad = (ids >= num_classes) | ((ids < 0) & (ids != IGNORE_INDEX))
    if bad.any():  # a setting that does not fit the data: training stops here rather than skip such masks
        raise UsageError(
            f"{path} has class id {int(ids[bad].max())}, but there are {num_classes} classes (0..{num_classes - 1}, "
            "255 for void); set num_classes (--num-classes) to the number of classes including the background"
        )
    return ids


def read_labelme(path: Path) -> dict[str, Any]:
    """The labelme document in ``path``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the labelme file {path}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("shapes", []), list):
        raise InputError(f"{path} is not a labelme file: it has no list of 'shapes'")
    return document


def rasterize_labelme(path: Path, height: int, width: int, class_ids: Mapping[str, int] | None = None) -> np.ndarray:
    """The shapes of a labelme file drawn in file order (later over earlier) with Pillow's ImageDraw.

    Polygons, rectangles (two corners), circles (centre, a point on the circle) and masks (labelme's AI and
    brush masks: a base64 PNG placed at the first of two corners) are drawn; other shape types (lines, points)
    cover no area and are skipped. With ``class_ids`` each shape is filled with its label's id; without, every
    shape is foreground (1).

    Raises:
        InputError: the file is not labelme's, or a shape is broken (no points, points that are not pairs of
            numbers, a mask that is not an image); the sample is skipped with a warning that says which shape.

    Shape: -> (H, W) uint8 (class ids, or 0/1).
    """
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for number, shape in enumerate(read_labelme(path).get("shapes", []), 1):
        if not isinstance(shape, dict):
            raise InputError(f"{path}: shape {number} is not a labelme shape (an object with label and points)")
        label = str(shape.get("label", ""))
        if class_ids is None:
            value = 1
        elif label in class_ids:
            value = class_ids[label]
        else:
            raise InputError(f"{path} has the label {label!r}, which is not among the classes {sorted(class_ids)}")
        kind = str(shape.get("shape_type") or "polygon")
        xy = _shape_points(path, number, label, shape.get("points"))
        if kind == "mask":
            _paste_mask(canvas, path, number, label, xy, shape.get("mask"), value)
        else:
            _draw_shape(draw, kind, xy, value)
    return np.asarray(canvas)


def _shape_points(path: Path, number: int, label: str, points: object) -> list[tuple[float, float]]:
    """A shape's points as (x, y) pairs of finite numbers, or InputError naming the shape."""
    try:
        xy = [(float(x), float(y)) for x, y in points]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        xy = []
    if not xy or not np.isfinite(xy).all():
        raise InputError(f"{path}: shape {number} ({label!r}) has no points, or points that are not (x, y) numbers")
    return xy


def _paste_mask(
    canvas: Image.Image, path: Path, number: int, label: str, xy: list[tuple[float, float]], data: object, value: int
) -> None:
    """A labelme mask shape: a base64 PNG of the box from its first corner (x1, y1) to its second, inclusive,
    nonzero where the shape is; labelme's AI-assisted and brush tools make them."""
    try:
        mask = load_image(base64.b64decode(data if isinstance(data, str) else "", validate=True), max_pixels=None)
        values = np.asarray(mask)  # labelme writes 0 and 1 in grey
        region = values != 0 if values.ndim == 2 else (values != 0).any(axis=2)
    except (ValueError, InputError):
        raise InputError(f"{path}: shape {number} ({label!r}) is a mask whose data is not a base64 image") from None
    left, top = int(xy[0][0]), int(xy[0][1])  # as labelme places it
    if -region.shape[1] < left < canvas.width and -region.shape[0] < top < canvas.height:  # else none of it shows
        canvas.paste(value, (left, top), Image.fromarray(region.astype(np.uint8) * 255))


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, xy: list[tuple[float, float]], value: int) -> None:
    if kind == "polygon" and len(xy) >= 3:
        draw.polygon(xy, fill=value, outline=value)
    elif kind == "rectangle" and len(xy) == 2:
        (x0, y0), (x1, y1) = xy
        draw.rectangle((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=value)
    elif kind == "circle" and len(xy) == 2:
        (cx, cy), (px, py) = xy
        radius = math.hypot(px - cx, py - cy)
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=value)


# --- DUTS download ----------------------------------------------------------------------------------------


def download_duts(
    root: str | os.PathLike[str],
    *,
    splits: Sequence[Split] = ("train", "val"),
    base_url: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Fetch and unzip the official DUTS archives into ``root`` (``root/DUTS-TR``, ``root/DUTS-TE``); returns root.

    ``base_url`` (or ``$CUTOUT_DUTS_URL``) replaces the official site, e.g. for a mirror. The site publishes no
    hashes, so each archive is checked by its extracted layout instead (and a warning names a count that differs
    from the published one). A failed download leaves nothing behind and says where to put the data by hand.

    Raises:
        UsageError: the archive cannot be fetched, is not a zip, or does not hold the DUTS layout.
    """
    from http.client import HTTPException

    from cutout._download import describe_error, download_to, temporary_path
    from cutout.errors import WeightsError

    target = Path(root)
    base = (base_url or os.environ.get("CUTOUT_DUTS_URL") or DUTS_URL).rstrip("/") + "/"
    for split in splits:
        name = _duts_name(split)
        if locate_duts(split, [target]) is not None:
            continue
        url = f"{base}{name}.zip"
        with temporary_path(target, f"{name}.zip") as archive:
            try:
                download_to(url, archive, [], progress)
            except (OSError, HTTPException, WeightsError) as error:  # HTTP and network errors, truncation
                reason = describe_error(error)
                raise UsageError(f"cannot download {url}: {reason}. " + _by_hand(name, target, url)) from None
            _extract_duts(archive, target, name, url)
        count = len(_duts_pairs(target / name, name))
        if count != DUTS_COUNTS[name]:
            published = DUTS_COUNTS[name]
            warnings.warn(f"{url} held {count} images with masks; the published {name} has {published}", stacklevel=2)
    return target


def _by_hand(name: str, root: Path, url: str) -> str:
    return (
        f"Download {url} yourself and unzip it so that {root / name / (name + '-Image')} and "
        f"{root / name / (name + '-Mask')} exist (or unzip it anywhere and pass that folder as --data-dir, or "
        "set CUTOUT_DATA)"
    )


def _extract_duts(archive: Path, root: Path, name: str, url: str) -> None:
    """Unzip into a temporary folder beside ``root/name``, then rename the DUTS folder into place."""
    scratch = root / f".{name}.{secrets.token_hex(6)}.part"
    try:
        try:
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(scratch)  # zipfile drops absolute paths and '..' from member names
        except zipfile.BadZipFile as error:
            raise UsageError(f"{url} is not a zip archive ({error}). " + _by_hand(name, root, url)) from None
        found = locate_duts("train" if name == "DUTS-TR" else "val", [scratch])
        if found is None:
            raise UsageError(f"{url} does not hold {name}/{name}-Image and {name}-Mask. " + _by_hand(name, root, url))
        os.replace(found, root / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
