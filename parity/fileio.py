"""Atomic file output: whole files written at once, and whole directories swapped in at once.

A reader sees the old file or the complete new one, never half of it (`write_text_atomic`,
`write_json_atomic`, `write_bytes_atomic`). A directory of results is built in a hidden
staging directory beside its final place and swapped in when complete (`staging_dir`,
`swap_in`); a run that fails before the swap leaves the previous directory untouched:

    with staging_dir(out_dir, "c1w2_fmnist_dnn") as staging:
        (staging / "report.json").write_text(...)
        swap_in(staging, out_dir / "c1w2_fmnist_dnn")
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

from parity.errors import ParityError


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` (mode 0644) through a temporary file in the same directory and a rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise ParityError(f"cannot write {path}: {error.strerror}; choose another location") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise ParityError(f"cannot write {path}: {error.strerror}; choose another location") from None
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, document: Any, indent: int | None = 2) -> None:
    """Write `document` as JSON (NaN and infinity refused, newline at the end) to `path` atomically."""
    write_text_atomic(path, json.dumps(document, indent=indent, allow_nan=False) + "\n")


def check_entry_name(name: str) -> None:
    """Refuse a name that is not one plain directory entry (no separators, not hidden, not empty)."""
    if not name or name.startswith(".") or "/" in name or os.sep in name:
        raise ValueError(f"{name!r} cannot be used as a directory name")


@contextlib.contextmanager
def staging_dir(parent: Path, name: str) -> Iterator[Path]:
    """A fresh hidden directory in `parent` in which parent/<name> is built; removed on exit unless swapped in."""
    check_entry_name(name)
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.staging-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def swap_in(tmp: Path, final: Path) -> None:
    """Replace the directory `final` by `tmp`; the previous `final` is deleted only once `tmp` is in place."""
    # mkdtemp makes it 0700; take the parent's permissions, never wider than 0755.
    os.chmod(tmp, stat.S_IMODE(final.parent.stat().st_mode) & 0o755)
    aside = None
    if final.exists() or final.is_symlink():
        aside = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old-"))
        os.replace(final, aside / final.name)
    try:
        os.replace(tmp, final)
    except BaseException:
        if aside is not None:
            os.replace(aside / final.name, final)
            aside.rmdir()
        raise
    if aside is not None:
        shutil.rmtree(aside)
