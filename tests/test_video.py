"""`cutout video` on the real clips in ../shared/eval/video: timing, audio, alpha, raw pipes, quality, errors."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cutout
from cutout.compose import parse_background
from cutout.options import RemoveOptions, VideoOptions

av = pytest.importorskip("av")
pytestmark = pytest.mark.integration
ENV = {**os.environ, "CUTOUT_OFFLINE": "1"}
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PHOTO = ROOT / "examples" / "images" / "astronaut.jpg"


@pytest.fixture(scope="module")
def clips(shared: Path) -> Path:
    return shared / "eval" / "video"


@pytest.fixture(scope="module")
def session(u2netp_onnx: Path) -> cutout.Session:
    return cutout.new_session("u2netp", backend="onnx", device="cpu")


def _cutout(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "cutout", *args], capture_output=True, env=ENV, timeout=300, **kwargs)  # type: ignore[call-overload]


def _video_stream_facts(path: Path) -> tuple[int, Fraction, float, list[int]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [frame.pts for frame in container.decode(stream)]
        duration = float((pts[-1] - pts[0]) * stream.time_base) if pts else 0.0
        return len(pts), stream.average_rate, duration, pts


def _audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def _decode_frames(path: Path, **options: str) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fmt = options.get("format", "rgb24")
        return [frame.to_ndarray(format=fmt) for frame in container.decode(stream)]


def test_background_replacement_keeps_frames_timing_and_audio_bit_identical(
    clips: Path, tmp_path: Path, session: cutout.Session
) -> None:
    source = clips / "mdn_rabbit320_audio.mp4"
    target = tmp_path / "rabbit.mp4"
    result = _cutout("video", str(source), str(target), "--bg", "white")
    assert result.returncode == 0, result.stderr.decode()
    frames, fps, duration, _ = _video_stream_facts(target)
    in_frames, in_fps, in_duration, _ = _video_stream_facts(source)
    assert (frames, fps) == (in_frames, in_fps) and abs(duration - in_duration) < 1e-6
    with av.open(str(target)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264" and video.codec_context.pix_fmt == "yuv420p"
        audio = container.streams.audio[0]
        assert (audio.codec_context.name, audio.codec_context.channels) == ("aac", 2)
    assert _audio_packets(target) == _audio_packets(source)  # copied, not re-encoded


def test_default_output_name_and_transparent_prores(clips: Path, tmp_path: Path) -> None:
    source = tmp_path / "asl.mp4"
    source.write_bytes((clips / "intel_asl_help_person.mp4").read_bytes())
    result = _cutout("video", str(source))
    assert result.returncode == 0, result.stderr.decode()
    target = tmp_path / "asl.cutout.mov"
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        # written as yuva444p10le; FFmpeg's ProRes decoder always reports 12-bit, so check the 4444 profile's tag
        assert stream.codec_context.name == "prores" and stream.codec_tag == "ap4h"
        frames = [f.to_ndarray(format="rgba") for f in container.decode(stream)]
    assert len(frames) == 58
    alpha = np.stack([f[..., 3] for f in frames])
    assert alpha.min() < 10 and alpha.max() > 245  # real transparency, not a flat plane


def test_webm_keeps_alpha(clips: Path, tmp_path: Path) -> None:
    target = tmp_path / "asl.webm"
    result = _cutout("video", str(clips / "intel_asl_help_person.mp4"), str(target), "--duration", "0.5")
    assert result.returncode == 0, result.stderr.decode()
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        codec = av.CodecContext.create("libvpx-vp9", "r")
        codec.extradata = stream.codec_context.extradata
        alpha_seen = False
        for packet in container.demux(stream):
            for frame in codec.decode(packet):  # libvpx's decoder returns the alpha side stream
                rgba = frame.to_ndarray(format="rgba")
                alpha_seen |= rgba[..., 3].min() < 10 and rgba[..., 3].max() > 245
    assert alpha_seen


def test_an_animated_gif_in_gives_a_transparent_gif_out_beside_it(tmp_path: Path) -> None:
    photo = Image.open(ROOT / "examples" / "images" / "astronaut.jpg").convert("RGB").resize((96, 96))
    frames = [photo, photo.rotate(10), photo.rotate(20)]
    frames[0].save(tmp_path / "wave.gif", save_all=True, append_images=frames[1:], duration=[100, 200, 1500], loop=0)
    result = _cutout("video", str(tmp_path / "wave.gif"), "-q")
    assert result.returncode == 0, result.stderr.decode()
    out = Image.open(tmp_path / "wave.cutout.gif")
    assert (out.size, out.n_frames) == ((96, 96), 3)
    durations, alphas = [], []
    for index in range(3):
        out.seek(index)
        out.load()
        durations.append(out.info["duration"])
        alphas.append(np.asarray(out.convert("RGBA"))[..., 3])
    assert durations == [100, 200, 1500]  # each frame's own timing, the last one held too
    assert all(set(np.unique(a)) == {0, 255} for a in alphas)  # the astronaut kept, the rest transparent
    result = _cutout("video", str(tmp_path / "wave.gif"), str(tmp_path / "wave.webp"), "--bg", "white", "-q")
    assert result.returncode == 0 and Image.open(tmp_path / "wave.webp").n_frames == 3, result.stderr.decode()
    result = _cutout("video", str(tmp_path / "wave.webp"), "-q")  # an animated WebP in (Pillow reads it): WebP out
    assert result.returncode == 0, result.stderr.decode()
    again = Image.open(tmp_path / "wave.cutout.webp")
    assert again.n_frames == 3 and np.asarray(again.convert("RGBA"))[..., 3].min() == 0


def test_png_folder_has_one_rgba_file_per_frame(clips: Path, tmp_path: Path) -> None:
    result = _cutout("video", str(clips / "intel_asl_help_person.mp4"), str(tmp_path / "frames") + "/")
    assert result.returncode == 0, result.stderr.decode()
    files = sorted((tmp_path / "frames").iterdir())
    assert len(files) == 58 and all(Image.open(f).mode == "RGBA" for f in files[:3])


def test_raw_stream_round_trips_through_pipes(clips: Path, session: cutout.Session) -> None:
    frames = _decode_frames(clips / "mdn_rabbit320_audio.mp4")[:12]
    raw = ("video", "-", "--raw", "320x240", "--temporal-smoothing", "0")
    result = _cutout(*raw, "--no-foreground-estimation", input=b"".join(f.tobytes() for f in frames))
    assert result.returncode == 0, result.stderr.decode()
    out = np.frombuffer(result.stdout, np.uint8).reshape(-1, 240, 320, 4)
    assert len(out) == 12
    masks = session.masks(frames)
    for rgba, frame, mask in zip(out, frames, masks, strict=True):
        np.testing.assert_array_equal(rgba[..., 3], mask)
        visible = mask > 0
        np.testing.assert_array_equal(rgba[..., :3][visible], frame[visible])
    # refinement and foreground estimation: frame for frame what the image path renders
    result = _cutout(*raw, "--refine", "guided", input=b"".join(f.tobytes() for f in frames[:4]))
    assert result.returncode == 0, result.stderr.decode()
    out = np.frombuffer(result.stdout, np.uint8).reshape(-1, 240, 320, 4)
    options = cutout.make_options(refine="guided")
    for rgba, frame, mask in zip(out, frames[:4], masks[:4], strict=True):
        np.testing.assert_array_equal(rgba, session.render(frame, mask, options))
    assert not np.array_equal(out[0, ..., 3], masks[0])


def test_raw_stream_cut_inside_a_frame_is_a_clear_error() -> None:
    result = _cutout("video", "-", "--raw", "320x240", input=b"\0" * (320 * 240 * 3 + 100))
    assert result.returncode == 1 and b"ended inside a frame" in result.stderr


def _iou(mask: np.ndarray, truth: np.ndarray) -> float:
    union = ((mask > 127) | truth).sum()
    return float(((mask > 127) & truth).sum() / union) if union else 1.0


def test_davis_video_path_equals_image_path_and_smoothing_lowers_flicker(
    clips: Path, session: cutout.Session, tmp_path: Path
) -> None:
    from cutout.video import process_video

    source = clips / "davis16_dance-twirl.mp4"
    truth = [
        np.asarray(Image.open(p).convert("L")) > 127
        for p in sorted((clips / "davis16_dance-twirl" / "masks").glob("*.png"))
    ]
    decoded = _decode_frames(source)
    assert len(decoded) == len(truth) == 90
    image_path = session.masks(decoded)
    results = {}
    for strength in (0.0, 0.5):
        out = tmp_path / f"s{strength}"
        options = VideoOptions(cutout.make_options(only_mask=True), temporal_smoothing=strength)
        summary = process_video(source, out, session, options, kind="png")
        assert summary.frames == 90 and not summary.short
        results[strength] = [np.asarray(Image.open(p)) for p in sorted(out.iterdir())]
    for video_mask, image_mask in zip(results[0.0], image_path, strict=True):
        np.testing.assert_array_equal(video_mask, image_mask)  # the same frames give the same masks

    def flicker(masks: list[np.ndarray]) -> float:
        steps = [
            np.abs(masks[i].astype(np.float32) - masks[i - 1])[truth[i] == truth[i - 1]].mean() for i in range(1, 90)
        ]
        return float(np.mean(steps)) / 255

    iou_off = np.mean([_iou(m, t) for m, t in zip(results[0.0], truth, strict=True)])
    iou_on = np.mean([_iou(m, t) for m, t in zip(results[0.5], truth, strict=True)])
    assert flicker(results[0.5]) < 0.9 * flicker(results[0.0])
    assert iou_on >= iou_off - 0.005


def test_ctrl_c_while_raw_input_is_silent_ends_cleanly() -> None:
    reader, writer = os.pipe()  # the upstream stays open and sends nothing more, as a paused ffmpeg
    try:
        command = [sys.executable, "-m", "cutout", "video", "-", "--raw", "64x48"]
        process = subprocess.Popen(command, stdin=reader, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        os.write(writer, bytes(64 * 48 * 3) * 2)
        assert process.stdout is not None
        assert len(process.stdout.read(2 * 64 * 48 * 4)) == 2 * 64 * 48 * 4  # both frames came back: it now waits
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        os.close(writer)
        os.close(reader)
    assert process.returncode == 130, stderr.decode()  # was: "Fatal Python error" (SIGABRT) after 6 s
    assert "Fatal" not in stderr.decode()
    assert time.monotonic() - started < 3


def test_raw_frames_are_not_written_to_a_terminal() -> None:
    import pty

    leader, terminal = pty.openpty()
    try:
        command = [sys.executable, "-m", "cutout", "video", "-", "--raw", "64x48"]
        result = subprocess.run(
            command, input=bytes(64 * 48 * 3), stdout=terminal, stderr=subprocess.PIPE, env=ENV, timeout=60
        )
    finally:
        os.close(terminal)
        os.close(leader)
    assert result.returncode == 2 and "standard output is a terminal" in result.stderr.decode()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_raw_frames_to_a_full_disk_are_a_clear_error() -> None:
    command = [sys.executable, "-m", "cutout", "video", "-", "--raw", "64x48"]
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            command, input=bytes(3 * 64 * 48 * 3), stdout=full, stderr=subprocess.PIPE, env=ENV, timeout=60
        )
    assert result.returncode == 1, result.stderr.decode()  # was a traceback
    assert result.stderr.decode().strip() == "error: cannot write to standard output: no space left on device"


def test_a_truncated_clip_gives_the_frames_it_has_a_warning_and_exit_code_1(clips: Path, tmp_path: Path) -> None:
    source = tmp_path / "rabbit.mp4"  # its index (moov) comes first: cut short, the data just ends, no error
    source.write_bytes((clips / "mdn_rabbit320_audio.mp4").read_bytes()[:60_000])
    target = tmp_path / "out.mp4"
    result = _cutout("video", str(source), str(target), "--bg", "white", "-q")
    assert result.returncode == 1, result.stderr.decode()
    frames, _, _, _ = _video_stream_facts(target)
    assert 0 < frames < 234
    message = " ".join(result.stderr.decode().split())
    assert f"ended after {frames} of the 234 frames it announces (truncated or damaged?)" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "rabbit.mp4"]


def test_a_clip_whose_index_claims_an_absurd_frame_size_gives_the_frames_before_it(clips: Path, tmp_path: Path) -> None:
    # MP4's sample size table says frame 11 holds 1 GB: FFmpeg's demuxer fails with ENOMEM, which ended the run
    # as "ran out of memory ... close other programs"
    data = bytearray((clips / "mdn_rabbit320_audio.mp4").read_bytes())
    sizes = data.find(b"stsz") + 16  # after version and flags, the common size (0: each its own) and the count
    data[sizes + 4 * 10 : sizes + 4 * 11] = (0x3FFFFFFF).to_bytes(4, "big")
    source = tmp_path / "damaged.mp4"
    source.write_bytes(bytes(data))
    result = _cutout("video", str(source), str(tmp_path / "out.mp4"), "--bg", "white", "-q")
    message = " ".join(result.stderr.decode().split())
    assert result.returncode == 1 and "Traceback" not in message and "memory" not in message, message
    assert "ended after 10 of the 234 frames it announces" in message
    assert _video_stream_facts(tmp_path / "out.mp4")[0] == 10


def test_a_clip_whose_first_frame_has_an_absurd_size_is_named_damaged(clips: Path, tmp_path: Path) -> None:
    data = bytearray((clips / "mdn_rabbit320_audio.mp4").read_bytes())
    sizes = data.find(b"stsz") + 16
    data[sizes : sizes + 4] = (0x3FFFFFFF).to_bytes(4, "big")  # the first frame "holds 1 GB": ENOMEM while probing
    source = tmp_path / "damaged.mp4"
    source.write_bytes(bytes(data))
    result = _cutout("video", str(source), str(tmp_path / "out.mp4"), "--bg", "white", "-q")
    message = " ".join(result.stderr.decode().split())
    assert result.returncode == 1 and "Traceback" not in message, message
    assert "no frame of its h264 video could be decoded; the file is damaged" in message


def test_a_killed_runs_temporary_file_is_removed_by_the_next_run(clips: Path, tmp_path: Path) -> None:
    stale = tmp_path / ".out.mp4.0badc0de.part.mp4"  # what SIGKILL leaves: no handler runs
    stale.write_bytes(b"half an mp4")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    source = clips / "intel_asl_help_person.mp4"
    result = _cutout("video", str(source), str(tmp_path / "out.mp4"), "--bg", "white", "--duration", "0.3", "-q")
    assert result.returncode == 0, result.stderr.decode()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_a_clip_is_never_replaced_by_its_own_result(clips: Path, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes((clips / "intel_asl_help_person.mp4").read_bytes())
    for output in ("clip.mp4", "./clip.mp4"):  # ffmpeg refuses this too ("Output same as Input")
        result = _cutout("video", "clip.mp4", output, "--bg", "white", "--overwrite", cwd=tmp_path)
        assert result.returncode == 2, result.stderr.decode()
        assert "replaced by its own cutout" in result.stderr.decode()
    assert clip.read_bytes() == (clips / "intel_asl_help_person.mp4").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_a_second_clip_from_a_glob_is_not_replaced_by_overwrite(clips: Path, tmp_path: Path) -> None:
    # `cutout video *.mp4 --bg white --overwrite` with two clips replaced the second with the first one's cutout
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    first.write_bytes((clips / "intel_asl_help_person.mp4").read_bytes())
    second.write_bytes((clips / "mdn_rabbit320_audio.mp4").read_bytes())
    footage = second.read_bytes()
    refused = _cutout("video", "a.mp4", "b.mp4", "--bg", "white", "--overwrite", "--duration", "0.2", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr.decode()
    message = refused.stderr.decode()
    assert "b.mp4 was not made by cutout" in message and "-o b.mp4 --overwrite" in message
    assert second.read_bytes() == footage and sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]
    named = _cutout("video", "a.mp4", "-o", "b.mp4", "--bg", "white", "--overwrite", "--duration", "0.2", cwd=tmp_path)
    assert named.returncode == 0, named.stderr.decode()
    assert second.read_bytes() != footage
    again = _cutout("video", "a.mp4", "b.mp4", "--bg", "black", "--overwrite", "--duration", "0.2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr.decode()  # cutout's own result is replaced as before
    both = _cutout("video", "a.mp4", "b.mp4", "-o", "c.mp4", cwd=tmp_path)
    assert both.returncode == 2 and "c.mp4 names a file, but 2 inputs need an output folder" in both.stderr.decode()


def _interrupt_once_writing(process: subprocess.Popen[bytes], folder: Path, part: str) -> None:
    """Ctrl-C once frames are reaching the temporary file ``part`` (a glob) in ``folder``: not after a fixed time,
    which a loaded machine may not have got far in."""
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 0 for p in folder.glob(part)):
        assert process.poll() is None and time.monotonic() < deadline, "no frames were written"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)


def test_ctrl_c_leaves_a_valid_shorter_video(clips: Path, tmp_path: Path) -> None:
    target = tmp_path / "juggle.mp4"
    process = subprocess.Popen(
        [sys.executable, "-m", "cutout", "video", str(clips / "sam2_juggle_person.mp4"), str(target), "--bg", "black"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    _interrupt_once_writing(process, tmp_path, ".juggle.mp4.*.part.mp4")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr.decode()
    frames, _, _, _ = _video_stream_facts(target)
    assert 0 < frames < 247
    assert [p.name for p in tmp_path.iterdir()] == ["juggle.mp4"]


def test_numbers_that_are_no_time_or_strength_are_usage_errors(clips: Path, tmp_path: Path) -> None:
    # typer's range checks let nan and inf through: --start inf ended in an OverflowError traceback,
    # --temporal-smoothing nan in a ValueError one
    clip = str(clips / "intel_asl_help_person.mp4")
    for flags, said in [
        (["--start", "inf"], "start inf is longer than any video"),
        (["--duration", "1e308"], "duration 1e+308 is longer than any video"),
        (["--temporal-smoothing", "nan"], "temporal smoothing must be from 0 (off) to below 1, got nan"),
    ]:
        result = _cutout("video", clip, str(tmp_path / "o.webm"), *flags)
        stderr = result.stderr.decode()
        assert result.returncode == 2 and f"error: {said}" in stderr and "Traceback" not in stderr, stderr
        assert list(tmp_path.iterdir()) == []


def test_an_unreadable_background_video_is_a_usage_error(clips: Path, tmp_path: Path) -> None:
    fake = tmp_path / "beach.mp4"
    fake.write_text("not a video")
    result = _cutout("video", str(clips / "intel_asl_help_person.mp4"), str(tmp_path / "o.mp4"), "--bg", str(fake))
    assert (
        result.returncode == 2
        and "cannot use" in result.stderr.decode()
        and "background video" in result.stderr.decode()
    )
    assert not (tmp_path / "o.mp4").exists()


def test_a_background_video_failing_midway_stops_the_inference_threads_before_the_error_is_raised(
    tmp_path: Path,
) -> None:
    # Found by fuzzing: a background video that fails once the cutout is under way (the API does not check it
    # first, as the command does) left the inference threads reading the frames, held by the error's traceback,
    # while process_video closed them: "ValueError: generator already executing" in 1 run of 5.
    import threading

    from cutout.errors import CutoutError
    from cutout.pipeline import threaded
    from cutout.video import cutout_frames

    fake = tmp_path / "beach.mp4"
    fake.write_text("not a video")
    cancel = threading.Event()

    def endless():  # type: ignore[no-untyped-def]
        while not cancel.is_set():
            yield np.full((48, 64, 3), 90, np.uint8), None

    frames = threaded(endless(), maxsize=4, name="test-decode", cancel=cancel)
    options = VideoOptions(background_video=fake)
    try:
        with pytest.raises(CutoutError, match="beach.mp4") as caught:
            list(cutout_frames(frames, _LeftHalf(), options, cancel=cancel))
        assert caught.traceback  # the traceback, and the frames it holds, are still alive here
        assert not frames.gi_running
        running = {t.name.rstrip("_0123456789") for t in threading.enumerate()}
        assert not running & {"cutout-feeder", "cutout-worker"}, running  # stopped, not waiting for the caller
        frames.close()  # what process_video does next
    finally:
        cancel.set()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "bad.mp4 does not exist; give a video file"),
        (lambda p: p.mkdir(), "out.mp4 names a file, but a folder of clips needs an output folder"),
        (lambda p: p.symlink_to(p.with_name("gone.mp4")), "bad.mp4 is a broken symbolic link to "),
    ],
    ids=["missing", "folder", "broken-link"],
)
def test_an_input_that_is_not_a_file_says_what_it_is(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    make(tmp_path / "bad.mp4")
    result = _cutout("video", str(tmp_path / "bad.mp4"), str(tmp_path / "out.mp4"), "--bg", "white")
    assert result.returncode == 2 and message in result.stderr.decode(), result.stderr.decode()
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("name", ["photo one.jpg", "still.png", "still.gif"])
def test_a_still_image_is_sent_to_cutout_image(tmp_path: Path, name: str) -> None:
    # FFmpeg reads a photo as a video of one frame: `cutout video photo.jpg` wrote a 1-frame ProRes .mov
    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / name)
    result = _cutout("video", str(tmp_path / name))
    assert result.returncode == 2, result.stderr.decode()
    assert "is a still image, not a video; cut it out with: cutout image " in result.stderr.decode()
    assert shlex.quote(str(tmp_path / name)) in result.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_an_mpeg1_elementary_stream_is_a_video_though_pillow_names_it(tmp_path: Path) -> None:
    # Pillow's MPEG plugin identifies .m1v files (and reads no frames): they stay videos
    clip = tmp_path / "clip.m1v"
    with av.open(str(clip), "w", format="mpeg1video") as container:
        stream = container.add_stream("mpeg1video", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert Image.open(clip).format == "MPEG"
    result = _cutout("video", str(clip), str(tmp_path / "out.webm"), "-q")
    assert result.returncode == 0, result.stderr.decode()
    assert _video_stream_facts(tmp_path / "out.webm")[0] == 5


@pytest.mark.parametrize(
    ("make", "args", "code", "message"),
    [
        (lambda p: p.write_text("hello"), [], 1, "not a video"),
        (lambda p: p.write_bytes(b""), [], 1, "empty"),
        (None, ["--bg", "missing-background.mp4"], 2, "does not exist"),
        (None, ["--bg", "not-a-colour"], 2, "--bg"),
        (None, ["--raw", "12x"], 2, "WIDTHxHEIGHT"),
        (None, ["--raw", "99999x99999"], 2, "is 10,000 megapixels a frame, more than the 250 a frame may have"),
        (None, ["--only-mask"], 2, "--only-mask writes the grey mask, which has no background"),
        (None, ["--bg", "0,0,0,128"], 2, "MP4 (H.264) has no transparency (the --bg colour has alpha 128)"),
    ],
)
def test_bad_input_gives_a_clear_message(clips: Path, tmp_path: Path, make, args, code, message) -> None:  # type: ignore[no-untyped-def]
    source = clips / "intel_asl_help_person.mp4"
    if make is not None:
        source = tmp_path / "bad.mp4"
        make(source)
    result = (
        _cutout("video", str(source), str(tmp_path / "out.mp4"), "--bg", "white", *args)
        if "--raw" not in args
        else _cutout("video", "-", *args)
    )
    assert result.returncode == code, result.stderr.decode()
    assert message in result.stderr.decode()
    assert not (tmp_path / "out.mp4").exists()


def test_a_video_file_piped_to_stdin_is_told_to_give_its_path_or_raw_frames(clips: Path) -> None:
    data = (clips / "intel_asl_help_person.mp4").read_bytes()
    result = _cutout("video", "-", "out.mp4", "--bg", "white", input=data)
    assert result.returncode == 2
    assert "reads a video file from its path" in result.stderr.decode() and "--raw 1280x720" in result.stderr.decode()


def test_what_a_transparent_video_hid_stays_hidden(session: cutout.Session, tmp_path: Path) -> None:
    """As for images: the input's own alpha (here an APNG's) bounds the mask, and opaque frames have none."""
    from cutout.io.video import VideoReader
    from cutout.video import process_video

    photo = np.asarray(Image.open(ROOT / "examples" / "images" / "astronaut.jpg").convert("RGB").resize((128, 128)))
    hidden = np.full((128, 128), 255, np.uint8)
    hidden[:, :64] = 0  # the left half, where the astronaut is, was cut away
    frames = [
        Image.fromarray(np.dstack([photo, hidden])),
        Image.fromarray(np.dstack([photo, np.full_like(hidden, 255)])),
    ]
    frames[0].save(tmp_path / "in.png", save_all=True, append_images=frames[1:], duration=100)
    with VideoReader(tmp_path / "in.png") as reader:
        decoded = list(reader.frames())
    assert decoded[0].alpha is not None and decoded[1].alpha is None  # an opaque frame's alpha is dropped
    np.testing.assert_array_equal(decoded[0].alpha, hidden)
    options = VideoOptions(temporal_smoothing=0.0)
    process_video(tmp_path / "in.png", tmp_path / "out", session, options, kind="png")
    first, second = (np.asarray(Image.open(tmp_path / "out" / f"frame_00000{i}.png")) for i in (0, 1))
    assert not first[:, :64, 3].any()  # hidden before: hidden now
    np.testing.assert_array_equal(first[:, 64:, 3], second[:, 64:, 3])  # the rest as the network sees it
    assert second[:, :64, 3].astype(int).sum() > 255 * 500  # the opaque frame shows the astronaut there


def test_a_background_is_a_video_when_it_moves_and_an_image_when_it_does_not(clips: Path, tmp_path: Path) -> None:
    from cutout.cli.video import _video_background

    still = Image.new("RGBA", (32, 24), (0, 0, 255, 128))  # a see-through image: MP4 cannot take it
    still.save(tmp_path / "frame.png")
    frames = [Image.new("RGB", (32, 24), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(tmp_path / "still.gif")
    assert _video_background(str(tmp_path / "moving.gif")) == tmp_path / "moving.gif"
    assert _video_background(str(clips / "mdn_rabbit320_audio.mp4")) == clips / "mdn_rabbit320_audio.mp4"
    for image in ("frame.png", "still.gif", "missing.png"):
        assert _video_background(str(tmp_path / image)) is None  # an image (or not one): --bg's own checks
    result = _cutout(
        "video", str(clips / "intel_asl_help_person.mp4"), str(tmp_path / "o.mp4"), "--bg", str(tmp_path / "frame.png")
    )
    assert result.returncode == 2 and "has transparency" in result.stderr.decode(), result.stderr.decode()


def test_a_folder_of_other_files_as_the_frames_output_is_a_usage_error(clips: Path, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = _cutout("video", str(clips / "mdn_rabbit320_audio.mp4"), str(tmp_path / "mine"), "--duration", "0.2")
    assert result.returncode == 2, result.stderr.decode()  # refused before any work, as other bad outputs are
    assert "is not a folder of frame_NNNNNN.png files; choose a new or empty folder" in result.stderr.decode()
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


class _LeftHalf(cutout.Session):
    """The model replaced by a mask of the left half of each frame: the right half is all background."""

    def __init__(self) -> None:  # no model to load
        from types import SimpleNamespace

        from cutout.registry import get_spec

        self.spec = get_spec("u2netp")
        self._loading = None
        self.predictor = SimpleNamespace(concurrency=1, stop_runs=lambda stop: None)  # type: ignore[assignment]

    def predictions(self, inputs, stop=None):  # type: ignore[no-untyped-def]
        prediction = np.zeros((320, 320), np.float32)
        prediction[:, :160] = 1.0
        return [prediction for _ in inputs]


class _Counted(_LeftHalf):
    """:class:`_LeftHalf`, counting the frames it is given."""

    seen = 0

    def predictions(self, inputs, stop=None):  # type: ignore[no-untyped-def]
        self.seen += len(inputs)
        return super().predictions(inputs, stop)


def _hdr_clip(path: Path, transfer: int, colour: tuple[int, int, int] = (128, 128, 128)) -> None:
    """A 10-bit HEVC clip of 5 frames tagged BT.2020 with ``transfer`` (HLG 18, PQ 16), as phones record."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx265", rate=10, options={"x265-params": "log-level=none"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p10le"
        context = stream.codec_context
        context.color_primaries, context.color_trc, context.colorspace, context.color_range = 9, transfer, 9, 1
        for _ in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), colour, np.uint8), format="rgb24")
            frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range = 9, transfer, 9, 1
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _sdr_clip(path: Path, value: int, *, size: tuple[int, int] = (320, 240), pixel_aspect: object = None) -> None:
    """An untagged (SDR) H.264 clip of 3 grey frames of ``value``; ``pixel_aspect`` makes it anamorphic."""
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if pixel_aspect is not None:
            stream.codec_context.sample_aspect_ratio = pixel_aspect
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), value, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.mark.parametrize(
    ("transfer", "kind", "white"),
    [(18, "mp4", 191), (18, "mov", 191), (18, "webm", 191), (16, "mp4", 148), (18, "mkv", 191)],
)
def test_an_hdr_clip_keeps_its_tags_and_gets_its_background_in_its_own_signal(
    tmp_path: Path, transfer: int, kind: str, white: int
) -> None:
    # --bg white over a phone's HLG clip was written as the signal's peak (1000 cd/m2; PQ: 10000), and ProRes
    # frames lost the clip's transfer and primaries (shown as plain BT.709); white is BT.2408's 203 cd/m2 now
    from cutout.compose import Background
    from cutout.options import RemoveOptions
    from cutout.video import process_video

    source, target = tmp_path / "phone.mp4", tmp_path / f"out.{kind}"
    _hdr_clip(source, transfer)
    options = VideoOptions(remove=RemoveOptions(background=Background("color", color=(255, 255, 255, 255))))
    summary = process_video(source, target, _LeftHalf(), options)
    assert summary.frames == 5 and not [n for n in summary.notes if "HDR" in n]
    with av.open(str(target)) as container:
        frame = next(container.decode(video=0))
        assert (frame.color_primaries, frame.color_trc) == (9, transfer)
        right = frame.to_ndarray(format="rgb24")[20:-20, 200:-20].astype(int)
    assert np.abs(right - white).max() <= 3, (right.min(), right.max())


