"""Videos through one model: decode (own thread) -> infer + smooth + compose (own thread) -> encode (caller).

    >>> from cutout.video import process_video, output_kind                   # doctest: +SKIP
    >>> summary = process_video(Path("clip.mp4"), Path("clip.mov"), session, VideoOptions())

Frames travel through bounded queues, so memory does not depend on the clip's length. The alpha is smoothed
over time at network resolution (:mod:`cutout.refine.temporal`) before it is resized back, composed and
encoded; with smoothing off every frame's mask is exactly what ``cutout image`` gives for that frame.
"""

from __future__ import annotations

import dataclasses
import io
import os
import select
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from cutout.compose import cover, over_background, see_through, shown, stored
from cutout.errors import InputError, UsageError
from cutout.hdr import NAMES, hdr_to_sdr, is_hdr, sdr_to_hdr
from cutout.io.encode import write_all
from cutout.options import DEFAULT_MAX_PIXELS, VideoOptions
from cutout.pipeline import batched, parallel_map, threaded
from cutout.preprocess import model_input, normalize_prediction, resize_mask
from cutout.refine.temporal import TemporalSmoother, frame_signature

if TYPE_CHECKING:
    from cutout.api import Session
    from cutout.io.video import VideoReader

#: Output kinds by extension; a path ending in a slash (or an existing folder) is a folder of PNGs.
KINDS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".webm": "webm",
    ".mkv": "mkv",
    ".webp": "webp",
    ".apng": "apng",
    ".png": "apng",
    ".gif": "gif",
}
_KIND_NAMES = {"png": "a folder of PNGs", "webp": "an animated WebP", "apng": "an APNG", "gif": "a GIF"}
#: Extensions of the animations cutout writes (and reads: an animated GIF, PNG or WebP is a video too).
ANIMATION_SUFFIXES = frozenset(suffix for suffix, kind in KINDS.items() if kind in ("webp", "apng", "gif"))


@dataclass
class VideoSummary:
    """What a run did: frames written, seconds taken, corrupt packets skipped, and announcements.

    ``expected`` is the frame count the container announces, set only when a whole clip gave clearly fewer
    frames (a truncated or damaged file: its data ends early without an error); the output then holds the
    frames that could be read.
    """

    output: Path | None
    frames: int = 0
    seconds: float = 0.0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    expected: int | None = None

    @property
    def short(self) -> bool:
        """Whether the source ended before the frames its container announces (see ``expected``)."""
        return self.expected is not None


def output_kind(target: str | Path | None, options: VideoOptions) -> str:
    """``mp4`` or ``mkv`` (with a background), ``mov`` ProRes 4444 / ``webm`` VP9 (transparent), ``png`` folder,
    ``mask`` or ``mkv-mask`` (the matte).

    ``target`` is best given as the text the user typed: a trailing slash (lost by ``Path``) means a folder.
    """
    if target is not None and (str(target).endswith(("/", "\\")) or os.path.isdir(target)):
        return "png"
    path = None if target is None else Path(target)
    kind = KINDS.get(path.suffix.lower(), "") if path is not None else ""
    if path is not None and not kind:
        raise UsageError(
            f"cannot tell the video format of {path}: name it .mp4 or .mkv (with --bg or --only-mask), .mov (ProRes "
            "4444 with alpha), .webm (VP9 with alpha), .webp, .gif or .apng (an animation), or end it with / for a "
            "folder of PNGs"
        )
    opaque = (
        options.remove.only_mask
        or options.background_video is not None
        or (options.remove.background is not None and options.remove.background.opaque)
    )
    if options.remove.only_mask and kind in ("mp4", "mkv"):
        return "mask" if kind == "mp4" else "mkv-mask"
    if kind in ("mp4", "mkv") and not opaque:
        raise UsageError(
            f"{kind.upper()} (H.264) has no transparency ({see_through(options.remove.background)}): give an opaque "
            "--bg (a colour, an image, a video or blur), use --only-mask, or write .mov (ProRes 4444) or .webm (VP9) "
            "to keep the alpha"
        )
    return kind


