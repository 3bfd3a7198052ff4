"""Training data as torch datasets: every published layout, augmented and normalised for one model.

    >>> from cutout.registry import get_spec
    >>> from train.data import build_dataset
    >>> train_set = build_dataset("duts", data_dir="data", split="train", spec=get_spec("u2netp"))  # doctest: +SKIP
    >>> train_set[0]["image"].shape                                                               # doctest: +SKIP
    torch.Size([3, 320, 320])

Sources: ``duts``, ``p3m``, ``dim:PATH``, ``labelme:PATH``, or a folder (``images/`` + ``masks/``, optionally
inside ``train/`` and ``val/``); ``images=`` and ``masks=`` name the two folders directly. A sample is a dict:
``image`` (3, H, W) float32 normalised as the model's preprocessing does, ``mask`` (1, H, W) float32 in [0, 1]
(or (H, W) int64 class ids when ``num_classes`` > 1), optionally ``trimap`` (1, H, W) float32 in {0, 0.5, 1},
``foreground`` / ``background`` (3, H, W) float32 in [0, 1] (DIM composites), and ``name``.

Augmentation depends on (seed, epoch, index) only: call ``dataset.set_epoch(epoch)`` before each epoch (the
DataLoader must not keep persistent workers, which would not see it).
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from cutout.errors import InputError, UsageError
from cutout.preprocess import normalize_pixels
from cutout.registry import ModelSpec, Normalization
from train import datasets as layouts
from train.datasets import Pair, Split
from train.transforms import (
    Arrays,
    Augment,
    compose_sample,
    make_trimap,
    resize_array,
    rng_for,
    train_transform,
    val_transform,
)

if TYPE_CHECKING:
    from train.config import TrainConfig

Normalize = Callable[[np.ndarray], np.ndarray]
"""(H, W, 3) uint8 RGB -> (3, H, W) float32 network input."""
Sample = dict[str, Any]
T = TypeVar("T")
_BACKGROUND_NAMES = ("_background_", "__background__", "background")


@dataclass(frozen=True)
class Normalizer:
    """The model's input scaling, as :func:`cutout.preprocess.model_input` does it after resizing.

    ``max``: divide by the image's own maximum, then ImageNet mean/std, in float64 (U2-Net, as rembg);
    ``255``: (x / 255 - mean) / std in float32 (MODNet). No normalization: x / 255.
    """

    normalization: Normalization | None = None

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if self.normalization is None:
            return rgb.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        return normalize_pixels(self.normalization, rgb)


def normalizer_for(spec: ModelSpec) -> Normalizer:
    """The normalisation of ``spec``'s preprocessing, for images already at the network size."""
    return Normalizer(spec.normalization)


def to_tensors(arrays: Arrays, normalize: Normalize, name: str) -> Sample:
    """One transformed sample as the tensors a DataLoader collates (see the module docstring for shapes)."""
    sample: Sample = {"image": torch.from_numpy(np.ascontiguousarray(normalize(arrays["image"])))}
    mask = arrays["mask"]
    if np.issubdtype(mask.dtype, np.integer):
        sample["mask"] = torch.from_numpy(mask.astype(np.int64))
    else:
        sample["mask"] = torch.from_numpy(np.ascontiguousarray(mask[None], dtype=np.float32))
    if "trimap" in arrays:
        sample["trimap"] = torch.from_numpy(np.ascontiguousarray(arrays["trimap"][None], dtype=np.float32))
    for key in ("foreground", "background"):
        if key in arrays:
            chw = arrays[key].transpose(2, 0, 1).astype(np.float32) / np.float32(255)
            sample[key] = torch.from_numpy(np.ascontiguousarray(chw))
    sample["name"] = name
    return sample


S = TypeVar("S", bound="_Samples")


