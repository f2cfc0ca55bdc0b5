"""Keras -> torch weight mapping, checked against numpy re-implementations of both layouts."""

import numpy as np
import pytest

from parity.align import Alignment
from parity.weights import (
    KerasLayer,
    WeightMappingError,
    keras_to_torch,
    load_keras_layers,
    plan_transfer,
    save_keras_layers,
)

RNG = np.random.default_rng(0)


def test_flatten_order_dense_after_flatten_reorders_nhwc_rows_for_an_nchw_flatten():
    height, width, channels, out = 5, 4, 3, 7
    kernel = RNG.normal(size=(height * width * channels, out)).astype(np.float32)
    image = RNG.normal(size=(height, width, channels)).astype(np.float32)
    keras_out = image.reshape(-1) @ kernel  # Keras: Flatten of HWC, then x @ kernel
    layer = KerasLayer("dense", "Dense", {"kernel": kernel, "bias": np.zeros(out, np.float32)}, (height, width, channels))
    weight = keras_to_torch(layer, "Linear")["weight"]
    torch_out = weight @ image.transpose(2, 0, 1).reshape(-1)  # torch: flatten of CHW, then W x
    np.testing.assert_allclose(torch_out, keras_out, rtol=1e-5, atol=1e-5)
    # Without the reordering the outputs differ: the Flatten order is a real difference.
    assert not np.allclose(kernel.T @ image.transpose(2, 0, 1).reshape(-1), keras_out, atol=1e-3)


def test_dense_after_flattening_a_2d_input_is_a_plain_transpose():
    kernel = RNG.normal(size=(28 * 28, 10)).astype(np.float32)
    layer = KerasLayer("dense", "Dense", {"kernel": kernel, "bias": np.ones(10, np.float32)}, (28, 28))
    mapped = keras_to_torch(layer, "Linear")
    assert np.array_equal(mapped["weight"], kernel.T) and np.array_equal(mapped["bias"], np.ones(10))


def test_tensor_layout_conv2d_kernel_goes_from_hwio_to_oihw():
    kernel = RNG.normal(size=(3, 3, 2, 4)).astype(np.float32)
    weight = keras_to_torch(KerasLayer("conv", "Conv2D", {"kernel": kernel, "bias": np.zeros(4)}), "Conv2d")["weight"]
    assert weight.shape == (4, 2, 3, 3)
    assert weight[1, 0, 2, 1] == kernel[2, 1, 0, 1]


def test_embedding_is_copied_unchanged():
    table = RNG.normal(size=(50, 8)).astype(np.float32)
    assert np.array_equal(keras_to_torch(KerasLayer("e", "Embedding", {"embeddings": table}), "Embedding")["weight"], table)


def test_layers_round_trip_through_a_file(tmp_path):
    layers = [
        KerasLayer("input", "InputLayer", {}),
        KerasLayer("flatten", "Flatten", {}),
        KerasLayer("dense", "Dense", {"kernel": np.eye(3, dtype=np.float32), "bias": np.zeros(3, np.float32)}, (3,)),
    ]
    save_keras_layers(tmp_path / "w.npz", layers)
    loaded = load_keras_layers(tmp_path / "w.npz")
    assert [(l.name, l.kind, l.flatten_from) for l in loaded] == [(l.name, l.kind, l.flatten_from) for l in layers]
    assert np.array_equal(loaded[2].arrays["kernel"], np.eye(3))


def test_models_that_do_not_line_up_are_refused_with_both_layer_lists():
    layers = [KerasLayer("d", "Dense", {"kernel": np.zeros((2, 2)), "bias": np.zeros(2)})]
    with pytest.raises(WeightMappingError, match="Keras has 1 weight layers .*torch has 2"):
        plan_transfer(layers, ["Linear", "Linear"])
    with pytest.raises(WeightMappingError, match="maps to torch Linear, but the torch module is Conv2d"):
        plan_transfer(layers, ["Conv2d"])


def test_an_unmapped_keras_layer_is_an_error_not_a_silent_skip():
    with pytest.raises(WeightMappingError, match="SimpleRNN"):
        plan_transfer([KerasLayer("rnn", "SimpleRNN", {"kernel": np.zeros((1, 4))})], [])


def test_batchnorm_arrays_are_renamed_unchanged():
    keras_names = ("gamma", "beta", "moving_mean", "moving_variance")
    arrays = {name: np.arange(4, dtype=np.float32) + i for i, name in enumerate(keras_names)}
    mapped = keras_to_torch(KerasLayer("bn", "BatchNormalization", arrays), "BatchNorm2d")
    for keras_name, torch_name in zip(keras_names, ("weight", "bias", "running_mean", "running_var")):
        assert np.array_equal(mapped[torch_name], arrays[keras_name])
    assert len(mapped) == 4


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _keras_gru(xs, kernel, recurrent, bias):
    """Keras GRU, reset_after=True (keras/src/layers/rnn/gru.py): blocks [z, r, h]; bias rows [input; recurrent]."""
    h = np.zeros(recurrent.shape[0])
    for x in xs:
        x_z, x_r, x_h = np.split(x @ kernel + bias[0], 3)
        h_z, h_r, h_h = np.split(h @ recurrent + bias[1], 3)
        z, r = _sigmoid(x_z + h_z), _sigmoid(x_r + h_r)
        h = z * h + (1 - z) * np.tanh(x_h + r * h_h)
    return h


