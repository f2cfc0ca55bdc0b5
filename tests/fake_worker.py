"""A framework-free worker for tests of parity.jobs' sessions: parity.worker_runtime with trivial handlers."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from parity import worker_runtime


def configure(job: dict[str, Any]) -> str:
    return worker_runtime.cpu_words(job["threads"])


def versions() -> dict[str, str]:
    return {"fake": "1.0"}


def echo(job: dict[str, Any]) -> dict[str, Any]:
    """Print a progress line; answer with the payload, this process's id, whether stdout is a terminal, and env values."""
    print(f"progress: echo {job['payload']}", flush=True)
    return {"payload": job["payload"], "pid": os.getpid(), "tty": sys.stdout.isatty(),
            "env": {name: os.environ.get(name) for name in job.get("env_names", ())}}


def fail(job: dict[str, Any]) -> dict[str, Any]:
    print("about to fail", flush=True)
    raise ValueError(f"planted failure {job['payload']}")


def die(job: dict[str, Any]) -> dict[str, Any]:
    print("dying now", flush=True)
    os._exit(3)


def sleep(job: dict[str, Any]) -> dict[str, Any]:
    time.sleep(job["seconds"])
    return {}


HANDLERS = {"echo": echo, "fail": fail, "die": die, "sleep": sleep}

if __name__ == "__main__":
    sys.exit(worker_runtime.serve(worker_runtime.Worker("fake", configure, versions, HANDLERS)))
