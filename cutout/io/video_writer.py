"""Videos out: cutout frames encoded as a video (or a folder of PNGs), the input's audio copied alongside.

    >>> from cutout.io.video import VideoReader
    >>> from cutout.io.video_writer import VideoWriter
    >>> with VideoReader("clip.mp4") as reader, VideoWriter(                        # doctest: +SKIP
    ...     "clip.mov", reader.info, kind="mov", audio_from="clip.mp4"
    ... ) as writer:
    ...     for frame in reader.frames():
    ...         writer.write(cut_out(frame.rgb), frame.pts)    # (H, W, 4) uint8, the frame's own timestamp
    >>> writer.notes                                           # what the CLI should tell the user  # doctest: +SKIP

Kinds (``kind=``):

========  =========================================  ===========================  ====================
kind      video                                      frames given                 audio copied as is
========  =========================================  ===========================  ====================
mp4       H.264 (libx264, crf 18, veryfast), 4:2:0   (H, W, 3) composited RGB     AAC, MP3, ...
mask      H.264 4:2:0, the matte as luma             (H, W) grey alpha            as mp4
mkv       H.264 as mp4, in Matroska                  (H, W, 3) composited RGB     almost any (FLAC, Opus, PCM)
mkv-mask  H.264 4:2:0 matte in Matroska              (H, W) grey alpha            as mkv
mov       ProRes 4444 (prores_ks), yuva444p10le      (H, W, 4) RGBA, RGB or grey  AAC, PCM, ...
webm      VP9 (libvpx-vp9, crf 24) with alpha        (H, W, 4) RGBA, RGB or grey  Opus, Vorbis
webp      animated WebP (libwebp, quality 90), alpha  RGBA, RGB or grey            none (noted)
apng      animated PNG (.apng or .png), lossless      RGBA, RGB or grey            none (noted)
gif       animated GIF, 255 colours + transparent    RGBA, RGB or grey            none (noted)
png       a folder of frame_000000.png, ...          RGBA, RGB or grey            none (noted)
========  =========================================  ===========================  ====================

Animations (webp, apng, gif) loop forever and have no place for a rotation: a rotated (or mirrored) input's
frames are turned upright (and mirrored) as they are written. GIF has 1-bit transparency: a pixel shows where
its alpha is at least 128, and each frame gets its own palette (median cut, Floyd-Steinberg dithering).

Timing: the output keeps the input's time base and every frame its own timestamp, so variable frame rate and
duration survive; with ``start`` the timeline is shifted so the first frame written is at 0, and the audio with
it. The display matrix (rotation, and a mirror or an odd angle where the input has one) and colour range,
matrix, primaries and transfer are tagged as in the input (on the stream and on every frame: ProRes keeps a
frame's own in its header, which decoders believe first);
ProRes is always limited range, which changes the tag, not the colours. An input stored as RGB has no YUV matrix
to keep: see :func:`output_matrix`. Alpha is straight (not premultiplied).

Odd sizes: H.264 in 4:2:0 (mp4, mask) needs an even width and height, so an odd frame is padded by one
pixel on the right and/or bottom, repeating the last column/row (no pixel of the input is lost, no dark edge
appears), and a note says so. ProRes, VP9 and PNG keep odd sizes as they are.

Audio (``audio_from``): every audio stream of that file, within the window, is copied packet by packet when
the container takes its codec, else re-encoded (Opus 160 kb/s for WebM, AAC 256 kb/s for MP4/MOV) with a note.
Audio is interleaved with the video as frames arrive, never held whole (:mod:`cutout.io.audio_tracks`).
Subtitle, data and extra video streams cannot be carried and are noted as dropped.

Atomic output: the file is written as ``.NAME.XXXXXXXX.part.EXT`` next to ``NAME`` (the muxer still sees the
extension) and renamed on a successful :meth:`VideoWriter.close`. If Ctrl-C (KeyboardInterrupt) leaves the
``with`` block, the encoders are flushed and the shorter file is finished and kept; any other exception
removes it. PNG frames go to ``.NAME.XXXXXXXX.part/``, renamed the same way.

Every file says cutout made it (:data:`~cutout.io.encode.SOFTWARE`, which
:func:`~cutout.io.encode.made_by_cutout` reads): MP4, MOV and WebM in their ``comment`` tag, GIF in a comment
extension, APNG in a ``Software`` text chunk, animated WebP in an EXIF chunk, PNG frames as every PNG.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import av
import av.error
import numpy as np
from av.container import OutputContainer
from av.packet import Packet
from av.video.frame import VideoFrame as AvFrame
from av.video.reformatter import Colorspace, VideoReformatter
from av.video.stream import VideoStream

from cutout.compose import shown
from cutout.errors import DiskFullError, OutputError, OutputTakenError, UsageError, disk_full
from cutout.io.audio_tracks import AudioTracks, Window
from cutout.io.encode import SOFTWARE, encode_png, software_exif, temporary_path, write_atomic
from cutout.io.video import VideoInfo, check_window, shift_timecode

if TYPE_CHECKING:
    from av.container.core import Chapter as AvChapter

__all__ = ["KINDS", "AnimationPacing", "VideoWriter"]

KINDS = ("mp4", "mov", "webm", "webp", "apng", "gif", "png", "mask", "mkv", "mkv-mask")
_CHAPTER_MUXERS = ("mov", "mp4", "webm", "matroska")  # the containers with a place for chapter marks
_TIMECODE_MUXERS = ("mov", "mp4")  # those with a place for a start timecode (a tmcd track)
_ANIMATION_STEP = Fraction(1, 50)  # the shortest frame an animation gets (see AnimationPacing)
_X264 = {"crf": "18", "preset": "veryfast"}
# AVColorSpace -> the RGB -> YUV matrix swscale uses; any other (2: unspecified) gets swscale's default, BT.601,
# the same one the reader used to decode it
_SWSCALE_MATRIX = {
    1: Colorspace.ITU709,
    4: Colorspace.FCC,
    5: Colorspace.ITU601,
    6: Colorspace.SMPTE170M,
    7: Colorspace.SMPTE240M,
    9: Colorspace.BT2020,
}
_RANGE_CODES = {"tv": 1, "pc": 2}


def output_matrix(info: VideoInfo) -> int:
    """The RGB -> YUV matrix (AVColorSpace) the output is converted with and tagged as: the input's, if it is one.

    An input stored as RGB (0: APNG, GIF, PNG or QuickTime Animation in a MOV, FFV1 RGB) has no YUV matrix to
    keep, and copying its tag would mark the YUV output as RGB: players would show green for grey. Such an input,
    or one with a matrix swscale does not know, gets BT.709 from 720 lines up, BT.601 (SMPTE 170M) below, what
    players assume for untagged video. Unspecified (2) stays so: swscale's default BT.601, as it was read.
    """
    if info.colorspace in _SWSCALE_MATRIX or info.colorspace == 2:
        return info.colorspace
    return 1 if info.height >= 720 else 6


@dataclasses.dataclass(frozen=True)
class _Encoding:
    muxer: str
    extensions: tuple[str, ...]
    codec: str
    pix_fmt: str
    options: dict[str, str]
    channels: tuple[int, ...]  # accepted frames: 1 is (H, W) grey, 3 RGB, 4 RGBA
    even: bool  # 4:2:0 H.264: width and height must be even
    audio_codec: str  # when the input's audio cannot be copied ("": the format carries no audio)
    audio_bit_rate: int
    limited_range: bool = False  # ProRes is always limited range
    muxer_options: dict[str, str] = dataclasses.field(default_factory=dict)
    animation: bool = False  # RGB frames (no YUV matrix or range), no audio, no rotation tag: frames are turned

    @property
    def name(self) -> str:
        """The format as the user knows it: MP4, animated WebP, ..."""
        return {"webp": "animated WebP", "apng": "animated PNG", "gif": "animated GIF", "matroska": "MKV"}.get(
            self.muxer, self.muxer.upper()
        )


def _animation(
    muxer: str, extensions: tuple[str, ...], codec: str, pix_fmt: str, options: dict[str, str], loop: dict[str, str]
) -> _Encoding:
    """An animation's encoding: grey, RGB or RGBA frames, any size, no audio; ``loop`` the muxer's looping option."""
    return _Encoding(
        muxer, extensions, codec, pix_fmt, options, (1, 3, 4), False, "", 0, muxer_options=loop, animation=True
    )


_H264 = _Encoding("mp4", (".mp4", ".m4v"), "libx264", "yuv420p", _X264, (3,), True, "aac", 256_000)
_H264_MKV = dataclasses.replace(_H264, muxer="matroska", extensions=(".mkv",))
_ENCODINGS = {
    "mp4": _H264,
    "mask": dataclasses.replace(_H264, channels=(1,)),
    # Matroska (what OBS records): H.264 as in MP4, and most audio codecs go in as they are
    "mkv": _H264_MKV,
    "mkv-mask": dataclasses.replace(_H264_MKV, channels=(1,)),
    "mov": _Encoding(
        "mov", (".mov",), "prores_ks", "yuva444p10le", {"profile": "4444"}, (1, 3, 4), False, "aac", 256_000, True
    ),
    "webm": _Encoding(
        "webm",
        (".webm",),
        "libvpx-vp9",
        "yuva420p",
        {"crf": "24", "b": "0", "cpu-used": "4", "row-mt": "1", "deadline": "good"},
        (1, 3, 4),
        False,
        "libopus",
        160_000,
    ),
    "webp": _animation("webp", (".webp",), "libwebp_anim", "bgra", {"quality": "90"}, {"loop": "0"}),
    "apng": _animation("apng", (".apng", ".png"), "apng", "rgba", {}, {"plays": "0"}),
    "gif": _animation("gif", (".gif",), "gif", "pal8", {}, {"loop": "0"}),
}


class AnimationPacing:
    """Which frames an animation keeps: none that comes less than 1/50 s after the one kept before it.

    Browsers show a GIF (and WebP) frame of 10 ms or less for 100 ms, so frames of a 60 fps clip would play many
    times too slowly, and GIF, in hundredths of a second, cannot time those of 120 fps at all (FFmpeg's muxer
    refuses two frames in the same hundredth: "non monotonically increasing dts"). The writer paces its frames so;
    a caller pacing the same timestamps beforehand skips the frames it would leave out (a 60 fps clip: every other
    one).
    """

    def __init__(self, time_base: Fraction) -> None:
        self.time_base = time_base
        self.kept: int | None = None  # the timestamp of the last frame kept

    @classmethod
    def for_kind(cls, kind: str, time_base: Fraction) -> AnimationPacing | None:
        """The pacing of an output of ``kind`` (:data:`KINDS`); None where it keeps every frame (not an animation)."""
        return cls(time_base) if kind in _ENCODINGS and _ENCODINGS[kind].animation else None

    def keeps(self, pts: int) -> bool:
        """Whether the frame at ``pts`` (after the last kept, :attr:`kept`) would be kept."""
        return self.kept is None or (pts - self.kept) * self.time_base >= _ANIMATION_STEP

    def admits(self, pts: int) -> bool:
        """Whether the frame at ``pts`` (the frames' timestamps in order) is kept; it then becomes the last kept."""
        if not self.keeps(pts):
            return False
        self.kept = pts
        return True


class VideoWriter:
    """Write frames as a video of ``kind`` (see the module docstring) to ``path``, atomically.

    Args:
        path: the output file (a folder for ``kind="png"``).
        info: the input's :class:`~cutout.io.video.VideoInfo`: time base, rate, size, rotation and colour.
        kind: one of :data:`KINDS`.
        audio_from: a file whose audio streams are copied in; None for no audio.
        start, duration: the window of the input being written, in seconds, as given to the reader.

    Attributes:
        notes: announcements for the user (re-encoded audio, dropped streams, padding).
        frames_written: frames written so far.
        keep_on_interrupt: on Ctrl-C (KeyboardInterrupt) in its ``with`` block, keep what was written as a valid,
            shorter file (True, the default), or leave nothing, as on any other error (a batch that is run again
            then redoes this output rather than taking it for done).
    """

    def __init__(
        self,
        path: str | Path,
        info: VideoInfo,
        *,
        kind: str,
        audio_from: str | Path | None = None,
        start: float | None = None,
        duration: float | None = None,
    ) -> None:
        if kind not in KINDS:
            raise UsageError(f"unknown video output kind {kind!r}; choose one of {', '.join(KINDS)}")
        check_window(start, duration)
        self.path = Path(path)
        self.info = info
        self.kind = kind
        self.notes: list[str] = []
        self.frames_written = 0
        self.keep_on_interrupt = True
        self.frames_dropped = 0  # an animation's frames that came less than 1/50 s after the one before
        self._last_pts: int | None = None
        self._pacing = AnimationPacing.for_kind(kind, info.time_base)
        self._window = Window(start, None if duration is None else info.start_time + (start or 0.0) + duration)
        self._closed = False
        self._sink: _PngSink | _ContainerSink
        if kind == "png":
            self._sink = _PngSink(self.path, info, self.notes, audio_from)
        else:
            self._sink = _ContainerSink(self.path, info, _ENCODINGS[kind], self.notes, audio_from, self._window)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if error is None:
            self.close()
        elif isinstance(error, KeyboardInterrupt) and self.frames_written and self.keep_on_interrupt:
            self._finish(interrupted=True)  # keep what was written: a valid, shorter file
        else:
            self.abort()

    def write(self, array: np.ndarray | None, pts: int | None, duration: int | None = None) -> None:
        """Add a frame shown at ``pts`` (in ``info.time_base``; increasing, as the reader gives them).

        ``pts=None`` places the frame one nominal frame (1 / ``info.fps``) after the previous one, or at 0.
        ``duration`` (in ``info.time_base``; None: one nominal frame) is how long the frame shows; it matters for
        the last frame of a GIF, whose others show until the next one: a GIF that holds its last picture keeps
        doing so.

        An animation (GIF, WebP, APNG) leaves out a frame that comes less than 1/50 s after the one it kept
        before (:class:`AnimationPacing`), which then shows longer. A caller that paces the frames the same way
        beforehand may pass ``array=None`` for those, and spare the work of making them.

        Shape: see the module docstring for each kind: (H, W, 3), (H, W, 4) or (H, W) uint8, H and W as stored.

        Raises:
            ValueError: an array of the wrong shape or type (or None for a frame that is kept), or a timestamp
                that does not increase.
            OutputError: the file cannot be written or encoded.
        """
        if self._closed:
            raise ValueError(f"{self.path} is already closed; make a new VideoWriter")
        if pts is None:
            pts = 0 if self._last_pts is None else self._last_pts + _frame_span(self.info)
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"frame timestamps must increase: got pts {pts} after {self._last_pts}")
        dropped = self._pacing is not None and not self._pacing.keeps(pts)
        if array is None and not dropped:
            raise ValueError(f"no picture for the frame at pts {pts}, which {self.path.name} keeps")
        if array is not None:
            array = _checked(array, self.info, self._sink.channels)
        if self._last_pts is None and self._window.start is not None:
            self._window.shift, self._window.shift_pts = float(pts * self.info.time_base), pts
        self._last_pts, duration = pts, duration or _frame_span(self.info)
        self._window.last_end = float((pts + duration) * self.info.time_base)
        if dropped:  # the frame kept before shows until this one would have ended
            self._sink.last_duration = pts + duration - self._pacing.kept  # type: ignore[operator,union-attr]
            self.frames_dropped += 1
            return
        if self._pacing is not None:
            self._pacing.kept = pts
        assert array is not None
        self._sink.write(array, pts)
        self._sink.last_duration = duration
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoders, copy the rest of the audio, and move the file into place.

        Raises:
            OutputError: no frame was written, or the file cannot be finished or renamed.
        """
        if self._closed:
            return
        if not self.frames_written:
            self.abort()
            windowed = self._window.start is not None or self._window.end is not None
            hint = (
                "check that the start and duration lie within the video"
                if windowed
                else "no frame of the input could be decoded (damaged data?); check that it plays elsewhere"
            )
            raise OutputError(f"no frames were written to {self.path}; {hint}")
        self._finish(interrupted=False)

    def abort(self) -> None:
        """Stop and remove the partial output; nothing is left behind."""
        if not self._closed:
            self._closed = True
            self._sink.abort()

    def _finish(self, interrupted: bool) -> None:
        if self._closed:
            return
        if self.frames_dropped:
            assert isinstance(self._sink, _ContainerSink)
            self.notes.append(
                f"an {self._sink.encoding.name} gets at most 50 frames a second (browsers slow shorter frames down): "
                f"{self.frames_dropped} frame(s) that came sooner were left out, the one before shown longer"
            )
        try:
            self._sink.finish(interrupted)
        except BaseException:
            self.abort()
            raise
        self._closed = True


def _frame_span(info: VideoInfo) -> int:
    """The nominal duration of a frame, in time base units."""
    return max(1, round(1 / (info.fps * info.time_base)))


def _checked(array: np.ndarray, info: VideoInfo, channels: tuple[int, ...]) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    given = 1 if array.ndim == 2 else array.shape[2] if array.ndim == 3 else 0
    if array.dtype != np.uint8 or given not in channels or array.shape[:2] != (info.height, info.width):
        shapes = " or ".join({1: "(H, W)", 3: "(H, W, 3)", 4: "(H, W, 4)"}[c] for c in channels)
        raise ValueError(
            f"expected a uint8 {shapes} frame with H, W = {info.height}, {info.width} (the input as stored), "
            f"got {array.dtype} {array.shape}"
        )
    return array


def _output_error(path: Path, error: BaseException) -> OutputError:
    reason = getattr(error, "strerror", None) or str(error)
    if disk_full(error):
        return DiskFullError(f"cannot write {path}: {reason}; free some space there, or choose another path")
    return OutputError(f"cannot write {path}: {reason}; check the disk space and permissions, or choose another path")


class _ContainerSink:
    """A video file being written: one video stream, copied or re-encoded audio streams."""

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        encoding: _Encoding,
        notes: list[str],
        audio_from: str | Path | None,
        window: Window,
    ) -> None:
        if path.suffix.lower() not in encoding.extensions:
            names = " or ".join(encoding.extensions)
            raise UsageError(f"cannot write {encoding.name} video to {path}; name it with {names}")
        self.path, self.info, self.encoding, self.window = path, info, encoding, window
        self.channels = encoding.channels
        self.temporary = temporary_path(path, path.suffix)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.temporary.open("xb").close()  # fail here, not at the first frame; and claim the name
        except OSError as error:
            raise _output_error(path, error) from None
        self.container: OutputContainer | None = None
        self.orientation = info.orientation if encoding.animation else (0, False)  # frames are turned upright
        self.pending: Packet | None = None  # an animation's newest packet, muxed when the next one comes
        self.started = False
        self.last_duration = _frame_span(info)
        try:
            self.container = av.open(
                str(self.temporary), "w", format=encoding.muxer, options=dict(encoding.muxer_options)
            )
            if not encoding.animation:  # the animation muxers write no tags: finish() marks those files
                self.container.metadata.update(info.tags)  # title, credits, copyright, ...: never the place
                self.container.metadata["comment"] = SOFTWARE
                if info.creation_time:  # the recording's date, by which libraries sort clips (not its place)
                    self.container.metadata["creation_time"] = info.creation_time
            notes.extend(
                _not_kept(
                    info,
                    encoding.name,
                    timecode=encoding.muxer not in _TIMECODE_MUXERS,
                    chapters=encoding.muxer not in _CHAPTER_MUXERS,
                    tags=encoding.animation,
                    aspect=encoding.animation or encoding.muxer == "webm",
                )
            )
            self.size = _even_size(info, notes) if encoding.even else (info.width, info.height)
            if self.orientation[0] % 2:
                self.size = self.size[::-1]
            self.video = self._add_video(notes)
            self.audio = None
            if audio_from and encoding.audio_codec:
                self.audio = AudioTracks(
                    self.container,
                    Path(audio_from),
                    encoding.muxer,
                    encoding.audio_codec,
                    encoding.audio_bit_rate,
                    notes,
                )
            elif audio_from and info.audio:
                notes.append(f"an {encoding.name} carries no audio: the audio of {audio_from} is not copied")
        except BaseException:
            self.abort()
            raise
        carries = "video only" if not encoding.audio_codec else "video and audio only"
        notes.extend(
            f"dropped stream {stream}: {path.suffix} output carries {carries}" for stream in info.other_streams
        )
        self.range = "tv" if encoding.limited_range else info.color_range
        self.to_yuv = VideoReformatter()  # kept: it reuses its scaler from frame to frame
        self.matrix = _SWSCALE_MATRIX.get(output_matrix(info))

    def _add_video(self, notes: list[str]) -> VideoStream:
        assert self.container is not None
        info, encoding = self.info, self.encoding
        stream = self.container.add_stream(encoding.codec, rate=info.fps, options=dict(encoding.options))
        assert isinstance(stream, VideoStream)
        stream.width, stream.height = self.size
        stream.pix_fmt = encoding.pix_fmt
        stream.time_base = info.time_base
        context = stream.codec_context
        context.time_base = info.time_base
        if encoding.animation:  # RGB frames, turned upright
            return stream
        if info.pixel_aspect != 1:  # anamorphic: shown as wide as the input (MOV and MP4; WebM's muxer drops it)
            context.sample_aspect_ratio = info.pixel_aspect
        context.color_range = 1 if encoding.limited_range else _RANGE_CODES.get(info.color_range, 0)
        context.colorspace, context.color_primaries, context.color_trc = (
            output_matrix(info),
            info.color_primaries,
            info.color_trc,
        )
        if info.display_matrix is not None:  # a copy: mirrored or at an odd angle, it shows as the input does
            stream.set_display_matrix(list(info.display_matrix))
        elif info.rotation and hasattr(stream, "set_display_rotation"):  # from the older "rotate" tag
            stream.set_display_rotation(info.rotation)  # both counter-clockwise degrees
        elif info.rotation:  # PyAV < 18 cannot write a display matrix
            notes.append(
                f"the input is rotated {info.rotation} degrees but PyAV {av.__version__} cannot mark the output so; "
                "it plays as stored (sideways): upgrade PyAV to 18 or later (pip install -U av)"
            )
        return stream

    def write(self, array: np.ndarray, pts: int) -> None:
        frame = self._frame(array)
        frame.pts = pts - self.window.shift_pts
        frame.time_base = self.info.time_base
        if not self.started:  # the header is written with the first packet: timecode and chapters go in by then
            self.started = True
            self._set_timecode(pts)
            self._set_chapters()
        with self._errors():
            if self.audio is not None:
                self.audio.feed(self.window, until=float(pts * self.info.time_base))
            self._mux(self.video.encode(frame))

    def _set_timecode(self, pts: int) -> None:
        """The input's start timecode, moved on to the first frame written, on MOV and MP4 outputs (a tmcd track,
        which editors line clips up by); other kinds cannot carry one (see :func:`_not_kept`)."""
        timecode = self.info.timecode
        if timecode is None or self.encoding.muxer not in _TIMECODE_MUXERS:
            return
        offset = round((pts * self.info.time_base - Fraction(self.info.start_time)) * self.info.fps)
        self.video.metadata["timecode"] = shift_timecode(timecode, offset, self.info.fps)

    def _set_chapters(self) -> None:
        """The input's chapter marks, on the output's timeline (moved by ``--start``, cut at its end), in MOV, MP4,
        WebM and MKV; other kinds have no place for them (see :func:`_not_kept`)."""
        chapters = self.info.chapters
        if not chapters or self.container is None or self.encoding.muxer not in _CHAPTER_MUXERS:
            return
        shift, end = self.window.shift, self.window.end
        marks: list[AvChapter] = []
        for chapter in chapters:
            stop = chapter.end if end is None else min(chapter.end, end)
            if stop - shift <= 0 or stop <= chapter.start:  # before the window, or after it
                continue
            start = max(chapter.start - shift, 0.0)
            metadata = {"title": chapter.title} if chapter.title else {}
            marks.append(
                {
                    "id": len(marks) + 1,
                    "start": round(start * 1000),
                    "end": round((stop - shift) * 1000),
                    "time_base": Fraction(1, 1000),
                    "metadata": metadata,
                }
            )
        if marks:
            self.container.set_chapters(marks)

    def _frame(self, array: np.ndarray) -> AvFrame:
        if self.encoding.animation:
            return _animation_frame(shown(array, self.orientation), self.encoding.pix_fmt)  # a view: it copies
        width, height = self.size
        if (array.shape[1], array.shape[0]) != (width, height):
            pad = ((0, height - array.shape[0]), (0, width - array.shape[1])) + ((0, 0),) * (array.ndim - 2)
            array = np.pad(array, pad, mode="edge")
        layout = "gray" if array.ndim == 2 else "rgb24" if array.shape[2] == 3 else "rgba"
        frame = AvFrame.from_ndarray(np.ascontiguousarray(array), format=layout)
        range_code = _RANGE_CODES.get(self.range, 1)
        yuv = self.to_yuv.reformat(
            frame,
            format=self.encoding.pix_fmt,
            src_color_range=2,  # grey and RGB arrays are full range
            dst_colorspace=self.matrix,
            dst_color_range=range_code,
        )
        # ProRes writes these from each frame into its own header, which decoders believe over the container: left
        # unset, an HDR clip's (HLG, PQ, BT.2020) came out as "unspecified", shown as plain BT.709
        yuv.color_primaries, yuv.color_trc = self.info.color_primaries, self.info.color_trc
        return yuv

    def _mux(self, packets: list[Packet], last: bool = False) -> None:
        """Mux ``packets``; an animation's newest is held back until the next comes or ``last`` (the end), when
        it gets the last frame's own duration (the GIF muxer takes a frame's delay from the next frame's
        timestamp, the last one's from its packet; APNG's repeats the delay before it, WebP's picks its own)."""
        assert self.container is not None
        span = _frame_span(self.info)
        if self.encoding.animation:
            packets = [*([self.pending] if self.pending is not None else []), *packets]
            self.pending = None if last or not packets else packets.pop()
            if last and packets:
                packets[-1].duration = self.last_duration
        for packet in packets:
            if not packet.duration:
                packet.duration = span  # the last frame's duration in MP4; the rest follow from timestamps
            self.container.mux(packet)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OSError as error:  # av.error's OSErrors included: disk full, permission denied, ...
            raise _output_error(self.path, error) from None
        except av.error.FFmpegError as error:
            if isinstance(error, MemoryError):
                raise
            raise OutputError(
                f"cannot encode {self.path} with {self.encoding.codec} ({error}); "
                "try another output kind (mp4, mov, webm or a PNG folder)"
            ) from None

    def finish(self, interrupted: bool) -> None:
        assert self.container is not None
        with self._errors():
            self._mux(self.video.encode(None), last=True)
            if self.audio is not None:
                end = self.window.end
                if interrupted:
                    end = min(end, self.window.last_end) if end is not None else self.window.last_end
                self.audio.finish(Window(self.window.start, end, self.window.shift, self.window.shift_pts))
            self.container.close()
        try:
            if self.encoding.animation:
                _mark_animation(self.temporary, self.encoding.muxer)
            os.replace(self.temporary, self.path)
        except OSError as error:
            raise _output_error(self.path, error) from None

    def abort(self) -> None:
        for closable in (self.container, getattr(self, "audio", None)):
            with contextlib.suppress(Exception):
                if closable is not None:
                    closable.close()
        with contextlib.suppress(OSError):
            os.unlink(self.temporary)


