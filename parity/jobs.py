"""Framework worker processes, and the files they exchange with the harness.

TensorFlow and the CUDA build of torch crash (SIGSEGV) in one process when TensorFlow loads
before torch._dynamo, so each framework runs in its own process (`python -m tf_models.worker`,
`python -m torch_models.worker`; the job loop inside is parity.worker_runtime). A job is a JSON
file; arrays travel as .npz/.npy files in a work directory (the training data as a data
directory of memory-mapped .npy files, `save_data`); the worker answers with a JSON
result file. Both sides use the path helpers below, so they agree on every file name.
A `train` job also writes each seed's result as soon as that seed has finished
(`seed_result_path`), so that a run stopped later (a worker killed, Ctrl-C) keeps it
(`finished_seeds`); every other job kind has its one answer.

A worker serves many jobs: `worker_session` starts one process of a framework at its first
job and feeds it jobs one after another, so TensorFlow and torch are imported once per
session, not once per job; `worker_pool` holds one session per framework for a flow that runs
jobs in both; `run_worker` runs one job in a session of its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from parity.datasets import store
from parity.errors import WorkerError
from parity.fileio import write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from parity.datasets import DataSplit

ALL_FRAMEWORKS = ("keras", "lightning", "keras-torch")  # every framework the harness knows, in display order
# The two a command compares without --frameworks (today's reports keep their shape), and the only two of the
# commands that have no --frameworks (predict, inside, generate, lrsweep, probes).
FRAMEWORKS = ALL_FRAMEWORKS[:2]
# The frameworks that run the tf_models builders: Keras 3 on TensorFlow, and the same code on Keras' torch backend.
KERAS_FRAMEWORKS = ("keras", "keras-torch")
FRAMEWORK_NAMES = {"keras": "Keras", "lightning": "Lightning", "keras-torch": "Keras-torch"}  # in prose and tables
WORKER_MODULES = {"keras": "tf_models.worker", "lightning": "torch_models.worker", "keras-torch": "keras_torch.worker"}
# torch.use_deterministic_algorithms(True) raises on a GPU unless cuBLAS has a fixed workspace, and cuBLAS reads
# this variable when CUDA starts, so it is in the worker's environment from its start (a torch worker serves jobs
# with and without deterministic algorithms; the setting costs nothing when they are off).
CUBLAS_WORKSPACE_CONFIG = ":4096:8"
# Keras reads KERAS_BACKEND once, at its first import, so the keras-torch worker has it from its start.
FRAMEWORK_ENV = {"lightning": {"CUBLAS_WORKSPACE_CONFIG": CUBLAS_WORKSPACE_CONFIG},
                 "keras-torch": {"CUBLAS_WORKSPACE_CONFIG": CUBLAS_WORKSPACE_CONFIG, "KERAS_BACKEND": "torch"}}
# A pool keeps both workers alive at once; TensorFlow would take nearly all GPU memory at its first GPU op and
# leave torch none, so in a pool it allocates as it grows.
POOL_ENV = {"keras": {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}}
DONE, FAILED = "done", "failed"  # a worker's answers to a job on its control pipe (parity.worker_runtime)
CLOSE_GRACE_S = 10.0  # how long a worker may take to exit after the end of its input before it is terminated
STOP_GRACE_S = 5.0  # how long a terminated worker may take to exit before it is killed
_POLL_S = 0.5
_DRAIN_S = 0.05  # output written just before the worker's answer may reach us a moment after it
_PR_SET_PDEATHSIG = 1  # prctl(2) option: the signal a child gets when its parent dies


def in_display_order(names: Iterable[str]) -> tuple[str, ...]:
    """The frameworks among `names` (any container or mapping of framework names), in display order."""
    present = set(names)
    return tuple(name for name in ALL_FRAMEWORKS if name in present)


def parse_frameworks(text: str) -> tuple[str, ...]:
    """The frameworks of a `--frameworks a,b[,c]` value, in display order (ALL_FRAMEWORKS); ValueError names the
    problem."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL_FRAMEWORKS]
    if unknown:
        raise ValueError(f"unknown framework {unknown[0]!r}; choose from {', '.join(ALL_FRAMEWORKS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{text!r} names a framework twice")
    if len(names) < 2:
        raise ValueError(f"{text!r}: a comparison needs at least two frameworks")
    if not set(names) & set(KERAS_FRAMEWORKS):
        raise ValueError(f"{text!r}: name keras or keras-torch too (the initial weights come from a Keras model)")
    return in_display_order(names)


