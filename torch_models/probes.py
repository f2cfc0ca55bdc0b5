"""torch side of the layer probes (parity.probes): the Keras initial weights, loaded under an `Alignment`.

Each probe seeds torch (what a difference left native keeps is torch's own initialisation),
builds the torch counterpart the alignment asks for, loads the Keras weights and saves the
arrays parity.probes compares, in Keras' layouts (NHWC outputs, (in, out) kernels).
Mirror: tf_models/probes.py.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from parity import align, probes
from parity.weights import KerasLayer, load_keras_layers
from torch_models.augment import apply_aligned, apply_native, native_augmenter
from torch_models.layers import batchnorm2d, same_conv2d
from torch_models.transfer import same_avg_pool, set_frozen_mode
from torch_models.weights import load_keras_layers_into

Probe = Callable[[dict[str, np.ndarray], dict[str, Any], list[KerasLayer], align.Alignment], dict[str, np.ndarray]]


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> np.ndarray:
    return x.detach().permute(0, 2, 3, 1).numpy()


def batchnorm(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
              alignment: align.Alignment) -> dict[str, np.ndarray]:
    """BatchNorm per align.torch_batchnorm: running statistics after the training batches, then eval outputs."""
    bn = batchnorm2d(inputs["eval_x"].shape[-1], alignment)
    load_keras_layers_into(bn, layers, alignment)
    with torch.no_grad():
        bn.train()
        for x in inputs["train_x"]:
            train_outputs = bn(_nchw(x))
        bn.eval()
        eval_outputs = bn(_nchw(inputs["eval_x"]))
    return {"moving_mean": bn.running_mean.numpy(), "moving_variance": bn.running_var.numpy(),
            "train_outputs": _nhwc(train_outputs), "eval_outputs": _nhwc(eval_outputs)}


def _recurrent(rnn: nn.RNNBase, inputs: dict[str, np.ndarray], layers: list[KerasLayer],
               alignment: align.Alignment) -> dict[str, np.ndarray]:
    load_keras_layers_into(rnn, layers, alignment)
    with torch.no_grad():
        outputs, _ = rnn(torch.from_numpy(inputs["x"]))
    return {"outputs": outputs[:, -1].numpy()}


def gru(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
        alignment: align.Alignment) -> dict[str, np.ndarray]:
    """nn.GRU with the Keras weights, gate blocks reordered or not (align.reorder_gru_gates): the last output."""
    return _recurrent(nn.GRU(settings["features"], settings["units"], batch_first=True), inputs, layers, alignment)


def lstm(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
         alignment: align.Alignment) -> dict[str, np.ndarray]:
    """nn.LSTM with the Keras weights, b_hh zeroed or torch's own (align.zero_lstm_recurrent_bias): the last output."""
    return _recurrent(nn.LSTM(settings["features"], settings["units"], batch_first=True), inputs, layers, alignment)


def same_padding(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
                 alignment: align.Alignment) -> dict[str, np.ndarray]:
    """Conv2dSame or nn.Conv2d(padding=k//2) (align.tensorflow_same_padding) with the Keras kernel."""
    conv = same_conv2d(settings["channels"], settings["filters"], settings["kernel"], settings["stride"], alignment)
    load_keras_layers_into(conv, layers, alignment)
    with torch.no_grad():
        return {"outputs": _nhwc(conv(_nchw(inputs["x"])))}


def l2(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
       alignment: align.Alignment) -> dict[str, np.ndarray]:
    """`steps` SGD steps of a Linear: Keras' L2 loss penalty on the kernel, or optimizer weight_decay=l on all."""
    dense = nn.Linear(settings["features"], settings["units"])
    load_keras_layers_into(dense, layers, alignment)
    penalty = align.l2_as_loss_penalty(alignment)
    optimizer = torch.optim.SGD(dense.parameters(), lr=settings["learning_rate"],
                                weight_decay=0.0 if penalty else settings["l2"])
    x, y = torch.from_numpy(inputs["x"]), torch.from_numpy(inputs["y"])
    for batch_x, batch_y in zip(x.split(settings["batch"]), y.split(settings["batch"])):
        loss = F.mse_loss(dense(batch_x), batch_y)
        if penalty:
            loss = loss + settings["l2"] * dense.weight.square().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"kernel": dense.weight.detach().T.numpy(), "bias": dense.bias.detach().numpy()}


