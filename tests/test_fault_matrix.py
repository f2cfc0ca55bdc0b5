"""The input side of the fault matrix (issue 14): every `parity` command against what a user can get wrong.

Each case asserts the exit status (2: a usage or data error the user can fix), the message (stderr ends
in one `error:` line that names the file or flag and the fix, every line is the command's own, no
traceback) and the output directory: exactly as before the command (a previous report untouched, no
staging or work directory left, nothing half-written). Broken data comes from tests/fault_data.py.

The matrix runs in one process (tests/cli_batch.py: `parity.cli.main` per case, as the command runs it)
to keep it fast; `test_batch_matches_the_real_command` shows that a case ends the same in the real
command. A full disk needs the real command: tests/full_disk/sitecustomize.py makes writes into one
directory fail with ENOSPC after N bytes, with no hook in the product.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from cli_helpers import unimplemented_env
from fault_data import write_fault_data
from parity.catalog import CATALOG

REPO = Path(__file__).resolve().parents[1]
FULL_DISK_HOOK = Path(__file__).resolve().parent / "full_disk"
MARKER = "PARITY_TEST_PROCESS_MARK"  # in the environment of the commands run here, found again in their workers
# Commands that take --threads and --device: one thread on the CPU unless the case sets them.
WITH_COMMON = ("list", "check", "run", "lrsweep", "lockstep", "bench", "predict", "inside")
# Data sets whose loader the matrix's process lacks (tests/unimplemented/sitecustomize.py), so that their models are
# not implemented there: the not-implemented cases need one, and every course model has its loader.
UNLOADED = ("rock-paper-scissors",)
COMMANDS = ("run", "check", "lockstep", "bench", "report", "differences", "lrsweep", "predict", "inside", "explain",
            "list")


@dataclass(frozen=True)
class Case:
    """`parity ARGS` must end with status `code` and a last stderr line matching `message` (a regex, searched,
    case-insensitive). In ARGS, {data} is the fault data, {out} the case's output directory (holding earlier
    outputs), {runs} fake saved runs, {readonly} a read-only directory in {out} and {blocked} a path under a
    regular file in {out}."""

    name: str
    args: tuple[str, ...]
    message: str
    code: int = 2
    xfail: str | None = None  # a known fault in a file of another engineer (the test fails until it is fixed)

    @property
    def command(self) -> str:
        return self.args[0]


def _case(name: str, command: str, *args: str, message: str, code: int = 2, xfail: str | None = None) -> Case:
    return Case(f"{command}-{name}", (command, *args), message, code, xfail)


def _rows(rows: list[tuple[str, str, str]], *names: str) -> list[tuple[str, str, str]]:
    """The rows of `names`, for the commands that repeat a few of the data faults `run` goes through."""
    return [row for name in names for row in rows if row[0] == name]


def _data_cases(command: str, model: str, rows: list[tuple[str, str, str]], *extra: str) -> list[Case]:
    """One case per (name, data path under {data}, message) with `--data-dir`."""
    return [_case(name, command, model, "--data-dir", f"{{data}}/{path}", *extra, message=message)
            for name, path, message in rows]


IDX_ROWS = [  # Fashion-MNIST IDX files: missing, empty, truncated, corrupt, wrong shape, labels out of range
    ("idx-dir-missing", "no-such-dir", r"data directory .*no-such-dir does not exist.*train-images-idx3-ubyte\.gz"),
    ("idx-dir-is-a-file", "idx-a-file",
     r"data directory .*idx-a-file is a file, not a directory; pass the directory holding"),
    ("idx-missing-file", "idx-missing-file", r"idx-missing-file lacks t10k-labels-idx1-ubyte\.gz.*--data-dir"),
    ("idx-empty-file", "idx-empty-file",
     r"train-images-idx3-ubyte\.gz: not an IDX images file: only 0 bytes; replace it with a complete copy"),
    ("idx-empty-gzip", "idx-empty-gzip",
     r"train-images-idx3-ubyte\.gz: not an IDX images file: only 0 bytes.*replace it"),
    ("idx-truncated-gz", "idx-truncated-gz",
     r"train-images-idx3-ubyte\.gz: corrupt or truncated gzip.*replace it with a complete copy"),
    ("idx-not-gzip", "idx-not-gzip",
     r"train-images-idx3-ubyte\.gz: corrupt or truncated gzip.*replace it with a complete copy"),
    ("idx-wrong-magic", "idx-wrong-magic",
     r"train-labels-idx1-ubyte\.gz: not an IDX labels file: magic number 2051 is that of IDX images; check that "
     r"the file names are not swapped"),
    ("idx-wrong-count", "idx-wrong-count",
     r"train-images-idx3-ubyte\.gz: truncated IDX images file.*\(30, 28, 28\).*replace it"),
    ("idx-label-count", "idx-label-count", r"train-labels-idx1-ubyte\.gz: 19 labels for 20 images.*same split"),
    ("idx-32x32-images", "idx-32x32",
     r"train-images-idx3-ubyte\.gz: images are 32x32 pixels, but c1w2_fmnist_dnn expects 28x28.*resize them to 28x28"),
    ("idx-rgb-images", "idx-rgb",
     r"train-images-idx3-ubyte\.gz: not an IDX images file: 4 dimensions, expected 3 \(count, rows, cols\).*"
                                  r"only single-channel \(grayscale\) images are supported"),
    ("idx-label-10", "idx-label-10", r"t10k-labels-idx1-ubyte\.gz: label 10 is out of range.*10 classes.*0\.\.9"),
    ("idx-zero-records", "idx-zero-records",
     r"train-images-idx3-ubyte\.gz: no images \(the header gives 0 records\); the training split needs at least one"),
    ("idx-zero-val", "idx-zero-val",
     r"t10k-images-idx3-ubyte\.gz: no images \(the header gives 0 records\); the validation split needs at least one"),
]
SARCASM_ROWS = [  # sarcasm.json: not JSON, empty, wrong shape, wrong types, labels out of range
    ("json-invalid", "sarcasm-invalid-json",
     r"sarcasm\.json: not a readable JSON file.*expected the course's sarcasm\.json"),
    ("json-empty-file", "sarcasm-empty-file", r"sarcasm\.json: not a readable JSON file.*expected"),
    ("json-not-utf8", "sarcasm-not-utf8", r"sarcasm\.json: not a readable JSON file.*utf-8"),
    ("json-not-a-list", "sarcasm-not-a-list",
     r"sarcasm\.json: expected a non-empty JSON list of headline records, got a JSON dict; give the course's"),
    ("json-empty-list", "sarcasm-empty-list",
     r"sarcasm\.json: expected a non-empty JSON list of headline records, got an empty list \(no records\)"),
    ("json-missing-key", "sarcasm-missing-key",
     r"sarcasm\.json: record 5 \(counting from 0\) lacks the key 'headline'.*fix or remove that record"),
    ("json-wrong-type", "sarcasm-wrong-type",
     r"sarcasm\.json: record 5 \(counting from 0\) has no string 'headline'.*fix or remove that record"),
    ("json-label-2", "sarcasm-label-2", r"sarcasm\.json: record 5 \(counting from 0\) has 'is_sarcastic' 2, outside "
                                       r"the classes of the binary model: expected 0 or 1.*fix or remove that record"),
    ("json-label-text", "sarcasm-label-text", r"sarcasm\.json: record 5 \(counting from 0\) has 'is_sarcastic' '1'.*"
                                             r"expected 0 or 1.*fix or remove that record"),
    ("json-one-record", "sarcasm-one-record", r"sarcasm\.json: too few records \(1\).*supply at least 2"),
    ("json-missing", "no-such-dir", r"data directory .*no-such-dir does not exist.*sarcasm\.json"),
]
CSV_ROWS = [  # Sunspots-style CSV series: empty, header only, not a number, short row, too short, gaps
    ("csv-empty", "csv-empty.csv", r"csv-empty\.csv: empty file; expected a header row"),
    ("csv-header-only", "csv-header-only.csv",
     r"csv-header-only\.csv: no rows; expected a header row and one row per step"),
    ("csv-not-a-number", "csv-not-a-number.csv",
     r"csv-not-a-number\.csv, line 51: .*'n/a' is not a number; fix or remove the row"),
    ("csv-short-row", "csv-short-row.csv", r"csv-short-row\.csv, line 31: 2 columns.*fix or remove the row"),
    ("csv-shorter-than-window", "csv-shorter-than-window.csv",
     r"csv-shorter-than-window\.csv: 20 steps.*windows of 30 steps.*at least \d+ steps"),
    ("csv-time-gap", "csv-date-gap.csv", r"csv-date-gap\.csv: time column.*2 missing.*add the missing rows"),
    ("csv-binary", "csv-binary.csv", r"csv-binary\.csv: not a readable CSV file"),
    ("csv-two-files", "csv-two-files", r"csv-two-files: 2 \.csv files \(a\.csv, b\.csv\).*pass the CSV file itself"),
    ("csv-missing", "no-such.csv", r"no-such\.csv does not exist; pass the CSV file"),
]
IMAGE_ROWS = [  # class folders and zips (the loader is image_folder.py: the CLI outcome only)
    ("images-not-a-zip", "images-not-a-zip.zip", r"images-not-a-zip\.zip: not a readable zip archive.*replace it"),
    ("images-truncated-zip", "images-truncated.zip", r"images-truncated\.zip: not a readable zip archive.*replace it"),
    ("images-empty-class", "images-empty-class",
     r"images-empty-class:/?sad: empty class folder.*add its images or remove"),
    ("images-unreadable-class", "images-unreadable-class",
     r"images-unreadable-class:/?sad: no readable image.*add images"),
    ("images-one-class", "images-one-class", r"images-one-class.*1 class folders \(happy\).*2 classes"),
    ("images-no-classes", "images-no-classes", r"images-no-classes: no class folders of images found"),
    ("images-missing", "no-such-dir", r"data directory .*no-such-dir does not exist"),
]
USER_SERIES_ROWS = [  # a user's own CSV for a generated-series model
    ("series-three-columns", "user-series-three-columns.csv",
     r"3 columns \(t, a, b\); name the series column: pass --series-column"),
    ("series-too-short", "user-series-short.csv",
     r"user-series-short\.csv: 10 steps .*needs a series of at least \d+ steps"),
    ("series-not-a-number", "user-series-text.csv",
     r"user-series-text\.csv, line 9: 'value' value 'high' is not a number"),
]

FLAG_CASES = [
    # run
    _case("bad-mode", "run", "c1w1_hello_linear", "--mode", "loose",
          message=r"argument --mode: invalid choice: 'loose'"),
    _case("bad-device", "run", "c1w1_hello_linear", "--device", "tpu",
          message=r"argument --device: invalid choice: 'tpu'"),
    _case("bad-threads", "run", "c1w1_hello_linear", "--threads", "0",
          message=r"argument --threads: must be a positive"),
    _case("bad-native", "run", "c1w1_hello_linear", "--native", "nope",
          message=r"argument --native: invalid choice: 'nope'"),
    _case("bad-early-stopping-patience", "run", "c1w1_hello_linear", "--early-stopping", "val_loss:x",
          message=r"argument --early-stopping: PATIENCE must be a whole number.*'val_loss:x'"),
    _case("bad-early-stopping-shape", "run", "c1w1_hello_linear", "--early-stopping", ":2",
          message=r"argument --early-stopping: expected METRIC\[:PATIENCE\[:MIN_DELTA\]\], e\.g\. val_loss:2"),
    _case("bad-early-stopping-negative", "run", "c1w1_hello_linear", "--early-stopping", "val_loss:-1",
          message=r"argument --early-stopping: PATIENCE and MIN_DELTA must be 0 or more"),
    _case("bad-checkpoint", "run", "c1w1_hello_linear", "--checkpoint", "worst",
          message=r"argument --checkpoint: invalid choice: 'worst'"),
    _case("bad-series", "run", "c4w2_ts_dnn", "--series", "weekly",
          message=r"argument --series: invalid choice: 'weekly'"),
    _case("series-flag-on-image-model", "run", "c1w2_fmnist_dnn", "--synthetic", "--series-column", "x",
          message=r"c1w2_fmnist_dnn is not a series model.*leave them out"),
    _case("variant-on-csv-series", "run", "c4w4_sunspots_dnn", "--series", "lab",
          message=r"c4w4_sunspots_dnn: sunspots is one CSV series with no variants; leave out the variant"),
    _case("columns-with-synthetic", "run", "c4w4_sunspots_dnn", "--synthetic", "--series-column", "2",
          message=r"synthetic stand-in reads no file; leave out the columns"),
    _case("bad-part", "run", "--part", "9", message=r"there is no course part 9; the parts are"),
    _case("unknown-model", "run", "c9w9_nope", message=r"unknown model id 'c9w9_nope'"),
    _case("nothing-to-run", "run", message=r"`parity run` got nothing: name one or more model ids"),
    # check
    _case("bad-device", "check", "c1w1_hello_linear", "--device", "tpu",
          message=r"argument --device: invalid choice: 'tpu'"),
    _case("bad-threads", "check", "--threads", "many",
          message=r"argument --threads: expected a whole number, got 'many'"),
    _case("unknown-model", "check", "c9w9_nope", message=r"unknown model id 'c9w9_nope'.*c1w2_fmnist_dnn"),
    _case("not-implemented", "check", "c2w4_rps_cnn",
          message=r"c2w4_rps_cnn is not implemented yet \(no loader for its data set 'rock-paper-scissors'\); "
                  r"`parity list`"),
    _case("trains-nothing", "check", "c4w1_stat_forecast",
          message=r"c4w1_stat_forecast trains no network.*`parity list`"),
    # lockstep
    _case("bad-steps", "lockstep", "c1w1_hello_linear", "--steps", "0",
          message=r"argument --steps: must be a positive whole number, got 0"),
    _case("bad-optimizer", "lockstep", "c1w1_hello_linear", "--optimizer", "lion",
          message=r"argument --optimizer: invalid choice: 'lion'"),
    _case("bad-mode", "lockstep", "c1w1_hello_linear", "--mode", "loose",
          message=r"argument --mode: invalid choice: 'loose'"),
    _case("bad-tolerance", "lockstep", "c1w1_hello_linear", "--tolerance", "-1",
          message=r"argument --tolerance: must be a positive number, got -1"),
    _case("bad-momentum", "lockstep", "c1w1_hello_linear", "--momentum", "high",
          message=r"argument --momentum: invalid float value: 'high'"),
    _case("unknown-model", "lockstep", "c9w9_nope", message=r"unknown model id 'c9w9_nope'"),
    # bench
    _case("bad-variant", "bench", "c1w1_hello_linear", "--variant", "turbo",
          message=r"unknown variant 'turbo'; known variants: eager"),
    _case("bad-input", "bench", "c1w1_hello_linear", "--input", "fast",
          message=r"argument --input: invalid choice: 'fast'"),
    _case("bad-scope", "bench", "c1w1_hello_linear", "--scope", "gpu",
          message=r"argument --scope: invalid choice: 'gpu'"),
    _case("bad-windows", "bench", "c1w1_hello_linear", "--windows", "1",
          message=r"--windows 1: a median needs at least \d+ timed windows"),
    _case("bad-malloc", "bench", "c1w1_hello_linear", "--malloc", "jemalloc",
          message=r"argument --malloc: invalid choice: 'jemalloc'"),
    _case("data-and-synthetic", "bench", "c1w1_hello_linear", "--synthetic", "--data-dir", "x",
          message=r"argument --data-dir: not allowed with argument --synthetic"),
    _case("bad-batch-size", "bench", "c1w1_hello_linear", "--batch-size", "-8",
          message=r"argument --batch-size: must be a positive whole number, got -8"),
    _case("unknown-model", "bench", "c9w9_nope", message=r"unknown model id 'c9w9_nope'"),
    # report
    _case("bad-margin-metric", "report", "{out}", "--margin", "loss=1",
          message=r"argument --margin: unknown metric 'loss'; use one of accuracy, mae"),
    _case("bad-margin-value", "report", "{out}", "--margin", "accuracy=-0.1",
          message=r"argument --margin: must be a positive number, got -0\.1"),
    _case("bad-margin-text", "report", "{out}", "--margin", "wide",
          message=r"argument --margin: expected a number, got 'wide'"),
    _case("no-such-dir", "report", "{data}/no-such-dir", message=r"no-such-dir.*(does not exist|no such)"),
    _case("no-reports", "report", "{data}/idx-good", message=r"no usable run report \(report\.json\) or bench result"),
    _case("corrupt-report", "report", "{runs}/corrupt-report", message=r"no usable run report.*corrupt-report"),
    # differences
    _case("bad-steps", "differences", "--steps", "0",
          message=r"argument --steps: must be a positive whole number, got 0"),
    _case("bad-threads", "differences", "--threads", "-2",
          message=r"argument --threads: must be a positive whole number, got -2"),
    # lrsweep
    _case("no-sweep", "lrsweep", "c1w1_hello_linear",
          message=r"c1w1_hello_linear has no learning-rate sweep in the course"),
    _case("bad-epochs", "lrsweep", "c4w2_ts_dnn", "--epochs", "none",
          message=r"argument --epochs: expected a whole number, got 'none'"),
    _case("bad-series", "lrsweep", "c4w2_ts_dnn", "--series", "weekly",
          message=r"argument --series: invalid choice: 'weekly'"),
    _case("bad-seed", "lrsweep", "c4w2_ts_dnn", "--seed", "x", message=r"argument --seed: invalid int value: 'x'"),
    _case("unknown-model", "lrsweep", "c9w9_nope", message=r"unknown model id 'c9w9_nope'"),
    # predict (saved runs faked under {runs}: only the checks before any worker starts)
    _case("no-run-dir", "predict", "{runs}/missing", "x.png",
          message=r"missing: no such run directory; give OUT/MODEL of a `parity run MODEL --save` run"),
    _case("nothing-saved", "predict", "{runs}/nothing-saved", "x.png",
          message=r"nothing-saved holds no saved models; rerun with --save"),
    _case("corrupt-inputs-record", "predict", "{runs}/corrupt-inputs", "x.png",
          message=r"inputs\.json: not a readable inputs record.*rerun .*--save"),
    _case("seed-not-saved", "predict", "{runs}/image-run", "--seed", "3", "x.png",
          message=r"no saved models of seed 3 \(saved seeds: 0\)"),
    _case("image-missing", "predict", "{runs}/image-run", "{data}/no-such.png",
          message=r"no-such\.png: cannot read the image file.*give a PNG or JPEG"),
    _case("image-not-an-image", "predict", "{runs}/image-run", "{data}/csv-good.csv",
          message=r"csv-good\.csv: not a decodable image.*give a PNG or JPEG"),
    _case("image-corrupt-png", "predict", "{runs}/image-run", "{data}/images-unreadable-class/sad/broken.png",
          message=r"broken\.png: not a decodable image.*give a PNG or JPEG"),
    _case("series-window-short", "predict", "{runs}/series-run", "1,2,3",
          message=r"'1,2,3': 3 values, the model's window is 20; give exactly 20 finite numbers"),
    _case("series-window-text", "predict", "{runs}/series-run", "1,2,x", message=r"'x'.*not a number|numbers"),
    # inside
    _case("no-run-dir", "inside", "{runs}/missing", message=r"missing: no such run directory"),
    _case("nothing-saved", "inside", "{runs}/nothing-saved",
          message=r"nothing-saved holds no saved models; rerun with --save"),
    _case("image-flag-missing", "inside", "{runs}/image-run",
          message=r"c1w2_fmnist_dnn is an image model: give --image PATH"),
    _case("bad-device", "inside", "{runs}/image-run", "--device", "tpu",
          message=r"argument --device: invalid choice: 'tpu'"),
    # explain
    _case("unknown-model", "explain", "c9w9_nope", message=r"unknown model id 'c9w9_nope'"),
    _case("no-model", "explain", message=r"the following arguments are required: MODEL"),
    # list
    _case("bad-device", "list", "--device", "tpu", message=r"argument --device: invalid choice: 'tpu'"),
    _case("bad-threads", "list", "--threads", "0",
          message=r"argument --threads: must be a positive whole number, got 0"),
    _case("extra-argument", "list", "c1w1_hello_linear", message=r"unrecognized arguments: c1w1_hello_linear"),
]

DATA_CASES = [
    *_data_cases("run", "c1w2_fmnist_dnn", IDX_ROWS),
    *_data_cases("run", "c3w2_sarcasm_embed_gap", SARCASM_ROWS),
    *_data_cases("run", "c4w4_sunspots_dnn", CSV_ROWS),
    *_data_cases("run", "c4w4_sunspots_dnn", [("csv-missing-column", "csv-good.csv",
                                               r"csv-good\.csv: no column 'rain' in the header")],
                 "--series-column", "rain"),
    *_data_cases("run", "c4w2_ts_dnn", USER_SERIES_ROWS),
    *_data_cases("run", "c1w4_happy_sad", IMAGE_ROWS),
    *_data_cases("lockstep", "c1w2_fmnist_dnn", _rows(IDX_ROWS, "idx-truncated-gz", "idx-label-10")),
    *_data_cases("lockstep", "c3w3_sarcasm_conv1d", _rows(SARCASM_ROWS, "json-label-2")),
    *_data_cases("bench", "c1w2_fmnist_dnn", _rows(IDX_ROWS, "idx-wrong-magic", "idx-rgb-images")),
    *_data_cases("bench", "c4w4_sunspots_dnn", _rows(CSV_ROWS, "csv-not-a-number")),
    *_data_cases("lrsweep", "c4w2_ts_dnn", USER_SERIES_ROWS),
    *_data_cases("lrsweep", "c4w4_sunspots_dnn", _rows(CSV_ROWS, "csv-shorter-than-window")),
]
READ_ONLY = (r"cannot write in .*locked \((permission denied|operation not permitted|read-only file system)\); "
             "make it writable")
UNDER_A_FILE = r"a-file is a file, not a directory; choose another output location"
OUTPUT_CASES = [  # an output place that cannot be written: refused before any work, named with its flag
    _case("out-read-only", "run", "c1w1_hello_linear", "--out", "{readonly}", message=r"--out .*locked: " + READ_ONLY),
    _case("out-under-a-file", "run", "c1w1_hello_linear", "--out", "{blocked}",
          message=r"--out .*sub: .*" + UNDER_A_FILE),
    _case("out-is-a-file", "run", "c1w1_hello_linear", "--out", "{out}/summary.md",
          message=r"--out .*summary\.md: is a file, not a directory; choose another output directory"),
    _case("out-read-only", "lockstep", "c1w1_hello_linear", "--out", "{readonly}",
          message=r"--out .*locked: " + READ_ONLY),
    _case("out-under-a-file", "lrsweep", "c4w2_ts_dnn", "--out", "{blocked}",
          message=r"--out .*sub: .*" + UNDER_A_FILE),
    _case("out-read-only", "lrsweep", "c4w2_ts_dnn", "--out", "{readonly}", message=r"--out .*locked: " + READ_ONLY),
    _case("out-read-only", "bench", "c1w2_fmnist_dnn", "--synthetic", "--out", "{readonly}",
          message=r"--out .*locked: " + READ_ONLY),
    _case("markdown-under-a-file", "bench", "c1w1_hello_linear", "--synthetic", "--markdown", "{blocked}/bench.md",
          message=r"--markdown .*bench\.md: .*" + UNDER_A_FILE),
    _case("out-read-only", "report", "{runs}", "--out", "{readonly}/summary.md",
          message=r"--out .*summary\.md: " + READ_ONLY),
    _case("out-is-a-directory", "report", "{runs}", "--out", "{out}",
          message=r"--out .*: is a directory; give a file path, e.g\. .*summary\.md"),
    _case("write-under-a-file", "differences", "--write", "{blocked}/differences.md",
          message=r"--write .*differences\.md: .*" + UNDER_A_FILE),
    _case("write-read-only", "differences", "--write", "{readonly}/differences.md",
          message=r"--write .*differences\.md: " + READ_ONLY),
    _case("out-read-only", "inside", "{runs}/image-run", "--image", "x.png", "--out", "{readonly}",
          message=r"--out .*locked: " + READ_ONLY),
]
CASES = FLAG_CASES + DATA_CASES + OUTPUT_CASES


def _command_line(args: list[str]) -> list[str]:
    if args and args[0] in WITH_COMMON:
        args = [*args, *(() if "--threads" in args else ("--threads", "1")),
                *(() if "--device" in args else ("--device", "cpu"))]
    return args


def _fill(case: Case, data: Path, out: Path, runs: Path) -> list[str]:
    command = [arg.format(data=data, out=out, runs=runs, readonly=out / "locked", blocked=out / "a-file" / "sub")
               for arg in case.args]
    if case.command in ("run", "lockstep", "lrsweep", "bench") and "--out" not in command:
        command += ["--out", str(out)]
    return _command_line(command)


def _models_in(case: Case) -> list[str]:
    return [arg for arg in case.args if re.fullmatch(r"c\d+w\d+_\w+", arg)]


def _previous_outputs(out: Path, models: list[str]) -> Path:
    """OUT as an earlier command left it: a report per model, a summary and a bench result."""
    for model in models or ["c1w1_hello_linear"]:
        (out / model).mkdir(parents=True, exist_ok=True)
        (out / model / "report.json").write_text(json.dumps({"model": model, "previous": True}))
        (out / model / "report.md").write_text(f"# {model}: the previous report\n")
    (out / "summary.md").write_text("# the previous summary\n")
    (out / "bench.json").write_text("[]\n")
    (out / "a-file").write_text("a regular file where a directory is expected\n")
    (out / "locked").mkdir()
    (out / "locked" / "summary.md").write_text("# the previous summary in a read-only directory\n")
    return out


@contextlib.contextmanager
def read_only(directories: list[Path]) -> Iterator[bool]:
    """`directories` made read-only: chmod 555, or for root (whom permissions do not stop) the immutable attribute
    (chattr +i); yields whether that worked (the first of them refuses a new file)."""
    root = os.geteuid() == 0
    chattr = shutil.which("chattr")
    for directory in directories:
        if not root:
            directory.chmod(0o555)
        elif chattr:
            subprocess.run([chattr, "+i", str(directory)], capture_output=True)
    try:
        yield bool(directories) and not _accepts_files(directories[0])
    finally:
        for directory in directories:
            if not root:
                directory.chmod(0o755)
            elif chattr:
                subprocess.run([chattr, "-i", str(directory)], capture_output=True)


def _accepts_files(directory: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def tree(directory: Path) -> dict[str, str]:
    """Every file and folder under `directory` (hidden ones too) with its content's sha256 ('dir' for a folder)."""
    if not directory.exists():
        return {}
    return {str(path.relative_to(directory)): "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*"))}


