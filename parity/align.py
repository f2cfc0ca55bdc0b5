"""Every known Keras/PyTorch difference the course models touch, in one place.

Each switchable difference is either `aligned` (the torch side made to match Keras) or
`native` (each framework keeps what an idiomatic user gets). An `Alignment` names the
differences left native: mode `aligned` leaves none, mode `native` all, and
`--native KEY` switches single ones so their effect can be measured in isolation
(parity.differences). The workers ask this module for every setting and never hard-code
a default of their own. Each entry of DIFFERENCES has a test named after its key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parity.catalog import ModelSpec, Optimizer

MODES = ("aligned", "native")

# Adam: Keras epsilon 1e-7 added to the *uncorrected* sqrt(v) ("epsilon hat" of the paper),
# torch eps 1e-8 added to the bias-corrected sqrt(v_hat). Betas are the same (0.9, 0.999).
KERAS_ADAM_EPSILON = 1e-7
TORCH_ADAM_EPS = 1e-8
ADAM_BETAS = (0.9, 0.999)
# RMSprop: Keras rho 0.9, epsilon 1e-7 inside the sqrt; torch alpha 0.99, eps 1e-8 outside.
KERAS_RMSPROP_RHO = 0.9
KERAS_RMSPROP_EPSILON = 1e-7
TORCH_RMSPROP_ALPHA = 0.99
TORCH_RMSPROP_EPS = 1e-8
# Default learning rates, used only where the course relied on Keras' default (an optimizer string).
KERAS_DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "rmsprop": 1e-3}
TORCH_DEFAULT_LR = {"sgd": 1e-3, "adam": 1e-3, "rmsprop": 1e-2}
# BatchNormalization: Keras momentum 0.99 (weight of the old value), epsilon 1e-3, biased moving
# variance; torch momentum 0.1 (weight of the new value), eps 1e-5, unbiased running variance.
KERAS_BATCHNORM_MOMENTUM = 0.99
KERAS_BATCHNORM_EPSILON = 1e-3
TORCH_BATCHNORM_MOMENTUM = 0.1
TORCH_BATCHNORM_EPS = 1e-5
# Huber: compile(loss="huber") uses keras.losses.huber with delta 1.0; torch's HuberLoss also
# defaults to 1.0, but the torch side passes it explicitly so the two never drift apart.
KERAS_HUBER_DELTA = 1.0
# Keras "accuracy" counts samples; torchmetrics MulticlassAccuracy averages per class by default.
KERAS_ACCURACY_AVERAGE = "micro"
TORCHMETRICS_DEFAULT_AVERAGE = "macro"
# Early stopping and best checkpoints. Keras (EarlyStopping, ModelCheckpoint: MonitorCallback) and Lightning
# (EarlyStopping, ModelCheckpoint) agree on the improvement test (strict: current < best - min_delta, so a tie is no
# improvement; both compare float32 values), on patience (stop once `patience` epochs in a row brought no
# improvement) and, with one validation per epoch, on when the value is read (the epoch's end, after validation).
# They differ in the three early_stopping_* entries of DIFFERENCES. Lightning's monitor mode defaults to 'min'.
LIGHTNING_DEFAULT_MONITOR_MODE = "min"
# Keras' mode 'auto' for the monitored quantities a run logs: loss and mae go down, accuracy goes up.
KERAS_MONITOR_MODES = {"loss": "min", "mae": "min", "accuracy": "max"}


# The layer a difference belongs to. API: a default or rule of the framework's API or training loop, the same for
# Keras on every backend: it separates Keras on torch from Lightning (same torch kernels). RUNTIME: what the backend
# does beneath the same Keras API (its kernels, numerics, the backend's own implementation of an op): it separates
# Keras on TensorFlow from Keras on torch. Keras on TensorFlow against Lightning meets both.
API, RUNTIME = "api", "runtime"
LAYERS = (API, RUNTIME)
# The layers whose differences can part each pair of frameworks (keys as parity.jobs.pair_key writes them).
PAIR_LAYERS = {"lightning/keras": (API, RUNTIME), "keras-torch/keras": (RUNTIME,), "keras-torch/lightning": (API,)}


@dataclass(frozen=True)
class Difference:
    """One documented framework difference, how `aligned` mode handles it, and the layer it belongs to (API or
    RUNTIME) with the reason in a line."""

    key: str
    keras: str
    torch: str
    aligned: str
    source: str
    switchable: bool = True
    layer: str = field(kw_only=True)
    layer_reason: str = field(kw_only=True)
    # Its native form draws from the backend's random generator (initial weights, augmentation parameters): left
    # native, it parts the two Keras backends too, by their streams, though it is the API's.
    backend_random: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"{self.key}: layer must be one of {', '.join(LAYERS)}, got {self.layer!r}")


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "kernel_init",
        "Dense/Conv kernels glorot_uniform, zero bias (recurrent kernels orthogonal, LSTM forget bias 1)",
        "Linear/Conv kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)), bias U(+-1/sqrt(fan_in)); RNN all U(+-1/sqrt(H))",
        "torch starts from the Keras initial weights (parity.weights)",
        "keras/src/layers/core/dense.py, convolutional/base_conv.py; pytorch/pytorch PR #19526",
        layer=API,
        layer_reason="default initialisers are the layer API's: Keras draws glorot_uniform on either backend",
        backend_random=True,
    ),
    Difference(
        "embedding_init",
        "Embedding U(-0.05, 0.05)",
        "nn.Embedding N(0, 1)",
        "torch starts from the Keras embedding matrix (parity.weights)",
        "keras/src/layers/core/embedding.py; torch.nn.Embedding docs",
        layer=API,
        layer_reason="Keras' Embedding draws U(-0.05, 0.05) on either backend, nn.Embedding N(0, 1)",
        backend_random=True,
    ),
    Difference(
        "embedding_sparse_gradient",
        "Embedding gradient is IndexedSlices, one row per token occurrence; Adam/RMSprop square the rows before "
        "duplicates are summed, so v grows by sum(g_i^2) for a token repeated in the batch (padding id 0 above all)",
        "nn.Embedding gradient is dense, duplicates summed first: v grows by (sum g_i)^2",
        "torch Embedding(sparse=True) keeps one row per occurrence and the Keras update rules "
        "(torch_models.optimizers) square them before summing; needs those rules, so it is dense when they are native",
        "keras/src/backend/tensorflow/sparse.py elementwise_unary (square of IndexedSlices); torch.nn.Embedding sparse",
        layer=RUNTIME,
        layer_reason=("the per-occurrence IndexedSlices gradient is TensorFlow's: on the torch backend Keras "
                      "looks rows up with F.embedding and gets the dense, duplicates-summed gradient Lightning"
                      " gets (keras/src/backend/torch/numpy.py take)"),
    ),
    Difference(
        "adam_epsilon_value",
        f"epsilon={KERAS_ADAM_EPSILON}",
        f"eps={TORCH_ADAM_EPS}",
        f"torch eps={KERAS_ADAM_EPSILON}",
        "keras/src/optimizers/adam.py; torch.optim.Adam docs",
        layer=API,
        layer_reason="a default of Keras' Adam, the same on every backend",
    ),
    Difference(
        "adam_epsilon_placement",
        "epsilon added to the uncorrected sqrt(v); the step size carries sqrt(1-b2^t)/(1-b1^t)",
        "eps added to the bias-corrected sqrt(v_hat)",
        "no torch.optim option moves it: torch runs KerasAdam (torch_models.optimizers), Keras' update in torch ops",
        "keras/src/optimizers/adam.py update_step; torch.optim.Adam algorithm",
        layer=API,
        layer_reason=("Keras' Adam rule, the same on the torch backend "
                      "(keras/src/backend/torch/optimizers/torch_adam.py)"),
    ),
    Difference(
        "rmsprop_rho",
        f"rho={KERAS_RMSPROP_RHO}",
        f"alpha={TORCH_RMSPROP_ALPHA}",
        f"torch alpha={KERAS_RMSPROP_RHO}",
        "keras/src/optimizers/rmsprop.py; torch.optim.RMSprop docs",
        layer=API,
        layer_reason="a default of Keras' RMSprop, the same on every backend",
    ),
    Difference(
        "rmsprop_epsilon",
        f"epsilon={KERAS_RMSPROP_EPSILON} inside the sqrt: g/sqrt(v+eps)",
        f"eps={TORCH_RMSPROP_EPS} outside the sqrt: g/(sqrt(v)+eps)",
        f"torch runs KerasRMSprop (torch_models.optimizers) with epsilon {KERAS_RMSPROP_EPSILON} inside the sqrt",
        "keras/src/optimizers/rmsprop.py update_step; torch.optim.RMSprop docs",
        layer=API,
        layer_reason="Keras' RMSprop rule, the same on the torch backend (torch_rmsprop.py)",
    ),
    Difference(
        "sgd_momentum_form",
        "v = m*v - lr*g; w += v (lr inside the buffer)",
        "b = m*b + g; w -= lr*b (lr outside the buffer)",
        "torch runs KerasSGD (torch_models.optimizers); the forms agree while lr is constant, not across lr changes",
        "keras/src/optimizers/sgd.py; torch.optim.SGD docs note",
        layer=API,
        layer_reason="Keras' SGD rule, the same on the torch backend (torch_sgd.py)",
    ),
    Difference(
        "default_learning_rate",
        "optimizer strings: 'sgd' lr 0.01, 'rmsprop' 1e-3, 'adam' 1e-3",
        "torch.optim defaults: SGD lr 1e-3, RMSprop 1e-2, Adam 1e-3",
        "torch gets the spec's learning rate; native gives torch its own default where the course used a string",
        "keras/src/optimizers/sgd.py; torch.optim.SGD docs",
        layer=API,
        layer_reason="the defaults of Keras' optimizer strings, whatever the backend",
    ),
    Difference(
        "batchnorm_momentum",
        f"momentum={KERAS_BATCHNORM_MOMENTUM}: moving = m*moving + (1-m)*batch",
        f"momentum={TORCH_BATCHNORM_MOMENTUM}: running = (1-m)*running + m*batch",
        f"torch momentum = 1 - {KERAS_BATCHNORM_MOMENTUM}",
        "keras/src/layers/normalization/batch_normalization.py; torch.nn.BatchNorm2d docs",
        layer=API,
        layer_reason=("a default of Keras' BatchNormalization (written in keras.ops), the same on every "
                      "backend"),
    ),
    Difference(
        "batchnorm_epsilon",
        f"epsilon={KERAS_BATCHNORM_EPSILON}",
        f"eps={TORCH_BATCHNORM_EPS}",
        f"torch eps={KERAS_BATCHNORM_EPSILON}",
        "keras/src/layers/normalization/batch_normalization.py; torch.nn.BatchNorm2d docs",
        layer=API,
        layer_reason="a default of Keras' BatchNormalization, the same on every backend",
    ),
    Difference(
        "batchnorm_variance",
        "moving variance updated with the biased batch variance",
        "running_var updated with the unbiased (n/(n-1)) batch variance",
        "torch runs KerasBatchNorm2d (torch_models.layers), which keeps the biased estimate",
        "keras/src/layers/normalization/batch_normalization.py; torch.nn.BatchNorm2d docs",
        layer=API,
        layer_reason="Keras' BatchNormalization updates with the biased moments on every backend",
    ),
    Difference(
        "gru_layout",
        "kernel (in, 3H) gates [z, r, h]; bias (2, 3H) = [input; recurrent]; reset_after=True",
        "weight_ih (3H, in) gates [r, z, n]; two biases (3H,)",
        "weight transfer transposes and swaps the first two gate blocks (parity.weights)",
        "keras/src/layers/rnn/gru.py; nobuco converter_GRU; torch.nn.GRU docs",
        layer=API,
        layer_reason="the variables' layout is Keras' GRU's on every backend",
    ),
    Difference(
        "lstm_biases",
        "LSTM: one bias (4H,), gates [i, f, c, o]; SimpleRNN: one bias (H,)",
        "nn.LSTM: two biases b_ih, b_hh (4H,), gates [i, f, g, o]; nn.RNN: two biases b_ih, b_hh (H,)",
        "weight transfer puts the Keras bias in b_ih and zeroes (and freezes) b_hh (parity.weights)",
        "keras/src/layers/rnn/lstm.py, simple_rnn.py; nobuco converter_LSTM; torch.nn.LSTM, torch.nn.RNN docs",
        layer=API,
        layer_reason="Keras' LSTM and SimpleRNN hold one bias on every backend",
    ),
    Difference(
        "flatten_order",
        "Flatten of NHWC is (H, W, C) order",
        "torch.flatten of NCHW is (C, H, W) order",
        "weight transfer permutes the first Dense kernel after a Flatten (parity.weights)",
        "keras/src/layers/reshaping/flatten.py; gzuidhof/nn-transfer #16",
        layer=API,
        layer_reason=("Keras stays channels_last on the torch backend: its Flatten sees (H, W, C) as on "
                      "TensorFlow"),
    ),
    Difference(
        "same_padding_stride",
        "padding='same' with stride > 1 pads the extra row/column at the bottom/right",
        "padding='same' is refused for stride > 1; padding=k//2 pads both sides equally",
        "torch pads explicitly like TensorFlow before a 'valid' convolution (torch_models.layers.Conv2dSame)",
        "pytorch/pytorch #3867; tensorflow/tensorflow #7969",
        layer=API,
        layer_reason=("Keras' torch backend pads 'same' like TensorFlow (keras/src/backend/torch/nn.py "
                      "_apply_same_padding)"),
    ),
    Difference(
        "crossentropy_on_probabilities",
        "model ends in softmax/sigmoid; the loss gets probabilities and the TF backend recovers the logits",
        "idiomatic port of a sigmoid/softmax model: BCELoss / NLLLoss(log p) on the probabilities",
        "torch returns logits and uses CrossEntropyLoss / BCEWithLogitsLoss (the math Keras' logit recovery does)",
        "keras/src/backend/tensorflow/nn.py _get_logits; torch BCELoss docs (log clamped at -100)",
        layer=RUNTIME,
        layer_reason=("the logit recovery is Keras' TensorFlow backend's (_get_logits); its torch backend "
                      "takes the log of the probabilities clipped to [1e-7, 1 - 1e-7] "
                      "(keras/src/backend/torch/nn.py)"),
    ),
    Difference(
        "l2_vs_weight_decay",
        "kernel_regularizer=L2(l) adds l*sum(w^2) of the kernel to the loss (gradient 2*l*w)",
        "optimizer weight_decay=l adds l*w to every parameter's gradient, biases included",
        "torch adds l*sum(w^2) of the regularized kernels to its loss",
        "keras/src/regularizers/regularizers.py; torch.optim.SGD weight_decay docs",
        layer=API,
        layer_reason="kernel_regularizer is Keras' API on every backend; weight_decay is torch.optim's",
    ),
    Difference(
        "lr_schedule_interval",
        "a LearningRateSchedule object is evaluated at every optimizer step",
        "Lightning steps an lr_scheduler once per epoch unless its interval is 'step'",
        "the torch scheduler's interval is 'step' for a per-step Keras schedule",
        "keras/src/optimizers/schedules/learning_rate_schedule.py; Lightning lr_scheduler_config docs",
        layer=API,
        layer_reason="when a schedule steps is the training loop's rule: Keras' fit vs Lightning's Trainer",
    ),
    Difference(
        "accuracy_average",
        "metrics=['accuracy']: fraction of correct samples",
        "torchmetrics MulticlassAccuracy: average='macro' (mean of per-class recalls)",
        f"torchmetrics average='{KERAS_ACCURACY_AVERAGE}'",
        "keras/src/metrics/accuracy_metrics.py; torchmetrics MulticlassAccuracy docs",
        layer=API,
        layer_reason="the metric's definition: Keras' accuracy vs torchmetrics' default",
    ),
    Difference(
        "early_stopping_mode",
        "EarlyStopping/ModelCheckpoint mode='auto': the direction follows the monitored metric (max for accuracy)",
        f"EarlyStopping/ModelCheckpoint mode='{LIGHTNING_DEFAULT_MONITOR_MODE}' by default, whatever is monitored",
        "torch gets the direction of the monitored metric (max for accuracy, min for loss and mae)",
        "keras/src/callbacks/monitor_callback.py _set_monitor_op; lightning/pytorch/callbacks/early_stopping.py",
        layer=API,
        layer_reason="a default of the callbacks: Keras' vs Lightning's",
    ),
    Difference(
        "early_stopping_non_finite",
        "the first monitored value is the best whatever it is (NaN too); a later NaN or inf is no improvement and "
        "patience counts on; ModelCheckpoint(save_best_only) likewise keeps a first NaN",
        "EarlyStopping(check_finite=True) stops at the first NaN or inf; best starts at +-inf; ModelCheckpoint "
        "scores a NaN as the worst value",
        "torch decides by Keras' rule (align.keras_improvement): KerasRuleEarlyStopping, KerasRuleCheckpoint "
        "(torch_models.callbacks)",
        "keras/src/callbacks/early_stopping.py on_epoch_end; lightning/pytorch/callbacks/early_stopping.py "
        "_evaluate_stopping_criteria, model_checkpoint.py _update_best_and_save",
        layer=API,
        layer_reason="the callbacks' rule: Keras' vs Lightning's",
    ),
    Difference(
        "early_stopping_restore_min_delta",
        "restore_best_weights restores the last epoch that improved by more than min_delta",
        "the reloaded best checkpoint (ModelCheckpoint(save_top_k=1)) has no min_delta: it holds the epoch of the "
        "lowest value, which may come after a gain too small to reset patience",
        "torch's restore checkpoint is saved at each improvement of Keras' rule, min_delta included "
        "(KerasRuleCheckpoint)",
        "keras/src/callbacks/early_stopping.py best_weights; lightning/pytorch/callbacks/model_checkpoint.py "
        "check_monitor_top_k",
        layer=API,
        layer_reason="the callbacks' rule: Keras' vs Lightning's",
    ),
    Difference(
        "augmentation_stream",
        "random layers (RandomFlip, RandomRotation, RandomTranslation, RandomContrast, RandomZoom) draw each "
        "image's parameters from Keras' seed generator",
        "torchvision.transforms.v2 (RandomHorizontalFlip, RandomAffine, ColorJitter) draw from torch's global RNG, "
        "RandomAffine in one resampling with whole-pixel shifts",
        "each sample's parameters are drawn once from parity.plan.sample_rng(seed, epoch, index) with the Keras "
        "layers' distributions (parity.augment); each framework applies them op by op with its own image ops",
        "keras/src/layers/preprocessing/image_preprocessing/random_*.py get_random_transformation; "
        "torchvision/transforms/v2/_geometry.py RandomAffine",
        layer=API,
        layer_reason=("which random layers draw the parameters, with which distributions: Keras' vs "
                      "torchvision's (natively the backends' generators differ too; aligned mode draws in "
                      "numpy)"),
        backend_random=True,
    ),
    Difference(
        "augmentation_fill_mode",
        "fill_mode 'reflect' (default) or 'nearest': points outside the image take mirrored or edge pixels",
        "torchvision affine/rotate fill outside points with a constant (0)",
        "torch pads the image (padding_mode 'symmetric' or 'edge') far enough, transforms, and crops back",
        "keras/src/backend/tensorflow/image.py affine_transform (ImageProjectiveTransformV3); "
        "torchvision/transforms/v2/functional/_geometry.py affine_image",
        layer=API,
        layer_reason="Keras' fill modes hold on every backend; torchvision fills with a constant",
    ),
    Difference(
        "augmentation_contrast_mean",
        "RandomContrast: (x - mean) * f + mean with each channel's own mean, clipped to value_range",
        "adjust_contrast / ColorJitter: blends with the mean of the grayscale image, clamped to [0, 1] for floats",
        "torch computes Keras' per-channel form in torch ops (torch_models.augment)",
        "keras/src/layers/preprocessing/image_preprocessing/random_contrast.py; "
        "torchvision/transforms/v2/functional/_color.py adjust_contrast",
        layer=API,
        layer_reason="Keras' RandomContrast formula holds on every backend; torchvision's differs",
    ),
    Difference(
        "avgpool_count_include_pad",
        "AveragePooling2D(3, strides=1, padding='same') (InceptionV3's pool branches) averages only the pixels "
        "inside the image: a corner window divides by 4, an edge window by 6",
        "torchvision's Inception blocks call F.avg_pool2d(x, 3, stride=1, padding=1), count_include_pad=True: "
        "the zero padding counts, every window divides by 9",
        "torch pools with count_include_pad=False (torch_models.transfer)",
        "keras/src/applications/inception_v3.py; tf.nn.avg_pool ('SAME' excludes padding); "
        "torchvision/models/inception.py InceptionA._forward; torch.nn.AvgPool2d docs",
        layer=API,
        layer_reason=("Keras' torch backend pools 'same' with count_include_pad=False like TensorFlow; "
                      "torchvision's Inception blocks count the padding"),
    ),
    Difference(
        "frozen_batchnorm_mode",
        "BatchNormalization with trainable=False runs in inference mode even in fit (training=True): moving "
        "statistics, never updated",
        "requires_grad=False freezes only gamma and beta: after model.train() (Lightning calls it) BatchNorm "
        "normalises with the batch statistics and updates its running statistics",
        "the frozen trunk stays in eval() whenever the model is put in train() (torch_models.transfer)",
        "keras/src/layers/normalization/batch_normalization.py call (training and self.trainable); Keras "
        "transfer-learning guide; torch.nn.BatchNorm2d docs",
        layer=API,
        layer_reason="Keras' trainable=False inference rule vs torch's train() mode, as Lightning calls it",
    ),
    Difference(
        "tf32",
        "TensorFloat-32 on by default for fp32 matmul and conv on Ampere+ GPUs",
        "fp32 matmul full precision by default; cuDNN conv TF32 on by default",
        "TF32 off in both on GPU (no effect on CPU)",
        "tf.config.experimental.enable_tensor_float_32_execution; torch.set_float32_matmul_precision",
        layer=RUNTIME,
        layer_reason=("a kernel precision mode: TensorFlow's default differs from torch's whatever the API on "
                      "top"),
    ),
    Difference(
        "determinism",
        "ops may pick non-deterministic kernels; tf.config.experimental.enable_op_determinism() forbids them",
        "ops may pick non-deterministic kernels; torch.use_deterministic_algorithms(True) forbids them",
        "deterministic ops in both",
        "tf.config.experimental.enable_op_determinism docs; pytorch notes/randomness",
        layer=RUNTIME,
        layer_reason="which kernels each runtime picks",
    ),
    Difference(
        "float32_summation_order",
        "TensorFlow's CPU/GPU kernels (Eigen, oneDNN, cuDNN) sum in their own order",
        "ATen's kernels (oneDNN, MKL, cuDNN) sum in another order",
        "cannot be aligned: outputs differ by float32 rounding (~1e-7 relative), which training may amplify; where a "
        "max-pool window holds two near-equal values or a ReLU input sits near 0, an ulp re-routes a position's "
        "whole gradient (c2w4_rps_cnn: gradient norms 2.2e-4 apart at step 3 while the losses agree to 3e-7; torch "
        "against itself one ulp apart: 3.5e-3)",
        "IEEE 754 non-associativity; parity_notes (a): forward tolerances of 1e-5",
        switchable=False,
        layer=RUNTIME,
        layer_reason="the order in which each runtime's kernels sum",
    ),
    Difference(
        "tensor_layout",
        "images NHWC; Conv2D kernel (kh, kw, in, out); Dense kernel (in, out)",
        "images NCHW; Conv2d weight (out, in, kh, kw); Linear weight (out, in)",
        "the shared arrays stay NHWC; torch models permute to NCHW in forward; weights are transposed (parity.weights)",
        "HF modeling_tf_pytorch_utils; AlgoPerf torch2jax_utils",
        switchable=False,
        layer=API,
        layer_reason=("Keras keeps NHWC images and (in, out) kernels on every backend (its torch backend "
                      "transposes inside the ops); torch modules are NCHW"),
    ),
    Difference(
        "loss_target_shape",
        "losses squeeze or expand y_true to the rank of y_pred: targets (N,) against outputs (N, 1) are fine",
        "MSELoss / BCEWithLogitsLoss broadcast: targets (N,) against outputs (N, 1) become an (N, N) loss matrix",
        "the shared data stores binary and regression targets as (N, 1) float32 (parity.datasets)",
        "keras/src/losses/loss.py squeeze_or_expand_to_same_rank; torch MSELoss docs (broadcast warning)",
        switchable=False,
        layer=API,
        layer_reason="Keras' losses reshape y_true on every backend; torch's losses broadcast",
    ),
)

SWITCHABLE = tuple(d.key for d in DIFFERENCES if d.switchable)


def difference(key: str) -> Difference:
    """The documented difference `key`; a ValueError lists the known keys."""
    for entry in DIFFERENCES:
        if entry.key == key:
            return entry
    raise ValueError(f"unknown difference {key!r}; known: {', '.join(d.key for d in DIFFERENCES)}")


def layer_of(key: str) -> str:
    """The layer (API or RUNTIME) of the documented difference `key`; a ValueError lists the known keys."""
    return difference(key).layer


def check_mode(mode: str) -> str:
    """`mode` if it is a known mode; otherwise a ValueError listing the modes."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


