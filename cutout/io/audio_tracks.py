"""The audio of a video's output: its input's audio streams copied packet for packet, or re-encoded where the
output's container does not take them as they are, as the video advances.

    >>> from cutout.io.audio_tracks import AudioTracks, Window
    >>> tracks = AudioTracks(output, Path("clip.mkv"), "mov", "aac", 256_000, notes)      # doctest: +SKIP
    >>> tracks.feed(Window(None, None), until=2.0)         # the audio that starts in the first 2 s  # doctest: +SKIP
    >>> tracks.finish(Window(None, None))                  # the rest, and the re-encoders flushed   # doctest: +SKIP

Whether a container takes a stream as it is shows only while FFmpeg writes the file, so it is tried in memory
first (:func:`_muxer_takes`). Damaged packets of a re-encoded stream leave a gap, timestamps that go back are
made to increase as the video's are (:mod:`cutout.io.timeline`), and damaged container data ends the audio
there; each is told in ``notes``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.stream import Stream

from cutout.io.timeline import Increasing, Timeline
from cutout.io.video import demuxed, open_container, raise_if_fatal


@dataclasses.dataclass
class Window:
    """The part of the input being written, in input seconds; ``shift`` is subtracted from every timestamp."""

    start: float | None
    end: float | None
    shift: float = 0.0
    shift_pts: int = 0  # the same, exactly, in the video's time base
    last_end: float = 0.0  # end of the last frame written


class AudioTracks:
    """The audio streams of a file, copied (or re-encoded) into an output as the video advances."""

    def __init__(
        self, output: OutputContainer, path: Path, muxer: str, codec: str, bit_rate: int, notes: list[str]
    ) -> None:
        self.source: InputContainer = open_container(path)
        self.output = output
        self.notes = notes
        self.skipped = 0  # damaged packets of re-encoded streams, left out (a gap in the sound)
        self.damaged = False  # the container's data broke off: the audio ends there
        self.timelines: dict[int, Timeline] = {}  # what was done to each stream's timestamps that went back
        self.next_sample: dict[int, int] = {}  # where each re-encoded stream's next samples go (1 / sample rate)
        self.shapes: dict[int, tuple[str, str, int]] = {}  # each re-encoded stream's first sample format, layout, rate
        self.converters: dict[tuple[int, tuple[str, str, int]], av.AudioResampler] = {}  # to that, from another
        self.streams: dict[int, tuple[AudioStream, AudioStream, bool]] = {}  # index: input, output, copied
        audio = self.source.streams.audio
        known = {stream.index for stream in audio if _settings_known(stream)}
        # PCM in MP4 (ISO 23003-5) is written by FFmpeg, but QuickTime, browsers and most editors cannot play it
        pcm = {stream.index for stream in audio if stream.index in known and stream.codec_context.name[:4] == "pcm_"}
        candidates = sorted(known - pcm if muxer == "mp4" else known)
        copyable = _copyable(muxer, path, candidates) if candidates else set()
        for stream in audio:
            if stream.codec_context is None:
                notes.append(f"dropped audio stream #{stream.index}: its codec is unknown to this FFmpeg")
                continue
            if stream.index not in known:  # no encoder or muxer takes it: it failed the clip
                notes.append(
                    f"dropped audio stream #{stream.index} ({_name(stream)}): its channels and sample rate are not "
                    "known from the start of the file (damaged, or a sound that begins later?)"
                )
                continue
            try:
                if stream.index not in copyable:
                    raise ValueError(stream.codec_context.name)
                self.streams[stream.index] = (stream, output.add_stream_from_template(stream), True)
            except ValueError:  # the container does not take this codec, or not with these settings
                self.streams[stream.index] = (stream, self._encoder(output, stream, codec, bit_rate), False)
                notes.append(
                    f"audio stream #{stream.index} ({_name(stream)}) cannot go into {muxer.upper()} as it "
                    f"is: re-encoded to {_name_of(codec)} at {bit_rate // 1000} kb/s"
                )
            # back by more than 0.2 s: a new part (or a wild timestamp)
            self.timelines[stream.index] = Timeline(jump=max(1, round(0.2 / (stream.time_base or Fraction(1, 1000)))))
        self.packets: Iterator[Packet] | None = None
        self.pending: Packet | None = None

    @staticmethod
    def _encoder(output: OutputContainer, stream: AudioStream, codec: str, bit_rate: int) -> AudioStream:
        context = stream.codec_context
        rate = 48_000 if codec == "libopus" else context.sample_rate
        encoder: AudioStream = output.add_stream(codec, rate=rate)  # type: ignore[assignment]
        encoder.bit_rate = bit_rate
        # channels in no stated order ("2 channels", as PCM in MKV or AVI has them): the usual layout for as many
        unordered = all(channel.name == "NONE" for channel in context.layout.channels)
        encoder.layout = _USUAL_LAYOUTS.get(context.channels, context.layout) if unordered else context.layout
        formats = [f.name for f in encoder.codec_context.codec.audio_formats or ()]
        encoder.format = next((f for f in ("flt", "fltp") if f in formats), formats[0])  # not 16-bit if avoidable
        return encoder

    def feed(self, window: Window, until: float | None) -> None:
        """Copy the audio packets that start before ``until`` seconds (None: all) and lie in ``window``."""
        if self.packets is None:
            self._start(window)
        assert self.packets is not None
        while True:
            packet = self.pending if self.pending is not None else next(self.packets, None)
            if packet is None:
                return
            if packet.dts is None or packet.time_base is None:  # the demuxer's flush packets
                self.pending = None
                continue
            time = float(packet.dts * packet.time_base)
            if window.end is not None and time >= window.end + 1.0:  # past the end for every stream: stop reading
                self.pending = None
                return
            if until is not None and time >= until:
                self.pending = packet
                return
            self.pending = None
            self._route(packet, window)

    def _in_order(self, packets: Iterator[Packet]) -> Iterator[Packet]:
        """The demuxed packets, each stream's timestamps made to increase as the video's are (recordings joined
        end to end follow one another: :mod:`cutout.io.timeline`)."""
        orders = {
            index: Increasing(self.timelines[index], _dts, _set_dts, lambda packet: packet.duration or 1)
            for index in self.streams
        }
        for packet in packets:
            order = orders.get(packet.stream_index)
            yield from order.add(packet) if order is not None else [packet]
        for order in orders.values():
            yield from order.end()

    def _broke_off(self) -> None:
        """Damaged container data ended the audio there, as the video reader keeps what it read up to there."""
        self.damaged = True

    def _decode(self, source: AudioStream, packet: Packet | None) -> list[AudioFrame]:
        """``source.decode(packet)``; a damaged packet (None: the flush) gives no samples instead of an error,
        as in ffmpeg, so a clip whose sound has a glitch is still cut out."""
        try:
            return source.decode(packet)
        except av.error.FFmpegError as error:
            raise_if_fatal(error)
            self.skipped += 1
            return []

    def _start(self, window: Window) -> None:
        if window.start is not None and window.shift > 0:
            with contextlib.suppress(av.error.FFmpegError):
                self.source.seek(int(window.shift * av.time_base), backward=True)
        sources = [source for source, _, _ in self.streams.values()]
        if not sources:  # demux() with none reads all
            self.packets = iter(())
            return
        self.packets = self._in_order(demuxed(self.source, *sources, on_damage=self._broke_off))

    def _route(self, packet: Packet, window: Window) -> None:
        source, output, copied = self.streams[packet.stream_index]
        time_base = packet.time_base
        stamp = packet.pts if packet.pts is not None else packet.dts
        begin = float((stamp or 0) * time_base)
        end = begin + float((packet.duration or 0) * time_base)
        if (window.end is not None and begin >= window.end) or (window.start is not None and end <= window.shift):
            return
        if copied:
            offset = round(window.shift / time_base)
            packet.pts = None if packet.pts is None else packet.pts - offset
            packet.dts = None if packet.dts is None else packet.dts - offset
            packet.stream = output
            try:
                self.output.mux(packet)
            except av.error.FFmpegError as error:  # a damaged packet the muxer refuses: "Invalid data" (ADTS AAC
                raise_if_fatal(error)  # into MP4), "Not yet implemented"; a disk's errors are OSErrors, not these
                if isinstance(error, OSError):
                    raise
                self.skipped += 1
            return
        for frame in self._decode(source, packet):
            self._encode(packet.stream_index, _trim(frame, window))

    def _encode(self, index: int, frame: AudioFrame | None) -> None:
        """Re-encode ``frame`` (None: nothing) of stream ``index``. Its samples follow the last ones given: a
        decoder can time a frame after a damaged packet before the end of the one before it, and the muxer then
        refuses the encoder's packets ("non monotonically increasing dts")."""
        if frame is None:
            return
        for part in self._as_first(index, frame):
            if part.pts is None and index in self.next_sample:  # a decoder's frame without a time: right after
                part.pts, part.time_base = self.next_sample[index], Fraction(1, part.sample_rate)
            if part.pts is not None:
                part.pts = max(part.pts, self.next_sample.get(index, part.pts))
                self.next_sample[index] = part.pts + part.samples
            self.output.mux(self.streams[index][1].encode(part))

    def _as_first(self, index: int, frame: AudioFrame) -> list[AudioFrame]:
        """``frame`` in the sample format, channels and rate of the stream's first frame, which the encoder was
        set up with (PyAV: "Frame does not match AudioResampler setup"): a broadcast's sound that changes from
        stereo to 5.1 midway, or damaged data, is converted, with a note."""
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        first = self.shapes.setdefault(index, shape)
        if shape == first:
            return [frame]
        if (index, shape) not in self.converters:
            self.converters[index, shape] = av.AudioResampler(format=first[0], layout=first[1], rate=first[2])
            self.notes.append(
                f"the sound of audio stream #{index} changes midway ({first[1]} at {first[2]} Hz, then {shape[1]} at "
                f"{shape[2]} Hz): converted to the first"
            )
        parts = self.converters[index, shape].resample(frame)
        for part in parts:
            part.pts = None  # placed right after the samples before
        return parts

    def finish(self, window: Window) -> None:
        """Copy the rest of the audio in ``window`` and flush the re-encoders."""
        self.feed(window, until=None)
        for source, output, copied in self.streams.values():
            if not copied:
                for frame in self._decode(source, None):
                    self._encode(source.index, _trim(frame, window))
                self.output.mux(output.encode(None))
        if self.skipped:
            self.notes.append(f"{self.skipped} damaged audio packet(s) were left out: the sound has a gap there")
        if self.damaged:
            self.notes.append("the audio breaks off where the file's data is damaged; the rest of it is not copied")
        dropped = sum(timeline.dropped for timeline in self.timelines.values())
        if dropped:
            self.notes.append(f"{dropped} audio packet(s) whose timestamps went back (damaged data?) were left out")
        self.close()

    def close(self) -> None:
        self.source.close()


