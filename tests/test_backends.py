"""Backend and device choice: auto picks what is really there; a missing GPU is a loud error."""

from __future__ import annotations

import pytest

from cutout.backends import (
    Device,
    choose_backend,
    create_predictor,
    onnx_cuda_available,
    torch_cuda_available,
)
from cutout.errors import BackendError, UsageError
from cutout.registry import get_spec

no_gpu = pytest.mark.skipif(onnx_cuda_available() or torch_cuda_available(), reason="a GPU is present")


@pytest.mark.parametrize(
    ("text", "expected"), [("cpu", "cpu"), ("CUDA", "cuda:0"), ("cuda:3", "cuda:3"), ("auto", "auto")]
)
def test_device_parse(text: str, expected: str) -> None:
    assert str(Device.parse(text)) == expected


@pytest.mark.parametrize("text", ["gpu", "cuda:", "cuda:x", "tpu:0"])
def test_device_parse_rejects_unknown(text: str) -> None:
    with pytest.raises(UsageError, match="use auto, cpu, cuda or cuda:N"):
        Device.parse(text)


def test_unknown_backend_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="auto, onnx or torch"):
        choose_backend("tensorflow", Device("cpu"))


@no_gpu
def test_auto_is_onnx_on_cpu_here() -> None:
    assert choose_backend("auto", Device("auto")) == ("onnx", Device("cpu"))


@no_gpu
@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_asking_for_a_missing_gpu_is_an_error_not_a_cpu_fallback(backend: str) -> None:
    if backend == "torch":
        pytest.importorskip("torch")
    with pytest.raises(BackendError, match="cuda"):
        create_predictor(get_spec("u2netp"), backend=backend, device="cuda:0")