def assert_one_line_error(code: int, stderr: str, expected_code: int, message: str) -> None:
    """Status `expected_code`; stderr is the command's own lines ending in one error line that matches `message`."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    strangers = [line for line in lines if not line.startswith("parity")]
    assert not strangers, f"lines that are not the command's own: {strangers}"
    errors = [line for line in lines if re.match(r"parity( \w+)?: error:", line)]
    assert errors == [lines[-1]], f"expected exactly one error line, last: {lines}"
    assert re.search(message, lines[-1], re.IGNORECASE), f"{lines[-1]!r} does not match {message!r}"
    assert code == expected_code, f"status {code}, expected {expected_code}: {lines[-1]}"


def write_fake_runs(root: Path) -> Path:
    """RUN_DIRs of `parity run --save` as far as the checks before any worker read them: image and series runs
    (empty model files beside a valid inputs record), a run without models, one with a corrupt record, and an OUT
    whose only report is corrupt."""
    image = {"model": "c1w2_fmnist_dnn", "task": "multiclass", "input_shape": [28, 28], "text": None,
             "image": {"size": [28, 28], "channels": 1, "color_mode": "grayscale", "scale": 255.0, "divide": True,
                       "resize": "bilinear"}, "series": None, "classes": [str(i) for i in range(10)]}
    series = {"model": "c4w2_ts_dnn", "task": "regression", "input_shape": [20], "text": None, "image": None,
              "series": {"window": 20, "expand_dims": False}, "classes": None}
    for name, record in (("image-run", json.dumps(image)), ("series-run", json.dumps(series)),
                         ("corrupt-inputs", '{"model": "c1w2_fmnist_dnn", "ima')):
        models = root / name / "models"
        models.mkdir(parents=True)
        (models / "keras-seed0.keras").write_bytes(b"")
        (models / "lightning-seed0.pt").write_bytes(b"")
        (models / "inputs.json").write_text(record)
    (root / "nothing-saved").mkdir()
    (root / "nothing-saved" / "report.json").write_text("{}")
    (root / "corrupt-report" / "c1w1_hello_linear").mkdir(parents=True)
    (root / "corrupt-report" / "c1w1_hello_linear" / "report.json").write_text('{"model": "c1w1_hel')
    return root


@pytest.fixture(scope="module")
def fault_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fault_data(tmp_path_factory.mktemp("fault-data"))


@pytest.fixture(scope="module")
def matrix(fault_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every case run once (tests/cli_batch.py), each with its own OUT: {name: {code, stderr, out, before, after}}."""
    root = tmp_path_factory.mktemp("matrix")
    runs = write_fake_runs(root / "runs")
    lines, outs, before = {}, {}, {}
    for case in CASES:
        outs[case.name] = _previous_outputs(root / "out" / case.name, _models_in(case))
        before[case.name] = tree(outs[case.name])
        lines[case.name] = _fill(case, fault_data, outs[case.name], runs)
    (root / "cases.json").write_text(json.dumps(lines))
    locked = [outs[case.name] / "locked" for case in CASES if any("{readonly}" in arg for arg in case.args)]
    marker = f"fault-matrix-{os.getpid()}-{root.name}"
    with read_only(locked) as locked_worked:
        subprocess.run([sys.executable, str(Path(__file__).with_name("cli_batch.py")), str(root / "cases.json"),
                        str(root / "results.json")], cwd=REPO,
                       env={**os.environ, **unimplemented_env(*UNLOADED), MARKER: marker}, check=True, timeout=600)
    results = json.loads((root / "results.json").read_text())
    left = processes_marked(marker)
    return {name: {**results[name], "before": before[name], "after": tree(outs[name]), "read_only": locked_worked,
                   "processes_left": left} for name in lines}