@dataclass(frozen=True)
class Alignment:
    """Which switchable differences are left native; every other one is aligned."""

    native: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.native) - set(SWITCHABLE))
        if unknown:
            raise ValueError(f"not switchable differences: {', '.join(unknown)}; switchable: {', '.join(SWITCHABLE)}")

    @classmethod
    def from_mode(cls, mode: str, native: Iterable[str] = ()) -> Alignment:
        """Mode `aligned` (optionally with some differences native) or mode `native` (all of them)."""
        native = frozenset(native)
        if check_mode(mode) == "native":
            if native:
                raise ValueError("--native names single differences to leave native in aligned mode; "
                                 "mode native already leaves all of them native")
            return cls(frozenset(SWITCHABLE))
        return cls(native)

    @classmethod
    def from_job(cls, native: Iterable[str]) -> Alignment:
        return cls(frozenset(native))

    def to_job(self) -> list[str]:
        return sorted(self.native)

    def is_aligned(self, key: str) -> bool:
        if key not in SWITCHABLE:
            raise ValueError(f"{key!r} is not a switchable difference; switchable: {', '.join(SWITCHABLE)}")
        return key not in self.native

    @property
    def mode(self) -> str:
        """`aligned`, `native`, or `aligned-except` for a partial switch."""
        if not self.native:
            return "aligned"
        return "native" if self.native == frozenset(SWITCHABLE) else "aligned-except"

    def describe(self) -> str:
        if self.mode == "aligned-except":
            return f"aligned except {', '.join(sorted(self.native))} (native)"
        return self.mode