def _mark_animation(path: Path, muxer: str) -> None:
    """Name cutout as the maker of a finished GIF, APNG or animated WebP, where FFmpeg's muxers write no tags.

    GIF: a comment extension before the first frame (the header becomes GIF89a, which has them). APNG: a
    ``Software`` text chunk after IHDR. WebP: an EXIF chunk at the end, flagged in the VP8X header (a file
    without one, a single still frame, is left as it is). Readers skip what they do not know.
    """
    data = path.read_bytes()
    text = SOFTWARE.encode()
    if muxer == "gif" and data[:6] in (b"GIF87a", b"GIF89a") and len(data) > 13:
        table = 3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0
        comment = b"\x21\xfe" + bytes([len(text)]) + text + b"\x00"
        data = b"GIF89a" + data[6 : 13 + table] + comment + data[13 + table :]
    elif muxer == "apng" and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        end = 8 + 12 + struct.unpack(">I", data[8:12])[0]
        chunk = b"Software\0" + text
        crc = zlib.crc32(chunk, zlib.crc32(b"tEXt"))
        data = data[:end] + struct.pack(">I", len(chunk)) + b"tEXt" + chunk + struct.pack(">I", crc) + data[end:]
    elif muxer == "webp" and data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8X" and len(data) > 20:
        exif = software_exif().tobytes()
        exif = exif[6:] if exif.startswith(b"Exif\0\0") else exif  # a WebP EXIF chunk holds the TIFF data alone
        body = data[:20] + bytes([data[20] | 0x08]) + data[21:] + b"EXIF" + struct.pack("<I", len(exif)) + exif
        body += b"\0" * (len(exif) % 2)
        data = body[:4] + struct.pack("<I", len(body) - 8) + body[8:]
    else:
        return
    path.write_bytes(data)


