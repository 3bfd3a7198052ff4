"""Quality of ``cutout video`` on DAVIS-2016 dance-twirl (../shared/eval/video): IoU, MAE and flicker.

    python tests/benchmarks/eval_video_quality.py [--strengths 0 0.3 0.5 0.7]

Runs the clip through the video path (only the mask, PNG frames) for each smoothing strength and prints the
mean per-frame IoU and MAE against the ground-truth masks, and the flicker: the mean absolute frame-to-frame
change of the alpha (0..1) where the ground truth does not change.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import cutout
from cutout.options import VideoOptions
from cutout.video import process_video

SHARED = Path(os.environ.get("CUTOUT_SHARED", Path(__file__).resolve().parents[3] / "shared"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7])
    args = parser.parse_args()
    clip = SHARED / "eval" / "video" / "davis16_dance-twirl.mp4"
    masks = sorted((SHARED / "eval" / "video" / "davis16_dance-twirl" / "masks").glob("*.png"))
    truth = [np.asarray(Image.open(p).convert("L")) > 127 for p in masks]
    session = cutout.new_session("u2netp", threads=1)
    print(f"{'smoothing':>9} {'mean IoU':>9} {'MAE':>8} {'flicker':>9}")
    for strength in args.strengths:
        with tempfile.TemporaryDirectory() as folder:
            options = VideoOptions(cutout.make_options(only_mask=True), temporal_smoothing=strength)
            process_video(clip, Path(folder) / "m", session, options, kind="png")
            alpha = [np.asarray(Image.open(p)) for p in sorted((Path(folder) / "m").iterdir())]
        iou = np.mean(
            [((a > 127) & t).sum() / max(1, ((a > 127) | t).sum()) for a, t in zip(alpha, truth, strict=True)]
        )
        mae = np.mean([np.abs(a / 255.0 - t).mean() for a, t in zip(alpha, truth, strict=True)])
        steps = [
            np.abs(alpha[i] / 255.0 - alpha[i - 1] / 255.0)[truth[i] == truth[i - 1]].mean()
            for i in range(1, len(alpha))
        ]
        print(f"{strength:9.2f} {iou:9.4f} {mae:8.4f} {np.mean(steps):9.5f}")


if __name__ == "__main__":
    main()
