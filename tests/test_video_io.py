"""cutout.io.video and cutout.io.video_writer on the real clips in ../shared/eval/video, decoded back with PyAV.

Small clips made here with PyAV cover what the real ones lack: rotation, a subtitle stream, irregular (VFR)
timestamps, an audio-only file and a codec this FFmpeg cannot decode.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import struct
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from cutout.errors import InputError, OutputError, UsageError, VideoError
from cutout.io.video import VideoInfo, VideoReader, VideoWriter, probe, shift_timecode

pytestmark = pytest.mark.integration

DAVIS = "davis16_dance-twirl.mp4"  # 854x480, 24 fps, 90 frames
ASL = "intel_asl_help_person.mp4"  # 640x480, yuvj420p (full range), 14500/483 fps, 58 frames
RABBIT = "mdn_rabbit320_audio.mp4"  # 320x240, 30 fps, 234 frames, stereo AAC
JUGGLE = "sam2_juggle_person.mp4"  # 1280x720, 24 fps, 247 frames


@pytest.fixture(scope="module")
def clips(shared: Path) -> Path:
    return shared / "eval" / "video"


def _rgba(rgb: np.ndarray, index: int) -> np.ndarray:
    """The frame with a known alpha: opaque left half, 60 on the right, a band that moves with the index."""
    alpha = np.full(rgb.shape[:2], 60, np.uint8)
    alpha[:, : rgb.shape[1] // 2] = 255
    band = (index * 16) % (rgb.shape[0] - 32)
    alpha[band : band + 32, rgb.shape[1] // 2 :] = 0
    return np.dstack([rgb, alpha])


def _copy_all(source: Path, target: Path, kind: str, audio_from: Path | None = None) -> VideoWriter:
    """Every frame of ``source`` into ``target``: RGB for mp4, RGBA with a known alpha, or the green as a matte."""
    with VideoReader(source) as reader, VideoWriter(target, reader.info, kind=kind, audio_from=audio_from) as out:
        for frame in reader.frames():
            array = frame.rgb
            if kind in ("mov", "webm", "png"):
                array = _rgba(frame.rgb, frame.index)
            elif kind in ("mask", "mkv-mask"):
                array = frame.rgb[..., 1]
            out.write(array, frame.pts)
    return out


@dataclasses.dataclass(frozen=True)
class _Stream:
    """Facts about a written video stream, read while its file is open."""

    codec: str
    profile: str | None
    tag: str
    rate: Fraction | None
    seconds: float


def _decode(path: Path, codec: str | None = None) -> tuple[list[av.VideoFrame], _Stream]:
    """Every frame of the video in ``path``; ``codec`` picks a decoder (libvpx-vp9 to get VP9's alpha)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if codec is None:
            frames = list(container.decode(stream))
        else:
            decoder = av.CodecContext.create(codec, "r")
            frames = [frame for packet in container.demux(stream) for frame in decoder.decode(packet)]
        context = stream.codec_context
        seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        facts = _Stream(context.name, context.profile, context.codec_tag, stream.average_rate, seconds)
        return frames, facts


def _seconds(frames: list[av.VideoFrame]) -> list[Fraction]:
    return [Fraction(frame.pts) * frame.time_base for frame in frames]


def _input_seconds(path: Path) -> list[Fraction]:
    with VideoReader(path) as reader:
        return [Fraction(frame.pts) * reader.info.time_base for frame in reader.frames()]


Shown = Callable[[np.ndarray, Sequence[int]], np.ndarray]
MatrixOf = Callable[[Path], "list[int] | None"]


def _make_clip(
    path: Path,
    pts: list[int],
    *,
    time_base: Fraction = Fraction(1, 30),
    rotation: int = 0,
    subtitle: bool = False,
    hflip: bool = False,
    matrix: list[int] | None = None,
) -> None:
    """A small H.264 clip (64x48) with the given timestamps, rotation (mirrored left to right after it with
    ``hflip``, or a whole display ``matrix``) and, optionally, a mov_text subtitle. Frame i is grey 30 i with a
    white top left corner, so its orientation shows."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.time_base = video.codec_context.time_base = time_base
        if matrix is not None:
            video.set_display_matrix(matrix)
        elif rotation or hflip:
            video.set_display_rotation(rotation, hflip=hflip)
        # mov_text's encoder wants an ASS header; add_mux_stream takes ready-made packets instead
        text = container.add_mux_stream("mov_text", time_base=Fraction(1, 1000)) if subtitle else None
        for index, stamp in enumerate(pts):
            pixels = np.full((48, 64, 3), index * 30, np.uint8)
            pixels[:16, :16] = 255
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = stamp, time_base
            container.mux(video.encode(frame))
        if text is not None:
            packet = av.Packet(struct.pack(">H", 5) + b"hello")
            packet.stream, packet.pts, packet.dts, packet.duration = text, 0, 0, 100
            packet.time_base = Fraction(1, 1000)
            container.mux(packet)
        container.mux(video.encode(None))


# --- probe -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size", "fps", "frames", "duration"),
    [
        (DAVIS, (854, 480), Fraction(24), 90, 3.75),
        (ASL, (640, 480), Fraction(14500, 483), 58, 1.932),
        (RABBIT, (320, 240), Fraction(30), 234, 7.8),
        (JUGGLE, (1280, 720), Fraction(24), 247, 10.2917),
    ],
)
def test_probe_reads_size_rate_count_and_duration(
    clips: Path, name: str, size: tuple[int, int], fps: Fraction, frames: int, duration: float
) -> None:
    info = probe(clips / name)
    assert (info.width, info.height, info.fps, info.frame_count) == (*size, fps, frames)
    assert info.duration == pytest.approx(duration, abs=1e-3)
    assert (info.codec, info.rotation, info.other_streams) == ("h264", 0, ())
    assert info.audio == (((1, "aac", 2, 44100),) if name == RABBIT else ())


def test_probe_reports_full_range_and_the_time_base(clips: Path) -> None:
    asl, rabbit = probe(clips / ASL), probe(clips / RABBIT)
    assert (asl.pix_fmt, asl.color_range, asl.time_base) == ("yuvj420p", "pc", Fraction(1, 16000))
    assert (rabbit.pix_fmt, rabbit.color_range, rabbit.time_base) == ("yuv420p", "tv", Fraction(1, 30))


def test_probe_reads_rotation_and_lists_streams_an_output_cannot_carry(tmp_path: Path) -> None:
    _make_clip(tmp_path / "turned.mp4", list(range(5)), rotation=90, subtitle=True)
    info = probe(tmp_path / "turned.mp4")
    assert (info.width, info.height, info.rotation) == (64, 48, 90)
    assert info.other_streams == ("#1 subtitle (mov_text)",)


@pytest.mark.parametrize(("rotation", "hflip"), [(90, True), (0, True), (270, True), (180, False)])
def test_probe_reads_a_mirror_and_a_display_matrix_that_maps_nothing(
    tmp_path: Path, rotation: int, hflip: bool, as_shown: Shown, display_matrix: MatrixOf
) -> None:
    _make_clip(tmp_path / "mirrored.mp4", list(range(2)), rotation=rotation, hflip=hflip)
    info = probe(tmp_path / "mirrored.mp4")
    assert info.display_matrix == tuple(display_matrix(tmp_path / "mirrored.mp4") or ())
    assert info.mirrored == hflip
    # the frame flipped upside down, then turned by the rotation read, is what a player shows
    frame = np.arange(48 * 64).reshape(48, 64)
    shown = np.rot90(frame[::-1] if info.mirrored else frame, info.rotation // 90)
    assert np.array_equal(shown, as_shown(frame, info.display_matrix))
    # all zeros (a damaged header): PyAV read -2**31 degrees, so the output was marked turned 232 degrees
    _make_clip(tmp_path / "zero.mp4", list(range(2)), matrix=[0, 0, 0, 0, 0, 0, 0, 0, 1 << 30])
    zero = probe(tmp_path / "zero.mp4")
    assert (zero.rotation, zero.display_matrix, zero.mirrored) == (0, None, False)


def _truncated_clip(path: Path) -> None:
    """An MP4 cut off before its index (moov), which the muxer writes last: an interrupted download."""
    _make_clip(path, list(range(8)))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("hello, not a video\n"), "not a video ffmpeg can read"),
        (lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
        (lambda p: p.write_bytes(bytes(range(256)) * 40), "not a video ffmpeg can read"),
        (lambda p: p.mkdir(), "is not a file"),
        (lambda p: None, "does not exist"),
        (_truncated_clip, r"is an MP4/MOV file ffmpeg cannot read \(.*\): it is probably truncated"),
    ],
    ids=["text", "empty", "garbage", "folder", "missing", "truncated-before-its-index"],
)
def test_probe_explains_what_is_not_a_video(tmp_path: Path, make: Callable[[Path], object], message: str) -> None:
    path = tmp_path / "clip.mp4"
    make(path)
    with pytest.raises(VideoError, match=message) as caught:
        probe(path)
    assert isinstance(caught.value, InputError) and str(path) in str(caught.value)


def test_an_animated_webp_is_read_with_pillow_with_its_timing_and_alpha(tmp_path: Path) -> None:
    """FFmpeg cannot decode animated WebP (stickers are): Pillow reads it, frames, timing and transparency."""
    from PIL import Image

    alpha = np.full((8, 16), 255, np.uint8)
    alpha[:, :4] = 0
    colours = [(255, 0, 0), (0, 0, 255), (0, 255, 0)]
    frames = [Image.fromarray(np.dstack([np.full((8, 16, 3), c, np.uint8), alpha])) for c in colours]
    frames[0].save(tmp_path / "a.webp", save_all=True, append_images=frames[1:], duration=[100, 200, 50], lossless=True)
    info = probe(tmp_path / "a.webp")
    assert (info.codec, info.width, info.height, info.frame_count, info.fps) == ("webp", 16, 8, 3, 10)
    with VideoReader(tmp_path / "a.webp") as reader:
        read = list(reader.frames())
    assert [(f.index, f.pts, f.duration) for f in read] == [(0, 0, 100), (1, 100, 200), (2, 300, 50)]
    assert [f.rgb[0, 8].tolist() for f in read] == [list(c) for c in colours]
    assert all(f.alpha is not None and (f.alpha == alpha).all() for f in read)
    with VideoReader(tmp_path / "a.webp", start=0.1, duration=0.2) as reader:
        assert [f.pts for f in reader.frames()] == [100]  # the window, as for any video
    (tmp_path / "bad.webp").write_bytes((tmp_path / "a.webp").read_bytes()[:60])  # cut off in the first frame
    with pytest.raises(VideoError, match=r"bad\.webp: cannot read this animated WebP"):
        probe(tmp_path / "bad.webp")


def test_probe_says_an_audio_file_has_no_video(tmp_path: Path) -> None:
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as container:
        audio = container.add_stream("aac", rate=44100)
        audio.layout = "mono"
        samples = np.sin(np.arange(44100) * 2 * np.pi * 440 / 44100).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, 0
        container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    with pytest.raises(VideoError, match=r"has no video stream \(audio only\?\)"):
        probe(path)


def test_probe_names_a_codec_without_decoder(tmp_path: Path) -> None:
    path = tmp_path / "avs3.mkv"  # AVS3 has a codec id but no decoder in PyAV's FFmpeg
    with av.open(str(path), "w") as container:
        stream = container.add_mux_stream("avs3", width=64, height=48, time_base=Fraction(1, 25))
        for index in range(3):
            packet = av.Packet(b"\x00\x00\x01\xb0" + bytes(60))
            packet.stream, packet.pts, packet.dts = stream, index, index
            packet.time_base = Fraction(1, 25)
            container.mux(packet)
    with pytest.raises(VideoError, match="has no decoder for"):
        probe(path)


# --- reader ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count"), [(DAVIS, 90), (ASL, 58), (RABBIT, 234), (JUGGLE, 247)])
def test_reader_yields_every_frame_in_order(clips: Path, name: str, count: int) -> None:
    with VideoReader(clips / name) as reader:
        frames = [(frame.index, frame.pts, frame.rgb.shape, frame.rgb.dtype == np.uint8) for frame in reader.frames()]
        info = reader.info
    assert len(frames) == count and reader.skipped == 0
    assert [index for index, *_ in frames] == list(range(count))
    assert all(a[1] < b[1] for a, b in zip(frames, frames[1:], strict=False))
    assert {shape for *_, shape, _ in frames} == {(info.height, info.width, 3)}
    assert all(uint8 for *_, uint8 in frames)


@pytest.mark.parametrize(("name", "expected"), [(DAVIS, 12), (ASL, 15), (RABBIT, 15)])
def test_reader_trims_to_start_and_duration(clips: Path, name: str, expected: int) -> None:
    with VideoReader(clips / name) as reader:
        everything = {frame.pts: frame for frame in reader.frames() if 1.0 <= frame.time < 1.5}
    with VideoReader(clips / name, start=1.0, duration=0.5) as reader:
        window = list(reader.frames())
    assert len(window) == expected == len(everything)
    assert [frame.index for frame in window] == list(range(expected))
    assert window[0].time == pytest.approx(1.0, abs=0.02) and window[-1].time < 1.5
    for frame in window:  # the seek landed on a key frame and decoded forward: the same pixels as a full read
        np.testing.assert_array_equal(frame.rgb, everything[frame.pts].rgb)


def test_reader_rejects_a_negative_start_or_empty_duration(clips: Path) -> None:
    with pytest.raises(UsageError, match="start must be 0 seconds or later"):
        VideoReader(clips / RABBIT, start=-1)
    with pytest.raises(UsageError, match="duration must be more than 0"):
        VideoReader(clips / RABBIT, duration=0)
    # inf and 1e308 overflowed into a traceback when turned into the stream's ticks
    for start, duration, said in [
        (math.inf, None, "start inf"),
        (1e308, None, "start 1e+308"),
        (0, math.inf, "duration inf"),
    ]:
        with pytest.raises(UsageError, match=re.escape(said) + " is longer than any video .*give it in seconds"):
            list(VideoReader(clips / RABBIT, start=start, duration=duration).frames())


def test_reader_skips_and_counts_corrupt_packets(clips: Path, tmp_path: Path) -> None:
    data = bytearray((clips / RABBIT).read_bytes())
    noise = np.random.default_rng(0)
    for fraction in (0.4, 0.5, 0.6):  # three damaged spots in the middle of the media data
        at = int(len(data) * fraction)
        data[at : at + 2000] = noise.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with VideoReader(damaged) as reader:
        frames = list(reader.frames())
    assert reader.skipped >= 1
    assert 0.9 * 234 <= len(frames) < 234
    assert frames[-1].time == pytest.approx(7.77, abs=0.05)  # decoding went on to the end


# --- writer: each kind decoded back ------------------------------------------------------------------------------


def test_mp4_round_trip_keeps_frames_rate_duration_and_timestamps(clips: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    writer = _copy_all(clips / DAVIS, target, "mp4")
    frames, stream = _decode(target)
    assert (stream.codec, frames[0].format.name, len(frames)) == ("h264", "yuv420p", 90)
    assert stream.rate == 24
    assert stream.seconds == pytest.approx(3.75, abs=1 / 24)
    assert _seconds(frames) == _input_seconds(clips / DAVIS)
    with VideoReader(clips / DAVIS) as reader:
        first = next(iter(reader.frames())).rgb
    assert np.abs(frames[0].to_ndarray(format="rgb24").astype(int) - first).mean() < 2.5  # crf 18
    assert writer.notes == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_mov_round_trip_is_prores_4444_with_alpha(clips: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.mov"
    _copy_all(clips / ASL, target, "mov")
    frames, stream = _decode(target)
    assert (stream.codec, stream.profile, stream.tag) == ("prores", "4444", "ap4h")
    assert frames[0].format.name.startswith("yuva444p")  # written 10-bit; FFmpeg's decoder hands out 12-bit
    assert len(frames) == 58 and stream.rate == pytest.approx(14500 / 483, rel=2e-3)
    assert _seconds(frames) == _input_seconds(clips / ASL)
    with VideoReader(clips / ASL) as reader:
        expected = [_rgba(frame.rgb, frame.index)[..., 3] for frame in reader.frames()]
    for index in (0, 7, 57):
        alpha = frames[index].to_ndarray(format="rgba")[..., 3].astype(int)
        assert np.abs(alpha - expected[index]).max() <= 1


def test_webm_round_trip_keeps_vp9_alpha(clips: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.webm"
    _copy_all(clips / ASL, target, "webm")
    plain, stream = _decode(target)
    assert stream.codec == "vp9" and plain[0].format.name == "yuv420p"  # FFmpeg's vp9 drops alpha
    frames, _ = _decode(target, codec="libvpx-vp9")  # libvpx decodes the alpha side stream too
    assert frames[0].format.name == "yuva420p" and len(frames) == 58
    assert stream.rate == pytest.approx(14500 / 483, rel=2e-3)
    for output, source in zip(_seconds(plain), _input_seconds(clips / ASL), strict=True):
        assert abs(output - source) <= Fraction(1, 1000)  # WebM counts milliseconds
    with VideoReader(clips / ASL) as reader:
        expected = [_rgba(frame.rgb, frame.index)[..., 3] for frame in reader.frames()]
    for index in (0, 30, 57):
        alpha = frames[index].to_ndarray(format="rgba")[..., 3].astype(int)
        inside = np.ones_like(alpha, bool)  # away from the edges of the pattern, where 4:2:0 blurs
        inside[:, 310:330] = False
        band = (index * 16) % (480 - 32)
        inside[max(0, band - 8) : band + 40, :] = False
        assert np.abs(alpha - expected[index])[inside].max() <= 4
        assert np.abs(alpha - expected[index]).mean() < 2
    # cutout reads it back with its alpha (it read such a WebM as opaque), also from a later start
    assert probe(target).pix_fmt == "yuva420p"
    with VideoReader(target) as reader:
        read = list(reader.frames())
    assert len(read) == 58 and all(frame.alpha is not None for frame in read)
    for index in (0, 30, 57):
        assert np.abs(read[index].alpha.astype(int) - frames[index].to_ndarray(format="rgba")[..., 3]).max() <= 1
    with VideoReader(target, start=1.0) as reader:
        later = list(reader.frames())
    assert later and all(frame.alpha is not None for frame in later) and len(later) < 58


def test_png_folder_has_one_lossless_rgba_file_per_frame(clips: Path, tmp_path: Path) -> None:
    target = tmp_path / "frames"
    writer = _copy_all(clips / RABBIT, target, "png", audio_from=clips / RABBIT)
    names = sorted(p.name for p in target.iterdir())
    assert names == [f"frame_{index:06d}.png" for index in range(234)]
    from PIL import Image

    with VideoReader(clips / RABBIT) as reader:
        frame = next(iter(reader.frames()))
    with Image.open(target / "frame_000000.png") as image:
        assert image.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(image), _rgba(frame.rgb, 0))
    assert any("carries no audio" in note for note in writer.notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_mask_round_trip_is_grey_h264(clips: Path, tmp_path: Path) -> None:
    target = tmp_path / "mask.mp4"
    _copy_all(clips / RABBIT, target, "mask")
    frames, stream = _decode(target)
    assert (stream.codec, frames[0].format.name, len(frames)) == ("h264", "yuv420p", 234)
    with VideoReader(clips / RABBIT) as reader:
        grey = next(iter(reader.frames())).rgb[..., 1].astype(int)
    decoded = frames[0].to_ndarray(format="gray").astype(int)
    assert np.abs(decoded - grey).mean() < 2.5
    ramp = np.tile(np.arange(256, dtype=np.uint8), (240, 2))[:, :320]  # the full 0..255 scale survives
    info = probe(clips / RABBIT)
    with VideoWriter(tmp_path / "ramp.mp4", info, kind="mask") as writer:
        writer.write(ramp, 0)
    back = _decode(tmp_path / "ramp.mp4")[0][0].to_ndarray(format="gray").astype(int)
    assert np.abs(back[:, 8:248] - ramp[:, 8:248]).max() <= 3 and back[:, 2].max() <= 3 and back[:, 253].min() >= 252


# --- writer: audio -----------------------------------------------------------------------------------------------


def _audio_packets(path: Path) -> tuple[list[bytes], tuple[str, int, int, Fraction | None]]:
    """The bytes of every packet of the first audio stream, and its codec, channels, rate and time base."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        context = stream.codec_context
        facts = (context.name, context.channels, context.sample_rate, stream.time_base)
        return [bytes(packet) for packet in container.demux(stream) if packet.size], facts


def test_audio_is_copied_bit_for_bit_and_interleaved(clips: Path, tmp_path: Path) -> None:
    source, target = clips / RABBIT, tmp_path / "out.mp4"
    with VideoReader(source) as reader, VideoWriter(target, reader.info, kind="mp4", audio_from=source) as writer:
        for frame in reader.frames():
            writer.write(frame.rgb, frame.pts)
            if frame.index == 117:  # half way: the audio has followed the video, not waited for the end
                fed = writer._sink.audio.pending  # type: ignore[union-attr]
                assert fed is not None and 3.8 <= float(fed.dts * fed.time_base) <= 4.0
    assert writer.notes == []
    copied, facts = _audio_packets(target)
    original, original_facts = _audio_packets(source)
    assert copied == original and len(copied) == 335
    assert facts == original_facts == ("aac", 2, 44100, Fraction(1, 44100))
    with av.open(str(target)) as container:  # in file order, video and audio alternate from the start
        kinds = "".join(packet.stream.type[0] for packet in container.demux() if packet.size)
    assert "a" in kinds[:10] and "v" in kinds[:10] and "aaaaaaaaaaaaaaaaaaaa" not in kinds


def test_audio_follows_the_window_and_the_shifted_timeline(clips: Path, tmp_path: Path) -> None:
    source, target = clips / RABBIT, tmp_path / "window.mp4"
    window = {"start": 2.0, "duration": 3.0}
    with (
        VideoReader(source, **window) as reader,
        VideoWriter(target, reader.info, kind="mp4", audio_from=source, **window) as writer,
    ):
        for frame in reader.frames():
            writer.write(frame.rgb, frame.pts)
    frames, stream = _decode(target)
    assert len(frames) == 90 and _seconds(frames)[0] == 0
    assert stream.seconds == pytest.approx(3.0, abs=1 / 30)
    with av.open(str(source)) as container:
        inside = [
            bytes(packet)
            for packet in container.demux(container.streams.audio[0])
            if packet.size and (packet.pts + packet.duration) / 44100 > 2.0 and packet.pts / 44100 < 5.0
        ]
    assert _audio_packets(target)[0] == inside  # the packets that overlap 2 s .. 5 s, untouched
    with av.open(str(target)) as container:
        audio = container.streams.audio[0]
        assert float(audio.duration * audio.time_base) == pytest.approx(3.0, abs=0.05)


def test_webm_gets_opus_audio_and_a_note(clips: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.webm"
    writer = _copy_all(clips / RABBIT, target, "webm", audio_from=clips / RABBIT)
    assert writer.notes == ["audio stream #1 (aac) cannot go into WEBM as it is: re-encoded to Opus at 160 kb/s"]
    with av.open(str(target)) as container:
        audio = container.streams.audio[0]
        assert (audio.codec_context.name, audio.codec_context.channels, audio.sample_rate) == ("opus", 2, 48000)
        frames = list(container.decode(audio))
    end = float(frames[-1].pts * frames[-1].time_base) + frames[-1].samples / 48000
    assert end == pytest.approx(7.8, abs=0.05) and sum(f.samples for f in frames) / 48000 == pytest.approx(
        7.8, abs=0.05
    )


def test_subtitle_streams_are_dropped_with_a_note(tmp_path: Path) -> None:
    source = tmp_path / "subtitled.mp4"
    _make_clip(source, list(range(5)), subtitle=True)
    writer = _copy_all(source, tmp_path / "out.mp4", "mp4", audio_from=source)
    assert writer.notes == ["dropped stream #1 subtitle (mov_text): .mp4 output carries video and audio only"]
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert [stream.type for stream in container.streams] == ["video"]


# --- writer: timing, rotation, colour, odd sizes -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mp4", "webm", "mkv"])
def test_variable_frame_rate_timestamps_survive(tmp_path: Path, kind: str) -> None:
    source = tmp_path / "vfr.mp4"
    _make_clip(source, [0, 1, 3, 4, 7])
    with VideoReader(source) as reader:
        assert [frame.pts * reader.info.time_base for frame in reader.frames()] == [
            Fraction(t, 30) for t in (0, 1, 3, 4, 7)
        ]
    target = tmp_path / f"out.{kind}"
    _copy_all(source, target, kind)
    for output, expected in zip(_seconds(_decode(target)[0]), (0, 1, 3, 4, 7), strict=True):
        assert abs(output - Fraction(expected, 30)) <= Fraction(1, 1000)


@pytest.mark.parametrize("kind", ["mp4", "mov", "webm", "mkv"])
def test_rotation_is_carried_as_metadata(tmp_path: Path, kind: str) -> None:
    source = tmp_path / "turned.mp4"
    _make_clip(source, list(range(3)), rotation=90)
    target = tmp_path / f"out.{kind}"
    _copy_all(source, target, kind)
    info = probe(target)
    assert (info.rotation, info.width, info.height) == (90, 64, 48)


@pytest.mark.parametrize("kind", ["mp4", "mov", "webm", "mkv"])
@pytest.mark.parametrize(("rotation", "hflip"), [(90, True), (0, True), (45, False)])
def test_a_mirror_or_an_odd_angle_is_carried_too(
    tmp_path: Path, kind: str, rotation: int, hflip: bool, display_matrix: MatrixOf
) -> None:
    # only the rotation was copied: a mirrored clip's output showed turned instead of mirrored
    source = tmp_path / "mirrored.mp4"
    _make_clip(source, list(range(3)), rotation=rotation, hflip=hflip)
    target = tmp_path / f"out.{kind}"
    _copy_all(source, target, kind)
    assert display_matrix(target) == display_matrix(source) is not None
    _make_clip(source, list(range(3)), matrix=[0, 0, 0, 0, 0, 0, 0, 0, 1 << 30])  # maps nothing: shown as stored
    _copy_all(source, target, kind)
    assert display_matrix(target) is None


@pytest.mark.parametrize("rotation", [90, 0, 270])
def test_an_animation_of_a_mirrored_clip_shows_as_the_clip(
    tmp_path: Path, rotation: int, as_shown: Shown, display_matrix: MatrixOf
) -> None:
    from PIL import Image

    source = tmp_path / "mirrored.mp4"
    _make_clip(source, list(range(3)), rotation=rotation, hflip=True)
    with VideoReader(source) as reader, VideoWriter(tmp_path / "o.webp", reader.info, kind="webp") as out:
        decoded = list(reader.frames())
        for frame in decoded:
            out.write(frame.rgb, frame.pts)
    with Image.open(tmp_path / "o.webp") as image:
        image.seek(2)
        written = np.asarray(image.convert("RGB")).astype(int)
    expected = as_shown(decoded[2].rgb, display_matrix(source) or [])
    assert written.shape == expected.shape and np.abs(written - expected).mean() < 4


@pytest.mark.parametrize("kind", ["gif", "mp4"])
def test_a_frame_an_animation_leaves_out_needs_no_picture(clips: Path, tmp_path: Path, kind: str) -> None:
    # cutout video paces an animation's frames before the model, and passes None for those it leaves out
    from PIL import Image

    info = dataclasses.replace(probe(clips / RABBIT), time_base=Fraction(1, 100), fps=Fraction(100))
    frame = np.zeros((info.height, info.width, 3), np.uint8)
    with VideoWriter(tmp_path / f"o.{kind}", info, kind=kind) as writer:
        writer.write(frame, 0)
        if kind == "gif":  # 10 ms after the first: left out, the first shows 20 ms
            writer.write(None, 1)
        with pytest.raises(ValueError, match="no picture for the frame at pts 2"):
            writer.write(None, 2)  # kept (20 ms after the first; an MP4 keeps every frame): it needs a picture
        writer.write(frame, 2)
    assert (writer.frames_written, writer.frames_dropped) == (2, 1 if kind == "gif" else 0)
    if kind == "gif":
        with Image.open(tmp_path / "o.gif") as image:
            assert image.n_frames == 2 and image.info["duration"] == 20


@pytest.mark.parametrize(("kind", "expected"), [("mp4", "pc"), ("webm", "pc"), ("mov", "tv"), ("mkv", "pc")])
def test_colour_range_follows_the_input(clips: Path, tmp_path: Path, kind: str, expected: str) -> None:
    info = probe(clips / ASL)
    with VideoReader(clips / ASL, duration=0.2) as reader, VideoWriter(tmp_path / f"o.{kind}", info, kind=kind) as out:
        for frame in reader.frames():
            out.write(frame.rgb, frame.pts)
    assert probe(tmp_path / f"o.{kind}").color_range == expected  # ProRes is always limited range
    with VideoReader(clips / ASL, duration=0.05) as reader:
        original = next(iter(reader.frames())).rgb.astype(int)
    decoded = _decode(tmp_path / f"o.{kind}")[0][0].to_ndarray(format="rgb24").astype(int)
    assert abs(decoded.mean() - original.mean()) < 1.5  # no range mix-up: that would shift the mean by ~10


@pytest.mark.parametrize(("height", "matrix"), [(48, 6), (720, 1)])
@pytest.mark.parametrize("kind", ["mp4", "webm", "mov", "mkv"])
def test_an_input_stored_as_rgb_gets_a_yuv_matrix_tag(tmp_path: Path, kind: str, height: int, matrix: int) -> None:
    """An APNG decodes as RGB (AVColorSpace 0); that tag on YUV output made VP9 refuse it and H.264 play as GBR."""
    from av.video.reformatter import Colorspace
    from PIL import Image

    colours = [(40, 180, 90), (200, 60, 120)]
    frames = [Image.new("RGB", (64, height), colour) for colour in colours]
    frames[0].save(tmp_path / "in.png", save_all=True, append_images=frames[1:], duration=100)
    info = probe(tmp_path / "in.png")
    assert (info.codec, info.colorspace) == ("apng", 0)
    target = tmp_path / f"out.{kind}"
    _copy_all(tmp_path / "in.png", target, kind)
    decoded, _ = _decode(target)
    assert [int(frame.colorspace) for frame in decoded] == [matrix] * 2
    matrices = {6: Colorspace.ITU601, 1: Colorspace.ITU709}
    for frame, colour in zip(decoded, colours, strict=True):
        rgb = frame.reformat(format="rgb24", src_colorspace=matrices[matrix]).to_ndarray()
        assert np.abs(rgb[8:-8, 8:24].astype(int) - colour).max() <= 3  # the opaque left part, away from chroma edges


def test_an_apng_gets_its_frame_rate_from_its_frames(tmp_path: Path) -> None:
    """FFmpeg guesses one frame per tick (100000 fps) for an APNG; the output's last frame then lasted 10 us."""
    from PIL import Image

    frames = [Image.new("RGB", (64, 48), colour) for colour in ("red", "blue")]  # from 3 frames on FFmpeg gets it
    frames[0].save(tmp_path / "in.png", save_all=True, append_images=frames[1:], duration=100)
    assert probe(tmp_path / "in.png").fps == 10
    _copy_all(tmp_path / "in.png", tmp_path / "out.mp4", "mp4")
    assert probe(tmp_path / "out.mp4").duration == pytest.approx(0.2, abs=0.005)


@pytest.mark.parametrize("kind", ["webp", "apng", "gif"])
def test_animations_keep_frames_timing_alpha_and_colours(clips: Path, tmp_path: Path, kind: str) -> None:
    from PIL import Image

    target = tmp_path / f"out.{kind}"
    with VideoReader(clips / RABBIT, duration=0.5) as reader, VideoWriter(target, reader.info, kind=kind) as out:
        written = [(_rgba(frame.rgb, frame.index), frame.pts) for frame in reader.frames()]
        for array, pts in written:
            out.write(array, pts)
    assert out.notes == []  # nothing to announce without audio_from
    image = Image.open(target)
    assert (image.format, image.size, image.n_frames, image.info.get("loop")) == (
        {"webp": "WEBP", "apng": "PNG", "gif": "GIF"}[kind],
        (320, 240),
        15,
        0,  # loops forever
    )
    durations = []
    for index, (array, _) in enumerate(written):
        image.seek(index)
        image.load()
        durations.append(image.info["duration"])
        decoded = np.asarray(image.convert("RGBA")).astype(int)
        expected = array[..., 3] if kind != "gif" else np.where(array[..., 3] >= 128, 255, 0)  # GIF: 1-bit
        np.testing.assert_array_equal(decoded[..., 3], expected)
        shown = decoded[..., 3] > 0
        error = np.abs(decoded[..., :3] - array[..., :3])[shown].mean()
        assert error <= {"webp": 4.0, "apng": 0.0, "gif": 6.0}[kind], (index, error)
    assert sum(durations) == pytest.approx(500, abs=20)  # 15 frames at 30 fps (GIF: centiseconds)


def test_an_animation_of_a_rotated_clip_is_turned_upright_and_notes_the_lost_audio(clips: Path, tmp_path: Path) -> None:
    from PIL import Image

    source = tmp_path / "turned.mp4"
    _make_clip(source, list(range(3)), rotation=90)  # 64 x 48 stored, shown turned 90 degrees counter-clockwise
    with VideoReader(source) as reader, VideoWriter(tmp_path / "o.webp", reader.info, kind="webp") as out:
        decoded = list(reader.frames())
        for frame in decoded:
            out.write(frame.rgb, frame.pts)
        frames = [frame.rgb for frame in decoded]
    image = Image.open(tmp_path / "o.webp")
    assert image.size == (48, 64) and image.n_frames == 3
    upright = np.rot90(frames[2])
    image.seek(2)
    assert np.abs(np.asarray(image.convert("RGB")).astype(int) - upright).mean() < 4
    info = probe(clips / RABBIT)
    with VideoWriter(tmp_path / "o.gif", info, kind="gif", audio_from=clips / RABBIT) as out:
        out.write(np.zeros((240, 320, 3), np.uint8), 0)
    assert out.notes == [f"an animated GIF carries no audio: the audio of {clips / RABBIT} is not copied"]
    with pytest.raises(UsageError, match=r"cannot write animated WebP video to .*o\.gif; name it with \.webp"):
        VideoWriter(tmp_path / "o.gif", info, kind="webp")


def test_odd_sizes_are_padded_for_h264_and_kept_elsewhere(clips: Path, tmp_path: Path) -> None:
    info = dataclasses.replace(probe(clips / DAVIS), width=853, height=479)
    with VideoReader(clips / DAVIS, duration=0.2) as reader:
        frames = list(reader.frames())
    with VideoWriter(tmp_path / "odd.mp4", info, kind="mp4") as writer:
        for frame in frames:
            writer.write(frame.rgb[:479, :853], frame.pts)
    assert writer.notes == [
        "padded 853x479 to 854x480 by repeating the last column/row: H.264 in 4:2:0 needs an even width and height"
    ]
    decoded = _decode(tmp_path / "odd.mp4")[0][0].to_ndarray(format="rgb24").astype(int)
    assert decoded.shape == (480, 854, 3)
    assert np.abs(decoded[:479, :853] - frames[0].rgb[:479, :853]).mean() < 2.5
    assert np.abs(decoded[:, 853] - decoded[:, 852]).mean() < 3 and np.abs(decoded[479] - decoded[478]).mean() < 3
    for kind in ("mov", "webm"):
        with VideoWriter(tmp_path / f"odd.{kind}", info, kind=kind) as writer:
            writer.write(_rgba(frames[0].rgb[:479, :853], 0), frames[0].pts)
        written = probe(tmp_path / f"odd.{kind}")
        assert writer.notes == [] and (written.width, written.height) == (853, 479)


# --- writer: atomic output, Ctrl-C, errors -----------------------------------------------------------------------


def test_ctrl_c_keeps_a_valid_shorter_file(clips: Path, tmp_path: Path) -> None:
    source, target = clips / RABBIT, tmp_path / "out.mp4"
    with (
        pytest.raises(KeyboardInterrupt),
        VideoReader(source) as reader,
        VideoWriter(target, reader.info, kind="mp4", audio_from=source) as writer,
    ):
        for frame in reader.frames():
            writer.write(frame.rgb, frame.pts)
            if frame.index == 39:
                raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    frames, _ = _decode(target)
    assert len(frames) == 40
    with av.open(str(target)) as container:
        audio = container.streams.audio[0]
        assert float(audio.duration * audio.time_base) == pytest.approx(40 / 30, abs=0.05)


def test_ctrl_c_keeps_the_png_frames_written(clips: Path, tmp_path: Path) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        VideoReader(clips / RABBIT) as reader,
        VideoWriter(tmp_path / "frames", reader.info, kind="png") as writer,
    ):
        for frame in reader.frames():
            writer.write(frame.rgb, frame.pts)
            if frame.index == 4:
                raise KeyboardInterrupt
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [f"frame_{i:06d}.png" for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


@pytest.mark.parametrize(
    ("kind", "name"), [("mp4", "out.mp4"), ("webm", "out.webm"), ("png", "frames"), ("mkv", "out.mkv")]
)
def test_any_other_error_leaves_nothing(clips: Path, tmp_path: Path, kind: str, name: str) -> None:
    with (
        pytest.raises(RuntimeError, match="boom"),
        VideoReader(clips / RABBIT) as reader,
        VideoWriter(tmp_path / name, reader.info, kind=kind, audio_from=clips / RABBIT) as writer,
    ):
        for frame in reader.frames():
            writer.write(_rgba(frame.rgb, 0) if kind not in ("mp4", "mkv") else frame.rgb, frame.pts)
            if frame.index == 10:
                assert [p.name.startswith(f".{name}.") for p in tmp_path.iterdir()] == [True]  # only the .part
                raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_a_successful_close_replaces_an_existing_file(clips: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"old")
    _copy_all(clips / ASL, target, "mp4")
    assert len(_decode(target)[0]) == 58 and sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_writer_rejects_what_cannot_work(clips: Path, tmp_path: Path) -> None:
    info: VideoInfo = probe(clips / RABBIT)
    with pytest.raises(UsageError, match="unknown video output kind 'avi'"):
        VideoWriter(tmp_path / "out.avi", info, kind="avi")
    with pytest.raises(UsageError, match=r"name it with \.webm"):
        VideoWriter(tmp_path / "out.mp4", info, kind="webm")
    with VideoWriter(tmp_path / "out.mp4", info, kind="mp4") as writer:
        with pytest.raises(ValueError, match=r"expected a uint8 \(H, W, 3\) frame with H, W = 240, 320"):
            writer.write(np.zeros((240, 320, 4), np.uint8), 0)
        writer.write(np.zeros((240, 320, 3), np.uint8), 5)
        with pytest.raises(ValueError, match="timestamps must increase"):
            writer.write(np.zeros((240, 320, 3), np.uint8), 5)
    with pytest.raises(OutputError, match=r"no frames were written .* no frame of the input could be decoded"):
        VideoWriter(tmp_path / "empty.mp4", info, kind="mp4").close()
    with pytest.raises(OutputError, match="no frames were written .* check that the start and duration lie within"):
        VideoWriter(tmp_path / "empty.mp4", info, kind="mp4", start=60.0).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="is not a folder of frame_NNNNNN.png files"):
        VideoWriter(tmp_path / "mine", info, kind="png")
    with pytest.raises(OutputError, match="cannot write"):
        VideoWriter(tmp_path / "out.mp4" / "x.mp4", info, kind="mp4")


def test_stale_video_parts_of_a_killed_run_are_removed_and_fresh_ones_kept(tmp_path: Path) -> None:
    from cutout.io.discover import remove_stale_parts

    hour_ago = time.time() - 3600
    stale_file = tmp_path / ".clip.mp4.0badc0de.part.mp4"
    stale_frames = tmp_path / ".frames.0badc0de.part"
    fresh_file = tmp_path / ".other.mov.12345678.part.mov"  # another run is writing it now
    mixed = tmp_path / ".photos.0badc0de.part"  # named like ours, but holds a user's file: not ours to delete
    stale_file.write_bytes(b"half an mp4")
    stale_frames.mkdir()
    (stale_frames / "frame_000000.png").write_bytes(b"png")
    (stale_frames / ".frame_000001.png.89abcdef.part").write_bytes(b"half a png")
    fresh_file.write_bytes(b"being written")
    mixed.mkdir()
    (mixed / "notes.txt").write_text("mine")
    for path in (stale_file, *stale_frames.iterdir(), stale_frames, mixed / "notes.txt", mixed):
        os.utime(path, (hour_ago, hour_ago))
    assert remove_stale_parts({tmp_path}) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.mov.12345678.part.mov", ".photos.0badc0de.part"]


def test_raw_frames_from_a_pipe_in_small_pieces_and_cancelled_while_it_is_silent() -> None:
    import io
    import threading

    from cutout.video import raw_frames

    reader, writer = os.pipe()
    frames = np.random.default_rng(0).integers(0, 256, (3, 48, 64, 3), np.uint8)
    cancel = threading.Event()

    def send() -> None:
        data = frames[:2].tobytes()
        for start in range(0, len(data), 5000):  # a pipe hands over what it has, not whole frames
            os.write(writer, data[start : start + 5000])

    sender = threading.Thread(target=send)
    sender.start()
    with io.FileIO(reader, "rb") as stream:
        received = raw_frames(stream, 64, 48, cancel)
        for expected in frames[:2]:
            np.testing.assert_array_equal(next(received)[0], expected)
        sender.join()
        threading.Timer(0.3, cancel.set).start()  # the writer stays open and silent: only cancel ends the wait
        assert list(received) == []
    os.close(writer)


@pytest.mark.parametrize(
    ("kind", "name"),
    [("mp4", "o.mp4"), ("mask", "o.mp4"), ("mov", "o.mov"), ("webm", "o.webm"), ("mkv", "o.mkv")]
    + [("mkv-mask", "o.mkv"), ("webp", "o.webp"), ("apng", "o.apng"), ("gif", "o.gif"), ("png", "frames")],
)
def test_every_output_kind_says_cutout_made_it(tmp_path: Path, kind: str, name: str) -> None:
    # what `cutout video clip.mp4 other.mp4 --overwrite` reads before it replaces a file it did not make
    from PIL import Image

    from cutout.io.encode import made_by_cutout

    _make_clip(tmp_path / "in.mp4", list(range(4)))
    assert not made_by_cutout(tmp_path / "in.mp4")
    with VideoReader(tmp_path / "in.mp4") as reader, VideoWriter(tmp_path / name, reader.info, kind=kind) as out:
        for frame in reader.frames():
            grey, rgb = frame.rgb[..., 1], frame.rgb
            array = {"mask": grey, "mkv-mask": grey, "mp4": rgb, "mkv": rgb}.get(kind, _rgba(frame.rgb, frame.index))
            out.write(array, frame.pts)
    written = tmp_path / name if kind != "png" else tmp_path / name / "frame_000000.png"
    assert made_by_cutout(written)
    if kind in ("webp", "apng", "gif"):  # the mark leaves every frame readable
        with Image.open(written) as animation:
            assert animation.n_frames == 4
            animation.seek(3)
            animation.load()
    else:
        assert len(_decode(written)[0]) == (4 if kind != "png" else 1)


@pytest.mark.parametrize(
    ("timecode", "frames", "fps", "expected"),
    [
        ("01:00:10:05", 50, Fraction(25), "01:00:12:05"),
        ("23:59:59:24", 1, Fraction(25), "00:00:00:00"),  # wraps at a day
        ("00:00:00:00", -1, Fraction(25), "23:59:59:24"),
        ("00:00:59;29", 1, Fraction(30000, 1001), "00:01:00;02"),  # drop-frame skips ;00 and ;01 ...
        ("00:09:59;29", 1, Fraction(30000, 1001), "00:10:00;00"),  # ... but not at each tenth minute
        ("01:00:00;00", 107892, Fraction(30000, 1001), "02:00:00;00"),  # an hour of 29.97 keeps to the clock
        ("00:00:59;59", 1, Fraction(60000, 1001), "00:01:00;04"),
        ("10:00:00:00", 24, Fraction(24000, 1001), "10:00:01:00"),  # 23.976 counts 24 a second, no drop
        ("not a timecode", 5, Fraction(25), "not a timecode"),
    ],
)
def test_shift_timecode(timecode: str, frames: int, fps: Fraction, expected: str) -> None:
    assert shift_timecode(timecode, frames, fps) == expected


def _timecoded_clip(path: Path, timecode: str) -> None:
    with av.open(str(path), "w") as container:  # a camera's MOV: the timecode in a tmcd track
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.metadata["timecode"] = timecode
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), index * 20, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.mark.parametrize(("kind", "start", "expected"), [("mov", None, "01:00:10:05"), ("mp4", 0.2, "01:00:10:10")])
def test_the_start_timecode_is_kept_and_moved_with_the_start(
    tmp_path: Path, kind: str, start: float | None, expected: str
) -> None:
    # editors line a cutout up with its source by timecode: it was dropped, with a note calling it a data stream
    source = tmp_path / "camera.mov"
    _timecoded_clip(source, "01:00:10:05")
    info = probe(source)
    assert info.timecode == "01:00:10:05" and info.other_streams == ()
    target = tmp_path / f"out.{kind}"
    with VideoReader(source, start=start) as reader, VideoWriter(target, info, kind=kind, start=start) as writer:
        for frame in reader.frames():
            writer.write(frame.rgb if kind in ("mp4", "mkv") else _rgba(frame.rgb, frame.index), frame.pts)
    assert writer.notes == []
    assert probe(target).timecode == expected


