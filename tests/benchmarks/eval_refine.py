"""Edge refinement on ../shared/eval/matting: SAD, MSE, gradient error and time per megapixel, per method.

    python tests/benchmarks/eval_refine.py [--refiner mnet] [--rembg $(which rembg)]

For every image (alphamatting.com low-res training set and DIM composites, soft ground-truth alphas) the
coarse mask comes from u2netp; then each refinement (none, guided, mnet when a trained MNet refiner is
found) is applied and compared with the ground truth: over the whole image, and over the unknown region of
the published trimaps (``trimaps``: narrow band, all images; ``trimaps2``: wider band, alphamatting images).
SAD and gradient error are sums / 1000 (alpha in 0..1), MSE a mean, as in DIM's evaluation; lower is better.
The time is the refinement's own (the best of ``--repeats``), per megapixel of image (the coarse model's time is
printed apart).

The last row, "oracle", is no method: the ground truth pasted into the unknown band of cutout's own trimap
(``trimap_from_alpha`` of the coarse mask). It is the most that any refinement confined to that band (guided,
mnet) could achieve, and shows how much of the error lies outside the band, where no edge refinement reaches.

With ``--rembg`` the same images go through ``rembg p -m u2netp -a`` (pymatting closed-form alpha matting) and
``rembg p -m u2netp``; rembg's alpha-matting time is the difference of the two runs, per megapixel (after a
warm-up run of each on one image).
rembg needs its u2netp.onnx in ``$U2NET_HOME`` (this script points it at cutout's cache).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import cutout
from cutout.refine.refiner import refine_mask
from cutout.refine.trimap import UNKNOWN, trimap_from_alpha
from train.metrics import matting_metrics

SHARED = Path(os.environ.get("CUTOUT_SHARED", Path(__file__).resolve().parents[3] / "shared"))
MATTING = SHARED / "eval" / "matting"
COLUMNS = ("sad", "mse", "grad", "sad_unknown", "mse_unknown", "grad_unknown", "sad_wide", "mse_wide", "grad_wide")


def load(path: Path, mode: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert(mode))


def metrics(alpha: np.ndarray, stem: str) -> dict[str, float]:
    """Whole image and the two trimaps' unknown regions (``_unknown``: trimaps/, ``_wide``: trimaps2/)."""
    truth = load(MATTING / "alpha" / f"{stem}.png", "L")
    result = matting_metrics(alpha, truth, load(MATTING / "trimaps" / f"{stem}.png", "L"))
    wide = MATTING / "trimaps2" / f"{stem}.png"
    if wide.is_file():
        extra = matting_metrics(alpha, truth, load(wide, "L"))
        result.update({f"{k.split('_')[0]}_wide": v for k, v in extra.items() if k.endswith("_unknown")})
    return result


def band_oracle(mask: np.ndarray, stem: str) -> np.ndarray:
    """The coarse mask with the ground truth in its trimap's unknown band: the best a band refinement can do."""
    unknown = trimap_from_alpha(mask) == UNKNOWN
    alpha = mask.copy()
    alpha[unknown] = load(MATTING / "alpha" / f"{stem}.png", "L")[unknown]
    return alpha


def run_rembg(rembg: str, images: list[Path]) -> tuple[dict[str, np.ndarray], float]:
    """rembg's alpha-matted alphas and the seconds its alpha matting took (a run with -a minus one without)."""
    from cutout.convert import resolve_weights
    from cutout.registry import get_spec

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "in").mkdir()
        for image in images:
            (root / "in" / image.name).symlink_to(image)
        home = root / "home"
        home.mkdir()
        shutil.copy(resolve_weights(get_spec("u2netp"), "onnx"), home / "u2netp.onnx")
        env = {**os.environ, "U2NET_HOME": str(home), "OMP_NUM_THREADS": str(os.cpu_count())}
        # Warm-up on the smallest image: a fresh install's first run compiles bytecode and pymatting's numba
        # kernels (about 100 s here), which would otherwise land in whichever timed run comes first.
        (root / "warm").mkdir()
        smallest = min(images, key=lambda p: p.stat().st_size)
        (root / "warm" / smallest.name).symlink_to(smallest)
        for flags in ([], ["-a"]):
            command = [rembg, "p", "-m", "u2netp", *flags, str(root / "warm"), str(root / "warm-out")]
            subprocess.run(command, check=True, env=env, capture_output=True)
        seconds = []
        for flags, out in (([], "plain"), (["-a"], "matted")):
            started = time.perf_counter()
            subprocess.run([rembg, "p", "-m", "u2netp", *flags, str(root / "in"), str(root / out)], check=True, env=env)
            seconds.append(time.perf_counter() - started)
        alphas = {p.stem: load(p, "RGBA")[..., 3] for p in (root / "matted").iterdir()}
    return alphas, seconds[1] - seconds[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refiner", default="mnet", help="the MNet model for the mnet row (skipped if not found)")
    parser.add_argument("--rembg", help="a rembg executable, for rembg's alpha matting row")
    parser.add_argument("--methods", nargs="+", default=["none", "guided", "mnet"])
    parser.add_argument("--repeats", type=int, default=3, help="time each refinement this many times, keep the best")
    args = parser.parse_args()
    images = sorted((MATTING / "images").glob("*.png"))
    session = cutout.new_session("u2netp")
    methods = list(args.methods)
    if "mnet" in methods:
        try:
            session.refiner(args.refiner)
        except cutout.CutoutError as error:
            print(f"mnet skipped: {error}")
            methods.remove("mnet")
    rows: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    model_seconds, megapixels = 0.0, 0.0
    oracle = []
    for path in images:
        rgb = load(path, "RGB")
        megapixels += rgb.shape[0] * rgb.shape[1] / 1e6
        started = time.perf_counter()
        mask = session.masks([rgb])[0]
        model_seconds += time.perf_counter() - started
        for method in methods:
            refiner = session.refiner(args.refiner) if method == "mnet" else None
            best = float("inf")
            for _ in range(args.repeats):  # the best of a few: this machine is noisy
                started = time.perf_counter()
                alpha = refine_mask(rgb, mask, method, refiner)  # type: ignore[arg-type]
                best = min(best, time.perf_counter() - started)
            seconds[method] += best
            rows[method].append(metrics(alpha, path.stem))
        oracle.append(metrics(band_oracle(mask, path.stem), path.stem))
    if args.rembg:
        alphas, matting_seconds = run_rembg(args.rembg, images)
        rows["rembg -a"] = [metrics(alphas[p.stem], p.stem) for p in images]
        seconds["rembg -a"] = matting_seconds
    rows["oracle"], seconds["oracle"] = oracle, float("nan")
    print(f"{len(images)} images, {megapixels:.2f} MP; u2netp coarse masks: {model_seconds / megapixels:.3f} s/MP")
    print("whole image | unknown region of trimaps/ | of trimaps2/ (14 images); SAD, grad: /1000; MSE: mean")
    print(f"{'method':<9}" + "".join(f"{c:>13}" for c in COLUMNS) + f"{'s/MP':>9}")
    for method, results in rows.items():  # "oracle": the ground truth in the band, a bound (see above)
        means = [np.mean([r[c] for r in results if c in r]) for c in COLUMNS]
        print(f"{method:<9}" + "".join(f"{v:13.4f}" for v in means) + f"{seconds[method] / megapixels:9.3f}")


if __name__ == "__main__":
    main()