def test_no_case_leaves_a_process(matrix: dict[str, dict]) -> None:
    if not Path("/proc/self/environ").exists():
        pytest.skip("no /proc to read the process table from")
    assert not next(iter(matrix.values()))["processes_left"]


def test_every_command_has_cases() -> None:
    counts = Counter(case.command for case in CASES)
    assert set(counts) == set(COMMANDS), set(COMMANDS) ^ set(counts)
    assert len({case.name for case in CASES}) == len(CASES), "case names must be unique"


def test_only_the_not_implemented_cases_use_a_model_without_its_loader() -> None:
    users = {case.name for case in CASES for model in _models_in(case)
             if model in CATALOG and CATALOG[model].dataset in UNLOADED}
    assert users == {"check-not-implemented"}


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name, marks=[
    pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []) for case in CASES])
def test_fault(case: Case, matrix: dict[str, dict]) -> None:
    result = matrix[case.name]
    if any("{readonly}" in arg for arg in case.args) and not result["read_only"]:
        pytest.skip("no way to make a directory read-only here: root, and chattr +i failed (the cases with an output "
                    "path under a regular file still cover an unwritable output)")
    assert_one_line_error(result["code"], result["stderr"], case.code, case.message)
    assert result["after"] == result["before"], "the output directory changed"


