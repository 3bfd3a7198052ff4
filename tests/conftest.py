"""Shared fixtures: where ../shared is, and the real U2-NetP weights.

Integration tests need ``../shared`` (reference tensors, real images) and the real u2netp.onnx. Locally a
missing one skips those tests; in CI (``CI=true``) it is a failure, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _need(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI requires this: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder (or $CUTOUT_SHARED)."""
    path = Path(os.environ.get("CUTOUT_SHARED", ROOT.parent / "shared"))
    if not (path / "reference" / "FACTS.md").is_file():
        _need(f"../shared not found at {path}")
    return path


@pytest.fixture(scope="session")
def reference(shared: Path) -> Path:
    return shared / "reference"


@pytest.fixture(scope="session")
def u2netp_onnx() -> Path:
    """The real rembg u2netp.onnx from the cutout cache (CI fetches it with `cutout weights pull u2netp`)."""
    from cutout.registry import get_spec
    from cutout.weights import cached_path

    spec = get_spec("u2netp")
    wf = spec.weight_file("onnx")
    assert wf is not None
    path = cached_path(spec, wf)
    if not path.is_file():
        _need(f"real u2netp.onnx not in the cache at {path}; run `cutout weights pull u2netp`")
    return path


@pytest.fixture
def build_onnx() -> Callable[..., Path]:
    """Writes a small ONNX model (opset 17) from onnx.helper nodes: ``build(path, nodes, inputs, outputs,
    initializers=())``, inputs and outputs given as (name, "FLOAT" or another TensorProto type, shape or None)."""
    onnx = pytest.importorskip("onnx")

    def build(
        path: Path, nodes: list[Any], inputs: list[tuple], outputs: list[tuple], initializers: tuple = ()
    ) -> Path:
        def tensors(specs: list[tuple]) -> list[Any]:
            return [onnx.helper.make_tensor_value_info(n, getattr(onnx.TensorProto, k), s) for n, k, s in specs]

        graph = onnx.helper.make_graph(nodes, path.stem, tensors(inputs), tensors(outputs), list(initializers))
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, path)
        return path

    return build


def _as_shown(frame: Any, matrix: Any) -> Any:
    """A stored video frame as a player shows it, by the definition of a display matrix (QuickTime's, FFmpeg's):
    the pixel at (x, y), y down, goes to (x, y) . [[a, b], [c, d]], the matrix's 16.16 fixed point entries 0, 1, 3
    and 4. Shape: (H, W, ...) -> (H, W, ...) or (W, H, ...), for matrices of quarter turns and mirrors."""
    import numpy as np

    a, b, c, d = (matrix[i] / 65536 for i in (0, 1, 3, 4))
    y, x = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    column, row = np.rint(x * a + y * c).astype(int), np.rint(x * b + y * d).astype(int)
    column, row = column - column.min(), row - row.min()
    out = np.zeros((row.max() + 1, column.max() + 1, *frame.shape[2:]), frame.dtype)
    out[row, column] = frame
    return out


@pytest.fixture
def as_shown() -> Callable[[Any, Any], Any]:
    """``as_shown(frame, matrix)``: a stored video frame as a player shows it (see _as_shown)."""
    return _as_shown


def _display_matrix(path: Path) -> list[int] | None:
    import av
    import numpy as np

    with av.open(str(path)) as container:
        data = next(container.decode(video=0)).side_data.get("DISPLAYMATRIX")
        return None if data is None else np.frombuffer(bytes(data), "=i4").tolist()


@pytest.fixture
def display_matrix() -> Callable[[Path], list[int] | None]:
    """``display_matrix(path)``: the first frame's display matrix (9 integers), None where it has none."""
    return _display_matrix