ALIGNED = Alignment()
NATIVE = Alignment(frozenset(SWITCHABLE))
# The runtime differences whose aligned setting makes torch compute what Keras' TensorFlow backend computes (per-
# occurrence embedding gradients, the logit recovery); Keras on torch computes torch's own form of both. Left native
# in the torch run, Lightning differs from Keras on torch by the API alone (the decomposition's API pair); aligned,
# these two part Keras on torch from Lightning as they part it from Keras on TensorFlow.
TENSORFLOW_RUNTIME_FORMS = ("embedding_sparse_gradient", "crossentropy_on_probabilities")
KERAS_TORCH_PEER = Alignment(frozenset(TENSORFLOW_RUNTIME_FORMS))


def differences_in_force(pair: tuple[str, str], lightning_native: Iterable[str], keras_native: Iterable[str],
                         forms_met: Iterable[str] = ()) -> list[str]:
    """The differences in force between `pair`'s two frameworks, in DIFFERENCES' order. Keras against Lightning:
    those the torch run left native. `forms_met`: the TENSORFLOW_RUNTIME_FORMS the model meets, which Keras on torch
    always computes in torch's form: between the two Keras frameworks they are in force with the runtime differences
    the Keras processes left native and those of the API left native whose native form draws from the backend's
    random generator (`backend_random`: the same distributions, other streams); between Keras on torch and Lightning they are in force
    where Lightning aligned them to TensorFlow, and those Lightning left native are not."""
    lightning_native, forms_met = set(lightning_native), set(forms_met)
    if "keras-torch" not in pair:
        keys = lightning_native
    elif "lightning" not in pair:
        keys = {key for key in keras_native if layer_of(key) == RUNTIME or difference(key).backend_random} | forms_met
    else:
        keys = (lightning_native - set(TENSORFLOW_RUNTIME_FORMS)) | (forms_met - lightning_native)
    return [entry.key for entry in DIFFERENCES if entry.key in keys]


