"""Weights in the format a backend needs: ONNX <-> torch conversion.

- :func:`onnx_to_state_dict`: the BN-folded ONNX exports of the U2-Net family (rembg's files) back into the
  official torch layout. The k-th Conv node of the graph is the k-th ``nn.Conv2d`` of the model (FACTS.md
  section 4); each BatchNorm is neutralised (weight 1, bias 0, mean 0, var 1 - eps) so it is an identity.
- :func:`export_onnx`: any cutout torch model to ONNX with dynamic batch and spatial axes.
- :func:`resolve_weights`: the file for ``(spec, format)``: the released file when the spec has one in that
  format, otherwise one derived from the other format and cached beside it.

    $ python -c "from cutout.convert import resolve_weights; from cutout.registry import get_spec; \
print(resolve_weights(get_spec('u2netp'), 'torch'))"

torch and onnx are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutout.errors import CutoutError, WeightsError
from cutout.registry import ModelSpec, WeightFormat

if TYPE_CHECKING:
    import torch

Progress = Callable[[int, int | None], None]
_SUFFIX = {"onnx": ".onnx", "torch": ".pth"}


def onnx_to_state_dict(onnx_path: Path, architecture: str) -> dict[str, torch.Tensor]:
    """The official state_dict of ``architecture`` ("u2net" or "u2netp") from a BN-folded ONNX export."""
    import onnx
    import torch
    from onnx import numpy_helper

    from cutout.models import build_model

    graph = onnx.load(str(onnx_path)).graph
    initializers = {t.name: t for t in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    model = build_model(architecture)
    modules = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    if len(convs) != len(modules):
        raise WeightsError(
            f"{onnx_path} has {len(convs)} Conv nodes but {architecture} has {len(modules)} convolutions; "
            f"it is not a {architecture} export. Pass the file of the matching model."
        )
    state = model.state_dict()
    for node, (name, module) in zip(convs, modules, strict=True):
        weight = torch.from_numpy(numpy_helper.to_array(initializers[node.input[1]]).copy())
        if weight.shape != module.weight.shape:
            raise WeightsError(
                f"{onnx_path}: Conv node {node.name!r} has weight {tuple(weight.shape)} but {name} expects "
                f"{tuple(module.weight.shape)}; the file is not a {architecture} export."
            )
        state[f"{name}.weight"] = weight
        state[f"{name}.bias"] = torch.from_numpy(numpy_helper.to_array(initializers[node.input[2]]).copy())
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            channels = module.num_features
            state[f"{name}.weight"] = torch.ones(channels)
            state[f"{name}.bias"] = torch.zeros(channels)
            state[f"{name}.running_mean"] = torch.zeros(channels)
            # sqrt(var + eps) == 1 makes the BN an exact identity.
            state[f"{name}.running_var"] = torch.full((channels,), 1.0 - module.eps)
    return state


def export_onnx(model: torch.nn.Module, path: Path, *, opset: int = 17, metadata: dict[str, str] | None = None) -> Path:
    """Export ``model`` (eval mode, fp32, CPU) to ONNX with dynamic batch, height and width; atomic write."""
    import onnx
    import torch

    model = model.eval().float().cpu()
    dummy = torch.zeros(1, getattr(model, "in_channels", 3), 320, 320)  # MNet: RGB + one-hot trimap
    with torch.inference_mode():
        n_outputs = len(_as_tuple(model(dummy)))
    output_names = [f"output{i}" for i in range(n_outputs)]
    axes = {0: "batch", 2: "height", 3: "width"}
    dynamic = {"input": axes, **{name: axes for name in output_names}}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but needs no onnxscript
            torch.onnx.export(
                model,
                (dummy,),
                tmp,
                dynamo=False,
                input_names=["input"],
                output_names=output_names,
                dynamic_axes=dynamic,
                opset_version=opset,
            )
        proto = onnx.load(tmp)
        for key, value in (metadata or {}).items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _as_tuple(outputs: Any) -> tuple[Any, ...]:
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


def load_torch_model(spec: ModelSpec, weights: Path) -> torch.nn.Module:
    """The spec's architecture in eval mode with ``weights``: a .pth/.ckpt state_dict, or a U2-Net family .onnx."""
    import torch

    from cutout.models import build_model, load_checkpoint

    model = build_model(spec.architecture, width=spec.width)
    state: Any
    try:
        if weights.suffix == ".onnx":
            state = onnx_to_state_dict(weights, spec.architecture)
        else:
            state = state_dict_in(torch.load(weights, map_location="cpu", weights_only=True), weights)
    except CutoutError:
        raise
    except Exception as error:  # torch and onnx raise many kinds (unpickling, zip, protobuf, EOF) for a bad file
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        if "weights only load failed" in reason.lower():  # torch's advice (weights_only=False) would be unsafe here
            reason = "not a PyTorch file that holds only weights"
        raise WeightsError(
            f"cannot read {weights} as weights ({reason}); it is damaged or not a weights file: download, export "
            "or train it again"
        ) from None
    try:
        load_checkpoint(model, state)
    except (RuntimeError, ValueError) as error:
        raise WeightsError(f"{weights} does not fit {spec.name} ({spec.architecture}): {error}") from None
    return model.eval()


