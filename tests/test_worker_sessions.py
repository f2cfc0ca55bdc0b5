"""Worker sessions (parity.jobs, parity.worker_runtime): one process serves many jobs, failures come back clearly.

Most tests run a framework-free worker (tests/fake_worker.py) through the real runtime and the
real session code, so they take seconds; the last ones run the Keras and Lightning workers.
"""

import json
import os
import platform
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from parity import jobs
from parity.errors import WorkerError

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Register tests/fake_worker.py as framework 'fake'; the environment its worker needs to import it."""
    monkeypatch.setitem(jobs.WORKER_MODULES, "fake", "fake_worker")
    return {"PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _session(tmp_path: Path, env: dict[str, str], quiet: bool = True):
    return jobs.worker_session("fake", workdir=tmp_path, quiet=quiet, env=env)


def test_a_session_serves_several_jobs_in_one_process_and_logs_each(tmp_path, fake_env):
    with _session(tmp_path, fake_env) as session:
        first = session.run({"kind": "echo", "payload": 1})
        second = session.run({"kind": "echo", "payload": 2})
        pid = session.pid
    assert (first["payload"], second["payload"]) == (1, 2)
    assert first["pid"] == second["pid"] == pid and session.starts == 1
    assert first["framework"] == "fake" and first["device"].startswith("cpu (")
    assert first["versions"] == {"fake": "1.0", "python": platform.python_version()}
    assert "progress: echo 1" in (tmp_path / "fake-echo.log").read_text()
    assert "progress: echo 2" in (tmp_path / "fake-echo-2.log").read_text()
    assert not _alive(pid), "closing the session ends its worker"


def test_a_job_that_raises_names_its_kind_log_and_error_and_the_worker_serves_on(tmp_path, fake_env):
    with _session(tmp_path, fake_env) as session:
        with pytest.raises(WorkerError) as caught:
            session.run({"kind": "fail", "payload": 7})
        pid = session.pid
        after = session.run({"kind": "echo", "payload": 8})
    log = tmp_path / "fake-fail.log"
    assert str(caught.value) == (f"the fake worker failed in its fail job: ValueError: planted failure 7 "
                                 f"(full log: {log})")
    assert "about to fail" in log.read_text() and "Traceback" in log.read_text()
    assert after["payload"] == 8 and after["pid"] == pid and session.starts == 1


def test_a_worker_that_dies_is_reported_with_its_exit_and_replaced(tmp_path, fake_env):
    with _session(tmp_path, fake_env) as session:
        first = session.run({"kind": "echo", "payload": 1})["pid"]
        with pytest.raises(WorkerError, match=r"the fake worker failed in its die job \(exit code 3\): dying now "
                                              r"\(full log: .*fake-die\.log\)"):
            session.run({"kind": "die"})
        assert session.pid is None and not _alive(first)
        second = session.run({"kind": "echo", "payload": 2})["pid"]
    assert second != first and session.starts == 2


def test_a_job_past_its_timeout_stops_the_worker_instead_of_waiting(tmp_path, fake_env):
    with _session(tmp_path, fake_env) as session:
        session.run({"kind": "echo", "payload": 1})
        pid = session.pid
        with pytest.raises(WorkerError, match="did not finish its sleep job within 1 s and was stopped"):
            session.run({"kind": "sleep", "seconds": 120}, timeout=1)
        assert session.pid is None and not _alive(pid)


def test_an_exception_in_the_caller_ends_the_worker(tmp_path, fake_env):
    with pytest.raises(RuntimeError, match="caller's own error"):
        with _session(tmp_path, fake_env) as session:
            session.run({"kind": "echo", "payload": 1})
            pid = session.pid
            raise RuntimeError("caller's own error")
    assert not _alive(pid)


def test_ctrl_c_during_a_job_leaves_no_worker_behind(tmp_path, fake_env):
    # Python's Ctrl-C handler, also where pytest was started with SIGINT ignored (a background job of a shell).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with _session(tmp_path, fake_env) as session:
            session.run({"kind": "echo", "payload": 1})
            pid = session.pid
            timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
            timer.start()
            try:
                with pytest.raises(KeyboardInterrupt):
                    session.run({"kind": "sleep", "seconds": 120})
            finally:
                timer.cancel()
            assert session.pid is None and not _alive(pid)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_on_a_terminal_the_worker_writes_to_a_pty_and_its_output_is_relayed_live(tmp_path, fake_env, monkeypatch):
    leader, follower = os.openpty()
    terminal = os.fdopen(follower, "w")
    monkeypatch.setattr("sys.stdout", terminal)
    try:
        with _session(tmp_path, fake_env, quiet=False) as session:
            answer = session.run({"kind": "echo", "payload": "bar"})
        relayed = os.read(leader, 65536).decode()
    finally:
        terminal.close()
        os.close(leader)
    assert answer["tty"] is True  # so Keras and Lightning draw their progress bars
    assert "progress: echo bar" in relayed and "progress: echo bar" in (tmp_path / "fake-echo.log").read_text()


def test_quiet_sessions_use_a_plain_pipe_and_relay_nothing(tmp_path, fake_env, capfd):
    with _session(tmp_path, fake_env, quiet=True) as session:
        answer = session.run({"kind": "echo", "payload": "quiet"})
    assert answer["tty"] is False and "progress" not in capfd.readouterr().out
    assert "progress: echo quiet" in (tmp_path / "fake-echo.log").read_text()


def test_the_torch_worker_environment_carries_a_cublas_workspace_for_deterministic_gpu_training(
        tmp_path, fake_env, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    for device in ("gpu", "auto", "cpu"):
        assert jobs.worker_env("lightning", device, 1)["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert "CUBLAS_WORKSPACE_CONFIG" not in jobs.worker_env("keras", "gpu", 1)
    assert jobs.WorkerSession("lightning", device="gpu").env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the other setting torch accepts: a user's is kept
    assert jobs.worker_env("lightning", "gpu", 1)["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    # And what a session is given reaches its worker process.
    monkeypatch.setitem(jobs.FRAMEWORK_ENV, "fake", {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"})
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    with _session(tmp_path, fake_env) as session:
        answer = session.run({"kind": "echo", "payload": 0, "env_names": ["CUBLAS_WORKSPACE_CONFIG"]})
    assert answer["env"] == {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}


def _forward(run, workdir: Path, model_id: str) -> dict[str, np.ndarray]:
    """The forward job of `model_id` (seed 0) in both frameworks; their outputs."""
    from parity.catalog import get_spec
    from parity.datasets import load_dataset

    workdir.mkdir()
    inputs = load_dataset(get_spec(model_id), synthetic=True).probe_inputs(64)
    np.save(jobs.probe_inputs_path(workdir, model_id), inputs)
    for framework in jobs.FRAMEWORKS:
        run(framework, {"kind": "forward", "models": [model_id], "seed": 0}, workdir)
    tag = jobs.run_tag(model_id, 0)
    return {framework: np.load(jobs.outputs_path(workdir, framework, tag)) for framework in jobs.FRAMEWORKS}


@pytest.mark.slow
def test_check_starts_each_framework_once_and_a_served_job_matches_a_fresh_worker(tmp_path):
    from parity import runner

    with jobs.worker_pool(quiet=True) as pool:
        implemented = runner.implemented_ids(workers=pool)
        rows = runner.check_models(["c1w2_fmnist_dnn", "c1w3_fmnist_cnn"], workers=pool)
        served = _forward(pool.run, tmp_path / "served", "c1w3_fmnist_cnn")  # after describe and forward jobs
        assert pool.starts == {"keras": 1, "lightning": 1}
    assert {"c1w2_fmnist_dnn", "c1w3_fmnist_cnn"} <= set(implemented) and all(row["passed"] for row in rows)
    fresh = _forward(lambda framework, job, workdir: jobs.run_worker(framework, job, workdir, quiet=True),
                     tmp_path / "fresh", "c1w3_fmnist_cnn")
    for framework in jobs.FRAMEWORKS:  # the same weights from the same seed, the same numbers: bit for bit
        assert served[framework].tobytes() == fresh[framework].tobytes(), framework


CONFIGURE_TWICE = """
import json, os
os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
import torch
from torch_models.worker import configure
device = configure({"threads": 1, "device": "cpu", "native": []})
aligned = {"cublas": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
           "deterministic": torch.are_deterministic_algorithms_enabled()}
configure({"threads": 1, "device": "cpu", "native": ["determinism"]})
print(json.dumps({"device": device, "aligned": aligned, "native": torch.are_deterministic_algorithms_enabled()}))
"""


def test_torch_configure_sets_the_cublas_workspace_itself_and_switches_determinism_both_ways():
    # In a child process: configure changes process-wide torch settings. A worker started by hand (not by
    # parity.jobs) still gets the workspace, before anything touches CUDA.
    result = subprocess.run([sys.executable, "-c", CONFIGURE_TWICE], capture_output=True, text=True, timeout=300,
                            cwd=TESTS.parent, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["device"].startswith("cpu (")
    assert answer["aligned"] == {"cublas": ":4096:8", "deterministic": True}
    assert answer["native"] is False  # a later job with determinism native: off again in the same worker
