"""The harness's cache directory: entries checked before use, written atomically, built under a lock.

$PARITY_CACHE_DIR (default ~/.cache/parity) holds three kinds of entries, each checked before use
and rebuilt (with a one-line note) when the check fails:
- downloads, `<id>/<file>` (`parity.datasets.download`): the source's published hash (sha256, or
  md5 where upstream gives only that); where the source publishes none, the sha256 recorded in
  `<file>.sha256` once the download passed the loader's structure check;
- decoded images, `decoded/<key>/` (`parity.datasets.decode`): the key is a content key (the input
  files' sha256, size, colour mode, decoder); the entry's index.json, written last, holds the
  sha256 and size of images.npy, checked before use;
- model facts, `model-facts/<key>.json` (`parity.model_facts`): the key covers the code and the
  versions; a file that does not hold that key's answers in the expected shape is written again.
Files are written through a temporary file and a rename (`parity.fileio`), directories through a
temporary directory and a rename, so a reader never sees half an entry. Two processes sharing the
cache build an entry once: each check-and-build holds an exclusive lock (`entry_lock`:
fcntl.flock on $PARITY_CACHE_DIR/.locks/<name>.lock; the kernel releases it when a process dies,
so a killed run leaves no stale lock).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from parity.errors import ParityError
from parity.fileio import check_entry_name, write_text_atomic

CACHE_DIR_ENV = "PARITY_CACHE_DIR"
LOCKS = ".locks"
SHA256_SUFFIX = ".sha256"
# A cache one may read but not write (a shared, read-only copy): entries are checked without a lock.
READ_ONLY_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


def cache_root() -> Path:
    """The harness's cache directory: $PARITY_CACHE_DIR, default ~/.cache/parity."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "parity").expanduser()


def note(line: str) -> None:
    """A one-line note on stderr (a cache entry rebuilt, a wait for another process)."""
    print(line, file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    """The sha256 (hex) of the file's bytes."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def sha256_record(path: Path) -> Path:
    """Where the sha256 of the cached file `path` is recorded: `path` + `.sha256`."""
    return path.with_name(path.name + SHA256_SUFFIX)


def record_sha256(path: Path) -> None:
    """Record the sha256 of `path` beside it (atomically), for `matches_recorded_sha256`."""
    write_text_atomic(sha256_record(path), f"{sha256_file(path)}  {path.name}\n")


def recorded_sha256(path: Path) -> str | None:
    """The sha256 recorded for `path`; None when there is no (readable, well-formed) record."""
    try:
        digest = sha256_record(path).read_text(encoding="ascii").split()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return None
    return digest if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) else None


@contextlib.contextmanager
def entry_lock(name: str, notify: Callable[[str], None] = note) -> Iterator[None]:
    """Hold the cache-wide exclusive lock on entry `name` (one plain file name, e.g. "decoded-<key>").

    Waits for another process holding it, after a one-line note; in a cache directory that cannot
    be written, goes on without a lock (nothing can be built there, and readers need none).
    """
    check_entry_name(name)
    path = cache_root() / LOCKS / f"{name}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        if error.errno in READ_ONLY_ERRNOS:
            yield
            return
        raise ParityError(f"cannot create the cache lock {path}: {error.strerror}; "
                          f"set {CACHE_DIR_ENV} to a writable directory") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            notify(f"parity: waiting for another parity process to finish the cache entry {name} (lock {path})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