def processes_marked(marker: str) -> list[str]:
    """The command lines of live processes whose environment holds MARKER=`marker` (the command's own and every
    worker it started inherit it), so that the check ignores other tests' processes on a shared machine."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if needle in environ.read_bytes().split(b"\0"):
                found.append((environ.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return found


def _real_command(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`parity ARGS` in its own process; afterwards no process it started may be left."""
    marker = f"fault-matrix-{os.getpid()}-{os.urandom(4).hex()}"
    result = subprocess.run([sys.executable, "-m", "parity.cli", *_command_line(args)], cwd=REPO,
                            env={**os.environ, **(env or {}), MARKER: marker}, capture_output=True, text=True,
                            timeout=300)
    assert not processes_marked(marker), f"processes left behind: {processes_marked(marker)}"
    return result


@pytest.mark.parametrize("name", ["run-idx-truncated-gz", "run-bad-mode", "report-corrupt-report"])
def test_batch_matches_the_real_command(name: str, matrix: dict[str, dict], fault_data: Path, tmp_path: Path) -> None:
    """The batch runs a case as the command does: the same status and the same stderr, paths aside."""
    case = next(case for case in CASES if case.name == name)
    runs = write_fake_runs(tmp_path / "runs")
    out = _previous_outputs(tmp_path / "out", _models_in(case))
    real = _real_command(_fill(case, fault_data, out, runs))
    batch = matrix[name]
    assert real.returncode == batch["code"]
    strip = lambda text: re.sub(r"/\S+/", "/", text)  # noqa: E731 - the two runs use different temporary paths
    assert strip(real.stderr) == strip(batch["stderr"])


