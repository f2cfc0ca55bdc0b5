"""The alignment module: what each setting is in `aligned` and `native`, and the Keras rules written in torch.

The measured effect of each difference lives in tests/test_differences.py (lockstep) and
tests/test_probes.py (layer probes); here the settings themselves are pinned. The torch
tests import torch (never TensorFlow) in the test process.
"""

import ast
from pathlib import Path

import numpy as np
import pytest

from parity import align
from parity.catalog import Optimizer

ADAM = Optimizer("adam", 1e-3)
RMSPROP = Optimizer("rmsprop", 1e-3)
SGD_MOMENTUM = Optimizer("sgd", 0.01, momentum=0.9)


def native(*keys: str) -> align.Alignment:
    return align.Alignment(frozenset(keys))


def test_every_documented_difference_has_a_measuring_test_named_after_it():
    names = set()
    # The tests that measure an effect in both workers (test_augment.py: the augmentation differences).
    for name in ("test_differences.py", "test_probes.py", "test_augment.py"):
        tree = ast.parse((Path(__file__).parent / name).read_text())
        names |= {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    missing = [d.key for d in align.DIFFERENCES if not any(d.key in name for name in names)]
    assert not missing, f"differences without a measuring test named after them: {missing}"


def test_modes_map_to_alignments_and_single_switches_are_checked():
    assert align.Alignment.from_mode("aligned") == align.ALIGNED and align.ALIGNED.mode == "aligned"
    assert align.Alignment.from_mode("native") == align.NATIVE and align.NATIVE.mode == "native"
    partial = align.Alignment.from_mode("aligned", ["adam_epsilon_value"])
    assert partial.mode == "aligned-except" and partial.describe() == "aligned except adam_epsilon_value (native)"
    assert align.Alignment.from_job(partial.to_job()) == partial
    with pytest.raises(ValueError, match="aligned, native"):
        align.Alignment.from_mode("loose")
    with pytest.raises(ValueError, match="not switchable differences: tensor_layout"):
        align.Alignment(frozenset({"tensor_layout"}))
    with pytest.raises(ValueError, match="already leaves all of them native"):
        align.Alignment.from_mode("native", ["tf32"])


def test_kernel_init_and_embedding_init_decide_which_keras_weights_torch_takes():
    assert {"Dense", "Conv2D", "Embedding"} <= align.copied_keras_kinds(align.ALIGNED)
    assert align.copied_keras_kinds(native("kernel_init")) == {"Embedding"}
    assert "Embedding" not in align.copied_keras_kinds(native("embedding_init"))
    # The defaults differ in scale: Keras glorot_uniform vs torch kaiming_uniform(a=sqrt(5)) for Dense(784 -> 128).
    assert np.sqrt(6 / (784 + 128)) / (1 / np.sqrt(784)) == pytest.approx(2.2711, rel=1e-3)


def test_adam_epsilon_value_and_placement_switch_separately():
    assert align.torch_optimizer_config(ADAM, align.ALIGNED) == ("KerasAdam", {"lr": 1e-3, "betas": (0.9, 0.999),
                                                                              "eps": 1e-7})
    assert align.torch_optimizer_config(ADAM, native("adam_epsilon_value"))[1]["eps"] == align.TORCH_ADAM_EPS == 1e-8
    assert align.torch_optimizer_config(ADAM, native("adam_epsilon_placement")) == ("Adam", {
        "lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7})
    assert align.torch_optimizer_config(ADAM, align.NATIVE)[0] == "Adam"


def test_rmsprop_rho_and_rmsprop_epsilon_switch_separately():
    assert align.torch_optimizer_config(RMSPROP, align.ALIGNED) == ("KerasRMSprop", {"lr": 1e-3, "rho": 0.9,
                                                                                    "eps": 1e-7})
    assert align.torch_optimizer_config(RMSPROP, native("rmsprop_rho"))[1]["rho"] == 0.99
    assert align.torch_optimizer_config(RMSPROP, native("rmsprop_epsilon")) == ("RMSprop", {
        "lr": 1e-3, "alpha": 0.9, "eps": 1e-8})


def test_default_learning_rate_native_only_where_the_course_used_keras_default():
    course_sgd = Optimizer("sgd", 0.01, keras_default_lr=True)
    assert align.torch_learning_rate(course_sgd, align.ALIGNED) == 0.01
    assert align.torch_learning_rate(course_sgd, native("default_learning_rate")) == align.TORCH_DEFAULT_LR["sgd"]
    assert align.torch_learning_rate(Optimizer("sgd", 0.05), align.NATIVE) == 0.05  # stated by the course


def test_batchnorm_momentum_epsilon_variance_settings():
    assert align.torch_batchnorm(align.ALIGNED) == align.BatchNormSettings(pytest.approx(0.01), 1e-3, True)
    assert align.torch_batchnorm(native("batchnorm_momentum")).momentum == align.TORCH_BATCHNORM_MOMENTUM
    assert align.torch_batchnorm(native("batchnorm_epsilon")).eps == align.TORCH_BATCHNORM_EPS
    assert align.torch_batchnorm(native("batchnorm_variance")).biased_running_var is False


def test_layout_switches_gru_layout_lstm_biases_flatten_order_same_padding_stride():
    for key, setting in (("gru_layout", align.reorder_gru_gates), ("lstm_biases", align.zero_lstm_recurrent_bias),
                         ("flatten_order", align.reorder_flatten),
                         ("same_padding_stride", align.tensorflow_same_padding)):
        assert setting(align.ALIGNED) is True and setting(native(key)) is False, key


def test_loss_and_metric_switches_crossentropy_on_probabilities_accuracy_average_l2_vs_weight_decay():
    assert align.loss_on_logits(align.ALIGNED) and not align.loss_on_logits(native("crossentropy_on_probabilities"))
    assert align.accuracy_average(align.ALIGNED) == "micro"
    assert align.accuracy_average(native("accuracy_average")) == "macro"
    assert align.l2_as_loss_penalty(align.ALIGNED) and not align.l2_as_loss_penalty(native("l2_vs_weight_decay"))


def test_lr_schedule_interval_follows_keras_unless_native():
    assert align.lr_schedule_interval(align.ALIGNED, "step") == "step"
    assert align.lr_schedule_interval(native("lr_schedule_interval"), "step") == "epoch"


def test_tf32_and_determinism_flags():
    assert align.tf32_allowed(align.ALIGNED) is False and align.tf32_allowed(native("tf32")) is None
    assert align.deterministic_ops(align.ALIGNED) and not align.deterministic_ops(native("determinism"))


def test_embedding_sparse_gradient_needs_the_keras_update_rules():
    assert align.sparse_embedding_gradient(align.ALIGNED)
    assert not align.sparse_embedding_gradient(native("embedding_sparse_gradient"))
    # torch.optim.Adam refuses sparse gradients, so a native Adam rule means dense embedding gradients.
    assert not align.sparse_embedding_gradient(native("adam_epsilon_placement"))


# ------------------------------------------------------------------ the Keras rules in torch ops


def _train(optimizer_cls, kwargs, grads, lrs=None):
    import torch

    param = torch.nn.Parameter(torch.zeros(len(grads[0]), dtype=torch.float32))
    optimizer = optimizer_cls([param], **kwargs)
    for step, grad in enumerate(grads):
        if lrs is not None:
            for group in optimizer.param_groups:
                group["lr"] = lrs[step]
        param.grad = torch.tensor(grad, dtype=torch.float32)
        optimizer.step()
    return param.detach().numpy().astype(np.float64)


def _keras_adam_numpy(grads, lr, eps, beta1=0.9, beta2=0.999):
    w = np.zeros(len(grads[0]))
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(np.asarray(grads, dtype=np.float64), start=1):
        alpha = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
        m += (g - m) * (1 - beta1)
        v += (g * g - v) * (1 - beta2)
        w -= m * alpha / (np.sqrt(v) + eps)
    return w


def test_adam_epsilon_placement_keras_rule_matches_keras_formula_and_differs_from_torch_adam():
    import torch

    from torch_models.optimizers import KerasAdam

    # Tiny gradients (1e-6) make epsilon matter: Keras adds it to sqrt(v), torch to sqrt(v / (1 - b2^t)).
    grads = np.random.default_rng(0).normal(scale=1e-6, size=(20, 5))
    kwargs = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7}
    keras_rule = _train(KerasAdam, kwargs, grads)
    # float32 against float64 arithmetic: 1e-5 relative is ~100 float32 ulps over 20 steps.
    np.testing.assert_allclose(keras_rule, _keras_adam_numpy(grads, 1e-3, 1e-7), rtol=1e-5)
    torch_rule = _train(torch.optim.Adam, kwargs, grads)
    assert np.max(np.abs(keras_rule / torch_rule - 1)) > 0.1


def test_rmsprop_epsilon_keras_rule_puts_epsilon_inside_the_square_root():
    import torch

    from torch_models.optimizers import KerasRMSprop

    grads = np.full((3, 1), 1e-4)
    keras_rule = _train(KerasRMSprop, {"lr": 1e-3, "rho": 0.9, "eps": 1e-7}, grads)
    w, v = 0.0, 0.0
    for g in grads[:, 0]:
        v = 0.9 * v + 0.1 * g * g
        w -= 1e-3 * g / np.sqrt(v + 1e-7)
    assert keras_rule[0] == pytest.approx(w, rel=1e-5)
    torch_rule = _train(torch.optim.RMSprop, {"lr": 1e-3, "alpha": 0.9, "eps": 1e-7}, grads)
    assert abs(torch_rule[0] / keras_rule[0] - 1) > 0.5  # sqrt(v) + eps vs sqrt(v + eps) with v ~ eps


def test_sgd_momentum_form_agrees_at_constant_lr_and_parts_when_lr_changes():
    import torch

    from torch_models.optimizers import KerasSGD

    grads = np.random.default_rng(1).normal(size=(20, 4))
    kwargs = {"lr": 0.01, "momentum": 0.9}
    constant = np.full(20, 0.01)
    np.testing.assert_allclose(_train(KerasSGD, kwargs, grads, constant),
                               _train(torch.optim.SGD, kwargs, grads, constant), rtol=1e-5, atol=1e-7)
    # A schedule: torch's buffer is rescaled by the new lr (lr outside the buffer), Keras' is not.
    decayed = 0.01 * 0.5 ** np.arange(20)
    keras_rule = _train(KerasSGD, kwargs, grads, decayed)
    torch_rule = _train(torch.optim.SGD, kwargs, grads, decayed)
    assert np.max(np.abs(keras_rule - torch_rule)) > 1e-3


def test_embedding_sparse_gradient_square_is_taken_per_occurrence_like_keras():
    import torch

    from torch_models.optimizers import KerasAdam

    # Token 3 occurs twice in the batch: Keras' v gets g1^2 + g2^2, a dense gradient (g1 + g2)^2.
    table = torch.nn.Embedding(5, 1, sparse=True)
    torch.nn.init.zeros_(table.weight)
    tokens = torch.tensor([3, 3])
    (table(tokens)[:, 0] * torch.tensor([1.0, 2.0])).sum().backward()
    optimizer = KerasAdam(table.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    optimizer.step()
    v = optimizer.state[table.weight]["v"]
    assert v[3, 0].item() == pytest.approx(0.001 * (1.0**2 + 2.0**2), rel=1e-6)
    assert table.weight.grad.coalesce().to_dense()[3, 0].item() == 3.0  # (g1 + g2) would give v = 0.001 * 9


def test_accuracy_average_torchmetrics_default_is_per_class_not_per_sample():
    import torch
    import torchmetrics

    from parity.catalog import get_spec
    from torch_models.base import _metric

    # 9 samples of class 0 all right, 1 sample of class 1 wrong: Keras accuracy 0.9, macro mean 0.5.
    logits = torch.tensor([[5.0, 0.0]] * 10)
    labels = torch.tensor([0] * 9 + [1])
    assert torchmetrics.classification.MulticlassAccuracy(2)(logits, labels).item() == pytest.approx(0.5)
    padded = torch.cat([logits, torch.zeros(10, 8)], dim=1)
    assert _metric(get_spec("c1w2_fmnist_dnn"), align.ALIGNED)(padded, labels).item() == pytest.approx(0.9)
    assert _metric(get_spec("c1w2_fmnist_dnn"), native("accuracy_average"))(padded, labels).item() == pytest.approx(0.5)


def test_crossentropy_on_probabilities_literal_port_equals_logits_path_until_probabilities_saturate():
    import torch

    from parity.catalog import get_spec
    from torch_models.base import _loss

    spec = get_spec("c3w2_sarcasm_embed_gap")
    logits = torch.tensor([[0.3], [-1.2]])
    target = torch.tensor([[1.0], [0.0]])
    on_logits = _loss(spec, align.ALIGNED)(logits, target)
    on_probabilities = _loss(spec, native("crossentropy_on_probabilities"))(logits, target)
    assert on_probabilities.item() == pytest.approx(on_logits.item(), rel=1e-6)
    # Saturated: sigmoid(40) rounds to 1 in float32, so BCELoss on probabilities sees log(0), clamped at -100.
    saturated = torch.tensor([[40.0]])
    wrong = torch.tensor([[0.0]])
    assert _loss(spec, align.ALIGNED)(saturated, wrong).item() == pytest.approx(40.0, rel=1e-6)
    assert _loss(spec, native("crossentropy_on_probabilities"))(saturated, wrong).item() == pytest.approx(100.0)


# ------------------------------------------------------------------ layers: API or runtime

def test_every_difference_belongs_to_one_layer_with_a_reason():
    from parity import jobs

    for entry in align.DIFFERENCES:
        assert entry.layer in align.LAYERS and entry.layer_reason.strip(), entry.key
        assert align.layer_of(entry.key) == entry.layer
    # The runtime ones: what the backend does beneath the same Keras API. Every other one is the API's.
    assert {d.key for d in align.DIFFERENCES if d.layer == align.RUNTIME} == {
        "embedding_sparse_gradient", "crossentropy_on_probabilities", "tf32", "determinism", "float32_summation_order"}
    assert set(align.TENSORFLOW_RUNTIME_FORMS) <= set(align.SWITCHABLE)
    assert all(align.layer_of(key) == align.RUNTIME for key in align.TENSORFLOW_RUNTIME_FORMS)
    assert set(align.PAIR_LAYERS) == {jobs.pair_key(pair) for pair in jobs.framework_pairs(jobs.ALL_FRAMEWORKS)}
    with pytest.raises(ValueError, match="unknown difference 'kernels'"):
        align.layer_of("kernels")
    with pytest.raises(ValueError, match="layer must be one of api, runtime"):
        align.Difference("planted", "", "", "", "", layer="kernels", layer_reason="a layer that does not exist")


# Keras' sparse categorical crossentropy of a saturated softmax output (logits [0, 30], label 0: the exact loss is
# 30), in a child process per backend (TensorFlow and torch never share a process; the torch child hides TensorFlow
# as the keras-torch worker does). TensorFlow's backend recovers the logits inside a traced step, as fit's is.
CROSSENTROPY_CHILD = """
import sys
if sys.argv[1] == "torch":
    from keras_torch.runtime import start_keras_on_torch
    keras = start_keras_on_torch()
    loss = keras.losses.sparse_categorical_crossentropy
    logits = keras.ops.convert_to_tensor([[0.0, 30.0]])
    value = loss(keras.ops.convert_to_tensor([0]), keras.activations.softmax(logits))
else:
    import keras, tensorflow as tf
    step = tf.function(lambda x, y: keras.losses.sparse_categorical_crossentropy(y, keras.activations.softmax(x)))
    value = step(tf.constant([[0.0, 30.0]]), tf.constant([0]))
print(float(keras.ops.convert_to_numpy(value)[0]))
"""


def test_crossentropy_on_probabilities_is_a_runtime_difference_keras_on_torch_takes_the_clipped_log():
    import os
    import subprocess
    import sys

    read = {}
    for backend in ("tensorflow", "torch"):
        result = subprocess.run([sys.executable, "-c", CROSSENTROPY_CHILD, backend], capture_output=True, text=True,
                                timeout=300, cwd=Path(__file__).resolve().parents[1],
                                env={**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""})
        assert result.returncode == 0, result.stderr[-3000:]
        read[backend] = float(result.stdout.strip().splitlines()[-1])
    # Same Keras call, two backends: TensorFlow's recovers the logits (30, what Lightning's aligned
    # CrossEntropyLoss computes); torch's takes -log of the probability clipped to 1e-7 (16.118).
    assert read["tensorflow"] == pytest.approx(30.0, rel=1e-5)
    assert read["torch"] == pytest.approx(-np.log(1e-7), rel=1e-5)


def test_each_pair_names_the_differences_in_force_between_its_two_frameworks():
    forms = list(align.TENSORFLOW_RUNTIME_FORMS)  # the model meets both; Keras on torch computes torch's form
    assert align.differences_in_force(("keras", "lightning"), ["adam_epsilon_value"], [], forms) == [
        "adam_epsilon_value"]
    # One API: runtime differences part the Keras frameworks (those left native and those never alignable), and
    # the API's random draws left native (each backend's own generator).
    assert align.differences_in_force(("keras", "keras-torch"), ["adam_epsilon_value"],
                                      ["kernel_init", "determinism"], forms) == [
        "kernel_init", "embedding_sparse_gradient", "crossentropy_on_probabilities", "determinism"]
    assert align.differences_in_force(("keras", "keras-torch"), [], [], []) == []
    # Left native, the initialisers and the augmentation layers draw from each backend's own generator.
    assert align.differences_in_force(("keras", "keras-torch"), [], ["kernel_init", "adam_epsilon_value",
                                                                    "augmentation_stream"], []) == [
        "kernel_init", "augmentation_stream"]
    # Lightning aligned to TensorFlow's forms differs from Keras on torch by them; left native, it computes torch's.
    assert align.differences_in_force(("lightning", "keras-torch"), ["adam_epsilon_value"], [], forms) == [
        "embedding_sparse_gradient", "adam_epsilon_value", "crossentropy_on_probabilities"]
    assert align.differences_in_force(("lightning", "keras-torch"), ["adam_epsilon_value", *forms], [], forms) == [
        "adam_epsilon_value"]