def _animation_frame(array: np.ndarray, pix_fmt: str) -> AvFrame:
    """A grey, RGB or RGBA array as a frame of an animation's pixel format: rgba, bgra or pal8 (GIF)."""
    height, width = array.shape[:2]
    rgba = np.empty((height, width, 4), np.uint8)
    rgba[..., :3] = array[..., :3] if array.ndim == 3 else array[..., None]
    rgba[..., 3] = array[..., 3] if array.ndim == 3 and array.shape[2] == 4 else 255
    if pix_fmt == "rgba":
        return AvFrame.from_ndarray(rgba, format="rgba")
    if pix_fmt == "bgra":
        return AvFrame.from_ndarray(np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]), format="bgra")
    return AvFrame.from_ndarray(_palette_frame(rgba), format="pal8")  # type: ignore[arg-type]  # PyAV takes a pair


def _palette_frame(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An RGBA frame as GIF pixels: up to 255 colours (median cut, dithered) and index 255 transparent, where the
    alpha is below 128. Returns the indices and the palette in PyAV's ARGB order.

    Shape: (H, W, 4) uint8 -> (H, W) uint8, (256, 4) uint8.
    """
    from PIL import Image

    quantized = Image.fromarray(np.ascontiguousarray(rgba[..., :3])).quantize(
        255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG
    )
    indices = np.array(quantized)
    indices[rgba[..., 3] < 128] = 255
    colours = np.array(quantized.getpalette() or [], np.uint8).reshape(-1, 3)[:255]
    palette = np.zeros((256, 4), np.uint8)  # entry 255 (and unused ones): alpha 0
    palette[: len(colours), 0] = 255
    palette[: len(colours), 1:] = colours
    return indices, palette


def _even_size(info: VideoInfo, notes: list[str]) -> tuple[int, int]:
    width, height = info.width + info.width % 2, info.height + info.height % 2
    if (width, height) != (info.width, info.height):
        notes.append(
            f"padded {info.width}x{info.height} to {width}x{height} by repeating the last column/row: "
            "H.264 in 4:2:0 needs an even width and height"
        )
    return width, height


def _not_kept(
    info: VideoInfo, kind: str, *, timecode: bool, chapters: bool, tags: bool, aspect: bool, plural: bool = False
) -> list[str]:
    """The notes for what the input carries and an output of ``kind`` ("animated GIF"; ``plural``: "PNG frames")
    has no place for: its start timecode, chapter marks, title and credits, or pixel aspect, where the flag says
    the output lacks it."""
    has = f"{kind} {'have' if plural else 'has'}"
    notes = []
    if timecode and info.timecode:
        notes.append(
            f"the input's timecode ({info.timecode}) is not kept: {has} no place for one; .mov or .mp4 keep it"
        )
    if chapters and info.chapters:
        notes.append(
            f"the input's {len(info.chapters)} chapter marks are not kept: {has} no place for them; .mov, .mp4, "
            ".webm or .mkv keep them"
        )
    if tags and info.tags:
        notes.append(f"the input's {', '.join(key for key, _ in info.tags)} are not kept: {has} no place for them")
    if aspect and info.pixel_aspect != 1:
        shown = round(info.width * info.pixel_aspect)
        ratio = f"{info.pixel_aspect.numerator}:{info.pixel_aspect.denominator}"
        notes.append(
            f"the input's pixels are not square ({ratio}, shown {shown} x {info.height}): {kind} cannot say so, so it "
            f"shows {info.width} x {info.height}, squeezed; .mov or .mp4 keep the aspect"
        )
    return notes


class _PngSink:
    """A folder of ``frame_000000.png``, ... written into a temporary folder, renamed when complete.

    An existing folder is replaced only when it holds nothing but ``frame_NNNNNN.png`` files (an earlier output);
    anything else in it is the user's, and the writer refuses rather than delete it.
    """

    channels = (1, 3, 4)
    last_duration = 0  # frames have no duration here

    def __init__(self, path: Path, info: VideoInfo, notes: list[str], audio_from: str | Path | None) -> None:
        _check_replaceable(path)
        lacks = {"timecode": True, "chapters": True, "tags": True, "aspect": True}
        notes.extend(_not_kept(info, "PNG frames", plural=True, **lacks))
        self.path = path
        self.temporary = temporary_path(path, "")
        self.count = 0
        try:
            self.temporary.mkdir(parents=True)
        except OSError as error:
            raise _output_error(path, error) from None
        if audio_from is not None:
            notes.append(f"a folder of PNG frames carries no audio: the audio of {audio_from} is not copied")
        if info.rotation or info.mirrored:
            flip = "flip them upside down, then " if info.mirrored else ""
            notes.append(f"PNG frames are stored as decoded: {flip}turn them {info.rotation} degrees counter-clockwise")

    def write(self, array: np.ndarray, pts: int) -> None:
        write_atomic(self.temporary / f"frame_{self.count:06d}.png", encode_png(array))
        self.count += 1

    def finish(self, interrupted: bool) -> None:
        old = temporary_path(self.path, ".old")
        try:
            _check_replaceable(self.path)
            if self.path.exists():
                os.replace(self.path, old)
            os.replace(self.temporary, self.path)
        except OSError as error:
            raise _output_error(self.path, error) from None
        shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.temporary, ignore_errors=True)


def _check_replaceable(path: Path) -> None:
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink() and all(_is_frame_name(entry.name) for entry in path.iterdir()):
        return
    raise OutputTakenError(
        f"{path} already exists and is not a folder of frame_NNNNNN.png files; choose a new or empty folder"
    )


def _is_frame_name(name: str) -> bool:
    return name.startswith("frame_") and name.endswith(".png") and name[6:-4].isdigit()
