"""Benchmark ``cutout image`` against model-only throughput and rembg, in one run (not part of the tests).

    python tests/benchmarks/bench_image.py                      # 40 images, cutout + model-only (+ rembg if found)
    python tests/benchmarks/bench_image.py --rembg /path/to/rembg --scale 4
    python tests/benchmarks/bench_image.py --scale 1 --variant='--refine guided' --variant=--no-foreground-estimation

It builds a 40-image set of mixed sizes (640x480 up to 4000x3000, JPEG) from the real photos in
../shared/eval, then measures, on the same machine in the same run:
  (a) model-only: the onnx backend's inference alone on a preprocessed 320x320 input, images/s;
  (b) ``cutout image SET OUT`` end to end (decode, infer, compose, PNG encode, write), images/s and peak RSS,
      ``--repeat`` times, each run between two model-only measurements and compared with their mean (this
      machine's speed drifts by 10% within minutes); the ratio reported is the median of those comparisons;
  (c) ``rembg p -m u2netp SET OUT`` when rembg is installed (U2NET_HOME is pointed at a copy of the same
      u2netp.onnx, so it runs offline), images/s and peak RSS, after a first run on one image (its first start
      in a new environment compiles and caches code);
and with ``--scale 4`` also (b) on a 4x larger set, to show that peak RSS does not grow with the input count.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CUTOUT_SHARED", ROOT.parent / "shared"))
SIZES = [
    (640, 480),
    (800, 600),
    (1024, 768),
    (1280, 960),
    (1600, 1200),
    (2048, 1536),
    (2560, 1920),
    (3264, 2448),
    (4000, 3000),
]  # noqa: E501
MEASURE_RSS = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
    "e = time.perf_counter() - t; "
    "print(r.returncode, e, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
    "sys.stderr.write(r.stderr.decode()[-2000:] if r.returncode else '')"
)


def build_set(folder: Path, count: int) -> None:
    """``count`` JPEGs cycling through SIZES (every other one portrait), made from real photos."""
    sources = sorted((SHARED / "eval" / "people").glob("*.jpg")) + sorted(
        (SHARED / "eval" / "sod" / "images").glob("*")
    )
    if not sources:
        sys.exit(f"no photos found under {SHARED / 'eval'}; set CUTOUT_SHARED")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        width, height = SIZES[i % len(SIZES)]
        if (i // len(SIZES)) % 2:
            width, height = height, width
        photo = Image.open(sources[i % len(sources)]).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
        photo.save(folder / f"img{i:03d}.jpg", quality=90)


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of ``command`` run in a fresh process."""
    result = subprocess.run([sys.executable, "-c", MEASURE_RSS, *command], capture_output=True, text=True, env=env)
    fields = result.stdout.split()
    if len(fields) != 3:  # the command could not be started (the measuring wrapper failed)
        sys.exit(f"{' '.join(command)} could not be run:\n{result.stderr}")
    code, seconds, rss_kib = fields
    if code != "0":
        sys.exit(f"{' '.join(command)} failed ({code}):\n{result.stderr}")
    return float(seconds), int(rss_kib) / 1024


