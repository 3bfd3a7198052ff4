"""Videos in: what a file holds (:func:`probe`) and its frames as RGB arrays (:class:`VideoReader`), over PyAV.

    >>> from cutout.io.video import VideoReader, probe
    >>> info = probe("clip.mp4")                                        # doctest: +SKIP
    >>> info.width, info.height, info.fps, info.frame_count, info.audio  # doctest: +SKIP
    (320, 240, Fraction(30, 1), 234, (AudioTrack(stream_index=1, codec='aac', channels=2, sample_rate=44100),))
    >>> with VideoReader("clip.mp4", start=2.0, duration=1.5) as reader:  # doctest: +SKIP
    ...     for frame in reader.frames():
    ...         frame.rgb                                  # (H, W, 3) uint8, as stored (not rotated)

Frames keep the stored orientation: a phone's portrait clip is decoded sideways and ``info.rotation`` says how
to turn it; the writer (:mod:`cutout.io.video_writer`) copies that rotation onto its output, so the result plays
upright wherever the input did, without re-rotating any pixel. Timestamps pass through untouched, so variable
frame rate survives. A damaged packet midway is skipped and counted in ``reader.skipped``; decoding goes on.

Animated WebP, which FFmpeg cannot decode, is read with Pillow: its frames, their timing and alpha, no audio.

Transparency: a frame decoded with an alpha channel (ProRes 4444, QuickTime Animation, PNG or APNG with alpha, a
GIF's transparent colour) brings it as ``frame.alpha``, so a cutout can keep what the input hid hidden; a fully
opaque frame's is None. VP9's alpha (in WebM's side data) is read by libvpx only: FFmpeg's own VP9 decoder, used
here, gives the colours alone.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import av
import av.error
import numpy as np
from av.codec.context import CodecContext
from av.container import InputContainer
from av.packet import Packet
from av.stream import Disposition, Stream
from av.video.codeccontext import VideoCodecContext
from av.video.frame import VideoFrame as AvFrame
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream
from PIL import Image

from cutout.errors import UsageError, VideoError
from cutout.io.timeline import Timeline, increasing

if TYPE_CHECKING:
    from cutout.io.video_writer import KINDS, VideoWriter

__all__ = [
    "KINDS",
    "AudioTrack",
    "VideoError",
    "VideoFrame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "open_container",
    "probe",
]

_MAX_BAD_PACKETS_IN_A_ROW = 100  # more than this and the file is not damaged here and there, it is unreadable
_PROBE_PACKETS = 300  # packets read at most to find the first frame, whose display matrix gives the rotation
_RANGES = {0: "unspecified", 1: "tv", 2: "pc"}  # AVColorRange
#: A file's tags an output keeps (see VideoInfo.tags)
KEPT_TAGS = frozenset(
    {"title", "artist", "author", "album_artist", "composer", "copyright", "description", "synopsis", "date"}
    | {"genre", "keywords"}
)
_FIELD_ORDERS = {2: "top field first", 4: "top field first", 3: "bottom field first", 5: "bottom field first"}
#: FFmpeg's bwdif: one frame out per frame in, only frames marked interlaced, in the stream's field order (the
#: decoder's per-frame flag is not to be trusted: H.264 without timing SEI reads as bottom first either way)
_DEINTERLACE = "mode=send_frame:deint=interlaced:parity="
_PARITIES = {"top field first": "tff", "bottom field first": "bff"}
# pixel formats with an alpha channel, and palettes (whose colours may be transparent); PyAV does not expose
# FFmpeg's AV_PIX_FMT_FLAG_ALPHA
_ALPHA_PREFIXES = ("yuva", "gbrap", "rgba", "bgra", "argb", "abgr", "ya8", "ya16", "pal8")


class AudioTrack(NamedTuple):
    """An audio stream of a video file: its stream index, codec name, channel count and sample rate."""

    stream_index: int
    codec: str
    channels: int
    sample_rate: int


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` found: the video stream as stored, and what else the file carries.

    ``rotation`` is counter-clockwise degrees in 0..359, as FFmpeg's display matrix (PyAV's
    ``VideoFrame.rotation``) gives it; the older clockwise ``rotate`` tag is converted (``rotate=90`` reads 270).
    ``display_matrix`` is that matrix itself (FFmpeg's 9 integers), None where the input has none, or one that maps
    nothing (all zeros: FFmpeg shows such a video as stored, and its rotation reads 0): writers copy it, so an output
    shows as the input does, mirrored or at an odd angle too. ``mirrored``: the matrix flips the picture as well;
    it is then the stored frame flipped upside down, then turned by ``rotation``.
    ``color_range`` is "tv" (limited, 16-235), "pc" (full, 0-255) or "unspecified" (players assume tv).
    ``colorspace``, ``color_primaries`` and ``color_trc`` are FFmpeg's AVColorSpace, AVColorPrimaries and
    AVColorTransferCharacteristic numbers (2: unspecified). ``start_time`` is the first timestamp, in seconds.
    ``timecode`` is the start timecode a camera or editor gave the file ("01:00:10:05"; ";" before the frames for
    drop-frame), from the video stream, a timecode track or the container; its track is not one of
    ``other_streams``. ``pixel_aspect`` is a pixel's width over its height (the sample aspect ratio): 1 but for
    anamorphic video (HDV 1440 x 1080 at 4/3 shows as 16:9). ``creation_time`` is when the file says it was
    recorded (ISO 8601), as libraries sort clips by it. ``interlaced`` is None for progressive video, else its
    field order ("top field first", "bottom field first", or "interlaced" where the file does not say): the
    reader deinterlaces such video. ``chapters`` are the file's chapter marks: (start, end) in seconds on the
    stream's timeline, and each one's title ("" where it has none). ``tags`` are the file's title, credits,
    copyright, description, date, genre and keywords (:data:`KEPT_TAGS`, keys in lower case): what an output keeps
    of its metadata besides ``creation_time`` (never the place it was recorded).
    """

    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frame_count: int | None
    duration: float | None
    rotation: int
    color_range: str
    pix_fmt: str
    codec: str
    audio: tuple[AudioTrack, ...] = ()
    other_streams: tuple[str, ...] = ()
    stream_index: int = 0
    start_time: float = 0.0
    colorspace: int = 2
    color_primaries: int = 2
    color_trc: int = 2
    path: Path | None = None
    timecode: str | None = None
    pixel_aspect: Fraction = Fraction(1)
    creation_time: str | None = None
    interlaced: str | None = None
    chapters: tuple[Chapter, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    display_matrix: tuple[int, ...] | None = None

    @property
    def mirrored(self) -> bool:
        """Whether the display matrix mirrors the picture (its determinant is negative)."""
        matrix = self.display_matrix
        return matrix is not None and matrix[0] * matrix[4] - matrix[1] * matrix[3] < 0

    @property
    def orientation(self) -> tuple[int, bool]:
        """How the stored frames are shown (:func:`cutout.compose.shown`): the rotation in counter-clockwise quarter
        turns (an odd angle taken to the quarter turn below it), and whether they are mirrored."""
        return self.rotation // 90, self.mirrored


class Chapter(NamedTuple):
    """A chapter mark: from ``start`` to ``end`` (seconds), titled ``title``."""

    start: float
    end: float
    title: str


@dataclass(frozen=True)
class VideoFrame:
    """A decoded frame: its index among the frames read, RGB pixels, timestamp, and time in seconds.

    ``pts`` is the stream's own timestamp (in ``info.time_base``); ``time`` is seconds from the start of the
    video, the scale that ``start`` and ``duration`` use. ``alpha`` is the frame's own transparency, None where
    it has none or is opaque everywhere. ``duration`` is how long the frame shows (in ``info.time_base``) where
    the file says so (a GIF's or APNG's own delay), else None.

    Shape: rgb (H, W, 3) uint8, C-contiguous, stored orientation; alpha (H, W) uint8 or None.
    """

    index: int
    rgb: np.ndarray
    pts: int
    time: float
    alpha: np.ndarray | None = None
    duration: int | None = None


def probe(path: str | Path) -> VideoInfo:
    """Describe the video in ``path``: size, rate, timing, rotation, colour, audio and other streams.

    The first frame is decoded, which proves the video can be decoded and gives the rotation.

    Raises:
        VideoError: not a file, not a video FFmpeg can read, no video stream, a codec this FFmpeg cannot decode.
    """
    path = Path(path)
    if _animated_webp(path):
        with _open_webp(path) as image:
            return _describe_webp(path, image)
    with open_container(path) as container:
        stream = _video_stream(container, path)
        first = _first_frame(container, stream, path)
        return _describe(path, container, stream, first)


def _open_webp(path: Path) -> Image.Image:
    """An animated WebP opened with Pillow (FFmpeg cannot decode animated WebP)."""
    try:
        image = Image.open(path)
        image.seek(0)
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise VideoError(f"{path}: cannot read this animated WebP ({error}); check it plays elsewhere") from None
    return image


def _describe_webp(path: Path, image: Image.Image) -> VideoInfo:
    """An animated WebP's facts: frames timed in milliseconds, RGB(A) pixels, no audio."""
    first = int(image.info.get("duration") or 0)
    return VideoInfo(
        width=image.width,
        height=image.height,
        fps=Fraction(1000, first) if first > 0 else Fraction(10),
        time_base=Fraction(1, 1000),
        frame_count=getattr(image, "n_frames", 1),
        duration=None,
        rotation=0,
        color_range="pc",
        pix_fmt="rgba" if image.mode == "RGBA" else "rgb24",
        codec="webp",
        colorspace=0,  # RGB
        path=path,
    )


def open_container(path: Path) -> InputContainer:
    """``av.open(path)`` with errors that say what is wrong with the file.

    Raises:
        VideoError: missing, not a file, empty, unreadable, or not a media file FFmpeg knows.
    """
    if not os.path.exists(path):  # False for a name too long to exist, where Path.exists raises
        raise VideoError(f"{path} does not exist; give the path of a video file")
    if not path.is_file():
        raise VideoError(f"{path} is not a file; give the path of a video file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is empty (0 bytes), not a video ffmpeg can read; give a video file")
    try:
        return av.open(str(path), metadata_errors="replace")
    except PermissionError:
        raise VideoError(f"cannot read {path}: permission denied; check its permissions") from None
    except (av.error.FFmpegError, OSError) as error:
        head = b""
        with contextlib.suppress(OSError), path.open("rb") as handle:
            head = handle.read(12)
        if head[4:8] == b"ftyp":  # an MP4/MOV whose index (moov) is missing: cut short before it was written
            raise VideoError(
                f"{path} is an MP4/MOV file ffmpeg cannot read ({_reason(error)}): it is probably truncated (an "
                "interrupted download or recording lacks the index at its end) or damaged; check that it plays "
                "elsewhere, or download it again"
            ) from None
        raise VideoError(
            f"{path} is not a video ffmpeg can read ({_reason(error)}); give a video file such as MP4, MOV, MKV or WebM"
        ) from None


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


def _video_stream(container: InputContainer, path: Path) -> VideoStream:
    streams = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
    if not streams:
        raise VideoError(f"{path} has no video stream (audio only?); give a file with a video track")
    stream = streams[0]
    if stream.codec_context is None:
        raise VideoError(
            f"{path}: its video (stream #{stream.index}) uses a codec that this build of FFmpeg "
            f"({av.ffmpeg_version_info}, bundled with PyAV {av.__version__}) has no decoder for; "
            "convert it first, e.g. `ffmpeg -i IN -c:v libx264 -c:a copy OUT.mp4`"
        )
    return stream


def alpha_decoder(stream: VideoStream) -> VideoCodecContext | None:
    """libvpx's VP9 decoder for a WebM whose VP9 carries an alpha channel, else None (the stream's own decoder).

    FFmpeg's own VP9 decoder skips the alpha, which WebM stores beside each frame (``alpha_mode`` 1); libvpx's
    decodes it, giving yuva420p frames. A build of FFmpeg without libvpx reads such a file opaque, as before.
    """
    if not _vp9_alpha(stream):
        return None
    try:
        decoder = cast(VideoCodecContext, CodecContext.create("libvpx-vp9", "r"))
    except (ValueError, av.error.FFmpegError):  # UnknownCodecError is a ValueError
        return None
    decoder.thread_type = "AUTO"
    return decoder


def _vp9_alpha(stream: VideoStream) -> bool:
    """Whether the stream is VP9 with an alpha channel beside it (WebM's ``alpha_mode`` 1)."""
    context = stream.codec_context
    return context is not None and context.name == "vp9" and stream.metadata.get("alpha_mode") == "1"


def _first_frame(container: InputContainer, stream: VideoStream, path: Path) -> AvFrame:
    for packet in itertools.islice(demuxed(container, stream), _PROBE_PACKETS):
        try:
            frames = packet.decode()
        except av.error.DecoderNotFoundError:
            raise VideoError(_undecodable(path, stream)) from None
        except av.error.FFmpegError as error:
            raise_if_fatal(error)
            continue
        if frames:
            return frames[0]
    raise VideoError(
        f"{path}: no frame of its {stream.codec_context.name} video could be decoded; "
        "the file is damaged or its codec is unsupported; check it plays elsewhere, or re-encode it"
    )


def _animated_webp(path: Path) -> bool:
    """Whether ``path`` starts as an animated WebP does: RIFF, WEBP, a VP8X chunk with the animation flag."""
    try:
        with path.open("rb") as handle:
            head = handle.read(21)
    except OSError:
        return False
    return len(head) == 21 and head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and bool(head[20] & 0x02)


def _undecodable(path: Path, stream: VideoStream) -> str:
    return (
        f"{path}: its video codec {stream.codec_context.name!r} cannot be decoded by this build of FFmpeg "
        f"({av.ffmpeg_version_info}); convert it first, e.g. `ffmpeg -i IN -c:v libx264 -c:a copy OUT.mp4`"
    )


def demuxed(
    container: InputContainer, *streams: Stream, on_damage: Callable[[], None] | None = None
) -> Iterator[Packet]:
    """``container.demux(*streams)``, for a file that may be damaged:

    * damaged container data ends the packets there (``on_damage`` is called), as ffmpeg stops reading; so does
      the demuxer's ENOMEM, which a damaged index causes by giving a packet an absurd size (1 GB);
    * packets of a stream that appears midway (an MPEG-TS capture whose broadcast adds one) are read past: PyAV
      knows only the streams found at the start, and raises IndexError for a packet of another, ending its
      generator.

    Errors that are not damaged data (see :func:`raise_if_fatal`) are raised.
    """
    while True:
        try:
            yield from container.demux(*streams)
            return
        except IndexError:  # that packet is not one of ``streams``: a new generator reads on from the next
            continue
        except av.error.FFmpegError as error:
            if not isinstance(error, av.error.MemoryError):
                raise_if_fatal(error)
            if on_damage is not None:
                on_damage()
            return


def raise_if_fatal(error: av.error.FFmpegError) -> None:
    """Re-raise errors that are not damaged data: out of memory, an interrupt, a missing decoder."""
    if isinstance(error, (MemoryError, av.error.ExitError, av.error.DecoderNotFoundError)):
        raise error


def _describe(path: Path, container: InputContainer, stream: VideoStream, first: AvFrame) -> VideoInfo:
    context = stream.codec_context
    time_base = stream.time_base or Fraction(1, 90_000)
    fps = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
    if not stream.average_rate and fps * time_base >= 1 and first.duration:
        # a rate of one frame per tick is FFmpeg's guess for a stream that states none (APNG: 100000 fps); the
        # first frame's own duration is a better one
        fps = 1 / (first.duration * time_base)
    duration = None
    if stream.duration:
        duration = float(stream.duration * time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    color_range = _RANGES.get(int(first.color_range), "unspecified")
    if color_range == "unspecified" and first.format.name.startswith("yuvj"):
        color_range = "pc"
    audio = tuple(_audio_track(s) for s in container.streams.audio)
    used = {stream.index, *(track.stream_index for track in audio)}
    chapters = _chapters(container)
    return VideoInfo(
        width=first.width,
        height=first.height,
        fps=Fraction(fps),
        time_base=Fraction(time_base),
        frame_count=stream.frames or None,
        duration=duration,
        rotation=_rotation(stream, first),
        display_matrix=_display_matrix(first),
        color_range=color_range,
        # probed with FFmpeg's own decoder (it gives the rotation); the reader decodes VP9 alpha with libvpx
        pix_fmt="yuva420p" if first.format.name == "yuv420p" and alpha_decoder(stream) else first.format.name,
        codec=context.name,
        audio=audio,
        other_streams=tuple(
            _describe_other(s)
            for s in container.streams
            if s.index not in used and not _is_timecode_track(s) and not _is_chapter_track(s, chapters)
        ),
        stream_index=stream.index,
        start_time=float((stream.start_time or 0) * time_base),
        colorspace=int(first.colorspace),
        color_primaries=int(first.color_primaries),
        color_trc=int(first.color_trc),
        path=path,
        timecode=_timecode(container, stream),
        pixel_aspect=_pixel_aspect(stream),
        creation_time=container.metadata.get("creation_time") or stream.metadata.get("creation_time") or None,
        interlaced=_interlaced(context, first),
        chapters=chapters,
        tags=tuple((key.lower(), value) for key, value in container.metadata.items() if key.lower() in KEPT_TAGS),
    )


def _chapters(container: InputContainer) -> tuple[Chapter, ...]:
    """The container's chapter marks, in order (none where PyAV cannot read them)."""
    try:
        marks = container.chapters()
    except (AttributeError, av.error.FFmpegError):  # PyAV before 14 has no chapters
        return ()
    chapters = []
    for mark in marks:
        if mark["time_base"] is None:
            continue
        base = Fraction(mark["time_base"])
        title = str(mark.get("metadata", {}).get("title", ""))
        chapters.append(Chapter(float(mark["start"] * base), float(mark["end"] * base), title))
    return tuple(sorted(chapters))


def _interlaced(context: VideoCodecContext, first: AvFrame) -> str | None:
    """The field order of interlaced video (1080i, DV, broadcast), None for progressive."""
    order = _FIELD_ORDERS.get(int(context.field_order or 0))
    if first.interlaced_frame:
        return order or "interlaced"
    return order


def _pixel_aspect(stream: VideoStream) -> Fraction:
    """The stream's sample aspect ratio (container or codec), 1 where it is unknown or nonsense."""
    for value in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        if value and Fraction(1, 10) <= value <= 10:
            return Fraction(value)
    return Fraction(1)


def _timecode(container: InputContainer, stream: VideoStream) -> str | None:
    """The file's start timecode: on the video stream, a timecode (tmcd) track, or the container (MXF)."""
    places: list[Any] = [stream, *[s for s in container.streams if _is_timecode_track(s)], container]
    for place in places:
        value = place.metadata.get("timecode")
        if value and _TIMECODE.match(value):
            return str(value)
    return None


def _is_timecode_track(stream: Stream) -> bool:
    return stream.type == "data" and "timecode" in stream.metadata


def _is_chapter_track(stream: Stream, chapters: tuple[Chapter, ...]) -> bool:
    """Whether ``stream`` is the text track in which MOV and MP4 keep their chapter titles, one sample a chapter
    (FFmpeg reads the chapters from it; the output carries them as chapters)."""
    return bool(chapters) and stream.type in ("data", "subtitle") and stream.frames == len(chapters)


_TIMECODE = re.compile(r"^(\d{1,2})[:;.](\d{2})[:;.](\d{2})([:;.])(\d{2,3})$")


def shift_timecode(timecode: str, frames: int, fps: Fraction) -> str:
    """``timecode`` (HH:MM:SS:FF, or HH:MM:SS;FF drop-frame) moved on by ``frames`` frames at ``fps``.

    Timecode counts frames at the nominal rate (30 for 29.97); drop-frame skips frame numbers 0 and 1 (0 to 3 at
    60) of every minute but each tenth, so that it keeps to the clock. It wraps at 24 hours. A timecode of another
    form is returned as it is.
    """
    match = _TIMECODE.match(timecode)
    if match is None or frames == 0:
        return timecode
    hours, minutes, seconds, separator, frame = match.groups()
    nominal = max(1, round(fps))
    drop = nominal // 30 * 2 if separator in ";." and nominal % 30 == 0 else 0
    total_minutes = int(hours) * 60 + int(minutes)
    number = (total_minutes * 60 + int(seconds)) * nominal + int(frame) - drop * (total_minutes - total_minutes // 10)
    per_day = 24 * 60 * 60 * nominal - drop * (24 * 60 - 24 * 6)
    number = (number + frames) % per_day
    if drop:  # back to a frame count as if none were dropped
        per_ten, per_minute = nominal * 600 - drop * 9, nominal * 60 - drop
        tens, rest = divmod(number, per_ten)
        number += drop * 9 * tens + (drop * ((rest - drop) // per_minute) if rest > drop else 0)
    seconds_total, frame_number = divmod(number, nominal)
    minutes_total, second = divmod(seconds_total, 60)
    hour, minute = divmod(minutes_total, 60)
    width = len(match.group(5))
    return f"{hour:02d}:{minute:02d}:{second:02d}{separator}{frame_number:0{width}d}"


_IDENTITY = (1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30)  # FFmpeg's display matrix: 16.16 and 2.30 fixed point


def _display_matrix(first: AvFrame) -> tuple[int, ...] | None:
    """The first frame's display matrix, or None where it has none, the identity, or one that maps nothing."""
    data: Any = first.side_data.get("DISPLAYMATRIX")  # PyAV types its side data as a plain Mapping
    if data is None or data.buffer_size != 36:
        return None
    matrix = tuple(int(v) for v in np.frombuffer(bytes(data), "=i4"))
    if matrix == _IDENTITY or matrix[0] * matrix[4] - matrix[1] * matrix[3] == 0:
        return None  # all zeros (a damaged header): FFmpeg shows it as stored, PyAV reads -2**31 degrees
    return matrix


def _rotation(stream: VideoStream, first: AvFrame) -> int:
    tag = stream.metadata.get("rotate")
    if tag is not None and tag.lstrip("-").isdigit():
        return -int(tag) % 360  # the tag is clockwise
    degrees = first.rotation  # -2**31 for a matrix that maps nothing (FFmpeg's NaN): shown as stored
    return round(degrees) % 360 if -360 <= degrees <= 360 else 0


def _audio_track(stream: Stream) -> AudioTrack:
    context = stream.codec_context
    if context is None:
        return AudioTrack(stream.index, _codec_name(stream), 0, 0)
    return AudioTrack(stream.index, context.name, context.channels, context.sample_rate)  # type: ignore[attr-defined]


def _codec_name(stream: Stream) -> str:
    if stream.codec_context is not None:
        return stream.codec_context.name
    try:
        return stream.name or "unknown codec"
    except AttributeError:  # a video stream without a decoder has no name in PyAV
        return "unknown codec"


def _describe_other(stream: Stream) -> str:
    details = [_codec_name(stream)]
    if stream.language and stream.language != "und":  # "und": undetermined
        details.append(stream.language)
    if stream.disposition & Disposition.attached_pic:
        details.append("cover picture")
    return f"#{stream.index} {stream.type} ({', '.join(details)})"


class VideoReader:
    """Decode the frames of a video, or of a window of it, as RGB arrays (use as a context manager).

    Attributes:
        info: the :class:`VideoInfo` of the file.
        skipped: packets that could not be decoded (damaged data) and were skipped.
        timeline: what the last :meth:`frames` did to timestamps that did not increase (:mod:`cutout.io.timeline`).
        resized: how many frames of each other (width, height) than the clip's were scaled to its size.
    """

    def __init__(self, path: str | Path, *, start: float | None = None, duration: float | None = None) -> None:
        check_window(start, duration)
        self.path = Path(path)
        self.start = start
        self.duration = duration
        self.info = probe(self.path)
        self.skipped = 0
        self.timeline = Timeline(jump=1)  # set by frames(): what it did to the timestamps
        self.resized: dict[tuple[int, int], int] = {}  # frames scaled to the clip's size, by their own size
        self._started = False
        self._to_rgb = VideoReformatter()  # one per reader: it keeps its scaler between frames (2x faster)
        self._animation = _open_webp(self.path) if self.info.codec == "webp" and self.info.frame_count else None
        if self._animation is not None:
            return
        self._container = open_container(self.path)
        self._stream: VideoStream = self._container.streams.video[0]
        for stream in self._container.streams.video:
            if stream.index == self.info.stream_index:
                self._stream = stream
        self._stream.codec_context.thread_type = "AUTO"
        self._decoder = alpha_decoder(self._stream) or self._stream.codec_context

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._animation is not None:
            self._animation.close()
        else:
            self._container.close()

    def frames(self) -> Iterator[VideoFrame]:
        """The frames from ``start`` (the key frame before it is decoded, earlier frames dropped) to the end of
        the window (exclusive), in presentation order, numbered from 0. Each call starts again from ``start``."""
        if self._animation is not None:
            yield from self._webp_frames(self._animation)
            return
        time_base = self.info.time_base
        origin = round(self.info.start_time / time_base)
        begin = origin + round((self.start or 0.0) / time_base)
        end = None if self.duration is None else begin + round(self.duration / time_base)
        if self.start or self._started:
            self._seek(begin)
        self._started = True
        index = 0
        previous: int | None = None
        nominal = max(1, round(1 / (self.info.fps * time_base)))
        decoded = self._decoded()
        if self.info.interlaced:
            decoded = _deinterlaced(decoded, time_base, _PARITIES.get(self.info.interlaced, "auto"))
        # back by over a second (and 16 frames, more than B-frames shuffle): a new part, or a wild timestamp
        self.timeline = Timeline(jump=max(round(1 / time_base), 16 * nominal), keep=True)
        decoded = increasing(decoded, self.timeline, _pts, _set_pts, lambda frame: frame.duration or nominal)
        for frame in decoded:
            pts = frame.pts if frame.pts is not None else (origin if previous is None else previous + nominal)
            previous = pts
            if pts < begin:
                continue
            if end is not None and pts >= end:
                return
            rgb, alpha = self._pixels(frame)
            yield VideoFrame(index, rgb, pts, float((pts - origin) * time_base), alpha, frame.duration or None)
            index += 1

    def _webp_frames(self, image: Image.Image) -> Iterator[VideoFrame]:
        """An animated WebP's frames through Pillow, timed by its own durations (milliseconds)."""
        begin = round((self.start or 0.0) * 1000)
        end = None if self.duration is None else begin + round(self.duration * 1000)
        index, pts, previous = 0, 0, -1
        for number in range(self.info.frame_count or 1):
            try:
                image.seek(number)
                image.load()
            except (OSError, SyntaxError, ValueError, EOFError):  # a damaged frame: keep what was read
                self.skipped += 1
                return
            pts = max(pts, previous + 1)  # a frame of 0 ms still gets its own timestamp
            shown = int(image.info.get("duration") or 0)
            if end is not None and pts >= end:
                return
            if pts >= begin:
                rgba = np.asarray(image.convert("RGBA"))
                alpha = rgba[..., 3]
                opaque = alpha.min() == 255
                rgb = np.ascontiguousarray(rgba[..., :3])
                alpha_or_none = None if opaque else np.ascontiguousarray(alpha)
                yield VideoFrame(index, rgb, pts, pts / 1000, alpha_or_none, shown or None)
                index += 1
            previous, pts = pts, pts + shown

    def _pixels(self, frame: AvFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """The frame's RGB and, if it has an alpha channel that is not opaque everywhere, its alpha.

        A frame of another size than the clip's first (a stream that changes resolution midway, recordings joined
        end to end) is scaled to that size, as ffmpeg does, and counted in ``resized``.
        """
        size: dict[str, int] = {}
        if (frame.width, frame.height) != (self.info.width, self.info.height):
            size = {"width": self.info.width, "height": self.info.height}
            self.resized[frame.width, frame.height] = self.resized.get((frame.width, frame.height), 0) + 1
        if not frame.format.name.startswith(_ALPHA_PREFIXES):
            rgb = self._to_rgb.reformat(frame, format="rgb24", **size).to_ndarray()
            return np.ascontiguousarray(rgb), None  # unpadded
        rgba = self._to_rgb.reformat(frame, format="rgba", **size).to_ndarray()
        alpha = rgba[..., 3]
        return np.ascontiguousarray(rgba[..., :3]), None if alpha.min() == 255 else np.ascontiguousarray(alpha)

    def _seek(self, target: int) -> None:
        with contextlib.suppress(av.error.FFmpegError):  # not seekable: decode from the start, drop frames
            self._container.seek(target, stream=self._stream, backward=True)
        if self._decoder is not self._stream.codec_context:  # the container's seek flushes only its own decoder
            self._decoder.flush_buffers()

    def _decoded(self) -> Iterator[AvFrame]:
        bad_in_a_row = 0
        damaged: list[bool] = []  # damaged container data ended the packets: keep what was read
        for packet in demuxed(self._container, self._stream, on_damage=lambda: damaged.append(True)):
            try:
                frames = self._decoder.decode(packet)
            except av.error.FFmpegError as error:
                raise_if_fatal(error)
                self.skipped += 1
                bad_in_a_row += 1
                if bad_in_a_row > _MAX_BAD_PACKETS_IN_A_ROW:
                    raise VideoError(
                        f"{self.path}: {bad_in_a_row} packets in a row could not be decoded ({_reason(error)}); "
                        "the file is too damaged to read; check that it plays elsewhere, or re-encode it"
                    ) from None
                continue
            bad_in_a_row = 0
            yield from frames
        if damaged:
            self.skipped += 1
            yield from self._flush()

    def _flush(self) -> list[AvFrame]:
        try:
            return self._decoder.decode(None)
        except av.error.FFmpegError as error:
            raise_if_fatal(error)
            return []


def _pts(frame: AvFrame) -> int | None:
    return frame.pts


def _set_pts(frame: AvFrame, pts: int) -> None:
    frame.pts = pts


def _deinterlaced(frames: Iterator[AvFrame], time_base: Fraction, parity: str) -> Iterator[AvFrame]:
    """``frames`` with each frame marked interlaced made whole by FFmpeg's bwdif filter (:data:`_DEINTERLACE`),
    taking ``parity`` ("tff", "bff" or "auto") as the field shown first.

    Both fields of such a frame were taken 1/50 or 1/60 s apart: the model would see, and the cutout keep, the
    comb of horizontal lines along every moving edge, which a progressive output then shows as it is. bwdif
    rebuilds the other field's lines from its own field and the frames around it; timestamps are unchanged, so
    frame counts, ``--start`` and the audio stay as they are. It holds back one frame, given at the end.
    """
    graph: av.filter.Graph | None = None
    shape: tuple[int, int, str] | None = None

    def drained() -> Iterator[AvFrame]:
        assert graph is not None
        while True:
            try:
                frame = cast(AvFrame, graph.vpull())
            except (BlockingIOError, EOFError):  # wants the next frame (EAGAIN), or all given (end of stream)
                return
            # bwdif halves the time base (its other mode makes a frame of each field): back to the stream's
            scale = Fraction(frame.time_base or time_base) / time_base
            if frame.pts is not None:
                frame.pts = round(frame.pts * scale)
            if frame.duration:
                frame.duration = round(frame.duration * scale)
            frame.time_base = time_base
            yield frame

    for frame in frames:
        if shape != (frame.width, frame.height, frame.format.name):  # the first frame, or a new size mid-stream
            if graph is not None:
                graph.vpush(None)
                yield from drained()
            shape = (frame.width, frame.height, frame.format.name)
            graph = av.filter.Graph()
            source = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format, time_base=time_base)
            graph.link_nodes(source, graph.add("bwdif", _DEINTERLACE + parity), graph.add("buffersink")).configure()
        assert graph is not None
        graph.vpush(frame)
        yield from drained()
    if graph is not None:
        graph.vpush(None)
        yield from drained()


def check_window(start: float | None, duration: float | None) -> None:
    """Check ``start`` (seconds, >= 0) and ``duration`` (seconds, > 0); None means the beginning / to the end.

    Raises:
        UsageError: a negative start or a duration that is not positive, or either beyond _LONGEST_SECONDS (inf and
            1e308 overflowed into a traceback when turned into the stream's ticks).
    """
    if start is not None and not start >= 0:
        raise UsageError(f"start must be 0 seconds or later, got {start}; give a start time within the video")
    if duration is not None and not duration > 0:
        raise UsageError(f"duration must be more than 0 seconds, got {duration}; give a positive duration")
    for name, value in (("start", start), ("duration", duration)):
        if value is not None and not value <= _LONGEST_SECONDS:
            raise UsageError(
                f"{name} {value} is longer than any video (over {_LONGEST_SECONDS:.0e} seconds, 31 years); give it "
                f"in seconds{', or leave it out to go to the end' if name == 'duration' else ''}"
            )


_LONGEST_SECONDS = 1e9


def __getattr__(name: str) -> Any:
    """``VideoWriter`` and ``KINDS`` live in :mod:`cutout.io.video_writer` (which imports this module)."""
    if name in ("VideoWriter", "KINDS"):
        from cutout.io import video_writer

        return getattr(video_writer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
