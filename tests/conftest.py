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
