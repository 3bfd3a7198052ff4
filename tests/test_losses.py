"""train.losses: U-2-Net deep supervision, MODNet's three sub-objectives and SHM's MNet loss.

Run with ``python -m pytest tests/test_losses.py -q``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from cutout.models import MODNet, U2NetP
from train.losses import (
    U2NET_OUTPUT_NAMES,
    blur3x3,
    mnet_loss,
    modnet_losses,
    modnet_semantic_target,
    soft_iou_loss,
    u2net_loss,
    u2net_loss_parts,
    unknown_region,
)


def _binary_target(n: int = 2, size: int = 8, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, size, size, generator=generator) > 0.5).float()


# --- U-2-Net ----------------------------------------------------------------------------------------------


def test_u2net_loss_is_near_zero_for_confident_correct_logits_and_7_log2_for_zero_logits() -> None:
    target = _binary_target()
    perfect = [(target * 2 - 1) * 30.0 for _ in range(7)]
    assert u2net_loss(perfect, target).item() < 1e-10
    undecided = [torch.zeros_like(target) for _ in range(7)]
    assert u2net_loss(undecided, target).item() == pytest.approx(7 * math.log(2), rel=1e-6)
    wrong = [(1 - target * 2) * 3.0 for _ in range(7)]
    assert u2net_loss(wrong, target) > u2net_loss(undecided, target)


def test_u2net_loss_parts_are_named_in_forward_logits_order_and_sum_to_the_loss() -> None:
    target = _binary_target()
    logits = [torch.full_like(target, float(i)) for i in range(7)]
    parts = u2net_loss_parts(logits, target)
    assert tuple(parts) == U2NET_OUTPUT_NAMES
    assert torch.allclose(torch.stack(list(parts.values())).sum(), u2net_loss(logits, target))
    # each term only sees its own map: the fused map (index 0, logit 0) costs log 2 whatever the target
    assert parts["fused"].item() == pytest.approx(math.log(2))


def test_soft_iou_loss_hand_computed_and_added_to_every_bce_term() -> None:
    target = torch.zeros(2, 1, 2, 2)
    target[0, 0, 0] = 1.0  # image 0: two of four pixels; image 1: empty
    logits = torch.zeros(2, 1, 2, 2)  # p = 0.5 everywhere
    # image 0: intersection 1, union 2 + 2 * 0.5 = 3 -> 1 - 2/4; image 1: intersection 0, union 2 -> 1 - 1/3
    assert soft_iou_loss(logits, target).item() == pytest.approx(((1 - 2 / 4) + (1 - 1 / 3)) / 2)
    assert soft_iou_loss(torch.full_like(target, -30.0)[1:], target[1:]).item() == pytest.approx(0.0, abs=1e-9)
    perfect = (target * 2 - 1) * 30.0
    assert soft_iou_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    maps = [torch.full_like(target, float(i) - 3) for i in range(7)]
    with_iou = u2net_loss_parts(maps, target, iou=True)
    for (name, plain), item in zip(u2net_loss_parts(maps, target).items(), maps, strict=True):
        assert with_iou[name].item() == pytest.approx(plain.item() + soft_iou_loss(item, target).item())
    multiclass = [torch.zeros(1, 3, 2, 2, requires_grad=True) for _ in range(7)]
    classes = torch.zeros(1, 2, 2, dtype=torch.long)
    assert u2net_loss(multiclass, classes, iou=True).item() == pytest.approx(u2net_loss(multiclass, classes).item())


def test_u2net_loss_with_a_soft_target_is_minimal_at_its_logit() -> None:
    target = torch.full((1, 1, 4, 4), 0.3)
    logits = [torch.logit(target).requires_grad_() for _ in range(7)]
    u2net_loss(logits, target).backward()
    for item in logits:
        assert item.grad is not None and item.grad.abs().max().item() < 1e-6


def test_u2net_loss_multiclass_uses_cross_entropy() -> None:
    target = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    one_hot = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert u2net_loss([one_hot * 30.0] * 7, target).item() < 1e-10
    zeros = [torch.zeros(2, 3, 8, 8)] * 7
    assert u2net_loss(zeros, target).item() == pytest.approx(7 * math.log(3), rel=1e-6)


def test_u2net_loss_gradients_reach_every_output_and_the_model() -> None:
    model = U2NetP()
    image = torch.rand(2, 3, 32, 32)
    logits = model.forward_logits(image)
    loss = u2net_loss(logits, _binary_target(size=32))
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize(
    ("logits", "target", "message"),
    [
        ([], torch.zeros(1, 1, 4, 4), "at least one map"),
        ([torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5)], torch.zeros(1, 1, 4, 4), r"logits\[1\] must be"),
        ([torch.zeros(1, 1, 4, 4)], torch.zeros(1, 4, 4), r"shape \(1, 1, 4, 4\).*got shape \(1, 4, 4\)"),
        ([torch.zeros(1, 1, 4, 4)], torch.full((1, 1, 4, 4), 255.0), r"\[0, 1\]; got \[255, 255\]"),
        ([torch.zeros(1, 3, 4, 4)], torch.zeros(1, 4, 4), r"int64 .* \(1, 4, 4\).*dtype torch.float32"),
    ],
)
def test_u2net_loss_rejects_bad_inputs_with_expected_and_actual(
    logits: list[Tensor], target: Tensor, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        u2net_loss(logits, target)


# --- trimaps and the blur ---------------------------------------------------------------------------------


def test_unknown_region_reads_half_and_128_of_255_as_unknown() -> None:
    trimap = torch.tensor([0.0, 0.5, 1.0, 128 / 255, 127 / 255, 0.1, 0.9]).view(1, 1, 1, 7)
    assert unknown_region(trimap).flatten().tolist() == [0, 1, 0, 1, 1, 0, 0]
    as_bytes = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    assert unknown_region(as_bytes).flatten().tolist() == [0, 1, 0]


def test_blur3x3_is_the_121_kernel_and_keeps_constants() -> None:
    delta = torch.zeros(1, 1, 5, 5)
    delta[0, 0, 2, 2] = 1.0
    taps = torch.tensor([0.25, 0.5, 0.25])
    expected = torch.zeros(5, 5)
    expected[1:4, 1:4] = torch.outer(taps, taps)
    assert torch.allclose(blur3x3(delta)[0, 0], expected)
    constant = torch.full((2, 3, 4, 6), 0.7)
    assert torch.allclose(blur3x3(constant), constant)
    assert blur3x3(torch.ones(1, 1, 1, 1)).item() == pytest.approx(1.0)  # 1x1 maps do not crash


def test_semantic_target_is_downsampled_16x_and_blurred() -> None:
    matte = torch.zeros(1, 1, 64, 96)
    matte[..., :, 48:] = 1.0
    target = modnet_semantic_target(matte)
    assert target.shape == (1, 1, 4, 6)
    # the step between columns 2 and 3 is softened by the blur but the far columns stay 0 and 1
    assert target[0, 0, :, 0].tolist() == [0.0] * 4 and target[0, 0, :, 5].tolist() == [1.0] * 4
    assert 0.0 < target[0, 0, 0, 2].item() < target[0, 0, 0, 3].item() < 1.0


# --- MODNet -----------------------------------------------------------------------------------------------


def _matting_batch(n: int = 2, size: int = 32, seed: int = 0) -> dict[str, Tensor]:
    """A gt matte with a soft vertical edge, a trimap whose band covers the edge, and a random image."""
    generator = torch.Generator().manual_seed(seed)
    columns = torch.linspace(-4, 4, size)
    gt = torch.sigmoid(columns * 2).view(1, 1, 1, size).expand(n, 1, size, size).clone()
    trimap = torch.where(gt < 0.02, 0.0, torch.where(gt > 0.98, 1.0, 0.5))
    image = torch.rand(n, 3, size, size, generator=generator)
    return {"gt": gt, "trimap": trimap, "image": image}


def _modnet(pred_semantic: Tensor, pred_detail: Tensor, pred_matte: Tensor, batch: dict[str, Tensor]) -> dict:
    return modnet_losses(pred_semantic, pred_detail, pred_matte, batch["image"], batch["trimap"], batch["gt"])


def test_modnet_losses_are_zero_for_perfect_predictions_and_grow_with_error() -> None:
    batch = _matting_batch()
    gt = batch["gt"]
    perfect = _modnet(modnet_semantic_target(gt), gt, gt, batch)
    assert set(perfect) == {"semantic", "detail", "matte", "total"}
    assert all(value.item() == 0.0 for value in perfect.values())
    for scale in (0.1, 0.3):
        noisy = _modnet(modnet_semantic_target(gt) + scale, gt + scale, gt + scale, batch)
        assert all(value.item() > 0 for value in noisy.values())
    small = _modnet(modnet_semantic_target(gt) + 0.1, gt + 0.1, gt + 0.1, batch)
    large = _modnet(modnet_semantic_target(gt) + 0.3, gt + 0.3, gt + 0.3, batch)
    assert all(large[name] > small[name] for name in small)


def test_modnet_losses_hand_computed_values_and_scales() -> None:
    batch = _matting_batch()
    gt = batch["gt"]
    band = unknown_region(batch["trimap"])
    losses = _modnet(modnet_semantic_target(gt) + 0.1, gt + 0.2, gt + 0.05, batch)
    assert losses["semantic"].item() == pytest.approx(10 * 0.01, rel=1e-4)
    assert losses["detail"].item() == pytest.approx(10 * 0.2, rel=1e-4)  # mean over the band
    weight = 1 + 4 * band
    l1 = (weight * 0.05).mean()
    compositional = (weight * batch["image"] * 0.05).mean()
    assert losses["matte"].item() == pytest.approx((l1 + compositional).item(), rel=1e-4)
    total = losses["semantic"] + losses["detail"] + losses["matte"]
    assert losses["total"].item() == pytest.approx(total.item())
    rescaled = modnet_losses(
        modnet_semantic_target(gt) + 0.1, gt + 0.2, gt + 0.05, batch["image"], batch["trimap"], gt,
        semantic_scale=1.0, detail_scale=2.0, matte_scale=3.0,
    )  # fmt: skip
    assert rescaled["semantic"].item() == pytest.approx(losses["semantic"].item() / 10, rel=1e-5)
    assert rescaled["detail"].item() == pytest.approx(losses["detail"].item() / 5, rel=1e-5)
    assert rescaled["matte"].item() == pytest.approx(losses["matte"].item() * 3, rel=1e-5)


def test_modnet_detail_loss_ignores_pixels_outside_the_band() -> None:
    batch = _matting_batch()
    gt, band = batch["gt"], unknown_region(batch["trimap"])
    assert 0 < band.sum() < band.numel()
    detail = (gt + 0.1).requires_grad_()
    losses = _modnet(modnet_semantic_target(gt), detail, gt, batch)
    changed = torch.where(band > 0, gt + 0.1, torch.rand_like(gt))
    assert _modnet(modnet_semantic_target(gt), changed, gt, batch)["detail"].item() == pytest.approx(
        losses["detail"].item(), abs=1e-7
    )
    losses["detail"].backward()
    assert detail.grad is not None
    assert detail.grad[band == 0].abs().max().item() == 0.0 and detail.grad[band > 0].abs().min().item() > 0


def test_modnet_detail_loss_is_zero_without_a_band() -> None:
    batch = _matting_batch()
    batch["trimap"] = (batch["gt"] > 0.5).float()
    losses = _modnet(modnet_semantic_target(batch["gt"]), torch.rand_like(batch["gt"]), batch["gt"], batch)
    assert losses["detail"].item() == 0.0


def test_modnet_matte_loss_weights_the_band_five_times_and_composites_with_the_image() -> None:
    batch = _matting_batch(n=1)
    gt, band = batch["gt"], unknown_region(batch["trimap"])
    inside = torch.nonzero(band[0, 0])[0].tolist()
    outside = torch.nonzero(band[0, 0] == 0)[0].tolist()

    def matte_loss_with_error_at(row: int, column: int, image: Tensor) -> float:
        pred = gt.clone()
        pred[0, 0, row, column] += 0.1
        batch_image = dict(batch, image=image)
        return _modnet(modnet_semantic_target(gt), gt, pred, batch_image)["matte"].item()

    white, black = torch.ones_like(batch["image"]), torch.zeros_like(batch["image"])
    pixels = gt.numel()
    # white image: the L1 term and the compositional term (over 3 channels) each give 0.1 * weight / pixels
    assert matte_loss_with_error_at(*outside, white) == pytest.approx(2 * 0.1 / pixels, rel=1e-4)
    assert matte_loss_with_error_at(*inside, white) == pytest.approx(5 * 2 * 0.1 / pixels, rel=1e-4)
    # black image: the compositional term vanishes
    assert matte_loss_with_error_at(*outside, black) == pytest.approx(0.1 / pixels, rel=1e-4)


def test_modnet_losses_backpropagate_into_every_branch_of_the_model() -> None:
    model = MODNet()
    batch = _matting_batch(n=2, size=64)
    semantic, detail, matte = model(batch["image"] * 2 - 1, inference=False)
    assert semantic is not None and detail is not None
    losses = _modnet(semantic, detail, matte, batch)
    assert all(torch.isfinite(value) for value in losses.values())
    losses["total"].backward()
    for branch in (model.lr_branch, model.hr_branch, model.f_branch):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in branch.parameters())


def test_modnet_losses_name_the_bad_argument_and_its_expected_shape() -> None:
    batch = _matting_batch()
    gt = batch["gt"]
    with pytest.raises(ValueError, match=r"pred_semantic must be .*\(2, 1, 2, 2\); got shape \(2, 1, 4, 4\)"):
        _modnet(torch.zeros(2, 1, 4, 4), gt, gt, batch)
    with pytest.raises(ValueError, match=r"image must be .*\(2, 3, 32, 32\); got shape \(2, 1, 32, 32\)"):
        modnet_losses(modnet_semantic_target(gt), gt, gt, gt, batch["trimap"], gt)
    with pytest.raises(ValueError, match=r"pred_matte must be"):
        _modnet(modnet_semantic_target(gt), gt, gt[:, :, :16], batch)


# --- MNet (SHM) -------------------------------------------------------------------------------------------


def _composite_batch(n: int = 2, size: int = 16, seed: int = 0) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    batch = _matting_batch(n, size, seed)
    batch["foreground"] = torch.rand(n, 3, size, size, generator=generator)
    batch["background"] = torch.rand(n, 3, size, size, generator=generator)
    gt = batch["gt"]
    batch["image"] = gt * batch["foreground"] + (1 - gt) * batch["background"]
    return batch


def _shm(pred: Tensor, batch: dict[str, Tensor], **kwargs: float) -> Tensor:
    return mnet_loss(
        pred, batch["gt"], batch["image"], batch["foreground"], batch["background"], batch["trimap"], **kwargs
    )


def test_mnet_loss_is_eps_for_a_perfect_alpha_and_grows_with_error() -> None:
    batch = _composite_batch()
    assert _shm(batch["gt"], batch).item() == pytest.approx(1e-6, abs=1e-7)
    errors = [_shm((batch["gt"] + offset).clamp(0, 1), batch).item() for offset in (0.05, 0.2, 0.5)]
    assert errors == sorted(errors) and errors[0] > 1e-3


def test_mnet_loss_hand_computed_with_foreground_and_background() -> None:
    ones = torch.ones(1, 1, 4, 4)
    batch = {"gt": ones * 0.5, "trimap": ones * 0.5, "foreground": torch.ones(1, 3, 4, 4)}
    batch["background"] = torch.zeros(1, 3, 4, 4)
    batch["image"] = torch.full((1, 3, 4, 4), 0.5)
    # alpha off by 0.2, composite 0.7 vs 0.5: 0.5 * 0.2 + 0.5 * 0.2
    assert _shm(ones * 0.7, batch, eps=0.0).item() == pytest.approx(0.2, rel=1e-5)
    # a darker foreground halves the composite error: 0.5 * 0.2 + 0.5 * 0.1
    batch["foreground"] = torch.full((1, 3, 4, 4), 0.5)
    batch["image"] = torch.full((1, 3, 4, 4), 0.25)
    assert _shm(ones * 0.7, batch, eps=0.0).item() == pytest.approx(0.15, rel=1e-5)
    # with foreground == background == image the composite is right whatever alpha is
    batch["foreground"] = batch["background"] = batch["image"] = torch.full((1, 3, 4, 4), 0.3)
    assert _shm(ones * 0.7, batch, eps=0.0).item() == pytest.approx(0.1, rel=1e-5)


def test_mnet_loss_only_counts_the_unknown_region() -> None:
    batch = _composite_batch()
    unknown = unknown_region(batch["trimap"])
    pred = (batch["gt"] + 0.1).clamp(0, 1).requires_grad_()
    loss = _shm(pred, batch)
    changed = torch.where(unknown > 0, pred.detach(), torch.rand_like(pred))
    assert _shm(changed, batch).item() == pytest.approx(loss.item(), abs=1e-7)
    loss.backward()
    assert pred.grad is not None and pred.grad[unknown == 0].abs().max().item() == 0.0
    assert pred.grad[unknown > 0].abs().sum().item() > 0
    batch["trimap"] = (batch["gt"] > 0.5).float()
    assert _shm(pred.detach(), batch).item() == 0.0


def test_mnet_loss_names_the_bad_argument() -> None:
    batch = _composite_batch()
    with pytest.raises(ValueError, match=r"foreground must be .*\(2, 3, 16, 16\); got shape \(2, 1, 16, 16\)"):
        mnet_loss(batch["gt"], batch["gt"], batch["image"], batch["gt"], batch["background"], batch["trimap"])