def copied_keras_kinds(alignment: Alignment) -> frozenset[str]:
    """The Keras layer kinds whose initial weights the torch model takes over."""
    kinds = set()
    if alignment.is_aligned("kernel_init"):
        kinds |= {"Dense", "Conv1D", "Conv2D", "SimpleRNN", "GRU", "LSTM", "Bidirectional", "BatchNormalization"}
    if alignment.is_aligned("embedding_init"):
        kinds.add("Embedding")
    return frozenset(kinds)


def keras_optimizer_config(optimizer: Optimizer) -> tuple[str, dict[str, Any]]:
    """Keras optimizer class name and its keyword arguments, every value explicit."""
    if optimizer.name == "adam":
        return "Adam", {"learning_rate": optimizer.learning_rate, "beta_1": ADAM_BETAS[0], "beta_2": ADAM_BETAS[1],
                        "epsilon": KERAS_ADAM_EPSILON}
    if optimizer.name == "rmsprop":
        return "RMSprop", {"learning_rate": optimizer.learning_rate, "rho": KERAS_RMSPROP_RHO,
                           "epsilon": KERAS_RMSPROP_EPSILON}
    return "SGD", {"learning_rate": optimizer.learning_rate, "momentum": optimizer.momentum}


def torch_learning_rate(optimizer: Optimizer, alignment: Alignment) -> float:
    """The spec's learning rate, or torch's own default where the course relied on Keras' default and lr is native."""
    if optimizer.keras_default_lr and not alignment.is_aligned("default_learning_rate"):
        return TORCH_DEFAULT_LR[optimizer.name]
    return optimizer.learning_rate


