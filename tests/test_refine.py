"""Edge refinement as the API and the commands use it: none / guided / mnet, and foreground estimation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cutout
from cutout.api import spec_for
from cutout.errors import UsageError
from cutout.refine.refiner import MNET_CONTEXT, MNET_TILE, MNetRefiner, _band_tiles, _network_input, refine_mask
from cutout.refine.trimap import trimap_from_alpha
from cutout.registry import SPECS

torch = pytest.importorskip("torch")


def disc(height: int, width: int, radius: float, soft: float = 4.0) -> np.ndarray:
    """A soft-edged disc in the middle. Shape: (height, width) uint8."""
    y, x = np.mgrid[0:height, 0:width]
    distance = np.hypot(y - height / 2, x - width / 2) - radius
    return np.clip(128 - distance * 128 / soft, 0, 255).astype(np.uint8)


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def mnet_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded, untrained slim MNet exported as `cutout train --model mnet` exports it (torch + ONNX + spec)."""
    from cutout.models.mnet import MNet
    from train.export import export_model

    torch.manual_seed(0)
    model = MNet(width=0.25)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a wrong normalisation shows in the output
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return export_model(model, "mnet-test", "mnet", tmp_path_factory.mktemp("models"))


@pytest.mark.parametrize("shape", [(1000, 700), (320, 320), (100, 900), (40, 30)])
def test_band_tiles_cover_every_unknown_pixel_once_with_windows_of_one_size(shape: tuple[int, int]) -> None:
    unknown = trimap_from_alpha(disc(*shape, min(shape) / 3)) == 128
    covered = np.zeros(shape, int)
    sizes = set()
    for (top, bottom, left, right), (ctop, cbottom, cleft, cright) in _band_tiles(unknown):
        assert top <= ctop < cbottom <= bottom and left <= cleft < cright <= right
        assert top >= 0 and left >= 0 and bottom <= shape[0] and right <= shape[1]
        covered[ctop:cbottom, cleft:cright] += 1
        sizes.add((bottom - top, right - left))
    assert covered[unknown].min() == 1 and covered.max() == 1
    assert len(sizes) == 1 and max(next(iter(sizes))) <= MNET_TILE
    assert MNET_TILE > 2 * MNET_CONTEXT


