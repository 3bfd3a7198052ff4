"""The Hugging Face Hub transport behind :mod:`cutout.weights`; the only module that imports huggingface_hub.

``HF_ENDPOINT`` is read at call time, so a mirror (or a test server) can be chosen after import.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cutout import __version__, _download
from cutout.errors import HashMismatchError, WeightsError
from cutout.registry import HubSource

DEFAULT_ENDPOINT = "https://huggingface.co"


def _progress_bar_class(progress: _download.Progress | None) -> type[Any]:
    """A tqdm stand-in that forwards huggingface_hub's byte counts to ``progress`` and draws nothing."""

    class Bar:
        def __init__(self, *_: Any, total: int | None = None, initial: int = 0, **__: Any) -> None:
            self.total, self.n = total, initial

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *_: object) -> None:
            return None

        def update(self, count: int | float | None = 1) -> None:
            self.n += int(count or 0)
            if progress is not None:
                progress(self.n, self.total)

    return Bar


def _check_published_sha256(source: HubSource, etag: str | None, expected: dict[str, str]) -> None:
    """An LFS file's ETag is its sha256: refuse a wrong file before downloading it."""
    if etag and "sha256" in expected and re.fullmatch(r"[0-9a-f]{64}", etag) and etag != expected["sha256"]:
        raise HashMismatchError(
            f"the Hub lists sha256 {etag} for {source.filename} at revision {source.revision}, but the "
            f"published sha256 is {expected['sha256']}; it was not downloaded."
        )


def _describe_hub_error(error: Exception) -> str:
    """``HTTP 404 (RevisionNotFoundError)`` for the Hub's HTTP errors, whose first line says little."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status} ({type(error).__name__})"
    return _download.describe_error(error)


def fetch_hub(
    source: HubSource, destination: Path, hashes: tuple[str, ...], progress: _download.Progress | None
) -> None:
    """Download ``source`` at its pinned revision into ``destination``, verifying ``hashes``.

    Raises:
        WeightsError: with a one-line reason (a :class:`HashMismatchError` for wrong content).
    """
    try:
        import huggingface_hub
    except ImportError:
        raise WeightsError("huggingface_hub is not installed (pip install huggingface-hub)") from None
    endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    expected = _download.parse_hashes(hashes)
    destination.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".hub", dir=destination.parent))
    try:
        # One HEAD without retries first: huggingface_hub retries an unreachable host for ~20 s before giving
        # up, too long when other sources are waiting.
        url = huggingface_hub.hf_hub_url(source.repo_id, source.filename, revision=source.revision, endpoint=endpoint)
        metadata = huggingface_hub.get_hf_file_metadata(url, timeout=_download.TIMEOUT_S, endpoint=endpoint)
        _check_published_sha256(source, metadata.etag, expected)
        downloaded = huggingface_hub.hf_hub_download(
            source.repo_id,
            source.filename,
            revision=source.revision,
            local_dir=scratch,
            endpoint=endpoint,
            etag_timeout=_download.TIMEOUT_S,
            library_name="cutout",
            library_version=__version__,
            tqdm_class=_progress_bar_class(progress),
        )
        path = Path(str(downloaded))
        hashers = _download.hash_file(path, expected)
        _download.check_digests(hashers, expected, f"the Hub file {url}", "it was discarded.")
        _download.install(path, destination)
    except WeightsError:
        raise
    except Exception as error:  # huggingface_hub and httpx raise many unrelated types; report one line
        raise WeightsError(_describe_hub_error(error)) from error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
