"""The Python API: ``remove`` for one image, :class:`Session` for many, ``process_images`` for folders.

    >>> import cutout
    >>> png_bytes = cutout.remove(open("photo.jpg", "rb").read())      # doctest: +SKIP
    >>> session = cutout.new_session("u2netp", backend="onnx")         # doctest: +SKIP
    >>> mask = session.mask(rgb_array)                                  # (H, W) uint8
    >>> on_green = session.remove(rgb_array, bg="#00ff00")              # (H, W, 3) uint8

``remove`` returns the same kind of thing it was given: an array for an array, a PIL image for a PIL image,
PNG bytes for bytes or a path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cutout.backends import Predictor, backend_for, check_threads, cpu_concurrency, create_predictor
from cutout.batch import Job, Outcome, full_pixels, prepare, process_images
from cutout.compose import Background, compose, image_background, keep_transparency, parse_background
from cutout.errors import UsageError
from cutout.io.encode import encode_image
from cutout.io.images import (
    ImageLike,
    alpha_array,
    icc_profile,
    kept_exif,
    kept_text,
    kept_xmp_of,
    load_image,
    print_resolution,
    rgb_array,
)
from cutout.options import RemoveOptions
from cutout.pipeline import in_background
from cutout.preprocess import mask_from_output, model_input
from cutout.refine import clean_mask
from cutout.refine.foreground import estimate_foreground
from cutout.refine.refiner import REFINE_METHODS, MNetRefiner, refine_mask
from cutout.registry import DEFAULT_MODEL, SPEC_FILE, SPECS, ModelSpec, get_spec, spec_from_file

__all__ = ["Job", "Outcome", "Session", "make_options", "new_session", "process_images", "remove", "spec_for"]


_WEIGHTS_SUFFIXES = (".onnx", ".pth", ".pt", ".ckpt")  # a model given as a file, not a name


def spec_for(model: str | Path) -> tuple[ModelSpec, Path | None]:
    """The spec for a built-in name, or for a weights file path: an exported model's own (its spec.json beside
    it), else matched by the file's name, else U2-Net rules."""
    text = str(model)
    if text in SPECS:
        return SPECS[text], None
    path = Path(text)
    if path.is_dir() and (path / "spec.json").is_file():  # an exported model's folder
        return spec_from_file(path / "spec.json"), None
    if path.suffix.lower() in _WEIGHTS_SUFFIXES:
        if not path.is_file():
            raise UsageError(f"model file {path} does not exist")
        beside = path.parent / SPEC_FILE
        if beside.is_file():  # a file of a model `cutout train` exported: its rules (size, normalisation, kind)
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                spec = spec_from_file(beside)
                if path.name in {weights.filename for weights in spec.weights}:
                    return spec, path
        stem = path.stem.lower().replace("-", "_")
        for name in sorted(SPECS, key=len, reverse=True):
            if stem.startswith(name.replace("-", "_")):
                return SPECS[name], path
        if "modnet" in stem:
            return SPECS["modnet"], path
        return SPECS["u2netp"], path
    return get_spec(text), None


def make_options(options: RemoveOptions | None = None, **changes: Any) -> RemoveOptions:
    """``options`` (or the defaults) with ``changes``; ``bg`` takes what :func:`background_from` does."""
    if "bg" in changes:
        changes["background"] = background_from(changes.pop("bg"))
    unknown = set(changes) - {f.name for f in dataclasses.fields(RemoveOptions)}
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join(sorted(unknown))}; see cutout.options.RemoveOptions")
    if changes.get("refine", REFINE_METHODS[0]) not in REFINE_METHODS:
        raise UsageError(f"unknown refinement {changes['refine']!r}; use one of {', '.join(REFINE_METHODS)}")
    return dataclasses.replace(options or RemoveOptions(), **changes)


