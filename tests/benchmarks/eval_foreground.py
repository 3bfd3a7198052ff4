"""Quality and speed of ``estimate_foreground`` (Blur-Fusion x2) on the 18 matting images in ../shared/eval/matting.

    python tests/benchmarks/eval_foreground.py [--repeats 3] [--limit 18] [--megapixels 12]

Each photo is taken as the true foreground F and composited with its ground-truth alpha a over a strongly coloured
old background B (pure green, then pure magenta): I = a F + (1 - a) B, rounded to uint8. With the true alpha it
prints, over the soft pixels (0 < a < 1), on the 0..255 scale:

  colour MAE      |I - F| ("raw", what a cutout without estimation saves) and |F_hat - F|, unweighted and weighted
                  by a (errors where a is tiny barely show);
  pasted          the cutout pasted on a new background N (blue, then grey): a I + (1 - a) N (raw) and
                  a F_hat + (1 - a) N against a F + (1 - a) N: the MAE, and "old" = how much of the old background
                  shows, the mean excess of its dominant channels (green; red and blue for magenta) over the truth's.

With the true alpha a pasted error is a (X - F) whatever N is, so blue and grey give the same numbers (the script
checks this and prints their largest difference); they are shown once. One table per old background with a row
per image, then the means over everything, and the time of estimate_foreground per megapixel (best of --repeats).
--megapixels resizes every photo and alpha (bicubic) to about that many megapixels first, e.g. 12 for a phone's
photo (the images are 0.3 to 2.9 MP; over a megapixel estimate_foreground runs its passes on a grid of samples).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cutout.refine.foreground import estimate_foreground

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CUTOUT_SHARED", ROOT.parent / "shared"))
OLD = {"green": (0, 255, 0), "magenta": (255, 0, 255)}
NEW = {"blue": (0, 0, 255), "grey": (128, 128, 128)}
COLUMNS = ["MAE raw", "MAE est", "wMAE raw", "wMAE est", "pasted MAE raw", "pasted MAE est", "old raw", "old est"]


def load(folder: Path, limit: int, megapixels: float = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, image (H, W, 3) uint8, alpha (H, W) uint8) for the first ``limit`` images with a ground-truth alpha,
    resized to about ``megapixels`` (bicubic) unless that is 0."""
    pairs = []
    for path in sorted((folder / "images").glob("*.png"))[:limit]:
        image, alpha = Image.open(path).convert("RGB"), Image.open(folder / "alpha" / path.name).convert("L")
        if megapixels:
            scale = np.sqrt(megapixels * 1e6 / (image.width * image.height))
            size = (round(image.width * scale), round(image.height * scale))
            image, alpha = image.resize(size, Image.Resampling.BICUBIC), alpha.resize(size, Image.Resampling.BICUBIC)
        pairs.append((path.stem, np.asarray(image), np.asarray(alpha)))
    return pairs


def timed(image: np.ndarray, alpha: np.ndarray, repeats: int) -> tuple[np.ndarray, float]:
    """estimate_foreground's result and its best time in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        estimate = estimate_foreground(image, alpha)
        best = min(best, time.perf_counter() - start)
    return estimate, best


def scores(truth: np.ndarray, alpha: np.ndarray, raw: np.ndarray, estimate: np.ndarray, old: tuple) -> np.ndarray:
    """The COLUMNS for one image on one old background, over its soft pixels, for each new background.

    Shape: truth, raw, estimate (P, 3) float64, alpha (P,) in 0..1 -> (len(NEW), len(COLUMNS)).
    """
    errors = [np.abs(colours - truth).mean(axis=1) for colours in (raw, estimate)]
    colour = [errors[0].mean(), errors[1].mean(), *((e * alpha).sum() / alpha.sum() for e in errors)]
    dominant = [channel for channel in range(3) if old[channel] == 255]
    weight, rows = alpha[:, None], []
    for new in NEW.values():
        background = np.array(new, np.float64)
        pasted_truth = weight * truth + (1 - weight) * background
        pasted = [weight * colours + (1 - weight) * background - pasted_truth for colours in (raw, estimate)]
        rows.append(colour + [np.abs(p).mean() for p in pasted] + [p[:, dominant].mean() for p in pasted])
    return np.array(rows)


def print_table(title: str, names: list[str], table: np.ndarray, extra: list[str]) -> None:
    """One row per image, then the mean."""
    print(f"\nold background: {title}   (soft pixels only; 0..255; 'old' = excess of the old colour's channels)")
    print(f"{'image':18} {'soft %':>6} {'ms':>6} " + " ".join(f"{c:>{max(8, len(c))}}" for c in COLUMNS))
    for name, row, more in zip([*names, "mean"], [*table, table.mean(axis=0)], [*extra, " " * 13], strict=True):
        print(f"{name:18} {more} " + " ".join(f"{v:>{max(8, len(c))}.2f}" for v, c in zip(row, COLUMNS, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "eval" / "matting", help="images/ and alpha/ PNGs")
    parser.add_argument("--limit", type=int, default=18, help="how many images")
    parser.add_argument("--repeats", type=int, default=3, help="timing: best of this many runs")
    parser.add_argument("--megapixels", type=float, default=0, help="resize every image to about this size first")
    args = parser.parse_args()
    images = load(args.data, args.limit, args.megapixels)
    if not images:
        raise SystemExit(f"no images found under {args.data}; set CUTOUT_SHARED or --data")
    tables, seconds, megapixels, spread = {}, 0.0, 0.0, 0.0
    for old_name, old in OLD.items():
        rows, extra = [], []
        for _, foreground, alpha in images:
            a = alpha[..., None] / 255.0
            composite = np.rint(a * foreground + (1 - a) * np.array(old, np.float64)).astype(np.uint8)
            estimate, elapsed = timed(composite, alpha, args.repeats)
            seconds, megapixels = seconds + elapsed, megapixels + alpha.size / 1e6
            soft = (alpha > 0) & (alpha < 255)
            picked = [x[soft].astype(np.float64) for x in (foreground, composite, estimate)]
            per_new = scores(picked[0], alpha[soft] / 255.0, picked[1], picked[2], old)
            spread = max(spread, float(np.abs(per_new - per_new[0]).max()))
            rows.append(per_new[0])
            extra.append(f"{100 * soft.mean():6.1f} {1000 * elapsed:6.1f}")
        tables[old_name] = np.array(rows)
        print_table(old_name, [name for name, _, _ in images], tables[old_name], extra)
    overall = np.concatenate(list(tables.values())).mean(axis=0)
    print(f"\nmeans over {len(images)} images x {len(OLD)} old backgrounds:")
    for column, value in zip(COLUMNS, overall, strict=True):
        print(f"  {column:18} {value:7.2f}")
    print(f"  largest difference between pasting on {' and '.join(NEW)}: {spread:.1e}")
    print(f"estimate_foreground: {1000 * seconds / megapixels:.1f} ms per megapixel ({megapixels:.1f} MP in all)")


if __name__ == "__main__":
    main()
