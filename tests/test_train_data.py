"""train.data, train.datasets and train.transforms on miniature copies of each published layout, made in tmp_path.

Nothing leaves 127.0.0.1: the DUTS download is served by a local HTTP server.
"""

from __future__ import annotations

import functools
import io
import json
import threading
import warnings
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cutout.errors import InputError, UsageError  # noqa: E402
from cutout.preprocess import model_input  # noqa: E402
from cutout.registry import get_spec  # noqa: E402
from train import datasets as layouts  # noqa: E402
from train.data import (  # noqa: E402
    CompositeDataset,
    PairDataset,
    build_dataset,
    build_datasets,
    normalizer_for,
    split_folder,
)
from train.datasets import IGNORE_INDEX, download_duts, find_p3m  # noqa: E402
from train.transforms import NO_AUGMENT, Augment, make_trimap, rng_for, train_transform  # noqa: E402

RNG = np.random.default_rng(0)


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.fromarray(array).save(path)
    return path


def photo(height: int = 40, width: int = 48) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def disc(height: int = 40, width: int = 48, soft: bool = True) -> np.ndarray:
    """A centred disc, 255 inside, with a soft ramp of a few pixels at its edge."""
    y, x = np.mgrid[0:height, 0:width]
    distance = np.hypot(y - height / 2, x - width / 2)
    radius = min(height, width) / 3
    ramp = np.clip((radius - distance) / (4 if soft else 0.01), 0, 1)
    return np.rint(ramp * 255).astype(np.uint8)


def make_pairs(images: Path, masks: Path, names: list[str], image_ext: str = ".jpg", mask_ext: str = ".png") -> None:
    for name in names:
        save(images / f"{name}{image_ext}", photo())
        save(masks / f"{name}{mask_ext}", disc())


# --- DUTS -------------------------------------------------------------------------------------------------


def make_duts(root: Path, train: int = 2, test: int = 3) -> Path:
    for split, count in (("DUTS-TR", train), ("DUTS-TE", test)):
        make_pairs(root / split / f"{split}-Image", root / split / f"{split}-Mask", [f"s{i}" for i in range(count)])
    return root


@pytest.mark.parametrize("inside", ["", "duts"])
def test_duts_train_and_test_splits(tmp_path: Path, inside: str) -> None:
    make_duts(tmp_path / inside if inside else tmp_path)
    spec = get_spec("u2netp")
    train_set = build_dataset("duts", data_dir=tmp_path, split="train", spec=spec, size=32, download=False)
    val_set = build_dataset("duts", data_dir=tmp_path, split="val", spec=spec, size=32, download=False)
    assert (len(train_set), len(val_set)) == (2, 3)
    sample = val_set[1]
    assert sample["name"] == "s1"
    assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
    assert sample["mask"].shape == (1, 32, 32)
    assert float(sample["mask"].min()) == 0.0 and float(sample["mask"].max()) == 1.0
    assert "trimap" not in sample  # DUTS has none and none was asked for


def test_duts_found_through_cutout_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_duts(tmp_path / "elsewhere")
    monkeypatch.setenv("CUTOUT_DATA", str(tmp_path / "elsewhere"))
    assert len(build_dataset("duts", split="val", size=32, download=False)) == 3


