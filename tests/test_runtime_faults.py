"""Faults while `parity run` trains: a loss that goes non-finite, a worker killed by a signal, Ctrl-C.

The CLI cases run the real command in a subprocess (its own session, so that SIGINT can go to its
whole process group as a terminal sends it) with a marker in its environment, which every worker
inherits: after the command ends, no process carrying the marker may remain. The report shapes of
diverged, failed and partial runs are checked on fabricated results first (no framework).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import jsonschema
import pytest

from cli_helpers import REPO, run_cli
from parity import jobs
from parity.report import build_report, render_markdown, validate_report, write_report

TESTS = Path(__file__).resolve().parent
MODEL = "c1w1_hello_linear"  # inline data, one step per epoch: the fastest run
ORPHAN_WAIT_S = 10.0  # how long the workers of a finished command may take to disappear from the process table


# ---------------------------------------------------------------------------- report shapes (fabricated results)


def _run(seed: int, final: float, diverged: dict | None = None) -> dict:
    epochs = 2
    loss = [0.5, None] if diverged else [0.5, 0.4]
    return {"seed": seed, "history": {"loss": loss, "val_loss": [0.6, 0.5], "mae": [0.3, 0.2],
                                      "val_mae": [0.35, final]},
            "step_loss": [0.5, 0.45, float("inf") if diverged else 0.4], "train_samples_per_s": 100.0 + seed,
            "wall_s": 1.0, "epochs_run": epochs, "stopped_early": False, "diverged": diverged}


def _results(keras_runs: list[dict], lightning_runs: list[dict], **extra) -> dict:
    frameworks = {"keras": {"params": 2, "runs": keras_runs, "status": "complete"},
                  "lightning": {"params": 2 if lightning_runs else None, "runs": lightning_runs,
                                "status": "complete"}}
    for framework, block in extra.pop("frameworks", {}).items():
        frameworks[framework].update(block)
    return {"model": MODEL, "mode": "aligned", "seeds": [0, 1, 2],
            "dataset": {"id": "hello", "source": "real", "train_size": 6, "val_size": 6},
            "frameworks": frameworks, "forward_max_abs_diff": 0.0,
            "environment": {"python": "3.11", "tensorflow": "2.21", "keras": "3", "torch": "2", "lightning": "2",
                            "device": "cpu"},
            "spec": {"metric": "mae", "title": "hello"}, **extra}


NON_FINITE = {"epoch": 2, "step": 1, "global_step": 2, "loss": "inf"}


def test_a_diverged_run_is_kept_left_out_of_the_statistics_and_located():
    keras = [_run(0, 0.1), _run(1, 0.2, NON_FINITE), _run(2, 0.3)]
    lightning = [_run(0, 0.11), _run(1, 0.21, NON_FINITE), _run(2, 0.31)]
    report = build_report(_results(keras, lightning))
    validate_report(report)
    assert report["status"] == "diverged"
    assert report["status_note"].startswith("diverged: the training loss went non-finite in keras seed 1 (inf at "
                                            "epoch 2, step 1, global step 2), lightning seed 1")
    final = report["comparison"]["final_val"]
    assert (final["keras"]["n"], final["lightning"]["n"], final["paired"]["seeds"]) == (2, 2, [0, 2])
    assert final["paired"]["diffs"] == pytest.approx([0.01, 0.01])
    assert [(row["framework"], row["seed"]) for row in report["comparison"]["left_out"]] == [("keras", 1),
                                                                                          ("lightning", 1)]
    assert report["comparison"]["divergence"] == [{"seed": 1, "keras": NON_FINITE, "lightning": NON_FINITE,
                                                   "same_step": True}]
    kept = report["frameworks"]["keras"]["runs"][1]
    assert kept["step_loss"] == [0.5, 0.45, None] and kept["history"]["loss"] == [0.5, None]
    markdown = render_markdown(report)
    assert "- seed 1: keras inf at epoch 2, step 1, global step 2; lightning inf at epoch 2, step 1, global step 2: " \
           "the same step in both" in markdown
    assert "| 2, 2‡, 2 |" in markdown  # epochs run per seed, the diverged one marked


def test_divergence_at_different_steps_or_in_one_framework_only_is_told_apart():
    later = {**NON_FINITE, "step": 2, "global_step": 3, "loss": "nan"}
    report = build_report(_results([_run(0, 0.1, NON_FINITE), _run(1, 0.2, NON_FINITE)],
                                   [_run(0, 0.1, later), _run(1, 0.2)]))
    assert [row["same_step"] for row in report["comparison"]["divergence"]] == [False, False]
    assert report["comparison"]["divergence"][1]["lightning"] is None


def test_a_failed_framework_keeps_the_others_runs_and_names_the_signal_and_log():
    failure = {"seed": 0, "cause": "killed by SIGKILL", "signal": "SIGKILL", "exit_code": None, "error": None,
               "log": "logs/lightning-train.log"}
    results = _results([_run(0, 0.1), _run(1, 0.2), _run(2, 0.3)], [],
                       frameworks={"lightning": {"status": "failed", "failure": failure}})
    report = build_report(results)
    validate_report(report)
    assert report["status"] == "failed"
    assert report["status_note"] == ("failed: the lightning worker failed while training seed 0 (killed by SIGKILL; "
                                     "log: logs/lightning-train.log); finished runs kept: keras seeds 0, 1, 2; "
                                     "lightning no seed")
    assert report["comparison"]["final_val"]["keras"]["n"] == 3 and report["frameworks"]["lightning"]["params"] is None
    assert "lightning: **failed**: killed by SIGKILL while training seed 0, log `logs/lightning-train.log`" in \
        render_markdown(report)
    del report["frameworks"]["lightning"]["failure"]  # the schema holds a failed framework to its failure record
    with pytest.raises(jsonschema.ValidationError, match="'failure' is a required property"):
        validate_report(report)


def test_a_partial_run_says_after_which_seed_ctrl_c_stopped_it(tmp_path):
    results = _results([_run(0, 0.1), _run(1, 0.2), _run(2, 0.3)], [_run(0, 0.1), _run(1, 0.2)],
                       frameworks={"lightning": {"status": "interrupted"}}, interrupted={"by": "Ctrl-C"})
    report = build_report(results)
    assert report["status"] == "partial"
    assert report["status_note"] == ("partial: stopped by Ctrl-C after seed 1 (finished: keras seeds 0, 1, 2; "
                                     "lightning seeds 0, 1; 3 asked for)")
    assert report["interrupted"] == {"by": "Ctrl-C", "after_seed": 1,
                                     "finished_seeds": {"keras": [0, 1, 2], "lightning": [0, 1]}}
    final = write_report(report, tmp_path)
    assert "- Status: **partial: stopped by Ctrl-C after seed 1" in (final / "report.md").read_text()
    only_keras = build_report(_results([_run(0, 0.1)], [], interrupted={"by": "Ctrl-C"}))
    assert only_keras["status_note"].startswith("partial: stopped by Ctrl-C before any seed finished in both")


# ---------------------------------------------------------------------------- worker sessions (framework-free)


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Register tests/fake_worker.py as framework 'fake'; the environment its worker needs to import it."""
    monkeypatch.setitem(jobs.WORKER_MODULES, "fake", "fake_worker")
    return {"PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}


def test_a_worker_killed_by_a_signal_is_reported_with_the_signal_and_its_log(tmp_path, fake_env):
    with jobs.worker_session("fake", workdir=tmp_path, quiet=True, env=fake_env) as session:
        session.run({"kind": "echo", "payload": 1})
        killer = threading.Timer(0.5, os.kill, (session.pid, signal.SIGKILL))
        killer.start()
        with pytest.raises(jobs.WorkerFailed) as caught:
            session.run({"kind": "sleep", "seconds": 60})
        killer.join()
    failure = caught.value
    assert (failure.framework, failure.kind, failure.signal, failure.cause) == ("fake", "sleep", "SIGKILL",
                                                                                 "killed by SIGKILL")
    assert failure.returncode == -signal.SIGKILL and failure.log == tmp_path / "fake-sleep.log"
    assert "failed in its sleep job (killed by SIGKILL)" in str(failure)


def test_a_served_worker_ignores_sigint_and_leaves_ctrl_c_to_its_parent(tmp_path, fake_env):
    with jobs.worker_session("fake", workdir=tmp_path, quiet=True, env=fake_env) as session:
        session.run({"kind": "echo", "payload": 1})
        interrupt = threading.Timer(0.5, os.kill, (session.pid, signal.SIGINT))
        interrupt.start()
        session.run({"kind": "sleep", "seconds": 1.5})  # answers: the SIGINT of a terminal's Ctrl-C did not end it
        interrupt.join()
        assert session.run({"kind": "echo", "payload": 2})["payload"] == 2 and session.starts == 1


def test_a_failed_or_partial_run_never_replaces_a_complete_report(tmp_path):
    from parity.runner import report_name

    model = tmp_path / "c1w2_fmnist_dnn"
    assert report_name(tmp_path, model.name, "partial") == model.name  # nothing there yet
    model.mkdir()
    (model / "report.json").write_text(json.dumps({"model": model.name, "status": "complete"}))
    assert report_name(tmp_path, model.name, "partial") == "c1w2_fmnist_dnn.partial"
    assert report_name(tmp_path, model.name, "failed") == "c1w2_fmnist_dnn.failed"
    assert report_name(tmp_path, model.name, "complete") == model.name  # a finished run replaces it, as always
    (model / "report.json").write_text(json.dumps({"model": model.name, "status": "partial"}))
    assert report_name(tmp_path, model.name, "partial") == model.name  # an incomplete report is no loss
    (model / "report.json").write_text(json.dumps({"model": model.name}))  # written before `status` existed
    assert report_name(tmp_path, model.name, "failed") == "c1w2_fmnist_dnn.failed"


def test_finished_seeds_reads_the_seeds_written_so_far(tmp_path):
    assert jobs.finished_seeds(tmp_path, "keras", [0, 1, 2]) is None
    for seed in (0, 1):
        jobs.write_result(jobs.seed_result_path(tmp_path, "keras", seed),
                          {"params": 2, "run": {"seed": seed, "step_loss": [float("nan")]}})
    finished = jobs.finished_seeds(tmp_path, "keras", [0, 1, 2])
    assert finished["params"] == 2 and [run["seed"] for run in finished["runs"]] == [0, 1]
    assert str(finished["runs"][0]["step_loss"][0]) == "nan"  # a non-finite value travels as it was


# ---------------------------------------------------------------------------- the real command


def _marked_processes(marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment carries `marker`: the command and its workers."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker.encode() in environ.split(b"\0"):
            found.append((int(entry.name), command))
    return found


def _children(pid: int, module: str) -> list[int]:
    """The child processes of `pid` running `python -m module`."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid and module.encode() in command:
            children.append(int(entry.name))
    return children


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Command:
    """`parity ARGS...` started in its own session with a marker in its environment; its stdout read line by line."""

    def __init__(self, *args: str, tmp_path: Path) -> None:
        self.marker = f"PARITY_FAULT_TEST={uuid.uuid4().hex}"
        name, value = self.marker.split("=")
        self.stderr_path = tmp_path / "stderr.txt"
        command = [sys.executable, "-m", "parity.cli", *args, "--threads", "1", "--device", "cpu"]
        with open(self.stderr_path, "w") as stderr:
            # SIGINT back to its default in the child: a test run started in the background of a non-interactive
            # shell inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler, so Ctrl-C would
            # reach nothing.
            self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                            env={**os.environ, name: value}, start_new_session=True,
                                            preexec_fn=_default_sigint)
        self.lines: list[str] = []

    def wait_for(self, prefix: str) -> None:
        """Read stdout until a line starts with `prefix`; fail if the command ends first."""
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith(prefix):
                return
        pytest.fail(f"the command ended without printing {prefix!r}:\n{''.join(self.lines)[-3000:]}"
                    f"{self.stderr_path.read_text()[-3000:]}")

    def child(self, module: str) -> int:
        """The pid of the command's child process running `module` (waits for it to start)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            children = _children(self.process.pid, module)
            if children:
                return children[0]
            time.sleep(0.02)
        pytest.fail(f"no {module} process started")

    def finish(self) -> tuple[int, str, str]:
        """Wait for the command's end; its exit code, stdout and stderr. Then no process of it may remain."""
        rest, _ = self.process.communicate(timeout=300)
        stdout, stderr = "".join(self.lines) + rest, self.stderr_path.read_text()
        deadline = time.monotonic() + ORPHAN_WAIT_S
        while _marked_processes(self.marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _marked_processes(self.marker) == [], "worker processes outlived the command"
        return self.process.returncode, stdout, stderr


def _report(out: Path, model: str) -> dict:
    report = json.loads((out / model / "report.json").read_text())
    validate_report(report)
    return report


def _only_the_report_left(out: Path, model: str) -> None:
    """OUT holds the model's report directory and nothing half-written (no staging or work directory)."""
    assert sorted(path.name for path in out.iterdir()) == [model]
    assert {"report.json", "report.md", "curves.png", "report.html", "logs"} <= {
        path.name for path in (out / model).iterdir()}


def test_a_loss_that_goes_infinite_stops_both_frameworks_at_that_step_and_is_reported(tmp_path):
    """A learning rate of 1000 on the course's linear series model: the weights blow up within the first epoch."""
    model = "c4w2_ts_linear"
    result = run_cli("run", model, "--synthetic", "--lr", "1e3", "--epochs", "3", "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    warning = [line for line in result.stderr.splitlines() if line.startswith("parity: ")]
    assert "Traceback" not in result.stderr and len(warning) == 1
    assert warning[0].startswith("parity: warning: diverged: the training loss went non-finite in keras seed 0 (inf "
                                 "at epoch 1, step ") and "a smaller --lr may train (this run's rate 1000" in warning[0]
    report = _report(tmp_path, model)
    assert report["status"] == "diverged"
    records = {}
    for framework in jobs.FRAMEWORKS:
        run = report["frameworks"][framework]["runs"][0]
        records[framework] = record = run["diverged"]
        # Stopped at that step: the step's loss is the last one recorded, every one before it finite.
        assert record["epoch"] == 1 and record["loss"] == "inf" and record["step"] == record["global_step"] > 1
        assert len(run["step_loss"]) == record["global_step"] and run["step_loss"][-1] is None
        assert all(isinstance(loss, float) for loss in run["step_loss"][:-1])
        assert run["epochs_run"] == len(run["history"]["loss"]) == 1 and run["history"]["loss"] == [None]
        log = (tmp_path / model / "logs" / f"{framework}-train.log").read_text()
        assert f"loss became inf at epoch 1, step {record['step']} (global step {record['global_step']})" in log
    assert records["keras"] == records["lightning"], "aligned: both diverge at the same step"
    assert report["comparison"]["divergence"] == [{"seed": 0, **records, "same_step": True}]
    assert report["comparison"]["final_val"]["keras"]["n"] == 0 and len(report["comparison"]["left_out"]) == 2
    _only_the_report_left(tmp_path, model)


def test_a_killed_worker_keeps_the_other_frameworks_result_and_marks_it_failed(tmp_path):
    """SIGKILL to the Lightning worker as soon as it starts, after the Keras worker has finished its seeds."""
    out = tmp_path / "out"
    command = Command("run", MODEL, "--epochs", "1", "--seeds", "2", "--out", str(out), "--quiet", tmp_path=tmp_path)
    command.wait_for(f"keras: {MODEL}, 2 seed(s)")
    os.kill(command.child("torch_models.worker"), signal.SIGKILL)
    code, stdout, stderr = command.finish()
    assert code == 2, stdout[-3000:] + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr
    log = out / MODEL / "logs" / "lightning-train.log"
    assert lines[0] == (f"parity: error: the lightning worker failed while training {MODEL} seed 0 (killed by SIGKILL; "
                        f"log: {log}); the report keeps the finished runs (keras: seeds 0, 1; lightning: no seed) and "
                        f"marks lightning failed: {out / MODEL / 'report.md'}; run the command again to retry")
    assert log.is_file()
    report = _report(out, MODEL)
    assert report["status"] == "failed" and report["status_note"].startswith("failed: the lightning worker failed")
    keras, lightning = report["frameworks"]["keras"], report["frameworks"]["lightning"]
    assert keras["status"] == "complete" and [run["seed"] for run in keras["runs"]] == [0, 1]
    assert lightning["status"] == "failed" and lightning["runs"] == [] and lightning["params"] is None
    assert lightning["failure"] == {"seed": 0, "cause": "killed by SIGKILL", "signal": "SIGKILL", "exit_code": None,
                                    "error": None, "log": "logs/lightning-train.log"}
    _only_the_report_left(out, MODEL)


def test_ctrl_c_keeps_the_finished_seeds_of_both_frameworks_as_a_partial_report(tmp_path):
    """Ctrl-C (SIGINT to the process group) while Lightning trains seed 1 of 3. That worker is frozen (SIGSTOP)
    the moment its seed-1 header shows, so it cannot finish the seed whatever the machine's load; the harness then
    has to end it by force (SIGKILL after its grace period), as it would a hung worker."""
    out = tmp_path / "out"
    command = Command("run", MODEL, "--epochs", "20", "--seeds", "3", "--out", str(out), tmp_path=tmp_path)
    command.wait_for(f"[lightning] {MODEL} seed 1:")
    os.kill(command.child("torch_models.worker"), signal.SIGSTOP)
    os.killpg(command.process.pid, signal.SIGINT)
    code, stdout, stderr = command.finish()
    assert code == 130, stdout[-3000:] + stderr
    report = _report(out, MODEL)
    # Seed 0 finished before seed 1 began; seed 1 (20 epochs) was frozen within moments of its start, so it is
    # all but certainly unfinished: [0, 1] would mean it ran its 20 epochs before the SIGSTOP landed. Seed 2 never ran.
    finished = [run["seed"] for run in report["frameworks"]["lightning"]["runs"]]
    assert finished in ([0], [0, 1])
    assert [run["seed"] for run in report["frameworks"]["keras"]["runs"]] == [0, 1, 2]
    lightning = ", ".join(map(str, finished))
    note = (f"partial: stopped by Ctrl-C after seed {finished[-1]} (finished: keras seeds 0, 1, 2; lightning "
            f"seed{'s' if len(finished) > 1 else ''} {lightning}; 3 asked for)")
    assert report["status"] == "partial" and report["status_note"] == note
    assert report["interrupted"] == {"by": "Ctrl-C", "after_seed": finished[-1],
                                     "finished_seeds": {"keras": [0, 1, 2], "lightning": finished}}
    assert {fw: report["frameworks"][fw]["status"] for fw in jobs.FRAMEWORKS} == {"keras": "complete",
                                                                                "lightning": "interrupted"}
    assert report["comparison"]["final_val"]["paired"]["seeds"] == finished
    assert stderr.strip().splitlines()[-1] == (f"parity: interrupted; {note}; report of the finished runs: "
                                               f"{out / MODEL / 'report.md'}")
    _only_the_report_left(out, MODEL)


def test_a_course_run_runs_a_model_again_whose_report_is_partial(tmp_path):
    from parity import course_run
    from parity.runner import RunOptions

    options = RunOptions(epochs=2, seeds=3, synthetic=True, out_dir=tmp_path)
    report = build_report(_results([_run(0, 0.1)], [], interrupted={"by": "Ctrl-C"}))
    write_report({**report, "request": course_run.request_settings(MODEL, options)}, tmp_path)
    previous = course_run.previous_run(MODEL, options)
    assert not previous.done
    assert previous.note.startswith("its report is incomplete (partial: stopped by Ctrl-C before any seed")