#: FFmpeg's default layout for each number of channels (av_channel_layout_default)
_USUAL_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


_TRIAL_PACKETS = 1000  # how far into a file (of all its streams' packets) the trial looks for its first packet


def _settings_known(stream: AudioStream) -> bool:
    """Whether FFmpeg found the stream's codec, channels and sample rate when the file was opened."""
    context = stream.codec_context
    return context is not None and bool(context.channels and context.sample_rate)


def _copyable(muxer: str, path: Path, indices: list[int]) -> set[int]:
    """Which of the audio streams ``indices`` of ``path`` ``muxer`` takes as they are: for each, a file with a
    copy of the stream and its first packet is written in memory. What a muxer refuses shows only then: MOV
    refuses Opus and FLAC when its header is written ("only supported in MP4"), MP4 refuses PCM whose channels
    are in no stated order (as MKV and AVI keep them) when it writes its index, at the end; and a file that fails
    there is lost. The first packets are looked for, in one pass, among the file's first ones: a track that holds
    none is not searched for to the end of the file."""
    with open_container(path) as source:
        firsts: dict[int, Packet] = {}
        for packet in itertools.islice(demuxed(source), _TRIAL_PACKETS):  # damaged data: go without a packet
            if packet.stream.index in indices and packet.dts is not None and packet.size:
                firsts.setdefault(packet.stream.index, packet)
                if len(firsts) == len(indices):
                    break
        return {index for index in indices if _muxer_takes(muxer, source.streams[index], firsts.get(index))}