@pytest.mark.parametrize("kind", ["webm", "png", "gif", "mkv"])
def test_a_kind_without_timecode_says_it_is_not_kept(tmp_path: Path, kind: str) -> None:
    source = tmp_path / "camera.mov"
    _timecoded_clip(source, "01:00:10:05")
    target = tmp_path / ("frames" if kind == "png" else f"out.{kind}")
    with VideoReader(source) as reader, VideoWriter(target, reader.info, kind=kind) as writer:
        for frame in reader.frames():
            writer.write(frame.rgb if kind == "mkv" else _rgba(frame.rgb, frame.index), frame.pts)
    assert (
        [note for note in writer.notes if "timecode" in note]
        == [note for note in writer.notes if note.startswith("the input's timecode (01:00:10:05) is not kept")]
        != []
    )


def _anamorphic_clip(path: Path) -> None:
    with av.open(str(path), "w") as container:  # HDV-like: stored 144 x 108, pixels 4/3 wide, shown 192 x 108
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 144, 108, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(4, 3)
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((108, 144, 3), index * 60, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.mark.parametrize("kind", ["mp4", "mov", "mask", "webm", "gif", "mkv"])
def test_anamorphic_video_keeps_its_pixel_aspect_or_says_it_cannot(tmp_path: Path, kind: str) -> None:
    # the sample aspect ratio was dropped: a 16:9 HDV or DV widescreen clip came out squeezed to 4:3
    source = tmp_path / "hdv.mp4"
    _anamorphic_clip(source)
    info = probe(source)
    assert info.pixel_aspect == Fraction(4, 3)
    target = tmp_path / f"out.{'mp4' if kind == 'mask' else kind}"
    with VideoReader(source) as reader, VideoWriter(target, info, kind=kind) as writer:
        for frame in reader.frames():
            array = (
                frame.rgb
                if kind in ("mp4", "mkv")
                else frame.rgb[..., 1]
                if kind == "mask"
                else _rgba(frame.rgb, frame.index)
            )
            writer.write(array, frame.pts)
    if kind in ("mp4", "mov", "mask", "mkv"):
        assert probe(target).pixel_aspect == Fraction(4, 3) and writer.notes == []
    else:
        assert [n for n in writer.notes if "pixels are not square (4:3, shown 192 x 108)" in n] != []


def _tagged_clip(path: Path, metadata: dict[str, str]) -> None:
    """3 black 64 x 48 frames at 25 fps, the file tagged with ``metadata``."""
    with av.open(str(path), "w") as container:
        container.metadata.update(metadata)
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
        container.mux(stream.encode(None))


@pytest.mark.parametrize("kind", ["mp4", "mov", "webm", "mkv"])
def test_the_recording_date_is_kept_and_the_place_is_not(tmp_path: Path, kind: str) -> None:
    # a phone's clip: libraries sort by its creation time, which the cutout lost; its GPS place stays behind
    source = tmp_path / "phone.mov"
    _tagged_clip(source, {"creation_time": "2024-05-01T10:20:30.000000Z", "location": "+48.8584+002.2945/"})
    info = probe(source)
    assert info.creation_time == "2024-05-01T10:20:30.000000Z"
    target = tmp_path / f"out.{kind}"
    with VideoReader(source) as reader, VideoWriter(target, info, kind=kind) as writer:
        for frame in reader.frames():
            writer.write(frame.rgb if kind in ("mp4", "mkv") else _rgba(frame.rgb, frame.index), frame.pts)
    assert probe(target).creation_time == "2024-05-01T10:20:30.000000Z"
    with av.open(str(target)) as container:
        assert "location" not in container.metadata


def _interlaced_clip(path: Path, order: str = "tff", count: int = 12) -> None:
    """A grey square moving 8 pixels a frame, each field filmed 1/50 s apart (1080i's way), coded interlaced."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264", rate=25, options={"flags": "+ildct+ilme", "x264-params": f"interlaced=1:{order}=1"}
        )
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for index in range(count):
            rgb = np.full((96, 160, 3), 40, np.uint8)
            for parity, moment in ((0, index), (1, index + 0.5)) if order == "tff" else ((1, index), (0, index + 0.5)):
                left = int(10 + moment * 8)
                rgb[parity::2][10:40, left : left + 30] = 220
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))


def _comb(rgb: np.ndarray) -> float:
    """How much neighbouring lines differ beyond lines two apart: the comb of an interlaced frame's moving edges."""
    rows = rgb.astype(np.int16)
    return float(np.abs(rows[1:-1] - rows[:-2]).mean() - np.abs(rows[2:] - rows[:-2]).mean() / 2)


@pytest.mark.parametrize(("order", "named"), [("tff", "top field first"), ("bff", "bottom field first")])
def test_interlaced_video_is_deinterlaced_with_its_timing_unchanged(tmp_path: Path, order: str, named: str) -> None:
    # 1080i from a camcorder or broadcast: the model saw, and the cutout kept, a comb of lines on every moving edge
    source = tmp_path / "camcorder.mp4"
    _interlaced_clip(source, order)
    info = probe(source)
    assert info.interlaced == named
    with VideoReader(source) as reader:
        frames = list(reader.frames())
        reader.info = dataclasses.replace(info, interlaced=None)  # as read before: each frame as stored
        stored = list(reader.frames())
    assert [f.pts for f in frames] == [f.pts for f in stored] and [f.duration for f in frames] == [
        f.duration for f in stored
    ]
    assert min(_comb(f.rgb) for f in stored[1:]) > 4 * max(_comb(f.rgb) for f in frames[1:])
    # each frame shows the moment of the field filmed first, on every line: in the wrong field order the square
    # would stand half a frame later, and its motion judder
    for frame in frames:
        edges = {int(np.argmax(frame.rgb[row, :, 0] > 130)) for row in range(24, 76)}
        assert edges == {10 + 8 * frame.index}, (frame.index, edges)
    still = np.s_[84:, :]  # below the square (frame rows 20 to 79): nothing moves, and nothing changes
    assert max(np.abs(f.rgb[still].astype(int) - s.rgb[still]).max() for f, s in zip(frames, stored, strict=True)) <= 2
    with VideoReader(source, start=0.2) as reader:  # after a seek: the same frames as read from the start
        later = list(reader.frames())
    assert [f.pts for f in later] == [f.pts for f in frames[5:]]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(later, frames[5:], strict=True))