def default_output(source: Path, options: VideoOptions) -> Path:
    """``clip.cutout.mp4`` with a background, ``clip.mask.mp4`` for masks, else ``clip.cutout.mov``; an animated
    GIF, PNG or WebP gives the same kind of animation (``anim.cutout.gif``, ``anim.mask.gif``)."""
    if source.suffix.lower() in ANIMATION_SUFFIXES:
        return source.with_name(f"{source.stem}.{'mask' if options.remove.only_mask else 'cutout'}{source.suffix}")
    if options.remove.only_mask:
        return source.with_name(f"{source.stem}.mask.mp4")
    opaque = options.background_video is not None or (
        options.remove.background is not None and options.remove.background.opaque
    )
    return source.with_name(f"{source.stem}.cutout.{'mp4' if opaque else 'mov'}")


@dataclass
class _Frame:
    rgb: np.ndarray | None  # None: a frame the output leaves out (an animation's pacing), passed on as None
    pts: int | None
    input: np.ndarray | None = None
    alpha: np.ndarray | None = None


def cutout_frames(
    frames: Iterable[tuple[np.ndarray | None, int | None] | tuple[np.ndarray | None, int | None, np.ndarray | None]],
    session: Session,
    options: VideoOptions,
    *,
    cancel: threading.Event | None = None,
    hdr: tuple[int, int] | None = None,
    pixel_aspect: Fraction = Fraction(1),
    orientation: tuple[int, bool] = (0, False),
) -> Iterator[tuple[np.ndarray | None, int | None]]:
    """The result for each (rgb, pts) or (rgb, pts, alpha) frame, in order: smoothed mask, then the composed or
    masked frame. A frame's own ``alpha`` (None: opaque) bounds its mask, as for images: what it hid stays hidden.
    A frame whose rgb is None (one the output leaves out) gives None, without a cutout; a background video still
    moves on a frame, so it keeps time with the clip.

    ``hdr``: the frames' HDR signal (transfer, primaries), when the output keeps it: a background colour, image or
    SDR video is converted into it (:mod:`cutout.hdr`). ``pixel_aspect``: the frames' pixel width over height
    (anamorphic video): a background image or video covers them as they are shown. ``orientation``: how the frames
    are shown (:func:`cutout.compose.shown`: a phone's clip is stored sideways): a background image or video goes
    behind them turned so that it shows upright.

    Shape: each rgb (H, W, 3), alpha (H, W) uint8 -> (H, W) mask, (H, W, 3) composite or (H, W, 4) cutout, uint8.
    """
    spec = session.spec
    smoother = TemporalSmoother(options.temporal_smoothing)
    backgrounds = _background_frames(options.background_video, cancel, hdr) if options.background_video else None
    remove = options.remove
    if remove.background is not None and remove.background.kind != "blur":
        shown_in = dataclasses.replace(remove.background, hdr=hdr, pixel_aspect=pixel_aspect, orientation=orientation)
        remove = dataclasses.replace(remove, background=shown_in)
    # the model sees each frame as it is shown: a phone's clip is stored sideways, and on people turned on their
    # side u2netp's masks are far worse (DAVIS dance-twirl: IoU 0.33 against 0.60 upright)
    prepared = (
        _Frame(item[0], item[1], None if item[0] is None else model_input(spec, shown(item[0], orientation)), *item[2:])
        for item in frames
    )

    if cancel is not None:
        session.stop_inference_on(cancel)

    def predict(batch: list[_Frame]) -> tuple[list[_Frame], list[np.ndarray]]:
        inputs = [f.input for f in batch if f.input is not None]
        return batch, session.predictions(inputs, cancel) if inputs else []

    # Batches may run on several threads at once (session.predictor.concurrency); order is kept, and the
    # smoothing below sees the frames in order.
    workers = session.predictor.concurrency
    predicted = parallel_map(predict, batched(prepared, options.batch_size), workers, ahead=workers, cancel=cancel)
    try:
        for batch, predictions in predicted:
            made = iter(predictions)
            for frame in batch:
                if frame.rgb is None or frame.input is None:  # left out of the output: no cutout
                    if backgrounds is not None and not remove.only_mask:
                        next(backgrounds)
                    yield None, frame.pts
                    continue
                prediction = next(made)
                alpha = smoother(
                    normalize_prediction(spec, prediction), frame_signature(frame.input, spec.normalization.std)
                )
                shown_mask = resize_mask(spec, alpha, *_shown_size(frame.rgb, orientation))
                mask = np.ascontiguousarray(stored(shown_mask, orientation))  # as the frame is stored
                if backgrounds is not None and not remove.only_mask:
                    height, width = frame.rgb.shape[:2]
                    picture, picture_aspect = next(backgrounds)
                    background = cover(picture, height, width, pixel_aspect, picture_aspect, orientation)
                    finished = session.finish(frame.rgb, mask, remove, alpha=frame.alpha)
                    yield over_background(*finished, background), frame.pts
                else:
                    yield session.render(frame.rgb, mask, remove, alpha=frame.alpha), frame.pts
    finally:
        # now, not when the garbage collector gets to them: an error's traceback keeps this frame, and with it the
        # inference threads, which would go on reading ``frames`` while the caller closes it (a background video
        # that fails to open ended the run with "generator already executing"; found by fuzzing)
        predicted.close()
        if backgrounds is not None:
            backgrounds.close()


