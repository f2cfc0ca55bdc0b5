"""Every known Keras/PyTorch difference the implemented models touch, in one place.

Mode `aligned` sets the torch side to match Keras wherever an option can; mode `native`
leaves each framework with the defaults an idiomatic user gets. The workers ask this module
for their settings and never hard-code a default of their own. Each entry of DIFFERENCES
has a test that demonstrates it (tests/test_align.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parity.catalog import Optimizer

MODES = ("aligned", "native")

# Adam epsilon: Keras 1e-7, torch 1e-8. Keras also adds it to the *uncorrected* sqrt(v)
# ("epsilon hat" of the Adam paper), torch to the bias-corrected one: no option aligns that.
KERAS_ADAM_EPSILON = 1e-7
TORCH_ADAM_EPS = 1e-8
# RMSprop: Keras rho 0.9, eps 1e-7 inside the sqrt; torch alpha 0.99, eps 1e-8 outside.
KERAS_RMSPROP_RHO = 0.9
KERAS_RMSPROP_EPSILON = 1e-7
TORCH_RMSPROP_ALPHA = 0.99
TORCH_RMSPROP_EPS = 1e-8
# Adam betas are the same in both frameworks (0.9, 0.999); named once here.
ADAM_BETAS = (0.9, 0.999)
# Keras "accuracy" is the fraction of correct samples; torchmetrics MulticlassAccuracy averages
# per class ("macro") by default. Sample accuracy is what the course reports, in both modes.
TORCHMETRICS_ACCURACY_AVERAGE = "micro"


@dataclass(frozen=True)
class Difference:
    """One documented framework difference and how `aligned` mode handles it."""

    key: str
    keras: str
    torch: str
    aligned: str
    source: str


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "initial_weights",
        "Dense/Conv glorot_uniform, zero bias; Embedding U(-0.05, 0.05)",
        "Linear/Conv kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)), bias U(+-1/sqrt(fan_in)); Embedding N(0, 1)",
        "torch starts from the Keras initial weights (parity.weights); native keeps torch's own init",
        "keras/src/layers/core/dense.py, embedding.py; pytorch/pytorch PR #19526",
    ),
    Difference(
        "adam_epsilon",
        f"epsilon={KERAS_ADAM_EPSILON}, added to the uncorrected sqrt(v)",
        f"eps={TORCH_ADAM_EPS}, added to the bias-corrected sqrt(v_hat)",
        f"torch eps={KERAS_ADAM_EPSILON}; the placement cannot be aligned by options (early-step drift remains)",
        "keras/src/optimizers/adam.py; torch.optim.Adam docs",
    ),
    Difference(
        "rmsprop_rho_epsilon",
        f"rho={KERAS_RMSPROP_RHO}, epsilon={KERAS_RMSPROP_EPSILON} inside the sqrt",
        f"alpha={TORCH_RMSPROP_ALPHA}, eps={TORCH_RMSPROP_EPS} outside the sqrt",
        f"torch alpha={KERAS_RMSPROP_RHO}, eps={KERAS_RMSPROP_EPSILON}; the placement cannot be aligned by options",
        "keras/src/optimizers/rmsprop.py; torch.optim.RMSprop docs",
    ),
    Difference(
        "sgd_default_lr",
        "SGD(learning_rate=0.01); 'sgd' string in compile means lr 0.01",
        "SGD(lr=1e-3) in recent torch",
        "the spec always states the learning rate; both frameworks read it (same in both modes)",
        "keras/src/optimizers/sgd.py; torch.optim.SGD docs",
    ),
    Difference(
        "flatten_order",
        "Flatten of NHWC is (H, W, C) order",
        "torch.flatten of NCHW is (C, H, W) order",
        "weight transfer permutes the first Dense kernel after a Flatten (parity.weights, both modes)",
        "keras/src/layers/reshaping/flatten.py; gzuidhof/nn-transfer #16",
    ),
    Difference(
        "tensor_layout",
        "images NHWC; Conv2D kernel (kh, kw, in, out); Dense kernel (in, out)",
        "images NCHW; Conv2d weight (out, in, kh, kw); Linear weight (out, in)",
        "the shared arrays stay NHWC; torch models permute to NCHW in forward; weights are transposed (parity.weights)",
        "HF modeling_tf_pytorch_utils; AlgoPerf torch2jax_utils",
    ),
    Difference(
        "loss_target_shape",
        "losses squeeze or expand y_true to the rank of y_pred: targets (N,) against outputs (N, 1) are fine",
        "MSELoss / BCEWithLogitsLoss broadcast: targets (N,) against outputs (N, 1) become an (N, N) loss matrix",
        "the shared data stores binary and regression targets as (N, 1) float32 (parity.datasets.split)",
        "keras/src/losses/loss.py squeeze_or_expand_to_same_rank; torch MSELoss docs (broadcast warning)",
    ),
    Difference(
        "accuracy_average",
        "metrics=['accuracy']: fraction of correct samples",
        "torchmetrics MulticlassAccuracy: average='macro' (mean of per-class recalls) by default",
        f"torchmetrics average='{TORCHMETRICS_ACCURACY_AVERAGE}' in both modes (a metric definition, not a default to compare)",
        "keras/src/metrics/accuracy_metrics.py; torchmetrics MulticlassAccuracy docs",
    ),
    Difference(
        "crossentropy_on_probabilities",
        "model ends in softmax/sigmoid; the loss gets probabilities and the TF backend recovers the logits",
        "model returns logits; CrossEntropyLoss / BCEWithLogitsLoss apply log-softmax / log-sigmoid",
        "each framework keeps its idiom (same math); forward parity compares probabilities",
        "keras/src/backend/tensorflow/nn.py _get_logits; torch CrossEntropyLoss docs",
    ),
    Difference(
        "tf32",
        "TensorFloat-32 on by default for fp32 matmul and conv on Ampere+ GPUs",
        "fp32 matmul full precision by default; cuDNN conv TF32 on by default",
        "TF32 off in both on GPU; native keeps each default (no effect on CPU)",
        "tf.config.experimental.enable_tensor_float_32_execution; torch.set_float32_matmul_precision",
    ),
)


def check_mode(mode: str) -> str:
    """`mode` if it is a known mode; otherwise a ValueError listing the modes."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def copy_keras_initial_weights(mode: str) -> bool:
    """Whether the torch model starts from the Keras initial weights."""
    return check_mode(mode) == "aligned"