def _torch_gru(xs, w_ih, w_hh, b_ih, b_hh):
    """torch.nn.GRU (docs): blocks [r, z, n]; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h = (1-z) n + z h."""
    h = np.zeros(w_hh.shape[1])
    for x in xs:
        i_r, i_z, i_n = np.split(w_ih @ x + b_ih, 3)
        h_r, h_z, h_n = np.split(w_hh @ h + b_hh, 3)
        r, z = _sigmoid(i_r + h_r), _sigmoid(i_z + h_z)
        h = (1 - z) * np.tanh(i_n + r * h_n) + z * h
    return h


def test_gru_layout_reordered_gates_give_the_keras_state():
    rng, features, units = np.random.default_rng(1), 3, 4
    layer = KerasLayer("gru", "GRU", {"kernel": rng.normal(size=(features, 3 * units)),
                                      "recurrent_kernel": rng.normal(size=(units, 3 * units)),
                                      "bias": rng.normal(size=(2, 3 * units))})
    xs = rng.normal(size=(5, features))
    mapped = keras_to_torch(layer, "GRU")
    assert mapped["weight_ih_l0"].shape == (12, 3) and mapped["weight_hh_l0"].shape == (12, 4)
    expected = _keras_gru(xs, *(layer.arrays[k] for k in ("kernel", "recurrent_kernel", "bias")))
    got = _torch_gru(xs, *(mapped[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")))
    # The same float64 arithmetic in another order: agreement to rounding (1e-12 for values in (-1, 1)).
    np.testing.assert_allclose(got, expected, atol=1e-12)
    # gru_layout native keeps Keras' [z, r, h] order: z and r trade places and the state is wrong.
    unordered = keras_to_torch(layer, "GRU", Alignment(frozenset({"gru_layout"})))
    wrong = _torch_gru(xs, *(unordered[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")))
    assert np.max(np.abs(wrong - expected)) > 0.1


def test_gru_with_reset_after_false_is_refused_with_the_fix():
    layer = KerasLayer("gru", "GRU", {"kernel": np.zeros((3, 12)), "recurrent_kernel": np.zeros((4, 12)),
                                      "bias": np.zeros(12)})
    with pytest.raises(WeightMappingError, match="reset_after=True"):
        keras_to_torch(layer, "GRU")


def _keras_lstm(xs, kernel, recurrent, bias):
    """Keras LSTM (keras/src/layers/rnn/lstm.py): z = x K + h R + b, gates [i, f, c, o]."""
    h = c = np.zeros(recurrent.shape[0])
    for x in xs:
        i, f, g, o = np.split(x @ kernel + h @ recurrent + bias, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
    return h


def _torch_lstm(xs, w_ih, w_hh, b_ih, b_hh):
    """torch.nn.LSTM (docs): W_ih x + b_ih + W_hh h + b_hh, gates [i, f, g, o]."""
    h = c = np.zeros(w_hh.shape[1])
    for x in xs:
        i, f, g, o = np.split(w_ih @ x + b_ih + w_hh @ h + b_hh, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
    return h


def test_lstm_biases_aligned_zero_b_hh_and_native_leaves_it_to_torch():
    rng, features, units = np.random.default_rng(2), 3, 4
    arrays = {"kernel": rng.normal(size=(features, 4 * units)), "recurrent_kernel": rng.normal(size=(units, 4 * units)),
              "bias": rng.normal(size=4 * units)}
    layer, xs = KerasLayer("lstm", "LSTM", arrays), rng.normal(size=(5, features))
    mapped = keras_to_torch(layer, "LSTM")
    assert mapped["weight_ih_l0"].shape == (16, 3) and not mapped["bias_hh_l0"].any()
    expected = _keras_lstm(xs, arrays["kernel"], arrays["recurrent_kernel"], arrays["bias"])
    got = _torch_lstm(xs, *(mapped[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")))
    np.testing.assert_allclose(got, expected, atol=1e-12)  # float64, summed in another order
    # lstm_biases native: b_hh is not in the mapping, so it keeps torch's own U(+-1/sqrt(H)) draw.
    native = keras_to_torch(layer, "LSTM", Alignment(frozenset({"lstm_biases"})))
    assert "bias_hh_l0" not in native and np.array_equal(native["bias_ih_l0"], arrays["bias"])
    torch_init = rng.uniform(-1 / np.sqrt(units), 1 / np.sqrt(units), 4 * units)
    wrong = _torch_lstm(xs, native["weight_ih_l0"], native["weight_hh_l0"], native["bias_ih_l0"], torch_init)
    assert np.max(np.abs(wrong - expected)) > 0.01
