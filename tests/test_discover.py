"""Which files a batch reads and where it writes: relative paths, output folders inside inputs, self-overwrites."""

from __future__ import annotations

import os
import shutil
import threading
import time
import warnings
from pathlib import Path

import pytest
from PIL import Image

from cutout.errors import UsageError
from cutout.io.discover import check_not_the_source, expand, find_images, plan_jobs, watch_jobs

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "images" / "astronaut.jpg"


@pytest.fixture
def shoot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """shoot/a.jpg and shoot/day1/b.png, with the working directory at tmp_path (paths as users type them)."""
    (tmp_path / "shoot" / "day1").mkdir(parents=True)
    shutil.copy(EXAMPLE, tmp_path / "shoot" / "a.jpg")
    shutil.copy(EXAMPLE, tmp_path / "shoot" / "day1" / "b.png")
    monkeypatch.chdir(tmp_path)
    return Path("shoot")


@pytest.mark.parametrize("absolute", ["output", "input", "neither"])
def test_an_output_folder_inside_the_input_is_never_read_back(shoot: Path, absolute: str) -> None:
    output = shoot / "cut"
    (output / "day1").mkdir(parents=True)
    (output / "a.png").write_bytes(b"a result of an earlier run")
    (output / "day1" / "b.png").write_bytes(b"a result of an earlier run")
    source = shoot.resolve() if absolute == "input" else shoot
    target = output.resolve() if absolute == "output" else output
    assert [p.name for p in find_images(source, exclude=target)] == ["a.jpg", "b.png"]
    plan = plan_jobs([source], target, "png", overwrite=True)
    assert [job.source.relative_to(source).as_posix() for job in plan.jobs] == ["a.jpg", "day1/b.png"]


def test_a_folder_run_follows_links_to_folders_each_real_folder_once(shoot: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "mnt" / "2024"
    elsewhere.mkdir(parents=True)
    shutil.copy(EXAMPLE, elsewhere / "c.jpg")
    (shoot / "2024").symlink_to(elsewhere)  # photos kept on another disk, linked into the tree
    (shoot / "day1" / "up").symlink_to(Path(".."))  # a loop: shoot/day1/up/day1/up/...
    (shoot / "again").symlink_to(Path("day1"))  # a second way to the same folder, listed before it: day1 keeps it
    found = [path.relative_to(shoot).as_posix() for path in find_images(shoot)]
    assert found == ["2024/c.jpg", "a.jpg", "day1/b.png"]
    scandir = os.scandir  # the same whatever order the file system lists a folder in
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "scandir", lambda path: iter(sorted(scandir(path), key=lambda e: e.name, reverse=True)))
        assert [path.relative_to(shoot).as_posix() for path in find_images(shoot)] == found
    plan = plan_jobs([shoot], Path("out"), "png")
    assert [job.target.as_posix() for job in plan.jobs] == ["out/2024/c.png", "out/a.png", "out/day1/b.png"]


def test_a_link_to_the_output_folder_is_not_read(shoot: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "a.png").write_bytes(b"a result of an earlier run")
    (shoot / "results").symlink_to(output)
    assert [path.name for path in find_images(shoot, exclude=Path("out"))] == ["a.jpg", "b.png"]