def _muxer_takes(muxer: str, stream: Stream, first: Packet | None) -> bool:
    """Whether ``muxer`` writes a file of a copy of ``stream`` and its ``first`` packet (None: none was read)."""
    trial = av.open(io.BytesIO(), "w", format=muxer)
    try:
        copy = trial.add_stream_from_template(stream)
        trial.start_encoding()  # the header, also when no packet could be read
        if first is not None:
            first.stream = copy
            trial.mux(first)
        trial.close()
    except (ValueError, av.error.FFmpegError):
        with contextlib.suppress(Exception):
            trial.close()
        return False
    return True


def _dts(packet: Packet) -> int | None:
    return packet.dts


def _set_dts(packet: Packet, dts: int) -> None:
    """Move the packet to ``dts``, its presentation time with it."""
    assert packet.dts is not None
    moved = dts - packet.dts
    packet.dts = dts
    if packet.pts is not None:
        packet.pts += moved


def _trim(frame: AudioFrame, window: Window) -> AudioFrame | None:
    """The samples of ``frame`` inside ``window``, with the timestamp shifted; None if there are none."""
    if frame.pts is None or frame.time_base is None:
        return frame
    rate = frame.sample_rate
    begin = float(frame.pts * frame.time_base)
    first = 0 if window.start is None else max(0, round((window.shift - begin) * rate))
    last = frame.samples if window.end is None else min(frame.samples, round((window.end - begin) * rate))
    if first >= last:
        return None
    if (first, last) != (0, frame.samples):
        samples: Any = frame.to_ndarray()
        step = 1 if frame.format.is_planar else len(frame.layout.channels)
        trimmed = AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[:, first * step : last * step]), format=frame.format.name, layout=frame.layout
        )
        trimmed.sample_rate = rate
    else:
        trimmed = frame
    trimmed.time_base = Fraction(1, rate)
    trimmed.pts = round((begin - window.shift) * rate) + first
    return trimmed


def _name(stream: AudioStream) -> str:
    return stream.codec_context.name if stream.codec_context is not None else "unknown codec"


def _name_of(codec: str) -> str:
    return {"libopus": "Opus", "aac": "AAC"}.get(codec, codec)
