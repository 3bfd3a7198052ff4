"""SDR colours and pictures in an HDR video's own signal (a ``--bg`` shows as on an SDR screen), and back.

    >>> from cutout.hdr import is_hdr, sdr_to_hdr
    >>> is_hdr(18)                                  # ARIB STD-B67: HLG, what phones record
    True
    >>> sdr_to_hdr(np.full((1, 1, 3), 255, np.uint8), 18, 9)[0, 0]   # sRGB white in BT.2020 HLG   # doctest: +SKIP
    array([191, 191, 191], dtype=uint8)

A phone's HDR clip (HLG or PQ, BT.2020 primaries) is decoded as it is stored, as HDR signal values, and written
back with the same tags, so the subject keeps its HDR look. A background composed into it must be in that signal
too. Taken as it is, an sRGB photo's colours would be read as BT.2020's, much more saturated, and its white as the
signal's peak: 1000 cd/m2 in HLG, 10000 in PQ, glaring next to the subject. Here an sRGB colour is decoded to
linear light, moved to BT.2020 primaries, placed with its white at 203 cd/m2 (graphics white in ITU-R BT.2408,
the level SDR content is given in HDR programmes), and encoded with the clip's transfer function: PQ (SMPTE ST
2084) or HLG (ITU-R BT.2100, for a 1000 cd/m2 display, system gamma 1.2). sRGB white becomes 75% of the signal in
HLG, 58% in PQ, as BT.2408 gives.

The other way, :func:`hdr_to_sdr` tone-maps an HDR clip's frames to sRGB for outputs that cannot say they are HDR
(PNG, GIF, WebP): shown as sRGB, an HLG or PQ signal looks pale and flat.
"""

from __future__ import annotations

import functools

import numpy as np

PQ, HLG = 16, 18  # AVColorTransferCharacteristic: SMPTE ST 2084, ARIB STD-B67
BT2020 = 9  # AVColorPrimaries
NAMES = {PQ: "PQ", HLG: "HLG"}
REFERENCE_WHITE = 203.0  # cd/m2: SDR (graphics) white in an HDR programme, ITU-R BT.2408
_HLG_PEAK, _HLG_GAMMA = 1000.0, 1.2  # the reference HLG display of BT.2100
_PQ_PEAK = 10000.0
# BT.709 -> BT.2020 linear RGB (ITU-R BT.2087)
_709_TO_2020 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]], np.float32)
_2020_TO_709 = np.linalg.inv(_709_TO_2020).astype(np.float32)
_LUMA_2020 = np.array([0.2627, 0.6780, 0.0593], np.float32)
_LUMA_709 = np.array([0.2126, 0.7152, 0.0722], np.float32)
# SMPTE ST 2084 (PQ) and BT.2100 HLG constants
_PQ_M1, _PQ_M2 = 2610 / 16384, 2523 / 4096 * 128
_PQ_C1, _PQ_C2, _PQ_C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
_HLG_A, _HLG_B, _HLG_C = 0.17883277, 0.28466892, 0.55991073


def is_hdr(transfer: int) -> bool:
    """Whether an AVColorTransferCharacteristic is an HDR one (PQ or HLG)."""
    return transfer in NAMES


def sdr_to_hdr(rgb: np.ndarray, transfer: int, primaries: int) -> np.ndarray:
    """sRGB pixels in an HDR video's signal: PQ or HLG, BT.2020 primaries if ``primaries`` says so.

    Colours outside BT.709 cannot come from sRGB, so no gamut is lost; the result is rounded to 8 bits, as the
    frames it joins.

    Shape: (..., 3) uint8 -> (..., 3) uint8.
    """
    _check(rgb, transfer, "sRGB")
    linear = _srgb_to_linear()[rgb]  # 1.0: SDR white
    luma = _LUMA_709
    if primaries == BT2020:
        linear = linear @ _709_TO_2020.T
        luma = _LUMA_2020
    if transfer == PQ:
        signal = _pq_encode(linear * np.float32(REFERENCE_WHITE / _PQ_PEAK))
    else:
        signal = _hlg_encode(linear * np.float32(REFERENCE_WHITE / _HLG_PEAK), luma)
    return np.rint(np.clip(signal, 0.0, 1.0) * 255).astype(np.uint8)