def background_from(bg: str | Path | Sequence[int] | Background | None) -> Background | None:
    """A :class:`Background` from the API's ``bg``: a string as after ``--bg`` (a colour, an image path, ``"blur"``
    or ``"blur:RADIUS"``), an image file's Path, an (r, g, b) or (r, g, b, a) colour of 0-255 numbers, a
    Background, or None (transparent).

    Raises:
        UsageError: anything else, or a colour, path or radius that does not work.
    """
    if bg is None or isinstance(bg, Background):
        return bg
    if isinstance(bg, str):
        return parse_background(bg)
    if isinstance(bg, Path):
        return image_background(bg.expanduser())
    if isinstance(bg, np.ndarray) and bg.ndim == 1:
        bg = bg.tolist()
    colour = isinstance(bg, Sequence) and not isinstance(bg, bytes | bytearray) and len(bg) in (3, 4)
    if colour and all(isinstance(v, Integral) for v in bg):
        if not all(0 <= v <= 255 for v in bg):
            raise UsageError(f"background colour {tuple(bg)!r} must have numbers from 0 to 255")
        r, g, b, *a = (int(v) for v in bg)
        return Background("color", color=(r, g, b, a[0] if a else 255))
    plain = isinstance(bg, tuple | list | int | float | bytes) and len(repr(bg)) <= 60
    what = repr(bg) if plain else f"(a {type(bg).__module__}.{type(bg).__name__})"
    raise UsageError(
        f'bg={what} is not a background; give a colour ("white", "#00ff00", (0, 255, 0) or (0, 0, 0, 128)), '
        'an image path, "blur", a Background or None'
    )