def test_an_sdr_background_video_behind_an_hdr_clip_is_converted(clips: Path, tmp_path: Path) -> None:
    from cutout.video import process_video

    source = tmp_path / "phone.mp4"
    _hdr_clip(source, 18)
    white = tmp_path / "white.mp4"
    _sdr_clip(white, 255)
    summary = process_video(source, tmp_path / "o.mp4", _LeftHalf(), VideoOptions(background_video=white))
    with av.open(str(tmp_path / "o.mp4")) as container:
        right = next(container.decode(video=0)).to_ndarray(format="rgb24")[20:-20, 200:-20].astype(int)
    assert np.abs(right - 191).max() <= 4 and summary.frames == 5


@pytest.mark.parametrize(("transfer", "kind"), [(18, "png"), (16, "png"), (18, "apng")])
def test_an_hdr_clip_is_tone_mapped_for_outputs_that_cannot_carry_hdr(tmp_path: Path, transfer: int, kind: str) -> None:
    # its HLG or PQ signal was written into PNG frames as if it were sRGB: pale and flat
    from cutout.hdr import sdr_to_hdr
    from cutout.video import process_video

    colour = (200, 60, 40)
    source = tmp_path / "phone.mp4"
    _hdr_clip(source, transfer, tuple(int(v) for v in sdr_to_hdr(np.array([colour], np.uint8), transfer, 9)[0]))
    target = tmp_path / ("frames" if kind == "png" else "sticker.png")
    summary = process_video(source, target, _LeftHalf(), VideoOptions(), kind=kind)
    assert any(
        "tone-mapped to SDR for a" in note and ".mov, .webm, .mp4 or .mkv keep it" in note for note in summary.notes
    )
    first = sorted(target.iterdir())[0] if kind == "png" else target
    with Image.open(first) as image:
        rgba = np.asarray(image.convert("RGBA")).astype(int)
    subject = rgba[20:-20, 20:140]
    assert (subject[..., 3] == 255).all() and np.abs(subject[..., :3] - colour).max() <= 8, subject[..., :3].mean(
        (0, 1)
    )