#: Where training checkpoints keep the weights: Lightning's ``state_dict``, PyTorch's tutorials'
#: ``model_state_dict``, cutout's and others' ``model``, others ``net`` or ``params``.
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "params")


def state_dict_in(loaded: Any, weights: Path) -> dict[str, Any]:
    """The state_dict in what torch.load read: the file itself, or a checkpoint's entry that holds it.

    Raises:
        WeightsError: the file holds something else (a tensor, a list), which used to fail with an
            AttributeError or "Boolean value of Tensor ... is ambiguous".
    """
    import torch

    def is_state(value: Any) -> bool:
        return isinstance(value, dict) and any(isinstance(item, torch.Tensor) for item in value.values())

    if isinstance(loaded, dict) and not is_state(loaded):
        inner = [key for key in _CHECKPOINT_KEYS if is_state(loaded.get(key))]
        loaded = loaded[inner[0]] if inner else loaded
    if not isinstance(loaded, dict) or not all(isinstance(key, str) for key in loaded):
        what = type(loaded).__name__ if not isinstance(loaded, dict) else "dict whose keys are not all names"
        raise WeightsError(
            f"{weights} holds a {what}, not a model's weights (a state_dict: tensors by parameter name, or a "
            f"checkpoint with one under {', '.join(repr(key) for key in _CHECKPOINT_KEYS)})"
        )
    return loaded


def resolve_weights(
    spec: ModelSpec, format: WeightFormat, *, offline: bool | None = None, progress: Progress | None = None
) -> Path:
    """A local file of ``spec``'s weights in ``format``, fetching and converting as needed."""
    from cutout.weights import cached_path, fetch

    released = spec.weight_file(format)
    if released is not None:
        return fetch(spec, released, offline=offline, progress=progress)
    other = next((w for w in spec.weights if w.format != format), None)
    if other is None:
        raise WeightsError(f"model {spec.name!r} lists no weights files; import one with `cutout weights import`")
    target = cached_path(spec, other).with_name(f"{spec.name}.converted{_SUFFIX[format]}")
    if target.is_file():
        return target
    source = fetch(spec, other, offline=offline, progress=progress)
    _require_torch(spec, format)
    model = load_torch_model(spec, source)
    if format == "onnx":
        return export_onnx(_exportable(model), target, metadata={"cutout.model": spec.name})
    return save_torch(model.state_dict(), target)


def _exportable(model: torch.nn.Module) -> torch.nn.Module:
    from cutout.models.modnet import MODNet, MODNetMatte

    return MODNetMatte(model) if isinstance(model, MODNet) else model


def save_torch(payload: Any, path: Path) -> Path:
    """``torch.save`` through a temporary file and a rename: readers never see half a file."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _require_torch(spec: ModelSpec, format: WeightFormat) -> None:
    import importlib.util

    missing = [name for name in ("torch", "onnx") if importlib.util.find_spec(name) is None]
    if missing:
        released = ", ".join(w.format for w in spec.weights)
        raise WeightsError(
            f"{spec.name} is released as {released} only; making its {format} file needs "
            f"{' and '.join(missing)}. Install them with `pip install 'cutout[torch]'`, "
            f"or import a ready {format} file with `cutout weights import {spec.name} FILE`."
        )
