"""The Python API: ``remove`` for one image, :class:`Session` for many.

    >>> import cutout
    >>> png_bytes = cutout.remove(open("photo.jpg", "rb").read())      # doctest: +SKIP
    >>> session = cutout.new_session("u2netp", backend="onnx")         # doctest: +SKIP
    >>> mask = session.mask(rgb_array)                                  # (H, W) uint8

``remove`` returns the same kind of thing it was given: an array for an array, a PIL image for a PIL image,
PNG bytes for bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cutout.backends import Predictor, create_predictor
from cutout.errors import UsageError
from cutout.io.images import ImageLike, load_image, rgb_array
from cutout.preprocess import mask_from_output, model_input
from cutout.registry import DEFAULT_MODEL, SPECS, ModelSpec, get_spec


def spec_for(model: str | Path) -> tuple[ModelSpec, Path | None]:
    """The spec for a built-in name, or for a weights file path (matched by its name, else U2-Net rules)."""
    text = str(model)
    if text in SPECS:
        return SPECS[text], None
    path = Path(text)
    if path.suffix.lower() in (".onnx", ".pth", ".pt", ".ckpt"):
        if not path.is_file():
            raise UsageError(f"model file {path} does not exist")
        stem = path.stem.lower().replace("-", "_")
        for name in sorted(SPECS, key=len, reverse=True):
            if stem.startswith(name.replace("-", "_")):
                return SPECS[name], path
        if "modnet" in stem:
            return SPECS["modnet"], path
        return SPECS["u2netp"], path
    return get_spec(text), None


class Session:
    """One loaded model, reused for many images."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, *, backend: str = "auto", device: str = "auto") -> None:
        self.spec, weights = spec_for(model)
        self.predictor: Predictor = create_predictor(self.spec, backend=backend, device=device, weights=weights)

    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Masks for RGB arrays; images with the same network input size run as one batch.

        Shape: each image (H, W, 3) uint8 -> (H, W) uint8.
        """
        inputs = [model_input(self.spec, rgb) for rgb in images]
        results: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(inputs):
            groups.setdefault(x.shape, []).append(i)
        for indices in groups.values():
            predictions = self.predictor.predict(np.concatenate([inputs[i] for i in indices]))
            for i, prediction in zip(indices, predictions, strict=True):
                height, width = images[i].shape[:2]
                results[i] = mask_from_output(self.spec, prediction, height, width)
        return [r for r in results if r is not None]

    def mask(self, image: ImageLike) -> np.ndarray:
        """The 8-bit mask of one image. Shape: (H, W) uint8."""
        return self.masks([rgb_array(load_image(image))])[0]

    def remove(self, image: ImageLike, *, only_mask: bool = False) -> ImageLike:
        """The RGBA cutout (straight, not premultiplied colour) or, with ``only_mask``, the mask."""
        pil = load_image(image)
        rgb = rgb_array(pil)
        mask = self.masks([rgb])[0]
        result = mask if only_mask else np.dstack([rgb, mask])
        return _like(image, result)


def _like(original: ImageLike, result: np.ndarray) -> ImageLike:
    if isinstance(original, np.ndarray):
        return result
    pil = Image.fromarray(result)
    if isinstance(original, Image.Image):
        return pil
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def new_session(model: str | Path = DEFAULT_MODEL, *, backend: str = "auto", device: str = "auto") -> Session:
    """Load a model once for many calls to :meth:`Session.remove` / :meth:`Session.mask`."""
    return Session(model, backend=backend, device=device)


def remove(
    image: ImageLike,
    *,
    model: str | Path = DEFAULT_MODEL,
    backend: str = "auto",
    device: str = "auto",
    only_mask: bool = False,
    session: Session | None = None,
) -> ImageLike:
    """Cut the subject out of ``image``: an RGBA cutout, or the mask with ``only_mask``.

    Args:
        image: a (H, W[, 3|4]) uint8 array, a PIL image, encoded bytes, or a path.
        model: a built-in model name (``cutout weights list``) or a path to an .onnx/.pth file.
        session: reuse a loaded model (then ``model``, ``backend`` and ``device`` are ignored).

    Returns:
        An array for an array, a PIL image for a PIL image, PNG bytes for bytes or a path.
    """
    session = session or Session(model, backend=backend, device=device)
    return session.remove(image, only_mask=only_mask)