class Session:
    """One loaded model, reused for many images."""

    _gpu: str | None = None  # the CUDA device when the model runs there with torch (the guided filter follows)

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        backend: str = "auto",
        device: str = "auto",
        threads: int | None = None,
        background: bool = False,
    ) -> None:
        """``threads``: CPU threads per inference (None: all cores; 1 suits many images run in parallel).

        ``background``: an onnxruntime model on the CPU is loaded in a thread (after its weights file is found or
        downloaded, here), so that reading and decoding the first images overlap it, as ``cutout image`` does; the
        first use of ``predictor`` waits for it and raises its error, if any. Other backends load at once.
        """
        check_threads(threads)
        threads = None if threads is None else int(threads)  # numpy's integers too
        self.spec, weights = spec_for(model)
        self._settings = {"backend": backend, "device": device, "threads": threads}
        self._refiners: dict[str, MNetRefiner] = {}
        self._refiners_lock = threading.Lock()
        self._predictor: Predictor | None = None
        self._loading: Future[Predictor] | None = None
        if background:  # resolved here only when asked: create_predictor resolves it again anyway
            name, parsed = backend_for(backend, device, weights)
            background = name == "onnx" and parsed.kind == "cpu"
        if background:
            from cutout.convert import resolve_weights

            path = weights if weights is not None else resolve_weights(self.spec, "onnx")
            self._concurrency = cpu_concurrency(threads)
            self._loading = in_background(
                lambda: create_predictor(self.spec, backend="onnx", device="cpu", weights=path, threads=threads)
            )
            return
        self.predictor = create_predictor(self.spec, backend=backend, device=device, weights=weights, threads=threads)
        # the guided filter runs on the GPU too when the model runs there with torch
        gpu = self.predictor.backend == "torch" and str(getattr(self.predictor, "device", "cpu")).startswith("cuda")
        self._gpu = str(getattr(self.predictor, "device", "")) if gpu else None

    @property
    def predictor(self) -> Predictor:
        """The model's predictor (waiting for a background load to end)."""
        if self._predictor is None:
            assert self._loading is not None
            self._predictor = self._loading.result()
        return self._predictor

    @predictor.setter
    def predictor(self, predictor: Predictor) -> None:
        self._predictor = predictor

    @property
    def concurrency(self) -> int:
        """How many inferences may run at once from different threads; known before a background load ends."""
        return self._concurrency if self._predictor is None else self._predictor.concurrency

    def load_for(self, options: RemoveOptions) -> None:
        """Load what ``options`` need besides the model (the MNet refiner), so a missing one fails before any work."""
        if options.refine == "mnet":
            self.refiner(options.refiner)

    def refiner(self, model: str | Path) -> MNetRefiner:
        """The MNet refiner ``model`` (a trained model's name, folder or weights file), loaded once."""
        with self._refiners_lock:
            key = str(model)
            if key not in self._refiners:
                try:
                    spec, weights = spec_for(model)
                except UsageError as error:
                    path = Path(key)
                    if path.suffix.lower() in _WEIGHTS_SUFFIXES or len(path.parts) > 1 or path.exists():
                        raise UsageError(f"{error}; --refiner takes a trained MNet's name, folder or file") from None
                    raise UsageError(
                        f"no MNet refiner named {key!r}: cutout ships none (none trained so far beats the guided "
                        f"filter, --refine guided). Train one with `cutout train --model mnet --data dim:FOLDER "
                        f"--name {key}`, or give --refiner a trained MNet's name, folder or weights file"
                    ) from None
                predictor = create_predictor(spec, weights=weights, **self._settings)  # type: ignore[arg-type]
                self._refiners[key] = MNetRefiner(predictor)
            return self._refiners[key]

    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Masks for RGB arrays; images with the same network input size run as one batch.

        Shape: each image (H, W, 3) uint8 -> (H, W) uint8.
        """
        inputs = [model_input(self.spec, rgb) for rgb in images]
        return self.masks_from_inputs(inputs, [(rgb.shape[0], rgb.shape[1]) for rgb in images])

    def masks_from_inputs(self, inputs: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """Masks for prepared network inputs (:func:`~cutout.preprocess.model_input`) and full (height, width)s.

        Shape: each input (1, 3, h, w) float32 -> (height, width) uint8.
        """
        predictions = self.predictions(inputs)
        return [mask_from_output(self.spec, p, *size) for p, size in zip(predictions, sizes, strict=True)]

    def predictions(self, inputs: Sequence[np.ndarray], stop: threading.Event | None = None) -> list[np.ndarray]:
        """The raw mask output at network resolution; inputs of the same size run as one batch.

        ``stop``: a pipeline's cancel event, for :meth:`stop_inference`.

        Shape: each input (1, 3, h, w) float32 -> (h, w) float32.
        """
        results: list[np.ndarray | None] = [None] * len(inputs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(inputs):
            groups.setdefault(x.shape, []).append(i)
        for indices in groups.values():
            predictions = self.predictor.predict(np.concatenate([inputs[i] for i in indices]), stop)
            for i, prediction in zip(indices, predictions, strict=True):
                results[i] = prediction
        return [r for r in results if r is not None]

    def stop_inference(self, stop: threading.Event) -> None:
        """End the :meth:`predictions` running with ``stop`` now, from any thread: they raise
        :class:`~cutout.errors.Stopped` (onnxruntime ends a run within milliseconds; torch finishes its forward
        pass). On Ctrl-C this saves waiting for inferences whose results would be dropped."""
        loading = self._loading
        if self._predictor is None and (loading is None or not loading.done() or loading.exception()):
            return  # nothing can be running yet
        self.predictor.stop_runs(stop)

    def stop_inference_on(self, cancel: threading.Event) -> threading.Thread:
        """Once ``cancel`` is set (a pipeline's Ctrl-C, --fail-fast, or the end of its work), end the inferences
        running with it at once (:meth:`stop_inference`) rather than wait for results that would be dropped. A
        thread waits for it, and is returned: set ``cancel`` when the work ends, as every pipeline does, then
        join the thread (it ends at once), so that none is left running when the program exits."""

        def watch() -> None:
            cancel.wait()
            self.stop_inference(cancel)

        watcher = threading.Thread(target=watch, name="cutout-stop-inference", daemon=True)
        watcher.start()
        return watcher

    def mask(self, image: ImageLike) -> np.ndarray:
        """The 8-bit mask of one image, within the image's own transparency if it has any (as
        ``remove(..., only_mask=True)``); :meth:`masks` gives the network's mask of RGB arrays alone.

        Shape: (H, W) uint8.
        """
        loaded = load_image(image)
        return keep_transparency(self.masks([rgb_array(loaded)])[0], alpha_array(loaded))

    def finish_mask(self, rgb: np.ndarray, mask: np.ndarray, options: RemoveOptions) -> np.ndarray:
        """The network's mask after the clean-up and edge refinement that ``options`` ask for.

        Shape: rgb (H, W, 3), mask (H, W) -> (H, W) uint8.
        """
        if options.post_process:
            mask = clean_mask(mask)
        refiner = self.refiner(options.refiner) if options.refine == "mnet" else None
        return refine_mask(rgb, mask, options.refine, refiner, torch_device=self._gpu)  # type: ignore[arg-type]

    def finish(
        self,
        rgb: np.ndarray,
        mask: np.ndarray,
        options: RemoveOptions,
        *,
        writable: bool = False,
        alpha: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The subject's colours and its final mask: refined, within the input's own ``alpha`` (if it has one),
        and with the old background's colour taken out of the soft edge (foreground estimation) unless
        ``options`` turn that off.

        ``writable``: the new colours may be written into ``rgb`` (if it is writable) instead of a copy.

        Shape: rgb (H, W, 3), mask (H, W), alpha (H, W) or None -> (H, W, 3), (H, W) uint8.
        """
        mask = keep_transparency(self.finish_mask(rgb, mask, options), alpha)
        if options.foreground_estimation and not options.only_mask:
            rgb = estimate_foreground(rgb, mask, in_place=writable)
        return rgb, mask

    def render(
        self,
        rgb: np.ndarray,
        mask: np.ndarray,
        options: RemoveOptions,
        *,
        writable: bool = False,
        alpha: np.ndarray | None = None,
        profile: bytes | None = None,
    ) -> np.ndarray:
        """The result for an image and its mask: the mask, an RGBA cutout, or the subject over a background.

        ``writable``, ``alpha`` (the input's own transparency): as for :meth:`finish`. ``profile``: the image's
        ICC profile (None: sRGB), into which a background colour or image is converted (see
        :class:`~cutout.compose.Background`).

        Shape: rgb (H, W, 3), mask (H, W) -> (H, W), (H, W, 3) or (H, W, 4) uint8.
        """
        colours, mask = self.finish(rgb, mask, options, writable=writable, alpha=alpha)
        if options.only_mask:
            return mask
        background = options.background
        if (
            background is not None
            and background.kind != "blur"
            and background.hdr is None
            and background.profile != profile
        ):
            background = dataclasses.replace(background, profile=profile)  # not on every frame of a video: None
        return compose(colours, mask, background)

    def remove(self, image: ImageLike, options: RemoveOptions | None = None, **changes: Any) -> ImageLike:
        """Cut out one image. Keyword arguments are :class:`RemoveOptions` fields (``bg`` may be a string)."""
        opts = make_options(options, **changes)
        if isinstance(image, (bytes, bytearray, memoryview, str, Path)):
            # files decode exactly as `cutout image` does them (a JPEG draft for the model, then full size)
            source = bytes(image) if isinstance(image, (bytearray, memoryview)) else image
            source = Path(source) if isinstance(source, str) else source
            prepared = prepare(self.spec, source, opts.max_pixels)
            mask = self.masks_from_inputs([prepared.input], [prepared.size])[0]
            rgb, alpha = full_pixels(prepared, source, opts.max_pixels), prepared.alpha
            # the bytes `cutout image` writes: its PNG encoder, the photo's ICC profile and kept EXIF
            result = self.render(rgb, mask, opts, writable=True, alpha=alpha, profile=prepared.icc)
            icc, exif, dpi, xmp, text = prepared.icc, prepared.exif, prepared.dpi, prepared.xmp, prepared.text
            return encode_image(result, "png", icc_profile=icc, exif=exif, dpi=dpi, xmp=xmp, text=text)
        loaded = load_image(image, max_pixels=opts.max_pixels)
        rgb, alpha = rgb_array(loaded), alpha_array(loaded)
        mask = self.masks([rgb])[0]
        profile = icc_profile(loaded) if isinstance(image, Image.Image) else None
        result = self.render(rgb, mask, opts, alpha=alpha, profile=profile)
        if isinstance(image, np.ndarray):
            return result
        return _pil_like(loaded, result, profile)


