"""Check cutout's GPU paths on a machine with CUDA, and print what they measure (not part of the tests).

    python tests/benchmarks/check_gpu.py                      # every check
    python tests/benchmarks/check_gpu.py masks guided         # some of them

The CPU-only CI cannot run these. Each check prints its figures and goes on when another fails:
  env       torch, CUDA and onnxruntime's providers; what ``--backend auto --device auto`` resolves to
  masks     U2-NetP on torch/CUDA against onnxruntime on the CPU, on real photos from ../shared/eval: mask
            differences in grey levels, in fp16 (what cutout runs) and float32, and images/s at batches 1, 8, 32
  guided    the torch guided filter on CUDA against numpy (target: within 1e-4), and ``--refine guided``
  commands  ``cutout image`` with ``--backend torch --device cuda`` (plain, batched, ``--refine guided``) and
            ``cutout video`` to WebM, with their exit codes and speed
  training  ``cutout train`` of U2-NetP, MODNet and MNet on generated data for a few steps on CUDA (AMP), then
            each exported model in ``cutout image`` (and MNet as ``--refine mnet``)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CUTOUT_SHARED", ROOT.parent / "shared"))
PHOTOS = [
    SHARED / "eval" / "people" / "p3m_p_015cd10e.jpg",
    SHARED / "eval" / "people" / "p3m_p_07141906.jpg",
    SHARED / "eval" / "people" / "kodak_kodim04.png",
    SHARED / "eval" / "matting" / "images" / "am_GT01.png",
]
CLIP = SHARED / "eval" / "video" / "mdn_rabbit320_audio.mp4"
WORK = Path(tempfile.mkdtemp(prefix="cutout-gpu-"))


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "cutout", *args], capture_output=True, text=True, timeout=timeout)
    print(f"$ cutout {' '.join(args)}\n  exit {result.returncode} in {time.perf_counter() - started:.1f} s")
    for line in (result.stdout + result.stderr).strip().splitlines()[-4:]:
        print("  |", line[:200])
    return result


def env() -> None:
    import onnxruntime
    import torch

    from cutout.backends import Device, choose_backend

    print("torch", torch.__version__, "CUDA", torch.version.cuda, "available:", torch.cuda.is_available())
    if torch.cuda.is_available():
        print("GPU", torch.cuda.get_device_name(0), "count", torch.cuda.device_count())
    print("onnxruntime", onnxruntime.__version__, onnxruntime.get_available_providers())
    print("auto resolves to", choose_backend("auto", Device.parse("auto")))


def masks() -> None:
    import torch

    import cutout
    from cutout.io.images import load_image, rgb_array

    images = [rgb_array(load_image(path)) for path in PHOTOS]
    reference = [cutout.new_session("u2netp", backend="onnx", device="cpu").mask(rgb) for rgb in images]
    session = cutout.new_session("u2netp", backend="torch", device="cuda")
    predictor = session.predictor
    batch = np.random.default_rng(0).standard_normal((32, 3, 320, 320)).astype(np.float32)
    for mode in ("fp16", "float32"):
        if mode == "float32":
            predictor.model = predictor.model.float()  # type: ignore[attr-defined]
            predictor.half = False  # type: ignore[attr-defined]
        for path, rgb, expected in zip(PHOTOS, images, reference, strict=True):
            error = np.abs(session.mask(rgb).astype(int) - expected)
            share = (error > 2).mean()
            print(f"{mode} {path.name}: mean {error.mean():.3f}, max {error.max()}, > 2 levels {share:.2%}")
        for size in (1, 8, 32):
            predictor.predict(batch[:size])
            torch.cuda.synchronize()
            runs = max(96 // size, 3)
            started = time.perf_counter()
            for _ in range(runs):
                predictor.predict(batch[:size])
            print(f"{mode} batch {size}: {runs * size / (time.perf_counter() - started):.0f} images/s")


def guided() -> None:
    import torch

    import cutout
    from cutout.io.images import load_image, rgb_array
    from cutout.refine.guided import fast_guided_filter, refine_alpha_guided
    from cutout.refine.guided_torch import fast_guided_filter_torch, refine_alpha_guided_torch

    rng = np.random.default_rng(0)
    worst = 0.0
    for scale in (1, 2, 3, 4):
        for eps in (1e-2, 1e-3, 1e-4):
            guide = rng.random((2, 193, 257, 3), dtype=np.float32)
            source = np.clip(guide.mean(-1) + rng.normal(0, 0.1, (2, 193, 257)), 0, 1).astype(np.float32)
            expected = np.stack([fast_guided_filter(g, s, 8, eps, scale) for g, s in zip(guide, source, strict=True)])
            guide_gpu = torch.from_numpy(guide).permute(0, 3, 1, 2).cuda()
            result = fast_guided_filter_torch(guide_gpu, torch.from_numpy(source)[:, None].cuda(), 8, eps, scale)
            worst = max(worst, float(np.abs(result[:, 0].cpu().numpy() - expected).max()))
    print(f"fast guided filter, torch on CUDA vs numpy: at most {worst:.2e} apart (target 1e-4)")
    session = cutout.new_session("u2netp", backend="onnx", device="cpu")
    for path in PHOTOS:
        rgb = rgb_array(load_image(path))
        mask = session.mask(rgb)
        started = time.perf_counter()
        on_gpu = refine_alpha_guided_torch(rgb, mask, "cuda")
        took = time.perf_counter() - started
        error = np.abs(refine_alpha_guided(rgb, mask).astype(int) - on_gpu)
        print(f"--refine guided {path.name}: CUDA vs numpy at most {error.max()} levels apart, {took * 1000:.0f} ms")


def commands() -> None:
    from PIL import Image

    photos = WORK / "photos"
    photos.mkdir(exist_ok=True)
    for path in PHOTOS:
        Image.open(path).convert("RGB").save(photos / f"{path.stem}.jpg", quality=95)
    gpu = ["--backend", "torch", "--device", "cuda", "--overwrite"]
    cli("image", str(photos), str(WORK / "out"), *gpu)
    cli("image", str(photos), str(WORK / "out-guided"), *gpu, "--refine", "guided")
    cli("image", str(photos), str(WORK / "out-batch"), *gpu, "--batch-size", "4")
    many = WORK / "many"
    many.mkdir(exist_ok=True)
    photo = Image.open(PHOTOS[0]).convert("RGB").resize((1600, 1200))
    for i in range(64):
        photo.rotate(i * 3).save(many / f"{i:03d}.jpg", quality=90)
    for backend in (gpu, ["--backend", "onnx", "--device", "cpu", "--overwrite"]):
        started = time.perf_counter()
        result = cli("image", str(many), str(WORK / "many-out"), "-q", *backend)
        print(f"  64 photos of 1600x1200: {64 / (time.perf_counter() - started):.1f} images/s with start-up")
        assert result.returncode == 0
    cli("video", str(CLIP), str(WORK / "clip.webm"), *gpu, "--refine", "guided")


def training() -> None:
    data = WORK / "generated"
    generate = [sys.executable, "-m", "train.synthetic", str(data), "--count", "160", "--size", "320"]
    generate += ["--layers", "--hair"]  # fg/ bg/ alpha/ too, for MNet
    subprocess.run(generate, check=True)
    models = WORK / "models"
    common = ["--device", "cuda", "--out-dir", str(WORK / "runs"), "--export-dir", str(models), "--workers", "4"]
    steps = ["--max-steps", "40", "--batch-size", "16"]
    cli("train", "--model", "u2netp", "--data", str(data), "--init", "u2netp", *steps, "--name", "u2netp-gpu", *common)
    cli("train", "--model", "modnet", "--data", str(data), *steps, "--size", "256", "--name", "modnet-gpu", *common)
    cli("train", "--model", "mnet", "--data", f"dim:{data}", *steps, "--name", "mnet-gpu", *common)
    photos, gpu = str(WORK / "photos"), ["--backend", "torch", "--device", "cuda", "--overwrite"]
    cli("image", photos, str(WORK / "out-u2netp"), "--model", str(models / "u2netp-gpu"), *gpu)
    cli("image", photos, str(WORK / "out-modnet"), "--model", str(models / "modnet-gpu"), *gpu)
    cli("image", photos, str(WORK / "out-mnet"), "--refine", "mnet", "--refiner", str(models / "mnet-gpu"), *gpu)


CHECKS: dict[str, Callable[[], None]] = {
    "env": env,
    "masks": masks,
    "guided": guided,
    "commands": commands,
    "training": training,
}


def main() -> None:
    wanted = sys.argv[1:] or list(CHECKS)
    unknown = [name for name in wanted if name not in CHECKS]
    if unknown:
        sys.exit(f"unknown checks {unknown}; choose from {', '.join(CHECKS)}")
    if not all(path.is_file() for path in [*PHOTOS, CLIP]):
        sys.exit(f"the photos and clip of {SHARED / 'eval'} are needed; set CUTOUT_SHARED")
    if "commands" not in wanted and "training" in wanted:
        wanted.insert(wanted.index("training"), "commands")  # training's exports run on the commands' photos
    for name in wanted:
        print(f"== {name}", flush=True)
        try:
            CHECKS[name]()
        except Exception:  # report and go on: every check is independent
            traceback.print_exc()
    print(f"outputs in {WORK}")


if __name__ == "__main__":
    main()