def torch_optimizer_config(optimizer: Optimizer, alignment: Alignment) -> tuple[str, dict[str, Any]]:
    """The torch optimizer class name and keyword arguments.

    Names starting with `Keras` are torch_models.optimizers (Keras' update rule in torch ops);
    the others are torch.optim classes.
    """
    lr = torch_learning_rate(optimizer, alignment)
    if optimizer.name == "adam":
        eps = KERAS_ADAM_EPSILON if alignment.is_aligned("adam_epsilon_value") else TORCH_ADAM_EPS
        name = "KerasAdam" if alignment.is_aligned("adam_epsilon_placement") else "Adam"
        return name, {"lr": lr, "betas": ADAM_BETAS, "eps": eps}
    if optimizer.name == "rmsprop":
        alpha = KERAS_RMSPROP_RHO if alignment.is_aligned("rmsprop_rho") else TORCH_RMSPROP_ALPHA
        if alignment.is_aligned("rmsprop_epsilon"):
            return "KerasRMSprop", {"lr": lr, "rho": alpha, "eps": KERAS_RMSPROP_EPSILON}
        return "RMSprop", {"lr": lr, "alpha": alpha, "eps": TORCH_RMSPROP_EPS}
    name = "KerasSGD" if alignment.is_aligned("sgd_momentum_form") else "SGD"
    return name, {"lr": lr, "momentum": optimizer.momentum}


