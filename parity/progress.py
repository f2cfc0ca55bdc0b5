"""What a training run shows and leaves behind, the same for both frameworks: per-epoch lines, the TensorBoard layout,
readable log files.

Display: in a pipe or a log file each framework prints one line per epoch (`epoch_line`, Keras' `verbose=2` style),
epochs counted from 1 on both sides; a run of more than MAX_EPOCH_LINES epochs prints about that many
(`shows_epoch`), and its header (`run_header`) says so. On a terminal each draws its usual progress bar (Keras a
finished bar per epoch, Lightning one bar with the epoch lines above it). `parity run --quiet` relays none of it:
the console gets one summary line per framework, the logs (`readable_log`) still every line.

TensorBoard: OUT/MODEL/tensorboard/ holds one run per framework and seed (`tensorboard_run`: keras-seed0,
lightning-seed0, ...), each with the same tags on the same step axis, so one board overlays the curves:
  epoch/loss, epoch/<metric>, epoch/val_loss, epoch/val_<metric>   at step = epoch number, counted from 1
  step/loss                                                       at step = optimizer updates so far (1 after the first)
<metric> is `accuracy` for classification and `mae` for regression; every value is the one report.json holds.
"""

from __future__ import annotations

import math
import re
import sys
import types
from collections.abc import Mapping

from parity import formatting

MAX_EPOCH_LINES = 50  # e.g. the hello-world model's 500 epochs print every 10th: 51 lines, not 500
TENSORBOARD_DIR = "tensorboard"
STEP_LOSS_TAG = "step/loss"

# Lines that TensorFlow's native code writes to stderr when it loads, before its logging is set up (so
# TF_CPP_MIN_LOG_LEVEL cannot hold them back): facts about the build, not about the run.
_LOAD_BANNERS = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*",
    r"I\d{4} [\d:.]+ +\d+ cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized .*",
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.",
)
# With --device cpu the harness hides the GPUs (CUDA_VISIBLE_DEVICES=""), so TensorFlow's failing CUDA probe is
# expected there; on a GPU run the same lines would mean a broken driver, and stay.
_HIDDEN_GPU_PROBES = (
    r"I\d{4} [\d:.]+ +\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used\.",
    r"E\d{4} [\d:.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit: .*",
)
_TERMINAL_CONTROL = re.compile(r"(\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\r\n\b])")


def tensorboard_run(framework: str, seed: int) -> str:
    """The TensorBoard run (sub-directory of OUT/MODEL/tensorboard) of one framework and seed: 'keras-seed0'."""
    return f"{framework}-seed{seed}"


def epoch_keys(metric: str) -> tuple[str, str, str, str]:
    """The per-epoch values of a run, in display order: loss, metric, val_loss, val_metric (report.json's history)."""
    return "loss", metric, "val_loss", f"val_{metric}"


def epoch_tag(key: str) -> str:
    """The TensorBoard tag of a per-epoch value: 'epoch/val_loss'."""
    return f"epoch/{key}"


def epoch_line(epoch: int, epochs: int, seconds: float, values: Mapping[str, float]) -> str:
    """'Epoch 3/10 - 1.2s - loss: 0.4000 - accuracy: 0.8500 - val_loss: ... - val_accuracy: ...' (epoch from 1; a
    value below 0.001 in scientific notation, as Keras prints it)."""
    shown = " - ".join(f"{key}: {formatting.metric(value)}" for key, value in values.items())
    return f"Epoch {epoch}/{epochs} - {seconds:.1f}s - {shown}"


def line_every(epochs: int) -> int:
    """How many epochs one per-epoch line stands for in a run of `epochs` (1 up to MAX_EPOCH_LINES epochs)."""
    return math.ceil(epochs / MAX_EPOCH_LINES)


def shows_epoch(epoch: int, epochs: int, stopping: bool) -> bool:
    """Whether the per-epoch display prints epoch `epoch` (from 1) of `epochs`: every `line_every(epochs)`-th, the
    first, the last, and the one at which the course's callback stops the run (`stopping`)."""
    return epoch % line_every(epochs) == 0 or epoch in (1, epochs) or stopping


def run_header(framework: str, model_id: str, seed: int, epochs: int, steps_per_epoch: int) -> str:
    """The line before each seed's epoch lines: '[keras] c1w1_hello_linear seed 0: 500 epochs x 1 steps (a line every
    10 epochs)'."""
    every = line_every(epochs)
    note = f" (a line every {every} epochs)" if every > 1 else ""
    return f"[{framework}] {model_id} seed {seed}: {epochs} epochs x {steps_per_epoch} steps{note}"


def tensorboard_without_tensorflow() -> None:
    """Make the tensorboard package use its TensorFlow stub in this process, so that writing or reading event files
    never imports TensorFlow (tensorboard.compat.tf imports the real one whenever it is installed). A module named
    tensorboard.compat.notf is tensorboard's own switch to the stub (its no_tensorflow build target). For the torch
    worker and readers only: never in the Keras worker, whose tf.summary needs the real TensorFlow there."""
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def terminal_screen(text: str) -> str:
    """What a terminal shows after printing `text`: carriage returns, backspaces, cursor-up and erase-line codes
    applied (progress bars redraw their lines with them), colour and other escape codes dropped."""
    lines, row, column = [""], 0, 0
    for token in _TERMINAL_CONTROL.split(text):
        if token == "\n":
            row, column = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif token == "\r":
            column = 0
        elif token == "\b":
            column = max(0, column - 1)
        elif token.startswith("\x1b"):
            code = token[-1]
            if code == "A":  # cursor up N lines
                count = token[2:-1]
                row = max(0, row - (int(count) if count.isdigit() else 1))
            elif code == "K":  # erase the whole line (2K) or from the cursor to its end (K, 0K)
                lines[row] = "" if token[2:-1] == "2" else lines[row][:column]
        elif token:
            line = lines[row].ljust(column)
            lines[row] = line[:column] + token + line[column + len(token):]
            column += len(token)
    return "\n".join(line.rstrip() for line in lines)


def readable_log(text: str, gpus_hidden: bool) -> str:
    """A worker's output as a log file: what a terminal would show after it (`terminal_screen`: each progress bar in
    its last state, no escape codes), less TensorFlow's load banners, and less its failing CUDA probe when
    `gpus_hidden` (a --device cpu run)."""
    noise = re.compile("|".join(_LOAD_BANNERS + (_HIDDEN_GPU_PROBES if gpus_hidden else ())))
    return "\n".join(line for line in terminal_screen(text).split("\n") if not noise.fullmatch(line))