def test_progressive_video_is_not_deinterlaced(clips: Path) -> None:
    assert all(probe(path).interlaced is None for path in sorted(clips.iterdir()) if path.suffix in (".mp4", ".mov"))


def _chaptered_clip(path: Path) -> None:
    """2 s at 10 fps with chapters "Intro" (0-1 s) and "Main" (1-2 s), as an editor exports them."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.set_chapters(
            [
                {"id": 1, "start": 0, "end": 10, "time_base": Fraction(1, 10), "metadata": {"title": "Intro"}},
                {"id": 2, "start": 10, "end": 20, "time_base": Fraction(1, 10), "metadata": {"title": "Main"}},
            ]
        )
        for index in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), index * 10, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _marks(path: Path) -> list[tuple[float, float, str]]:
    with av.open(str(path)) as container:
        return [
            (float(c["start"] * c["time_base"]), float(c["end"] * c["time_base"]), c["metadata"].get("title", ""))
            for c in container.chapters()
        ]


@pytest.mark.parametrize("kind", ["mp4", "mov", "webm", "mkv"])
@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [(None, None, [(0.0, 1.0, "Intro"), (1.0, 2.0, "Main")]), (0.5, 1.0, [(0.0, 0.5, "Intro"), (0.5, 1.0, "Main")])],
)
def test_chapter_marks_are_kept_on_the_outputs_timeline(
    tmp_path: Path, kind: str, start: float | None, duration: float | None, expected: list[tuple[float, float, str]]
) -> None:
    # a lecture's or an edit's chapters were dropped without a word; their text track was named a dropped stream
    source = tmp_path / "talk.mp4"
    _chaptered_clip(source)
    info = probe(source)
    assert [(c.start, c.end, c.title) for c in info.chapters] == [(0.0, 1.0, "Intro"), (1.0, 2.0, "Main")]
    assert info.other_streams == ()  # the chapters' own text track is no stream to drop
    target = tmp_path / f"out.{kind}"
    with (
        VideoReader(source, start=start, duration=duration) as reader,
        VideoWriter(target, info, kind=kind, start=start, duration=duration) as writer,
    ):
        for frame in reader.frames():
            writer.write(frame.rgb if kind in ("mp4", "mkv") else _rgba(frame.rgb, frame.index), frame.pts)
    assert writer.notes == []
    assert _marks(target) == expected


@pytest.mark.parametrize("kind", ["gif", "png"])
def test_a_kind_without_chapters_says_they_are_not_kept(tmp_path: Path, kind: str) -> None:
    source = tmp_path / "talk.mp4"
    _chaptered_clip(source)
    target = tmp_path / ("frames" if kind == "png" else f"out.{kind}")
    with VideoReader(source) as reader, VideoWriter(target, reader.info, kind=kind) as writer:
        for frame in reader.frames():
            writer.write(_rgba(frame.rgb, frame.index), frame.pts)
    assert [n for n in writer.notes if n.startswith("the input's 2 chapter marks are not kept")] != []


@pytest.mark.parametrize("kind", ["mp4", "mov", "webm", "gif", "png", "mkv"])
def test_title_credits_and_copyright_are_kept_and_the_place_is_not(tmp_path: Path, kind: str) -> None:
    # an editor's export says what it is and whose: the cutout carried none of it
    source = tmp_path / "film.mp4"
    tags = {"title": "My film", "artist": "A. Director", "copyright": "(c) 2026 Studio", "genre": "Doc"}
    _tagged_clip(source, {**tags, "location": "+48.8584+002.2945/"})
    info = probe(source)
    assert dict(info.tags) == tags
    target = tmp_path / ("frames" if kind == "png" else f"out.{kind}")
    with VideoReader(source) as reader, VideoWriter(target, info, kind=kind) as writer:
        for frame in reader.frames():
            writer.write(frame.rgb if kind in ("mp4", "mkv") else _rgba(frame.rgb, frame.index), frame.pts)
    if kind in ("gif", "png"):
        name = "animated GIF has" if kind == "gif" else "PNG frames have"
        assert writer.notes == [f"the input's title, artist, genre, copyright are not kept: {name} no place for them"]
        return
    with av.open(str(target)) as container:
        written = {key.lower(): value for key, value in container.metadata.items()}
    assert {key: written.get(key) for key in tags} == tags
    assert not [key for key in written if key.startswith("location")]


def test_demuxed_reads_on_past_packets_of_a_stream_pyav_does_not_know() -> None:
    # an MPEG-TS capture whose broadcast adds a stream midway: PyAV raises IndexError for its first packet, which
    # ended the reader (found by fuzzing; the clip stopped with a traceback)
    from cutout.io.video import demuxed

    class Capture:
        """Packets 0..5 of the known stream, and two of a stream added midway (after 1 and after 3)."""

        def __init__(self) -> None:
            self.position, self.stream = 0, ["a", "a", "new", "a", "a", "new", "a", "a"]

        def demux(self, *streams: object):  # type: ignore[no-untyped-def]
            while self.position < len(self.stream):
                item = self.stream[self.position]
                self.position += 1
                if item == "new":
                    raise IndexError("tuple index out of range")
                yield self.position

    assert list(demuxed(Capture())) == [1, 2, 4, 5, 7, 8]  # type: ignore[arg-type]