def hdr_to_sdr(rgb: np.ndarray, transfer: int, primaries: int) -> np.ndarray:
    """HDR signal pixels (PQ or HLG; BT.2020 primaries if ``primaries`` says so) as sRGB, for outputs that cannot
    carry HDR (PNG, GIF, WebP): the inverse of :func:`sdr_to_hdr` up to graphics white, highlights compressed.

    Display light is taken relative to graphics white (203 cd/m2 = 1.0) and moved to BT.709 primaries; luminance
    up to 0.9 is kept as it is, above it a soft shoulder takes everything up to the brightest the signal holds
    into 0.9 .. 1.0 (white itself lands at 0.963, sRGB 251), colours scaled with their luminance so highlights keep
    their hue; colours outside BT.709 are clipped. A PQ clip is taken as mastered for 1000 cd/m2, as most are.

    Shape: (..., 3) uint8 -> (..., 3) uint8.
    """
    _check(rgb, transfer, "HDR signal")
    luma = _LUMA_2020 if primaries == BT2020 else _LUMA_709
    if transfer == PQ:
        display = _pq_decode()[rgb] * np.float32(_PQ_PEAK / REFERENCE_WHITE)
    else:
        scene = _hlg_decode()[rgb]
        display = scene * np.power(np.maximum(scene @ luma, 1e-12), _HLG_GAMMA - 1)[..., None]
        display *= np.float32(_HLG_PEAK / REFERENCE_WHITE)
    if primaries == BT2020:
        display = display @ _2020_TO_709.T
    display = np.maximum(display, 0.0)
    y = display @ _LUMA_709
    knee, peak = _KNEE, _HLG_PEAK / REFERENCE_WHITE
    over = y > knee
    if over.any():
        shoulder = knee + (1 - knee) * (1 - np.exp(-(np.minimum(y[over], peak) - knee) / (1 - knee)))
        display[over] *= (shoulder / y[over])[:, None]
    return _linear_to_srgb(np.clip(display, 0.0, 1.0))


_KNEE = 0.9  # hdr_to_sdr keeps display luminance up to this (relative to graphics white) as it is


def _check(rgb: np.ndarray, transfer: int, what: str) -> None:
    if transfer not in NAMES:
        raise ValueError(f"transfer {transfer} is not PQ ({PQ}) or HLG ({HLG})")
    if rgb.dtype != np.uint8 or rgb.shape[-1:] != (3,):
        raise ValueError(f"expected (..., 3) uint8 {what}, got {rgb.shape} {rgb.dtype}")


def colour_to_hdr(colour: tuple[int, int, int, int], transfer: int, primaries: int) -> tuple[int, int, int, int]:
    """An sRGB colour (alpha kept) in an HDR video's signal: see :func:`sdr_to_hdr`."""
    r, g, b = (int(v) for v in sdr_to_hdr(np.array([colour[:3]], np.uint8), transfer, primaries)[0])
    return r, g, b, colour[3]


@functools.cache
def _srgb_to_linear() -> np.ndarray:
    """The sRGB decoding curve (IEC 61966-2-1) for each 8-bit value.

    Shape: -> (256,) float32.
    """
    v = np.arange(256) / 255
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _pq_encode(display: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084's inverse EOTF: display light (1.0 = 10000 cd/m2) to signal."""
    y = np.power(np.maximum(display, 0.0), _PQ_M1)
    return np.power((_PQ_C1 + _PQ_C2 * y) / (1 + _PQ_C3 * y), _PQ_M2)


def _hlg_encode(display: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """BT.2100 HLG's inverse EOTF for its reference display: display light (1.0 = 1000 cd/m2) to signal.

    The inverse OOTF takes display light back to scene light, E_s = E_d Y_d^((1 - gamma) / gamma) with Y_d its
    luminance; the OETF encodes that.
    """
    y = np.maximum(display @ luma, 1e-12)[..., None]
    scene = display * np.power(y, (1 - _HLG_GAMMA) / _HLG_GAMMA)
    scene = np.maximum(scene, 0.0)
    low = np.sqrt(3 * scene)
    high = _HLG_A * np.log(np.maximum(12 * scene - _HLG_B, 1e-12)) + _HLG_C
    return np.where(scene <= 1 / 12, low, high)


@functools.cache
def _pq_decode() -> np.ndarray:
    """SMPTE ST 2084's EOTF for each 8-bit signal value: display light, 1.0 = 10000 cd/m2.

    Shape: -> (256,) float32.
    """
    e = np.power(np.arange(256) / 255, 1 / _PQ_M2)
    return np.power(np.maximum(e - _PQ_C1, 0) / (_PQ_C2 - _PQ_C3 * e), 1 / _PQ_M1).astype(np.float32)


@functools.cache
def _hlg_decode() -> np.ndarray:
    """BT.2100 HLG's inverse OETF for each 8-bit signal value: scene light, 0 .. 1.

    Shape: -> (256,) float32.
    """
    v = np.arange(256) / 255
    return np.where(v <= 0.5, v**2 / 3, (np.exp((v - _HLG_C) / _HLG_A) + _HLG_B) / 12).astype(np.float32)


def _linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """The sRGB encoding of linear light in 0 .. 1, rounded to 8 bits (through a table of 4096 steps).

    Shape: (..., 3) float -> (..., 3) uint8.
    """
    return np.take(_srgb_table(), np.rint(linear * 4095).astype(np.int32))


@functools.cache
def _srgb_table() -> np.ndarray:
    v = np.arange(4096) / 4095
    encoded = np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055)
    return np.rint(encoded * 255).astype(np.uint8)
