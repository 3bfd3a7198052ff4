"""Preprocessing and postprocessing are pure functions of the spec; check them against the official rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cutout.preprocess import area_resize, mask_from_output, model_input, normalize_pixels, plan_input_size
from cutout.registry import SPECS, get_spec


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (1080, 1920, (512, 896)),
        (400, 600, (384, 576)),
        (200, 300, (512, 768)),
        (1000, 500, (992, 480)),
        (300, 200, (768, 512)),
    ],
)
def test_modnet_input_size_follows_the_reference_rule(height: int, width: int, expected: tuple[int, int]) -> None:
    assert plan_input_size(get_spec("modnet").input, height, width) == expected


def test_u2net_input_size_is_fixed() -> None:
    assert plan_input_size(get_spec("u2netp").input, 1080, 1920) == (320, 320)


def test_area_resize_equals_torch_area_interpolation() -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 3, 37, 53), dtype=np.float32)
    for size in [(16, 32), (64, 96), (37, 20), (5, 53)]:
        expected = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="area").numpy()
        np.testing.assert_allclose(area_resize(x, *size), expected, atol=1e-6)


def test_u2netp_input_reproduces_rembg_exactly(reference: Path) -> None:
    rgb = np.asarray(Image.open(reference / "rembg" / "anime-girl-1.jpg").convert("RGB"))
    expected = np.load(reference / "anime-girl-1_rembg_input_1x3x320x320_f32.npy")
    np.testing.assert_array_equal(model_input(get_spec("u2netp"), rgb), expected)


@pytest.mark.parametrize("model", ["u2netp", "modnet"])
@pytest.mark.parametrize("top", [0, 1, 229, 255])
def test_normalize_pixels_gives_exactly_the_per_pixel_arithmetic(model: str, top: int) -> None:
    norm = get_spec(model).normalization
    rgb = np.random.default_rng(top).integers(0, top + 1, (29, 31, 3), dtype=np.uint8)
    if norm.divide_by == "max":
        chw = rgb.astype(np.float64).transpose(2, 0, 1) / max(float(rgb.max()), 1e-6)
        expected = ((chw - np.reshape(norm.mean, (3, 1, 1))) / np.reshape(norm.std, (3, 1, 1))).astype(np.float32)
    else:
        chw = rgb.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        mean, std = (np.asarray(v, np.float32).reshape(3, 1, 1) for v in (norm.mean, norm.std))
        expected = (chw - mean) / std
    result = normalize_pixels(norm, rgb)
    assert result.dtype == np.float32 and result.shape == (3, 29, 31)
    np.testing.assert_array_equal(result, expected)
    with pytest.raises(ValueError, match="uint8"):
        normalize_pixels(norm, rgb.astype(np.float32))


def test_modnet_input_is_normalised_to_minus_one_one() -> None:
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, 32:] = 255
    x = model_input(get_spec("modnet"), rgb)
    assert x.shape == (1, 3, 512, 512)
    assert x.min() == -1.0 and x.max() == 1.0


def test_model_input_rejects_wrong_arrays() -> None:
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        model_input(get_spec("u2netp"), np.zeros((10, 10), np.uint8))


def test_u2net_mask_is_stretched_and_truncated() -> None:
    spec = get_spec("u2netp")
    prediction = np.linspace(0.2, 0.6, 320 * 320, dtype=np.float32).reshape(320, 320)
    mask = mask_from_output(spec, prediction, 320, 320)
    assert mask.dtype == np.uint8 and mask.min() == 0 and mask.max() == 255


def test_constant_prediction_gives_an_empty_mask_not_nan() -> None:
    mask = mask_from_output(get_spec("u2netp"), np.full((320, 320), 0.5, np.float32), 40, 30)
    assert mask.shape == (40, 30) and mask.max() == 0


def test_modnet_mask_is_not_stretched_and_truncates() -> None:
    mask = mask_from_output(get_spec("modnet"), np.full((32, 32), 0.999, np.float32), 64, 48)
    assert mask.shape == (64, 48) and (mask == 254).all()


def test_every_spec_has_weights_with_hashes_and_a_licence() -> None:
    for spec in SPECS.values():
        assert spec.license and spec.weights
        for weights in spec.weights:
            assert weights.hashes and weights.sources
            assert all(h.split(":")[0] in ("sha256", "md5", "sha384") for h in weights.hashes)
