"""The model builders of both packages: layer names, parameter counts, forward shapes and outputs, losses.

The Keras half runs in its own process (tests/keras_builders.py, once per session); this process
imports torch only. The torch models are checked against the Keras names, per-layer parameter
counts and, for the new architectures, the Keras outputs under the same random weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parity import align, compare
from parity.catalog import CATALOG, get_spec, shaped_by_data
from parity.datasets import stand_in_overrides

KERAS_SCRIPT = Path(__file__).with_name("keras_builders.py")
NEW_MODELS = {"c1w4_happy_sad": 4_750_337, "c3w3_sarcasm_bilstm": 174_129, "c4w4_daily_min_temp": 60_591}
# The names every builder gives, for one model per architecture (weighted or not; the Input is not a layer).
EXPECTED_NAMES = {
    "c1w1_hello_linear": ["output"],
    "c1w2_fmnist_dnn": ["flatten", "hidden", "output"],
    "c1w3_fmnist_cnn": ["conv_1", "pool_1", "conv_2", "pool_2", "flatten", "hidden", "output"],
    "c1w4_happy_sad": ["conv_1", "pool_1", "conv_2", "pool_2", "conv_3", "pool_3", "flatten", "hidden", "output"],
    "c2w4_rps_cnn": ["conv_1", "pool_1", "conv_2", "pool_2", "conv_3", "pool_3", "conv_4", "pool_4", "flatten",
                     "dropout", "hidden", "output"],
    "c3w2_sarcasm_embed_gap": ["embedding", "average_pool", "hidden", "output"],
    "c3w3_sarcasm_bilstm": ["embedding", "bilstm_1", "hidden", "output"],
    "c3w3_imdb_bilstm2": ["embedding", "bilstm_1", "bilstm_2", "hidden", "output"],
    "c4w2_ts_dnn": ["dense_1", "dense_2", "output"],
    "c4w4_daily_min_temp": ["conv1d", "lstm_1", "lstm_2", "dense_1", "dense_2", "output", "scale"],
    "c4w3_ts_simplernn": ["rnn_1", "rnn_2", "output", "scale"],
    "c4w3_ts_bilstm": ["bilstm_1", "bilstm_2", "output", "scale"],
}


@pytest.fixture(scope="module")
def keras_side(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, np.ndarray]]:
    """What tests/keras_builders.py measured in its own Keras process: the JSON report and the arrays."""
    out = tmp_path_factory.mktemp("keras-builders")
    result = subprocess.run([sys.executable, str(KERAS_SCRIPT), str(out)], capture_output=True, text=True,
                            timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-4000:]
    with np.load(out / "arrays.npz") as arrays:
        return json.loads((out / "keras.json").read_text()), dict(arrays)


@pytest.fixture(scope="module")
def torch_models():
    import torch

    torch.set_num_threads(1)
    from torch_models import build
    from torch_models.base import REGISTRY

    torch.manual_seed(0)
    with shaped_by_data(stand_in_overrides(list(CATALOG))):  # next-word models: their stand-in's vocabulary
        return {spec.id: build(spec.id).eval() for spec in map(get_spec, CATALOG)
                if spec.trainable and spec.architecture in REGISTRY}


# ---------------------------------------------------------------- Keras side


def test_both_packages_build_the_same_models(keras_side, torch_models):
    report, _ = keras_side
    assert set(report["models"]) == set(torch_models)
    assert set(NEW_MODELS) | {"c2w4_rps_cnn", "c3w3_imdb_bilstm2"} <= set(report["models"])


def test_keras_layer_names_are_the_explicit_ones_and_unique(keras_side):
    models = keras_side[0]["models"]
    for model_id, names in EXPECTED_NAMES.items():
        assert [layer["name"] for layer in models[model_id]["layers"]] == names, model_id
    for model_id, model in models.items():
        names = [layer["name"] for layer in model["layers"]]
        assert len(names) == len(set(names)), model_id
        # A layer Keras named itself would be named differently on a second build in the same process.
        assert model["second_build"] == {"layers": model["layers"], "variables": model["variables"]}, model_id
        assert len(model["variables"]) == len(set(model["variables"])), model_id


def test_keras_variables_of_a_bidirectional_lstm_are_named_by_direction(keras_side):
    variables = keras_side[0]["models"]["c3w3_imdb_bilstm2"]["variables"]
    for layer in ("bilstm_1", "bilstm_2"):
        for direction in ("forward_lstm", "backward_lstm"):
            for name in ("kernel", "recurrent_kernel", "bias"):
                assert f"c3w3_imdb_bilstm2/{layer}/{direction}/lstm_cell/{name}" in variables


def test_no_model_has_a_lambda_layer(keras_side):
    for model_id, model in keras_side[0]["models"].items():
        assert "Lambda" not in {layer["class"] for layer in model["layers"]}, model_id


def test_keras_parameter_counts_equal_the_course(keras_side):
    models = keras_side[0]["models"]
    for model_id, params in NEW_MODELS.items():
        assert get_spec(model_id).course_params == params
    checked = 0
    for model_id, model in models.items():
        if get_spec(model_id).course_params is not None:
            assert model["params"] == get_spec(model_id).course_params, model_id
            checked += 1
    assert checked >= 20


def test_compile_reads_the_loss_and_metric_from_the_spec(keras_side):
    compiled = keras_side[0]["compiled"]
    assert set(compiled["c4w4_daily_min_temp"]) == {"loss", "mae", "step_loss"}  # huber, regression
    assert set(compiled["c2w4_rps_cnn"]) == {"loss", "accuracy", "step_loss"}  # categorical_crossentropy


def test_scale_layer_round_trips_through_save_and_safe_load(keras_side):
    saved = keras_side[0]["save_and_load"]
    assert saved["max_abs_diff"] == 0.0
    assert saved["loaded_scale_class"] == "Scale"
    assert saved["loaded_scale_factor"] == get_spec("c4w4_daily_min_temp").layers.output_scale
    assert saved["loaded_names"] == EXPECTED_NAMES["c4w4_daily_min_temp"]
    assert saved["lambda_refused"]  # the same check refuses a model that still holds a Lambda


# ---------------------------------------------------------------- torch side


def _torch_class(keras_class: str) -> type | tuple[type, ...]:
    """The torch module class that takes the weights of a Keras layer class (a Bidirectional: its wrapped cell's)."""
    from torch import nn

    return {"Dense": nn.Linear, "Conv2D": nn.Conv2d, "Conv1D": nn.Conv1d, "Embedding": nn.Embedding,
            "LSTM": nn.LSTM, "GRU": nn.GRU, "Bidirectional": (nn.LSTM, nn.GRU), "SimpleRNN": nn.RNN,
            "BatchNormalization": nn.BatchNorm2d}[keras_class]


def test_torch_parameter_counts_are_the_course_count_plus_the_documented_extra(keras_side, torch_models):
    models = keras_side[0]["models"]
    for model_id, model in torch_models.items():
        spec = get_spec(model_id)
        torch_params = sum(p.numel() for p in model.parameters())
        assert torch_params == models[model_id]["params"] + align.torch_extra_parameters(spec), model_id
        if spec.course_params is not None:
            assert torch_params == spec.course_params + align.torch_extra_parameters(spec), model_id
    assert align.torch_extra_parameters(get_spec("c3w3_sarcasm_bilstm")) == 2 * 4 * 32
    assert align.torch_extra_parameters(get_spec("c4w4_daily_min_temp")) == 2 * 4 * 60
    assert align.torch_extra_parameters(get_spec("c1w4_happy_sad")) == 0


def test_keras_layers_names_every_weighted_keras_layer_with_the_matching_torch_module(keras_side, torch_models):
    from torch import nn

    models = keras_side[0]["models"]
    for model_id, model in torch_models.items():
        weighted = [layer for layer in models[model_id]["layers"] if layer["params"]]
        mapping = model.keras_layers()
        assert list(mapping) == [layer["name"] for layer in weighted], model_id
        for layer in weighted:
            module = mapping[layer["name"]]
            assert isinstance(module, _torch_class(layer["class"])), (model_id, layer)
            extra = 0
            if layer["class"] in ("LSTM", "GRU", "Bidirectional"):
                assert module.bidirectional == (layer["class"] == "Bidirectional") and module.batch_first
                if isinstance(module, nn.LSTM):  # nn.GRU's two biases are Keras' GRU(reset_after=True) ones
                    extra = 4 * module.hidden_size * (2 if module.bidirectional else 1)  # b_hh (lstm_biases)
            if layer["class"] == "SimpleRNN":
                assert module.nonlinearity == "tanh" and not module.bidirectional and module.batch_first
                extra = module.hidden_size  # nn.RNN's b_hh (lstm_biases)
            if layer["class"] == "BatchNormalization":  # InceptionV3's scale=False (align.torch_extra_parameters)
                extra = -module.num_features  # Keras beta + moving mean + variance, torch weight (1, frozen) + bias
            assert sum(p.numel() for p in module.parameters()) == layer["params"] + extra, (model_id, layer)


def test_keras_layers_cover_every_parameter_and_buffer_exactly_once(torch_models):
    for model_id, model in torch_models.items():
        modules = list(model.keras_layers().values())
        for tensors in (lambda m: m.parameters(), lambda m: m.buffers()):
            covered = [id(t) for module in modules for t in tensors(module)]
            assert len(covered) == len(set(covered)), model_id
            assert set(covered) == {id(t) for t in tensors(model)}, model_id


def test_a_course_module_without_keras_layers_cannot_be_built():
    from torch_models.base import CourseModule

    class Incomplete(CourseModule):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="keras_layers"):
        Incomplete("c1w1_hello_linear", align.ALIGNED)


