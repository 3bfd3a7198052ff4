"""cutout.models.mnet: SHM's MNet refiner (structure, shapes, width, gradients, trimap encoding).

Run with ``python -m pytest tests/test_mnet.py -q``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cutout.errors import UsageError
from cutout.models import build_model, load_checkpoint
from cutout.models.mnet import MNET_STRIDE, MNet, _unpool, mnet_input, trimap_one_hot
from train.losses import mnet_loss


@pytest.fixture(scope="module")
def slim() -> MNet:
    torch.manual_seed(0)
    return MNet(width=0.25).eval()


def _convs(model: nn.Module, kernel_size: int) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (kernel_size, kernel_size)]


def test_layout_follows_shm_13_encoder_convs_4_pools_6_decoder_convs() -> None:
    model = MNet(width=0.25)
    assert len(_convs(model, 3)) == 13 and len(_convs(model, 5)) == 6
    assert model.pool.return_indices
    assert MNET_STRIDE == 2**4
    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(batch_norms) == 13 + 5  # every convolution but the alpha head
    assert model.encode1[0][0].in_channels == 6 and model.alpha_head.out_channels == 1


@pytest.mark.parametrize("size", [(4, 4), (6, 10)])
def test_unpooling_is_max_unpool_2d(size: tuple[int, int]) -> None:
    x = torch.randn(2, 3, 2 * size[0], 2 * size[1])
    pooled, indices = nn.MaxPool2d(2, 2, return_indices=True)(x)
    expected = nn.MaxUnpool2d(2, 2)(pooled, indices)
    torch.testing.assert_close(_unpool(pooled, indices), expected, rtol=0, atol=0)


@pytest.mark.parametrize("size", [(16, 16), (32, 48), (37, 50), (65, 17)])
def test_output_is_one_alpha_channel_in_0_1_at_the_input_size(slim: MNet, size: tuple[int, int]) -> None:
    x = torch.rand(2, 6, *size)
    with torch.no_grad():
        alpha = slim(x)
    assert alpha.shape == (2, 1, *size)
    assert torch.isfinite(alpha).all() and alpha.min() > 0 and alpha.max() < 1


def test_odd_sizes_equal_running_on_the_edge_padded_input_and_cropping(slim: MNet) -> None:
    x = torch.rand(1, 6, 37, 50)
    padded = F.pad(x, (0, 14, 0, 11), mode="replicate")  # to 48 x 64
    with torch.no_grad():
        assert torch.allclose(slim(x), slim(padded)[:, :, :37, :50], atol=1e-6)


def test_width_scales_every_channel_count_and_the_parameter_count() -> None:
    counts = {width: sum(p.numel() for p in MNet(width=width).parameters()) for width in (0.25, 0.5, 1.0)}
    assert counts[0.25] < counts[0.5] < counts[1.0]
    assert counts[1.0] / counts[0.25] == pytest.approx(16, rel=0.01)  # convolutions scale with width^2
    full, half = MNet(width=1.0), MNet(width=0.5)
    assert [c.out_channels for c in _convs(full, 3)][::3] == [64, 128, 256, 512, 512]
    assert [c.out_channels for c in _convs(half, 3)][::3] == [32, 64, 128, 256, 256]
    with pytest.raises(ValueError, match="width"):
        MNet(width=0)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(1)
    model = MNet(width=0.25).train()
    image = torch.rand(2, 3, 32, 32)
    gt = torch.rand(2, 1, 32, 32)
    trimap = torch.full((2, 1, 32, 32), 0.5)
    trimap[:, :, :8] = 0.0
    alpha = model(mnet_input(image, trimap))
    foreground, background = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    composite = gt * foreground + (1 - gt) * background
    mnet_loss(alpha, gt, composite, foreground, background, trimap).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_trimap_one_hot_marks_exactly_one_region_per_pixel() -> None:
    trimap = torch.tensor([0.0, 0.5, 1.0, 128 / 255, 0.1, 0.9, 0.3]).view(1, 1, 1, 7)
    one_hot = trimap_one_hot(trimap)
    assert one_hot.shape == (1, 3, 1, 7) and one_hot.dtype == torch.float32
    # channels: background, unknown, foreground
    assert one_hot[0, :, 0].T.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]]
    as_bytes = trimap_one_hot(torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 1, 3))
    assert as_bytes.dtype == torch.float32 and as_bytes[0, :, 0].T.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert trimap_one_hot(trimap.double()).dtype == torch.float64
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\); got \(1, 7\)"):
        trimap_one_hot(trimap.view(1, 7))
    with pytest.raises(ValueError, match="got dtype torch.int64"):
        trimap_one_hot(torch.zeros(1, 1, 2, 2, dtype=torch.long))


def test_mnet_input_stacks_image_and_one_hot_trimap() -> None:
    image, trimap = torch.rand(2, 3, 8, 8), torch.full((2, 1, 8, 8), 0.5)
    x = mnet_input(image, trimap)
    assert x.shape == (2, 6, 8, 8)
    assert torch.equal(x[:, :3], image) and torch.equal(x[:, 4], torch.ones(2, 8, 8))
    with pytest.raises(ValueError, match="image must have shape"):
        mnet_input(image[:, :, :4], trimap)


def test_forward_rejects_the_wrong_channel_count(slim: MNet) -> None:
    with pytest.raises(ValueError, match=r"\(N, 6, H, W\).*got \(1, 3, 32, 32\)"):
        slim(torch.rand(1, 3, 32, 32))


def test_build_model_makes_mnet_and_its_state_dict_round_trips() -> None:
    model = build_model("mnet", width=0.25)
    assert isinstance(model, MNet) and model.width == 0.25 and model.training
    copy = MNet(width=0.25)
    load_checkpoint(copy, model.state_dict())
    x = torch.rand(1, 6, 32, 32)
    with torch.no_grad():
        assert torch.equal(copy.eval()(x), model.eval()(x))
    with pytest.raises(UsageError, match="width"):
        build_model("u2netp", width=0.5)
    with pytest.raises(UsageError, match="out_channels=2"):
        build_model("mnet", out_channels=2)
