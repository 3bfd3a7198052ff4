"""ONNX <-> torch: imported ONNX weights, exported models with dynamic axes, derived cache files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cutout.errors import WeightsError
from cutout.registry import get_spec

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from cutout.convert import _exportable, export_onnx, load_torch_model, onnx_to_state_dict, resolve_weights  # noqa: E402
from cutout.models import build_model  # noqa: E402


def _torch_outputs(model: torch.nn.Module, x: np.ndarray, modnet: bool) -> list[np.ndarray]:
    with torch.inference_mode():
        if modnet:
            return [model(torch.from_numpy(x), True)[2].numpy()]
        return [o.numpy() for o in model(torch.from_numpy(x))]


def _max_diff(model: torch.nn.Module, onnx_path: Path, shapes: list[tuple[int, ...]], modnet: bool) -> float:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for i, shape in enumerate(shapes):
        x = np.random.default_rng(i).uniform(-2, 2, shape).astype(np.float32)
        expected = _torch_outputs(model, x, modnet)
        actual = session.run(None, {"input": x})
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert a.shape == e.shape == (shape[0], 1, shape[2], shape[3])
            worst = max(worst, float(np.abs(a - e).max()))
    return worst


@pytest.mark.integration
def test_u2netp_real_weights_export_agrees_with_torch(u2netp_onnx: Path, tmp_path: Path) -> None:
    model = load_torch_model(get_spec("u2netp"), u2netp_onnx)
    exported = export_onnx(model, tmp_path / "u2netp.onnx", metadata={"cutout.model": "u2netp"})
    # fp32 kernel noise: onnxruntime 1.32.0 differs from torch by up to 1.4e-4 on these random inputs;
    # one 8-bit alpha level is 3.9e-3, so 5e-4 still holds the exported masks to the same pixels.
    assert _max_diff(model, exported, [(1, 3, 320, 320), (2, 3, 288, 416)], modnet=False) <= 5e-4


def test_modnet_export_agrees_with_torch_at_two_sizes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("modnet").eval()
    exported = export_onnx(_exportable(model), tmp_path / "modnet.onnx")
    assert _max_diff(model, exported, [(1, 3, 512, 512), (2, 3, 384, 672)], modnet=True) <= 1e-4


@pytest.mark.integration
def test_modnet_reference_checkpoint_export_within_reference_tolerance(reference: Path, tmp_path: Path) -> None:
    # Random reference weights amplify fp32 noise ~1000x (modnet/README.md section 6): its 3e-4 limit applies.
    folder = reference / "modnet"
    model = load_torch_model(get_spec("modnet"), folder / "modnet_random.ckpt")
    session = ort.InferenceSession(str(export_onnx(_exportable(model), tmp_path / "m.onnx")))
    for size in ("512x512", "384x672"):
        x = np.load(folder / f"input_{size}.npy")
        expected = np.load(folder / f"out_{size}_inference_matte.npy")
        assert np.abs(session.run(None, {"input": x})[0] - expected).max() <= 3e-4


@pytest.mark.integration
def test_onnx_weights_do_not_fit_another_architecture(u2netp_onnx: Path) -> None:
    with pytest.raises(WeightsError, match="not a u2net export"):
        onnx_to_state_dict(u2netp_onnx, "u2net")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.pth", b"", "EOFError"),
        ("photo.pth", (Path(__file__).parents[1] / "examples" / "images" / "astronaut.jpg").read_bytes(), "holds only"),
        ("cut.pth", None, ""),
        ("text.onnx", b"not a model", ""),
    ],
)
def test_a_damaged_weights_file_is_one_clear_error(
    tmp_path: Path, name: str, content: bytes | None, reason: str
) -> None:
    path = tmp_path / name
    if content is None:  # a real checkpoint cut short, as an interrupted copy leaves it
        torch.save(build_model("u2netp").state_dict(), path)
        path.write_bytes(path.read_bytes()[:50_000])
    else:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=rf"cannot read .*{name} as weights \(.*{reason}.*\); it is damaged"):
        load_torch_model(get_spec("u2netp"), path)


def test_weights_inside_a_checkpoint_load_and_a_file_of_something_else_is_one_line(tmp_path: Path) -> None:
    # {"model_state_dict": ...} (PyTorch's tutorials) was refused as 686 missing keys; a list ended in an
    # AttributeError traceback, a tensor in "Boolean value of Tensor with more than one value is ambiguous"
    weights = build_model("u2netp").state_dict()
    for key in ("state_dict", "model_state_dict", "model", "net"):
        torch.save({"epoch": 3, key: weights, "optimizer_state_dict": {}}, tmp_path / f"{key}.pth")
        loaded = load_torch_model(get_spec("u2netp"), tmp_path / f"{key}.pth").state_dict()
        assert all(torch.equal(loaded[name], value) for name, value in weights.items()), key
    for name, content, what in [
        ("list.pth", [1, 2, 3], "a list"),
        ("tensor.pth", torch.zeros(3), "a Tensor"),
        ("numbered.pth", {1: torch.zeros(2)}, "a dict whose keys are not all names"),
    ]:
        torch.save(content, tmp_path / name)
        with pytest.raises(WeightsError, match=f"{name} holds {what}, not a model's weights .*'model_state_dict'"):
            load_torch_model(get_spec("u2netp"), tmp_path / name)


@pytest.mark.integration
def test_torch_weights_of_u2netp_are_derived_once_and_cached(
    u2netp_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path))
    monkeypatch.setenv("CUTOUT_OFFLINE", "1")
    (tmp_path / "models" / "u2netp").mkdir(parents=True)
    shutil.copy(u2netp_onnx, tmp_path / "models" / "u2netp" / "u2netp.onnx")
    derived = resolve_weights(get_spec("u2netp"), "torch")
    assert derived.name == "u2netp.converted.pth" and derived.parent == tmp_path / "models" / "u2netp"
    state = torch.load(derived, weights_only=True)
    reference = onnx_to_state_dict(u2netp_onnx, "u2netp")
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], reference[k]) for k in state)
    mtime = derived.stat().st_mtime_ns
    assert resolve_weights(get_spec("u2netp"), "torch").stat().st_mtime_ns == mtime


def test_missing_weights_offline_say_how_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path))
    monkeypatch.setenv("CUTOUT_OFFLINE", "1")
    with pytest.raises(WeightsError, match="cutout weights import modnet"):
        resolve_weights(get_spec("modnet"), "onnx")
