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
import errno
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

from parity.errors import ParityError

# What a user can do about an OSError of the place the harness writes to; other OSErrors are not the user's to fix.
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_OUTPUT_FIXES = {
    **dict.fromkeys(_NO_SPACE, "free some space there or choose another output location"),
    **dict.fromkeys((errno.EROFS, errno.EACCES, errno.EPERM), "make it writable or choose another output location"),
    errno.ENOTDIR: "a part of the path is a file, not a directory: choose another output location",
    errno.EISDIR: "it is a directory: give a file path",
}
# Hidden directories inside the user's output directory: `staging_dir`, `swap_in` and the runner's work directories.
HIDDEN_WORK_MARKERS = (".staging-", ".old-", ".work-")


def output_error_message(error: OSError, path: Path | None = None) -> str | None:
    """One line for an OSError of writing `path` (default: the error's file) that the user can fix: for a full disk
    the directory they chose and "no space left on device", else the path; then the fix. None for other errors."""
    fix = _OUTPUT_FIXES.get(error.errno)
    if fix is None:
        return None
    reason = (error.strerror or os.strerror(error.errno)).lower()
    target = path if path is not None else error.filename
    if target is None:
        return f"{reason}; {fix}"
    target = Path(os.fsdecode(target))
    if error.errno not in _NO_SPACE:
        return f"{target}: {reason}; {fix}"
    parts = target.parts[:-1]
    hidden = next((i for i, part in enumerate(parts)
                   if part.startswith(".") and any(marker in part for marker in HIDDEN_WORK_MARKERS)), len(parts))
    return f"{Path(*parts[:hidden]) if hidden else Path('.')}: {reason} (writing {target.name}); {fix}"


def require_writable(path: Path, flag: str, kind: str = "directory") -> None:
    """Refuse (ParityError naming `flag`) an output `path` the command could not write, before any work is done:
    `kind` "directory" (the command writes into `path`) or "file" (it writes `path`). Nothing is created; the
    nearest existing directory on the way must accept a new file."""
    path = Path(path).expanduser()
    if kind == "file" and path.is_dir():
        raise ParityError(f"{flag} {path}: is a directory; give a file path, e.g. {path / 'summary.md'}")
    if kind == "directory" and path.exists() and not path.is_dir():
        raise ParityError(f"{flag} {path}: is a file, not a directory; choose another output directory")
    existing = path if kind == "directory" and path.is_dir() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ParityError(f"{flag} {path}: {existing} is a file, not a directory; choose another output location")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".parity-write-check-"):
            pass
    except OSError as error:
        raise ParityError(f"{flag} {path}: cannot write in {existing} ({(error.strerror or str(error)).lower()}); "
                          "make it writable or choose another output location") from None


def _write_failed(path: Path, error: OSError) -> ParityError:
    if error.errno in _NO_SPACE:
        return ParityError(output_error_message(error, path))
    if error.errno == errno.EEXIST:  # mkdir met a file on the way
        return ParityError(f"cannot write {path}: {_OUTPUT_FIXES[errno.ENOTDIR]}")
    fix = _OUTPUT_FIXES.get(error.errno, "choose another location")
    return ParityError(f"cannot write {path}: {(error.strerror or str(error)).lower()}; {fix}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` (mode 0644) through a temporary file in the same directory and a rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _write_failed(path, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _write_failed(path, error) from None
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