@dataclass(frozen=True)
class BatchNormSettings:
    """torch BatchNorm settings: momentum in torch's convention, eps, and whether the running variance is biased."""

    momentum: float
    eps: float
    biased_running_var: bool


def torch_batchnorm(alignment: Alignment, keras_momentum: float = KERAS_BATCHNORM_MOMENTUM,
                    keras_epsilon: float = KERAS_BATCHNORM_EPSILON) -> BatchNormSettings:
    """The torch side of a Keras BatchNormalization(momentum, epsilon)."""
    momentum = 1.0 - keras_momentum if alignment.is_aligned("batchnorm_momentum") else TORCH_BATCHNORM_MOMENTUM
    eps = keras_epsilon if alignment.is_aligned("batchnorm_epsilon") else TORCH_BATCHNORM_EPS
    return BatchNormSettings(momentum, eps, alignment.is_aligned("batchnorm_variance"))


def sparse_embedding_gradient(alignment: Alignment) -> bool:
    """Whether torch embeddings emit per-occurrence (sparse) gradients for the Keras update rules to square.

    Only the Keras rules (torch_models.optimizers) implement Keras' treatment; torch.optim's Adam
    and RMSprop refuse sparse gradients, so a native optimizer rule means dense gradients.
    """
    keras_rules = all(alignment.is_aligned(key) for key in ("adam_epsilon_placement", "rmsprop_epsilon",
                                                              "sgd_momentum_form"))
    return alignment.is_aligned("embedding_sparse_gradient") and keras_rules


