"""Downloads of course data into the cache directory with pooch, every cached file checked before use.

A cached file is used only when it passes its check: the source's published hash (sha256, or md5
where upstream gives only that); where the source publishes none (the course zips and CSVs, see
sources.py), the sha256 recorded beside it (`<file>.sha256`, `parity.cache`) when the download
passed the loader's structure check (`validate`). A file cached before that record existed is
adopted once it passes the structure check. A cached file that fails is downloaded again, after a
one-line note (offline: a DataError saying so). pooch writes each download to a temporary file and
renames it into place; the check and the download hold the cache lock of that file, so two runs
sharing the cache download it once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pooch

from parity import cache
from parity.datasets.sources import Source
from parity.errors import DataError

MISSING = "is missing"
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
    """Paths of all files of `source` in `cache_dir`, each checked, downloading the missing or corrupt ones.

    `looked` lists the places already searched, for the error message. `validate` checks the
    structure of a fresh download (and of a cached file that has neither a published hash nor a
    sha256 record) and raises DataError if it is not what we expect.
    """
    looked = [*looked, str(cache_dir)]
    if offline():
        urls = ", ".join(source.mirrors)
        cached = {}
        for name in source.files:
            path = cache_dir / name
            with cache.entry_lock(_lock_name(source, name)):
                problem = cached_problem(source, name, path, validate)
            if problem is not None:
                reason = "" if problem == MISSING else f"the cached {path} {problem}; "
                raise DataError(missing_message(
                    source, looked, f"{reason}download from {urls} not attempted: {OFFLINE_ENV}=1"))
            cached[name] = path
        return cached
    return {name: _retrieve(source, name, cache_dir, looked, validate) for name in source.files}


def cached_problem(source: Source, name: str, path: Path, validate: Callable[[Path], None] | None) -> str | None:
    """None when the cached file `path` (file `name` of `source`) passes its check, else what is wrong with it."""
    if not path.is_file():
        return MISSING
    known_hash = source.hashes[name]
    if known_hash is not None:
        algorithm = known_hash.rpartition(":")[0] or "sha256"
        if _hash_matches(path, known_hash):
            return None
        return f"does not match its published {algorithm} (corrupt or truncated)"
    recorded = cache.recorded_sha256(path)
    if recorded is not None:
        if cache.sha256_file(path) == recorded:
            return None
        return "does not match the sha256 recorded when it was downloaded (corrupt or truncated)"
    rejected = _rejection(path, validate)  # cached before sha256 records existed: adopted when its structure passes
    if rejected is not None:
        return f"was rejected ({rejected})"
    cache.record_sha256(path)
    return None


def _rejection(path: Path, validate: Callable[[Path], None] | None) -> str | None:
    """Why `validate` rejects the file (one line); None when it passes or there is no `validate`."""
    if validate is None:
        return None
    try:
        validate(path)
    except DataError as error:
        return _one_line(error)
    return None


def _retrieve(
    source: Source,
    name: str,
    cache_dir: Path,
    looked: list[str],
    validate: Callable[[Path], None] | None,
) -> Path:
    path = cache_dir / name
    with cache.entry_lock(_lock_name(source, name)):
        problem = cached_problem(source, name, path, validate)
        if problem is None:
            return path
        if problem != MISSING:
            cache.note(f"parity: the cached {path} {problem}; downloading it again")
            path.unlink()
        cache.sha256_record(path).unlink(missing_ok=True)
        failures = []
        for url in source.urls(name):
            try:
                pooch.retrieve(url, known_hash=source.hashes[name], fname=name, path=cache_dir, progressbar=True)
            except (OSError, ValueError) as error:  # network errors are OSErrors; checksum mismatch is ValueError
                failures.append(f"{url}: {_one_line(error)}")
                continue
            rejected = _rejection(path, validate)
            if rejected is not None:
                path.unlink(missing_ok=True)
                failures.append(f"{url}: downloaded file rejected: {rejected}")
                continue
            if source.hashes[name] is None:
                cache.record_sha256(path)
            return path
    raise DataError(missing_message(source, looked, "download failed: " + "; ".join(failures)))


def _lock_name(source: Source, name: str) -> str:
    return f"download-{source.dataset_id}-{name}"


def _hash_matches(path: Path, known_hash: str) -> bool:
    algorithm, _, digest = known_hash.rpartition(":")
    return pooch.file_hash(str(path), alg=algorithm or "sha256") == digest.lower()


def _one_line(error: Exception, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}"
