"""The course's stop-at-threshold callbacks: the rule on epoch-end logs, and both frameworks' callbacks on it.

c2w1_cats_dogs_full stops only when train accuracy >= 0.95 AND val accuracy >= 0.80 (the v2 assignment's
callback); c2w3_inception_horse_human stops at train accuracy >= 0.999. Each framework's callback runs in its
own process (TensorFlow and torch never share one), fed the same planted logs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from parity.catalog import get_spec

ROOT = Path(__file__).resolve().parent.parent
# Epoch-end logs: only the last one meets both of c2w1_cats_dogs_full's thresholds; the third has only the
# first; the first lacks val_accuracy (a run without validation data never meets a rule that needs it). Both
# frameworks log float32 values (float32(0.95) < 0.95, in both, as in the course's own callbacks), so the planted
# values keep clear of the thresholds.
TWO_KEY_HISTORY = [{"accuracy": 0.97}, {"accuracy": 0.90, "val_accuracy": 0.85},
                   {"accuracy": 0.96, "val_accuracy": 0.79}, {"accuracy": 0.9515, "val_accuracy": 0.8015}]
INCEPTION_HISTORY = [{"accuracy": 0.998, "val_accuracy": 1.0}, {"accuracy": 0.9995, "val_accuracy": 0.9}]


@pytest.mark.parametrize(("model_id", "history", "expected"), [
    ("c2w1_cats_dogs_full", TWO_KEY_HISTORY, [False, False, False, True]),
    ("c2w3_inception_horse_human", INCEPTION_HISTORY, [False, True]),
])
def test_the_rule_needs_every_monitored_value(model_id, history, expected):
    rule = get_spec(model_id).stop
    assert [rule.reached(logs) for logs in history] == expected
    assert rule.values(history[-1]).startswith(f"{rule.monitor}=")


def test_both_frameworks_callbacks_stop_where_the_rule_says():
    """The real Keras and Lightning callbacks, in their own processes (run at once), on the planted logs."""
    cases = {"c2w1_cats_dogs_full": TWO_KEY_HISTORY, "c2w3_inception_horse_human": INCEPTION_HISTORY}
    expected = {model_id: [get_spec(model_id).stop.reached(logs) for logs in history]
                for model_id, history in cases.items()}
    runs = {framework: subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "stop_callback_worker.py"), framework, json.dumps(cases)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
        for framework in ("keras", "lightning")}
    for framework, process in runs.items():
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, f"{framework}: {err[-2000:]}"
        assert json.loads(out.strip().splitlines()[-1]) == expected, framework