def _clip_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_a_folder_of_clips_is_cut_out_clip_by_clip_its_tree_mirrored(tmp_path: Path) -> None:
    # `cutout video clips/` said "takes one clip at a time" and gave a shell loop to type
    clips = tmp_path / "clips"
    (clips / "day2").mkdir(parents=True)
    _sdr_clip(clips / "a.mp4", 100)
    _sdr_clip(clips / "day2" / "b.mov", 150)
    (clips / "c.mp4").write_bytes(b"not a video")  # a bad clip fails alone
    Image.new("RGB", (8, 8)).save(clips / "photo.jpg")  # images are for cutout image
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "lime", "blue")]
    frames[0].save(clips / "sticker.gif", save_all=True, append_images=frames[1:], duration=100)  # a clip
    result = _cutout("video", str(clips), "--bg", "white")
    err = result.stderr.decode()
    assert result.returncode == 1, err
    out = tmp_path / "clips-cutout"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.mp4", "day2/b.mp4", "sticker.gif"]
    assert _clip_count(out / "a.mp4") == _clip_count(out / "day2" / "b.mp4") == _clip_count(out / "sticker.gif") == 3
    assert "4 clips: 3 done, 1 failed" in err and f"failed: {clips / 'c.mp4'}" in err
    again = _cutout("video", str(clips), "--bg", "white")  # a re-run resumes: what is done is skipped
    assert again.returncode == 1 and "4 clips: 0 done, 3 skipped (their outputs exist" in again.stderr.decode()


