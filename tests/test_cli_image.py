"""`cutout image` as a user runs it: a real subprocess, the README's command, stdin to stdout."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cutout

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "images" / "astronaut.jpg"


def _cutout(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CUTOUT_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "cutout", *args], input=stdin, capture_output=True, env=env, cwd=cwd, timeout=120
    )


def test_readme_command_writes_the_same_pixels_as_the_api(u2netp_onnx: Path, tmp_path: Path) -> None:
    result = _cutout("image", str(EXAMPLE), str(tmp_path / "astronaut.png"))
    assert result.returncode == 0, result.stderr.decode()
    written = np.asarray(Image.open(tmp_path / "astronaut.png"))
    expected = cutout.remove(np.asarray(Image.open(EXAMPLE).convert("RGB")), model="u2netp", backend="onnx")
    np.testing.assert_array_equal(written, expected)
    assert [p.name for p in tmp_path.iterdir()] == ["astronaut.png"]


def test_stdin_to_stdout(u2netp_onnx: Path) -> None:
    result = _cutout("image", stdin=EXAMPLE.read_bytes())
    assert result.returncode == 0, result.stderr.decode()
    image = Image.open(io.BytesIO(result.stdout))
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (512, 512)


def test_not_an_image_is_a_clear_error(u2netp_onnx: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("shopping list")
    result = _cutout("image", str(bad), str(tmp_path / "out.png"))
    assert result.returncode == 1
    assert "not an image" in result.stderr.decode()
    assert not (tmp_path / "out.png").exists()
