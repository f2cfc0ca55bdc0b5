"""Run many `parity` command lines in one process, each as `python -m parity.cli ARGS` would: CASES.json RESULTS.json.

CASES.json: {name: [args...]}; RESULTS.json: {name: {"code": exit status, "stdout": ..., "stderr": ...}}.
One process saves the ~1 s start of each command in the fault matrix (tests/test_fault_matrix.py); an
uncaught exception is printed as Python prints it (a traceback) with status 1, as the real command ends.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback

from parity.cli import main


def run_case(args: list[str]) -> dict[str, object]:
    """Exit status and output of `parity ARGS`."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(args)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            if isinstance(stop.code, str):
                print(stop.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - the real command would die with a traceback: record it
            traceback.print_exc()
            code = 1
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


if __name__ == "__main__":
    cases_path, results_path = sys.argv[1:3]
    with open(cases_path, encoding="utf-8") as stream:
        cases = json.load(stream)
    results = {name: run_case(args) for name, args in cases.items()}
    with open(results_path, "w", encoding="utf-8") as stream:
        json.dump(results, stream)
