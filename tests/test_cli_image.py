"""`cutout image` as a user runs it: real subprocesses, the real U2-NetP, real files."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cutout

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "images"
EXAMPLE = EXAMPLES / "astronaut.jpg"
ENV = {**os.environ, "CUTOUT_OFFLINE": "1"}


def _cutout(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "cutout", *args]
    return subprocess.run(command, input=stdin, capture_output=True, env=ENV, timeout=180)


def _start(*args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "cutout", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)


def _wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _assert_complete_pngs(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert not [p for p in files if p.name.endswith(".part")], files
    for path in files:
        Image.open(path).load()  # a partial file would fail here
    return files


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "shoot"
    (root / "day1").mkdir(parents=True)
    (root / "day2" / "close").mkdir(parents=True)
    shutil.copy(EXAMPLES / "astronaut.jpg", root / "astronaut.jpg")
    shutil.copy(EXAMPLES / "chelsea.jpg", root / "day1" / "chelsea.jpg")
    shutil.copy(EXAMPLES / "coffee.jpg", root / "day2" / "close" / "coffee.jpg")
    (root / "day1" / "notes.txt").write_text("not an image, not even looked at")
    return root


def test_readme_command_writes_the_same_pixels_as_the_api(u2netp_onnx: Path, tmp_path: Path) -> None:
    result = _cutout("image", str(EXAMPLE), str(tmp_path / "astronaut.png"))
    assert result.returncode == 0, result.stderr.decode()
    written = np.asarray(Image.open(tmp_path / "astronaut.png"))
    expected = cutout.remove(EXAMPLE, model="u2netp", backend="onnx")
    assert isinstance(expected, bytes)
    np.testing.assert_array_equal(written, np.asarray(Image.open(io.BytesIO(expected))))
    assert [p.name for p in tmp_path.iterdir()] == ["astronaut.png"]


@pytest.mark.parametrize(
    ("options", "suffix"),
    [(["--bg", "white"], ".jpg"), (["--only-mask"], ".png"), (["--bg", "blur", "--post-process"], ".webp")],
)
def test_command_pixels_equal_the_api_for_the_same_options(
    u2netp_onnx: Path, tmp_path: Path, options: list[str], suffix: str
) -> None:
    target = tmp_path / f"out{suffix}"
    result = _cutout("image", str(EXAMPLE), str(target), *options)
    assert result.returncode == 0, result.stderr.decode()
    api = {"bg": options[1]} if options[0] == "--bg" else {"only_mask": True}
    if "--post-process" in options:
        api["post_process"] = True
    expected = cutout.remove(EXAMPLE, **api)  # type: ignore[arg-type]
    expected_pixels = np.asarray(Image.open(io.BytesIO(expected)))  # type: ignore[arg-type]
    if suffix == ".png":
        np.testing.assert_array_equal(np.asarray(Image.open(target)), expected_pixels)
    else:  # lossy formats: the same image, encoded with loss
        written = np.asarray(Image.open(target)).astype(int)
        assert written.shape == expected_pixels.shape and np.abs(written - expected_pixels).mean() < 3


def test_the_api_gives_the_bytes_the_command_writes_profile_and_exif_kept(u2netp_onnx: Path, tmp_path: Path) -> None:
    # cutout.remove(bytes) saved with Pillow's PNG defaults, dropping the photo's ICC profile (a phone's Display
    # P3 photo then shows as sRGB, duller) and EXIF, and a PIL image came back without them
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x8298] = "(c) 2026 A. Photographer"
    photo = tmp_path / "photo.jpg"
    Image.open(EXAMPLE).save(photo, icc_profile=profile, exif=exif, quality=92)
    result = _cutout("image", str(photo), str(tmp_path / "out.png"))
    assert result.returncode == 0, result.stderr.decode()
    expected = cutout.remove(photo.read_bytes())
    assert expected == (tmp_path / "out.png").read_bytes()
    with Image.open(io.BytesIO(expected)) as written:
        assert written.info["icc_profile"] == profile and written.getexif()[0x8298] == "(c) 2026 A. Photographer"
    with Image.open(photo) as opened:
        returned = cutout.remove(opened)
    assert isinstance(returned, Image.Image) and returned.info["icc_profile"] == profile
    assert returned.getexif()[0x8298] == "(c) 2026 A. Photographer"
    saved = io.BytesIO()
    returned.save(saved, format="PNG", exif=returned.getexif())  # Pillow writes the profile by itself
    with Image.open(saved) as again:
        assert again.info["icc_profile"] == profile and again.getexif()[0x8298] == "(c) 2026 A. Photographer"


def test_a_background_colour_is_the_one_typed_on_a_display_p3_photo(u2netp_onnx: Path, tmp_path: Path) -> None:
    from test_compose import display_p3_profile

    p3 = display_p3_profile()
    photo = tmp_path / "phone.png"
    Image.open(EXAMPLE).save(photo, icc_profile=p3)
    result = _cutout("image", str(photo), str(tmp_path / "out.png"), "--bg", "#ff0000")
    assert result.returncode == 0, result.stderr.decode()
    with Image.open(tmp_path / "out.png") as written:
        assert written.info["icc_profile"] == p3
        corner = np.asarray(written)[:8, :8].reshape(-1, 3)  # background only, in the photo's numbers
    assert (np.abs(corner.astype(int) - [233, 54, 40]).max(axis=1) <= 2).mean() > 0.9, corner[:4]
    assert cutout.remove(photo, bg="#ff0000") == (tmp_path / "out.png").read_bytes()


def test_a_background_image_with_transparency_keeps_it(u2netp_onnx: Path, tmp_path: Path) -> None:
    frame = np.zeros((100, 100, 4), np.uint8)
    frame[..., 0], frame[:, :50, 3] = 200, 255  # red on the left, see-through on the right (black stored there)
    Image.fromarray(frame).save(tmp_path / "frame.png")
    result = _cutout("image", str(EXAMPLE), str(tmp_path / "out.png"), "--bg", str(tmp_path / "frame.png"))
    assert result.returncode == 0, result.stderr.decode()
    written = np.asarray(Image.open(tmp_path / "out.png"))
    expected = cutout.remove(EXAMPLE, bg=str(tmp_path / "frame.png"))
    np.testing.assert_array_equal(written, np.asarray(Image.open(io.BytesIO(expected))))  # type: ignore[arg-type]
    assert (written[:, :200] == [200, 0, 0, 255]).all(axis=-1).mean() > 0.25  # the red, where the subject is not
    assert written[:200, -5:, 3].max() == 0  # the frame's see-through side stays so (not its stored black)
    result = _cutout("image", str(EXAMPLE), str(tmp_path / "out.jpg"), "--bg", str(tmp_path / "frame.png"))
    assert result.returncode == 2 and "frame.png has transparency" in result.stderr.decode()


def test_an_input_with_transparency_gives_the_api_pixels_and_keeps_it(u2netp_onnx: Path, tmp_path: Path) -> None:
    rgba = np.asarray(Image.open(EXAMPLE).convert("RGBA")).copy()
    rgba[:, :256, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "half.png")
    result = _cutout("image", str(tmp_path / "half.png"), str(tmp_path / "out.png"))
    assert result.returncode == 0, result.stderr.decode()
    written = np.asarray(Image.open(tmp_path / "out.png"))
    expected = cutout.remove(tmp_path / "half.png")
    np.testing.assert_array_equal(written, np.asarray(Image.open(io.BytesIO(expected))))  # type: ignore[arg-type]
    assert not written[:, :256, 3].any() and written[:, 256:, 3].any()


@pytest.mark.parametrize("quiet", [["-q"], []])
def test_a_finished_command_exits_at_once_without_tearing_the_interpreter_down(
    u2netp_onnx: Path, tree: Path, tmp_path: Path, quiet: list[str]
) -> None:
    # A thread the pipeline had left behind (ending inferences on cancel) made the command finalise the interpreter
    # instead of exiting at once, in -q runs: slower, and with torch on CUDA it once aborted the process
    # ("terminate called without an active exception", exit -6) after writing every file. An atexit handler
    # runs only when the interpreter is torn down.
    code = (
        "import atexit, sys; atexit.register(lambda: print('torn down', flush=True)); "
        "from cutout.cli.main import main; sys.argv = ['cutout', *sys.argv[1:]]; main()"
    )
    args = ["image", str(tree), str(tmp_path / "out"), *quiet]
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, env=ENV, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert b"torn down" not in result.stdout
    assert len(_assert_complete_pngs(tmp_path / "out")) == 3


def test_stdin_to_stdout(u2netp_onnx: Path) -> None:
    result = _cutout("image", stdin=EXAMPLE.read_bytes())
    assert result.returncode == 0, result.stderr.decode()
    image = Image.open(io.BytesIO(result.stdout))
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (512, 512)
    assert result.stderr == b""  # nothing but the image on the pipes


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes and /dev/stdout are POSIX")
def test_dev_stdout_dev_null_and_named_pipes_are_outputs_not_inputs(u2netp_onnx: Path, tmp_path: Path) -> None:
    # `cutout image a.jpg /dev/stdout > a.png` read /dev/stdout as a second input ("is empty (0 bytes)") and wrote
    # a.cutout.png beside the photo instead
    photo = tmp_path / "a.jpg"
    shutil.copy(EXAMPLE, photo)
    with (tmp_path / "a.png").open("wb") as redirected:
        command = [sys.executable, "-m", "cutout", "image", str(photo), "/dev/stdout"]
        result = subprocess.run(command, stdout=redirected, stderr=subprocess.PIPE, env=ENV, timeout=180)
    assert result.returncode == 0, result.stderr.decode()
    assert Image.open(tmp_path / "a.png").size == (512, 512)
    with (tmp_path / "log.bin").open("ab") as appended:  # `>> log.bin`: what is there stays
        appended.write(b"earlier\n")
        appended.flush()
        subprocess.run(command, stdout=appended, stderr=subprocess.PIPE, env=ENV, timeout=180, check=True)
    assert (tmp_path / "log.bin").read_bytes()[:12] == b"earlier\n\x89PNG"
    (tmp_path / "log.bin").unlink()
    assert _cutout("image", str(photo), "/dev/null").returncode == 0
    assert _cutout("image", str(photo), "-o", "/dev/null", "--format", "webp").returncode == 0
    # from standard input too ("cannot tell the output format of /dev/null from its extension")
    assert _cutout("image", "-", "/dev/null", stdin=photo.read_bytes()).returncode == 0
    with (tmp_path / "c.png").open("wb") as redirected:
        command = [sys.executable, "-m", "cutout", "image", "-", "/dev/stdout"]
        result = subprocess.run(command, input=photo.read_bytes(), stdout=redirected, stderr=subprocess.PIPE, env=ENV)
    assert result.returncode == 0, result.stderr.decode()
    assert Image.open(tmp_path / "c.png").size == (512, 512)
    (tmp_path / "c.png").unlink()
    os.mkfifo(tmp_path / "pipe")
    with (tmp_path / "b.png").open("wb") as received:
        reader = subprocess.Popen(["cat", str(tmp_path / "pipe")], stdout=received)
        assert _cutout("image", str(photo), str(tmp_path / "pipe")).returncode == 0
        assert reader.wait(timeout=60) == 0
    assert Image.open(tmp_path / "b.png").size == (512, 512)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a.png", "b.png", "pipe"]  # none beside a.jpg
    import pty

    leader, follower = pty.openpty()
    try:
        terminal = _cutout("image", str(photo), os.ttyname(follower))
    finally:
        os.close(leader)
        os.close(follower)
    assert terminal.returncode == 2 and "is a terminal, not a file" in terminal.stderr.decode()


@pytest.mark.parametrize("form", [["-", "{out}"], ["-o", "{out}"]])
def test_stdin_to_an_existing_file_is_skipped_unless_overwrite(u2netp_onnx: Path, tmp_path: Path, form: list) -> None:
    # `cat a.jpg | cutout image - photo.jpg --bg white` replaced photo.jpg, where every other form skips it
    out = tmp_path / "photo.jpg"
    shutil.copy(EXAMPLES / "chelsea.jpg", out)
    photo = out.read_bytes()
    args = [a.format(out=out) for a in form]
    skipped = _cutout("image", *args, "--bg", "white", stdin=EXAMPLE.read_bytes())
    assert skipped.returncode == 0 and "0 done, 1 skipped (output exists" in skipped.stderr.decode()
    assert out.read_bytes() == photo
    redone = _cutout("image", *args, "--bg", "white", "--overwrite", stdin=EXAMPLE.read_bytes())
    assert redone.returncode == 0 and "1 done" in redone.stderr.decode()
    assert Image.open(out).size == (512, 512)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "<stdin>: the image is empty (0 bytes)"),
        (b"garbage\n", "<stdin>: the data is not an image Pillow can read"),
    ],
)
def test_stdin_that_is_not_an_image(data: bytes, reason: str) -> None:
    result = _cutout("image", stdin=data)
    assert result.returncode == 1 and result.stdout == b""
    assert reason in result.stderr.decode()


def test_standard_output_that_stops_taking_bytes_is_never_a_silent_success(u2netp_onnx: Path) -> None:
    # the reader leaves while the 0.3 MB PNG is half written: the pipe takes 64 KiB and Python's buffered write
    # said so only in its return value, which was ignored: a cut file and exit code 0
    process = _start("image", str(EXAMPLE), "-")
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(10)
    process.stdout.close()
    assert process.wait(timeout=60) == 1
    assert b"Traceback" not in process.stderr.read()
    if Path("/dev/full").exists():  # a full disk
        with open("/dev/full", "wb") as full:
            result = subprocess.run(
                [sys.executable, "-m", "cutout", "image", str(EXAMPLE), "-"],
                stdout=full,
                stderr=subprocess.PIPE,
                env=ENV,
                timeout=60,
            )
        assert result.returncode == 1
        assert b"cannot write to standard output: no space left on device" in result.stderr


def test_folder_is_processed_recursively_into_a_mirrored_tree(u2netp_onnx: Path, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "cut"
    result = _cutout("image", str(tree), str(out))
    assert result.returncode == 0, result.stderr.decode()
    written = [p.relative_to(out).as_posix() for p in _assert_complete_pngs(out)]
    assert written == ["astronaut.png", "day1/chelsea.png", "day2/close/coffee.png"]
    assert "3 done" in result.stderr.decode()


def test_existing_outputs_are_skipped_unless_overwrite(u2netp_onnx: Path, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "cut"
    assert _cutout("image", str(tree), str(out)).returncode == 0
    (out / "day1" / "chelsea.png").unlink()
    stamp = (out / "astronaut.png").stat().st_mtime_ns
    again = _cutout("image", str(tree), str(out))
    assert again.returncode == 0
    assert "1 done, 2 skipped" in again.stderr.decode()
    assert (out / "day1" / "chelsea.png").exists() and (out / "astronaut.png").stat().st_mtime_ns == stamp
    forced = _cutout("image", str(tree), str(out), "--overwrite")
    assert "3 done" in forced.stderr.decode() and (out / "astronaut.png").stat().st_mtime_ns != stamp


def test_a_folder_run_skips_earlier_results_beside_the_photos(u2netp_onnx: Path, tree: Path, tmp_path: Path) -> None:
    # `cutout image shoot/astronaut.jpg` leaves astronaut.cutout.png beside the photo; a later folder run cut that
    # result out again (astronaut.cutout.png in the output folder, and .cutout.cutout.png on the run after)
    assert _cutout("image", str(tree / "astronaut.jpg")).returncode == 0
    assert _cutout("image", str(tree / "day1" / "chelsea.jpg"), "--bg", "white", "--format", "jpg").returncode == 0
    look_alike = tree / "day1" / "look.cutout.png"  # named like a result, but a photo: cut out
    Image.open(EXAMPLE).save(look_alike)
    out = tmp_path / "cut"
    result = _cutout("image", str(tree), str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert "4 done, 2 skipped (made by cutout" in result.stderr.decode()
    written = [p.relative_to(out).as_posix() for p in _assert_complete_pngs(out)]
    assert written == ["astronaut.png", "day1/chelsea.png", "day1/look.cutout.png", "day2/close/coffee.png"]
    named = _cutout("image", str(tree / "astronaut.cutout.png"), "-o", str(tmp_path / "again.png"))
    assert named.returncode == 0 and (tmp_path / "again.png").exists(), named.stderr.decode()
    # a folder of cutouts under their own names is meant: put on a white background (all but the one named
    # NAME.cutout.png, as a result beside its photo is)
    white = _cutout("image", str(out), str(tmp_path / "white"), "--bg", "white", "--format", "jpg")
    assert white.returncode == 0 and "3 done, 1 skipped (made by cutout" in white.stderr.decode(), white.stderr.decode()


def test_a_rerun_into_an_output_folder_inside_the_input_reads_only_the_photos(u2netp_onnx: Path, tree: Path) -> None:
    # relative paths, as typed in a shell: the output folder inside the input was read back as new inputs
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "cutout", "image", "shoot", "shoot/cut", "--overwrite"],
            cwd=tree.parent,
            capture_output=True,
            env=ENV,
            timeout=180,
        )
        assert result.returncode == 0, result.stderr.decode()
        assert "3 done" in result.stderr.decode()
    written = [p.relative_to(tree / "cut").as_posix() for p in _assert_complete_pngs(tree / "cut")]
    assert written == ["astronaut.png", "day1/chelsea.png", "day2/close/coffee.png"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{png}", "{png}", "--overwrite"], "replaced by its own cutout"),
        (["{jpg}", "{jpg}", "--bg", "white", "--overwrite"], "replaced by its own cutout"),
        (["{png}", "{jpg}", "{folder}", "--overwrite"], "replaced by its own cutout"),
        (["{folder}", "{folder}", "--overwrite"], "output folder is the input folder"),
        (["{folder}", "{folder}", "--watch"], "output folder is the input folder"),
        (["{jpg}", "{folder}/out.gif"], "cannot write GIF"),
        (["{folder}", "{folder}/out.png"], "names one file"),
    ],
)
def test_outputs_never_replace_inputs_and_odd_outputs_are_usage_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "a.jpg")
    Image.open(EXAMPLE).save(folder / "b.png")
    before = {p: p.read_bytes() for p in folder.iterdir()}
    names = {"png": folder / "b.png", "jpg": folder / "a.jpg", "folder": folder}
    result = _cutout("image", *(a.format(**names) for a in args))
    assert result.returncode == 2, result.stderr.decode()
    assert message in result.stderr.decode()
    assert {p: p.read_bytes() for p in folder.iterdir()} == before  # nothing replaced, nothing added


def test_two_photos_from_a_glob_never_lose_the_second_to_overwrite(u2netp_onnx: Path, tmp_path: Path) -> None:
    # `cutout image *.jpg --bg white --overwrite` in a folder of two photos: the second was taken as the output
    # and replaced by the first one's cutout
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "a.jpg")
    shutil.copy(EXAMPLES / "chelsea.jpg", folder / "b.jpg")
    photo = (folder / "b.jpg").read_bytes()
    a, b = str(folder / "a.jpg"), str(folder / "b.jpg")
    refused = _cutout("image", a, b, "--bg", "white", "--overwrite")
    assert refused.returncode == 2, refused.stderr.decode()
    message = refused.stderr.decode()
    assert "was not made by cutout" in message and "add an output folder" in message and "-o" in message
    unclear = _cutout("image", a, b)  # no --bg: the JPEG error says why b.jpg is the output
    assert unclear.returncode == 2 and "is taken as the output" in unclear.stderr.decode()
    assert (folder / "b.jpg").read_bytes() == photo and sorted(p.name for p in folder.iterdir()) == ["a.jpg", "b.jpg"]
    # named with -o it is the output; an earlier result of cutout is then replaced as before
    named = _cutout("image", a, "-o", b, "--bg", "white", "--overwrite")
    assert named.returncode == 0, named.stderr.decode()
    assert (folder / "b.jpg").read_bytes() != photo
    redone = _cutout("image", a, b, "--bg", "red", "--overwrite")
    assert redone.returncode == 0, redone.stderr.decode()
    assert np.asarray(Image.open(folder / "b.jpg"))[0, 0].tolist() == pytest.approx([254, 0, 0], abs=2)


def test_long_file_names_work_up_to_the_limit_and_fail_clearly_past_it(u2netp_onnx: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    fits, too_long = "x" * 246, "y" * 248  # y's default output, NAME.cutout.webp, is 264 bytes
    for name in (fits, too_long):
        shutil.copy(EXAMPLE, folder / f"{name}.jpg")
    result = _cutout("image", str(folder), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr.decode()  # the temporary name (15 bytes more) failed here
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{fits}.png", f"{too_long}.png"]
    beside = _cutout("image", str(folder / f"{too_long}.jpg"), "--format", "webp")
    assert beside.returncode == 1 and "Traceback" not in beside.stderr.decode()
    assert "more than the 255 a file name may have" in beside.stderr.decode()
    video = _cutout("video", str(tmp_path / ("z" * 300 + ".mp4")), "--bg", "white")
    assert video.returncode == 2 and "Traceback" not in video.stderr.decode()
    assert sorted(p.name for p in folder.iterdir()) == [f"{fits}.jpg", f"{too_long}.jpg"]


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="these file systems store names as Unicode")
def test_file_names_that_are_not_utf8_are_cut_out_and_named(u2netp_onnx: Path, tmp_path: Path) -> None:
    # an old camera's or a Windows zip's Latin-1 name: "café.jpg" as the bytes b"caf\xe9.jpg"
    folder = tmp_path / "in"
    folder.mkdir()
    latin1 = os.fsdecode(b"caf\xe9")
    shutil.copy(EXAMPLE, folder / f"{latin1}.jpg")
    (folder / f"{latin1}-broken.jpg").write_bytes(EXAMPLE.read_bytes()[:2000])
    long_latin1 = os.fsdecode(b"\xe9" * 200)  # its temporary name is cut to fit, byte by byte
    shutil.copy(EXAMPLE, folder / f"{long_latin1}.jpg")
    result = _cutout("image", str(folder), str(tmp_path / "out"))  # before: UnicodeEncodeError ended the batch
    message = result.stderr.decode(errors="replace")
    assert result.returncode == 1 and "Traceback" not in message, message
    assert "2 done, 1 failed" in message and "-broken.jpg is corrupt or truncated" in message
    assert "in/caf\\xe9-broken.jpg is corrupt" in message  # its bytes, as `ls -b` shows them; was caf\udce9
    written = sorted(os.fsencode(p.name) for p in (tmp_path / "out").iterdir())
    assert written == [b"caf\xe9.png", b"\xe9" * 200 + b".png"]
    single = _cutout("image", str(folder / f"{latin1}.jpg"), "--bg", "white")
    assert single.returncode == 0, single.stderr.decode(errors="replace")
    assert (folder / f"{latin1}.cutout.png").is_file()


def test_several_inputs_and_a_quoted_glob(u2netp_onnx: Path, tree: Path, tmp_path: Path) -> None:
    listed = _cutout("image", str(tree / "astronaut.jpg"), str(tree / "day1" / "chelsea.jpg"), str(tmp_path / "a"))
    assert listed.returncode == 0, listed.stderr.decode()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["astronaut.png", "chelsea.png"]
    globbed = _cutout("image", f"{tree}/**/*.jpg", "-o", str(tmp_path / "g"), "--format", "webp", "--bg", "blur")
    assert globbed.returncode == 0, globbed.stderr.decode()
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["astronaut.webp", "chelsea.webp", "coffee.webp"]


def test_an_animated_gif_is_cut_out_as_its_first_frame_with_a_warning(u2netp_onnx: Path, tmp_path: Path) -> None:
    photo = Image.open(EXAMPLE).convert("RGB").resize((64, 64))
    photo.save(tmp_path / "anim.gif", save_all=True, append_images=[photo.rotate(90)], duration=100)
    result = _cutout("image", "-q", str(tmp_path / "anim.gif"), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr.decode()
    assert f"warning: {tmp_path / 'anim.gif'} is animated (2 frames): only its first frame" in result.stderr.decode()
    assert Image.open(tmp_path / "out" / "anim.png").size == (64, 64)


def test_pillows_warnings_name_each_image_they_are_about(u2netp_onnx: Path, tmp_path: Path) -> None:
    # "warning: Corrupt EXIF data. Expecting to read 12 bytes but only got 0." named no file, and only the first
    # image of a folder with it was mentioned at all
    (tmp_path / "in").mkdir()
    for name in ("a.jpg", "b.jpg"):  # an EXIF block whose first directory says it holds 65535 entries
        Image.open(EXAMPLE).save(tmp_path / "in" / name, exif=b"Exif\0\0MM\0*\0\0\0\x08\xff\xff")
    result = _cutout("image", "-q", str(tmp_path / "in"), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr.decode()
    lines = [line for line in result.stderr.decode().splitlines() if "Corrupt EXIF data" in line]
    assert [line.split(": ")[1] for line in lines] == [str(tmp_path / "in" / "a.jpg"), str(tmp_path / "in" / "b.jpg")]


def test_an_animated_background_says_a_photo_gets_its_first_frame(u2netp_onnx: Path, tmp_path: Path) -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "lime", "blue")]
    frames[0].save(tmp_path / "party.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = _cutout("image", "-q", str(EXAMPLE), str(tmp_path / "out.jpg"), "--bg", str(tmp_path / "party.gif"))
    assert result.returncode == 0, result.stderr.decode()
    assert "party.gif is animated (3 frames): a photo gets its first frame" in result.stderr.decode()
    assert np.asarray(Image.open(tmp_path / "out.jpg"))[0, 0].tolist() == pytest.approx([254, 0, 0], abs=3)


def test_a_bad_file_fails_alone_with_exit_code_1(u2netp_onnx: Path, tree: Path, tmp_path: Path) -> None:
    (tree / "day1" / "broken.jpg").write_bytes(EXAMPLE.read_bytes()[:3000])
    result = _cutout("image", str(tree), str(tmp_path / "cut"))
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "3 done" in stderr and "1 failed" in stderr and "broken.jpg" in stderr and "truncated" in stderr
    assert len(_assert_complete_pngs(tmp_path / "cut")) == 3


def test_a_broken_model_file_is_one_clear_error_and_writes_nothing(tree: Path, tmp_path: Path) -> None:
    broken = tmp_path / "u2netp.onnx"
    broken.write_bytes(b"not an onnx model")
    for watch in ([], ["--watch"]):  # loaded in the background while files are read, or first (--watch)
        result = _cutout("image", str(tree), str(tmp_path / "cut"), "--model", str(broken), *watch)
        assert result.returncode == 1, result.stderr.decode()
        lines = result.stderr.decode().strip().splitlines()
        assert lines[-1].startswith("error: onnxruntime cannot load") and "Traceback" not in result.stderr.decode()
        assert lines[-1].endswith("it is damaged or not an ONNX model (check the file, or fetch it again)")
        assert not (tmp_path / "cut").exists() or not any((tmp_path / "cut").rglob("*.*"))


def test_a_model_file_of_another_kind_fails_in_one_line_and_a_nan_mask_fails_its_images(
    tree: Path, tmp_path: Path, build_onnx: Callable[..., Path]
) -> None:
    # rembg's ISNet takes 1024 x 1024, a broken graph fails in onnxruntime, a broken model gives NaN: the first two
    # ended the batch with onnxruntime's traceback, the third wrote empty cutouts counted as done
    onnx = pytest.importorskip("onnx")
    mean = onnx.helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=1)
    isnet = build_onnx(tmp_path / "isnet.onnx", [mean], [("x", "FLOAT", [1, 3, 1024, 1024])], [("y", "FLOAT", None)])
    target = onnx.helper.make_tensor("s", onnx.TensorProto.INT64, [2], [7, 7])
    reshape = onnx.helper.make_node("Reshape", ["x", "s"], ["y"])
    image = ("x", "FLOAT", [1, 3, 320, 320])
    broken = build_onnx(tmp_path / "broken.onnx", [reshape], [image], [("y", "FLOAT", None)], (target,))
    zero = [onnx.helper.make_node("Sub", ["x", "x"], ["z"]), onnx.helper.make_node("Div", ["z", "z"], ["n"])]
    mean_of_nan = onnx.helper.make_node("ReduceMean", ["n"], ["y"], axes=[1], keepdims=1)
    nan = build_onnx(tmp_path / "nan.onnx", [*zero, mean_of_nan], [image], [("y", "FLOAT", None)])
    for model, said in ((isnet, "isnet.onnx takes images of (1024, 1024) only"), (broken, "failed to run broken")):
        result = _cutout("image", str(tree), str(tmp_path / "cut"), "--model", str(model))
        stderr = result.stderr.decode()
        assert result.returncode == 1 and "Traceback" not in stderr, stderr
        assert stderr.strip().splitlines()[-1].startswith(f"error: {'onnxruntime ' if model == broken else ''}{said}")
        assert not (tmp_path / "cut").exists() or not any((tmp_path / "cut").rglob("*.*"))
    result = _cutout("image", str(tree), str(tmp_path / "cut"), "--model", str(nan))
    stderr = result.stderr.decode()
    assert result.returncode == 1 and "0 done, 3 failed" in stderr and "Traceback" not in stderr, stderr
    assert stderr.count("the model's mask is not a number") == 3
    assert not (tmp_path / "cut").exists() or not any((tmp_path / "cut").rglob("*.*"))


def test_closed_standard_streams_neither_end_the_run_nor_swallow_its_output(u2netp_onnx: Path, tmp_path: Path) -> None:
    # with descriptor 1 closed (`>&-`, a bare service manager) cutout ended in an AttributeError before any work,
    # even writing into a folder (sys.stdout is None); with 2 closed it wrote the file but exited 1
    def shell(command: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["sh", "-c", command], capture_output=True, env=ENV, timeout=180)

    base = f"{shlex.quote(sys.executable)} -m cutout image"
    done = shell(f"{base} {shlex.quote(str(EXAMPLE))} {shlex.quote(str(tmp_path / 'a'))}/ >&-")
    assert done.returncode == 0 and "1 done" in done.stderr.decode(), done.stderr.decode()
    no_errors = shell(f"{base} {shlex.quote(str(EXAMPLE))} {shlex.quote(str(tmp_path / 'b'))}/ 2>&-")
    assert no_errors.returncode == 0
    assert len(_assert_complete_pngs(tmp_path / "a")) == 1 and len(_assert_complete_pngs(tmp_path / "b")) == 1
    # what would go to a closed standard output is refused, not written into /dev/null and counted as done
    for command in (f"{base} {shlex.quote(str(EXAMPLE))} - >&-", f"{base} < {shlex.quote(str(EXAMPLE))} >&-"):
        refused = shell(command)
        assert refused.returncode == 2, refused.stderr.decode()
        assert "error: standard output is closed (>&-): name an output file or folder" in refused.stderr.decode()
    no_input = shell(f"{base} - {shlex.quote(str(tmp_path / 'c.png'))} <&-")
    assert no_input.returncode == 2 and "no input (standard input is closed)" in no_input.stderr.decode()


def test_fail_fast_stops_early(u2netp_onnx: Path, tree: Path, tmp_path: Path) -> None:
    (tree / "a-broken.jpg").write_text("no")
    result = _cutout("image", str(tree), str(tmp_path / "cut"), "--fail-fast")
    assert result.returncode == 1 and "fail-fast" in result.stderr.decode()


def test_a_full_disk_stops_the_batch_with_what_to_do(u2netp_onnx: Path, tree: Path, tmp_path: Path) -> None:
    # Each file of a 10,000-photo batch would otherwise be cut out only to fail to save. The disk fills (ENOSPC,
    # from the kernel, at the fsync of the second result) in the real command, started as the tests start it.
    code = (
        "import errno, os, sys\n"
        "calls, fsync = [], os.fsync\n"
        "def full(fd):\n"
        "    calls.append(fd)\n"
        "    if len(calls) > 1:\n"
        "        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
        "    fsync(fd)\n"
        "os.fsync = full\n"
        "from cutout.cli.main import main; sys.argv = ['cutout', *sys.argv[1:]]; main()"
    )
    for copy in range(3):  # six photos in all
        shutil.copy(EXAMPLE, tree / f"more{copy}.jpg")
    out = tmp_path / "cut"
    result = subprocess.run(
        [sys.executable, "-c", code, "image", str(tree), str(out), "--workers", "1"], capture_output=True, env=ENV
    )
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "1 done, 1 failed" in stderr and "no space left on device; free some space there" in stderr
    assert "stopped: the disk is full, so no later result could be saved; 4 not done." in stderr
    assert "run the same command again (done files are skipped)" in stderr
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) == 1 and not [p for p in written if ".part" in p.name]  # no half-written file


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["image", "photo-that-does-not-exist.jpg", "x.png"], "does not exist"),
        (["image", str(EXAMPLE), "out.jpg"], "no transparency"),
        (["image", str(EXAMPLE), "out.png", "--format", "jpg", "--bg", "white"], "out.png is named as PNG but"),
        (["image", str(EXAMPLE), "--bg", "not-a-colour"], "--bg"),
        (["image", str(EXAMPLE), "--no-such-option"], "No such option"),
        (["image", str(EXAMPLE), "-m", "no-such-model"], "unknown model"),
        (["image", str(EXAMPLE), "m.png", "--only-mask", "--bg", "white"], "drop --bg 'white' or --only-mask"),
    ],
)
def test_usage_errors_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = _cutout(*args)
    assert result.returncode == 2
    assert message in result.stderr.decode()


@pytest.mark.parametrize(
    ("raised", "shown"),
    [
        ("RuntimeError('CUDA out of memory. Tried to allocate 2.00 GiB')", "(CUDA out of memory. Tried to alloc"),
        ("MemoryError()", "(MemoryError)"),
        ("OSError(12, 'Cannot allocate memory')", "([Errno 12] Cannot allocate memory)"),
        (  # torch's CPU allocator (a training run of --num-classes 100000 showed its traceback)
            'RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can\'t allocate memory")',
            "([enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory)",
        ),
    ],
)
def test_running_out_of_memory_is_a_line_of_advice_not_a_traceback(tmp_path: Path, raised: str, shown: str) -> None:
    # a video or a training run that runs out of memory (a GPU's, most often) ended in a traceback
    script = (
        "import sys, cutout.api\n"
        f"def short(*args, **kwargs): raise {raised}\n"
        "cutout.api.Session.__init__ = short\n"
        "from cutout.cli.main import main\n"
        "sys.argv = ['cutout', *sys.argv[1:]]\n"
        "main()\n"
    )
    command = [sys.executable, "-c", script, "image", str(EXAMPLE), str(tmp_path / "x.png")]
    result = subprocess.run(command, capture_output=True, env=ENV, timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in stderr, stderr
    assert f"error: ran out of memory {shown}" in stderr and "lower --batch-size" in stderr
    other = script.replace(raised, "RuntimeError('a bug')")
    result = subprocess.run([sys.executable, "-c", other, *command[3:]], capture_output=True, env=ENV, timeout=120)
    assert result.returncode == 1 and "Traceback" in result.stderr.decode()  # a bug is not dressed up as advice


def test_ctrl_c_stops_cleanly_with_exit_130_and_no_partial_file(u2netp_onnx: Path, tmp_path: Path) -> None:
    source = tmp_path / "many"
    source.mkdir()
    big = Image.open(EXAMPLE).resize((2000, 2000))
    for i in range(40):
        big.save(source / f"{i:02d}.jpg", quality=80)
    out = tmp_path / "out"
    process = _start("image", str(source), str(out))
    _wait_for(lambda: out.exists() and any(out.glob("*.png")))
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    assert "interrupted" in stderr.decode() and "run the same command again" in stderr.decode()
    done = _assert_complete_pngs(out)
    assert 0 < len(done) < 40


def test_sigterm_is_handled_like_ctrl_c(u2netp_onnx: Path, tmp_path: Path) -> None:
    source = tmp_path / "many"
    source.mkdir()
    for i in range(30):
        Image.open(EXAMPLE).resize((1500, 1500)).save(source / f"{i:02d}.jpg")
    out = tmp_path / "out"
    process = _start("image", str(source), str(out))
    _wait_for(lambda: out.exists() and any(out.glob("*.png")))
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 130
    _assert_complete_pngs(out)


def test_watch_processes_new_files_until_interrupted(u2netp_onnx: Path, tmp_path: Path) -> None:
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    shutil.copy(EXAMPLES / "chelsea.jpg", inbox / "first.jpg")
    process = _start("image", str(inbox), str(done), "--watch")
    try:
        _wait_for(lambda: (done / "first.png").exists())
        shutil.copy(EXAMPLES / "coffee.jpg", inbox / "later.jpg")
        _wait_for(lambda: (done / "later.png").exists())
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    assert [p.name for p in _assert_complete_pngs(done)] == ["first.png", "later.png"]


def test_stale_temporary_files_of_a_killed_run_are_removed(u2netp_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".astronaut.png.0badc0de.part"
    stale.write_bytes(b"half a png")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert _cutout("image", str(EXAMPLE), "-o", str(out)).returncode == 0
    assert [p.name for p in out.iterdir()] == ["astronaut.png"]


def test_examples_run(u2netp_onnx: Path, tmp_path: Path) -> None:
    shell = subprocess.run(
        ["bash", str(ROOT / "examples" / "pipeline.sh"), str(EXAMPLES), str(tmp_path / "sh")],
        capture_output=True,
        env={**ENV, "PATH": f"{Path(sys.executable).parent}:{ENV['PATH']}"},
        timeout=180,
    )
    assert shell.returncode == 0, shell.stderr.decode()
    for name in ("astronaut", "chelsea", "coffee"):
        image = Image.open(tmp_path / "sh" / f"{name}.jpg")
        assert image.format == "JPEG" and image.size == Image.open(EXAMPLES / f"{name}.jpg").size
        assert np.asarray(image)[0, 0].min() > 240  # the corner is background: white
    python = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "batch.py"), str(EXAMPLES), str(tmp_path / "py")],
        capture_output=True,
        env=ENV,
        timeout=180,
    )
    assert python.returncode == 0, python.stderr.decode()
    assert python.stdout.decode().count("done") == 3
    assert sorted(p.name for p in (tmp_path / "py").iterdir()) == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg"]


def test_a_run_that_ends_while_the_model_loads_leaves_its_cache_whole(tmp_path: Path, u2netp_onnx: Path) -> None:
    # Everything is skipped, so the command is done before onnxruntime has built (and saved) its session:
    # the process ends quickly only once no thread is left, so the optimised graph is saved whole, not cut off.
    (tmp_path / "out").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "a.jpg")
    Image.new("RGBA", (4, 4)).save(tmp_path / "out" / "a.png")
    env = {**ENV, "CUTOUT_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "cutout", "image", "--model", str(u2netp_onnx), str(tmp_path / "a.jpg")]
    result = subprocess.run([*command, str(tmp_path / "out")], capture_output=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    assert b"1 skipped" in result.stderr
    saved = list((tmp_path / "home" / "optimized").iterdir())
    assert len(saved) == 1 and saved[0].suffix == ".onnx", saved
    import onnxruntime

    onnxruntime.InferenceSession(str(saved[0]), providers=["CPUExecutionProvider"])  # complete


@pytest.mark.parametrize("args", [(), ("-",)], ids=["stdin-to-stdout", "file-to-stdout"])
def test_image_bytes_are_not_written_to_a_terminal(tmp_path: Path, args: tuple[str, ...]) -> None:
    import pty

    leader, terminal = pty.openpty()
    try:
        with EXAMPLE.open("rb") as photo:
            command = [sys.executable, "-m", "cutout", "image", *([str(EXAMPLE), *args] if args else [])]
            result = subprocess.run(command, stdin=photo, stdout=terminal, stderr=subprocess.PIPE, env=ENV, timeout=60)
    finally:
        os.close(terminal)
        os.close(leader)
    assert result.returncode == 2
    assert "standard output is a terminal" in result.stderr.decode()


def test_watch_ends_at_once_on_ctrl_c_while_waiting_for_files(u2netp_onnx: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    process = _start("image", str(inbox), str(tmp_path / "done"), "--watch")
    try:
        assert process.stderr is not None
        lines = iter(process.stderr.readline, b"")
        assert any(b"watching" in line for line in lines)  # the model is loaded, the folder scan waits for files
        time.sleep(1.5)
    finally:
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    assert time.monotonic() - started < 3, "the folder scan held the exit up (it waited 5 s per stage before)"


def test_a_gpu_this_machine_lacks_is_a_usage_error(u2netp_onnx: Path, tmp_path: Path) -> None:
    from cutout.backends import onnx_cuda_available

    if onnx_cuda_available():
        pytest.skip("a GPU is present")
    result = _cutout("image", str(EXAMPLE), str(tmp_path / "a.png"), "--device", "cuda")
    assert result.returncode == 2, result.stderr.decode()
    assert "asked for a GPU" in result.stderr.decode() and "--device cpu" in result.stderr.decode()
    assert not (tmp_path / "a.png").exists()


def test_control_characters_in_file_names_are_written_out_not_sent_to_the_terminal(
    u2netp_onnx: Path, tmp_path: Path
) -> None:
    # a name holding ESC sequences would recolour or clear the terminal; one holding a newline split the line
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "esc\x1b[2Jclear.jpg").write_bytes(b"garbage")
    (folder / "two\nlines.jpg").write_bytes(b"garbage")
    result = _cutout("image", str(folder), str(tmp_path / "out"))
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "\x1b" not in err and "esc\\x1b[2Jclear.jpg is not an image" in err
    assert "two\\nlines.jpg is not an image" in err and len(err.splitlines()) == 3
    missing = _cutout("image", str(tmp_path / "gone\x07.jpg"))
    assert missing.returncode == 2 and "gone\\x07.jpg does not exist" in missing.stderr.decode()


def test_printable_keeps_text_and_writes_out_controls() -> None:
    from cutout.cli import printable, shown

    assert printable("ünïcode [tag] ok.jpg") == "ünïcode [tag] ok.jpg"
    assert printable("a\tb\rc\x1b[0m\u202edoc.exe") == "a\\tb\\rc\\x1b[0m\\u202edoc.exe"
    assert printable("one\ntwo") == "one\\ntwo" and printable("one\ntwo", lines=True) == "one\ntwo"
    assert shown("[red]x\x1b") == "\\[red]x\\x1b"


def test_videos_in_a_folder_are_named_with_the_command_that_takes_them(u2netp_onnx: Path, tmp_path: Path) -> None:
    # a folder of photos and clips did the photos and said nothing of the clips; one of clips only said
    # "no images found"
    folder = tmp_path / "media"
    (folder / "day1").mkdir(parents=True)
    shutil.copy(EXAMPLE, folder / "a.jpg")
    (folder / "day1" / "clip.MP4").write_bytes(b"a clip")
    (folder / "day1" / "b.mov").write_bytes(b"another")
    result = _cutout("image", str(folder), str(tmp_path / "out"))
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert f"warning: left out 2 videos (cutout image takes images): cut them out with cutout video {folder}\n" in err
    assert "1 done" in err
    (folder / "a.jpg").unlink()
    (folder / "day1" / "b.mov").unlink()
    only = _cutout("image", str(folder), str(tmp_path / "out"))
    assert only.returncode == 2
    assert f"only 1 video: cut it out with cutout video {folder / 'day1' / 'clip.MP4'}" in only.stderr.decode()


def test_a_folder_of_files_without_image_names_says_how_images_are_found(u2netp_onnx: Path, tmp_path: Path) -> None:
    # a folder of photos saved without a suffix (downloads named "image", "photo?id=3") said only "no images found"
    folder = tmp_path / "downloads"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(EXAMPLE, folder / "photo")
    (folder / "sub" / "notes.txt").write_text("shoot notes")
    result = _cutout("image", str(folder), str(tmp_path / "out"))
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert f"no images found in {folder}: 2 other files (photo, notes.txt) are not images by the suffix" in err
    assert f"named on its own (cutout image {folder / 'photo'} OUT.png), or once renamed" in err
    named = _cutout("image", str(folder / "photo"), str(tmp_path / "photo.png"))  # as the message says
    assert named.returncode == 0, named.stderr.decode()
    assert (tmp_path / "photo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (folder / "photo").unlink()
    (folder / "clip.mp4").write_bytes(b"a clip")
    both = _cutout("image", str(folder), str(tmp_path / "out")).stderr.decode()
    assert f"only 1 video: cut it out with cutout video {folder / 'clip.mp4'}; 1 other file (notes.txt) is not" in both