def test_torch_forward_shapes(torch_models):
    import torch

    for model_id, model in torch_models.items():
        spec = model.spec  # as built: a next-word model's at its stand-in's vocabulary
        x = torch.zeros(2, *(32 if size is None else size for size in spec.input_shape))  # token ids: long() inside
        with torch.no_grad():
            assert tuple(model(x).shape) == (2, spec.classes), model_id


# ---------------------------------------------------------------- torch outputs against Keras


def _keras_weights(arrays: dict[str, np.ndarray], model_id: str) -> dict[str, np.ndarray]:
    prefix = f"{model_id}:weight:"
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}


def _lstm_arrays(weights: dict[str, np.ndarray], cell: str, suffix: str) -> dict[str, np.ndarray]:
    """Keras LSTM cell variables -> torch nn.LSTM parameters (gate order [i, f, c, o] in both; b_hh zero)."""
    bias = weights[f"{cell}/bias"]
    return {f"weight_ih_l0{suffix}": weights[f"{cell}/kernel"].T,
            f"weight_hh_l0{suffix}": weights[f"{cell}/recurrent_kernel"].T,
            f"bias_ih_l0{suffix}": bias, f"bias_hh_l0{suffix}": np.zeros_like(bias)}


def _torch_arrays(name: str, module, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The test's own Keras -> torch mapping for one named layer (parity.weights does this for the product)."""
    from torch import nn

    if isinstance(module, nn.LSTM):
        if module.bidirectional:
            return {**_lstm_arrays(weights, f"{name}/forward_lstm/lstm_cell", ""),
                    **_lstm_arrays(weights, f"{name}/backward_lstm/lstm_cell", "_reverse")}
        return _lstm_arrays(weights, f"{name}/lstm_cell", "")
    if isinstance(module, nn.Embedding):
        return {"weight": weights[f"{name}/embeddings"]}
    kernel = weights[f"{name}/kernel"]
    if isinstance(module, nn.Conv2d):
        kernel = kernel.transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
    elif isinstance(module, nn.Conv1d):
        kernel = kernel.transpose(2, 1, 0)  # (k, in, out) -> (out, in, k)
    else:
        kernel = kernel.T
    return {"weight": kernel, "bias": weights[f"{name}/bias"]}


def _load_keras_weights(model, weights: dict[str, np.ndarray], flatten_shape: tuple[int, int, int] | None = None):
    import torch

    with torch.no_grad():
        for name, module in model.keras_layers().items():
            arrays = _torch_arrays(name, module, weights)
            if name == "hidden" and flatten_shape is not None:
                height, width, channels = flatten_shape  # Keras flattened (H, W, C); torch flattens (C, H, W)
                arrays["weight"] = (arrays["weight"].reshape(-1, height, width, channels).transpose(0, 3, 1, 2)
                                    .reshape(arrays["weight"].shape))
            for key, value in arrays.items():
                getattr(module, key).copy_(torch.from_numpy(np.ascontiguousarray(value)))


def _torch_outputs(model_id: str, arrays: dict[str, np.ndarray], flatten_shape=None) -> np.ndarray:
    import torch

    from torch_models import build

    model = build(model_id).eval()
    _load_keras_weights(model, _keras_weights(arrays, model_id), flatten_shape)
    with torch.no_grad():
        return model.predict_outputs(model(torch.from_numpy(arrays[f"{model_id}:x"]))).numpy()


@pytest.mark.parametrize("model_id", ["c3w3_sarcasm_bilstm", "c3w3_imdb_bilstm2", "c4w4_daily_min_temp"])
def test_recurrent_models_reproduce_the_keras_outputs(keras_side, model_id):
    arrays = keras_side[1]
    expected = arrays[f"{model_id}:y"]
    assert np.std(expected) > 1e-3 * max(1.0, np.max(np.abs(expected)))  # outputs that can tell models apart
    np.testing.assert_allclose(_torch_outputs(model_id, arrays), expected, rtol=0,
                               atol=compare.forward_tolerance(expected))


def test_cnn_with_flatten_dropout_reproduces_the_keras_outputs(keras_side):
    arrays = keras_side[1]
    expected = arrays["c2w4_rps_cnn:y"]
    # 150 -> conv 148 -> pool 74 -> 72 -> 36 -> 34 -> 17 -> 15 -> 7, with 128 channels.
    np.testing.assert_allclose(_torch_outputs("c2w4_rps_cnn", arrays, flatten_shape=(7, 7, 128)), expected, rtol=0,
                               atol=compare.forward_tolerance(expected))


def test_last_step_of_a_bidirectional_output_is_not_what_keras_returns(keras_side, monkeypatch):
    # The planted error the bilstm check must catch: output[:, -1] holds the backward direction's FIRST step.
    import torch_models.text as text

    def last_step(layer, x, return_sequences):
        output, _ = layer(x)
        return output if return_sequences else output[:, -1]

    monkeypatch.setattr(text, "recurrent_output", last_step)
    arrays = keras_side[1]
    expected = arrays["c3w3_sarcasm_bilstm:y"]
    difference = np.max(np.abs(_torch_outputs("c3w3_sarcasm_bilstm", arrays) - expected))
    assert difference > 100 * compare.forward_tolerance(expected)


# ---------------------------------------------------------------- layers


def _changes_before(conv, step: int) -> tuple[bool, bool]:
    """Whether changing input step `step` changes conv outputs before it, and at it (NCW input, 64 steps)."""
    import torch

    torch.manual_seed(0)
    x = torch.randn(1, conv.in_channels, 64)
    changed = x.clone()
    changed[..., step] += 1.0
    with torch.no_grad():
        difference = (conv(changed) - conv(x)).abs().amax(dim=(0, 1))
    return bool(difference[:step].any()), bool(difference[step] > 0)


def test_causal_conv1d_output_never_sees_later_steps(torch_models):
    from torch import nn

    conv = torch_models["c4w4_daily_min_temp"].conv1d
    assert conv.kernel_size == (get_spec("c4w4_daily_min_temp").layers.kernel_size,)
    for step in (0, 10, 63):
        before, at = _changes_before(conv, step)
        assert not before and at
    # The check catches a non-causal convolution: symmetric 'same' padding lets step t reach outputs t-2, t-1.
    same = nn.Conv1d(conv.in_channels, conv.out_channels, conv.kernel_size[0], padding="same")
    assert _changes_before(same, 10)[0]


def test_causal_conv1d_keeps_the_sequence_length(torch_models):
    import torch

    spec = get_spec("c4w4_daily_min_temp")
    with torch.no_grad():
        out = torch_models[spec.id].conv1d(torch.zeros(2, 1, spec.input_shape[0]))
    assert tuple(out.shape) == (2, spec.layers.conv_filters, spec.input_shape[0])


def test_scale_module_multiplies_the_output_layer_by_the_spec_factor(torch_models):
    import torch

    model = torch_models["c4w4_daily_min_temp"]
    factor = get_spec("c4w4_daily_min_temp").layers.output_scale
    assert model.scale.factor == factor
    x = torch.randn(3, 64, 1)
    with torch.no_grad():
        features = model.conv1d(x.permute(0, 2, 1)).relu().permute(0, 2, 1)
        for lstm in model.lstms:
            features, _ = lstm(features)
        features = features[:, -1]  # unidirectional: the last step of the output is h_n
        for dense in model.denses:
            features = dense(features).relu()
        np.testing.assert_allclose(model(x).numpy(), factor * model.output(features).numpy(), rtol=1e-6)


# ---------------------------------------------------------------- losses and metrics


def test_huber_loss_matches_keras_for_column_targets(keras_side):
    import torch

    from torch_models.base import _loss

    report, arrays = keras_side
    predictions, targets = torch.from_numpy(arrays["huber:p"]), torch.from_numpy(arrays["huber:y"])
    assert targets.shape == (64, 1)
    value = float(_loss(get_spec("c4w4_daily_min_temp"), align.ALIGNED)(predictions, targets))
    # float32 means of 64 values: agreement to a few ulps.
    for keras_value in (report["losses"]["huber"], report["losses"]["huber_class"]):
        assert value == pytest.approx(keras_value, rel=1e-6)
    # The errors reach past delta, so the check tells Huber from half the squared error.
    assert value != pytest.approx(float(torch.nn.functional.mse_loss(predictions, targets)) / 2, rel=1e-3)


@pytest.mark.parametrize("alignment", [align.ALIGNED, align.NATIVE], ids=["aligned", "native"])
def test_categorical_crossentropy_on_one_hot_rows_matches_keras(keras_side, alignment):
    import torch

    from torch_models.base import _loss

    report, arrays = keras_side
    loss = _loss(get_spec("c2w4_rps_cnn"), alignment)
    value = float(loss(torch.from_numpy(arrays["cce:logits"]), torch.from_numpy(arrays["cce:y"])))
    # float32 log-softmax in two orders of summation: agreement to a few ulps of a loss of order 1.
    assert value == pytest.approx(report["losses"]["categorical_crossentropy"], rel=1e-6)
    assert value == pytest.approx(report["losses"]["categorical_crossentropy_class"], rel=1e-6)


def test_categorical_accuracy_compares_argmaxes(torch_models):
    import torch

    model = torch_models["c2w4_rps_cnn"]
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0], [0.0, 1.0, 5.0], [1.0, 0.0, 0.0]])
    one_hot = torch.eye(3)[torch.tensor([0, 2, 2, 1])]  # right, wrong, right, wrong
    metric = model.val_metric.clone()
    metric.update(*model.metric_inputs(logits, one_hot))
    assert float(metric.compute()) == 0.5