def weights_source(frameworks: Sequence[str]) -> str:
    """The framework whose Keras model gives the others their weights (aligned initial weights, the forward check's
    random weights): Keras on TensorFlow when it runs, else Keras on torch."""
    return next(name for name in KERAS_FRAMEWORKS if name in frameworks)


def run_order(frameworks: Sequence[str]) -> tuple[str, ...]:
    """The order in which jobs go to the frameworks: the weights source first, as the others load its export."""
    source = weights_source(frameworks)
    return (source, *(name for name in frameworks if name != source))


def framework_pairs(frameworks: Sequence[str]) -> list[tuple[str, str]]:
    """Every pair (a, b) of `frameworks`, a before b in display order; a pair's ratio is b / a and its difference
    b - a (as the two-framework report's throughput_ratio is lightning / keras)."""
    ordered = in_display_order(frameworks)
    return [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:]]


def pair_key(pair: tuple[str, str]) -> str:
    """A pair's key in reports: "b/a" ("lightning/keras", "keras-torch/keras", "keras-torch/lightning")."""
    return f"{pair[1]}/{pair[0]}"


def pair_of(key: str) -> tuple[str, str]:
    """The pair (a, b) of a pair key "b/a" (the inverse of `pair_key`)."""
    b, a = key.split("/")
    return a, b


@contextlib.contextmanager
def work_directory(prefix: str, parent: Path | None = None) -> Iterator[Path]:
    """A scratch directory for job files: removed on success; on failure its logs stay (the error names them)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    except BaseException:
        for arrays in (*path.glob("*.npz"), *path.glob("*.npy")):
            arrays.unlink()  # large and reproducible; the logs and job files are what explain a failure
        for manifest in path.glob(f"*/{store.MANIFEST}"):
            shutil.rmtree(manifest.parent, ignore_errors=True)  # data directories (save_data), as large
        raise
    shutil.rmtree(path, ignore_errors=True)


def data_path(workdir: Path) -> Path:
    """The data directory both workers read (manifest.json + memory-mapped .npy files, parity.datasets.store)."""
    return Path(workdir) / "data"


def probe_inputs_path(workdir: Path, model_id: str) -> Path:
    """The inputs on which both frameworks' initial outputs are compared (the same for every seed)."""
    return Path(workdir) / f"inputs-{model_id}.npy"


def init_weights_path(workdir: Path, tag: str) -> Path:
    """The Keras initial weights of run `tag`, which the torch worker loads."""
    return Path(workdir) / f"keras-init-{tag}.npz"


def outputs_path(workdir: Path, framework: str, tag: str) -> Path:
    return Path(workdir) / f"{framework}-outputs-{tag}.npy"


def run_tag(model_id: str, seed: int) -> str:
    return f"{model_id}-seed{seed}"


def save_data(workdir: Path, split: DataSplit) -> Path:
    """Write the data directory both workers train on (they read the very same bytes); returns its path.

    Arrays that already are whole .npy files (the decoded-image cache) are referenced, not copied.
    """
    return store.save_sources(data_path(workdir), split.train, split.val)


def load_data(path: Path) -> store.Sources:
    """The training and validation sources of a data directory, memory-mapped (`parity.plan.collate` batches them)."""
    return store.load_sources(path)


def seed_result_path(workdir: Path, framework: str, seed: int) -> Path:
    """One finished seed of a `train` job: {"params": N, "run": RECORD}, written when the seed ends."""
    return Path(workdir) / f"{framework}-train-seed{seed}.json"


def read_job(path: str | os.PathLike) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def write_result(path: str | os.PathLike, result: dict[str, Any]) -> None:
    """Write the worker's answer atomically (a reader never sees half a file).

    NaN and infinities are kept (as JSON's NaN/Infinity extension, which json.loads reads): a run whose loss
    went non-finite reports its history as it was; the report turns them into null.
    """
    write_text_atomic(Path(path), json.dumps(result, allow_nan=True) + "\n")


def finished_seeds(workdir: Path, framework: str, seeds: Sequence[int]) -> dict[str, Any] | None:
    """What a `train` job of `framework` had finished of `seeds` when it stopped: {"params", "runs"} in seed order,
    or None when no seed had finished (each seed's file is written whole, when the seed ends)."""
    finished = [json.loads(path.read_text()) for path in (seed_result_path(workdir, framework, seed) for seed in seeds)
                if path.is_file()]
    if not finished:
        return None
    return {"params": finished[0]["params"], "runs": [entry["run"] for entry in finished]}