class _Samples(Dataset[Sample]):
    """What both datasets share: samples from ``pairs``, drawn from (seed, epoch, index)."""

    pairs: list[Pair]
    unreadable: Any  # a multiprocessing RawArray of bytes, one per pair: see _new_flags
    normalize: Normalize
    train: bool
    epoch: int

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's augmentation (training only: validation samples never change)."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> Sample:
        """Sample ``index``; one whose files cannot be read (corrupt, truncated, not an image) is skipped with a
        warning naming it, and the next readable one is used in its place, so one bad file in a folder of
        thousands does not end a training run hours in. The warning comes once: the sample is marked in
        :attr:`unreadable`, which the loader's worker processes share, and not read again (workers start afresh
        each epoch, and would otherwise repeat it every epoch).

        Raises:
            InputError: no file of the dataset can be read.
            UsageError: a setting does not fit the data (a class id beyond ``num_classes``): not skipped.
        """
        first: Exception | None = None
        for offset in range(len(self.pairs)):
            pick = (index + offset) % len(self.pairs)
            if self.unreadable[pick]:
                continue
            try:
                return to_tensors(self.arrays(pick), self.normalize, self.pairs[pick].name)
            except (InputError, OSError, MemoryError) as error:
                self.unreadable[pick] = 1
                if isinstance(error, MemoryError):  # a damaged header can claim a size of gigapixels
                    error = InputError("not enough memory to decode it (damaged, or too large for this machine)")
                warnings.warn(f"skipped {self.pairs[pick].name} (another sample used instead): {error}", stacklevel=2)
                first = first or error
        why = f"the first: {first}" if first else "each was named in a warning before"
        raise InputError(f"none of the {len(self.pairs)} samples can be read; {why}")

    def _new_flags(self) -> None:
        """:attr:`unreadable` for the current pairs: one byte per sample in shared memory, which the loader's
        worker processes inherit when they start (so it is made here, in the parent, not lazily in a worker)."""
        self.unreadable = multiprocessing.RawArray("b", len(self.pairs))

    def arrays(self, index: int) -> Arrays:
        """Sample ``index`` transformed, before normalisation and tensors (see :mod:`train.transforms`)."""
        raise NotImplementedError

    def subset(self: S, pairs: Sequence[Pair], train: bool) -> S:
        """The same dataset over other pairs, for training or validation."""
        twin = copy.copy(self)
        twin.pairs, twin.train, twin.epoch = list(pairs), train, 0
        twin._new_flags()  # its own, for its own pairs
        return twin


class PairDataset(_Samples):
    """Images with masks (files, labelme shapes or class maps), and trimaps where the layout has them.

    Args:
        pairs: the samples on disk.
        size: (height, width) of every output.
        train: augment (random resized crop, flip, colour jitter); otherwise resize only.
        num_classes: > 1 reads masks as class ids and returns an int64 class map.
        class_ids: label -> class id for labelme files (None: every shape is foreground).
        with_trimap: return a trimap: the published one where every pair has one, else one made from the mask by
            random erosion and dilation (as DIM/SHM); ``None``: only where every pair has one.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        *,
        size: tuple[int, int],
        train: bool,
        seed: int = 0,
        normalize: Normalize | None = None,
        augment: Augment | None = None,
        num_classes: int = 1,
        class_ids: dict[str, int] | None = None,
        with_trimap: bool | None = None,
    ) -> None:
        self.pairs = list(pairs)
        self._new_flags()
        self.size, self.train, self.seed, self.epoch = size, train, seed, 0
        self.normalize = normalize or Normalizer()
        self.augment = augment or Augment()
        self.num_classes, self.class_ids = num_classes, class_ids
        self.file_trimaps = bool(self.pairs) and all(pair.trimap is not None for pair in self.pairs)
        self.with_trimap = num_classes == 1 and (self.file_trimaps if with_trimap is None else with_trimap)

    def arrays(self, index: int) -> Arrays:
        rng = rng_for(self.seed, index, self.epoch if self.train else 0)
        arrays = self.read(self.pairs[index])
        if self.train:
            arrays = train_transform(arrays, self.size, rng, self.augment)
        else:
            arrays = val_transform(arrays, self.size)
        if self.with_trimap and "trimap" not in arrays:
            arrays["trimap"] = make_trimap(arrays["mask"], rng)
        return arrays

    def read(self, pair: Pair) -> Arrays:
        """The files of ``pair`` as arrays at the image's size."""
        image = layouts.read_rgb(pair.image)
        height, width = image.shape[:2]
        if pair.mask.suffix.lower() == ".json":
            drawn = layouts.rasterize_labelme(pair.mask, height, width, self.class_ids)
            mask: np.ndarray = drawn.astype(np.int64) if self.num_classes > 1 else (drawn > 0).astype(np.float32)
        elif self.num_classes > 1:
            mask = layouts.read_class_map(pair.mask, self.num_classes)
        else:
            mask = layouts.read_alpha(pair.mask)
        arrays = {"image": image, "mask": _at_size("mask", mask, pair.mask, (height, width), pair.image)}
        if self.with_trimap and pair.trimap is not None:
            arrays["trimap"] = _at_size(
                "trimap", layouts.read_trimap(pair.trimap), pair.trimap, (height, width), pair.image
            )
        return arrays