def model_only(onnx: Path, runs: int) -> tuple[float, str]:
    """The onnx backend's best images/s at 320x320 with nothing else running, and the configuration.

    Two configurations are measured and the faster one is the reference: one inference at a time on every core
    (what ``cutout.remove`` uses), and one single-threaded inference per core in parallel (what ``cutout image``
    uses for batches).
    """
    from cutout.backends import Device
    from cutout.backends.onnx_backend import OnnxPredictor
    from cutout.pipeline import parallel_map
    from cutout.registry import get_spec

    x = np.random.default_rng(0).standard_normal((1, 3, 320, 320)).astype(np.float32)
    results = []
    for threads in (None, 1):
        predictor = OnnxPredictor(get_spec("u2netp"), Device("cpu"), onnx, threads=threads)
        workers = predictor.concurrency
        list(parallel_map(predictor.predict, [x] * (2 * workers), workers=workers))
        started = time.perf_counter()
        list(parallel_map(predictor.predict, [x] * runs, workers=workers))
        name = "all cores per image" if threads is None else f"{workers} single-thread images at once"
        results.append((runs / (time.perf_counter() - started), name))
    return max(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--scale", type=int, default=4, help="also run cutout on count*scale images (RSS check)")
    parser.add_argument("--rembg", default=shutil.which("rembg"), help="rembg executable (default: on PATH)")
    parser.add_argument("--runs", type=int, default=40, help="model-only inference runs")
    parser.add_argument("--repeat", type=int, default=3, help="cutout runs on the set, each between model-only runs")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="also run cutout image with these extra flags, e.g. --variant='--refine guided' (repeatable)",
    )
    args = parser.parse_args()
    if args.rembg and shutil.which(args.rembg) is None:
        parser.error(f"--rembg {args.rembg}: no such executable (leave the option out to skip rembg)")

    from cutout.convert import resolve_weights
    from cutout.registry import get_spec

    onnx = resolve_weights(get_spec("u2netp"), "onnx")
    # pip writes the bytecode of what it installs; a source checkout may not have it (PYTHONDONTWRITEBYTECODE=1 on
    # the project machine), and compiling cutout's modules on every start would cost each run ~75 ms
    compileall.compile_dir(ROOT / "cutout", quiet=1)
    work = Path(tempfile.mkdtemp(prefix="cutout-bench-"))
    env = {**os.environ, "CUTOUT_OFFLINE": "1"}
    try:
        build_set(work / "set", args.count)
        rows = []
        cutout = [sys.executable, "-m", "cutout", "image", "-q", "--overwrite"]
        first, how = model_only(onnx, args.runs)
        references = [first]
        ratios, rates, peaks = [], [], []
        for _ in range(max(1, args.repeat)):
            seconds, peak = run_measured([*cutout, str(work / "set"), str(work / "out")], env)
            references.append(model_only(onnx, args.runs)[0])
            rates.append(args.count / seconds)
            peaks.append(peak)
            ratios.append(rates[-1] / ((references[-2] + references[-1]) / 2))
        median = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
        rate_cutout, rss = rates[median], max(peaks)  # the median run's speed; the highest peak of them all
        rows.append((f"cutout image, {args.count} images (the median run of {len(ratios)})", rate_cutout, rss))
        cores = str(os.cpu_count() or 1)
        seconds, rss_lean = run_measured([*cutout, "--threads", cores, str(work / "set"), str(work / "out")], env)
        rate_lean = args.count / seconds
        rows.append((f"cutout image --threads {cores}, {args.count} images", rate_lean, rss_lean))
        variant_rates = []
        for variant in args.variant:
            seconds, rss_variant = run_measured([*cutout, *variant.split(), str(work / "set"), str(work / "out")], env)
            variant_rates.append((variant, args.count / seconds))
            rows.append((f"cutout image {variant}, {args.count} images", args.count / seconds, rss_variant))
        rate_rembg = rss_rembg = None
        if args.rembg:
            home = work / "u2net"
            for place in (home / "u2netp.onnx", home / "models" / "u2netp" / "u2netp.onnx"):
                place.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(onnx, place)
            # a first run on one image: in a new environment rembg's first start compiles pymatting's functions
            # with numba and caches them (measured: 0.68 instead of 1.72 images/s, 1235 instead of 941 MiB)
            one = work / "one"
            one.mkdir()
            shutil.copy(min((work / "set").iterdir()), one)
            rembg_env = {**env, "U2NET_HOME": str(home)}
            run_measured([args.rembg, "p", "-m", "u2netp", str(one), str(work / "out-one")], rembg_env)
            seconds, rss_rembg = run_measured(
                [args.rembg, "p", "-m", "u2netp", str(work / "set"), str(work / "out-rembg")], rembg_env
            )
            rate_rembg = args.count / seconds
            rows.append((f"rembg p -m u2netp, {args.count} images", rate_rembg, rss_rembg))
        if args.scale > 1:
            big = work / "set-big"
            build_set(big, args.count * args.scale)
            seconds, rss_big = run_measured([*cutout, str(big), str(work / "out-big")], env)
            rows.append((f"cutout image, {args.count * args.scale} images", args.count * args.scale / seconds, rss_big))
        # the other runs are compared with the mean of every model-only measurement, one more taken after them
        references.append(model_only(onnx, args.runs)[0])
        rate_all = sum(references) / len(references)
        trail = "/".join(f"{r:.2f}" for r in references)
        rows.insert(0, (f"model-only (onnx 320x320, {how}), mean of {trail}", rate_all, None))
        print(f"\n{'what':72} {'images/s':>9} {'peak RSS MiB':>13}")
        for name, rate, peak in rows:
            print(f"{name:72} {rate:9.2f} {'' if peak is None else f'{peak:13.0f}'}")
        lean = f"--threads {cores}"
        each = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"\ncutout / model-only, {args.count} images: {ratios[median]:.2f}, median of {each} (target 0.8)")
        print(f"{lean}: {rate_lean / rate_all:.2f} of model-only")
        for variant, rate in variant_rates:
            print(f"cutout image {variant}: {rate / rate_all:.2f} of model-only")
        if rate_rembg and rss_rembg:
            print(
                f"cutout / rembg: {rate_cutout / rate_rembg:.2f}x, {lean}: {rate_lean / rate_rembg:.2f}x (target 1.8)"
            )
            print(f"peak RSS cutout / rembg: {rss / rss_rembg:.2f}, {lean}: {rss_lean / rss_rembg:.2f} (target < 1)")
        if args.scale > 1:
            print(f"peak RSS {args.count * args.scale} / {args.count} images: {rows[-1][2] / rss:.2f} (target <= 1.10)")
            print(f"cutout / model-only on {args.count * args.scale} images: {rows[-1][1] / rate_all:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