def test_a_full_disk_stops_a_folder_of_clips_with_what_to_do(tmp_path: Path) -> None:
    # FFmpeg's own writes cannot be made to fail from Python: the writer's error for ENOSPC is raised as the
    # first clip is written, and the command must stop there instead of cutting out every other clip in vain
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        _sdr_clip(clips / name, 100)
    code = (
        "import errno, sys\n"
        "import cutout.video, cutout.io.video_writer as writer\n"
        "def full(source, target, *args, **kwargs):\n"
        "    raise writer._output_error(target, OSError(errno.ENOSPC, 'No space left on device'))\n"
        "cutout.video.process_video = full\n"
        "from cutout.cli.main import main; sys.argv = ['cutout', *sys.argv[1:]]; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "video", str(clips), "--bg", "white"], capture_output=True, env=ENV, timeout=300
    )
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "[2/3]" not in err and "3 clips: 0 done, 1 failed" in err
    assert "a.mp4: No space left on device; free some space there, or choose another path" in err
    assert "stopped: the disk is full, so no later clip could be saved; 2 clip(s) not done." in err


def test_several_clips_go_into_an_output_folder_in_the_format_asked_or_beside_themselves(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name, value in (("a.mp4", 60), ("a.mov", 120), ("b.mp4", 180)):
        _sdr_clip(folder / name, value)
    clips = [str(folder / name) for name in ("a.mp4", "a.mov", "b.mp4")]
    result = _cutout("video", *clips, str(tmp_path / "out") + "/", "--format", "webm", "-q")
    assert result.returncode == 0, result.stderr.decode()
    # a.mp4 and a.mov keep their extensions rather than one output for both
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mov.webm", "a.mp4.webm", "b.webm"]
    assert "2 files share a name with another but for their extension" in result.stderr.decode()
    beside = _cutout("video", *clips, "--bg", "black", "-q")  # a glob of clips, no output: each beside itself
    assert beside.returncode == 0, beside.stderr.decode()
    assert {"a.mp4.cutout.mp4", "a.mov.cutout.mp4", "b.cutout.mp4"} <= {p.name for p in folder.iterdir()}
    # cutout's own results beside the clips are not cut out again by a folder run
    third = _cutout("video", str(folder), str(tmp_path / "more"), "--bg", "black", "-q")
    assert third.returncode == 0, third.stderr.decode()
    assert "left out 3 video(s) that cutout made beside their clips" in third.stderr.decode()
    assert sorted(p.name for p in (tmp_path / "more").iterdir()) == ["a.mov.mp4", "a.mp4.mp4", "b.mp4"]


def test_clips_whose_names_repeat_in_two_folders_mirror_them(tmp_path: Path) -> None:
    for day in ("day1", "day2"):  # a camera's MVI_0001.MP4 on every card
        (tmp_path / day).mkdir()
        _sdr_clip(tmp_path / day / "MVI_0001.mp4", 100)
    clips = [str(tmp_path / day / "MVI_0001.mp4") for day in ("day1", "day2")]
    result = _cutout("video", *clips, str(tmp_path / "out") + "/", "--bg", "white", "-q")
    assert result.returncode == 0, result.stderr.decode()
    assert "1 name(s) repeat in different folders (e.g. MVI_0001.mp4)" in result.stderr.decode()
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.mp4")) == [
        "day1/MVI_0001.mp4",
        "day2/MVI_0001.mp4",
    ]