class CompositeDataset(_Samples):
    """DIM-style matting data: foregrounds with alphas composited on random backgrounds on the fly.

    A sample holds ``image``, ``mask`` (the alpha), ``trimap`` (random erosion/dilation of the alpha),
    ``foreground`` and ``background`` (for the compositional loss). Validation composites are fixed per index:
    background ``index % len(backgrounds)``, foreground centred at full scale.
    """

    def __init__(
        self,
        foregrounds: Sequence[Pair],
        backgrounds: Sequence[Path],
        *,
        size: tuple[int, int],
        train: bool,
        seed: int = 0,
        normalize: Normalize | None = None,
        augment: Augment | None = None,
        scale: tuple[float, float] = (0.5, 1.0),
    ) -> None:
        self.pairs, self.backgrounds = list(foregrounds), list(backgrounds)
        self._new_flags()
        self.size, self.train, self.seed, self.epoch = size, train, seed, 0
        self.normalize = normalize or Normalizer()
        self.augment, self.scale = augment or Augment(), scale

    def arrays(self, index: int) -> Arrays:
        pair = self.pairs[index]
        rng = rng_for(self.seed, index, self.epoch if self.train else 0)
        chosen = int(rng.integers(len(self.backgrounds))) if self.train else index % len(self.backgrounds)
        alpha = layouts.read_alpha(pair.mask)
        foreground = layouts.read_rgb(pair.image)
        alpha = _at_size("mask", alpha, pair.mask, foreground.shape[:2], pair.image)
        background = layouts.read_rgb(self.backgrounds[chosen])
        arrays = compose_sample(
            foreground, alpha, background, self.size, rng if self.train else None, self.augment, self.scale
        )
        arrays["trimap"] = make_trimap(arrays["mask"], rng)
        return arrays


AnyDataset = PairDataset | CompositeDataset


def split_pairs(items: Sequence[T], val_fraction: float, seed: int, key: Callable[[T], str]) -> tuple[list[T], list[T]]:
    """A deterministic split: sorted by ``key``, permuted by ``seed``; validation gets round(n * fraction) items,
    at least one (when there are two or more and the fraction is > 0), never all."""
    ordered = sorted(items, key=key)
    count = len(ordered)
    n_val = 0 if val_fraction <= 0 or count < 2 else min(count - 1, max(1, round(count * val_fraction)))
    chosen = set(np.random.default_rng(seed).permutation(count)[:n_val].tolist())
    train = [item for i, item in enumerate(ordered) if i not in chosen]
    return train, [item for i, item in enumerate(ordered) if i in chosen]


def split_folder(dataset: AnyDataset, val_fraction: float, seed: int) -> tuple[AnyDataset, AnyDataset]:
    """(training, validation) parts of a dataset whose layout has no validation split; the validation part is
    resized only. The same files and seed always give the same split."""
    train, val = split_pairs(dataset.pairs, val_fraction, seed, key=lambda pair: pair.name)
    return dataset.subset(train, train=True), dataset.subset(val, train=False)


