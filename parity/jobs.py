"""Launch the framework workers, one process each, and exchange files with them.

TensorFlow and the CUDA build of torch crash (SIGSEGV) in one process when TensorFlow loads
before torch._dynamo, so each framework runs in its own process: `python -m tf_models.worker
JOB` and `python -m torch_models.worker JOB`. A job is a JSON file; arrays travel as .npz/.npy
files in a work directory; the worker answers with a JSON result file. Both sides use the
path helpers below, so they agree on every file name.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import pty
import select
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from parity.errors import WorkerError

FRAMEWORKS = ("keras", "lightning")
WORKER_MODULES = {"keras": "tf_models.worker", "lightning": "torch_models.worker"}


@contextlib.contextmanager
def work_directory(prefix: str, parent: Path | None = None) -> Iterator[Path]:
    """A scratch directory for job files: removed on success; on failure its logs stay (the error names them)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    except BaseException:
        for arrays in (*path.glob("*.npz"), *path.glob("*.npy")):
            arrays.unlink()  # large and reproducible; the logs and job files are what explain a failure
        raise
    shutil.rmtree(path, ignore_errors=True)


def data_path(workdir: Path) -> Path:
    return Path(workdir) / "data.npz"


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


def save_data(workdir: Path, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> Path:
    """Write the arrays both workers train on; they read the very same bytes."""
    path = data_path(workdir)
    np.savez(path, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val)
    return path


def load_data(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def read_job(path: str | os.PathLike) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def write_result(path: str | os.PathLike, result: dict[str, Any]) -> None:
    """Write the worker's answer atomically (a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)


def save_batches(path: str | os.PathLike, train: Sequence[tuple[np.ndarray, np.ndarray]],
                 val: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, int]:
    """Write the batches a pipeline yielded (the `batches` job), concatenated, with each training batch's size."""
    np.savez(
        path,
        train_x=np.concatenate([x for x, _ in train]), train_y=np.concatenate([y for _, y in train]),
        train_sizes=np.array([len(x) for x, _ in train]),
        val_x=np.concatenate([x for x, _ in val]), val_y=np.concatenate([y for _, y in val]),
    )
    return {"steps": len(train)}


def serve(
    argv: Sequence[str],
    framework: str,
    configure: Callable[[dict[str, Any]], str],
    handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]] | str],
    versions: Callable[[], dict[str, str]],
) -> int:
    """A worker's main: read the job named in argv, configure the process, run the handler, write the result.

    A handler is a function, or "module:function" imported only when a job of its kind runs.
    """
    job = read_job(argv[0])
    device = configure(job)
    handler = handlers[job["kind"]]
    if isinstance(handler, str):
        module, name = handler.split(":")
        handler = getattr(importlib.import_module(module), name)
    result = handler(job)
    write_result(job["result"], {**result, "framework": framework, "device": device, "versions": versions()})
    return 0


def worker_env(device: str, threads: int) -> dict[str, str]:
    """The environment of a worker: quiet TF logs, equal thread settings, GPUs hidden for --device cpu."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _relay(proc: subprocess.Popen, reader: int, log) -> None:
    """Copy the worker's output to our stdout and its log, as it comes (progress bars included)."""
    while True:
        ready, _, _ = select.select([reader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(reader, 65536)
            except OSError:  # the pty closes with EIO when the worker exits
                chunk = b""
            if not chunk:
                break
            log.write(chunk)
            if sys.stdout is not None:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
        elif proc.poll() is not None:
            break


def run_worker(
    framework: str,
    job: dict[str, Any],
    workdir: Path,
    *,
    device: str = "cpu",
    threads: int = 1,
    quiet: bool = False,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one job in a fresh worker process of `framework` and return its result.

    `env` adds to (or overrides) the worker's environment, e.g. allocator settings read at start-up.

    Output is relayed live (through a pseudo-terminal when we are on one, so Keras and
    Lightning draw their progress bars) and saved to WORKDIR/<framework>-<kind>.log.
    """
    workdir = Path(workdir)
    name = f"{framework}-{job['kind']}"
    job_path = workdir / f"{name}-job.json"
    result_path = workdir / f"{name}-result.json"
    log_path = workdir / f"{name}.log"
    result_path.unlink(missing_ok=True)
    job_path.write_text(json.dumps({**job, "framework": framework, "device": device, "threads": threads,
                                    "workdir": str(workdir), "result": str(result_path)}))
    command = [sys.executable, "-m", WORKER_MODULES[framework], str(job_path)]
    env = {**worker_env(device, threads), **(env or {})}
    use_pty = not quiet and sys.stdout is not None and sys.stdout.isatty()
    with open(log_path, "wb") as log:
        if use_pty:
            leader, follower = pty.openpty()
            proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
            os.close(follower)
            try:
                _relay(proc, leader, log)
            finally:
                os.close(leader)
            returncode = proc.wait()
        elif quiet:
            returncode = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log).returncode
        else:
            proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
            _relay(proc, proc.stdout.fileno(), log)
            returncode = proc.wait()
    if returncode != 0 or not result_path.exists():
        raise WorkerError(
            f"the {framework} worker failed (exit code {returncode}): {_last_line(log_path)} (full log: {log_path})"
        )
    return json.loads(result_path.read_text())


def _last_line(log_path: Path) -> str:
    lines = [line.strip() for line in log_path.read_text(errors="replace").replace("\r", "\n").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else "no output"