def _shown_size(rgb: np.ndarray, orientation: tuple[int, bool]) -> tuple[int, int]:
    height, width = rgb.shape[:2]
    return (width, height) if orientation[0] % 2 else (height, width)


def _background_frames(
    path: Path, cancel: threading.Event | None, hdr: tuple[int, int] | None = None
) -> Generator[tuple[np.ndarray, Fraction], None, None]:
    """The background video's frames and its pixel aspect, looped for as long as they are asked for, in the signal
    of the frames they go behind: ``hdr`` (an HDR one's transfer and primaries) or SDR (None). An SDR video is
    converted into an HDR signal, an HDR one tone-mapped to SDR (and from there into another HDR signal)."""
    from cutout.io.video import VideoReader

    while True:
        count = 0
        with VideoReader(path) as reader:
            own = (reader.info.color_trc, reader.info.color_primaries) if is_hdr(reader.info.color_trc) else None
            for frame in reader.frames():
                count += 1
                rgb = frame.rgb
                if own is not None and own != hdr:
                    rgb = hdr_to_sdr(rgb, *own)
                if hdr is not None and own != hdr:
                    rgb = sdr_to_hdr(rgb, *hdr)
                turned = reader.info.orientation  # a phone's clip is stored sideways: as it is shown
                aspect = reader.info.pixel_aspect
                if turned != (0, False):
                    rgb = np.ascontiguousarray(shown(rgb, turned))
                yield rgb, (1 / aspect if turned[0] % 2 else aspect)
        if count == 0 or (cancel is not None and cancel.is_set()):
            raise UsageError(f"the background video {path} has no frames")