def build_dataset(
    source: str | os.PathLike[str] | None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    split: Split = "train",
    spec: ModelSpec | None = None,
    size: int | tuple[int, int] | None = None,
    seed: int = 0,
    num_classes: int = 1,
    classes: Sequence[str] | None = None,
    images: str | os.PathLike[str] | None = None,
    masks: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.1,
    augment: Augment | None = None,
    with_trimap: bool | None = None,
    normalize: Normalize | None = None,
    download: bool = True,
) -> AnyDataset:
    """The ``split`` of ``source`` as a dataset for ``spec`` (its normalisation and input size).

    Layouts without a validation split are split by :func:`split_pairs` with ``val_fraction`` (0: the whole
    layout for either split). DUTS missing from ``data_dir`` / ``$CUTOUT_DATA`` is downloaded there when
    ``download`` is true.

    Raises:
        UsageError: unknown source, missing data (the message says where to put it), bad class settings.
    """
    if split not in ("train", "val"):
        raise UsageError(f"split must be 'train' or 'val', got {split!r}")
    train = split == "train"
    options: dict[str, Any] = {
        "size": _training_size(size, spec),
        "train": train,
        "seed": seed,
        "normalize": normalize or Normalizer(spec.normalization if spec else None),
        "augment": augment,
    }
    kind, path = _parse_source(source, data_dir, images)
    if kind == "dim":
        foregrounds, backgrounds, whole = _dim_layout(path, split)
        if whole:
            foregrounds = _pick(foregrounds, val_fraction, seed, train)
        return CompositeDataset(foregrounds, backgrounds, **options)
    pairs, whole, class_ids = _pair_layout(kind, path, split, data_dir, images, masks, num_classes, classes, download)
    if whole:
        pairs = _pick(pairs, val_fraction, seed, train)
    return PairDataset(pairs, num_classes=num_classes, class_ids=class_ids, with_trimap=with_trimap, **options)


def build_datasets(config: TrainConfig) -> tuple[AnyDataset, AnyDataset]:
    """(training, validation) datasets for a training run. ``config.extra`` may hold ``images``, ``masks``,
    ``classes`` and ``download``; MODNet and MNet get trimaps (published, or made from the alpha)."""
    from cutout.registry import get_spec

    spec = get_spec("modnet" if config.model == "mnet" else config.model)
    extra = config.extra
    common: dict[str, Any] = {
        "data_dir": config.data_dir,
        "spec": spec,
        "size": config.size,
        "seed": config.seed,
        "num_classes": config.num_classes,
        "classes": extra.get("classes"),
        "with_trimap": True if config.model in ("modnet", "mnet") else None,
        "download": extra.get("download", True),
    }
    folders: dict[str, Any] = {"images": extra.get("images"), "masks": extra.get("masks")}
    if config.val_data:
        train_set = build_dataset(config.data, split="train", val_fraction=0.0, **folders, **common)
        return train_set, build_dataset(config.val_data, split="val", val_fraction=0.0, **common)
    common.update(folders, val_fraction=config.val_fraction)
    return build_dataset(config.data, split="train", **common), build_dataset(config.data, split="val", **common)


def _pick(items: list[T], val_fraction: float, seed: int, train: bool) -> list[T]:
    if val_fraction <= 0:
        return items
    train_items, val_items = split_pairs(items, val_fraction, seed, key=lambda item: getattr(item, "name", ""))
    return train_items if train else val_items


def _training_size(size: int | tuple[int, int] | None, spec: ModelSpec | None) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    if size is not None:
        return int(size[0]), int(size[1])
    if spec is None or spec.input.kind == "fixed":
        return spec.input.size if spec else (320, 320)
    return spec.input.reference_size, spec.input.reference_size


def _parse_source(
    source: str | os.PathLike[str] | None, data_dir: str | os.PathLike[str] | None, images: object
) -> tuple[str, Path]:
    text = os.fspath(source) if source is not None else ""
    if text.lower() in ("duts", "p3m", "p3m-10k"):
        return text.lower().split("-")[0], Path()
    kind, sep, rest = text.partition(":")
    if sep and kind in ("dim", "labelme", "folder"):
        text = rest
    else:
        kind = "folder"
    if not text:
        if images is None:
            raise UsageError("no data given: name a dataset (duts, p3m), dim:PATH, labelme:PATH or a folder")
        return "folder", Path()
    path = Path(text).expanduser()
    if not path.is_dir() and not path.is_absolute() and data_dir is not None and (Path(data_dir) / path).is_dir():
        path = Path(data_dir) / path
    if not path.is_dir():
        raise UsageError(
            f"{text!r} is neither a dataset name (duts, p3m) nor a folder; give dim:PATH, labelme:PATH or a folder "
            "with images/ and masks/"
        )
    return kind, path


def _split_folder(path: Path, split: Split) -> Path | None:
    """``path/train`` for training, ``path/val`` (or valid, validation, test) for validation, if present."""
    names = ("train",) if split == "train" else ("val", "valid", "validation", "test")
    return next((path / name for name in names if (path / name).is_dir()), None)


def _dim_layout(path: Path, split: Split) -> tuple[list[Pair], list[Path], bool]:
    folder = _split_folder(path, split)
    if folder is not None and (folder / "fg").is_dir():
        return (*layouts.find_composites(folder), False)
    return (*layouts.find_composites(path), True)


