"""What one training step computes for each model: the forward pass and its loss, as pure functions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from train.losses import mnet_loss, modnet_losses, u2net_loss


class Trainee(nn.Module):
    """The model's training forward behind ``forward()``, so DistributedDataParallel sees (and syncs) it."""

    def __init__(self, model: nn.Module, architecture: str) -> None:
        super().__init__()
        self.model = model
        self.architecture = architecture

    def forward(self, image: Tensor, trimap: Tensor | None = None) -> tuple[Tensor, ...]:
        if self.architecture in ("u2net", "u2netp"):
            return tuple(self.model.forward_logits(image))  # type: ignore[operator]
        if self.architecture == "modnet":
            return tuple(self.model(image, inference=False))
        from cutout.models.mnet import trimap_one_hot

        assert trimap is not None
        return (self.model(torch.cat([image, trimap_one_hot(trimap)], dim=1)),)


def trimap_from_mask(mask: Tensor, band: int | None = None) -> Tensor:
    """A trimap (0 background, 0.5 unknown, 1 foreground) around the mask's edge, ``band`` pixels each side.

    Shape: (N, 1, H, W) float in [0, 1] -> (N, 1, H, W) float.
    """
    band = band or max(1, min(mask.shape[-2:]) // 32)
    kernel = 2 * band + 1
    grown = F.max_pool2d((mask > 0.01).float(), kernel, stride=1, padding=band)
    shrunk = -F.max_pool2d(-(mask > 0.99).float(), kernel, stride=1, padding=band)
    return torch.where(shrunk > 0.5, 1.0, torch.where(grown > 0.5, 0.5, 0.0))


def unnormalize(image: Tensor, architecture: str) -> Tensor:
    """The 0..1 picture behind a normalised batch (MODNet and MNet use (x - 0.5) / 0.5)."""
    if architecture in ("modnet", "mnet"):
        return image * 0.5 + 0.5
    mean = image.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = image.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (image * std + mean).clamp(0, 1)  # up to the image's own max, which U2-Net divided by


def compute_loss(
    trainee: nn.Module, architecture: str, batch: dict[str, Tensor], iou: bool = False
) -> tuple[Tensor, dict[str, float]]:
    """The loss of one batch and its parts (for logging); ``iou`` adds the IoU term to U-2-Net's BCE terms."""
    image, mask = batch["image"], batch["mask"]
    if architecture in ("u2net", "u2netp"):
        outputs = trainee(image)
        loss = u2net_loss(outputs, mask, iou=iou)
        return loss, {"loss": float(loss.detach())}
    trimap = batch.get("trimap")
    if trimap is None:
        trimap = trimap_from_mask(mask)
    picture = unnormalize(image, architecture)
    if architecture == "modnet":
        semantic, detail, matte = trainee(image)
        parts = modnet_losses(semantic, detail, matte, picture, trimap, mask)
        # the sum is "loss", as for the other models: the progress events put the step count under "total"
        return parts["total"], {("loss" if k == "total" else k): float(v.detach()) for k, v in parts.items()}
    (alpha,) = trainee(image, trimap)
    foreground = batch.get("foreground", picture)
    background = batch.get("background", picture)
    loss = mnet_loss(alpha, mask, picture, foreground, background, trimap)
    return loss, {"loss": float(loss.detach())}


@torch.no_grad()
def predict_alpha(model: nn.Module, architecture: str, batch: dict[str, Tensor]) -> Tensor:
    """Alpha in [0, 1] for validation (eval mode). Shape: -> (N, 1, H, W)."""
    image = batch["image"]
    if architecture in ("u2net", "u2netp"):
        fused = model(image)[0]
        low = fused.amin(dim=(2, 3), keepdim=True)
        high = fused.amax(dim=(2, 3), keepdim=True)
        return (fused - low) / (high - low).clamp_min(1e-8)  # stretched like inference (cutout.preprocess)
    if architecture == "modnet":
        return model(image, inference=True)[2]
    from cutout.models.mnet import trimap_one_hot

    trimap = batch.get("trimap")
    if trimap is None:
        trimap = trimap_from_mask(batch["mask"])
    return model(torch.cat([image, trimap_one_hot(trimap)], dim=1))
