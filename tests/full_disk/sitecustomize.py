"""A full disk for one `parity` process, without hooks in the product: put this folder on PYTHONPATH.

With PARITY_TEST_FULL_DISK=DIR set, files opened for writing under DIR accept
PARITY_TEST_FULL_DISK_BYTES bytes in all (default 0), then every write raises
OSError(ENOSPC), as a full file system does; PARITY_TEST_FULL_DISK_NAMES (a glob, default *)
limits this to files of matching names, e.g. "report.*": the disk fills as the report is
written. Only the process that reads the variables is affected: they are removed from its
environment, so the processes it starts write normally. Inert (nothing patched) without the
variable. Test-side only (tests/test_fault_matrix.py).
"""

from __future__ import annotations

import builtins
import errno
import fnmatch
import io
import os

_DIR = os.environ.pop("PARITY_TEST_FULL_DISK", None)
_budget = [int(os.environ.pop("PARITY_TEST_FULL_DISK_BYTES", "0"))]
_NAMES = os.environ.pop("PARITY_TEST_FULL_DISK_NAMES", "*")


class _FullDiskFile:
    """A file object whose writes draw on the shared byte budget, then fail with ENOSPC."""

    def __init__(self, handle, path: str) -> None:
        self._handle, self._path = handle, path

    def write(self, data):
        size = len(data)
        if size > _budget[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._path)
        _budget[0] -= size
        return self._handle.write(data)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._handle.close()

    def __iter__(self):
        return iter(self._handle)

    def __getattr__(self, name):
        return getattr(self._handle, name)


def _target(file) -> str | None:
    """The path `file` (a path or a file descriptor) opens."""
    if isinstance(file, int):
        try:
            return os.readlink(f"/proc/self/fd/{file}")
        except OSError:
            return None
    return os.path.realpath(os.fspath(file)) if isinstance(file, (str, bytes, os.PathLike)) else None


def _open(file, mode="r", *args, **kwargs):
    handle = _real_open(file, mode, *args, **kwargs)
    path = _target(file)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    writing = any(flag in mode for flag in "wax+")
    if (writing and path is not None and path.startswith(_DIR + os.sep)
            and fnmatch.fnmatch(os.path.basename(path), _NAMES)):
        return _FullDiskFile(handle, path)
    return handle


if _DIR:
    _DIR = os.path.realpath(_DIR)
    _real_open = io.open
    builtins.open = io.open = _open
