"""Backgrounds from what users type, and compositing identities and hand-computed pixels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cutout.compose import Background, background_array, blurred, compose, cover, parse_background
from cutout.errors import UsageError

RNG = np.random.default_rng(3)
RGB = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (24, 32), dtype=np.uint8)


@pytest.fixture
def beach(tmp_path: Path) -> Path:
    """A 200 x 100 background: black, red, blue, black vertical quarters."""
    array = np.zeros((100, 200, 3), np.uint8)
    array[:, 50:100] = [255, 0, 0]
    array[:, 100:150] = [0, 0, 255]
    path = tmp_path / "beach.png"
    Image.fromarray(array).save(path)
    return path


# --- parse_background -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "color"),
    [
        ("white", (255, 255, 255, 255)),
        ("Red", (255, 0, 0, 255)),
        ("#0f0", (0, 255, 0, 255)),
        ("#00ff00", (0, 255, 0, 255)),
        ("#00FF0080", (0, 255, 0, 128)),
        ("0,0,0", (0, 0, 0, 255)),
        (" 10, 20 ,30, 128 ", (10, 20, 30, 128)),
        ("rgb(10, 20, 30)", (10, 20, 30, 255)),
    ],
)
def test_colours(text: str, color: tuple[int, int, int, int]) -> None:
    background = parse_background(text)
    assert background == Background("color", color=color)
    assert background.opaque == (color[3] == 255)


def test_blur_and_image(beach: Path) -> None:
    assert parse_background("blur") == Background("blur", radius=None)
    assert parse_background("BLUR:15") == Background("blur", radius=15.0)
    assert parse_background("blur:2.5").radius == 2.5 and parse_background("blur").opaque
    background = parse_background(str(beach))
    assert background == Background("image", path=beach) and background.opaque
    commas = beach.with_name("beach, 2024.png")
    commas.write_bytes(beach.read_bytes())
    assert parse_background(str(commas)).path == commas


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("sea-green-ish", "is not a colour, an existing image file or blur"),
        ("#12", "is not a colour"),
        ("0,0", "3 or 4 whole numbers from 0 to 255"),
        ("0,0,300", "3 or 4 whole numbers"),
        ("1,2,3,4,5", "3 or 4 whole numbers"),
        ("-1,0,0", "3 or 4 whole numbers"),
        ("blur:", "positive number of pixels"),
        ("blur:-3", "positive number"),
        ("blur:0", "positive number"),
        ("blur:nan", "positive number"),
        ("blur:wide", "positive number"),
        ("blur:1e308", "the blur radius is at most 100000 pixels"),  # each photo failed: Pillow overflowed
    ],
)
def test_bad_backgrounds(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_background(text)


def test_backgrounds_made_in_code_are_checked() -> None:
    with pytest.raises(UsageError, match="from 0 to 255"):
        Background("color", color=(300, 0, 0, 255))
    with pytest.raises(UsageError, match="needs a path"):
        Background("image")
    with pytest.raises(UsageError, match="positive number of pixels up to 100000"):
        Background("blur", radius=1e308)
    with pytest.raises(UsageError, match="positive number of pixels"):
        Background("blur", radius=-1)
    with pytest.raises(UsageError, match="not one of"):
        Background("gradient")  # type: ignore[arg-type]


def test_bad_background_files_are_named(tmp_path: Path) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not really a photo")
    with pytest.raises(UsageError, match=r"the background .*holiday\.jpg is not an image Pillow can read"):
        parse_background(str(fake))
    with pytest.raises(UsageError, match="is a folder, not an image file"):
        parse_background(str(tmp_path))
    clip = tmp_path / "beach.mp4"  # the start of an MP4: an ftyp box
    clip.write_bytes(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(64))
    with pytest.raises(UsageError, match=r"beach\.mp4 is a video \(MP4/MOV\): .*goes with `cutout video`"):
        parse_background(str(clip))  # for an image; said "not an image Pillow can read"
    with pytest.raises(UsageError) as error:
        parse_background(str(tmp_path / "missing.jpg"))
    for form in ("--bg '#00ff00'", "--bg white", "--bg 0,0,0,128", "--bg beach.jpg", "--bg blur:15"):
        assert form in str(error.value)


# --- compose --------------------------------------------------------------------------------------------------


def test_no_background_gives_straight_rgba() -> None:
    out = compose(RGB, ALPHA, None)
    assert out.shape == (24, 32, 4) and out.dtype == np.uint8
    visible = ALPHA > 0
    assert visible.any() and (ALPHA < 255).any() and (~visible).any()
    np.testing.assert_array_equal(out[..., :3][visible], RGB[visible])  # not premultiplied
    assert not out[..., :3][~visible].any()  # hidden colours are cleared
    np.testing.assert_array_equal(out[..., 3], ALPHA)


@pytest.mark.parametrize("kind", ["color", "image", "blur"])
def test_alpha_255_gives_the_image_and_0_the_background(kind: str, beach: Path) -> None:
    background = {
        "color": Background("color", color=(12, 200, 99, 255)),
        "image": Background("image", path=beach),
        "blur": Background("blur", radius=4),
    }[kind]
    expected_background = blurred(RGB, 4) if kind == "blur" else background_array(background, 24, 32)
    np.testing.assert_array_equal(compose(RGB, np.full((24, 32), 255, np.uint8), background), RGB)
    np.testing.assert_array_equal(compose(RGB, np.zeros((24, 32), np.uint8), background), expected_background)


def test_opaque_blend_matches_the_formula_exactly(beach: Path) -> None:
    a = ALPHA[..., None] / 255.0
    for background in (Background("color", color=(30, 60, 250, 255)), Background("image", path=beach)):
        behind = background_array(background, 24, 32).astype(np.float64)
        expected = np.floor(RGB * a + behind * (1 - a) + 0.5)
        np.testing.assert_array_equal(compose(RGB, ALPHA, background), expected)


def test_hand_computed_opaque_pixels() -> None:
    rgb = np.array([[[200, 255, 10], [255, 255, 255]]], np.uint8)
    alpha = np.array([[128, 1]], np.uint8)
    out = compose(rgb, alpha, Background("color", color=(100, 0, 250, 255)))
    # 200*128/255 + 100*127/255 = 150.2; 255*128/255 = 128; 10*128/255 + 250*127/255 = 129.5 -> 130
    np.testing.assert_array_equal(out[0, 0], [150, 128, 130])
    np.testing.assert_array_equal(out[0, 1], [101, 1, 250])  # 255/255 + 100*254/255 = 100.6 -> 101; 1; 249.0+1


def test_translucent_colour_uses_porter_duff_over() -> None:
    rgb = np.array([[[255, 0, 0], [255, 0, 0], [255, 0, 0], [9, 9, 9]]], np.uint8)
    alpha = np.array([[128, 0, 255, 0]], np.uint8)
    out = compose(rgb, alpha, Background("color", color=(0, 0, 255, 128)))
    assert out.shape == (1, 4, 4)
    # out_a = (255*128 + 128*127)/255 = 191.7 -> 192; r = 255*255*128/48896 = 170.2; b = 255*128*127/48896 = 84.8
    np.testing.assert_array_equal(out[0, 0], [170, 0, 85, 192])
    np.testing.assert_array_equal(out[0, 1], [0, 0, 255, 128])  # only the background
    np.testing.assert_array_equal(out[0, 2], [255, 0, 0, 255])  # only the subject
    clear = compose(rgb, alpha, Background("color", color=(50, 50, 50, 0)))
    np.testing.assert_array_equal(clear[0, 3], [0, 0, 0, 0])  # nothing over nothing
    np.testing.assert_array_equal(clear[0, 0], [255, 0, 0, 128])  # over a clear colour: the plain cutout


def test_translucent_colour_is_exact_for_every_pixel_and_alpha() -> None:
    foreground = np.repeat(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    alpha = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    rgb = np.dstack([foreground, 255 - foreground, foreground])
    for color in ((10, 200, 33, 1), (255, 255, 255, 128), (0, 0, 0, 254)):
        out = compose(rgb, alpha, Background("color", color=color)).astype(np.int64)
        a, b = alpha.astype(np.int64)[..., None], color[3]
        denominator = 255 * a + b * (255 - a)
        numerator = 255 * rgb.astype(np.int64) * a + np.array(color[:3]) * b * (255 - a)
        np.testing.assert_array_equal(out[..., :3], (2 * numerator + denominator) // (2 * denominator))
        np.testing.assert_array_equal(out[..., 3:], (denominator + 127) // 255)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="rgb \\(H, W, 3\\) and alpha \\(H, W\\)"):
        compose(RGB, ALPHA[:10], None)
    with pytest.raises(ValueError, match="uint8"):
        compose(RGB.astype(np.float32), ALPHA, None)


# --- backgrounds from files -----------------------------------------------------------------------------------


def test_cover_fills_the_frame_and_keeps_the_aspect_ratio(beach: Path, tmp_path: Path) -> None:
    square = background_array(Background("image", path=beach), 100, 100)
    assert square.shape == (100, 100, 3)  # the centre half of the width: red | blue, no black bars
    assert (square[:, :45] == [255, 0, 0]).all() and (square[:, 55:] == [0, 0, 255]).all()
    box = np.full((100, 200, 3), 255, np.uint8)
    box[40:60, 90:110] = 0  # a 20 x 20 black square in the middle
    Image.fromarray(box).save(tmp_path / "box.png")
    for height, width, side in ((50, 100, 10), (100, 300, 30), (300, 100, 60)):
        covered = background_array(Background("image", path=tmp_path / "box.png"), height, width)
        dark = covered[..., 0] < 128
        assert covered.shape == (height, width, 3)
        assert abs(dark.any(axis=1).sum() - side) <= 1 and abs(dark.any(axis=0).sum() - side) <= 1


def test_background_exif_orientation_and_cache(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255  # white left half; rotated 90 degrees clockwise it is the top half
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    background = Background("image", path=path)
    first = background_array(background, 40, 20)
    assert first[:15].mean() > 240 and first[25:].mean() < 15
    assert background_array(background, 40, 20) is first and not first.flags.writeable  # cached, read-only
    Image.fromarray(255 - stored).save(path, exif=exif, quality=95)
    os.utime(path, ns=(0, 10**18))  # a changed file (new mtime) is decoded again
    assert background_array(background, 40, 20)[:15].mean() < 15


def test_a_batch_of_many_sizes_scales_the_background_once_per_size_within_the_byte_budget(
    beach: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a folder from several cameras: the cache held 4 sizes, so 40 photos of 18 sizes scaled a 24 MP background
    # 40 times (0.16 s each); it now holds sizes up to COVER_CACHE_BYTES
    import cutout.compose as compose_module

    scaled: list[tuple[int, int]] = []
    real_cover = compose_module.cover

    def counted(source: Image.Image, height: int, width: int, *rest: object) -> np.ndarray:
        scaled.append((height, width))
        return real_cover(source, height, width, *rest)

    monkeypatch.setattr(compose_module, "cover", counted)
    background = Background("image", path=beach)
    sizes = [(10 + n, 20 + n) for n in range(9)]
    first = [background_array(background, *size) for size in sizes]
    again = [background_array(background, *size) for size in reversed(sizes)]
    assert scaled == sizes and all(a is b for a, b in zip(first, reversed(again), strict=True))
    # over the budget the least recently used go first, and the latest stays even when it alone is larger
    monkeypatch.setattr(compose_module, "COVER_CACHE_BYTES", 2 * 1200 * 3)  # two frames of 1200 pixels
    scaled.clear()
    a, b, c, large = (30, 40), (40, 30), (24, 50), (100, 200)
    for size in (a, b, a, c, a, b, large, large):
        background_array(background, *size)
    assert scaled == [a, b, c, b, large]


def test_a_16_bit_or_float_grey_background_is_scaled_as_a_photo_is(tmp_path: Path) -> None:
    # Pillow's convert("RGB") clips 16-bit grey at 255: a 16-bit PNG scan (values 0..65535) gave a white background
    levels = np.tile(np.arange(0, 65536, 2048, dtype=np.uint16), (20, 1))  # 32 levels across
    Image.fromarray(levels).save(tmp_path / "deep.png")
    Image.fromarray((levels / 257).astype(np.float32)).save(tmp_path / "float.tif")
    expected = np.round(levels[0] / 257).astype(np.uint8)
    for name in ("deep.png", "float.tif"):
        background = background_array(parse_background(str(tmp_path / name)), 20, 32)
        np.testing.assert_allclose(background[10, :, 0], expected, atol=1, err_msg=name)
        assert (background[..., 0] == background[..., 2]).all(), name  # grey stays grey


def test_an_image_background_with_transparency_keeps_it(tmp_path: Path) -> None:
    # a frame or overlay PNG: was flattened to its stored colours, showing what its transparency hides
    colours = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    hides = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (24, 1))  # every 8th alpha level, 0 to 248
    hides[:, -1] = 255
    Image.fromarray(np.dstack([colours, hides])).save(tmp_path / "frame.png")
    background = parse_background(str(tmp_path / "frame.png"))
    assert not background.opaque  # so a JPEG or MP4 output asks for an opaque background, as a clear colour does
    out = compose(RGB, ALPHA, background).astype(np.int64)
    a, b = ALPHA.astype(np.int64)[..., None], hides.astype(np.int64)[..., None]
    denominator = 255 * a + b * (255 - a)
    numerator = 255 * RGB.astype(np.int64) * a + colours * b * (255 - a)
    expected = np.where(denominator > 0, (2 * numerator + denominator) // (2 * np.maximum(denominator, 1)), 0)
    np.testing.assert_array_equal(out[..., :3], expected)  # exact "over", pixel by pixel
    np.testing.assert_array_equal(out[..., 3:], (denominator + 127) // 255)
    np.testing.assert_array_equal(out[:, 0], compose(RGB, ALPHA, None)[:, 0])  # where it hides all: the cutout
    Image.fromarray(colours).save(tmp_path / "solid.png")
    solid = compose(RGB, ALPHA, parse_background(str(tmp_path / "solid.png")))
    np.testing.assert_array_equal(out[:, -1], np.dstack([solid, np.full((24, 32), 255, np.uint8)])[:, -1])
    for mode, opaque in (("RGBA", True), ("P", False)):
        image = Image.fromarray(np.dstack([colours, np.full((24, 32), 255, np.uint8)]))
        if mode == "P":
            image = image.convert("RGB").quantize(8)
            image.info["transparency"] = 0
        image.save(tmp_path / f"{mode}.png", **({"transparency": 0} if mode == "P" else {}))
        assert parse_background(str(tmp_path / f"{mode}.png")).opaque == opaque  # alpha all 255: opaque


def test_blur_radius_scales_with_the_image() -> None:
    image = np.zeros((400, 600, 3), np.uint8)
    image[:, 300:] = 255
    edge = blurred(image)[200, 285:315, 0].astype(int)
    assert edge[0] > 0 and edge[-1] < 255 and (np.diff(edge) >= 0).all()  # radius 8 (2% of 400) spreads the edge
    assert blurred(image, 1.0)[200, 290, 0] == 0
    assert blurred(np.zeros((20, 20, 3), np.uint8) + 7).shape == (20, 20, 3)  # minimum radius 3 on small images


def test_cover_fills_an_anamorphic_frame_as_it_is_shown() -> None:
    # HDV: 1440 x 1080 stored, pixels 4/3 wide, shown 16:9; a 16:9 picture must fill it uncropped, not squeezed
    from fractions import Fraction

    gradient = np.tile(np.linspace(0, 255, 192).astype(np.uint8)[None, :, None], (108, 1, 3))
    frame = cover(gradient, 108, 144, aspect=Fraction(4, 3))
    plain = np.asarray(Image.fromarray(gradient).resize((144, 108), Image.Resampling.LANCZOS))
    assert frame.shape == (108, 144, 3) and np.abs(frame.astype(int) - plain).max() <= 1  # all of it, no crop
    squeezed = cover(gradient, 108, 144)  # square pixels: 4:3 cut from the middle of the 16:9 picture
    assert squeezed[:, 0].mean() > 20 and frame[:, 0].mean() < 5
    # an anamorphic source (a background clip) behind square pixels: shown 16:9 itself, so again uncropped
    stored = np.asarray(Image.fromarray(gradient).resize((144, 108), Image.Resampling.LANCZOS))
    back = cover(stored, 108, 192, source_aspect=Fraction(4, 3))
    assert np.abs(back.astype(int)[:, ::16] - gradient.astype(int)[:, ::16]).max() <= 3


def display_p3_profile() -> bytes:
    """An ICC v2 display profile with Display P3's primaries (D50-adapted colorants) and a gamma 2.2 curve: what a
    phone's photo carries, written by hand (no such file ships with the system or Pillow)."""
    import struct

    def fixed(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + fixed(x) + fixed(y) + fixed(z)

    name = b"Display P3 (test)\0"
    tags = {
        b"desc": b"desc\0\0\0\0" + struct.pack(">I", len(name)) + name + bytes(4 + 4 + 2 + 1 + 67),
        b"wtpt": xyz(0.9642, 1.0, 0.8249),
        b"rXYZ": xyz(0.5151, 0.2412, -0.0011),
        b"gXYZ": xyz(0.2920, 0.6922, 0.0419),
        b"bXYZ": xyz(0.1571, 0.0666, 0.7841),
        b"rTRC": b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0233) + b"\0\0",  # gamma 2.2 (u8Fixed8)
        b"cprt": b"text\0\0\0\0no copyright, test profile\0",
    }
    tags[b"gTRC"] = tags[b"bTRC"] = tags[b"rTRC"]
    table, data = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, body in tags.items():
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
    header += struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + bytes(24) + struct.pack(">I", 0)
    header += fixed(0.9642) + fixed(1.0) + fixed(0.8249) + bytes(4 + 16 + 28)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def test_a_background_colour_is_converted_into_the_photos_profile() -> None:
    # a Display P3 photo (a phone's) with --bg '#ff0000' got P3's red, far more saturated than the sRGB red typed
    from PIL import ImageCms

    p3 = display_p3_profile()
    red = Background("color", color=(255, 0, 0, 255), profile=p3)
    r, g, b, a = red.signal_color
    assert a == 255 and 225 <= r <= 245 and 20 <= g <= 80 and 20 <= b <= 60, red.signal_color  # P3 of sRGB red
    assert Background("color", color=(255, 255, 255, 200), profile=p3).signal_color == (255, 255, 255, 200)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert Background("color", color=(12, 200, 99, 255), profile=srgb).signal_color == (12, 200, 99, 255)
    rgb, alpha = np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)
    assert compose(rgb, alpha, red)[0, 0].tolist() == [r, g, b]