def test_format_names_the_kind_of_a_clips_output_beside_it(tmp_path: Path) -> None:
    _sdr_clip(tmp_path / "clip.mp4", 90)
    result = _cutout("video", str(tmp_path / "clip.mp4"), "--format", "webm", "-q")
    assert result.returncode == 0, result.stderr.decode()
    with av.open(str(tmp_path / "clip.cutout.webm")) as container:
        assert container.streams.video[0].codec_context.name in ("vp9", "libvpx-vp9")
    clash = _cutout("video", str(tmp_path / "clip.mp4"), str(tmp_path / "x.mov"), "--format", "webm")
    assert clash.returncode == 2 and "--format webm and the output" in clash.stderr.decode()
    unknown = _cutout("video", str(tmp_path / "clip.mp4"), "--format", "avi")
    assert (
        unknown.returncode == 2 and "unknown --format avi; give one of mp4, mkv, mov, webm" in unknown.stderr.decode()
    )


def test_a_batch_stopped_by_ctrl_c_leaves_no_partial_clip_and_resumes(clips: Path, tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (folder / name).symlink_to(clips / "sam2_juggle_person.mp4")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "cutout", "video", str(folder), str(out), "--bg", "black"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    _interrupt_once_writing(process, out, ".a.mp4.*.part.mp4")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert "was stopped partway and left no output; 2 clip(s) not done" in err.decode()
    assert list(out.iterdir()) == []  # no shorter a.mp4 that a re-run would take for done
    again = _cutout("video", str(folder), str(out), "--bg", "black", "--duration", "0.5", "-q")
    assert again.returncode == 0, again.stderr.decode()
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4"]


@pytest.mark.parametrize("kind", ["mask", "mov", "mkv-mask"])
def test_the_matte_of_an_hdr_clip_is_tagged_sdr_so_editors_keep_its_values(tmp_path: Path, kind: str) -> None:
    # tagged HLG as the clip, an editor on an SDR timeline would tone-map the matte, and with it the alpha
    from cutout.options import RemoveOptions
    from cutout.video import process_video

    source = tmp_path / "phone.mp4"
    _hdr_clip(source, 18)
    target = tmp_path / {"mask": "matte.mp4", "mov": "matte.mov", "mkv-mask": "matte.mkv"}[kind]
    options = VideoOptions(remove=RemoveOptions(only_mask=True))
    summary = process_video(source, target, _LeftHalf(), options, kind=kind)
    assert summary.frames == 5 and not [n for n in summary.notes if "HDR" in n]
    with av.open(str(target)) as container:
        frame = next(container.decode(video=0))
        assert (frame.colorspace, frame.color_primaries, frame.color_trc) == (1, 1, 1)
        grey = frame.to_ndarray(format="gray").astype(int)
    assert np.abs(grey[20:-20, 20:140] - 255).max() <= 2 and grey[20:-20, 200:-20].max() <= 2


def test_an_hdr_background_video_behind_an_sdr_clip_is_tone_mapped(tmp_path: Path) -> None:
    from cutout.hdr import sdr_to_hdr
    from cutout.video import process_video

    colour = (200, 60, 40)
    background = tmp_path / "hlg.mp4"
    _hdr_clip(background, 18, tuple(int(v) for v in sdr_to_hdr(np.array([colour], np.uint8), 18, 9)[0]))
    source = tmp_path / "sdr.mp4"
    _sdr_clip(source, 128)
    process_video(source, tmp_path / "o.mp4", _LeftHalf(), VideoOptions(background_video=background))
    with av.open(str(tmp_path / "o.mp4")) as container:
        right = next(container.decode(video=0)).to_ndarray(format="rgb24")[20:-20, 200:-20].astype(int)
    assert np.abs(right - colour).max() <= 10, right.mean((0, 1))


def test_a_background_photo_fills_an_anamorphic_clip_as_it_is_shown(tmp_path: Path) -> None:
    # a 16:9 photo behind a 16:9 HDV clip (stored 4:3, pixels 4/3 wide) was cropped to 4:3 and shown stretched
    from fractions import Fraction

    from cutout.compose import Background
    from cutout.options import RemoveOptions
    from cutout.video import process_video

    source = tmp_path / "hdv.mp4"
    _sdr_clip(source, 128, size=(144, 108), pixel_aspect=Fraction(4, 3))
    gradient = np.tile(np.linspace(0, 255, 192).astype(np.uint8)[None, :, None], (108, 1, 3))
    Image.fromarray(gradient).save(tmp_path / "wide.png")
    options = VideoOptions(remove=RemoveOptions(background=Background("image", path=tmp_path / "wide.png")))
    process_video(source, tmp_path / "out.mp4", _LeftHalf(), options)
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.sample_aspect_ratio == Fraction(4, 3)
        frame = next(container.decode(stream)).to_ndarray(format="rgb24").astype(int)
    assert frame[20:-20, -3:].mean() > 240  # the photo's right edge is the frame's: uncropped (cropped: ~212)


def _pattern(height: int, width: int) -> np.ndarray:
    """Red grows left to right, green top to bottom, no blue: where each pixel of a picture lies shows."""
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 255 // (width - 1), y * 255 // (height - 1), 0 * x]).astype(np.uint8)


def _turned_clip(path: Path, frames: list[np.ndarray], rotation: int, hflip: bool) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if rotation or hflip:
            stream.set_display_rotation(rotation, hflip=hflip)
        for pixels in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))