def save_batches(path: str | os.PathLike, train: Sequence[tuple[np.ndarray, np.ndarray]],
                 val: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, int]:
    """Write the batches a pipeline yielded (the `batches` job), each as it came (padded text batches differ in
    width): train_x_0000, train_y_0000, ..., val_x_0000, ..., and train_sizes, each training batch's size."""
    arrays = {"train_sizes": np.array([len(x) for x, _ in train], dtype=np.int64)}
    for name, batches in (("train", train), ("val", val)):
        for step, (x, y) in enumerate(batches):
            arrays[f"{name}_x_{step:04d}"], arrays[f"{name}_y_{step:04d}"] = x, y
    np.savez(path, **arrays)
    return {"steps": len(train)}



# ---------------------------------------------------------------------------- worker processes


def worker_env(framework: str, device: str, threads: int) -> dict[str, str]:
    """The environment of a worker: quiet TF logs, equal thread settings, GPUs hidden for --device cpu."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    for var, value in FRAMEWORK_ENV.get(framework, {}).items():
        env.setdefault(var, value)
    return env


def _exit_with_parent() -> None:
    """Run in the child before exec: the kernel sends it SIGTERM if the harness dies, so no worker is orphaned."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # a pseudo-terminal reads EIO once the worker has exited
        return b""


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _free_name(workdir: Path, stem: str) -> str:
    """`stem`, or `stem-2`, `stem-3`... : the first name whose job file is not in `workdir` yet."""
    name, number = stem, 1
    while (workdir / f"{name}-job.json").exists():
        number += 1
        name = f"{stem}-{number}"
    return name