def test_mnet_refiner_equals_the_torch_network_on_the_unknown_band(mnet_folder: Path) -> None:
    from cutout.convert import load_torch_model
    from cutout.models.mnet import mnet_input
    from cutout.registry import spec_from_file

    session = cutout.new_session("u2netp", device="cpu")  # in float32: on a GPU torch runs MNet in float16
    refiner = session.refiner(mnet_folder)
    rgb, alpha = photo(200, 240), disc(200, 240, 60)
    refined = refiner.refine(rgb, alpha)
    trimap = trimap_from_alpha(alpha)
    unknown = trimap == 128
    assert np.array_equal(refined[~unknown], alpha[~unknown])  # only the band changes
    spec = spec_from_file(mnet_folder / "spec.json")
    assert spec.architecture == "mnet" and spec.width == 0.25 and spec.normalization == SPECS["modnet"].normalization
    model = load_torch_model(spec, mnet_folder / "model.pth")
    image = torch.from_numpy(_network_input(spec.normalization, rgb, trimap)[None, :3])
    with torch.no_grad():
        expected = model(mnet_input(image, torch.from_numpy(trimap)[None, None])).numpy()[0, 0]
    expected8 = np.clip(expected * 255 + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(refined[unknown].astype(int) - expected8[unknown]).max() <= 1  # ONNX vs torch rounding


def test_mnet_refiner_on_the_torch_backend_equals_the_onnx_one(mnet_folder: Path) -> None:
    # the torch backend split MNet's single output tensor along the batch (IndexError in --refine mnet), which is
    # what a GPU without onnxruntime-gpu runs: auto picks torch on CUDA there
    rgb, alpha = photo(300, 260, seed=2), disc(300, 260, 90)
    by_onnx = cutout.new_session("u2netp", backend="onnx", device="cpu").refiner(mnet_folder).refine(rgb, alpha)
    by_torch = cutout.new_session("u2netp", backend="torch", device="cpu").refiner(mnet_folder).refine(rgb, alpha)
    assert not np.array_equal(by_onnx, alpha)
    assert np.abs(by_onnx.astype(int) - by_torch).max() <= 1


def test_a_file_of_an_exported_model_follows_the_spec_beside_it(mnet_folder: Path) -> None:
    # --refiner weights/mnet-test/model.onnx was taken for a u2netp model by its name ("the refiner must be an
    # MNet"), and --model FOLDER/model.onnx of a trained MODNet got u2netp's size and normalisation
    session = cutout.new_session("u2netp")
    rgb, alpha = photo(200, 240, seed=3), disc(200, 240, 60)
    by_folder = session.refiner(mnet_folder).refine(rgb, alpha)
    for name in ("model.onnx", "model.pth"):
        spec, weights = spec_for(mnet_folder / name)
        assert (spec.architecture, spec.name, weights) == ("mnet", "mnet-test", mnet_folder / name)
    np.testing.assert_array_equal(session.refiner(mnet_folder / "model.onnx").refine(rgb, alpha), by_folder)
    (mnet_folder.parent / "u2netp-copy.onnx").write_bytes((mnet_folder / "model.onnx").read_bytes())
    assert spec_for(mnet_folder.parent / "u2netp-copy.onnx")[0].name == "u2netp"  # no spec beside: its name


def test_mnet_refiner_on_a_large_image_works_at_its_working_size(mnet_folder: Path) -> None:
    session = cutout.new_session("u2netp")
    rgb, alpha = photo(1500, 2100, seed=1), disc(1500, 2100, 500, soft=10)
    refined = session.refiner(mnet_folder).refine(rgb, alpha)
    unknown = trimap_from_alpha(alpha) == 128
    assert refined.shape == alpha.shape and refined.dtype == np.uint8
    assert np.array_equal(refined[~unknown], alpha[~unknown])
    assert not np.array_equal(refined[unknown], alpha[unknown])


def test_the_refiner_must_be_an_mnet() -> None:
    predictor = cutout.new_session("u2netp").predictor
    with pytest.raises(UsageError, match="must be an MNet"):
        MNetRefiner(predictor)


def test_a_missing_refiner_is_told_apart_from_a_missing_file(tmp_path: Path) -> None:
    # both said "no MNet refiner X (unknown model ...; known models are: u2netp, ...)", and a missing file was
    # told to train one with --name /path/to/file.onnx
    session = cutout.new_session("u2netp")
    with pytest.raises(UsageError) as named:  # a name no one trains here ("mnet" may be trained in this cache)
        session.refiner("hair-refiner")
    assert "no MNet refiner named 'hair-refiner': cutout ships none" in str(named.value)
    assert "--name hair-refiner" in str(named.value) and "known models" not in str(named.value)
    with pytest.raises(UsageError) as missing:
        session.refiner(tmp_path / "mnet.onnx")
    assert "does not exist; --refiner takes a trained MNet's name, folder or file" in str(missing.value)
    assert "--name" not in str(missing.value)


def test_refine_mask_none_is_the_identity_and_unknown_methods_are_refused() -> None:
    rgb, alpha = photo(64, 80), disc(64, 80, 20)
    assert refine_mask(rgb, alpha, "none") is alpha
    with pytest.raises(UsageError, match="mnet"):
        refine_mask(rgb, alpha, "mnet")
    with pytest.raises(UsageError, match="unknown refinement"):
        cutout.make_options(refine="closed-form")


def test_guided_refinement_through_the_api_changes_only_the_edge() -> None:
    rgb = photo(120, 160)
    session = cutout.new_session("u2netp")
    coarse = cutout.remove(rgb, session=session, only_mask=True)
    refined = cutout.remove(rgb, session=session, only_mask=True, refine="guided")
    band = trimap_from_alpha(coarse) == 128
    assert np.array_equal(coarse[~band], refined[~band])


def test_foreground_estimation_changes_only_soft_pixels_and_can_be_turned_off() -> None:
    rgb = np.asarray(Image.open(Path(__file__).parents[1] / "examples" / "images" / "astronaut.jpg").convert("RGB"))
    session = cutout.new_session("u2netp")
    estimated = cutout.remove(rgb, session=session)
    raw = cutout.remove(rgb, session=session, foreground_estimation=False)
    alpha = raw[..., 3]
    assert np.array_equal(estimated[..., 3], alpha)
    opaque = alpha == 255
    assert np.array_equal(estimated[opaque], raw[opaque])
    soft = (alpha > 0) & (alpha < 255)
    assert soft.sum() > 100 and (estimated[soft][:, :3] != raw[soft][:, :3]).any()
    assert np.array_equal(raw[alpha > 0][:, :3], rgb[alpha > 0])  # off: the photo's own colours


def test_cli_refine_options(tmp_path: Path, mnet_folder: Path, u2netp_onnx: Path) -> None:
    source = Path(__file__).parents[1] / "examples" / "images" / "chelsea.jpg"
    for flags in (["--refine", "guided"], ["--refine", "mnet", "--refiner", str(mnet_folder)]):
        out = tmp_path / f"{flags[1]}.png"
        run = subprocess.run(
            [sys.executable, "-m", "cutout", "image", str(source), str(out), *flags, "--no-foreground-estimation"],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
        assert Image.open(out).mode == "RGBA"
    missing = ["--refine", "mnet", "--refiner", "no-such-refiner"]
    run = subprocess.run(
        [sys.executable, "-m", "cutout", "image", str(source), str(tmp_path / "x.png"), *missing],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "cutout train --model mnet" in run.stderr, run.stderr
    assert not (tmp_path / "x.png").exists()
