"""Three tiny `parity run --synthetic --epochs 1 --save` runs, trained once per test session, for predict and inside.

c1w3_fmnist_cnn (images, feature maps), c3w2_sarcasm_embed_gap (sentences, projector export) and
c4w2_ts_dnn (series windows); about 90 s together on one thread per framework.
"""

from __future__ import annotations

from pathlib import Path

from cli_helpers import run_cli

FMNIST, SARCASM, SERIES = "c1w3_fmnist_cnn", "c3w2_sarcasm_embed_gap", "c4w2_ts_dnn"


def train_saved_runs(root: Path) -> dict[str, Path]:
    """{model id: RUN_DIR} of the three runs, trained into `root` (the `saved_runs` fixture of conftest.py)."""
    runs = {}
    for model_id in (FMNIST, SARCASM, SERIES):
        result = run_cli("run", model_id, "--synthetic", "--epochs", "1", "--save", "--quiet", "--out", str(root),
                         env={"PARITY_OFFLINE": "1", "PARITY_CACHE_DIR": str(root / "cache")})
        assert result.returncode == 0, result.stderr
        runs[model_id] = root / model_id
    return runs
