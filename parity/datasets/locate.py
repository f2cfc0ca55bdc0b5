"""Finds a data set's files: --data-dir, else PARITY_DATA_DIR/<id>, else the download cache."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from parity.cache import cache_root
from parity.datasets import download
from parity.datasets.sources import Source
from parity.errors import DataError

DATA_DIR_ENV = "PARITY_DATA_DIR"


def read_data_file(path: Path, what: str) -> bytes:
    """The bytes of a data file; one that cannot be read is a DataError naming it as `what` ("corpus", ...)."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read the {what} ({error.strerror or error})") from None


def cache_dir(dataset_id: str) -> Path:
    """The download cache of one data set: $PARITY_CACHE_DIR/<id>, default ~/.cache/parity/<id>."""
    return cache_root() / dataset_id


def locate(
    source: Source,
    data_dir: str | os.PathLike | None = None,
    validate: Callable[[Path], None] | None = None,
) -> tuple[dict[str, Path], str]:
    """The paths of the files of `source` (by upstream name) and the directory they are in.

    Local files (`data_dir`, or the data set's folder under PARITY_DATA_DIR) are used as they
    are, so users can bring their own data in the same format; only the download cache is
    checked before use (`parity.datasets.download.fetch`).
    """
    local, looked = local_directory(source, data_dir)
    if local is not None:
        return _local_files(source, local), str(local)
    cache = cache_dir(source.dataset_id)
    return download.fetch(source, cache, looked, validate), str(cache)


def local_directory(source: Source, data_dir: str | os.PathLike | None = None) -> tuple[Path | None, list[str]]:
    """`data_dir`, else the data set's existing folder under PARITY_DATA_DIR, else None; plus the places looked in."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), []
    looked = []
    root = os.environ.get(DATA_DIR_ENV)
    if root:
        for folder in source.folders:
            directory = Path(root).expanduser() / folder
            if directory.is_dir():
                return directory, looked
            looked.append(f"{directory} (from {DATA_DIR_ENV})")
    return None, looked


def _local_files(source: Source, directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        problem = "is a file, not a directory" if directory.exists() else "does not exist"
        raise DataError(
            f"{source.dataset_id}: data directory {directory} {problem}; pass the directory holding "
            f"{', '.join(source.files)}"
        )
    found, missing = {}, []
    for name in source.files:
        candidates = [directory / name]
        if name.endswith(".gz"):
            candidates.append(directory / name[: -len(".gz")])  # an uncompressed copy will do
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        raise DataError(
            f"{source.dataset_id}: {directory} lacks {', '.join(missing)} "
            f"(expected {', '.join(source.files)}; .gz files may also be uncompressed without the .gz); "
            f"{download.LOCAL_HINT}"
        )
    return found
