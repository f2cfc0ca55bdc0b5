"""Taking turns: one measurement in two or three framework workers at once, run window by window, one at a time.

`parity bench` hands the same measurement to every framework's worker together (Keras and
Lightning; with `--frameworks`, Keras on torch too). Each worker stops at every window boundary
and waits; the harness lets one of them run its next window while the others wait, then the
next, the order drawn per window by the caller. Load that drifts on a shared machine then
weighs on all frameworks alike, and each Keras window has a Lightning window next to it in
time: the windows at one position form a pair (with three workers, each two of them do).

Protocol, one text line per message over a Unix socket in the work directory: the worker
connects and says `hello NAME`, then `ready K` at each stop, K = 0 (set up, before the
warm-up), 1 (after the warm-up), ..., segments (after the last window); the harness answers
`go` when it is that worker's turn, and after the last stop lets all go on to finish. A
closed connection ends the measurement on either side, so a worker that fails releases the
others. The harness side is `Turns`; the worker side is `turn`.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from parity.errors import ParityError

SOCKET_NAME = "turns.sock"
POLL_S = 0.2  # how often the harness, while it waits for a worker, checks that the worker's job still runs
GO = "go"
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes on Linux
MAX_WORKERS = 3  # the frameworks parity.jobs knows

Job = dict[str, Any]


class TurnsBroken(Exception):
    """A worker left the measurement (its job ended, or its connection closed) before its last stop."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"the {name} worker left the measurement: {reason}")
        self.name = name