@pytest.mark.parametrize(("rotation", "hflip"), [(90, False), (270, False), (180, False), (90, True), (0, True)])
@pytest.mark.parametrize("background", ["photo", "video", "phone video"])
def test_a_background_shows_upright_behind_a_phones_turned_clip(
    tmp_path: Path,
    rotation: int,
    hflip: bool,
    background: str,
    as_shown,
    display_matrix,  # type: ignore[no-untyped-def]
) -> None:
    # a phone stores its clip sideways with a rotation to show it by: the background went behind the stored
    # frames, so a beach photo showed on its side (and a mirrored clip's background mirrored)
    from cutout.compose import Background
    from cutout.video import process_video

    source = tmp_path / "phone.mp4"
    _turned_clip(source, [np.full((64, 96, 3), 128, np.uint8)] * 3, rotation, hflip)
    picture = _pattern(120, 90)  # portrait, as the turned clip shows
    if background == "photo":
        Image.fromarray(picture).save(tmp_path / "bg.png")
        options = VideoOptions(remove=RemoveOptions(background=Background("image", path=tmp_path / "bg.png")))
    else:  # a clip of the picture; the phone's is stored turned the other way and shown upright by its rotation
        stored = np.ascontiguousarray(np.rot90(picture, -1)) if background == "phone video" else picture
        _turned_clip(tmp_path / "bg.mp4", [stored] * 2, 90 if background == "phone video" else 0, False)
        options = VideoOptions(background_video=tmp_path / "bg.mp4")
    process_video(source, tmp_path / "out.mp4", _LeftHalf(), options)
    with av.open(str(tmp_path / "out.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    matrix = display_matrix(tmp_path / "out.mp4")
    shown = as_shown(frame, matrix) if matrix else frame
    assert shown.shape[:2] == ((96, 64) if rotation % 180 else (64, 96))
    behind = shown[..., 2] < 60  # the picture, not the grey subject
    rows, columns = np.nonzero(behind)
    assert behind.mean() > 0.3
    assert np.corrcoef(shown[..., 0][behind], columns)[0, 1] > 0.9  # red grows to the right as shown
    assert np.corrcoef(shown[..., 1][behind], rows)[0, 1] > 0.9  # green grows downwards as shown


def test_the_model_sees_a_phones_clip_upright(clips: Path, session: cutout.Session, tmp_path: Path) -> None:
    # a phone stores its clip sideways: u2netp saw people on their side and its masks were far worse (on these
    # frames IoU with the ground truth 0.33 against 0.60 upright)
    from cutout.video import process_video

    upright = _decode_frames(clips / "davis16_dance-twirl.mp4")[:40:8]
    truth = [
        np.asarray(Image.open(p).convert("L")) > 127
        for p in sorted((clips / "davis16_dance-twirl" / "masks").glob("*.png"))[:40:8]
    ]
    source = tmp_path / "phone.mp4"
    _turned_clip(source, [np.ascontiguousarray(np.rot90(frame, -1)) for frame in upright], 90, False)
    options = VideoOptions(cutout.make_options(only_mask=True), temporal_smoothing=0.0)
    process_video(source, tmp_path / "masks", session, options, kind="png")
    stored = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "masks").iterdir())]
    assert stored[0].shape == (854, 480)  # as the clip stores its frames
    shown, expected = [np.rot90(mask) for mask in stored], session.masks(upright)
    # what the model gives for the upright frames, but for H.264's loss (IoU 0.89 to 0.97; sideways 0.53 and less)
    assert np.mean([_iou(mask, upright > 127) for mask, upright in zip(shown, expected, strict=True)]) > 0.85
    iou = [np.mean([_iou(m, t) for m, t in zip(masks, truth, strict=True)]) for masks in (shown, expected)]
    assert iou[0] > iou[1] - 0.05


def test_an_interlaced_clip_is_cut_out_deinterlaced_and_says_so(tmp_path: Path) -> None:
    from test_video_io import _comb, _interlaced_clip

    from cutout.video import process_video

    source, target = tmp_path / "camcorder.mp4", tmp_path / "out.mov"
    _interlaced_clip(source)
    summary = process_video(source, target, _LeftHalf(), VideoOptions())
    assert summary.frames == 12
    assert [n for n in summary.notes if "interlaced (top field first): each frame was deinterlaced" in n] != []
    with av.open(str(target)) as container:
        frames = [frame.to_ndarray(format="rgba") for frame in container.decode(video=0)]
    assert max(_comb(frame[..., :3]) for frame in frames[1:]) < 0.5  # as stored: 5.7


def test_damaged_audio_packets_leave_a_gap_in_the_sound_not_a_failed_clip(clips: Path, tmp_path: Path) -> None:
    # re-encoding the sound (AAC into WebM's Opus) failed the whole clip, blaming the video encoder:
    # "cannot encode out.webm with libvpx-vp9 (Invalid data found when processing input: 'avcodec_send_packet()')"
    from cutout.video import process_video

    data = bytearray((clips / "mdn_rabbit320_audio.mp4").read_bytes())
    with av.open(str(clips / "mdn_rabbit320_audio.mp4")) as container:
        places = [(p.pos, p.size) for p in container.demux(container.streams.audio[0]) if p.size and p.pos]
    damaged = places[5:40:7]  # five packets in the first second
    for position, size in damaged:
        data[position : position + size] = np.random.default_rng(position).integers(0, 256, size, np.uint8).tobytes()
    source = tmp_path / "glitch.mp4"
    source.write_bytes(bytes(data))
    target = tmp_path / "out.webm"
    summary = process_video(source, target, _LeftHalf(), VideoOptions(duration=1.5))
    assert summary.frames == 45
    assert any("damaged audio packet(s) were left out" in note for note in summary.notes)
    with av.open(str(target)) as output:
        audio = output.streams.audio[0]
        assert audio.codec_context.name == "opus"
        seconds = sum(float(p.duration * p.time_base) for p in output.demux(audio) if p.size)
    assert 1.2 < seconds < 1.55  # the sound of the second and a half, less the damaged packets' few ms


