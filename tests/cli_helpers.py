"""Running the real `parity` command in a subprocess, as a user would."""

from __future__ import annotations

import json
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


def unimplemented_env(*datasets: str) -> dict[str, str]:
    """The environment that makes a `parity` process take `datasets` for data sets without a loader, so that their
    models are not implemented yet there (tests/unimplemented/sitecustomize.py)."""
    hook = Path(__file__).resolve().parent / "unimplemented"
    return {"PYTHONPATH": os.pathsep.join(filter(None, (str(hook), os.environ.get("PYTHONPATH")))),
            "PARITY_TEST_NO_LOADER": ",".join(datasets)}


def run_script_on_cases(script: str, directory: Path, cases: list[dict]) -> list[dict]:
    """Run `script` (python source taking CASES.json RESULTS.json) in its own process, CPU only; return its results.

    For reference implementations that import TensorFlow, which must not share a process with torch.
    """
    cases_path, results_path = Path(directory) / "cases.json", Path(directory) / "results.json"
    cases_path.write_text(json.dumps(cases))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script, str(cases_path), str(results_path)], check=True, env=env, timeout=600)
    return json.loads(results_path.read_text())