def test_a_background_image_is_converted_from_its_profile_into_the_photos(tmp_path: Path) -> None:
    p3 = display_p3_profile()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(tmp_path / "plain.png")  # untagged: sRGB
    Image.new("RGB", (8, 8), (200, 40, 40)).save(tmp_path / "p3.png", icc_profile=p3)
    rgb, alpha = np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)

    def behind(name: str, profile: bytes | None) -> list[int]:
        return compose(rgb, alpha, Background("image", path=tmp_path / name, profile=profile))[0, 0].tolist()

    assert behind("plain.png", None) == [200, 40, 40] and behind("p3.png", p3) == [200, 40, 40]  # as they are
    into_p3 = behind("plain.png", p3)
    assert into_p3[0] < 200 and into_p3[1] > 40  # sRGB's red is less saturated in P3's numbers
    into_srgb = behind("p3.png", None)
    assert into_srgb[0] > 200 and into_srgb[1] < 40  # and P3's is more saturated in sRGB's


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
@pytest.mark.parametrize("flipped", [False, True])
def test_a_background_for_turned_frames_is_stored_so_that_it_shows_upright(turns: int, flipped: bool) -> None:
    from cutout.compose import cover, shown, stored

    frame = np.arange(6 * 10 * 3, dtype=np.uint8).reshape(6, 10, 3)
    assert np.array_equal(stored(shown(frame, (turns, flipped)), (turns, flipped)), frame)
    picture = np.random.default_rng(turns).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    behind = cover(picture, 6, 10, orientation=(turns, flipped))
    assert behind.shape == (6, 10, 3) and behind.flags.c_contiguous
    height, width = (10, 6) if turns % 2 else (6, 10)
    assert np.array_equal(shown(behind, (turns, flipped)), cover(picture, height, width))
