"""What `parity run` prints and logs: one line per epoch in a pipe (the same format and 1-based numbering for both
frameworks), the frameworks' own bars on a terminal, one summary line per framework with --quiet, and log files
that read as text (no carriage returns or escape codes, no TensorFlow load banners)."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import REPO, run_cli
from parity import formatting, progress

MODEL = "c1w1_hello_linear"  # the course's inline data: no download, one step per epoch
EPOCHS = 3
EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+) - [\d.]+s - (.*)$")


def epoch_lines_by_framework(text: str) -> dict[str, list[str]]:
    """The per-epoch lines of each framework's section ('[keras] ...' up to the next '[lightning] ...' header)."""
    found: dict[str, list[str]] = {}
    framework = None
    for line in text.splitlines():
        header = re.match(r"^\[(keras|lightning)\] ", line)
        if header:
            framework = header.group(1)
            found.setdefault(framework, [])
        elif framework and EPOCH_LINE.match(line):
            found[framework].append(line)
    return found


def expected_values(report: dict, framework: str, epoch: int) -> str:
    """The values an epoch line shows, as report.json holds them."""
    history = report["frameworks"][framework]["runs"][0]["history"]
    keys = progress.epoch_keys(report["comparison"]["metric"])
    return " - ".join(f"{key}: {formatting.metric(history[key][epoch - 1])}" for key in keys)


def run_in_terminal(*args: str) -> str:
    """`parity ARGS...` with a pseudo-terminal as its stdout and stderr (as a person runs it); what it printed."""
    controller, terminal = pty.openpty()
    command = [sys.executable, "-m", "parity.cli", *args, "--threads", "1", "--device", "cpu"]
    process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
                               env={**os.environ, "COLUMNS": "120"})
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the process has exited and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=600) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return b"".join(chunks).decode(errors="replace")


def assert_logs_read_as_text(logs: Path) -> None:
    """Every worker log (*.log; the CSV loggers' files end their rows in \\r\\n, as CSV does) is plain text."""
    worker_logs = sorted(logs.glob("*.log"))
    assert {log.name for log in worker_logs} >= {"keras-train.log", "lightning-train.log"}
    for log in worker_logs:
        raw = log.read_bytes()
        assert b"\r" not in raw and b"\x1b" not in raw and b"\b" not in raw, log
        assert b"absl::InitializeLog" not in raw and b"oneDNN custom operations" not in raw, log


