#!/usr/bin/env bash
# Install the project into .venv, then run the main job on the course's inline hello-world data
# (no download): both frameworks train c1w1_hello_linear and the report lands in runs/.
# --quiet: the course trains it for 500 epochs, so the console gets one summary line per framework
# and the per-epoch lines go to runs/c1w1_hello_linear/logs/ (TensorBoard: runs/c1w1_hello_linear/tensorboard).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --disable-pip-version-check -qq -e ".[test]"  # -qq: errors only (a machine's pip config may warn per index)
.venv/bin/parity run c1w1_hello_linear --out runs --quiet