def keras_optimizer_config(optimizer: Optimizer) -> tuple[str, dict[str, Any]]:
    """Keras optimizer class name and its keyword arguments, every value explicit."""
    if optimizer.name == "adam":
        return "Adam", {
            "learning_rate": optimizer.learning_rate,
            "beta_1": ADAM_BETAS[0],
            "beta_2": ADAM_BETAS[1],
            "epsilon": KERAS_ADAM_EPSILON,
        }
    if optimizer.name == "rmsprop":
        return "RMSprop", {
            "learning_rate": optimizer.learning_rate,
            "rho": KERAS_RMSPROP_RHO,
            "epsilon": KERAS_RMSPROP_EPSILON,
        }
    return "SGD", {"learning_rate": optimizer.learning_rate, "momentum": optimizer.momentum}


def torch_optimizer_config(optimizer: Optimizer, mode: str) -> tuple[str, dict[str, Any]]:
    """torch.optim class name and keyword arguments for `mode`."""
    aligned = check_mode(mode) == "aligned"
    if optimizer.name == "adam":
        return "Adam", {
            "lr": optimizer.learning_rate,
            "betas": ADAM_BETAS,
            "eps": KERAS_ADAM_EPSILON if aligned else TORCH_ADAM_EPS,
        }
    if optimizer.name == "rmsprop":
        return "RMSprop", {
            "lr": optimizer.learning_rate,
            "alpha": KERAS_RMSPROP_RHO if aligned else TORCH_RMSPROP_ALPHA,
            "eps": KERAS_RMSPROP_EPSILON if aligned else TORCH_RMSPROP_EPS,
        }
    # Keras `v = m*v - lr*g; w += v` equals torch `b = m*b + g; w -= lr*b` while lr is constant.
    return "SGD", {"lr": optimizer.learning_rate, "momentum": optimizer.momentum}


def tf32_allowed(mode: str) -> bool | None:
    """TF32 on GPU: False (off in both) when aligned; None (each framework's default) when native."""
    return False if check_mode(mode) == "aligned" else None
