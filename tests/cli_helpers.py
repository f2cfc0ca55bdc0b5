"""Running the real `parity` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`parity ARGS...` with one thread per framework (the safe setting on a shared machine) on the CPU."""
    command = [sys.executable, "-m", "parity.cli", *args]
    if args and args[0] in ("run", "check", "list", "lockstep") and "--threads" not in args:
        command += ["--threads", "1", "--device", "cpu"]
    return subprocess.run(command, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
