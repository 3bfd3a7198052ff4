"""sRGB backgrounds into an HDR clip's signal: the anchors of BT.2100 and BT.2408."""

from __future__ import annotations

import numpy as np
import pytest

from cutout.compose import Background, compose
from cutout.errors import UsageError
from cutout.hdr import (
    BT2020,
    HLG,
    PQ,
    _hlg_encode,
    _pq_encode,
    _srgb_to_linear,
    colour_to_hdr,
    hdr_to_sdr,
    is_hdr,
    sdr_to_hdr,
)


def test_the_transfer_functions_meet_their_defining_points() -> None:
    # PQ: 100 cd/m2 is 50.8% of the signal, 10000 is all of it; HLG's OETF is 0.5 at 1/12 and 1 at 1
    assert _pq_encode(np.float32(100 / 10000)) == pytest.approx(0.5081, abs=2e-4)
    assert _pq_encode(np.float32(1.0)) == pytest.approx(1.0, abs=1e-6)
    grey = np.ones(3, np.float32)
    luma = np.array([0.2627, 0.6780, 0.0593], np.float32)
    # for grey the inverse OOTF is Y^(1/1.2): scene light 1/12 and 1 are display 1/12^1.2 and 1
    assert _hlg_encode(grey * (1 / 12) ** 1.2, luma) == pytest.approx(0.5, abs=1e-5)
    assert _hlg_encode(grey, luma) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(("transfer", "white"), [(HLG, 191), (PQ, 148)])
def test_srgb_white_is_bt2408_graphics_white_and_black_stays_black(transfer: int, white: int) -> None:
    # BT.2408: 203 cd/m2, 75% of the HLG signal and 58% of PQ's: not the peak (1000 or 10000 cd/m2)
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    signal = sdr_to_hdr(ramp, transfer, BT2020)
    assert tuple(signal[255]) == (white,) * 3 and tuple(signal[0]) == (0, 0, 0)
    assert (np.diff(signal[:, 0].astype(int)) >= 0).all() and (signal == signal[:, :1]).all()  # greys stay grey


def test_bt2020_primaries_take_srgb_colours_inward() -> None:
    # sRGB red read as BT.2020 red would be far more saturated: converted, it has green and blue in it
    red = sdr_to_hdr(np.array([[255, 0, 0]], np.uint8), HLG, BT2020)[0]
    assert red[0] > red[1] > red[2] > 0
    same_primaries = sdr_to_hdr(np.array([[255, 0, 0]], np.uint8), HLG, 1)[0]
    assert same_primaries[1] == same_primaries[2] == 0
    assert colour_to_hdr((255, 255, 255, 128), PQ, BT2020) == (148, 148, 148, 128)
    assert is_hdr(HLG) and is_hdr(PQ) and not is_hdr(1) and not is_hdr(2)


def test_a_background_converts_its_colour_and_image_into_the_signal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    rgb, alpha = np.zeros((4, 6, 3), np.uint8), np.zeros((4, 6), np.uint8)
    white = compose(rgb, alpha, Background("color", color=(255, 255, 255, 255), hdr=(HLG, BT2020)))
    assert (white == 191).all()
    Image.new("RGB", (12, 8), (255, 255, 255)).save(tmp_path / "white.png")
    image = compose(rgb, alpha, Background("image", path=tmp_path / "white.png", hdr=(PQ, BT2020)))
    assert (image == 148).all()
    plain = compose(rgb, alpha, Background("image", path=tmp_path / "white.png"))
    assert (plain == 255).all()  # the SDR cache entry is its own
    with pytest.raises(UsageError, match="HDR transfer"):
        Background("color", hdr=(1, 1))


@pytest.mark.parametrize("transfer", [HLG, PQ])
def test_tone_mapping_back_to_sdr_undoes_the_conversion_below_white_and_keeps_highlights(transfer: int) -> None:
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    back = hdr_to_sdr(sdr_to_hdr(ramp, transfer, BT2020), transfer, BT2020)
    assert (back == back[:, :1]).all() and (np.diff(back[:, 0].astype(int)) >= 0).all()  # greys, in order
    assert np.abs(back[:231, 0].astype(int) - np.arange(231)).max() <= 2  # below the shoulder: as they were
    assert back[255, 0] == 251  # white, on the shoulder; the signal's peak is the brightest SDR white
    assert tuple(hdr_to_sdr(np.full((1, 3), 255, np.uint8), transfer, BT2020)[0]) == (255, 255, 255)
    colours = np.random.default_rng(0).integers(0, 230, (5000, 3)).astype(np.uint8)
    same_primaries = hdr_to_sdr(sdr_to_hdr(colours, transfer, 1), transfer, 1).astype(int)
    assert np.abs(same_primaries - colours).max() <= 2
    # in 8-bit BT.2020 a saturated colour's small channels are coarse: close in light, not in code values
    wide = hdr_to_sdr(sdr_to_hdr(colours, transfer, BT2020), transfer, BT2020)
    linear = _srgb_to_linear()
    assert np.abs(linear[wide] - linear[colours]).max() < 0.035 and np.abs(wide.astype(int) - colours).mean() < 1.5
