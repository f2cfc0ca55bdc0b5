"""Downloads of course data into the cache directory with pooch (checksums where known)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pooch

from parity.datasets.sources import Source
from parity.errors import DataError

OFFLINE_ENV = "PARITY_OFFLINE"
LOCAL_HINT = "pass --data-dir DIR (a directory holding those files) or set PARITY_DATA_DIR"


def offline() -> bool:
    """Whether downloads are disabled (PARITY_OFFLINE set to anything but empty or 0)."""
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def missing_message(source: Source, looked: list[str], reason: str) -> str:
    """The one-line error for data that is neither local nor downloadable."""
    return (
        f"{source.dataset_id}: data files {', '.join(source.files)} not found "
        f"(looked in {', '.join(looked)}); {reason}; {LOCAL_HINT}"
    )


def fetch(
    source: Source,
    cache_dir: Path,
    looked: list[str],
    validate: Callable[[Path], None] | None = None,
) -> dict[str, Path]:
    """Paths of all files of `source` in `cache_dir`, downloading the missing ones.

    `looked` lists the places already searched, for the error message. `validate` checks
    a freshly downloaded file and raises DataError if it is not what we expect.
    """
    looked = [*looked, str(cache_dir)]
    if offline():
        cached = {name: cache_dir / name for name in source.files}
        if all(
            path.is_file() and _hash_matches(path, source.hashes[name])
            for name, path in cached.items()
        ):
            return cached
        urls = ", ".join(source.mirrors)
        raise DataError(
            missing_message(source, looked, f"download from {urls} not attempted: {OFFLINE_ENV}=1")
        )
    return {name: _retrieve(source, name, cache_dir, looked, validate) for name in source.files}


def _retrieve(
    source: Source,
    name: str,
    cache_dir: Path,
    looked: list[str],
    validate: Callable[[Path], None] | None,
) -> Path:
    failures = []
    for url in source.urls(name):
        fresh = not (cache_dir / name).is_file()
        try:
            path = Path(
                pooch.retrieve(
                    url, known_hash=source.hashes[name], fname=name, path=cache_dir, progressbar=True
                )
            )
        except (OSError, ValueError) as error:  # network errors are OSErrors; checksum mismatch is ValueError
            failures.append(f"{url}: {_one_line(error)}")
            continue
        if validate is None or not fresh:
            return path
        try:
            validate(path)
        except DataError as error:
            path.unlink(missing_ok=True)
            failures.append(f"{url}: downloaded file rejected: {_one_line(error)}")
            continue
        return path
    raise DataError(missing_message(source, looked, "download failed: " + "; ".join(failures)))


def _hash_matches(path: Path, known_hash: str | None) -> bool:
    if known_hash is None:
        return True
    algorithm, _, digest = known_hash.rpartition(":")
    return pooch.file_hash(str(path), alg=algorithm or "sha256") == digest.lower()


def _one_line(error: Exception, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}"