class _ScheduledRegressor(L.LightningModule):
    """Linear-ReLU-Linear regression; SGD with the per-step exponential decay as a LambdaLR at `interval`."""

    def __init__(self, settings: dict[str, Any], interval: str) -> None:
        super().__init__()
        self.settings, self.interval = settings, interval
        self.net = nn.Sequential(nn.Linear(settings["features"], settings["hidden"]), nn.ReLU(),
                                 nn.Linear(settings["hidden"], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def keras_layers(self) -> dict[str, nn.Module]:
        """The Keras probe's layer names (tf_models.probes.lr_schedule) -> the Linear that mirrors each."""
        return {"hidden": self.net[0], "output": self.net[2]}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.mse_loss(self(x), y)

    def configure_optimizers(self) -> dict[str, Any]:
        s = self.settings
        optimizer = torch.optim.SGD(self.parameters(), lr=s["learning_rate"])
        decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda n: s["decay_rate"] ** (n / s["decay_steps"]))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": decay, "interval": self.interval}}


class _LearningRates(L.Callback):
    """The learning rate each optimizer step uses."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self.values.append(trainer.optimizers[0].param_groups[0]["lr"])


def lr_schedule(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
                alignment: align.Alignment) -> dict[str, np.ndarray]:
    """Lightning training with the scheduler interval of align.lr_schedule_interval: lr per step, final weights."""
    model = _ScheduledRegressor(settings, align.lr_schedule_interval(alignment, "step"))
    load_keras_layers_into(model, layers, alignment)
    rates = _LearningRates()
    trainer = L.Trainer(max_epochs=settings["epochs"], accelerator="cpu", devices=1, logger=False, callbacks=[rates],
                        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False)
    data = TensorDataset(torch.from_numpy(inputs["x"]), torch.from_numpy(inputs["y"]))
    trainer.fit(model, DataLoader(data, batch_size=settings["batch"], shuffle=False))
    weights = [p.detach().numpy().T.ravel() for p in model.parameters()]  # Keras layout: kernel (in, out), bias
    return {"lr": np.array(rates.values, np.float32), "weights": np.concatenate(weights)}


def tensor_layout(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
                  alignment: align.Alignment) -> dict[str, np.ndarray]:
    """Conv2d with the Keras kernel transposed (parity.weights) and, as `native_`, merely reshaped to (out, in, kh, kw)."""
    conv = nn.Conv2d(settings["channels"], settings["filters"], settings["kernel"])
    x = _nchw(inputs["x"])
    with torch.no_grad():
        load_keras_layers_into(conv, layers, alignment)
        outputs = _nhwc(conv(x))
        conv.weight.copy_(torch.from_numpy(layers[0].arrays["kernel"].reshape(conv.weight.shape)))
        return {"outputs": outputs, "native_outputs": _nhwc(conv(x))}


def avgpool_same(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
                 alignment: align.Alignment) -> dict[str, np.ndarray]:
    """The Inception trunk's pool-branch pooling (torch_models.transfer.same_avg_pool) under `alignment`."""
    with torch.no_grad():
        return {"outputs": _nhwc(same_avg_pool(alignment)(_nchw(inputs["x"])))}


def frozen_batchnorm(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
                     alignment: align.Alignment) -> dict[str, np.ndarray]:
    """A frozen BatchNorm with the Keras weights put in training mode the way the Inception trunk is
    (torch_models.transfer.set_frozen_mode): outputs of the last batch and the running statistics after all."""
    bn = batchnorm2d(inputs["train_x"].shape[-1], alignment)
    load_keras_layers_into(bn, layers, alignment)
    set_frozen_mode(bn, True, True, alignment)
    with torch.no_grad():
        for x in inputs["train_x"]:
            train_outputs = bn(_nchw(x))
    return {"train_outputs": _nhwc(train_outputs), "moving_mean": bn.running_mean.numpy(),
            "moving_variance": bn.running_var.numpy()}


def loss_target_shape(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
                      alignment: align.Alignment) -> dict[str, np.ndarray]:
    """MSELoss of the (N, 1) outputs against (N, 1) targets and, as `native_`, against the (N,) targets."""
    dense = nn.Linear(1, 1)
    load_keras_layers_into(dense, layers, alignment)
    y = torch.from_numpy(inputs["y"])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using a target size .* that is different to the input size")
        outputs = dense(torch.from_numpy(inputs["x"]))
        return {"loss": nn.MSELoss()(outputs, y.reshape(-1, 1)).numpy(), "native_loss": nn.MSELoss()(outputs, y).numpy()}


class _TinyRegressor(L.LightningModule):
    """Linear regression trained with SGD: weights that change every epoch, for the early-stopping probe."""

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__()
        self.learning_rate = settings["learning_rate"]
        self.dense = nn.Linear(settings["features"], 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.mse_loss(self.dense(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.learning_rate)


class _PlantedValues(L.Callback):
    """Puts the planted value of each epoch into trainer.callback_metrics before the monitoring callbacks (early
    stopping, checkpoints: Lightning calls them last) read it, and keeps each epoch's weights."""

    def __init__(self, monitor: str, history: np.ndarray) -> None:
        self.monitor, self.history = monitor, history
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.callback_metrics[self.monitor] = torch.tensor(self.history[trainer.current_epoch])
        self.states.append({key: value.detach().clone() for key, value in pl_module.state_dict().items()})


def _matching_epoch(state: dict[str, torch.Tensor], epochs: list[dict[str, torch.Tensor]]) -> int:
    """The 1-based epoch whose end-of-epoch weights equal `state` exactly (0: none)."""
    for epoch, saved in enumerate(epochs, start=1):
        if all(torch.equal(state[key], value) for key, value in saved.items()):
            return epoch
    return 0


def early_stopping(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
                   alignment: align.Alignment) -> dict[str, np.ndarray]:
    """Per scenario, a tiny regression fit one epoch per planted value with the run's early stopping under
    `alignment` (torch_models.callbacks.early_stopping, best checkpoint reloaded): epochs run, the epoch restored."""
    from torch_models.callbacks import early_stopping as lightning_early_stopping

    data = TensorDataset(torch.from_numpy(inputs["x"]), torch.from_numpy(inputs["y"]))
    arrays = {}
    for name, scenario in settings["scenarios"].items():
        history = inputs[f"history_{name}"]
        model = _TinyRegressor(settings)
        planted = _PlantedValues(scenario["monitor"], history)
        with tempfile.TemporaryDirectory() as restore_dir:
            best = lightning_early_stopping(scenario, alignment, Path(restore_dir))
            trainer = L.Trainer(max_epochs=len(history), accelerator="cpu", devices=1, logger=False,
                                callbacks=[planted, *best.callbacks], enable_model_summary=False,
                                enable_progress_bar=False)
            trainer.fit(model, DataLoader(data, batch_size=settings["batch"], shuffle=False))
            best.restore(model)
        arrays[f"epochs_run_{name}"] = np.array(len(planted.states))
        arrays[f"restored_epoch_{name}"] = np.array(_matching_epoch(model.state_dict(), planted.states))
    return arrays


def augmentation(inputs: dict[str, np.ndarray], settings: dict[str, Any], layers: list[KerasLayer],
                 alignment: align.Alignment) -> dict[str, np.ndarray]:
    """Each course model's augmentation of the generated batch under `alignment` (torch_models.augment): the shared
    parameters applied op by op, or, with augmentation_stream native, torchvision's own random transforms."""
    arrays = {}
    for model in settings["models"]:
        x, case = probes.augmentation_case(model, inputs, settings, alignment)
        images = torch.from_numpy(x)
        augmented = apply_aligned(images, inputs[f"params_{model}"], case) if case.shared_stream else \
            apply_native(images, native_augmenter(case))
        arrays[model] = augmented.numpy()
    return arrays


PROBES: dict[str, Probe] = {
    "batchnorm": batchnorm, "gru": gru, "lstm": lstm, "same_padding": same_padding, "l2": l2,
    "lr_schedule": lr_schedule, "tensor_layout": tensor_layout, "loss_target_shape": loss_target_shape,
    "early_stopping": early_stopping, "avgpool_same": avgpool_same, "frozen_batchnorm": frozen_batchnorm,
    "augmentation": augmentation,
}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """The torch side of a `probe` job: each probe under each of its alignments, on the Keras initial weights."""
    workdir = Path(job["workdir"])
    for name, entry in job["probes"].items():
        inputs = probes.load_arrays(probes.probe_path(workdir, name, "inputs"))
        layers = load_keras_layers(probes.probe_path(workdir, name, "keras-init"))
        for native in entry["alignments"]:
            alignment = align.Alignment.from_job(native)
            torch.manual_seed(entry["settings"]["seed"])  # what a native difference keeps is torch's own init
            arrays = PROBES[name](inputs, entry["settings"], layers, alignment)
            np.savez(probes.probe_path(workdir, name, "lightning", alignment), **arrays)
    return {}