def _ts_part(
    path: Path, size: tuple[int, int], frames: int, layout: str = "stereo", rate: int = 48000, step: int = 10
) -> bytes:
    """An MPEG-TS recording of ``frames`` grey frames at 10 fps, growing brighter by ``step``, with a tone (AAC,
    ``layout``, ``rate`` Hz), its timestamps from 0."""
    width, height = size
    with av.open(str(path), "w", format="mpegts") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = layout
        channels = 1 if layout == "mono" else 2
        tone = (np.sin(np.arange(rate // 10) / 10)[None].repeat(channels, 0) * 0.3).astype(np.float32)
        for index in range(frames):
            picture = np.full((height, width, 3), 40 + step * index, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            sound = av.AudioFrame.from_ndarray(tone, format="fltp", layout=layout)
            sound.sample_rate, sound.pts = rate, index * (rate // 10)
            container.mux(audio.encode(sound))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["mp4", "webm"])
def test_recordings_joined_end_to_end_follow_one_another_sound_too(tmp_path: Path, kind: str) -> None:
    # `cat part1.ts part2.ts`: the second part's timestamps start again at 0 (and here its frames are larger);
    # the writer stopped with ValueError("frame timestamps must increase"), or "cannot encode ... Invalid argument"
    from cutout.video import process_video

    joined = tmp_path / "joined.ts"
    joined.write_bytes(_ts_part(tmp_path / "1.ts", (320, 240), 20) + _ts_part(tmp_path / "2.ts", (640, 360), 20))
    target = tmp_path / f"out.{kind}"
    white = RemoveOptions(background=parse_background("white"))
    summary = process_video(joined, target, _LeftHalf(), VideoOptions(remove=white))
    assert summary.frames == 40
    notes = " ".join(summary.notes)
    assert "timestamps start again 1 time(s), as in recordings joined end to end" in notes
    assert "20 frame(s) changed size midway (640x360): scaled to the clip's 320x240" in notes
    with av.open(str(target)) as output:
        stream = output.streams.video[0]
        frames = [(frame.time, frame.to_ndarray(format="rgb24")) for frame in output.decode(stream)]
    with av.open(str(target)) as output:
        sound = [float(p.pts * p.time_base) for p in output.demux(audio=0) if p.size]
    steps = np.diff([time for time, _ in frames])
    assert len(frames) == 40 and np.allclose(steps, 0.1, atol=1e-3), steps
    assert {picture.shape for _, picture in frames} == {(240, 320, 3)}
    assert abs(int(frames[25][1][120, 200, 0]) - 255) <= 3  # the right half is the background
    assert abs(int(frames[25][1][120, 80, 0]) - (40 + 10 * 5)) <= 6  # the second part's sixth frame, in place
    assert sound[0] < 0.3 and sound[-1] > 3.7  # both parts' sound, one after the other (4 s in all)


def _clip_with_sound(path: Path, audio_codec: str, video_codec: str = "libx264", frames: int = 10) -> None:
    """A 10 fps clip of ``frames`` (up to 30) growing brighter (40 + 7 per frame), with 0.1 s of a tone each."""
    with av.open(str(path), "w") as container:
        video = container.add_stream(video_codec, rate=10)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        audio = container.add_stream(audio_codec, rate=48000)
        audio.layout = "stereo"
        kind = audio.format.name
        wave = np.sin(np.arange(4800) / 10) * 0.3
        samples = (wave * 32767).astype(np.int16) if kind.startswith("s16") else wave.astype(np.float32)
        samples = samples[None].repeat(2, 0)
        for index in range(frames):
            picture = np.full((120, 160, 3), 40 + 7 * index, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            layout = samples.T.reshape(1, -1) if audio.format.is_packed else samples
            sound = av.AudioFrame.from_ndarray(np.ascontiguousarray(layout), format=kind, layout="stereo")
            sound.sample_rate, sound.pts = 48000, index * 4800
            container.mux(audio.encode(sound))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))


@pytest.mark.parametrize(
    ("name", "audio_codec", "kind", "written"),
    [
        ("screen.mkv", "pcm_s16le", "mp4", "aac"),  # channels in no stated order: MP4 failed writing its index
        ("camera.mov", "pcm_s16le", "mp4", "aac"),  # PCM in MP4 plays in few players
        ("camera.mov", "pcm_s16le", "mov", "pcm_s16le"),  # kept as it is
        ("music.mkv", "flac", "mov", "aac"),  # "flac only supported in MP4"
        ("call.mkv", "libopus", "mov", "aac"),  # "opus only supported in MP4"
        ("call.mkv", "libopus", "mp4", "opus"),
        ("old.avi", "pcm_s16le", "mov", "pcm_s16le"),
    ],
)
def test_sound_the_output_cannot_hold_as_it_is_is_re_encoded_not_a_failed_clip(
    tmp_path: Path, name: str, audio_codec: str, kind: str, written: str
) -> None:
    # these failed the clip with "cannot encode out.mov with prores_ks (Invalid argument ... returned 22)"
    from cutout.video import process_video

    source = tmp_path / name
    _clip_with_sound(source, audio_codec)
    target = tmp_path / f"out.{kind}"
    white = RemoveOptions(background=parse_background("white"))
    summary = process_video(source, target, _LeftHalf(), VideoOptions(remove=white), kind=kind)
    assert summary.frames == 10
    re_encoded = any(f"cannot go into {kind.upper()} as it is: re-encoded to AAC" in note for note in summary.notes)
    assert re_encoded == (written == "aac"), summary.notes
    with av.open(str(target)) as output:
        audio = output.streams.audio[0]
        assert audio.codec_context.name == written
        seconds = sum(float(p.duration * p.time_base) for p in output.demux(audio) if p.size)
    assert seconds == pytest.approx(1.0, abs=0.08)


def test_an_avi_with_b_frames_keeps_every_frame_in_order(tmp_path: Path) -> None:
    # AVI stores no presentation times: the decoder gives the frames in order with timestamps 1, 4, 3, 5, 2, ...;
    # before, the writer stopped with "frame timestamps must increase"
    from cutout.video import process_video

    source = tmp_path / "old.avi"
    _clip_with_sound(source, "pcm_s16le", frames=30)
    with av.open(str(source)) as container:
        stamps = [frame.pts for frame in container.decode(video=0)]
    assert stamps != sorted(stamps)  # the premise: shuffled
    target = tmp_path / "out.mov"
    white = RemoveOptions(background=parse_background("white"))
    summary = process_video(source, target, _LeftHalf(), VideoOptions(remove=white))
    assert summary.frames == 30 and summary.expected is None
    assert any("had timestamps out of order (an AVI with B-frames" in note for note in summary.notes)
    with av.open(str(target)) as output:
        shown = [(frame.time, int(frame.to_ndarray(format="rgb24")[60, 40, 0])) for frame in output.decode(video=0)]
    assert [abs(value - (40 + 7 * index)) <= 4 for index, (_, value) in enumerate(shown)] == [True] * 30
    times = [time for time, _ in shown]
    assert times == sorted(times) and all(time - 0.1 * index < 0.45 for index, time in enumerate(times))


@pytest.mark.parametrize(
    ("fps", "kind", "kept"), [(120, "gif", 20), (60, "gif", 15), (240, "webp", 24), (25, "gif", 12)]
)
def test_an_animation_gets_at_most_50_frames_a_second_so_it_plays_in_time(
    tmp_path: Path, fps: int, kind: str, kept: int
) -> None:
    # a phone's 120 fps slow motion as a GIF failed ("non monotonically increasing dts": two frames in the same
    # hundredth of a second); at 60 fps its frames of 10 ms played at 100 ms each in browsers
    from cutout.video import process_video

    source = tmp_path / "fast.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for index in range(fps // 2):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 2 * index, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    target = tmp_path / f"sticker.{kind}"
    session = _Counted()
    summary = process_video(source, target, session, VideoOptions(), kind=kind)
    assert summary.frames == fps // 2
    assert session.seen == kept  # the frames left out were not cut out (a 60 fps clip took twice the time)
    dropped = fps // 2 - kept
    told = any("gets at most 50 frames a second" in note and f"{dropped} frame(s)" in note for note in summary.notes)
    assert told == (dropped > 0), summary.notes
    with Image.open(target) as animation:
        durations, shown = [], []
        for index in range(animation.n_frames):
            animation.seek(index)
            animation.load()
            durations.append(animation.info["duration"])
            shown.append(int(np.asarray(animation.convert("RGBA"))[60, 40, 0]))  # the left half: the frame's own
    seconds = (fps // 2) / fps
    assert len(durations) == kept and min(durations) >= 20 and sum(durations) == pytest.approx(1000 * seconds, abs=10)
    every = -(-(fps // 2) // kept)  # the kept frames are the 1st, then each one 1/50 s or more after it
    assert all(abs(value - 2 * every * index) <= 3 for index, value in enumerate(shown)), shown


def test_an_audio_track_without_a_packet_that_mov_refuses_is_re_encoded(tmp_path: Path) -> None:
    # an MKV declaring an Opus track that holds no packet (a muted recording): the trial of MOV's header was
    # skipped for want of a packet, and the clip failed with "opus only supported in MP4"
    from cutout.video import process_video

    source = tmp_path / "muted.mkv"
    with av.open(str(source), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        audio = container.add_stream("libopus", rate=48000)
        audio.layout = "stereo"
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 40 * index, np.uint8), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    summary = process_video(source, tmp_path / "out.mov", _LeftHalf(), VideoOptions())
    assert summary.frames == 5
    assert any("audio stream #1 (opus) cannot go into MOV as it is" in note for note in summary.notes)


def test_a_damaged_aac_packet_copied_into_mp4_leaves_a_gap_not_a_failed_clip(tmp_path: Path) -> None:
    # MP4 takes ADTS AAC (from MPEG-TS) through a filter that refuses a damaged packet: the clip failed with
    # "cannot encode out.mp4 with libx264 (Invalid data found when processing input)"
    from cutout.video import process_video

    data = bytearray(_ts_part(tmp_path / "part.ts", (160, 120), 20))
    with av.open(str(tmp_path / "part.ts")) as container:
        sixth = [bytes(packet) for packet in container.demux(audio=0) if packet.size][5]
    at = data.find(sixth[:12])
    data[at : at + 2] = b"\0\0"  # its ADTS sync word
    source = tmp_path / "damaged.ts"
    source.write_bytes(bytes(data))
    white = RemoveOptions(background=parse_background("white"))
    summary = process_video(source, tmp_path / "out.mp4", _LeftHalf(), VideoOptions(remove=white))
    assert summary.frames == 20
    assert any("damaged audio packet(s) were left out: the sound has a gap there" in note for note in summary.notes)
    with av.open(str(tmp_path / "out.mp4")) as output:
        assert output.streams.audio[0].codec_context.name == "aac"
        times = [float(packet.pts * packet.time_base) for packet in output.demux(audio=0) if packet.size]
    assert times[0] < 0.2 and times[-1] > 2.1  # the sound to the end, not cut at the damage


def test_re_encoded_sound_follows_on_when_a_decoder_times_a_frame_early_or_not_at_all(tmp_path: Path) -> None:
    # after a damaged AAC packet the decoder gave a frame without a time; the Opus encoder's packets then went
    # back ("non monotonically increasing dts") and the clip failed
    from fractions import Fraction

    from cutout.io.audio_tracks import AudioTracks

    source = tmp_path / "in.mp4"
    _clip_with_sound(source, "aac", frames=3)
    with av.open(str(tmp_path / "out.webm"), "w") as output:
        tracks = AudioTracks(output, source, "webm", "libopus", 160_000, [])
        index = next(iter(tracks.streams))
        for pts in (0, 960, None, 1500, 4800):  # the third has no time, the fourth starts inside the one before
            frame = av.AudioFrame.from_ndarray(np.zeros((2, 960), np.float32), format="fltp", layout="stereo")
            frame.sample_rate = 48000
            if pts is not None:
                frame.pts, frame.time_base = pts, Fraction(1, 48000)
            tracks._encode(index, frame)
        output.mux(tracks.streams[index][1].encode(None))
        tracks.close()
    with av.open(str(tmp_path / "out.webm")) as written:
        stamps = [packet.pts for packet in written.demux(audio=0) if packet.size]
    assert stamps == sorted(set(stamps)) and len(stamps) >= 5


@pytest.mark.parametrize("kind", ["webm", "mov"])
def test_an_audio_stream_whose_header_gives_no_channels_is_dropped_not_a_failed_clip(tmp_path: Path, kind: str) -> None:
    # damaged headers: re-encoding failed the clip ("avcodec_open2("libopus") returned 22"), copying wrote a
    # track of 0 channels
    from cutout.video import process_video

    source = tmp_path / "screen.mkv"
    _clip_with_sound(source, "pcm_s16le", frames=5)
    data = bytearray(source.read_bytes())
    at = data.find(b"\x9f\x81\x02")  # Matroska's Channels element: 2
    data[at + 2] = 0
    source.write_bytes(bytes(data))
    summary = process_video(source, tmp_path / f"out.{kind}", _LeftHalf(), VideoOptions(), kind=kind)
    assert summary.frames == 5
    dropped = "dropped audio stream #1 (pcm_s16le): its channels and sample rate are not known from the start"
    assert dropped in " ".join(summary.notes)
    with av.open(str(tmp_path / f"out.{kind}")) as output:
        assert not output.streams.audio


def test_sound_that_changes_channels_and_rate_midway_is_converted_to_the_first(tmp_path: Path) -> None:
    # a broadcast switching from stereo to mono (and 48 to 44.1 kHz) at a join: PyAV's encoder stopped the run
    # with ValueError("Frame does not match AudioResampler setup")
    from cutout.video import process_video

    stereo = _ts_part(tmp_path / "0.ts", (160, 120), 20, "stereo", 48000, step=5)
    source = tmp_path / "broadcast.ts"
    source.write_bytes(stereo + _ts_part(tmp_path / "1.ts", (160, 120), 20, "mono", 44100, step=5))
    summary = process_video(source, tmp_path / "out.webm", _LeftHalf(), VideoOptions())
    assert summary.frames == 40
    assert any(
        "changes midway (stereo at 48000 Hz, then mono at 44100 Hz): converted to the first" in note
        for note in summary.notes
    )
    with av.open(str(tmp_path / "out.webm")) as output:
        audio = output.streams.audio[0]
        assert audio.codec_context.channels == 2
        seconds = sum(float(p.duration * p.time_base) for p in output.demux(audio) if p.size)
    assert seconds == pytest.approx(4.0, abs=0.15)


def _recording(path: Path, audio_codec: str) -> None:
    """An OBS-like Matroska recording: 10 frames of a real photo at 10 fps and 1 s of sound in ``audio_codec``."""
    import av

    photo = np.asarray(Image.open(EXAMPLE_PHOTO).convert("RGB").resize((96, 64)))
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        audio = container.add_stream(audio_codec, rate=44100)
        audio.layout = "mono"
        for index in range(10):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.roll(photo, 3 * index, 1), format="rgb24")))
            tone = np.sin(np.arange(4410) * (2 * np.pi * 440 / 44100) + index * 4410 * 2 * np.pi * 440 / 44100)
            samples = av.AudioFrame.from_ndarray((tone[None] * 8000).astype(np.int16), format="s16", layout="mono")
            samples.sample_rate, samples.pts = 44100, index * 4410
            container.mux(audio.encode(samples))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))


@pytest.mark.parametrize("audio_codec", ["flac", "pcm_s16le"])
def test_a_matroska_output_keeps_the_recordings_sound_as_it_is(
    u2netp_onnx: Path, tmp_path: Path, audio_codec: str
) -> None:
    # `cutout video rec.mkv --bg x out.mkv` was refused ("cannot tell the video format"); an MP4 re-encodes PCM
    # sound to AAC, where Matroska takes it (and FLAC) bit for bit
    import av

    source = tmp_path / "rec.mkv"
    _recording(source, audio_codec)
    result = _cutout("video", str(source), "--bg", "white", str(tmp_path / "out.mkv"))
    assert result.returncode == 0, result.stderr.decode()
    assert "re-encoded" not in result.stderr.decode()

    def sound(path: Path) -> tuple[str, list[bytes]]:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            return stream.codec_context.name, [bytes(p) for p in container.demux(stream) if p.size]

    assert sound(tmp_path / "out.mkv") == sound(source)
    frames, *_ = _video_stream_facts(tmp_path / "out.mkv")
    assert frames == 10
    if audio_codec == "pcm_s16le":  # PCM in MP4 plays almost nowhere: there it is re-encoded
        mp4 = _cutout("video", str(source), "--bg", "white", str(tmp_path / "out.mp4"))
        assert mp4.returncode == 0 and "re-encoded to AAC" in mp4.stderr.decode()
    matte = _cutout("video", str(source), "--only-mask", str(tmp_path / "matte.mkv"), "-q")
    assert matte.returncode == 0, matte.stderr.decode()
    with av.open(str(tmp_path / "matte.mkv")) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    clear = _cutout("video", str(source), str(tmp_path / "clear.mkv"))
    assert clear.returncode == 2 and "MKV (H.264) has no transparency (no --bg given)" in clear.stderr.decode()
    assert not (tmp_path / "clear.mkv").exists()