def test_an_unreadable_folder_is_named_and_the_rest_is_read(shoot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scandir = os.scandir
    locked = (shoot / "day1").resolve()

    def refusing(path: Path) -> object:  # as for a folder without read permission (chmod has no effect as root)
        if Path(path).resolve() == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    with pytest.warns(UserWarning, match=r"cannot read the folder shoot/day1 \(permission denied\): its files"):
        assert [path.name for path in find_images(shoot)] == ["a.jpg"]


@pytest.mark.parametrize("output", ["shoot", "shoot/", "./shoot", "shoot/day1/.."])
def test_the_input_folder_itself_is_refused_as_output(shoot: Path, output: str) -> None:
    before = sorted(shoot.rglob("*"))
    with pytest.raises(UsageError, match="output folder is the input folder"):
        plan_jobs([shoot], Path(output), "png", overwrite=True)
    assert sorted(shoot.rglob("*")) == before


@pytest.mark.parametrize("typed", [".", "..", "day1/..", "./"])
def test_a_folder_typed_as_dot_or_dot_dot_gets_the_output_folder_beside_it(
    shoot: Path, monkeypatch: pytest.MonkeyPatch, typed: str
) -> None:
    # `cutout image .` in the photos' folder crashed: ValueError, PosixPath('.') has an empty name
    root = shoot.resolve()
    monkeypatch.chdir(root / "day1" if typed == ".." else root)
    plan = plan_jobs([Path(typed)], None, "png")
    targets = [job.target.resolve().relative_to(root.with_name("shoot-cutout")) for job in plan.jobs]
    assert sorted(target.as_posix() for target in targets) == ["a.png", "day1/b.png"]


def test_the_root_folder_needs_an_output_folder() -> None:
    with pytest.raises(UsageError, match="give an output folder"):
        plan_jobs([Path("/")], None, "png")


def test_a_file_is_never_planned_over_itself(shoot: Path) -> None:
    png = shoot / "day1" / "b.png"
    with pytest.raises(UsageError, match="replaced by its own cutout"):
        plan_jobs([shoot / "a.jpg", png], shoot / "day1", "png", overwrite=True)  # `cutout image a.jpg *.png day1`
    link = shoot / "link.png"
    link.symlink_to(png.resolve())
    with pytest.raises(UsageError, match="replaced by its own cutout"):
        check_not_the_source(png, link)
    check_not_the_source(png, shoot / "b.png")  # not there yet: another file
    assert plan_jobs([shoot / "a.jpg"], shoot, "png").jobs[0].target == shoot / "a.png"


def test_watch_does_not_read_its_own_output_inside_the_folder(shoot: Path) -> None:
    output = shoot / "done"
    (output / "day1").mkdir(parents=True)
    (output / "day1" / "old.png").write_bytes(b"a result of an earlier run")
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    try:
        jobs = list(watch_jobs(shoot, output.resolve(), "png", interval=0.05, overwrite=True, stop=stop))
    finally:
        timer.cancel()
    assert sorted(job.source.as_posix() for job in jobs) == ["shoot/a.jpg", "shoot/day1/b.png"]


def test_results_named_as_beside_their_photo_are_marked_when_found_or_globbed(shoot: Path, tmp_path: Path) -> None:
    # photo.cutout.png beside photo.jpg is skipped if cutout made it, when a folder walk or a glob brings it in;
    # named alone it is cut out, and so is a folder of cutouts under their own names (onto a background, say)
    (shoot / "day1" / "b.cutout.png").write_bytes(b"an earlier result")
    (shoot / "day1" / "clip.mov").write_bytes(b"a clip")
    (shoot / "day1" / "notes.txt").write_text("neither")
    plan = plan_jobs([shoot / "day1"], tmp_path / "out", "png", overwrite=True)
    assert [p.as_posix() for p in plan.videos] == ["shoot/day1/clip.mov"]  # left out, and told
    assert [(job.source.name, job.skip_if_ours) for job in plan.jobs] == [("b.cutout.png", True), ("b.png", False)]
    globbed = plan_jobs([shoot / "a.jpg", shoot / "day1" / "b.cutout.png"], tmp_path / "out", "png", overwrite=True)
    assert [job.skip_if_ours for job in globbed.jobs] == [False, True]
    alone = plan_jobs([shoot / "day1" / "b.cutout.png"], tmp_path / "out", "png", overwrite=True)
    assert [job.skip_if_ours for job in alone.jobs] == [False]


def test_images_that_differ_only_by_extension_keep_it_in_their_output_names(shoot: Path, tmp_path: Path) -> None:
    # a.jpg and a.png both gave out/a.png: the whole batch was refused
    Image.open(shoot / "a.jpg").save(shoot / "a.png")
    with pytest.warns(UserWarning, match="2 files share a name with another but for their extension"):
        plan = plan_jobs([shoot], tmp_path / "out", "png")
    assert [job.target.relative_to(tmp_path).as_posix() for job in plan.jobs if job.target] == [
        "out/a.jpg.png",
        "out/a.png.png",
        "out/day1/b.png",
    ]
    with pytest.warns(UserWarning, match="share a name"):
        beside = plan_jobs([shoot / "a.jpg", shoot / "a.png"], None, "png")
    assert [job.target.name for job in beside.jobs if job.target] == ["a.jpg.cutout.png", "a.png.cutout.png"]
    shutil.copy(shoot / "a.jpg", tmp_path / "a.jpg")  # the same name in two folders: no extension tells them apart
    (tmp_path / "day1").mkdir()
    shutil.copy(shoot / "a.jpg", tmp_path / "day1" / "a.jpg")
    with pytest.raises(UsageError, match="would both be written to"):  # a folder's image and a file: still refused
        plan_jobs([shoot, tmp_path / "day1" / "a.jpg"], tmp_path / "out", "png")


def test_a_glob_over_folders_whose_names_repeat_mirrors_them(shoot: Path, tmp_path: Path) -> None:
    # `cutout image 'shoots/**/*.jpg' -o cutouts/` with IMG_0001.jpg in two day folders (a camera restarts its
    # numbers on each card) was refused: "would both be written to cutouts/IMG_0001.png"
    for day in ("day1", "day2"):
        (shoot / day).mkdir(exist_ok=True)
        shutil.copy(EXAMPLE, shoot / day / "IMG_0001.jpg")
    shutil.copy(EXAMPLE, shoot / "day2" / "IMG_0002.jpg")
    with pytest.warns(UserWarning, match=r"1 name\(s\) repeat in different folders \(e.g. IMG_0001.jpg\)"):
        plan = plan_jobs(expand(["shoot/**/IMG_*.jpg"]), Path("cutouts"), "png")
    assert [job.target.as_posix() for job in plan.jobs if job.target] == [
        "cutouts/day1/IMG_0001.png",
        "cutouts/day2/IMG_0001.png",
        "cutouts/day2/IMG_0002.png",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # names that do not repeat stay flat, as before
        flat = plan_jobs([shoot / "a.jpg", shoot / "day2" / "IMG_0002.jpg"], Path("cutouts"), "png")
    assert [job.target.as_posix() for job in flat.jobs if job.target] == ["cutouts/a.png", "cutouts/IMG_0002.png"]


def test_watch_tells_apart_images_that_differ_only_by_extension(shoot: Path, tmp_path: Path) -> None:
    # a.png dropped in after a.jpg was taken silently, for out/a.png (a.jpg's cutout) existed
    stop, jobs = threading.Event(), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        watcher = threading.Thread(
            target=lambda: jobs.extend(watch_jobs(shoot, tmp_path / "out", "png", interval=0.02, stop=stop))
        )
        watcher.start()
        try:
            _wait(lambda: len(jobs) == 2)
            Image.open(shoot / "a.jpg").save(shoot / "a.png")
            _wait(lambda: len(jobs) == 3)
        finally:
            stop.set()
            watcher.join()
    targets = [job.target.relative_to(tmp_path).as_posix() for job in jobs if job.target]
    assert targets == ["out/a.png", "out/day1/b.png", "out/a.png.png"]
    told = f"{shoot / 'a.png'} shares a name with another image but for its extension; its cutout is "
    assert [str(w.message) for w in caught] == [told + str(tmp_path / "out" / "a.png.png")]


def _wait(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_watch_says_when_its_folder_goes_away_and_comes_back(shoot: Path) -> None:
    stop, jobs = threading.Event(), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        watcher = threading.Thread(
            target=lambda: jobs.extend(watch_jobs(shoot, Path("out"), "png", interval=0.02, stop=stop))
        )
        watcher.start()
        try:
            time.sleep(0.3)
            shutil.move(shoot, "moved")  # an unmounted share, a folder deleted by mistake
            time.sleep(0.3)
            shutil.move("moved", shoot)
            shutil.copy(EXAMPLE, shoot / "new.jpg")
            deadline = time.monotonic() + 10
            while len(jobs) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            stop.set()
            watcher.join(10)
    said = [str(w.message) for w in caught]
    assert said == [
        "shoot is gone (deleted, moved or unmounted); waiting for it to come back (Ctrl-C stops)",
        "shoot is back; watching it again",
    ]
    assert sorted(job.source.name for job in jobs) == ["a.jpg", "b.png", "new.jpg"]  # and it goes on working


@pytest.mark.parametrize("overwrite", [True, False])
def test_watch_takes_a_file_replaced_under_the_same_name_again(shoot: Path, overwrite: bool) -> None:
    stop, jobs = threading.Event(), []
    (shoot / "day1" / "b.png").unlink()
    out = Path("out")
    watcher = threading.Thread(
        target=lambda: jobs.extend(watch_jobs(shoot, out, "png", interval=0.02, overwrite=overwrite, stop=stop))
    )
    watcher.start()
    try:
        deadline = time.monotonic() + 10
        while not jobs and time.monotonic() < deadline:
            time.sleep(0.02)
        out.mkdir()
        (out / "a.png").write_bytes(b"the result of the first version")
        time.sleep(0.2)  # the same file, unchanged: not taken again
        assert len(jobs) == 1
        os.utime(shoot / "a.jpg", ns=(0, 10**18))  # a new version under the same name (a re-export)
        deadline = time.monotonic() + 2  # taken within ~0.05 s when it is
        while len(jobs) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        watcher.join(10)
    # taken again; without --overwrite the existing result is kept, as a re-run of the batch would
    assert [job.source.name for job in jobs] == (["a.jpg", "a.jpg"] if overwrite else ["a.jpg"])


def test_a_folder_run_reads_every_common_image_format_pillow_opens(tmp_path: Path) -> None:
    # TGA and netpbm files (game assets, scientific tools) were left out of folder runs without a word
    from PIL import Image

    from cutout.io.images import load_image

    photo = Image.open(EXAMPLE).convert("RGB").resize((64, 48))
    written = {"a.ppm": photo, "b.pgm": photo.convert("L"), "c.pbm": photo.convert("1"), "d.tga": photo}
    written |= {"e.jp2": photo, "f.qoi": photo, "g.dib": photo, "h.apng": photo, "i.pnm": photo}
    for name, image in written.items():
        image.save(tmp_path / name, format="PPM" if name.endswith(".pnm") else None)
    (tmp_path / "notes.txt").write_text("not an image")
    found = find_images(tmp_path)
    assert [p.name for p in found] == sorted(written)
    for path in found:
        assert load_image(path).size == (64, 48)
