"""The real U2-NetP (rembg's u2netp.onnx) on both backends against rembg's reference outputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cutout
from cutout.backends import Device
from cutout.backends.onnx_backend import OnnxPredictor
from cutout.registry import get_spec

pytestmark = pytest.mark.integration
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def reference_io(reference: Path) -> tuple[np.ndarray, np.ndarray]:
    x = np.load(reference / "anime-girl-1_rembg_input_1x3x320x320_f32.npy")
    y = np.load(reference / "anime-girl-1_ort_u2netp_outputs_7x320x320_f32.npy")
    return x, y


def _assert_outputs_match(outputs: list[np.ndarray], expected: np.ndarray) -> None:
    assert len(outputs) == 7
    for i, output in enumerate(outputs):
        diff = np.abs(output[0, 0] - expected[i]).max()
        assert diff <= 1e-4, f"output {i}: max abs diff {diff:.2e} > 1e-4"


def test_imported_onnx_weights_reproduce_reference_on_torch(
    u2netp_onnx: Path, reference_io: tuple[np.ndarray, np.ndarray]
) -> None:
    from cutout.convert import load_torch_model

    model = load_torch_model(get_spec("u2netp"), u2netp_onnx)
    with torch.inference_mode():
        outputs = [o.numpy() for o in model(torch.from_numpy(reference_io[0]))]
    _assert_outputs_match(outputs, reference_io[1])


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_both_backends_reproduce_reference(
    backend: str, u2netp_onnx: Path, reference_io: tuple[np.ndarray, np.ndarray]
) -> None:
    session = cutout.new_session("u2netp", backend=backend, device="cpu")
    _assert_outputs_match(session.predictor.run_all(reference_io[0]), reference_io[1])


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_remove_matches_rembg_expected_png(backend: str, u2netp_onnx: Path, reference: Path) -> None:
    source = reference / "rembg" / "anime-girl-1.jpg"
    expected = np.asarray(Image.open(reference / "rembg" / "anime-girl-1.u2netp.png")).astype(int)
    png = cutout.remove(source.read_bytes(), model="u2netp", backend=backend)
    assert isinstance(png, bytes)
    result = np.asarray(Image.open(io.BytesIO(png))).astype(int)
    assert result.shape == expected.shape
    alpha_diff = np.abs(result[..., 3] - expected[..., 3])
    assert alpha_diff.max() <= 2 and alpha_diff.mean() <= 0.05, (alpha_diff.max(), alpha_diff.mean())
    # rembg premultiplies colour by alpha; where alpha is 255 the colours must agree.
    opaque = expected[..., 3] == 255
    assert opaque.sum() > 100
    assert np.abs(result[..., :3] - expected[..., :3])[opaque].max() <= 2


def test_static_batch_file_runs_a_batch_one_by_one(u2netp_onnx: Path, reference_io: tuple) -> None:
    predictor = OnnxPredictor(get_spec("u2netp"), Device("cpu"), u2netp_onnx)
    assert predictor.static_batch == 1
    batch = np.concatenate([reference_io[0], reference_io[0][:, :, ::-1]])
    masks = predictor.predict(batch)
    assert masks.shape == (2, 320, 320)
    np.testing.assert_allclose(masks[0], reference_io[1][0], atol=1e-4)
