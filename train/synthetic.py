"""Generated training data: shapes with soft edges on textured backgrounds, as image/mask folders.

Each image is one or two shapes (ellipses, polygons; blurred, anti-aliased edges; together at least 4% of the
frame, as a salient object is) of a plainly lit colour over a background of gradients, stripes and noise. With
``hair`` the shapes grow thin curved strands, drawn at 4x and reduced, so the alpha has the fractional,
sub-pixel structures of hair and fur that edge refinement is about.

Made here, by code, so it may be used and shipped freely: for tests, for checking that training really
learns, and for training the MNet refiner on composites with a known alpha.

    python -m train.synthetic out/ --count 200 --size 160     # out/images/*.png, out/masks/*.png
    python -m train.synthetic dim/ --count 400 --size 320 --layers --hair   # + fg/ bg/ alpha/: `--data dim:dim`
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

MIN_AREA = 0.04  # the smallest share of the frame the shapes cover: thinner slivers are drawn again


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random texture: a colour gradient plus stripes plus noise. Shape: (size, size, 3) float 0..255."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(0, 255, 3)
    tilt = rng.uniform(-120, 120, (2, 3))
    angle = rng.uniform(0, np.pi)
    frequency = rng.uniform(4, 20)
    stripes = np.sin((x * np.cos(angle) + y * np.sin(angle)) * frequency * 2 * np.pi)[..., None]
    texture = base + x[..., None] * tilt[0] + y[..., None] * tilt[1] + stripes * rng.uniform(10, 50, 3)
    return texture + rng.normal(0, rng.uniform(3, 20), (size, size, 3))


def _object(rng: np.random.Generator, size: int) -> np.ndarray:
    """An object's surface: one colour, lit by a soft gradient, with fine noise. Shape: (size, size, 3) float."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    light = 1.0 + 0.25 * ((x - 0.5) * rng.uniform(-1, 1) + (y - 0.5) * rng.uniform(-1, 1))
    return rng.uniform(0, 255, 3) * light[..., None] + rng.normal(0, 4, (size, size, 3))


def _strands(rng: np.random.Generator, canvas: Image.Image) -> None:
    """Draw hair-like strands growing out of the shapes already on ``canvas``: thin polylines, gently bent,
    one to three canvas pixels wide (a fraction of a pixel once the canvas is reduced)."""
    filled = np.argwhere(np.asarray(canvas) > 127)
    if len(filled) == 0:
        return
    draw = ImageDraw.Draw(canvas)
    centre = filled.mean(axis=0)[::-1]
    side = canvas.size[0]
    for _ in range(int(rng.integers(60, 250))):
        point = filled[rng.integers(len(filled))][::-1].astype(np.float64)
        angle = np.arctan2(*(point - centre)[::-1]) + rng.normal(0, 0.6)
        bend = rng.normal(0, 0.08)
        step = side * rng.uniform(0.004, 0.012)
        points = [tuple(point)]
        for _ in range(int(rng.integers(8, 30))):
            angle += bend + rng.normal(0, 0.05)
            point = point + step * np.array([np.cos(angle), np.sin(angle)])
            points.append(tuple(point))
        draw.line(points, fill=255, width=int(rng.integers(1, 4)))


def _shape_alpha(rng: np.random.Generator, size: int, hair: bool = False) -> np.ndarray:
    """One or two random shapes (ellipses, polygons) with a soft, blurred edge; with ``hair``, strands growing
    out of them (drawn at 4x). Shape: (size, size) float 0..1."""
    if hair:
        canvas = Image.new("L", (size * 4, size * 4), 0)
        canvas.paste(Image.fromarray(np.round(_shape_alpha(rng, size * 2) * 255).astype(np.uint8)).resize(canvas.size))
        _strands(rng, canvas)
        return np.asarray(canvas.reduce(4), np.float32) / 255.0
    while True:  # a salient object: shapes that cover under MIN_AREA of the frame (slivers) are drawn again
        canvas = _shapes(rng, size)
        if np.count_nonzero(np.asarray(canvas) > 127) >= MIN_AREA * canvas.size[0] * canvas.size[1]:
            break
    blurred = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3.0))).resize(
        (size, size), Image.Resampling.BILINEAR
    )
    return np.asarray(blurred, np.float32) / 255.0


def _shapes(rng: np.random.Generator, size: int) -> Image.Image:
    """One or two ellipses or polygons in the middle of the frame, drawn at 2x (hard edges, 0 or 255)."""
    canvas = Image.new("L", (size * 2, size * 2), 0)  # drawn at 2x, then reduced: anti-aliased edges
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(1, 3)):
        centre = rng.uniform(0.6, 1.4, 2) * size  # (in the 2x canvas) the middle 40% of the frame
        radius = rng.uniform(0.3, 0.6) * size
        if rng.random() < 0.5:
            ratio = rng.uniform(0.5, 1.0)
            draw.ellipse(
                [centre[0] - radius, centre[1] - radius * ratio, centre[0] + radius, centre[1] + radius * ratio],
                fill=255,
            )
        else:
            corners = rng.integers(3, 8)
            angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
            reach = radius * rng.uniform(0.6, 1.0, corners)
            points = [
                (centre[0] + r * np.cos(a), centre[1] + r * np.sin(a)) for a, r in zip(angles, reach, strict=True)
            ]
            draw.polygon(points, fill=255)
    return canvas


def sample(seed: int, size: int, hair: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One composite: (image, alpha, foreground, background), uint8, reproducible from ``seed``.

    Shape: image, foreground, background (size, size, 3); alpha (size, size).
    """
    rng = np.random.default_rng(seed)
    alpha = _shape_alpha(rng, size, hair)
    foreground = np.clip(_object(rng, size), 0, 255)
    background = np.clip(_texture(rng, size), 0, 255)
    image = foreground * alpha[..., None] + background * (1 - alpha[..., None])
    as_uint8 = [np.round(a).astype(np.uint8) for a in (image, alpha * 255, foreground, background)]
    return as_uint8[0], as_uint8[1], as_uint8[2], as_uint8[3]


def write_dataset(
    folder: Path, count: int, size: int, seed: int = 0, *, with_layers: bool = False, hair: bool = False
) -> Path:
    """``folder/images`` and ``folder/masks`` (and ``fg``/``bg``/``alpha`` with ``with_layers``), PNG."""
    for name in ("images", "masks", *(("fg", "bg", "alpha") if with_layers else ())):
        (folder / name).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, alpha, foreground, background = sample(seed * 1_000_003 + i, size, hair)
        stem = f"{i:05d}.png"
        Image.fromarray(image).save(folder / "images" / stem)
        Image.fromarray(alpha).save(folder / "masks" / stem)
        if with_layers:
            Image.fromarray(foreground).save(folder / "fg" / stem)
            Image.fromarray(background).save(folder / "bg" / stem)
            Image.fromarray(alpha).save(folder / "alpha" / stem)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", action="store_true", help="also write fg/, bg/ and alpha/ (DIM layout)")
    parser.add_argument("--hair", action="store_true", help="shapes grow thin hair-like strands (soft alpha)")
    args = parser.parse_args()
    write_dataset(args.folder, args.count, args.size, args.seed, with_layers=args.layers, hair=args.hair)


if __name__ == "__main__":
    main()
