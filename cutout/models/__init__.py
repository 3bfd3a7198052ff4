"""PyTorch implementations of the networks cutout runs: U-2-Net, U-2-NetP, MODNet and the MNet refiner.

Importing this package imports torch; nothing else in ``cutout`` does so at module level.

Example::

    from cutout.models import build_model, load_checkpoint

    model = build_model("u2netp")
    load_checkpoint(model, torch.load("u2netp.pth", map_location="cpu", weights_only=True))
    fused = model.eval()(batch)[0]  # output 0 is the fused map rembg uses
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from cutout.errors import UsageError
from cutout.models.mnet import MNet
from cutout.models.modnet import (
    CheckpointKeysError,
    MODNet,
    MODNetMatte,
    check_state_dict,
    fill_num_batches_tracked,
    load_modnet_state_dict,
    strip_prefix,
)
from cutout.models.u2net import U2Net, U2NetP

__all__ = [
    "ARCHITECTURES",
    "CheckpointKeysError",
    "MNet",
    "MODNet",
    "MODNetMatte",
    "U2Net",
    "U2NetP",
    "build_model",
    "load_checkpoint",
    "load_modnet_state_dict",
]

ARCHITECTURES = ("u2net", "u2netp", "modnet", "mnet")


def build_model(architecture: str, out_channels: int = 1, *, width: float = 1.0) -> nn.Module:
    """A freshly initialised network for ``architecture`` ("u2net", "u2netp", "modnet" or "mnet"), in train mode.

    ``width`` is MNet's channel multiplier (1.0 the paper's network, 0.25 a slim CPU variant); the other
    architectures have fixed widths. MNet takes 6 input channels (RGB + one-hot trimap), the others RGB.

    Raises:
        UsageError: for an unknown architecture, ``out_channels != 1`` with MODNet or MNet (their heads are
            fixed), or a ``width`` other than 1.0 for a network without a width multiplier.
    """
    if architecture == "mnet":
        if out_channels != 1 or not width > 0:
            raise UsageError(
                f"MNet predicts one alpha channel at a positive width; got out_channels={out_channels}, width={width}."
            )
        return MNet(width=width)
    if width != 1.0:
        raise UsageError(f"only mnet has a width multiplier; got width={width} for {architecture!r}. Leave it at 1.0.")
    if architecture == "u2net":
        return U2Net(3, out_channels)
    if architecture == "u2netp":
        return U2NetP(3, out_channels)
    if architecture == "modnet":
        if out_channels != 1:
            raise UsageError(f"MODNet predicts exactly one alpha channel; got out_channels={out_channels}.")
        return MODNet()
    raise UsageError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}.")


def load_checkpoint(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Loads a flat state_dict into a model from :func:`build_model`, strictly.

    MODNet goes through :func:`load_modnet_state_dict`. For U-2-Net/U-2-NetP a ``module.`` prefix
    (``nn.DataParallel``) is stripped and BN ``num_batches_tracked`` counters may be present or absent
    (whether the released .pth files hold them is unknown; inference never reads them).

    Raises:
        CheckpointKeysError: (a ``ValueError``) naming missing, unexpected or mis-shaped keys.
    """
    if isinstance(model, MODNet):
        load_modnet_state_dict(model, state_dict)
        return
    weights = strip_prefix(state_dict)
    expected = model.state_dict()
    fill_num_batches_tracked(weights, expected)
    check_state_dict(weights, expected, type(model).__name__)
    model.load_state_dict(weights, strict=True)
