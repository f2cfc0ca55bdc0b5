"""Each framework difference in parity.align, demonstrated; the two-process tests measure them end to end."""

import ast
from pathlib import Path

import numpy as np
import pytest

from parity import align
from parity.catalog import Optimizer


def _adam_step_keras(grad, lr, eps, t, beta1=0.9, beta2=0.999):
    """Keras: alpha = lr*sqrt(1-b2^t)/(1-b1^t); w -= alpha*m/(sqrt(v)+eps) (eps on the uncorrected v)."""
    m, v = (1 - beta1) * grad, (1 - beta2) * grad**2
    alpha = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
    return -alpha * m / (np.sqrt(v) + eps)


def _adam_step_torch(grad, lr, eps, t, beta1=0.9, beta2=0.999):
    """torch: w -= lr*m_hat/(sqrt(v_hat)+eps) (eps on the bias-corrected v)."""
    m, v = (1 - beta1) * grad, (1 - beta2) * grad**2
    return -lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)


def test_adam_epsilon_value_is_aligned_but_its_placement_cannot_be():
    aligned = align.torch_optimizer_config(Optimizer("adam", 1e-3), "aligned")[1]
    native = align.torch_optimizer_config(Optimizer("adam", 1e-3), "native")[1]
    assert aligned["eps"] == align.KERAS_ADAM_EPSILON == 1e-7 and native["eps"] == align.TORCH_ADAM_EPS == 1e-8
    # For a tiny gradient the placement matters: Keras' eps acts like eps/sqrt(1-b2^t) = 3.2e-6 at step 1.
    grad = np.array([1e-6])
    keras_step = _adam_step_keras(grad, 1e-3, 1e-7, t=1)
    torch_step = _adam_step_torch(grad, 1e-3, 1e-7, t=1)
    assert keras_step[0] == pytest.approx(torch_step[0] * (1e-6 + 1e-7) / (1e-6 + 1e-7 / np.sqrt(1e-3)), rel=1e-9)
    assert abs(keras_step[0] / torch_step[0] - 1) > 0.7
    # For ordinary gradients both are -lr at step 1, within 1e-4 relative.
    np.testing.assert_allclose(_adam_step_keras(np.array([0.1]), 1e-3, 1e-7, 1),
                               _adam_step_torch(np.array([0.1]), 1e-3, 1e-7, 1), rtol=1e-4)


def test_rmsprop_rho_epsilon_aligned_in_value_not_in_placement():
    aligned = align.torch_optimizer_config(Optimizer("rmsprop", 1e-3), "aligned")[1]
    native = align.torch_optimizer_config(Optimizer("rmsprop", 1e-3), "native")[1]
    assert (aligned["alpha"], aligned["eps"]) == (0.9, 1e-7)
    assert (native["alpha"], native["eps"]) == (0.99, 1e-8)
    v = np.array([1e-14])  # where v ~ eps the two placements differ: sqrt(v + eps) vs sqrt(v) + eps
    assert np.sqrt(v + 1e-7)[0] / (np.sqrt(v) + 1e-7)[0] > 100


def test_sgd_default_lr_is_never_left_to_a_default():
    keras_name, keras_kwargs = align.keras_optimizer_config(Optimizer("sgd", 0.01))
    torch_name, torch_kwargs = align.torch_optimizer_config(Optimizer("sgd", 0.01), "native")
    assert (keras_name, torch_name) == ("SGD", "SGD")
    assert keras_kwargs["learning_rate"] == torch_kwargs["lr"] == 0.01  # torch's own default would be 1e-3


def test_sgd_momentum_forms_agree_while_the_learning_rate_is_constant():
    grads = np.random.default_rng(0).normal(size=20)
    lr, mu = 0.01, 0.9
    w_keras, v = 0.0, 0.0
    w_torch, b = 0.0, 0.0
    for g in grads:
        v = mu * v - lr * g  # Keras: lr inside the buffer
        w_keras += v
        b = mu * b + g  # torch: lr outside the buffer
        w_torch -= lr * b
    assert w_keras == pytest.approx(w_torch, rel=1e-12)


def test_initial_weights_copied_only_when_aligned():
    assert align.copy_keras_initial_weights("aligned") and not align.copy_keras_initial_weights("native")
    # The defaults differ in scale: Keras glorot_uniform vs torch kaiming_uniform(a=sqrt(5)) for Dense(784 -> 128).
    keras_bound = np.sqrt(6 / (784 + 128))
    torch_bound = 1 / np.sqrt(784)
    assert keras_bound / torch_bound == pytest.approx(2.2711, rel=1e-3)


def test_crossentropy_on_probabilities_equals_logits_path_until_probabilities_clip():
    logits = np.array([2.0, -1.0, 0.5])
    probabilities = np.exp(logits) / np.exp(logits).sum()
    log_softmax = logits - np.log(np.exp(logits).sum())
    assert -np.log(probabilities[1]) == pytest.approx(-log_softmax[1], rel=1e-12)
    # Without recovering the logits, Keras clips probabilities at 1e-7: a confident wrong answer's loss caps at 16.1.
    extreme = np.array([40.0, 0.0])
    exact = -(extreme[1] - np.log(np.exp(extreme).sum()))
    clipped = -np.log(max(np.exp(extreme[1]) / np.exp(extreme).sum(), 1e-7))
    assert exact == pytest.approx(40.0) and clipped == pytest.approx(16.118, rel=1e-4)


def test_tf32_off_in_both_when_aligned_and_left_to_defaults_when_native():
    assert align.tf32_allowed("aligned") is False
    assert align.tf32_allowed("native") is None


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="aligned, native"):
        align.copy_keras_initial_weights("loose")


def test_every_documented_difference_has_a_test_named_after_it():
    names = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        names |= {node.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)}
    missing = [d.key for d in align.DIFFERENCES if not any(d.key in name for name in names)]
    assert not missing, f"differences without a demonstrating test: {missing}"


def test_accuracy_average_torchmetrics_default_is_per_class_not_per_sample():
    # This test imports torch (never TensorFlow) in the test process.
    import torch
    import torchmetrics

    from parity.catalog import get_spec
    from torch_models.base import _metric

    # 9 samples of class 0 all right, 1 sample of class 1 wrong: Keras accuracy 0.9, macro mean 0.5.
    logits = torch.tensor([[5.0, 0.0]] * 10)
    labels = torch.tensor([0] * 9 + [1])
    assert torchmetrics.classification.MulticlassAccuracy(2)(logits, labels).item() == pytest.approx(0.5)
    ours = _metric(get_spec("c1w2_fmnist_dnn"))
    padded = torch.cat([logits, torch.zeros(10, 8)], dim=1)
    assert ours(padded, labels).item() == pytest.approx(0.9)


def test_loss_target_shape_broadcasting_would_silently_change_the_loss():
    predictions = np.array([[1.0], [2.0], [3.0]])  # model outputs (N, 1)
    targets = np.array([1.0, 2.0, 4.0])  # targets (N,)
    keras_like = np.mean((predictions[:, 0] - targets) ** 2)  # ranks reconciled
    broadcast = np.mean((predictions - targets) ** 2)  # what torch's MSELoss computes for these shapes
    assert keras_like == pytest.approx(1 / 3) and broadcast == pytest.approx(21 / 9)
    from parity.catalog import get_spec
    from parity.datasets import load_dataset

    assert load_dataset(get_spec("c4w2_ts_dnn"), synthetic=True).y_train.shape[1:] == (1,)