class _Link:
    """One connection, read line by line; reads give up after POLL_S so the caller can look around."""

    def __init__(self, sock: socket.socket, name: str = "?") -> None:
        self.sock = sock
        self.name = name
        self._buffer = b""
        sock.settimeout(POLL_S)

    def send(self, line: str) -> None:
        try:
            self.sock.sendall(f"{line}\n".encode())
        except OSError as error:
            raise TurnsBroken(self.name, f"cannot write to it ({error})") from None

    def read(self, alive: Callable[[], bool]) -> str:
        """The next line; TurnsBroken if the connection closes or `alive()` turns False while waiting."""
        while b"\n" not in self._buffer:
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                if not alive():
                    raise TurnsBroken(self.name, "its job ended") from None
                continue
            except OSError as error:
                raise TurnsBroken(self.name, f"its connection failed ({error})") from None
            if not chunk:
                raise TurnsBroken(self.name, "its connection closed")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def expect(self, line: str, alive: Callable[[], bool]) -> None:
        got = self.read(alive)
        if got != line:
            raise TurnsBroken(self.name, f"it said {got!r} where {line!r} was due")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Turns:
    """The harness side: a listening socket in `workdir`, and `run_together` to run one measurement in two or
    three workers.

    Its threads (one per worker) submit the jobs, so a worker whose session starts with its first job is started
    by one of them, and the kernel stops a worker when the thread that started it ends (parity.jobs
    sets PR_SET_PDEATHSIG, which follows the thread). The threads live until `close`: open Turns
    before the worker pool, so that the pool closes its workers first.
    """

    def __init__(self, workdir: Path) -> None:
        self.address = str(Path(workdir) / SOCKET_NAME)
        if len(self.address.encode()) > _MAX_SOCKET_PATH:
            raise ParityError(f"the work directory {workdir} is too long a path for a Unix socket; "
                              "set TMPDIR to a shorter directory")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.address)
        self._server.listen(MAX_WORKERS)
        self._server.settimeout(POLL_S)
        self._executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="parity-turns")

    def close(self) -> None:
        self._executor.shutdown()
        self._server.close()
        Path(self.address).unlink(missing_ok=True)

    def __enter__(self) -> Turns:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run_together(self, run: Callable[[str, Job], Mapping[str, Any]], names: Sequence[str], job: Job,
                     orders: Sequence[Sequence[str]]) -> dict[str, Mapping[str, Any]]:
        """Run `job` in the workers `names` (two or three) at once and return their answers, letting them take turns.

        `run(name, job)` runs a job in the worker `name` and blocks until it answers. Segment s (0: the
        warm-up, then each window) is run by the workers one after another in the order `orders[s]`
        (each order names every worker once). The job gains "turns" (this socket's address); the
        worker's stop function is `turn`.
        """
        if len(set(names)) != len(names) or not 2 <= len(names) <= MAX_WORKERS:
            raise ValueError(f"two to {MAX_WORKERS} distinct workers take turns, not {list(names)}")
        if any(sorted(order) != sorted(names) for order in orders):
            raise ValueError(f"each segment's order must name every worker of {list(names)} once")
        links: dict[str, _Link] = {}
        futures = {name: self._executor.submit(run, name, {**job, "turns": self.address}) for name in names}
        try:
            links.update(self._accept(futures))
            for name in names:
                links[name].expect("ready 0", _running(futures[name]))
            for segment, order in enumerate(orders, start=1):
                for name in order:
                    links[name].send(GO)
                    links[name].expect(f"ready {segment}", _running(futures[name]))
            for link in links.values():
                link.send(GO)
        except TurnsBroken as broken:
            self._release(futures, links)
            failure = futures[broken.name].exception() if broken.name in futures else None
            raise (failure or broken) from None
        except BaseException:
            self._release(futures, links)
            raise
        finally:
            _close_all(links)
        return {name: future.result() for name, future in futures.items()}

    def _release(self, futures: Mapping[str, Future], links: Mapping[str, _Link]) -> None:
        """End a measurement that cannot go on: every worker's next stop fails, so its job ends; wait for all.

        A worker not accepted yet is accepted and let go at once (it would otherwise wait for a turn forever).
        """
        _close_all(links)
        while not all(future.done() for future in futures.values()):
            with contextlib.suppress(TimeoutError):
                sock, _ = self._server.accept()
                sock.close()
        wait(futures.values())

    def _accept(self, futures: Mapping[str, Future]) -> dict[str, _Link]:
        """Every worker's connection, by the name each says hello with."""
        links: dict[str, _Link] = {}
        try:
            while len(links) < len(futures):
                for name, future in futures.items():
                    if name not in links and future.done():
                        raise TurnsBroken(name, "its job ended before it connected")
                try:
                    sock, _ = self._server.accept()
                except TimeoutError:
                    continue
                link = _Link(sock)
                hello = link.read(lambda: not all(future.done() for future in futures.values()))
                name = hello.removeprefix("hello ")
                if not hello.startswith("hello ") or name not in futures or name in links:
                    link.close()
                    raise TurnsBroken(name, f"unexpected greeting {hello!r}")
                link.name = name
                links[name] = link
        except BaseException:
            _close_all(links)
            raise
        return links


def _running(future: Future) -> Callable[[], bool]:
    return lambda: not future.done()


def _close_all(links: Mapping[str, _Link]) -> None:
    for link in links.values():
        link.close()


@contextlib.contextmanager
def turn(address: str | None, name: str) -> Iterator[Callable[[], None]]:
    """The worker side: a stop function to call at every stop (before the warm-up, after it, after each window).

    It says `ready K` and returns when the harness says go. Without an address (a worker run by
    hand, a job without turns) it returns at once.
    """
    if address is None:
        yield lambda: None
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(address)
    link = _Link(sock, name)
    sock.settimeout(None)  # a worker waits for its turn as long as the other workers' windows take
    stops = iter(range(1 << 30))

    def stop() -> None:
        try:
            link.send(f"ready {next(stops)}")
            line = link.read(lambda: True)
        except TurnsBroken:
            raise RuntimeError("the bench harness ended this measurement (another framework's worker "
                               "failed, or the bench was interrupted)") from None
        if line != GO:
            raise RuntimeError(f"the bench harness said {line!r} where 'go' was due")

    try:
        link.send(f"hello {name}")
        yield stop
    finally:
        link.close()