def _last_line(log_path: Path) -> str:
    lines = [line.strip() for line in log_path.read_text(errors="replace").replace("\r", "\n").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else "no output"


def _exit_text(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        return f"killed by {signal_name(returncode)}"
    return f"exit code {returncode}"


def signal_name(returncode: int | None) -> str | None:
    """'SIGKILL' for a process that a signal ended (a negative return code), else None."""
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class WorkerFailed(WorkerError):
    """A job that did not answer: it raised (`error` is its last line), its worker ended without answering
    (`returncode`, negative for a signal) or it overran its timeout. `log` is the job's log file."""

    def __init__(self, message: str, *, framework: str, kind: str, log: Path, error: str | None = None,
                 returncode: int | None = None, timed_out: bool = False) -> None:
        super().__init__(message)
        self.framework = framework
        self.kind = kind
        self.log = log
        self.error = error
        self.returncode = returncode
        self.timed_out = timed_out

    @property
    def signal(self) -> str | None:
        """The signal that ended the worker ('SIGKILL'), if one did."""
        return signal_name(self.returncode)

    @property
    def cause(self) -> str:
        """What happened, in a few words: 'killed by SIGKILL', 'exit code 1', 'ValueError: ...', 'timed out'."""
        if self.error is not None:
            return self.error
        return "timed out" if self.timed_out else _exit_text(self.returncode)


class WorkerSession:
    """One worker process of `framework`, started at the first job and fed jobs one after another.

    Each job's output is relayed live (through a pseudo-terminal when we are on one, so Keras
    and Lightning draw their progress bars; not at all when `quiet`) and saved to
    WORKDIR/<framework>-<kind>.log beside the job and result files. A job that raises comes
    back as a WorkerError and the same worker serves the next job; a worker that dies, or
    overruns a job's timeout, is stopped, and the next job starts a fresh one. `close` ends
    the worker (EOF on its input); `stop` terminates it at once.
    """

    def __init__(self, framework: str, *, device: str = "cpu", threads: int = 1, workdir: Path | None = None,
                 quiet: bool = False, env: dict[str, str] | None = None) -> None:
        if framework not in WORKER_MODULES:
            raise ValueError(f"unknown framework {framework!r}; known: {', '.join(WORKER_MODULES)}")
        self.framework = framework
        self.device = device
        self.threads = threads
        self.workdir = Path(workdir) if workdir is not None else None
        self.quiet = quiet
        self.env = {**worker_env(framework, device, threads), **(env or {})}
        self.starts = 0  # worker processes started so far (a death or a timeout costs one more)
        self._proc: subprocess.Popen | None = None
        self._output: int | None = None
        self._control: int | None = None
        self._answers = b""
        self._log = None
        self._log_path: Path | None = None
        self._exit_code: int | None = None

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def run(self, job: dict[str, Any], workdir: Path | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Run `job` (a dict with "kind") in the worker and return its result; WorkerError if it fails.

        Its files go to `workdir` (default: the session's); `timeout` (seconds, default none) stops a
        worker that has not answered by then.
        """
        workdir = Path(workdir) if workdir is not None else self.workdir
        if workdir is None:
            raise ValueError("no work directory: give worker_session(workdir=...) or run(job, workdir)")
        kind = job["kind"]
        name = _free_name(workdir, f"{self.framework}-{kind}")
        job_path, result_path = workdir / f"{name}-job.json", workdir / f"{name}-result.json"
        self._log_path = workdir / f"{name}.log"
        result_path.unlink(missing_ok=True)
        write_json_atomic(job_path, {**job, "framework": self.framework, "device": self.device,
                                     "threads": self.threads, "workdir": str(workdir), "result": str(result_path)},
                          indent=None)
        self._log = open(self._log_path, "wb")
        try:
            answer = self._submit(job_path, timeout)
        except BaseException:
            self.stop()  # Ctrl-C, or an error of ours: no worker is left running a job nobody waits for
            raise
        finally:
            self._log.close()
            self._log = None
        where = f"(full log: {self._log_path})"
        failure = {"framework": self.framework, "kind": kind, "log": self._log_path}
        if answer == DONE:
            return json.loads(result_path.read_text())
        if answer == FAILED:
            line = json.loads(result_path.read_text())["error"]["line"]
            raise WorkerFailed(f"the {self.framework} worker failed in its {kind} job: {line} {where}", **failure,
                               error=line)
        if answer is None:
            raise WorkerFailed(f"the {self.framework} worker failed in its {kind} job ({_exit_text(self._exit_code)}): "
                               f"{_last_line(self._log_path)} {where}", **failure, returncode=self._exit_code)
        raise WorkerFailed(f"the {self.framework} worker did not finish its {kind} job within {timeout:g} s and was "
                           f"stopped {where}", **failure, timed_out=True)

    def close(self) -> None:
        """End the worker: EOF on its input, then terminate it if it has not exited within CLOSE_GRACE_S."""
        if self._proc is None:
            return
        try:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
            deadline = time.monotonic() + CLOSE_GRACE_S
            while self._proc.poll() is None and time.monotonic() < deadline:
                self._pump(0.1)
            self._drain()
        finally:
            self.stop()

    def stop(self) -> None:
        """Terminate the worker now (SIGTERM, then SIGKILL after STOP_GRACE_S) and release its pipes."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._exit_code = proc.returncode
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        _close(self._output)
        _close(self._control)
        self._output = self._control = None
        self._answers = b""

    # -------------------------------------------------------------------- internals

    def _start(self) -> None:
        use_pty = not self.quiet and sys.stdout is not None and sys.stdout.isatty()
        control_read, control_write = os.pipe()
        output_read, output_write = pty.openpty() if use_pty else os.pipe()
        command = [sys.executable, "-m", WORKER_MODULES[self.framework], "--control-fd", str(control_write)]
        try:
            self._proc = subprocess.Popen(
                command, env=self.env, stdin=subprocess.PIPE, stdout=output_write, stderr=output_write,
                pass_fds=(control_write,), preexec_fn=_exit_with_parent if sys.platform == "linux" else None)
        except BaseException:
            _close(control_read)
            _close(output_read)
            raise
        finally:
            _close(control_write)
            _close(output_write)
        self.starts += 1
        self._output, self._control, self._answers = output_read, control_read, b""

    def _submit(self, job_path: Path, timeout: float | None) -> str | None:
        """Hand the job over and relay the output until the answer: DONE, FAILED, None (it ended) or "timeout"."""
        if self._proc is None:
            self._start()
        try:
            self._proc.stdin.write(f"{job_path}\n".encode())
            self._proc.stdin.flush()
        except BrokenPipeError:
            return self._ended()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._pump(_POLL_S)
            answer = self._answer(job_path)
            if answer is not None:
                self._drain()
                return answer
            if self._control is None or self._proc.poll() is not None:
                return self._ended()
            if deadline is not None and time.monotonic() > deadline:
                self.stop()
                return "timeout"

    def _pump(self, wait_s: float) -> None:
        """Wait up to `wait_s` for the worker's output or answers; relay the output, keep the answers."""
        fds = [fd for fd in (self._output, self._control) if fd is not None]
        if not fds:
            time.sleep(wait_s)
            return
        ready, _, _ = select.select(fds, [], [], wait_s)
        if self._output in ready:
            chunk = _read(self._output)
            if chunk:
                self._relay(chunk)
            else:
                _close(self._output)
                self._output = None
        if self._control in ready:
            chunk = _read(self._control)
            if chunk:
                self._answers += chunk
            else:
                _close(self._control)
                self._control = None

    def _answer(self, job_path: Path) -> str | None:
        """The worker's answer to this job, if it has come."""
        while b"\n" in self._answers:
            line, self._answers = self._answers.split(b"\n", 1)
            status, _, path = line.decode().partition(" ")
            if path == str(job_path):
                return status
        return None

    def _drain(self) -> None:
        """Relay what output is still on its way."""
        while self._output is not None and select.select([self._output], [], [], _DRAIN_S)[0]:
            chunk = _read(self._output)
            if not chunk:
                _close(self._output)
                self._output = None
            else:
                self._relay(chunk)

    def _ended(self) -> None:
        """The worker exited without answering: collect its last output and exit code; the next job starts anew."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(STOP_GRACE_S)
        self._drain()
        self.stop()
        return None

    def _relay(self, chunk: bytes) -> None:
        if self._log is not None:
            self._log.write(chunk)
        elif self._log_path is not None:  # output after the last job's answer (the worker's exit) joins its log
            with open(self._log_path, "ab") as log:
                log.write(chunk)
        if not self.quiet and sys.stdout is not None:
            if hasattr(sys.stdout, "buffer"):
                sys.stdout.buffer.write(chunk)
            else:
                sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()


@contextlib.contextmanager
def worker_session(framework: str, *, device: str = "cpu", threads: int = 1, workdir: Path | None = None,
                   quiet: bool = False, env: dict[str, str] | None = None) -> Iterator[WorkerSession]:
    """A WorkerSession, closed on exit; on an exception (Ctrl-C included) its worker is terminated at once.

    `env` adds to (or overrides) the worker's environment, e.g. allocator settings read at start-up.
    """
    session = WorkerSession(framework, device=device, threads=threads, workdir=workdir, quiet=quiet, env=env)
    try:
        yield session
    except BaseException:
        session.stop()
        raise
    finally:
        session.close()


class WorkerPool:
    """One WorkerSession per framework, each started at its first job, all with the same settings (plus POOL_ENV)."""

    def __init__(self, *, device: str = "cpu", threads: int = 1, quiet: bool = False,
                 env: dict[str, str] | None = None) -> None:
        self.settings = {"device": device, "threads": threads, "quiet": quiet}
        self.env = env or {}
        self.sessions: dict[str, WorkerSession] = {}

    def session(self, framework: str) -> WorkerSession:
        """This pool's session of `framework` (its worker starts at the first job)."""
        if framework not in self.sessions:
            env = {**POOL_ENV.get(framework, {}), **self.env}
            self.sessions[framework] = WorkerSession(framework, **self.settings, env=env)
        return self.sessions[framework]

    def run(self, framework: str, job: dict[str, Any], workdir: Path, timeout: float | None = None) -> dict[str, Any]:
        """Run `job` in this pool's `framework` worker (see WorkerSession.run)."""
        return self.session(framework).run(job, workdir, timeout)

    @property
    def starts(self) -> dict[str, int]:
        """Worker processes started so far, per framework."""
        return {framework: session.starts for framework, session in self.sessions.items()}

    def stop(self) -> None:
        for session in self.sessions.values():
            session.stop()

    def close(self) -> None:
        try:
            for session in self.sessions.values():
                session.close()
        finally:
            self.stop()


@contextlib.contextmanager
def worker_pool(*, device: str = "cpu", threads: int = 1, quiet: bool = False, env: dict[str, str] | None = None,
                reuse: WorkerPool | None = None) -> Iterator[WorkerPool]:
    """A WorkerPool closed on exit (its workers terminated at once on an exception); `reuse` yields that pool as is."""
    if reuse is not None:
        yield reuse
        return
    pool = WorkerPool(device=device, threads=threads, quiet=quiet, env=env)
    try:
        yield pool
    except BaseException:
        pool.stop()
        raise
    finally:
        pool.close()


def run_worker(
    framework: str,
    job: dict[str, Any],
    workdir: Path,
    *,
    device: str = "cpu",
    threads: int = 1,
    quiet: bool = False,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run one job in a worker process of its own and return its result (see WorkerSession)."""
    with worker_session(framework, device=device, threads=threads, workdir=workdir, quiet=quiet, env=env) as session:
        return session.run(job, timeout=timeout)