def process_video(
    source: Path,
    target: Path,
    session: Session,
    options: VideoOptions,
    *,
    kind: str | None = None,
    on_frame: Callable[[int], None] | None = None,
    on_start: Callable[[int | None], None] | None = None,
    keep_partial: bool = True,
) -> VideoSummary:
    """Cut the subject out of every frame of ``source`` into ``target``, keeping timing and audio.

    ``on_start(frame_count or None)`` and ``on_frame(frames_done)`` report progress. Ctrl-C leaves a valid,
    shorter file (``summary.interrupted``), or nothing if not ``keep_partial``; any other error leaves nothing.
    """
    from cutout.io.video import VideoReader, VideoWriter
    from cutout.io.video_writer import AnimationPacing

    kind = kind or output_kind(target, options)
    summary = VideoSummary(target)
    started = time.perf_counter()
    cancel = threading.Event()
    with VideoReader(source, start=options.start, duration=options.duration) as reader:
        if on_start is not None:
            on_start(reader.info.frame_count)
        durations: dict[int | None, int | None] = {}  # by pts, from the decoder thread to the writer (a GIF's delays)
        info = reader.info
        hdr = to_sdr = None
        if is_hdr(info.color_trc) and options.remove.only_mask:
            # a matte holds alpha, not colours: tagged HLG or PQ, an editor would tone-map its values on an SDR
            # timeline, changing the alpha; BT.709 leaves them as they are
            info = dataclasses.replace(info, colorspace=1, color_primaries=1, color_trc=1)
        elif is_hdr(info.color_trc) and kind in ("mp4", "mov", "webm", "mkv"):  # kept, tagged as the input
            hdr = (info.color_trc, info.color_primaries)
        elif is_hdr(info.color_trc):  # PNG, GIF, WebP: no HDR; its signal shown as sRGB would look pale
            to_sdr = (info.color_trc, info.color_primaries)
            summary.notes.append(
                f"the input is HDR ({NAMES[info.color_trc]}): tone-mapped to SDR for {_KIND_NAMES.get(kind, kind)}, "
                "which cannot carry HDR; .mov, .webm, .mp4 or .mkv keep it"
            )

        if info.interlaced:  # the reader deinterlaces (see cutout.io.video._deinterlaced)
            summary.notes.append(
                f"the input is interlaced ({info.interlaced}): each frame was deinterlaced (FFmpeg's bwdif) before "
                "the cutout, which is progressive, at the same frame rate"
            )

        # an animation keeps at most 50 frames a second (see AnimationPacing): the frames it would leave out (every
        # other one of a 60 fps clip) are not cut out, only passed on for their timing
        pacing = AnimationPacing.for_kind(kind, info.time_base)

        def frames() -> Iterator[tuple[np.ndarray | None, int | None, np.ndarray | None]]:
            for frame in reader.frames():
                durations[frame.pts] = frame.duration
                if pacing is not None and not pacing.admits(frame.pts):
                    yield None, frame.pts, None
                    continue
                yield hdr_to_sdr(frame.rgb, *to_sdr) if to_sdr else frame.rgb, frame.pts, frame.alpha

        decoded = threaded(frames(), maxsize=4, name="cutout-decode", cancel=cancel)
        results = threaded(
            cutout_frames(
                decoded,
                session,
                options,
                cancel=cancel,
                hdr=hdr,
                pixel_aspect=info.pixel_aspect,
                orientation=info.orientation,
            ),
            maxsize=4,
            name="cutout-infer",
            cancel=cancel,
        )
        writer_notes: list[str] = []
        try:
            with VideoWriter(
                target, info, kind=kind, audio_from=source, start=options.start, duration=options.duration
            ) as writer:
                writer_notes = writer.notes  # the same list: what closing the file finds (damaged audio) counts too
                writer.keep_on_interrupt = keep_partial
                try:
                    for array, pts in results:
                        writer.write(array, pts, durations.pop(pts, None))
                        summary.frames += 1
                        if on_frame is not None:
                            on_frame(summary.frames)
                except KeyboardInterrupt:
                    summary.interrupted = True
                    raise
        except KeyboardInterrupt:
            pass  # the writer has closed a valid, shorter file
        finally:
            summary.notes = [*summary.notes, *writer_notes]
            cancel.set()
            results.close()
            decoded.close()
        summary.skipped = reader.skipped
        summary.notes = [*summary.notes, *_timing_notes(reader)]
        announced = reader.info.frame_count
        whole = options.start is None and options.duration is None and not summary.interrupted
        # a container's count may differ from the decoded frames by a frame or two (edit lists); more is missing data
        if whole and announced and announced - summary.frames > max(2, announced // 100):
            summary.expected = announced
    summary.seconds = time.perf_counter() - started
    return summary


def _timing_notes(reader: VideoReader) -> list[str]:
    """What the reader did to frames whose timestamps went back or whose size changed midway."""
    notes = []
    timeline, info = reader.timeline, reader.info
    if timeline.restarts:
        notes.append(
            f"the clip's timestamps start again {timeline.restarts} time(s), as in recordings joined end to end: "
            "each part was placed after the one before"
        )
    if timeline.moved:
        notes.append(
            f"{timeline.moved} frame(s) had timestamps out of order (an AVI with B-frames, or damaged data): each "
            "was shown right after the frame before"
        )
    if reader.resized:
        sizes = ", ".join(f"{width}x{height}" for width, height in reader.resized)
        notes.append(
            f"{sum(reader.resized.values())} frame(s) changed size midway ({sizes}): scaled to the clip's "
            f"{info.width}x{info.height}, as ffmpeg does"
        )
    return notes


def parse_raw_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> (1280, 720); at most :data:`~cutout.options.DEFAULT_MAX_PIXELS` a frame (a typo such as
    12800x7200 would otherwise end in "ran out of memory" at the first frame)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UsageError(f"--raw {text!r}: give the frame size as WIDTHxHEIGHT, e.g. --raw 1280x720")
    width, height = int(parts[0]), int(parts[1])
    if width * height > DEFAULT_MAX_PIXELS:
        raise UsageError(
            f"--raw {text!r} is {width * height / 1e6:,.0f} megapixels a frame, more than the "
            f"{DEFAULT_MAX_PIXELS // 1_000_000} a frame may have: give the size ffmpeg sends (-s WIDTHxHEIGHT)"
        )
    return width, height


def raw_frames(
    stream: BinaryIO, width: int, height: int, cancel: threading.Event | None = None
) -> Iterator[tuple[np.ndarray, int | None]]:
    """rgb24 frames of ``width`` x ``height`` read from ``stream`` until it ends (as ``ffmpeg -f rawvideo`` sends).

    ``cancel`` ends the frames early, also while an unbuffered pipe (an ``io.FileIO`` such as
    ``sys.stdin.buffer.raw``) has nothing to read: a thread blocked in its read could not be stopped, and at
    exit a blocked buffered read even aborts the interpreter.

    Raises:
        InputError: the stream ends inside a frame (wrong size given, or a cut stream).
    """
    size = width * height * 3
    while True:
        data = _read_exactly(stream, size, cancel)
        if not data:
            return
        if len(data) < size:
            raise InputError(
                f"the raw input ended inside a frame ({len(data)} of {size} bytes): is --raw {width}x{height} "
                "the size ffmpeg sends (-s WIDTHxHEIGHT -pix_fmt rgb24)?"
            )
        yield np.frombuffer(data, np.uint8).reshape(height, width, 3), None


def _read_exactly(stream: BinaryIO, size: int, cancel: threading.Event | None = None) -> bytearray:
    """``size`` bytes, fewer where the stream ends, none once ``cancel`` is set (see :func:`raw_frames`).

    Read into one buffer: an unbuffered pipe returns 64 KiB or so per read, and ``read(remaining)`` would
    allocate the whole remainder (2.7 MB for a 720p frame) for each of them.
    """
    data = bytearray(size)
    filled = 0
    waitable = cancel is not None and isinstance(stream, io.FileIO) and os.name == "posix"
    with memoryview(data) as view:
        while filled < size:
            if waitable:
                while not select.select([stream], [], [], 0.1)[0]:
                    if cancel.is_set():  # type: ignore[union-attr]
                        return bytearray()
            count = stream.readinto(view[filled:])  # type: ignore[attr-defined]
            if not count:
                break
            filled += count
    del data[filled:]
    return data


def process_raw(
    source: BinaryIO,
    sink: BinaryIO,
    size: tuple[int, int],
    session: Session,
    options: VideoOptions,
    *,
    on_frame: Callable[[int], None] | None = None,
) -> int:
    """Raw frames in, raw frames out, for ffmpeg pipelines; the number of frames.

    In: rgb24. Out: rgba (cutout), rgb24 (over an opaque background) or gray (``only_mask``), same size.
    """
    cancel = threading.Event()
    frames = threaded(raw_frames(source, *size, cancel), maxsize=4, name="cutout-read", cancel=cancel)
    results = threaded(
        cutout_frames(frames, session, options, cancel=cancel), maxsize=4, name="cutout-infer", cancel=cancel
    )
    count = 0
    try:
        for array, _ in results:
            assert array is not None  # raw frames are never left out
            write_all(sink, np.ascontiguousarray(array).data)  # every byte, or an error: never a cut frame
            count += 1
            if on_frame is not None:
                on_frame(count)
    finally:
        cancel.set()
        results.close()
        frames.close()
    return count


def raw_output_format(options: VideoOptions) -> str:
    """The ffmpeg pixel format that :func:`process_raw` writes for these options."""
    if options.remove.only_mask:
        return "gray"
    background = options.remove.background
    opaque = options.background_video is not None or (background is not None and background.opaque)
    return "rgb24" if opaque else "rgba"