def test_duts_missing_says_where_to_put_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUTOUT_DATA", raising=False)
    with pytest.raises(UsageError, match="DUTS-TR.zip") as caught:
        build_dataset("duts", data_dir=tmp_path, split="train", download=False)
    assert str(tmp_path) in str(caught.value) and "DUTS-TR-Image" in str(caught.value)


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server for a folder: (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/duts/download/", folder
    finally:
        server.shutdown()
        server.server_close()


def zip_of(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            bundle.write(path, path.relative_to(folder.parent).as_posix())
    return buffer.getvalue()


def test_duts_download_from_a_local_server(
    tmp_path: Path, http_folder: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, served = http_folder
    source = make_duts(tmp_path / "source")
    (served / "duts" / "download").mkdir(parents=True)
    for name in ("DUTS-TR", "DUTS-TE"):
        (served / "duts" / "download" / f"{name}.zip").write_bytes(zip_of(source / name))
    monkeypatch.setenv("CUTOUT_DUTS_URL", base_url)
    data = tmp_path / "data"
    with pytest.warns(UserWarning, match="published DUTS-TR has 10553"):
        train_set = build_dataset("duts", data_dir=data, split="train", size=32)
    assert len(train_set) == 2
    assert sorted(p.name for p in (data / "DUTS-TR" / "DUTS-TR-Mask").iterdir()) == ["s0.png", "s1.png"]
    assert not (data / "DUTS-TE").exists()  # only the split asked for
    with pytest.warns(UserWarning, match="DUTS-TE has 5019"):
        download_duts(data, base_url=base_url)
    assert len(build_dataset("duts", data_dir=data, split="val", size=32)) == 3
    assert [p.name for p in data.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_duts_download_failure_names_the_url_and_the_place(tmp_path: Path, http_folder: tuple[str, Path]) -> None:
    base_url, _ = http_folder
    data = tmp_path / "data"
    with pytest.raises(UsageError) as caught:
        download_duts(data, splits=("train",), base_url=base_url)
    message = str(caught.value)
    assert f"{base_url}DUTS-TR.zip" in message and "HTTP 404" in message
    assert str(data / "DUTS-TR" / "DUTS-TR-Image") in message
    assert "--data-dir" in message  # the command's option, not only the API's data_dir
    assert not data.exists() or list(data.iterdir()) == []


def test_duts_download_of_something_else_is_refused(tmp_path: Path, http_folder: tuple[str, Path]) -> None:
    base_url, served = http_folder
    (served / "duts" / "download").mkdir(parents=True)
    (served / "duts" / "download" / "DUTS-TR.zip").write_bytes(zip_of(make_duts(tmp_path / "src") / "DUTS-TE"))
    with pytest.raises(UsageError, match="does not hold DUTS-TR/DUTS-TR-Image"):
        download_duts(tmp_path / "data", splits=("train",), base_url=base_url)
    assert list((tmp_path / "data").iterdir()) == []


# --- P3M-10k ----------------------------------------------------------------------------------------------


def trimap_pattern(height: int = 40, width: int = 48) -> np.ndarray:
    trimap = np.zeros((height, width), np.uint8)
    trimap[:, width // 3 :] = 128
    trimap[:, 2 * width // 3 :] = 255
    return trimap


def make_p3m(root: Path) -> Path:
    make_pairs(root / "train" / "blurred_image", root / "train" / "mask", ["p_a", "p_b", "p_c"])
    for subset, images, names in (
        ("P3M-500-P", "blurred_image", ["p_x", "p_y"]),
        ("P3M-500-NP", "original_image", ["np_z"]),
    ):
        make_pairs(root / "validation" / subset / images, root / "validation" / subset / "mask", names)
        for name in names:
            save(root / "validation" / subset / "trimap" / f"{name}.png", trimap_pattern())
    return root


def test_p3m_missing_says_where_to_put_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUTOUT_DATA", raising=False)
    with pytest.raises(UsageError, match="P3M-10k was not found") as caught:
        build_dataset("p3m", data_dir=tmp_path, split="train")
    assert str(tmp_path) in str(caught.value) and "--data-dir" in str(caught.value)


def test_p3m_train_and_both_validation_sets(tmp_path: Path) -> None:
    make_p3m(tmp_path / "P3M-10k")
    train_set = build_dataset("p3m", data_dir=tmp_path, split="train", spec=get_spec("modnet"), size=32)
    assert [p.name for p in train_set.pairs] == ["p_a", "p_b", "p_c"]
    assert "trimap" not in train_set[0]
    val_pairs = find_p3m("val", tmp_path)
    assert [p.name for p in val_pairs] == ["P3M-500-P/p_x", "P3M-500-P/p_y", "P3M-500-NP/np_z"]
    assert all(p.trimap is not None and p.trimap.parent.name == "trimap" for p in val_pairs)
    val_set = build_dataset("p3m", data_dir=tmp_path, split="val", size=(40, 48))
    sample = val_set[0]
    expected = trimap_pattern().astype(np.float32) / 255
    expected[expected == np.float32(128 / 255)] = 0.5
    assert torch.equal(sample["trimap"][0], torch.from_numpy(expected))  # the file, at its own size
    batch = next(iter(torch.utils.data.DataLoader(val_set, batch_size=3)))
    assert batch["trimap"].shape == (3, 1, 40, 48) and batch["name"][2] == "P3M-500-NP/np_z"


def test_p3m_training_trimaps_generated_when_asked(tmp_path: Path) -> None:
    make_p3m(tmp_path)
    train_set = build_dataset("p3m", data_dir=tmp_path, split="train", size=32, with_trimap=True)
    trimap = train_set[0]["trimap"]
    assert set(torch.unique(trimap).tolist()) == {0.0, 0.5, 1.0}


# --- DIM composites ---------------------------------------------------------------------------------------


def make_dim(root: Path) -> Path:
    for i in range(2):
        save(root / "fg" / f"f{i}.png", photo(40, 36))
        save(root / "alpha" / f"f{i}.png", disc(40, 36))
    for i, shape in enumerate([(30, 30), (64, 80), (50, 40)]):
        save(root / "bg" / f"b{i}.jpg", photo(*shape))
    return root


@pytest.mark.parametrize("split", ["train", "val"])
def test_dim_composite_is_fg_times_alpha_plus_bg(tmp_path: Path, split: str) -> None:
    dataset = build_dataset(f"dim:{make_dim(tmp_path)}", split=split, size=48, seed=3, val_fraction=0)  # type: ignore[arg-type]
    assert isinstance(dataset, CompositeDataset) and len(dataset) == 2
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            sample = dataset[index]
            image, alpha = sample["image"], sample["mask"]
            assert image.shape == sample["foreground"].shape == sample["background"].shape == (3, 48, 48)
            composite = sample["foreground"] * alpha + sample["background"] * (1 - alpha)
            assert float((image - composite).abs().max()) <= 0.5 / 255 + 1e-6
            trimap, alpha8 = sample["trimap"][0].numpy(), np.rint(alpha[0].numpy() * 255)
            assert set(np.unique(trimap).tolist()) == {0.0, 0.5, 1.0}
            assert np.all(trimap[(alpha8 > 0) & (alpha8 < 255)] == 0.5)
            assert np.all(alpha8[trimap == 0] == 0) and np.all(alpha8[trimap == 1] == 255)


def test_dim_training_composites_vary_by_epoch_and_validation_ones_do_not(tmp_path: Path) -> None:
    train_set = build_dataset(f"dim:{make_dim(tmp_path)}", split="train", size=48, val_fraction=0)
    val_set = build_dataset(f"dim:{tmp_path}", split="val", size=48, val_fraction=0)
    first_train, first_val = train_set[0]["image"], val_set[0]["image"]
    train_set.set_epoch(1)
    val_set.set_epoch(1)
    assert not torch.equal(first_train, train_set[0]["image"])
    assert torch.equal(first_val, val_set[0]["image"])


def test_make_trimap_band_contains_every_soft_pixel() -> None:
    alpha = disc(64, 64).astype(np.float32) / 255
    for index in range(5):
        trimap = make_trimap(alpha, rng_for(0, index))
        soft = (alpha > 0) & (alpha < 1)
        assert np.all(trimap[soft] == 0.5)
        assert (trimap == 1).any() and (trimap == 0).any() and (trimap[~soft] == 0.5).any()


# --- folders ----------------------------------------------------------------------------------------------


def test_folder_with_mismatched_extensions_and_a_missing_mask(tmp_path: Path) -> None:
    save(tmp_path / "images" / "a.jpg", photo())
    save(tmp_path / "images" / "b.png", photo())
    save(tmp_path / "images" / "c.jpeg", photo())
    save(tmp_path / "masks" / "a.png", disc())
    save(tmp_path / "masks" / "b.bmp", disc())
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match=r"1 image has no mask in .*masks and is left out: c\.jpeg"):
        dataset = build_dataset(str(tmp_path), split="train", size=32, val_fraction=0)
    assert isinstance(dataset, PairDataset)
    assert [(p.image.name, p.mask.name) for p in dataset.pairs] == [("a.jpg", "a.png"), ("b.png", "b.bmp")]
    with pytest.warns(UserWarning, match="c.jpeg"):
        direct = build_dataset(None, images=tmp_path / "images", masks=tmp_path / "masks", size=32, val_fraction=0)
    assert [p.name for p in direct.pairs] == ["a", "b"]


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_a_cutout_given_as_a_mask_gives_its_alpha(tmp_path: Path, mode: str) -> None:
    """Transparent PNGs (a previous tool's cutouts) as masks: the alpha is the mask, not the subject's grey."""
    from PIL import Image

    alpha = np.zeros((8, 8), np.uint8)
    alpha[2:6, 2:6], alpha[2, 2] = 255, 100
    cutout = Image.fromarray(np.dstack([np.full((8, 8, 3), 20, np.uint8), alpha]))  # a dark subject: grey ~20
    if mode == "LA":
        cutout = cutout.convert("LA")
    elif mode == "P":  # a palette with transparent entries (tRNS), as pngquant writes cutouts
        cutout = cutout.quantize(4, method=Image.Quantize.FASTOCTREE)
    cutout.save(tmp_path / "cut.png")
    assert Image.open(tmp_path / "cut.png").mode == mode
    np.testing.assert_array_equal(layouts.read_grey(tmp_path / "cut.png"), alpha)
    opaque = Image.fromarray(np.dstack([np.full((8, 8, 3), 77, np.uint8), np.full((8, 8), 255, np.uint8)]))
    opaque.save(tmp_path / "opaque.png")  # an alpha that is opaque everywhere says nothing: the grey is the mask
    assert (layouts.read_grey(tmp_path / "opaque.png") == 77).all()
    keyed = Image.fromarray(np.array([[0, 128, 255]], np.uint8))
    keyed.save(tmp_path / "keyed.png", transparency=0)  # a grey mask's colour key: the soft 128 stays soft
    np.testing.assert_array_equal(layouts.read_grey(tmp_path / "keyed.png"), [[0, 128, 255]])


def test_folder_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    make_pairs(tmp_path / "images", tmp_path / "masks", [f"i{n:02d}" for n in range(10)])
    parts = [build_dataset(tmp_path, split=s, size=32, val_fraction=0.3, seed=7) for s in ("train", "val")]
    again = build_dataset(tmp_path, split="val", size=32, val_fraction=0.3, seed=7)
    train_names, val_names = ({p.name for p in d.pairs} for d in parts)
    assert len(val_names) == 3 and not train_names & val_names and len(train_names | val_names) == 10
    assert [p.name for p in again.pairs] == [p.name for p in parts[1].pairs]
    other = build_dataset(tmp_path, split="val", size=32, val_fraction=0.3, seed=8)
    assert {p.name for p in other.pairs} != val_names
    whole = build_dataset(tmp_path, split="train", size=32, val_fraction=0)
    train, val = split_folder(whole, 0.3, seed=7)
    assert [p.name for p in val.pairs] == [p.name for p in parts[1].pairs]
    assert train.train and not val.train


def test_folder_with_train_and_val_subfolders(tmp_path: Path) -> None:
    make_pairs(tmp_path / "train" / "images", tmp_path / "train" / "masks", ["a", "b", "c"])
    make_pairs(tmp_path / "val" / "images", tmp_path / "val" / "masks", ["d"])
    assert [p.name for p in build_dataset(tmp_path, split="train", size=32).pairs] == ["a", "b", "c"]
    assert [p.name for p in build_dataset(tmp_path, split="val", size=32).pairs] == ["d"]


def test_build_datasets_from_a_training_config(tmp_path: Path) -> None:
    from train.config import TrainConfig

    make_pairs(tmp_path / "images", tmp_path / "masks", ["a", "b", "c", "d"])
    config = TrainConfig(model="modnet", data=str(tmp_path), size=32, val_fraction=0.25)
    train_set, val_set = build_datasets(config)
    assert (len(train_set), len(val_set)) == (3, 1)
    sample = train_set[0]
    assert sample["image"].shape == (3, 32, 32) and "trimap" in sample  # MODNet trains with trimaps
    assert float(sample["image"].min()) >= -1.0 and float(sample["image"].max()) <= 1.0


def test_unknown_source_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="neither a dataset name"):
        build_dataset("no-such-thing", size=32)
    with pytest.raises(UsageError, match="images/ folder and a masks/ folder"):
        build_dataset(tmp_path, size=32)


# --- labelme and class masks ------------------------------------------------------------------------------


def make_labelme(root: Path) -> Path:
    save(root / "shot.jpg", photo(30, 40))
    shapes = [
        {"label": "dog", "points": [[2, 2], [12, 10]], "shape_type": "rectangle"},
        {"label": "cat", "points": [[20, 5], [38, 5], [29, 25]], "shape_type": "polygon"},
        {"label": "cat", "points": [[7, 22], [10, 22]], "shape_type": "circle"},
        {"label": "cat", "points": [[0, 29], [39, 29]], "shape_type": "line"},
    ]
    document = {"shapes": shapes, "imagePath": "shot.jpg", "imageData": None, "imageHeight": 30, "imageWidth": 40}
    (root / "shot.json").write_text(json.dumps(document))
    return root


def test_labelme_shapes_rasterised(tmp_path: Path) -> None:
    folder = make_labelme(tmp_path)
    binary = build_dataset(f"labelme:{folder}", split="val", size=(30, 40), val_fraction=0)[0]["mask"][0]
    classes = build_dataset(f"labelme:{folder}", split="val", size=(30, 40), val_fraction=0, num_classes=3)
    mask = classes[0]["mask"]
    assert mask.dtype == torch.int64 and mask.shape == (30, 40)
    inside = {(5, 5): 2, (9, 11): 2, (8, 29): 1, (20, 29): 1, (22, 7): 1}  # (row, col): cat 1, dog 2 (sorted)
    outside = [(0, 0), (15, 5), (12, 21), (12, 37), (20, 20), (29, 20), (22, 12)]
    for (row, col), class_id in inside.items():
        assert int(mask[row, col]) == class_id and float(binary[row, col]) == 1.0, (row, col)
    for row, col in outside:
        assert int(mask[row, col]) == 0 and float(binary[row, col]) == 0.0, (row, col)
    listed = build_dataset(
        f"labelme:{folder}", split="val", size=(30, 40), val_fraction=0, num_classes=3, classes=["dog", "cat"]
    )
    assert int(listed[0]["mask"][5, 5]) == 1 and int(listed[0]["mask"][8, 29]) == 2
    with pytest.raises(UsageError, match="num_classes is 5"):
        build_dataset(f"labelme:{folder}", split="val", size=32, val_fraction=0, num_classes=5)


def test_labelme_image_embedded_as_image_data(tmp_path: Path) -> None:
    import base64

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(photo(20, 30)).save(buffer, format="PNG")
    shapes = [{"label": "x", "points": [[5, 5], [14, 12]], "shape_type": "rectangle"}]
    document = {"shapes": shapes, "imagePath": "gone.jpg", "imageData": base64.b64encode(buffer.getvalue()).decode()}
    (tmp_path / "embedded.json").write_text(json.dumps(document))
    sample = build_dataset(f"labelme:{tmp_path}", split="val", size=(20, 30), val_fraction=0)[0]
    assert sample["image"].shape == (3, 20, 30)
    assert float(sample["mask"][0, 8, 10]) == 1.0 and float(sample["mask"][0, 15, 10]) == 0.0


def _png_base64(array: np.ndarray) -> str:
    import base64

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_labelme_mask_shapes_are_drawn_where_labelme_puts_them(tmp_path: Path) -> None:
    # labelme 5's AI-assisted and brush tools save a "mask" shape: a 0/1 PNG of the box between its two corners
    region = np.zeros((6, 8), np.uint8)
    region[1:5, 2:7] = 1
    save(tmp_path / "shot.jpg", photo(30, 40))
    shapes = [
        {"label": "cup", "points": [[10, 12], [17, 17]], "shape_type": "mask", "mask": _png_base64(region)},
        {"label": "cup", "points": [[36, 26], [43, 31]], "shape_type": "mask", "mask": _png_base64(region)},
        {"label": "cup", "points": [[1e12, 5], [1e12 + 7, 10]], "shape_type": "mask", "mask": _png_base64(region)},
    ]
    document = {"shapes": shapes, "imagePath": "shot.jpg", "imageData": None}
    (tmp_path / "shot.json").write_text(json.dumps(document))
    mask = build_dataset(f"labelme:{tmp_path}", split="val", size=(30, 40), val_fraction=0)[0]["mask"][0].numpy()
    expected = np.zeros((30, 40), np.float32)
    expected[13:17, 12:17] = 1  # the first: whole, 1 row and 2 columns into its box
    expected[27:30, 38:40] = 1  # the second: cut off by the image's edges; the third lies far outside
    np.testing.assert_array_equal(mask, expected)


def test_broken_labelme_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    save(tmp_path / "good.jpg", photo(20, 30))
    good = [{"label": "x", "points": [[5, 5], [14, 12]], "shape_type": "rectangle"}]
    broken = {
        "no-points": [{"label": "x", "shape_type": "polygon"}],
        "words": [{"label": "x", "points": [["a", "b"], [1, 2], [3, 4]]}],
        "triples": [{"label": "x", "points": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}],
        "not-finite": [{"label": "x", "points": [[1, 2], [float("nan"), 5], [7, 8]]}],
        "not-a-shape": ["x"],
        "bad-mask": [{"label": "x", "points": [[1, 1], [4, 4]], "shape_type": "mask", "mask": "bm90IGEgcG5n"}],
        "no-mask": [{"label": "x", "points": [[1, 1], [4, 4]], "shape_type": "mask", "mask": None}],
    }
    for name, shapes in {"good": good, **broken}.items():
        save(tmp_path / f"{name}.jpg", photo(20, 30))
        (tmp_path / f"{name}.json").write_text(json.dumps({"shapes": shapes, "imagePath": f"{name}.jpg"}))
    (tmp_path / "truncated.json").write_text('{"shapes": [{"label": "x", "points": [[1, ')
    save(tmp_path / "truncated.jpg", photo(20, 30))
    (tmp_path / "bad-image-data.json").write_text(json.dumps({"shapes": good, "imageData": "bm90IGFuIGltYWdl"}))
    with pytest.warns(UserWarning, match=r"cannot read the labelme file .*truncated\.json: .*; it is left out"):
        dataset = build_dataset(f"labelme:{tmp_path}", split="val", size=(20, 30), val_fraction=0)
    assert len(dataset) == len(broken) + 2  # truncated.json is left out; the others fail when read
    with pytest.warns(UserWarning) as caught:
        samples = [dataset[i] for i in range(len(dataset))]
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == len(broken) + 1, messages
    assert all(message.startswith("skipped ") and "(another sample used instead)" in message for message in messages)
    assert "bad-image-data.json: its imageData is not a base64 image" in messages[0]
    for name, message in zip(sorted(broken), messages[1:], strict=True):
        assert f"{name}.json" in message, (name, message)
    assert "shape 1 ('x') has no points" in "".join(messages) and "is a mask whose data is not" in "".join(messages)
    assert all(float(sample["mask"][0, 8, 10]) == 1.0 for sample in samples)  # the good file stands in for all


def test_palette_png_class_ids(tmp_path: Path) -> None:
    from PIL import Image

    ids = np.zeros((40, 48), np.uint8)
    ids[5:15, 5:15], ids[20:30, 20:40], ids[0, :] = 1, 2, 255
    palette = Image.fromarray(ids, mode="P")
    palette.putpalette([0, 0, 0, 200, 0, 0, 0, 90, 0] + [255, 255, 255] * 253)
    (tmp_path / "masks").mkdir()
    palette.save(tmp_path / "masks" / "a.png")
    save(tmp_path / "images" / "a.jpg", photo())
    dataset = build_dataset(tmp_path, split="val", size=(40, 48), val_fraction=0, num_classes=3)
    mask = dataset[0]["mask"].numpy()
    assert mask.dtype == np.int64 and mask.shape == (40, 48)
    assert mask[10, 10] == 1 and mask[25, 30] == 2 and mask[35, 5] == 0 and np.all(mask[0] == IGNORE_INDEX)
    resized = build_dataset(tmp_path, split="train", size=24, val_fraction=0, num_classes=3)[0]["mask"]
    assert set(torch.unique(resized).tolist()) <= {IGNORE_INDEX, 0, 1, 2}  # nearest: no blended ids
    with pytest.raises(UsageError, match="class id 2, but there are 2 classes"):  # a setting: never skipped
        build_dataset(tmp_path, split="val", size=32, val_fraction=0, num_classes=2)[0]


# --- transforms -------------------------------------------------------------------------------------------


def position_sample(size: int = 64) -> dict[str, np.ndarray]:
    """An image whose red channel is 4 * column and green 4 * row; the mask and trimap encode the column too."""
    y, x = np.mgrid[0:size, 0:size]
    image = np.stack([x * 4, y * 4, np.full_like(x, 100)], axis=-1).astype(np.uint8)
    trimap = np.where(x < size // 3, 0.0, np.where(x < 2 * size // 3, 0.5, 1.0)).astype(np.float32)
    return {"image": image, "mask": (x * 4 / 255).astype(np.float32), "trimap": trimap}


def test_seeded_augmentation_is_reproducible() -> None:
    sample, augment = position_sample(), Augment()
    first = train_transform(sample, (32, 32), rng_for(5, 3, epoch=2), augment)
    second = train_transform(sample, (32, 32), rng_for(5, 3, epoch=2), augment)
    other = train_transform(sample, (32, 32), rng_for(5, 4, epoch=2), augment)
    later = train_transform(sample, (32, 32), rng_for(5, 3, epoch=3), augment)
    assert all(np.array_equal(first[k], second[k]) for k in sample)
    assert not np.array_equal(first["image"], other["image"])
    assert not np.array_equal(first["image"], later["image"])


@pytest.mark.parametrize("index", range(6))
def test_crop_and_flip_keep_image_mask_and_trimap_aligned(index: int) -> None:
    augment = Augment(scale=(0.2, 0.5), flip=1.0, brightness=0, contrast=0, saturation=0)
    out = train_transform(position_sample(), (40, 40), rng_for(0, index), augment)
    red = out["image"][..., 0].astype(np.float32)
    assert np.abs(red - out["mask"] * 255).max() <= 1.0
    assert np.all(np.diff(red.mean(axis=0)) < 0)  # flipped: the column decreases left to right
    assert red.max() - red.min() < 0.8 * 252  # cropped: only part of the columns remain
    column = red / 4  # the source column under each output pixel
    expected_trimap = np.where(column < 64 // 3, 0.0, np.where(column < 2 * 64 // 3, 0.5, 1.0))
    assert set(np.unique(out["trimap"]).tolist()) <= {0.0, 0.5, 1.0}  # nearest: no blended values
    assert np.mean(out["trimap"] == expected_trimap) > 0.95  # pixels at a band's border may round either way


def test_color_jitter_changes_the_image_only() -> None:
    sample = position_sample()
    strong = Augment(brightness=0.5, contrast=0.5, saturation=0.5)
    none = Augment(brightness=0.0, contrast=0.0, saturation=0.0)
    jittered = train_transform(sample, (32, 32), rng_for(1, 0), strong)
    plain = train_transform(sample, (32, 32), rng_for(1, 0), none)
    assert np.array_equal(jittered["mask"], plain["mask"]) and np.array_equal(jittered["trimap"], plain["trimap"])
    assert not np.array_equal(jittered["image"], plain["image"])


def test_loader_workers_give_the_same_samples_as_one_process(tmp_path: Path) -> None:
    make_pairs(tmp_path / "images", tmp_path / "masks", ["a", "b", "c", "d"])
    dataset = build_dataset(tmp_path, split="train", size=24, val_fraction=0, seed=2)
    dataset.set_epoch(1)
    batches = [list(torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=workers)) for workers in (0, 2)]
    for alone, pooled in zip(*batches, strict=True):
        assert alone["name"] == pooled["name"] and torch.equal(alone["image"], pooled["image"])
    dataset.set_epoch(2)  # reaches the workers: they are started afresh for each epoch's loader
    next_epoch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2)))
    assert not torch.equal(next_epoch["image"], batches[0][0]["image"])


def test_a_corrupt_file_is_skipped_with_a_warning_not_the_end_of_training(tmp_path: Path) -> None:
    make_pairs(tmp_path / "images", tmp_path / "masks", ["a", "b", "c", "d"])
    (tmp_path / "images" / "b.jpg").write_bytes(b"garbage, not a JPEG")  # one bad file in the folder
    (tmp_path / "masks" / "c.png").write_bytes((tmp_path / "masks" / "c.png").read_bytes()[:60])  # truncated
    dataset = build_dataset(tmp_path, split="train", size=24, val_fraction=0, seed=2)
    with pytest.warns(UserWarning) as caught:
        names = [name for batch in torch.utils.data.DataLoader(dataset, batch_size=2) for name in batch["name"]]
    assert names == ["a", "d", "d", "d"]  # each unreadable sample replaced by the next readable one
    messages = sorted(str(w.message) for w in caught)
    assert messages[0].startswith("skipped b (another sample used instead):") and "b.jpg" in messages[0]
    assert messages[1].startswith("skipped c (another sample used instead):") and "c.png" in messages[1]
    for name in ("b", "c", "d"):
        (tmp_path / "images" / f"{name}.jpg").write_bytes(b"")
    (tmp_path / "images" / "a.jpg").write_bytes(b"")
    with (
        pytest.warns(UserWarning),
        pytest.raises(InputError, match="none of the 4 samples can be read; the first: .*a"),
    ):
        dataset[0]


def test_a_file_too_large_to_decode_is_skipped_too(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # a damaged header can claim gigapixels (found by fuzzing): training reads have no pixel limit, so the decoder
    # runs out of memory; that file is skipped like any unreadable one
    make_pairs(tmp_path / "images", tmp_path / "masks", ["a", "b"])
    read_alpha = layouts.read_alpha

    def huge(path: Path) -> np.ndarray:
        if Path(path).stem == "a":
            raise MemoryError
        return read_alpha(path)

    monkeypatch.setattr(layouts, "read_alpha", huge)
    dataset = build_dataset(tmp_path, split="val", size=24, val_fraction=0)
    with pytest.warns(UserWarning, match=r"skipped a \(another sample used instead\): not enough memory to decode it"):
        assert dataset[0]["name"] == "b"


def test_an_unreadable_file_is_named_once_per_run_not_once_per_epoch(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    make_pairs(tmp_path / "images", tmp_path / "masks", ["a", "b", "c", "d"])
    (tmp_path / "images" / "b.jpg").write_bytes(b"garbage, not a JPEG")
    reads, read_rgb = tmp_path / "reads.txt", layouts.read_rgb

    def logged(path: Path) -> np.ndarray:  # the loader's worker processes inherit it; each read is a line
        with reads.open("a") as log:
            log.write(f"{Path(path).name}\n")
        return read_rgb(path)

    monkeypatch.setattr(layouts, "read_rgb", logged)
    dataset = build_dataset(tmp_path, split="train", size=24, val_fraction=0, seed=2)
    for epoch in range(3):  # each epoch's loader starts its worker processes afresh, as training does
        dataset.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2)
        names = [name for batch in loader for name in batch["name"]]
        assert names == ["a", "c", "c", "d"]
    assert reads.read_text().split().count("b.jpg") == 1  # tried (and warned about) once, in some worker
    assert list(dataset.unreadable) == [0, 1, 0, 0]  # the worker's mark reached the parent's dataset
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and the parent neither reads it nor warns again
        assert dataset[1]["name"] == "c"
    assert reads.read_text().split().count("b.jpg") == 1
    assert list(dataset.subset(dataset.pairs, train=False).unreadable) == [0, 0, 0, 0]  # a subset starts afresh


def test_validation_resizes_only(tmp_path: Path) -> None:
    make_pairs(tmp_path / "images", tmp_path / "masks", ["a"])
    dataset = build_dataset(tmp_path, split="val", size=(20, 24), val_fraction=0)
    first = dataset[0]
    dataset.set_epoch(4)
    assert torch.equal(first["image"], dataset[0]["image"]) and first["mask"].shape == (1, 20, 24)
    no_augment = build_dataset(tmp_path, split="train", size=(20, 24), val_fraction=0, augment=NO_AUGMENT)
    assert torch.equal(no_augment[0]["image"], first["image"])


# --- normalisation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "side"), [("u2netp", 320), ("modnet", 512)])
def test_normalizer_matches_inference_preprocessing(model: str, side: int) -> None:
    spec = get_spec(model)
    rgb = RNG.integers(0, 200, (side, side, 3), dtype=np.uint8)  # max 199: U2-Net divides by the image's own max
    expected = model_input(spec, rgb)[0]
    actual = normalizer_for(spec)(rgb)
    assert actual.dtype == np.float32 and actual.shape == (3, side, side)
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("orientation", [6, 8, 5, 7])
def test_a_mask_made_on_a_phone_photos_stored_pixels_is_turned_with_it(tmp_path: Path, orientation: int) -> None:
    # a phone stores a portrait photo as landscape pixels and an EXIF orientation; masks made by tools that ignore
    # it (OpenCV's IMREAD_UNCHANGED, many labelling scripts) are landscape too: they were stretched into the
    # upright photo's portrait shape, and trained the model on a mask that does not fit its photo
    from PIL import Image

    stored = np.zeros((24, 40, 3), np.uint8)
    stored[2:10, 3:15] = (230, 20, 20)  # the subject, off-centre in the stored pixels
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = orientation
    (tmp_path / "images").mkdir()
    Image.fromarray(stored).save(tmp_path / "images" / "a.jpg", quality=95, exif=exif.tobytes())
    mask = np.zeros((24, 40), np.uint8)
    mask[2:10, 3:15] = 255
    save(tmp_path / "masks" / "a.png", mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "resized"
        sample = build_dataset(tmp_path, split="val", size=(40, 24), val_fraction=0)[0]
    red = sample["image"].numpy()
    subject = red[0] > red[1] + 0.5  # normalized, but red stands far above green only on the subject
    assert subject.shape == (40, 24) and subject.sum() > 60
    masked = sample["mask"].numpy()[0] > 0.5
    assert (subject & masked).sum() / (subject | masked).sum() > 0.9  # JPEG rounds the corners (stretched: 0)
