"""Save and load a torch course model the safe way, and check that the loaded model predicts the same.

Mirror: tf_models/saving.py. The `state_dict` is loaded with `torch.load(weights_only=True)`,
which unpickles tensors and plain containers only, so loading never runs code from the file;
it goes into a freshly built model (other initial weights) with `strict=True`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def save_and_reload(model_id: str, seed: int, inputs: np.ndarray, directory: Path) -> dict[str, Any]:
    """Build `model_id`, save its state_dict, load it into a second build (another seed); compare predictions."""
    import torch

    from parity import compare
    from torch_models import build

    torch.manual_seed(seed)
    model = build(model_id).eval()
    path = Path(directory) / f"{model_id}.pt"
    torch.save(model.state_dict(), path)
    torch.manual_seed(seed + 1)
    loaded = build(model_id).eval()
    loaded.load_state_dict(torch.load(path, weights_only=True), strict=True)
    x = torch.from_numpy(inputs)
    with torch.no_grad():
        before = model.predict_outputs(model(x)).numpy()
        after = loaded.predict_outputs(loaded(x)).numpy()
    return compare.roundtrip_row(sum(p.numel() for p in model.parameters()),
                                 sum(p.numel() for p in loaded.parameters()), before, after, path)


def run_roundtrip(job: dict[str, Any]) -> dict[str, Any]:
    """The `roundtrip` job: every model of `job["models"]` saved and reloaded (inputs: the probe files)."""
    from parity import jobs

    workdir = Path(job["workdir"])
    return {"models": {model_id: save_and_reload(model_id, job["seed"],
                                                 np.load(jobs.probe_inputs_path(workdir, model_id)), workdir)
                       for model_id in job["models"]}}