def _pil_like(original: Image.Image, result: np.ndarray, profile: bytes | None) -> Image.Image:
    """``result`` as a PIL image that carries ``original``'s ICC ``profile`` (an RGB one, as the result's
    colours are), its kept EXIF (date, author, copyright: :func:`cutout.io.images.kept_exif`) and its print
    resolution (``info["dpi"]``), kept XMP (``info["xmp"]``: keywords, title, rating) and kept PNG text notes
    (``info["Title"]``, ``info["Copyright"]``: :func:`cutout.io.images.kept_text`), so that saving it can keep what
    the photo's colours mean, who made it and how it is filed."""
    pil = Image.fromarray(result)
    if profile is not None and result.ndim == 3:
        pil.info["icc_profile"] = profile
    kept = kept_exif(original)
    if kept is not None:
        pil.info["exif"] = kept.tobytes()
    dpi = print_resolution(original)
    if dpi is not None:
        pil.info["dpi"] = dpi
    xmp = kept_xmp_of(original)
    if xmp is not None:
        pil.info["xmp"] = xmp  # Pillow writes it into JPEG, WebP and TIFF (img.save(path, xmp=img.info["xmp"]))
    pil.info.update(kept_text(original) or {})  # a PNG's text notes, where Pillow gives a PNG's (Title, Author)
    return pil


