"""cutout: cut people and objects out of images and videos.

    >>> import cutout
    >>> rgba = cutout.remove(open("photo.jpg", "rb").read())          # doctest: +SKIP
    >>> session = cutout.new_session("u2netp")                         # doctest: +SKIP
    >>> masks = [session.mask(image) for image in images]              # doctest: +SKIP

Importing cutout is cheap: onnxruntime, torch and huggingface_hub are imported only when a model runs or
weights are fetched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout.errors import BackendError, CutoutError, InputError, UsageError, WeightsError

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "CutoutError",
    "InputError",
    "Session",
    "UsageError",
    "WeightsError",
    "__version__",
    "make_options",
    "new_session",
    "process_images",
    "remove",
]

_API = ("Session", "make_options", "new_session", "process_images", "remove")

if TYPE_CHECKING:
    from cutout.api import Session, make_options, new_session, process_images, remove


def __getattr__(name: str) -> Any:
    # The API pulls in numpy and Pillow; keep `import cutout` (and so `cutout --help`) light.
    if name in _API:
        from cutout import api

        return getattr(api, name)
    raise AttributeError(f"module 'cutout' has no attribute {name!r}")
