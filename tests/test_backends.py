"""Backend and device choice: auto picks what is really there; a missing GPU is a loud error."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from cutout.backends import (
    Device,
    choose_backend,
    create_predictor,
    onnx_cuda_available,
    torch_cuda_available,
)
from cutout.backends.onnx_backend import OnnxPredictor, optimized_graph_path
from cutout.errors import BackendError, Stopped, UsageError
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
    with pytest.raises(BackendError, match="cuda") as raised:
        create_predictor(get_spec("u2netp"), backend=backend, device="cuda:0")
    assert isinstance(raised.value, UsageError)  # the command's exit code 2: an option this machine cannot honour


def _predictor(weights: Path) -> OnnxPredictor:
    return OnnxPredictor(get_spec("u2netp"), Device("cpu"), weights, threads=1)


def test_cpu_sessions_keep_the_optimised_graph(u2netp_onnx: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path / "home"))
    weights = tmp_path / "u2netp.onnx"
    shutil.copy(u2netp_onnx, weights)
    batch = np.random.default_rng(0).normal(size=(1, 3, 320, 320)).astype(np.float32)
    first = _predictor(weights)
    assert first.session._model_path == str(weights)
    saved = list((tmp_path / "home" / "optimized").iterdir())
    assert [p.name for p in saved] == [optimized_graph_path(onnxruntime, weights).name]  # no .part left
    second = _predictor(weights)
    assert second.session._model_path == str(saved[0])  # loaded optimised, not optimised again
    np.testing.assert_array_equal(second.predict(batch), first.predict(batch))

    saved[0].write_bytes(b"not a model")  # damaged: the original is optimised again, the copy replaced
    third = _predictor(weights)
    assert third.session._model_path == str(weights)
    np.testing.assert_array_equal(third.predict(batch), first.predict(batch))
    assert _predictor(weights).session._model_path == str(saved[0])

    os.utime(weights, ns=(0, 0))  # a changed file gets a new copy; the old one goes
    assert _predictor(weights).session._model_path == str(weights)
    assert [p.name for p in (tmp_path / "home" / "optimized").iterdir()] == [
        optimized_graph_path(onnxruntime, weights).name
    ]
    assert optimized_graph_path(onnxruntime, weights) != saved[0]


def test_cpu_sessions_load_without_a_writable_cache(u2netp_onnx: Path, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "home").write_text("a file where the cache folder should be")
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path / "home"))
    predictor = _predictor(u2netp_onnx)
    assert predictor.session._model_path == str(u2netp_onnx)
    assert predictor.predict(np.zeros((1, 3, 320, 320), np.float32)).shape == (1, 320, 320)
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]


def test_a_cancelled_pipeline_stops_its_running_inferences(u2netp_onnx: Path) -> None:
    # Ctrl-C used to wait ~1 s for inferences whose results would be dropped; onnxruntime can end a run early
    predictor = _predictor(u2netp_onnx)
    batch = np.random.default_rng(0).normal(size=(8, 3, 320, 320)).astype(np.float32)  # run one by one: ~6 s
    cancelled, other = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def run(name: str, stop: threading.Event, inputs: np.ndarray) -> None:
        try:
            outcomes[name] = predictor.predict(inputs, stop)
        except Stopped as error:
            outcomes[name] = error

    threads = [
        threading.Thread(target=run, args=("cancelled", cancelled, batch)),
        threading.Thread(target=run, args=("other", other, batch[:1])),  # another pipeline's run goes on
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.perf_counter()
    cancelled.set()
    predictor.stop_runs(cancelled)
    threads[0].join(30)
    print(f"stopped after {time.perf_counter() - started:.3f} s")  # measured here: a few ms, not the rest of ~6 s
    threads[1].join(30)
    assert isinstance(outcomes["cancelled"], Stopped)
    assert isinstance(outcomes["other"], np.ndarray) and outcomes["other"].shape == (1, 320, 320)
    assert predictor._stoppable == []
    with pytest.raises(Stopped):  # set before it starts: it does not run
        predictor.predict(batch[:1], cancelled)
    np.testing.assert_array_equal(predictor.predict(batch[:1], threading.Event()), predictor.predict(batch[:1]))


# --- model files of other shapes: what --model path.onnx meets --------------------------------------------------


@pytest.fixture
def mean_model(build_onnx: Callable[..., Path]) -> Callable[..., Path]:
    """A model whose mask is the mean of the three channels: (N, 3, H, W) -> (N, 1, H, W)."""
    onnx = pytest.importorskip("onnx")

    def build(path: Path, kind: str = "FLOAT", shape: list | None = None) -> Path:
        shape = shape or [1, 3, 320, 320]
        mean = onnx.helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=1)
        return build_onnx(path, [mean], [("x", kind, shape)], [("y", kind, [shape[0], 1, *shape[2:]])])

    return build


@pytest.mark.parametrize(
    ("name", "shape", "kind", "message"),
    [
        ("channels_last", [1, 320, 320, 3], "FLOAT", "takes 320 channels (channels last?), where cutout gives"),
        ("isnet_like", [1, 3, 1024, 1024], "FLOAT", "takes images of (1024, 1024) only, where u2netp's rules give 320"),
        ("quantised_input", [1, 3, 320, 320], "UINT8", "takes tensor(uint8), where cutout gives float32"),
        ("grey", [1, 1, 320, 320], "FLOAT", "takes 1 channels, where cutout gives (N, 3, H, W)"),
        ("video", [1, 1, 3, 320, 320], "FLOAT", "takes a tensor of 5 dimensions"),
    ],
)
def test_a_model_file_that_takes_other_input_is_refused_on_loading_with_what_it_takes(
    tmp_path: Path, build_onnx: Callable[..., Path], name: str, shape: list, kind: str, message: str
) -> None:
    # each ran up to the first inference and ended the batch with onnxruntime's traceback
    onnx = pytest.importorskip("onnx")
    cast = [onnx.helper.make_node("Cast", ["x"], ["y"], to=onnx.TensorProto.FLOAT)]
    path = build_onnx(tmp_path / f"{name}.onnx", cast, [("x", kind, shape)], [("y", "FLOAT", shape)])
    with pytest.raises(BackendError, match=re.escape(message) + ".*it takes x"):
        _predictor(path)


def test_a_model_of_two_inputs_or_a_fixed_size_for_modnet_is_refused(
    tmp_path: Path, build_onnx: Callable[..., Path], mean_model: Callable[..., Path]
) -> None:
    onnx = pytest.importorskip("onnx")
    add = onnx.helper.make_node("Add", ["x", "z"], ["y"])
    shape = [1, 3, 320, 320]
    two = build_onnx(
        tmp_path / "two.onnx", [add], [("x", "FLOAT", shape), ("z", "FLOAT", shape)], [("y", "FLOAT", shape)]
    )
    with pytest.raises(BackendError, match="takes 2 inputs"):
        _predictor(two)
    half_fixed = mean_model(tmp_path / "u2netp_wide.onnx", shape=[1, 3, 320, "w"])  # a dynamic side fits any size
    assert _predictor(half_fixed).predict(np.zeros((1, 3, 320, 320), np.float32)).shape == (1, 320, 320)
    with pytest.raises(BackendError, match=r"takes images of \(320, 500\) only, where u2netp's rules give 320 x 320"):
        _predictor(mean_model(tmp_path / "u2netp_500.onnx", shape=[1, 3, 320, 500]))
    fixed = mean_model(tmp_path / "modnet_512.onnx", shape=[1, 3, 512, 512])
    with pytest.raises(BackendError, match="sizes that follow the photo's"):  # MODNet's rule sizes each photo
        OnnxPredictor(get_spec("modnet"), Device("cpu"), fixed, threads=1)


def test_a_model_of_a_static_batch_of_four_and_a_float16_model_run_any_number_of_images(
    tmp_path: Path, mean_model: Callable[..., Path]
) -> None:
    # a static batch other than 1 recursed until RecursionError; a float16 model was fed float32 and failed
    batch = np.random.default_rng(1).uniform(-2, 2, (6, 3, 320, 320)).astype(np.float32)
    expected = batch.mean(axis=1)
    four = _predictor(mean_model(tmp_path / "four.onnx", shape=[4, 3, 320, 320]))
    assert four.static_batch == 4
    np.testing.assert_allclose(four.predict(batch), expected, atol=1e-6)  # a piece of 4, then 2 padded to 4
    np.testing.assert_allclose(four.predict(batch[:1]), expected[:1], atol=1e-6)
    half = _predictor(mean_model(tmp_path / "half.onnx", kind="FLOAT16", shape=["n", 3, 320, 320]))
    result = half.predict(batch)
    assert result.dtype == np.float32 and result.shape == (6, 320, 320)
    np.testing.assert_allclose(result, expected, atol=2e-3)


def test_a_model_that_fails_to_run_or_gives_no_mask_map_is_one_line(
    tmp_path: Path, build_onnx: Callable[..., Path]
) -> None:
    onnx = pytest.importorskip("onnx")
    target = onnx.helper.make_tensor("s", onnx.TensorProto.INT64, [2], [7, 7])
    reshape = onnx.helper.make_node("Reshape", ["x", "s"], ["y"])
    image = ("x", "FLOAT", [1, 3, 320, 320])
    broken = build_onnx(tmp_path / "broken.onnx", [reshape], [image], [("y", "FLOAT", None)], (target,))
    batch = np.zeros((1, 3, 320, 320), np.float32)
    with pytest.raises(BackendError, match=r"onnxruntime failed to run broken.onnx: .*Reshape.*may be broken"):
        _predictor(broken).predict(batch)
    mean = onnx.helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, 2, 3], keepdims=0)
    score = build_onnx(tmp_path / "score.onnx", [mean], [image], [("y", "FLOAT", [1])])
    with pytest.raises(BackendError, match=r"score.onnx gave an output of shape \(1,\) where a mask map"):
        _predictor(score).predict(batch)