@pytest.fixture(scope="module")
def piped(tmp_path_factory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("piped")
    result = run_cli("run", MODEL, "--epochs", str(EPOCHS), "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, out / MODEL


def test_a_pipe_gets_one_line_per_epoch_numbered_from_1_in_both_frameworks(piped):
    stdout, run_dir = piped
    report = json.loads((run_dir / "report.json").read_text())
    lines = epoch_lines_by_framework(stdout)
    assert set(lines) == {"keras", "lightning"}
    for framework, framework_lines in lines.items():
        numbers = [EPOCH_LINE.match(line).group(1, 2) for line in framework_lines]
        assert numbers == [(str(epoch), str(EPOCHS)) for epoch in range(1, EPOCHS + 1)], framework
        shown = [EPOCH_LINE.match(line).group(3) for line in framework_lines]
        assert shown == [expected_values(report, framework, epoch) for epoch in range(1, EPOCHS + 1)], framework


def test_the_logs_hold_the_same_epoch_lines_as_plain_text(piped):
    stdout, run_dir = piped
    assert_logs_read_as_text(run_dir / "logs")
    for framework, lines in epoch_lines_by_framework(stdout).items():
        log = (run_dir / "logs" / f"{framework}-train.log").read_text()
        assert epoch_lines_by_framework(log) == {framework: lines}


@pytest.mark.slow
def test_quiet_prints_one_summary_line_per_framework_and_still_logs_every_epoch(tmp_path: Path):
    result = run_cli("run", MODEL, "--epochs", str(EPOCHS), "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    printed = result.stdout.splitlines()
    assert not [line for line in printed if EPOCH_LINE.match(line) or line.startswith("[keras]")], printed
    assert [line.split(":")[0] for line in printed if re.match(r"^(keras|lightning): ", line)] == ["keras",
                                                                                                   "lightning"]
    for framework in ("keras", "lightning"):
        log = (tmp_path / MODEL / "logs" / f"{framework}-train.log").read_text()
        assert len(epoch_lines_by_framework(log)[framework]) == EPOCHS


@pytest.mark.slow
def test_a_terminal_gets_each_frameworks_bar_with_epochs_counted_from_1(tmp_path: Path):
    screen = progress.terminal_screen(run_in_terminal("run", MODEL, "--epochs", str(EPOCHS), "--out", str(tmp_path)))
    keras, lightning = screen.split("[lightning] ", 1)
    assert re.findall(r"^Epoch (\d+)/(\d+)$", keras, re.M) == [(str(e), str(EPOCHS)) for e in range(1, EPOCHS + 1)]
    assert re.search(r"^\d+/\d+ ━+ .*val_loss: ", keras, re.M), keras  # Keras' own bar, in its final state
    assert re.search(rf"^Epoch {EPOCHS}/{EPOCHS} +━+ ", lightning, re.M), lightning  # Lightning's rich bar
    assert "Epoch 0" not in lightning and f"Epoch {EPOCHS + 1}" not in lightning
    assert len(epoch_lines_by_framework("[lightning] " + lightning)["lightning"]) == EPOCHS
    assert_logs_read_as_text(tmp_path / MODEL / "logs")


def test_the_log_is_what_the_terminal_shows_after_the_bars_redraw():
    keras_bar = "Epoch 1/2\n\x1b[1m1/9\x1b[0m ━ - loss: 2.5" + "\b" * 20 + "\r\x1b[1m9/9\x1b[0m ━ - loss: 1.2\n"
    rich_bar = ("\x1b[?25l\r\x1b[2KEpoch 1/2 ━ 0/9 m: 1.0\r\r\n     wrapped"
                "\r\x1b[2K\x1b[1A\x1b[2KEpoch 2/2 ━ 9/9\r\ndone\n")
    assert progress.terminal_screen(keras_bar) == "Epoch 1/2\n9/9 ━ - loss: 1.2\n"
    assert progress.terminal_screen(rich_bar) == "Epoch 2/2 ━ 9/9\ndone\n"


def test_only_known_tensorflow_noise_leaves_the_logs():
    banners = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
               "I0000 00:00:1796049553.456518    2055 port.cc:153] oneDNN custom operations are on. You may see "
               "slightly different numerical results.\n")
    cuda_probe = ("I0000 00:00:1796049553.456883    2055 cudart_stub.cc:31] Could not find cuda drivers on your "
                  "machine, GPU will not be used.\n"
                  "E0000 00:00:1796049555.176411    2055 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA "
                  "error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
    real = "UserWarning: the loss is NaN\nE0000 00:00:1.0    2055 op_kernel.cc:1] OOM when allocating tensor\n"
    assert progress.readable_log(banners + cuda_probe + real, gpus_hidden=True) == real
    assert progress.readable_log(banners + cuda_probe + real, gpus_hidden=False) == cuda_probe + real


def test_long_runs_print_about_fifty_epoch_lines_with_the_first_last_and_stopping_epoch():
    shown = [epoch for epoch in range(1, 501) if progress.shows_epoch(epoch, 500, stopping=False)]
    assert shown == [1, *range(10, 501, 10)]
    assert [epoch for epoch in range(1, 51) if progress.shows_epoch(epoch, 50, stopping=False)] == list(range(1, 51))
    assert [epoch for epoch in range(1, 101) if progress.shows_epoch(epoch, 100, stopping=epoch == 37)] == [
        1, *range(2, 37, 2), 37, *range(38, 101, 2)]
    assert progress.run_header("keras", MODEL, 0, 500, 1).endswith("500 epochs x 1 steps (a line every 10 epochs)")
    assert progress.run_header("lightning", MODEL, 1, 50, 1) == f"[lightning] {MODEL} seed 1: 50 epochs x 1 steps"
