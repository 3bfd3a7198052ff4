"""The PyTorch networks against the official layouts and the official MODNet outputs in ../shared/reference.

Run with ``pytest tests/test_models.py -q``. The reference files (state_dict keys, conv layouts, MODNet
checkpoint/inputs/outputs) are described in ``reference/FACTS.md`` and ``reference/modnet/README.md``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from cutout.errors import CutoutError
from cutout.models import (
    CheckpointKeysError,
    MODNet,
    MODNetMatte,
    U2Net,
    U2NetP,
    build_model,
    load_checkpoint,
    load_modnet_state_dict,
)

ARCHITECTURES = ["u2net", "u2netp", "modnet"]
LAYOUT_INPUT = {"u2net": (1, 3, 320, 320), "u2netp": (1, 3, 320, 320), "modnet": (1, 3, 512, 512)}
# README section 7: 2x above every correct float32 variant measured; float64 is exact to ~1e-13.
FP32_MAX, FP32_MEAN, FP64_MAX = 3e-4, 2.5e-5, 1e-9


def _rows(path: Path) -> list[list[str]]:
    """The tab-separated rows of a reference TSV, without comment lines."""
    lines = path.read_text().splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


def _shape(shape: torch.Size | tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape) or "scalar"


def _pair(values: tuple[int, ...] | str) -> str:
    if isinstance(values, str):
        return values
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _outputs(model: nn.Module, x: Tensor, **kwargs: bool) -> list[Tensor]:
    result = model(x, **kwargs)
    return [out for out in result if out is not None]


@pytest.fixture(scope="module")
def modnet_ckpt(reference: Path) -> dict[str, Tensor]:
    return torch.load(reference / "modnet" / "modnet_random.ckpt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def modnet_eval(modnet_ckpt: dict[str, Tensor]) -> MODNet:
    model = MODNet()
    load_modnet_state_dict(model, modnet_ckpt)
    return model.eval()


# --- structure -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_state_dict_keys_order_and_shapes_match_official(architecture: str, reference: Path) -> None:
    expected = [(row[0], row[1], row[2]) for row in _rows(reference / f"{architecture}_keys.tsv")]
    state = build_model(architecture).state_dict()
    actual = [(key, _shape(t.shape), str(t.dtype).removeprefix("torch.")) for key, t in state.items()]
    assert actual == expected


def test_parameter_counts_match_facts() -> None:
    counts = {name: sum(p.numel() for p in build_model(name).parameters()) for name in ARCHITECTURES}
    assert counts == {"u2net": 44_009_869, "u2netp": 1_131_181, "modnet": 6_487_075}


def _conv_trace(model: nn.Module, x: Tensor, **kwargs: bool) -> list[list[str]]:
    """One layout row per executed Conv2d, named by its first registered name (as the TSVs do)."""
    names = {id(module): name for name, module in model.named_modules()}  # shared modules: first name
    rows: list[list[str]] = []

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        assert isinstance(module, nn.Conv2d)
        rows.append(
            [
                str(len(rows)),
                names[id(module)],
                str(module.in_channels),
                str(module.out_channels),
                "x".join(map(str, module.kernel_size)),
                _pair(module.stride),
                _pair(module.padding),
                _pair(module.dilation),
                str(module.groups),
                str(module.bias is not None),
                _shape(inputs[0].shape),
                _shape(output.shape),
            ]
        )

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(x, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return rows


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_conv_geometry_and_execution_order_match_official(architecture: str, reference: Path) -> None:
    expected = [row[:12] for row in _rows(reference / f"{architecture}_conv_layout.tsv")]
    model = build_model(architecture).eval()
    kwargs = {"inference": False} if architecture == "modnet" else {}
    actual = _conv_trace(model, torch.randn(LAYOUT_INPUT[architecture]), **kwargs)
    assert actual == expected


# --- MODNet against the official outputs ------------------------------------------------------------


def _diff(actual: Tensor, expected: np.ndarray) -> tuple[float, float]:
    assert tuple(actual.shape) == expected.shape
    error = np.abs(actual.detach().numpy().astype(np.float64) - expected.astype(np.float64))
    return float(error.max()), float(error.mean())


@pytest.mark.parametrize("size", ["512x512", "384x672"])
@pytest.mark.parametrize("inference", [True, False])
def test_modnet_matches_official_outputs_fp32(modnet_eval: MODNet, reference: Path, size: str, inference: bool) -> None:
    folder = reference / "modnet"
    x = torch.from_numpy(np.load(folder / f"input_{size}.npy"))
    with torch.no_grad():
        semantic, detail, matte = modnet_eval(x, inference=inference)
    if inference:
        assert semantic is None and detail is None
        outputs = {"inference_matte": matte}
    else:
        assert semantic is not None and detail is not None
        outputs = {"train_semantic": semantic, "train_detail": detail, "train_matte": matte}
    for name, actual in outputs.items():
        worst, mean = _diff(actual, np.load(folder / f"out_{size}_{name}.npy"))
        assert worst <= FP32_MAX and mean <= FP32_MEAN, f"{size} {name}: max {worst:.2e}, mean {mean:.2e}"


@pytest.mark.parametrize("size", ["512x512", "384x672"])
def test_modnet_matches_official_outputs_fp64(modnet_eval: MODNet, reference: Path, size: str) -> None:
    folder = reference / "modnet"
    model = copy.deepcopy(modnet_eval).double()
    x = torch.from_numpy(np.load(folder / f"input_{size}.npy")).double()
    with torch.no_grad():
        semantic, detail, matte = model(x, inference=False)
    outputs = {"train_semantic": semantic, "train_detail": detail, "train_matte": matte}
    for name, actual in outputs.items():
        assert actual is not None and actual.dtype == torch.float64
        worst, _ = _diff(actual, np.load(folder / "fp64" / f"out_{size}_{name}_fp64.npy"))
        assert worst <= FP64_MAX, f"{size} {name}: max {worst:.2e}"


def test_modnet_matte_wrapper_returns_the_inference_matte(modnet_eval: MODNet) -> None:
    x = torch.rand(1, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        expected = modnet_eval(x, inference=True)[2]
        assert torch.equal(MODNetMatte(modnet_eval)(x), expected)
        assert torch.equal(modnet_eval(x, inference=False)[2], expected)


# --- checkpoint loading ------------------------------------------------------------------------------


def _unprefixed(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {key.removeprefix("module."): value for key, value in state.items()}


def _assert_same_weights(model: nn.Module, state: dict[str, Tensor]) -> None:
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("drop", [None, "lr_branch.backbone.", "backbone."])
def test_modnet_loader_accepts_released_layouts(modnet_ckpt: dict[str, Tensor], drop: str | None) -> None:
    reference_state = _unprefixed(modnet_ckpt)
    variants = [modnet_ckpt, reference_state]
    if drop is not None:
        variants = [{k: v for k, v in reference_state.items() if not k.startswith(drop)}]
        assert len(variants[0]) == 751 - 312
    for state in variants:
        model = MODNet()
        load_modnet_state_dict(model, state)
        _assert_same_weights(model, reference_state)
        assert model.backbone is model.lr_branch.backbone


def test_modnet_loader_names_missing_and_unexpected_keys(modnet_ckpt: dict[str, Tensor]) -> None:
    state = _unprefixed(modnet_ckpt)
    del state["f_branch.conv_f.1.layers.0.weight"]
    state["f_branch.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"f_branch\.conv_f\.1\.layers\.0\.weight") as info:
        load_modnet_state_dict(MODNet(), state)
    assert "f_branch.extra.weight" in str(info.value)
    assert isinstance(info.value, CheckpointKeysError) and isinstance(info.value, CutoutError)


def test_modnet_loader_rejects_diverging_backbone_copies(modnet_ckpt: dict[str, Tensor]) -> None:
    state = {key: value.clone() for key, value in _unprefixed(modnet_ckpt).items()}
    state["lr_branch.backbone.model.features.0.0.weight"] += 1
    with pytest.raises(ValueError, match="features.0.0.weight"):
        load_modnet_state_dict(MODNet(), state)


@pytest.mark.parametrize("with_counters", [True, False])
@pytest.mark.parametrize("prefix", ["", "module."])
def test_u2net_checkpoint_round_trip(with_counters: bool, prefix: str) -> None:
    source = U2NetP()
    with torch.no_grad():  # a non-default buffer, so a skipped copy would show
        source.get_buffer("stage3.rebnconv2.bn_s1.running_mean").normal_()
    state = {
        prefix + key: value
        for key, value in source.state_dict().items()
        if with_counters or not key.endswith("num_batches_tracked")
    }
    target = build_model("u2netp")
    load_checkpoint(target, state)
    _assert_same_weights(target, source.state_dict())


def test_u2net_checkpoint_of_the_wrong_variant_is_rejected() -> None:
    with pytest.raises(CheckpointKeysError, match="shape mismatches"):
        load_checkpoint(build_model("u2netp"), U2Net().state_dict())


def test_build_model_rejects_unknown_names() -> None:
    with pytest.raises(CutoutError, match="u2net, u2netp, modnet"):
        build_model("u3net")
    with pytest.raises(CutoutError, match="out_channels"):
        build_model("modnet", out_channels=2)


# --- training behaviour and input sizes ------------------------------------------------------------


@pytest.fixture
def seeded() -> Iterator[None]:
    """Seeds torch for one test and restores the global generator afterwards."""
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    yield
    torch.random.set_rng_state(state)


def _params_without_gradient(model: nn.Module) -> set[str]:
    return {
        name
        for name, p in model.named_parameters()
        if p.grad is None or not bool(p.grad.abs().sum() > 0) or not bool(torch.isfinite(p.grad).all())
    }


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("architecture", ["u2net", "u2netp"])
def test_u2net_trains_every_parameter(architecture: str) -> None:
    model = {"u2net": U2Net, "u2netp": U2NetP}[architecture]().train()
    x, target = torch.randn(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
    logits = model.forward_logits(x)
    loss = sum(nn.functional.binary_cross_entropy_with_logits(out, target) for out in logits)
    assert isinstance(loss, Tensor)
    loss.backward()
    assert _params_without_gradient(model) == set()
    for out in model(x):
        assert out.shape == (2, 1, 64, 64)
        assert bool(torch.isfinite(out).all()) and out.min() > 0 and out.max() < 1


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("inference", [False, True])
def test_modnet_trains_exactly_the_parameters_it_uses(inference: bool) -> None:
    model = MODNet().train()
    outputs = _outputs(model, torch.rand(2, 3, 64, 64) * 2 - 1, inference=inference)
    assert len(outputs) == (1 if inference else 3)
    sum(out.mean() for out in outputs).backward()  # type: ignore[union-attr]
    unused = {
        "lr_branch.conv_lr.layers.0.weight",
        "lr_branch.conv_lr.layers.0.bias",
        "hr_branch.conv_hr.0.layers.0.weight",
        "hr_branch.conv_hr.0.layers.0.bias",
        "hr_branch.conv_hr.0.layers.1.bnorm.weight",
        "hr_branch.conv_hr.0.layers.1.bnorm.bias",
        "hr_branch.conv_hr.1.layers.0.weight",
        "hr_branch.conv_hr.1.layers.0.bias",
    }
    assert _params_without_gradient(model) == (unused if inference else set())
    expected_shapes = [(2, 1, 64, 64)] if inference else [(2, 1, 4, 4), (2, 1, 64, 64), (2, 1, 64, 64)]
    assert [tuple(out.shape) for out in outputs] == expected_shapes
    for out in outputs:
        assert bool(torch.isfinite(out).all()) and out.min() > 0 and out.max() < 1


@pytest.mark.parametrize("size", [(100, 75), (288, 352), (33, 17)])
def test_u2netp_any_input_size_gives_outputs_of_that_size(size: tuple[int, int]) -> None:
    model = U2NetP().eval()
    with torch.no_grad():
        logits = model.forward_logits(torch.randn(1, 3, *size))
        maps = model(torch.randn(1, 3, *size))
    assert [tuple(out.shape) for out in (*logits, *maps)] == [(1, 1, *size)] * 14


def test_forward_is_the_sigmoid_of_the_logits_and_output_zero_is_the_fusion() -> None:
    model = U2NetP().eval()
    x = torch.randn(1, 3, 96, 80)
    with torch.no_grad():
        logits, maps = model.forward_logits(x), model(x)
        fused = model.outconv(torch.cat(logits[1:], 1))
    for logit, prob in zip(logits, maps, strict=True):
        assert torch.equal(torch.sigmoid(logit), prob)
    assert torch.equal(fused, logits[0])


# --- U-2-NetP with the real rembg weights -----------------------------------------------------------


def _u2netp_from_onnx(path: Path) -> U2NetP:
    """U2NetP with the BN-folded weights of rembg's u2netp.onnx (FACTS.md section 4).

    The k-th ONNX Conv node is the k-th Conv2d in module order; each BN becomes an exact identity
    (running_var = 1 - eps, so sqrt(var + eps) == 1).
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    model = U2NetP()
    state = model.state_dict()
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    nodes = [node for node in graph.node if node.op_type == "Conv"]
    assert len(nodes) == len(convs) == 119
    for name, node in zip(convs, nodes, strict=True):
        state[f"{name}.weight"] = torch.from_numpy(arrays[node.input[1]].copy())
        state[f"{name}.bias"] = torch.from_numpy(arrays[node.input[2]].copy())
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            state[f"{name}.weight"] = torch.ones(m.num_features)
            state[f"{name}.bias"] = torch.zeros(m.num_features)
            state[f"{name}.running_mean"] = torch.zeros(m.num_features)
            state[f"{name}.running_var"] = torch.full((m.num_features,), 1 - m.eps)
    load_checkpoint(model, state)
    return model.eval()


@pytest.mark.integration
def test_u2netp_with_real_weights_matches_onnxruntime(u2netp_onnx: Path, reference: Path) -> None:
    model = _u2netp_from_onnx(u2netp_onnx)
    x = torch.from_numpy(np.load(reference / "anime-girl-1_rembg_input_1x3x320x320_f32.npy"))
    expected = np.load(reference / "anime-girl-1_ort_u2netp_outputs_7x320x320_f32.npy")
    with torch.no_grad():
        outputs = model(x)
    for index, out in enumerate(outputs):
        worst, _ = _diff(out[0], expected[index : index + 1])
        assert worst <= 1e-4, f"output {index}: max {worst:.2e}"  # FACTS.md: observed <= 2.1e-5