def new_session(
    model: str | Path = DEFAULT_MODEL, *, backend: str = "auto", device: str = "auto", threads: int | None = None
) -> Session:
    """Load a model once for many calls to :meth:`Session.remove` / :meth:`Session.mask`."""
    return Session(model, backend=backend, device=device, threads=threads)


def remove(
    image: ImageLike,
    *,
    model: str | Path = DEFAULT_MODEL,
    backend: str = "auto",
    device: str = "auto",
    session: Session | None = None,
    options: RemoveOptions | None = None,
    only_mask: bool | None = None,
    bg: str | Path | Sequence[int] | Background | None = None,
    post_process: bool | None = None,
    refine: str | None = None,
    foreground_estimation: bool | None = None,
) -> ImageLike:
    """Cut the subject out of ``image``: an RGBA cutout, the subject over ``bg``, or the mask.

    Args:
        image: a (H, W[, 3|4]) uint8 array, a PIL image, encoded bytes, or a path.
        model: a built-in model name (``cutout weights list``) or a path to an .onnx/.pth file.
        session: reuse a loaded model (then ``model``, ``backend`` and ``device`` are ignored).
        options: a :class:`RemoveOptions`; the keyword options below override its fields.
        only_mask: return the (H, W) mask.
        bg: a colour (``"white"``, ``"#00ff00"``, ``"0,0,0,128"``, ``(0, 255, 0)``), an image path, or ``"blur"``.
        post_process: clean the mask with a morphological opening (like rembg's ``-ppm``).
        refine: edge refinement: ``"none"``, ``"guided"`` or ``"mnet"`` (see :class:`RemoveOptions`).
        foreground_estimation: take the old background's colour out of soft edges (default on).

    Returns:
        An array for an array, a PIL image for a PIL image, PNG bytes for bytes or a path.
    """
    session = session or Session(model, backend=backend, device=device)
    given = {
        "only_mask": only_mask,
        "post_process": post_process,
        "bg": bg,
        "refine": refine,
        "foreground_estimation": foreground_estimation,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    return session.remove(image, options, **changes)