def bench_row() -> dict:
    """One `parity bench --out` row, as bench.json holds it: something `parity report` summarizes."""
    from parity import provenance
    from parity.align import Alignment

    versions = {key: "1.0" for key in provenance.VERSION_KEYS}
    data = {"id": "stand-in", "source": "synthetic", "location": "generated", "sha256": "b" * 64,
            "hashed": "parameters"}
    workers = {fw: {"device": "cpu (x86_64)", "versions": versions} for fw in ("keras", "lightning")}

    def framework(median: float) -> dict:
        samples = {"median": median, "min": median * 0.9, "max": median * 1.1}
        return {"samples_per_s": samples, "steps_per_s": {k: v / 32 for k, v in samples.items()},
                "peak_mem_mb": None, "host_rss_mb": 800.0}

    return {"model": "c1w2_fmnist_dnn", "device": "cpu", "variant": "eager", "scope": "end_to_end",
            "trainer": "framework", "batch_size": 32, "frameworks": {"keras": framework(1000.0),
                                                                     "lightning": framework(1200.0)},
            "throughput_ratio": 1.2, "settings": {"windows": 5, "window_steps": 20, "mode": "native"},
            "environment": {"python": "3.11"},
            "provenance": provenance.build_provenance(data, Alignment.from_mode("native"), workers, threads=1,
                                                      course_epochs=5, run_epochs=None, forward_check=None)}