def _pair_layout(
    kind: str,
    path: Path,
    split: Split,
    data_dir: str | os.PathLike[str] | None,
    images: str | os.PathLike[str] | None,
    masks: str | os.PathLike[str] | None,
    num_classes: int,
    classes: Sequence[str] | None,
    download: bool,
) -> tuple[list[Pair], bool, dict[str, int] | None]:
    """(pairs of the split or of the whole layout, whether it is the whole layout, labelme class ids)."""
    if kind == "duts":
        return _duts(split, data_dir, download), False, None
    if kind == "p3m":
        return layouts.find_p3m(split, data_dir), False, None
    if kind == "labelme":
        folder = _split_folder(path, split)
        pairs = layouts.find_labelme(folder or path)
        return pairs, folder is None, _class_ids(classes, num_classes, path)
    if images is not None or masks is not None:
        if images is None or masks is None:
            raise UsageError("give both an images folder and a masks folder (--images DIR --masks DIR)")
        return _folder_pairs(Path(images), Path(masks)), True, None
    folder = _split_folder(path, split)
    base, whole = (folder, False) if folder is not None else (path, True)
    image_dir = next((base / n for n in ("images", "image", "imgs") if (base / n).is_dir()), None)
    mask_dir = next((base / n for n in ("masks", "mask", "alpha", "gt") if (base / n).is_dir()), None)
    if image_dir is None or mask_dir is None:
        raise UsageError(
            f"{base} needs an images/ folder and a masks/ folder (same file names, any image format), or "
            "train/ and val/ folders that each have them"
        )
    return _folder_pairs(image_dir, mask_dir), whole, None


def _folder_pairs(images: Path, masks: Path) -> list[Pair]:
    pairs, unmatched = layouts.find_pairs(images, masks)
    layouts.report_unmatched(unmatched, masks)
    if not pairs:
        raise UsageError(f"no image in {images} has a mask of the same name in {masks}")
    return pairs


def _duts(split: Split, data_dir: str | os.PathLike[str] | None, download: bool) -> list[Pair]:
    roots = layouts.data_roots(data_dir)
    if layouts.locate_duts(split, roots) is None and download:
        from cutout.weights import cache_dir

        layouts.download_duts(roots[0] if roots else cache_dir() / "data", splits=(split,))
        roots = roots or [cache_dir() / "data"]
    return layouts.find_duts(split, roots[0] if roots else None)


def _class_ids(classes: Sequence[str] | None, num_classes: int, folder: Path) -> dict[str, int] | None:
    """Label -> class id for labelme files: background 0, then ``classes`` (or every label, sorted) from 1,
    or from 0 when the list starts with a background name such as ``_background_``."""
    if num_classes <= 1:
        return None
    names = list(classes) if classes is not None else layouts.labelme_classes(folder)
    if names and names[0] in _BACKGROUND_NAMES:
        ids = {name: i for i, name in enumerate(names)}
    else:
        ids = {name: i + 1 for i, name in enumerate(names)}
    if max(ids.values(), default=0) + 1 != num_classes:
        raise UsageError(
            f"the labelme classes are {['(background)', *names]}: {max(ids.values(), default=0) + 1} with the "
            f"background, but num_classes is {num_classes}; set num_classes to match or list the classes"
        )
    return ids


def _at_size(key: str, array: np.ndarray, path: Path, size: tuple[int, int], image: Path) -> np.ndarray:
    """``array`` (read from ``path``) at the upright ``image``'s ``size``. One the size of the image as stored,
    where the image's EXIF orientation turns it (a phone's photo), was made on the stored pixels (by a tool that
    ignores the orientation, as OpenCV's IMREAD_UNCHANGED and many labelling scripts do): it is turned as the
    image is, not stretched into its shape. Any other size is resized, with a warning."""
    height, width = size
    if height != width and array.shape[:2] == (width, height):
        orientation = layouts.stored_orientation(image)
        if orientation >= 5:
            array = layouts.upright(array, orientation)
    if array.shape[:2] != size:
        warnings.warn(
            f"{path} is {array.shape[1]}x{array.shape[0]}, its image {size[1]}x{size[0]}; resized", stacklevel=4
        )
        return resize_array(key, array, size)
    return array