def reorder_gru_gates(alignment: Alignment) -> bool:
    """Whether weight transfer swaps Keras' [z, r, h] gate blocks into torch's [r, z, n]."""
    return alignment.is_aligned("gru_layout")


def zero_lstm_recurrent_bias(alignment: Alignment) -> bool:
    """Whether weight transfer zeroes torch's second LSTM or RNN bias (b_hh), so b_ih + b_hh is the Keras bias."""
    return alignment.is_aligned("lstm_biases")


# Bias vectors torch's recurrent layer keeps beyond Keras', in units of H: nn.LSTM's b_hh (4 gates) and nn.RNN's
# b_hh (1) have no Keras twin (lstm_biases); Keras' GRU(reset_after=True) keeps both biases, like nn.GRU.
_TORCH_EXTRA_BIAS_GATES = {"lstm": 4, "simple_rnn": 1, "gru": 0}


def _recurrent_layers(spec: ModelSpec) -> list[tuple[str, int, int]]:
    """(cell, units, directions) of every recurrent layer of `spec`'s architecture, in order."""
    h = spec.layers
    if spec.architecture == "bilstm_classifier":
        return [("lstm", units, 2) for units in h.lstm_units]
    if spec.architecture == "bigru_classifier":
        return [("gru", units, 2) for units in h.gru_units]
    if spec.architecture == "window_conv_lstm":
        return [("lstm", units, 1) for units in h.lstm_units]
    if spec.architecture == "window_rnn":
        return [(h.cell, units, 2 if h.bidirectional else 1) for units in h.units]
    if spec.architecture == "text_generator":
        return [("lstm", h.lstm_units, 2 if h.bidirectional else 1)]
    if spec.architecture == "glove_conv_lstm_classifier":
        return [("lstm", h.lstm_units, 1)]
    return []


def torch_extra_parameters(spec: ModelSpec) -> int:
    """How many more parameters the torch model of `spec` has than its Keras twin (and the course's count).

    lstm_biases: torch's nn.LSTM keeps two bias vectors (b_ih, b_hh) where Keras' LSTM keeps one, so every
    LSTM direction counts 4 * units more in torch (nn.RNN: units more than SimpleRNN). BatchNormalization
    (InceptionV3's, scale=False): Keras counts beta and the non-trainable moving mean and variance (3 per
    channel), torch's parameters() hold weight (gamma, fixed at 1 and frozen: Keras has none) and bias, its
    running statistics are buffers (2 per channel): one fewer per channel in torch. Every other layer, GRU
    included, has the same parameters in both frameworks.
    """
    extra = sum(_TORCH_EXTRA_BIAS_GATES[cell] * units * directions for cell, units, directions in _recurrent_layers(spec))
    if spec.architecture == "inception_transfer":
        from parity.inception import TRUNK_BATCHNORM_CHANNELS

        extra -= TRUNK_BATCHNORM_CHANNELS[spec.layers.cut_layer]
    return extra


