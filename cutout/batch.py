"""Many images through one model: the pipeline behind ``cutout image`` and :func:`cutout.process_images`.

    >>> from cutout.batch import Job, process_images                       # doctest: +SKIP
    >>> jobs = [Job(Path("in/a.jpg"), Path("out/a.png"))]
    >>> for outcome in process_images(jobs, session, RemoveOptions()):
    ...     print(outcome.status, outcome.job.name)

Each job is decoded in a pool of threads, masks are computed in batches on one device, and each result is
finished (clean-up, composition), encoded and written atomically in a pool of threads. A bad input fails
its own job with a reason; the batch goes on. Outcomes come back in input order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image

from cutout.errors import CutoutError, DiskFullError, InputError, memory_shortage, out_of_memory
from cutout.io.encode import encode_cutout_png, made_by_cutout
from cutout.io.images import (
    alpha_array,
    encode_image,
    full_size,
    icc_profile,
    kept_exif,
    kept_text,
    kept_xmp_of,
    load_image,
    plain_jpeg_rgb,
    print_resolution,
    reading_image,
    rgb_array,
    write_atomic,
)
from cutout.options import RemoveOptions
from cutout.pipeline import batched, parallel_map
from cutout.preprocess import mask_from_output, model_input

if TYPE_CHECKING:
    from cutout.api import Session
    from cutout.registry import ModelSpec

Status = Literal["done", "skipped", "failed"]
#: Why a job is skipped that :attr:`Job.skip_if_ours` marks: the file is an earlier result (``photo.cutout.png``).
MADE_BY_CUTOUT = "made by cutout (an earlier result); name the file itself to cut it out again"
_LESS_MEMORY = "close other programs, or run it alone with --workers 1"


@dataclass(frozen=True)
class Job:
    """One input (a path, or encoded bytes from stdin) and where its result goes (None: return the bytes)."""

    source: Path | bytes
    target: Path | None
    format: str = "png"
    #: skipped, not cut out again, if cutout made the file: set for NAME.cutout.EXT files (the name cutout gives a
    #: result beside its photo) found in a folder or given with others (a glob), not for a file named alone
    skip_if_ours: bool = False

    @property
    def name(self) -> str:
        return "<stdin>" if isinstance(self.source, bytes) else str(self.source)


@dataclass
class Outcome:
    """What happened to one job; ``data`` holds the encoded result when the job has no target."""

    job: Job
    status: Status
    reason: str = ""
    data: bytes | None = None
    #: the output's disk is full: the batch ends after this outcome (no later result could be saved either)
    ends_batch: bool = False


@dataclass
class Prepared:
    """One decoded image, ready for the model.

    ``rgb`` holds the full-resolution pixels, or None when only a JPEG draft was decoded (big photos): the full
    image is decoded again when it is needed, so images waiting for the model cost ~1 MB instead of up to
    36 MB each (12 megapixels).
    """

    input: np.ndarray
    size: tuple[int, int]
    rgb: np.ndarray | None
    icc: bytes | None
    alpha: np.ndarray | None = None  # the image's own transparency, kept in the cutout (None: opaque)
    exif: Image.Exif | None = None  # the photo's date, author and copyright, kept in the cutout
    dpi: tuple[float, float] | None = None  # the photo's print resolution, kept in the cutout
    xmp: bytes | None = None  # the photo's keywords, title, caption, rating and rights (XMP), kept in the cutout
    text: dict[str, str] | None = None  # the photo's text notes (title, author, comment), kept in a PNG cutout


def prepare(spec: ModelSpec, source: Path | bytes, max_pixels: int) -> Prepared:
    """Decode ``source`` for the model: a JPEG at the smallest decoder scale >= the model input, else whole.

    The decoder's own scaling (1/2, 1/4, 1/8: a 12 MP photo decodes at 500 x 375) is far cheaper than a full
    decode and a resize; the full image is decoded again only when the result is composed. Measured on the 54
    saliency test images enlarged to 12 MP (JPEG quality 90): u2netp's masks move by 0.50% on average from those
    of the full decode (at >= 2x the input: 0.37%, 3x: 0.11%) while their error against the ground truth stays
    the same (mean absolute error 0.0731; full decode 0.0736, 2x 0.0729); decoding and making the input of the
    benchmark's 40 images (640 x 480 to 12 MP) takes 1.9 CPU-s instead of 2.2 to 2.5 at 2x.

    Raises:
        InputError: the source is not a readable image.
    """
    draft = (spec.input.size[1], spec.input.size[0]) if spec.input.kind == "fixed" else None
    image = load_image(source, max_pixels=max_pixels, draft=draft)
    width, height = full_size(image)
    with reading_image(str(source) if isinstance(source, Path) else "the data"):  # named in Pillow's warnings
        icc, exif, dpi, xmp = icc_profile(image), kept_exif(image), print_resolution(image), kept_xmp_of(image)
        text = kept_text(image)
    if (width, height) != image.size:
        model = model_input(spec, rgb_array(image), (height, width))
        return Prepared(model, (height, width), None, icc, exif=exif, dpi=dpi, xmp=xmp, text=text)
    rgb = rgb_array(image)
    model_image = image if image.mode == "RGB" else rgb
    model = model_input(spec, model_image)
    return Prepared(model, (height, width), rgb, icc, alpha_array(image), exif, dpi, xmp, text)


def full_pixels(prepared: Prepared, source: Path | bytes, max_pixels: int) -> np.ndarray:
    """The full-resolution RGB pixels of a prepared image (decoding the file again after a draft)."""
    if prepared.rgb is not None:
        return prepared.rgb
    rgb = plain_jpeg_rgb(source, max_pixels)
    if rgb is None:
        rgb = rgb_array(load_image(source, max_pixels=max_pixels))
    if rgb.shape[:2] != prepared.size:
        raise InputError(f"{source!s:.200} changed while it was being processed; run it again")
    return rgb


@dataclass
class _Work:
    job: Job
    prepared: Prepared | None = None
    prediction: np.ndarray | None = None  # at network resolution: small while it waits for an encoder
    error: str = ""
    skip: str = ""  # why the job is skipped rather than done


def process_images(
    jobs: Iterable[Job],
    session: Session,
    options: RemoveOptions,
    *,
    batch_size: int = 1,
    workers: int = 2,
    fail_fast: bool = False,
    cancel: threading.Event | None = None,
) -> Generator[Outcome, None, None]:
    """Run every job; yield one :class:`Outcome` per job, in order.

    A job marked :attr:`Job.skip_if_ours` whose file cutout made (an earlier result) is skipped, its outcome says so.

    With ``fail_fast`` the first failure raises its :class:`CutoutError` after being yielded, so no more
    jobs start. A full disk (:class:`~cutout.errors.DiskFullError`) ends the run after its outcome (marked
    :attr:`Outcome.ends_batch`) whatever ``fail_fast`` says: no later result could be saved either.
    Interrupting (closing the generator, Ctrl-C) stops every thread; files already being written are completed
    (writes are atomic), no partial file is left. ``cancel``, if given, is set then
    too: an endless ``jobs`` (``--watch``) that waits on it ends at once.
    """
    # Each stage pulls from the one before in its own feeder thread; "ahead" is kept short because every image
    # in flight may hold full-resolution pixels. One event takes every thread down on error or Ctrl-C.
    cancel = cancel or threading.Event()
    watcher = session.stop_inference_on(cancel)
    concurrency = session.concurrency  # known while a model loads in the background: decoding starts at once
    decoded = parallel_map(_decoder(session.spec, options.max_pixels), jobs, workers, ahead=workers, cancel=cancel)
    inferred = parallel_map(
        lambda batch: _infer(session, batch, cancel), batched(decoded, batch_size), concurrency, concurrency, cancel
    )
    masked = (work for batch in inferred for work in batch)
    finished = parallel_map(lambda w: _finish(session, options, w), masked, workers, ahead=workers, cancel=cancel)
    try:
        for outcome in finished:
            yield outcome
            if outcome.ends_batch:  # the images in flight are finished (or fail) unreported; the rest not started
                return
            if fail_fast and outcome.status == "failed":
                raise CutoutError(f"{outcome.job.name}: {outcome.reason} (stopped by --fail-fast)")
    finally:
        cancel.set()
        finished.close()
        watcher.join(timeout=5.0)


def _decoder(spec: ModelSpec, max_pixels: int) -> Callable[[Job], _Work]:
    def decode(job: Job) -> _Work:
        if job.skip_if_ours and isinstance(job.source, Path) and made_by_cutout(job.source):
            return _Work(job, skip=MADE_BY_CUTOUT)
        try:
            return _Work(job, prepare(spec, job.source, max_pixels))
        except CutoutError as error:
            return _Work(job, error=str(error))
        except MemoryError:
            return _Work(job, error=f"not enough memory to decode it; {_LESS_MEMORY}")
        except (OSError, ValueError) as error:  # a decoder's own failure on a hostile file
            return _Work(job, error=f"cannot decode: {error}")
        except Exception as error:  # anything else fails this file alone too
            return _Work(job, error=f"cannot decode: {_unexpected(error)}")

    return decode


def _infer(session: Session, batch: list[_Work], cancel: threading.Event) -> list[_Work]:
    ready = [(w, w.prepared) for w in batch if w.prepared is not None]
    if ready:
        try:
            predictions = session.predictions([p.input for _, p in ready], cancel)
        except Exception as error:  # out of memory fails these images alone; anything else ends the batch
            if not out_of_memory(error):
                raise
            smaller = f"lower --batch-size (now {len(batch)}), " if len(batch) > 1 else ""
            reason = (
                f"not enough memory to run the model ({memory_shortage(error)}); {smaller}close other programs, or run "
                f"one image at a time with --threads {os.cpu_count() or 1}"
            )
            for work, _ in ready:
                work.error, work.prepared = reason, None
            return batch
        for (work, _), prediction in zip(ready, predictions, strict=True):
            work.prediction = prediction
    return batch


def _finish(session: Session, options: RemoveOptions, work: _Work) -> Outcome:
    if work.skip:
        return Outcome(work.job, "skipped", work.skip)
    if work.prepared is None or work.prediction is None:
        return Outcome(work.job, "failed", work.error or "not decoded")
    try:
        mask = mask_from_output(session.spec, work.prediction, *work.prepared.size)
        rgb = full_pixels(work.prepared, work.job.source, options.max_pixels)
        data = _encode(session, options, rgb, mask, work.job.format, work.prepared)
        if work.job.target is None:
            return Outcome(work.job, "done", data=data)
        write_atomic(work.job.target, data)
    except DiskFullError as error:
        return Outcome(work.job, "failed", str(error), ends_batch=True)
    except CutoutError as error:
        return Outcome(work.job, "failed", str(error))
    except MemoryError:
        height, width = work.prepared.size
        return Outcome(work.job, "failed", f"not enough memory to finish this {width} x {height} image; {_LESS_MEMORY}")
    except OSError as error:
        return Outcome(work.job, "failed", f"cannot write {work.job.target}: {error.strerror or error}")
    except Exception as error:  # a fault of cutout's (or a library's) on this image: the rest of the batch goes on
        return Outcome(work.job, "failed", _unexpected(error))
    return Outcome(work.job, "done")


def _unexpected(error: Exception) -> str:
    """The reason given for a failure that is a fault of cutout's or of a library's, not a known fault of a file."""
    return f"unexpected {type(error).__name__}: {error}; please report it, with the file if you can"


def _encode(
    session: Session, options: RemoveOptions, rgb: np.ndarray, mask: np.ndarray, format: str, prepared: Prepared
) -> bytes:
    # rgb was decoded for this job alone: the edge colours may be estimated into it (writable), saving a copy
    alpha, icc, exif, dpi = prepared.alpha, prepared.icc, prepared.exif, prepared.dpi
    if format == "png" and options.background is None and not options.only_mask:
        # the common case, fused: the same bytes as encode_image(session.render(...)) without a full RGBA copy
        finished = session.finish(rgb, mask, options, writable=True, alpha=alpha)
        return encode_cutout_png(*finished, icc_profile=icc, exif=exif, dpi=dpi, xmp=prepared.xmp, text=prepared.text)
    rendered = session.render(rgb, mask, options, writable=True, alpha=alpha, profile=icc)
    return encode_image(rendered, format, icc_profile=icc, exif=exif, dpi=dpi, xmp=prepared.xmp, text=prepared.text)


def default_workers() -> int:
    """Decode threads and encode threads (each): half the cores, 1 to 8; inference takes the rest.

    On the 2-core reference machine 1 + 1 was measured faster than 2 + 2 (4.63 vs 4.56 images/s) and 7% lighter.
    """
    return max(1, min(8, (os.cpu_count() or 2) // 2))
