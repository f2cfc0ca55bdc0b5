"""A framework-free worker for tests of parity.interleave: it takes turns as a bench worker does, and logs when."""

from __future__ import annotations

import sys
import time
from typing import Any

from parity import interleave, worker_runtime


def configure(job: dict[str, Any]) -> str:
    return worker_runtime.cpu_words(job["threads"])


def versions() -> dict[str, str]:
    return {"fake": "1.0"}


def take_turns(job: dict[str, Any]) -> dict[str, Any]:
    """Stop before the first segment and after each, as parity.bench.Clock does; each segment's start and end
    on the system-wide monotonic clock. The worker named `failing` raises in segment `fail_at` (a worker that fails
    mid-measurement), or before it connects when `fail_at` is "start"."""
    fail_at = job.get("fail_at") if job["framework"] == job.get("failing") else None
    if fail_at == "start":
        raise ValueError("planted failure before the first turn")
    spans = []
    with interleave.turn(job.get("turns"), job["framework"]) as stop:
        stop()
        for segment in range(job["segments"]):
            start = time.monotonic_ns()
            if segment == fail_at:
                raise ValueError(f"planted failure in segment {segment}")
            time.sleep(job["seconds"])
            spans.append([start, time.monotonic_ns()])
            stop()
    return {"spans": spans}


HANDLERS = {"turns": take_turns}

if __name__ == "__main__":
    sys.exit(worker_runtime.serve(worker_runtime.Worker("fake", configure, versions, HANDLERS)))