@pytest.fixture(scope="module")
def previous_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT holding a real report (`parity run c4w1_stat_forecast`: statistical forecasts, no worker, ~2 s), a bench
    result and a summary of them (`parity report`)."""
    out = tmp_path_factory.mktemp("previous") / "out"
    result = _real_command(["run", "c4w1_stat_forecast", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    (out / "bench").mkdir()
    (out / "bench" / "bench.json").write_text(json.dumps([bench_row()]))
    result = _real_command(["report", str(out), "--out", str(out / "summary.md")])
    assert result.returncode == 0, result.stderr
    return out


def full_disk(directory: Path, after_bytes: int = 0, names: str = "*") -> dict[str, str]:
    """The environment that gives the command a full disk in `directory` (tests/full_disk/sitecustomize.py)."""
    path = os.pathsep.join(filter(None, (str(FULL_DISK_HOOK), os.environ.get("PYTHONPATH"))))
    return {"PYTHONPATH": path, "PARITY_TEST_FULL_DISK": str(directory),
            "PARITY_TEST_FULL_DISK_BYTES": str(after_bytes), "PARITY_TEST_FULL_DISK_NAMES": names}


JOBS_KEEPS_PARTIAL_DATA = ("parity/jobs.py work_directory: on failure it keeps OUT/.work-MODEL-*/data with the "
                           "partial .npy files (it removes a data directory only once its manifest exists)")
FULL_DISK_CASES = [  # (name, ARGS, bytes written before the disk is full, names of the files that fill it, xfail)
    ("run-from-the-first-byte", ("run", "c4w1_stat_forecast"), 0, "*", None),
    ("run-during-the-plots", ("run", "c4w1_stat_forecast"), 100_000, "*", None),  # report.json, .md fit; the png not
    ("run-while-saving-the-data", ("run", "c1w2_fmnist_dnn", "--synthetic", "--epochs", "1"), 0, "*",
     JOBS_KEEPS_PARTIAL_DATA),
    ("report-summary", ("report", "{out}", "--out", "{out}/summary.md"), 0, "*", None),
    ("report-summary-plots", ("report", "{out}", "--out", "{out}/summary.md"), 0, "*.png*", None),
    ("report-summary-page", ("report", "{out}", "--out", "{out}/summary.md"), 0, "*.html*", None),
]


def _full_disk_params() -> list:
    return [pytest.param(args, after_bytes, names, id=name,
                         marks=[pytest.mark.xfail(strict=True, reason=xfail)] if xfail else [])
            for name, args, after_bytes, names, xfail in FULL_DISK_CASES]


@pytest.mark.parametrize("args, after_bytes, names", _full_disk_params())
def test_full_disk(args: tuple[str, ...], after_bytes: int, names: str, previous_report: Path, tmp_path: Path) -> None:
    """ENOSPC while writing: one line naming the directory and "no space left", status 2, OUT as it was."""
    out = tmp_path / "out"
    shutil.copytree(previous_report, out)
    before = tree(out)
    command = [arg.format(out=out) for arg in args] + (["--out", str(out)] if args[0] == "run" else [])
    result = _real_command(command, env=full_disk(out, after_bytes, names))
    assert_one_line_error(result.returncode, result.stderr, 2,
                          rf"^parity: error: {re.escape(str(out))}: no space left on device \(writing [^)]+\); "
                          "free some space there or choose another output location")
    assert tree(out) == before, "the output directory changed"


def test_full_disk_hook_fails_writes_as_a_full_disk_does(tmp_path: Path) -> None:
    """The simulation itself: under the directory, the first write past the budget raises ENOSPC; elsewhere, and in
    the processes the command starts, writes go through."""
    full = tmp_path / "full"
    full.mkdir()
    child = f"open({str(full / 'c.txt')!r}, 'w').write('y' * 50)"
    script = "\n".join([
        "import pathlib, subprocess, sys",
        f"full = pathlib.Path({str(full)!r})",
        "(full.parent / 'elsewhere.txt').write_text('x' * 100)",
        "(full / 'a.txt').write_text('x' * 10)",
        "try:",
        "    (full / 'b.txt').write_text('x' * 10)",
        "except OSError as error:",
        "    print(error.errno)",
        f"subprocess.run([sys.executable, '-c', {child!r}], check=True)",
    ])
    result = subprocess.run([sys.executable, "-c", script], env={**os.environ, **full_disk(full, 15)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(errno.ENOSPC)
    assert (full / "a.txt").read_text() == "x" * 10
    assert (full / "b.txt").read_text() == ""  # opened, nothing written: the disk was full
    assert (full / "c.txt").read_text() == "y" * 50  # a process the command starts writes normally
    assert (tmp_path / "elsewhere.txt").read_text() == "x" * 100


def test_unreadable_files_in_a_class_folder_are_named_in_warnings(matrix: dict[str, dict]) -> None:
    """A file that is not an image (notes.txt) and a corrupt PNG are skipped, each with one warning line naming it."""
    lines = matrix["run-images-unreadable-class"]["stderr"].splitlines()
    warned = [line for line in lines if line.startswith("parity: warning:")]
    assert len(warned) == 2, lines
    assert any(re.search(r"images-unreadable-class/sad/notes\.txt: not a readable image .*; skipped", line)
               for line in warned), warned
    assert any(re.search(r"images-unreadable-class/sad/broken\.png: not a readable image .*; skipped", line)
               for line in warned), warned


@pytest.mark.slow
def test_a_run_skips_a_non_image_file_with_a_warning_and_reports(fault_data: Path, tmp_path: Path) -> None:
    """Beside the images of the class folders, a README is skipped with a warning naming it; the run goes on."""
    data = tmp_path / "images"
    shutil.copytree(fault_data / "images-good", data)
    (data / "sad" / "README.txt").write_text("where these images come from\n")
    result = _real_command(["run", "c1w4_happy_sad", "--data-dir", str(data), "--epochs", "1", "--quiet",
                            "--out", str(tmp_path / "out")])
    assert result.returncode == 0, result.stderr
    assert re.search(r"^parity: warning: .*sad/README\.txt: not a readable image .*; skipped$", result.stderr, re.M)
    report = json.loads((tmp_path / "out" / "c1w4_happy_sad" / "report.json").read_text())
    assert report["dataset"]["train_size"] == 4  # the four images, not the README


@pytest.mark.slow
def test_full_disk_as_the_report_is_written_keeps_the_previous_report(tmp_path: Path) -> None:
    """Both frameworks trained, then the disk is full as report.json is written: one line, the previous report of
    the model untouched, no staging directory, and no data arrays left in a work directory."""
    out = tmp_path / "out"
    _previous_outputs(out, ["c1w1_hello_linear"])
    before = {path: digest for path, digest in tree(out).items()}
    result = _real_command(["run", "c1w1_hello_linear", "--epochs", "1", "--quiet", "--out", str(out)],
                           env=full_disk(out, 0, "report.json"))
    assert_one_line_error(result.returncode, result.stderr.replace("\n\n", "\n"), 2,
                          rf"{re.escape(str(out))}: no space left on device \(writing report\.json\)")
    after = tree(out)
    assert {path: after.get(path) for path in before} == before
    new = [path for path in after if path not in before]
    assert not [path for path in new if ".staging-" in path or path.endswith((".npy", ".npz"))], new


def test_atomic_writes_name_the_place_and_the_fix(tmp_path: Path) -> None:
    """parity.fileio's errors for the places no command reaches before the output check: a path under a regular
    file, and a full disk's OSError met anywhere in a staging directory (named by the directory the user chose)."""
    from parity.errors import ParityError
    from parity.fileio import output_error_message, write_text_atomic

    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ParityError, match=r"cannot write .*a-file/x\.md: a part of the path is a file, not a "
                                          r"directory: choose another output location"):
        write_text_atomic(tmp_path / "a-file" / "x.md", "text")
    staged = tmp_path / "out" / ".c1w1_hello_linear.staging-abc123" / "logs" / "keras.log"
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(staged))
    assert output_error_message(full) == (f"{tmp_path / 'out'}: no space left on device (writing keras.log); free "
                                          "some space there or choose another output location")
    assert output_error_message(OSError(errno.ECONNRESET, "reset", str(staged))) is None  # not the user's to fix


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "parity/runner.py run_model: --early-stopping's metric is checked only after both workers started and the forward "
    "check ran (~15 s), and the failure leaves OUT/.work-MODEL-* (its logs) that the error line does not name"))
def test_an_unknown_early_stopping_metric_is_refused_before_any_work(tmp_path: Path) -> None:
    out = _previous_outputs(tmp_path / "out", ["c1w1_hello_linear"])
    before = tree(out)
    result = _real_command(["run", "c1w1_hello_linear", "--early-stopping", "val_nope", "--out", str(out)])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(r"--early-stopping cannot monitor 'val_nope'; use one of loss, mae, val_loss, val_mae", lines[-1])
    assert tree(out) == before, "the output directory changed"