# Frozen pretrained embedding (c3w3_sentiment140_glove). Keras Embedding(trainable=False) puts its table among the
# model's non-trainable weights, which fit never hands to the optimizer; torch keeps it in parameters() with
# requires_grad=False, so it gets no gradient and every update rule (torch.optim's and torch_models.optimizers')
# skips it. requires_grad is not saved in a state_dict (Keras keeps `trainable` in the .keras config), so the torch
# builder freezes the table itself rather than relying on the weight transfer. The defaults are opposite: Keras'
# Embedding(weights=...) trains unless trainable=False, torch's nn.Embedding.from_pretrained freezes unless
# freeze=False; both builders pass the spec's `embedding_trainable` explicitly. Both count the frozen table in
# their parameter counts (count_params, numel), so the counts stay the course's.
def pretrained_embedding(layers: Any) -> np.ndarray | None:
    """The pretrained (vocab_size, embedding_dim) float32 matrix in `layers.embedding_weights` (a .npy file that the
    data loader wrote), or None when the spec names none (random weights, e.g. `parity check`)."""
    path = layers.embedding_weights
    if path is None:
        return None
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read the pretrained embedding matrix {path}: {error}; load the data again so its "
                         "loader writes the matrix (or run without it: random weights)") from None
    expected = (layers.vocab_size, layers.embedding_dim)
    if matrix.shape != expected or matrix.dtype != np.float32:
        raise ValueError(f"pretrained embedding matrix {path} is {matrix.dtype} {matrix.shape}, the model needs "
                         f"float32 {expected} (vocab_size, embedding_dim): the loader must state the vocabulary size "
                         "of the matrix it wrote in spec_overrides")
    return matrix


def avgpool_count_include_pad(alignment: Alignment) -> bool:
    """torch's count_include_pad for a 'same' AveragePooling2D: False (Keras' average over the image pixels) when
    aligned, True (torchvision's Inception blocks) when native."""
    return not alignment.is_aligned("avgpool_count_include_pad")


def frozen_batchnorm_inference(alignment: Alignment) -> bool:
    """Whether a frozen torch trunk keeps its BatchNorm layers in eval() while the model trains (Keras' rule)."""
    return alignment.is_aligned("frozen_batchnorm_mode")


def reorder_flatten(alignment: Alignment) -> bool:
    """Whether weight transfer permutes a Dense kernel that follows a Flatten from (H, W, C) to (C, H, W) rows."""
    return alignment.is_aligned("flatten_order")


def tensorflow_same_padding(alignment: Alignment) -> bool:
    """Whether torch pads a strided 'same' convolution like TensorFlow (extra pixel bottom/right)."""
    return alignment.is_aligned("same_padding_stride")


def loss_on_logits(alignment: Alignment) -> bool:
    """Whether the torch loss takes logits (aligned) rather than the probabilities of a literal port."""
    return alignment.is_aligned("crossentropy_on_probabilities")


def l2_as_loss_penalty(alignment: Alignment) -> bool:
    """Whether torch adds Keras' L2 penalty to the loss (aligned) instead of using optimizer weight_decay=l."""
    return alignment.is_aligned("l2_vs_weight_decay")


def lr_schedule_interval(alignment: Alignment, keras_interval: str) -> str:
    """The Lightning scheduler interval for a Keras schedule evaluated per `keras_interval` ('step' or 'epoch')."""
    return keras_interval if alignment.is_aligned("lr_schedule_interval") else "epoch"


def accuracy_average(alignment: Alignment) -> str:
    """torchmetrics' `average` for multiclass accuracy."""
    return KERAS_ACCURACY_AVERAGE if alignment.is_aligned("accuracy_average") else TORCHMETRICS_DEFAULT_AVERAGE


def keras_monitor_mode(monitor: str) -> str:
    """Keras' mode 'auto' for `monitor` (loss, val_loss, a metric or val_<metric>): 'min' or 'max'."""
    name = monitor.removeprefix("val_")
    if name not in KERAS_MONITOR_MODES:
        raise ValueError(f"no known direction for {monitor!r}; monitor one of "
                         f"{', '.join(sorted(KERAS_MONITOR_MODES))} or their val_ versions")
    return KERAS_MONITOR_MODES[name]


def torch_monitor_mode(alignment: Alignment, monitor: str) -> str:
    """The Lightning EarlyStopping/ModelCheckpoint mode for `monitor`: Keras' direction, or Lightning's default."""
    if alignment.is_aligned("early_stopping_mode"):
        return keras_monitor_mode(monitor)
    return LIGHTNING_DEFAULT_MONITOR_MODE


def keras_improvement(current: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """Keras' MonitorCallback._is_improvement: True for the first value (`best` None), whatever it is; after that
    current + min_delta < best ('min') or current - min_delta > best ('max'), strictly and in float32 (Keras
    subtracts in Python, then compares with ops.less/greater in floatx): a tie or a NaN is no improvement."""
    if best is None:
        return True
    delta = abs(min_delta)
    if mode == "min":
        return bool(np.float32(current + delta) < np.float32(best))
    return bool(np.float32(current - delta) > np.float32(best))


def keras_rule_stopping(alignment: Alignment) -> bool:
    """Whether torch's EarlyStopping and best checkpoint decide by Keras' rule (first value best, NaN no stop)."""
    return alignment.is_aligned("early_stopping_non_finite")


def keras_rule_restore(alignment: Alignment) -> bool:
    """Whether torch restores the epoch of Keras' early-stopping best (min_delta) rather than the lowest value."""
    return alignment.is_aligned("early_stopping_restore_min_delta")


def tf32_allowed(alignment: Alignment) -> bool | None:
    """TF32 on GPU: False (off in both) when aligned; None (each framework's default) when native."""
    return False if alignment.is_aligned("tf32") else None


def deterministic_ops(alignment: Alignment) -> bool:
    """Whether both frameworks are asked for deterministic kernels."""
    return alignment.is_aligned("determinism")
