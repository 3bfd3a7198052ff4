"""``cutout weights ...`` through CliRunner and real subprocesses: output, exit codes, and what it imports."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cutout.cli.main import app
from cutout.errors import HashMismatchError, UsageError
from cutout.registry import SPECS, UrlSource, WeightFile, get_spec

ROOT = Path(__file__).resolve().parents[1]
BUILT_IN = ("u2net", "u2netp", "u2net_human_seg", "modnet", "modnet-webcam")
PAYLOAD = b"\x08\x07" + bytes(range(256)) * 64
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CUTOUT_OFFLINE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "CUTOUT_PYPI_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A model "tiny" in the registry whose one file is served by a local HTTP server."""
    holder: dict[str, Any] = {"body": PAYLOAD}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = holder["body"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    watchdog = threading.Timer(60, server.shutdown)
    thread.start()
    watchdog.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/tiny.onnx"
    weight_file = WeightFile("onnx", "tiny.onnx", (f"sha256:{SHA256}",), len(PAYLOAD), (UrlSource(url),))
    spec = dataclasses.replace(get_spec("u2netp"), name="tiny", weights=(weight_file,))
    monkeypatch.setitem(SPECS, "tiny", spec)
    try:
        yield holder
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(5)


def cutout_subprocess(*args: str, home: Path, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CUTOUT_HOME": str(home), "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    flags = ["-X", "importtime"] if importtime else []
    command = [sys.executable, *flags, "-m", "cutout", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_list_shows_every_built_in_model_with_licence(home: Path) -> None:
    result = runner.invoke(app, ["weights", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in BUILT_IN:
        assert f" {name} " in result.stdout
    assert "Apache-2.0 (MODNet)" in result.stdout
    assert "rembg (MIT)" in result.stdout
    assert "4.6 MB" in result.stdout and "176.3 MB" in result.stdout
    assert " yes " not in result.stdout  # nothing is cached in a fresh CUTOUT_HOME


def test_list_narrow_terminal_keeps_names_and_marks_cached_files(home: Path, tiny: dict[str, Any]) -> None:
    runner.invoke(app, ["weights", "pull", "tiny"], catch_exceptions=False)
    result = runner.invoke(app, ["weights", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for name in (*BUILT_IN, "tiny"):
        assert f" {name} " in result.stdout
    [tiny_row] = [line for line in result.stdout.splitlines() if " tiny " in line]
    assert " yes " in tiny_row


def test_pull_downloads_and_prints_the_path(home: Path, tiny: dict[str, Any]) -> None:
    result = runner.invoke(app, ["weights", "pull", "tiny"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    path = home / "models" / "tiny" / "tiny.onnx"
    assert result.stdout.strip() == str(path)
    assert path.read_bytes() == PAYLOAD


def test_pull_of_a_format_that_is_not_released_is_a_usage_error(home: Path) -> None:
    result = runner.invoke(app, ["weights", "pull", "modnet", "--format", "onnx"])
    assert isinstance(result.exception, UsageError)
    assert "released: torch" in str(result.exception)


@pytest.mark.parametrize("command", [["pull"], ["path"], ["verify"], ["import", __file__]])
def test_an_unknown_name_lists_the_models_without_offering_a_path(home: Path, command: list[str]) -> None:
    # the message was --model's, which ends "A path to a trained model's folder or to an .onnx or .pth file also
    # works": cutout weights takes names only
    args = ["weights", command[0], "no-such-model", *command[1:]]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, UsageError)
    message = str(result.exception)
    assert message.startswith("unknown model 'no-such-model'; `cutout weights list` shows the models: u2netp, u2net")
    assert "path" not in message


def test_path_exit_code_says_whether_the_file_is_there(home: Path, tiny: dict[str, Any]) -> None:
    expected = str(home / "models" / "tiny" / "tiny.onnx")
    absent = runner.invoke(app, ["weights", "path", "tiny"])
    assert absent.exit_code == 1
    assert absent.stdout.strip() == expected
    assert "cutout weights pull tiny" in absent.stderr
    runner.invoke(app, ["weights", "pull", "tiny"], catch_exceptions=False)
    present = runner.invoke(app, ["weights", "path", "tiny", "--format", "onnx"])
    assert present.exit_code == 0 and present.stdout.strip() == expected


def test_path_of_built_in_models_defaults_to_their_first_released_file(home: Path) -> None:
    result = runner.invoke(app, ["weights", "path", "modnet"])
    assert result.stdout.strip().endswith("modnet_photographic_portrait_matting.ckpt")
    result = runner.invoke(app, ["weights", "path", "u2net", "-f", "torch"])
    assert result.stdout.strip() == str(home / "models" / "u2net" / "u2net.pth")


def test_import_and_verify(home: Path, tiny: dict[str, Any], tmp_path: Path) -> None:
    good = tmp_path / "good.onnx"
    good.write_bytes(PAYLOAD)
    imported = runner.invoke(app, ["weights", "import", "tiny", str(good)], catch_exceptions=False)
    assert imported.exit_code == 0
    target = home / "models" / "tiny" / "tiny.onnx"
    assert str(target) in imported.stdout and target.read_bytes() == PAYLOAD

    ok = runner.invoke(app, ["weights", "verify", "tiny"], env={"COLUMNS": "200"})
    assert ok.exit_code == 0 and " ok " in ok.stdout
    everything = runner.invoke(app, ["weights", "verify"], env={"COLUMNS": "200"})
    assert everything.exit_code == 0 and "missing" in everything.stdout  # missing is not an error

    target.write_bytes(PAYLOAD[:100])
    corrupt = runner.invoke(app, ["weights", "verify", "tiny"], env={"COLUMNS": "200"})
    assert corrupt.exit_code == 1
    assert "corrupt" in corrupt.stdout and "cutout weights pull" in corrupt.stderr


def test_import_of_a_wrong_file_fails_and_force_accepts_it(home: Path, tiny: dict[str, Any], tmp_path: Path) -> None:
    wrong = tmp_path / "mine.onnx"
    wrong.write_bytes(b"\x08\x07 my own model")
    refused = runner.invoke(app, ["weights", "import", "tiny", str(wrong)])
    assert isinstance(refused.exception, HashMismatchError)
    assert not (home / "models" / "tiny" / "tiny.onnx").exists()
    forced = runner.invoke(app, ["weights", "import", "tiny", str(wrong), "--force"], catch_exceptions=False)
    assert forced.exit_code == 0
    assert (home / "models" / "tiny" / "tiny.onnx").read_bytes() == wrong.read_bytes()


def test_errors_reach_the_user_as_one_line_and_exit_1(home: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "u2netp.onnx"
    wrong.write_bytes(b"not the model")
    result = cutout_subprocess("weights", "import", "u2netp", str(wrong), home=home)
    assert result.returncode == 1
    assert "error:" in result.stderr and "none of the released files" in result.stderr
    assert "Traceback" not in result.stderr


def imported_modules(stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` ("import time: self | cumulative | name")."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.parametrize("args", [("--help",), ("weights", "list")], ids=["help", "weights-list"])
def test_light_commands_import_nothing_heavy(home: Path, args: tuple[str, ...]) -> None:
    result = cutout_subprocess(*args, home=home, importtime=True)
    assert result.returncode == 0, result.stderr[-2000:]
    modules = imported_modules(result.stderr)
    assert "typer" in modules, "importtime output was not parsed"
    heavy = {m for m in modules if m.split(".")[0] in ("torch", "onnxruntime", "huggingface_hub")}
    assert not heavy, sorted(heavy)
    if args == ("weights", "list"):
        assert "u2net_human_seg" in result.stdout


def test_list_shows_models_exported_by_cutout_train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from cutout.registry import get_spec

    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path))
    folder = tmp_path / "models" / "my-products"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"onnx bytes")
    digest = hashlib.sha256(b"onnx bytes").hexdigest()
    weights = [{"format": "onnx", "filename": "model.onnx", "sha256": digest, "size": 10}]
    spec = {"name": "my-products", "architecture": "u2netp", "input_size": 160, "weights": weights}
    (folder / "spec.json").write_text(json.dumps(spec))
    result = CliRunner().invoke(app, ["weights", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "my-products" in result.output and "your own" in result.output
    assert get_spec("my-products").input.size == (160, 160)


@pytest.mark.parametrize(
    ("command", "sentence"),
    [
        ("image", "A folder's tree is mirrored in the output folder; existing outputs are skipped"),
        ("video", "a transparent video chosen by the output's extension: .mov ProRes 4444"),
        ("train", "dim:FOLDER (foregrounds, alphas and backgrounds composited on the fly)"),
    ],
)
def test_help_paragraphs_wrap_at_the_terminal_width_not_where_the_source_breaks(command: str, sentence: str) -> None:
    wide = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250"})
    assert wide.exit_code == 0, wide.output
    assert sentence in wide.output  # one line at 250 columns: the source's line breaks are gone
    narrow = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "60"})
    assert " ".join(sentence.split()) in " ".join(narrow.output.split())
    assert "  cutout " + command in wide.output  # examples keep their own lines


def test_reflow_joins_prose_lines_and_keeps_indented_examples() -> None:
    from cutout.cli import reflow

    text = "First line.\n\nOne paragraph\nwrapped in the source.\n\n  cutout image a.jpg\n  cutout image b.jpg\n"
    examples = "  cutout image a.jpg\n  cutout image b.jpg"
    assert reflow(text) == f"First line.\n\nOne paragraph wrapped in the source.\n\n{examples}"
