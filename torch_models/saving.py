"""Save and load a torch course model the safe way, and check that the loaded model predicts the same.

Mirror: tf_models/saving.py. The `state_dict` is loaded with `torch.load(weights_only=True)`,
which unpickles tensors and plain containers only, so loading never runs code from the file;
it goes into a freshly built model (other initial weights) with `strict=True`.
`save_trained` keeps a trained model of `parity run --save` (paths: parity.saved_models): Lightning's
checkpoint and the plain state_dict, and checks their reload; `load_trained` loads it back for
`parity predict`. The plain state_dict is the safe format: Lightning's checkpoint also holds the
loops', callbacks' and optimizer's state, and loads under weights_only=True only while all of
that is tensors and plain containers (each run records whether it did).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from parity import align, saved_models
from parity.errors import ParityError

LOADER = "torch.load(weights_only=True) -> load_state_dict(strict=True)"
CHECKPOINT_LOADER = "torch.load(weights_only=True)['state_dict'] -> load_state_dict(strict=True)"


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


def save_trained(model, trainer, run_dir: Path, seed: int, inputs: np.ndarray) -> dict[str, Any]:
    """Save `model` (trained by `trainer`, seed `seed`) into RUN_DIR/models, then `check_reload` it on `inputs`."""
    save_files(model, trainer, run_dir, seed)
    return check_reload(model, run_dir, seed, inputs)


def save_files(model, trainer, run_dir: Path, seed: int) -> None:
    """Lightning's checkpoint (`trainer.save_checkpoint`) and the plain state_dict of `model` into RUN_DIR/models."""
    import torch

    checkpoint = saved_models.lightning_checkpoint_path(run_dir, seed)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(checkpoint)
    torch.save(model.state_dict(), saved_models.lightning_state_dict_path(run_dir, seed))


def check_reload(model, run_dir: Path, seed: int, inputs: np.ndarray) -> dict[str, Any]:
    """Both saved files of `seed` loaded with weights_only=True into fresh builds, their predictions on `inputs`
    compared with `model`'s bit for bit (parity.saved_models.saved_record). The plain state_dict must load; the
    checkpoint's loading is tried, and its refusal, should the checkpoint hold a non-tensor object, recorded."""
    import torch

    checkpoint = saved_models.lightning_checkpoint_path(run_dir, seed)
    state_dict = saved_models.lightning_state_dict_path(run_dir, seed)
    before = _predictions(model, inputs, model.device)
    reloads = [saved_models.reload_record(
        state_dict, LOADER, before,
        _predictions(load_into(model.spec.id, model.alignment, state_dict), inputs, model.device))]
    try:
        weights = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    except pickle.UnpicklingError as error:  # weights_only's refusal of a non-tensor object
        reloads.append(saved_models.reload_record(checkpoint, CHECKPOINT_LOADER, before, None,
                                                  saved_models.first_line(error), required=False))
    else:
        loaded = _fresh(model.spec.id, model.alignment)
        loaded.load_state_dict(weights, strict=True)
        reloads.append(saved_models.reload_record(checkpoint, CHECKPOINT_LOADER, before,
                                                  _predictions(loaded, inputs, model.device), required=False))
    return saved_models.saved_record([(checkpoint, "Lightning checkpoint: weights, optimizer, loops, callbacks"),
                                      (state_dict, "plain state_dict: weights and buffers")], reloads)


def load_trained(run_dir: Path, seed: int):
    """The LightningModule of `seed` that `parity run --save` kept in `run_dir`, in eval mode: built with the
    alignment the run used (report.json `mode`, `native_differences`), its state_dict loaded safely."""
    report_path = Path(run_dir) / "report.json"
    if not report_path.is_file():
        raise ParityError(f"{report_path} does not exist: give the directory of one model's `parity run --save`")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    alignment = align.Alignment.from_job(report.get("native_differences", []))
    if alignment.mode != report["mode"]:
        raise ParityError(f"{report_path}: mode {report['mode']!r} does not match native_differences "
                          f"{report.get('native_differences')} under this version's differences ({alignment.mode}); "
                          "rerun `parity run --save` with this version")
    return load_into(report["model"], alignment, saved_models.lightning_state_dict_path(run_dir, seed))


def load_into(model_id: str, alignment: align.Alignment, path: Path):
    """A fresh build of `model_id` under `alignment` holding the plain state_dict in `path`, in eval mode."""
    model = _fresh(model_id, alignment)
    model.load_state_dict(load_state_dict(path), strict=True)
    return model


def load_state_dict(path: Path) -> Mapping[str, Any]:
    """The plain state_dict in `path`, loaded with weights_only=True; a one-line ParityError for a missing file,
    a file that holds other objects (refused unread) or one that is not a flat mapping of names to tensors."""
    import torch

    if not Path(path).is_file():
        raise ParityError(f"{path} does not exist: run `parity run MODEL --save` to keep the trained models")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ParityError(f"{path} is not a plain state_dict: torch.load(weights_only=True) refused it "
                          f"({saved_models.first_line(error)}); only load files you trust, and save weights "
                          "with torch.save(model.state_dict(), path)") from None
    if not isinstance(state, Mapping) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ParityError(f"{path} is not a plain state_dict (a mapping of names to tensors); a Lightning checkpoint "
                          "holds one under 'state_dict': save weights with torch.save(model.state_dict(), path)")
    return state


def _fresh(model_id: str, alignment: align.Alignment):
    from torch_models import build

    return build(model_id, alignment).eval()


def _predictions(model, inputs: np.ndarray, device) -> np.ndarray:
    import torch

    model.to(device).eval()
    with torch.no_grad():
        return model.predict_outputs(model(torch.from_numpy(inputs).to(device))).cpu().numpy()
