"""Benchmark ``cutout video`` against model-only throughput (and rembg's ``b``), in one run (not a test).

    python tests/benchmarks/bench_video.py [--rembg /path/to/rembg] [--seconds 4] [--scale 4]

Builds a 1280x720, 30 fps H.264 clip (with AAC audio) from ../shared/eval/video/sam2_juggle_person.mp4, then
measures on this machine, in the same run:
  (a) model-only: the onnx backend's inference alone at 320x320 (the best of one frame on all cores and one
      frame per core at once), frames/s;
  (b) ``cutout video CLIP --bg white OUT.mp4`` end to end (decode, infer, smooth, compose, H.264 encode, audio
      copy), frames/s and peak RSS; and again on a clip ``--scale`` times longer (RSS must stay flat);
  (c) rembg's ``b`` command on the same frames as an rgb24 stream (writing PNGs), when rembg is installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_image import model_only, run_measured  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CUTOUT_SHARED", ROOT.parent / "shared"))


def build_clip(path: Path, seconds: float) -> int:
    """A 1280x720 30 fps H.264 clip of ``seconds`` (the juggler looped) with a 440 Hz stereo AAC track."""
    source = SHARED / "eval" / "video" / "sam2_juggle_person.mp4"
    with av.open(str(source)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    count = int(seconds * 30)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 1280, 720, "yuv420p"
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for i in range(count):
            rgb = frames[i % len(frames)] if (i // len(frames)) % 2 == 0 else frames[-1 - i % len(frames)]
            for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        samples_done = 0
        total = int(seconds * 48000)
        while samples_done < total:
            n = min(1024, total - samples_done)
            t = (np.arange(samples_done, samples_done + n) / 48000).astype(np.float32)
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            frame.sample_rate = 48000
            frame.pts = samples_done
            frame.time_base = Fraction(1, 48000)
            for packet in audio.encode(frame):
                out.mux(packet)
            samples_done += n
        for stream in (video, audio):
            for packet in stream.encode():
                out.mux(packet)
    return count


def rembg_stream(rembg: str, clip: Path, out: Path, home: Path) -> float:
    """Seconds for ``rembg b 1280 720 -m u2netp`` fed the clip's frames as rgb24 on stdin."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "U2NET_HOME": str(home)}
    command = [rembg, "b", "1280", "720", "-m", "u2netp", "-o", str(out / "frame-%05u.png")]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    assert process.stdin is not None
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            process.stdin.write(frame.to_ndarray(format="rgb24").tobytes())
    process.stdin.close()
    process.wait()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--rembg", default=shutil.which("rembg"))
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    from cutout.convert import resolve_weights
    from cutout.registry import get_spec

    onnx = resolve_weights(get_spec("u2netp"), "onnx")
    work = Path(tempfile.mkdtemp(prefix="cutout-bench-video-"))
    env = {**os.environ, "CUTOUT_OFFLINE": "1"}
    try:
        clip = work / "clip.mp4"
        frames = build_clip(clip, args.seconds)
        rate_model, how = model_only(onnx, args.runs)
        rows = [(f"model-only (onnx 320x320, {how})", rate_model, None)]
        cutout = [sys.executable, "-m", "cutout", "video", "-q", "--overwrite", "--bg", "white"]
        seconds, rss = run_measured([*cutout, str(clip), str(work / "out.mp4")], env)
        rate = frames / seconds
        rows.append((f"cutout video, 720p30, {frames} frames", rate, rss))
        rss_long = None
        if args.scale > 1:
            long_clip = work / "long.mp4"
            long_frames = build_clip(long_clip, args.seconds * args.scale)
            seconds, rss_long = run_measured([*cutout, str(long_clip), str(work / "long-out.mp4")], env)
            rows.append((f"cutout video, 720p30, {long_frames} frames", long_frames / seconds, rss_long))
        if args.rembg:
            home = work / "u2net"
            for place in (home / "u2netp.onnx", home / "models" / "u2netp" / "u2netp.onnx"):
                place.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(onnx, place)
            rows.append(
                (
                    f"rembg b -m u2netp (rgb24 in, PNGs out), {frames} frames",
                    frames / rembg_stream(args.rembg, clip, work / "rembg", home),
                    None,
                )
            )
        print(f"\n{'what':58} {'frames/s':>9} {'peak RSS MiB':>13}")
        for name, value, peak in rows:
            print(f"{name:58} {value:9.2f} {'' if peak is None else f'{peak:13.0f}'}")
        print(f"\ncutout video / model-only: {rate / rate_model:.2f} (target >= 0.8)")
        if rss_long:
            print(f"peak RSS {args.scale}x longer clip / clip: {rss_long / rss:.2f} (flat: <= 1.10)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
