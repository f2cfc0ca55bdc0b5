"""Keras -> torch weight transfer by name, checked against numpy re-implementations of both layouts (numpy only).

The end-to-end check with the real Keras export and real torch modules is tests/test_forward_mutations.py.
"""

import numpy as np
import pytest

from parity import align
from parity.align import Alignment
from parity.weights import (
    KerasLayer,
    TorchTarget,
    WeightMappingError,
    load_keras_layers,
    plan_transfer,
    save_keras_layers,
)

RNG = np.random.default_rng(0)


def _assign(layer: KerasLayer, kind: str, tensors: dict, settings: dict | None = None,
            alignment: Alignment = align.ALIGNED) -> dict:
    """The assignments of a one-layer model whose torch module `m` has `tensors` (name -> shape)."""
    target = TorchTarget("m", kind, tensors, settings or {})
    plan = plan_transfer([layer], {layer.name: target}, {f"m.{name}": shape for name, shape in tensors.items()},
                         alignment)
    return {name.removeprefix("m."): assignment for name, assignment in plan.assignments.items()}


def _arrays(assignments: dict) -> dict:
    return {name: a.array for name, a in assignments.items()}


def _dense(kernel: np.ndarray, flatten_from=None) -> KerasLayer:
    return KerasLayer("hidden", "Dense", {"kernel": kernel, "bias": np.zeros(kernel.shape[1], np.float32)},
                      flatten_from=flatten_from)


def _linear(inputs: int, outputs: int) -> dict:
    return {"weight": (outputs, inputs), "bias": (outputs,)}


def test_flatten_order_dense_after_flatten_reorders_nhwc_rows_for_an_nchw_flatten():
    height, width, channels, out = 5, 4, 3, 7
    kernel = RNG.normal(size=(height * width * channels, out)).astype(np.float32)
    image = RNG.normal(size=(height, width, channels)).astype(np.float32)
    keras_out = image.reshape(-1) @ kernel  # Keras: Flatten of HWC, then x @ kernel
    weight = _arrays(_assign(_dense(kernel, (height, width, channels)), "Linear", _linear(60, out)))["weight"]
    torch_out = weight @ image.transpose(2, 0, 1).reshape(-1)  # torch: flatten of CHW, then W x
    np.testing.assert_allclose(torch_out, keras_out, rtol=1e-5, atol=1e-5)
    # Without the reordering the outputs differ: the Flatten order is a real difference.
    assert not np.allclose(kernel.T @ image.transpose(2, 0, 1).reshape(-1), keras_out, atol=1e-3)
    native = _arrays(_assign(_dense(kernel, (height, width, channels)), "Linear", _linear(60, out),
                             alignment=Alignment(frozenset({"flatten_order"}))))
    assert np.array_equal(native["weight"], kernel.T)


def test_dense_after_flattening_a_2d_input_is_a_plain_transpose():
    # (28, 28) images without a channel axis, or (T, C) sequences: torch flattens them batch-first in the same order.
    kernel = RNG.normal(size=(28 * 28, 10)).astype(np.float32)
    mapped = _arrays(_assign(_dense(kernel, (28, 28)), "Linear", _linear(784, 10)))
    assert np.array_equal(mapped["weight"], kernel.T) and np.array_equal(mapped["bias"], np.zeros(10))


def test_tensor_layout_conv2d_kernel_goes_from_hwio_to_oihw_and_conv1d_from_kio_to_oik():
    kernel = RNG.normal(size=(3, 3, 2, 4)).astype(np.float32)
    layer = KerasLayer("conv_1", "Conv2D", {"kernel": kernel, "bias": np.ones(4, np.float32)})
    weight = _arrays(_assign(layer, "Conv2d", {"weight": (4, 2, 3, 3), "bias": (4,)}))["weight"]
    assert weight[1, 0, 2, 1] == kernel[2, 1, 0, 1]
    kernel = RNG.normal(size=(5, 2, 6)).astype(np.float32)  # (kernel, in, out)
    signal = RNG.normal(size=(9, 2)).astype(np.float32)  # (time, channels)
    layer = KerasLayer("conv1d", "Conv1D", {"kernel": kernel, "bias": np.zeros(6, np.float32)})
    weight = _arrays(_assign(layer, "Conv1d", {"weight": (6, 2, 5), "bias": (6,)}))["weight"]
    # Keras 'valid' Conv1D output at t: sum_k x[t+k] @ kernel[k]; torch: sum_{c,k} weight[o, c, k] x[c, t+k].
    keras_out = np.stack([sum(signal[t + k] @ kernel[k] for k in range(5)) for t in range(5)])
    torch_out = np.stack([np.einsum("ock,ck->o", weight, signal[t:t + 5].T) for t in range(5)])
    np.testing.assert_allclose(torch_out, keras_out, rtol=1e-5, atol=1e-5)


def test_embedding_is_copied_unchanged():
    table = RNG.normal(size=(50, 8)).astype(np.float32)
    mapped = _arrays(_assign(KerasLayer("embedding", "Embedding", {"embeddings": table}), "Embedding",
                             {"weight": (50, 8)}))
    assert np.array_equal(mapped["weight"], table)


BATCHNORM_TENSORS = {"weight": (4,), "bias": (4,), "running_mean": (4,), "running_var": (4,),
                     "num_batches_tracked": ()}


def test_batchnorm_arrays_are_renamed_unchanged_and_the_batch_count_starts_at_zero():
    keras_names = ("gamma", "beta", "moving_mean", "moving_variance")
    arrays = {name: np.arange(4, dtype=np.float32) + i for i, name in enumerate(keras_names)}
    mapped = _assign(KerasLayer("bn", "BatchNormalization", arrays), "BatchNorm2d", BATCHNORM_TENSORS)
    for keras_name, torch_name in zip(keras_names, ("weight", "bias", "running_mean", "running_var")):
        assert np.array_equal(mapped[torch_name].array, arrays[keras_name])
    assert mapped["num_batches_tracked"].array == 0 and mapped["num_batches_tracked"].array.dtype == np.int64
    assert mapped["weight"].trainable and mapped["bias"].trainable


def test_batchnorm_scale_false_gets_a_frozen_gamma_of_one_and_center_false_a_frozen_beta_of_zero():
    arrays = {"moving_mean": np.full(4, 0.3, np.float32), "moving_variance": np.full(4, 2.0, np.float32)}
    mapped = _assign(KerasLayer("bn", "BatchNormalization", arrays | {"beta": np.full(4, 0.1, np.float32)},
                                {"scale": False}), "BatchNorm2d", BATCHNORM_TENSORS)
    assert np.array_equal(mapped["weight"].array, np.ones(4)) and not mapped["weight"].trainable
    assert np.array_equal(mapped["bias"].array, np.full(4, 0.1, np.float32)) and mapped["bias"].trainable
    mapped = _assign(KerasLayer("bn", "BatchNormalization", arrays, {"scale": False, "center": False}), "BatchNorm1d",
                     BATCHNORM_TENSORS)
    assert np.array_equal(mapped["bias"].array, np.zeros(4)) and not mapped["bias"].trainable
    # torch BatchNorm(affine=False) has neither tensor; nothing is left over.
    affine_free = {k: v for k, v in BATCHNORM_TENSORS.items() if k not in ("weight", "bias")}
    assert set(_assign(KerasLayer("bn", "BatchNormalization", arrays), "BatchNorm2d", affine_free)) == set(affine_free)


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


def _recurrent_tensors(blocks: int, features: int, units: int, suffix: str = "") -> dict:
    return {f"weight_ih_l0{suffix}": (blocks * units, features), f"weight_hh_l0{suffix}": (blocks * units, units),
            f"bias_ih_l0{suffix}": (blocks * units,), f"bias_hh_l0{suffix}": (blocks * units,)}


TORCH_RECURRENT = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def _gru_layer(rng, features, units, config=None) -> KerasLayer:
    return KerasLayer("gru", "GRU", {"gru_cell/kernel": rng.normal(size=(features, 3 * units)),
                                     "gru_cell/recurrent_kernel": rng.normal(size=(units, 3 * units)),
                                     "gru_cell/bias": rng.normal(size=(2, 3 * units))}, config or {"reset_after": True})


def test_gru_layout_reordered_gates_give_the_keras_state():
    rng, features, units = np.random.default_rng(1), 3, 4
    layer, xs = _gru_layer(rng, features, units), rng.normal(size=(5, features))
    mapped = _arrays(_assign(layer, "GRU", _recurrent_tensors(3, features, units)))
    expected = _keras_gru(xs, *(layer.arrays[f"gru_cell/{k}"] for k in ("kernel", "recurrent_kernel", "bias")))
    # The same float64 arithmetic in another order: agreement to rounding (1e-12 for values in (-1, 1)).
    np.testing.assert_allclose(_torch_gru(xs, *(mapped[k] for k in TORCH_RECURRENT)), expected, atol=1e-12)
    # gru_layout native keeps Keras' [z, r, h] order: z and r trade places and the state is wrong.
    unordered = _arrays(_assign(layer, "GRU", _recurrent_tensors(3, features, units),
                                alignment=Alignment(frozenset({"gru_layout"}))))
    assert np.max(np.abs(_torch_gru(xs, *(unordered[k] for k in TORCH_RECURRENT)) - expected)) > 0.1


def test_gru_with_reset_after_false_is_refused_with_the_fix():
    layer = KerasLayer("gru", "GRU", {"gru_cell/kernel": np.zeros((3, 12)),
                                      "gru_cell/recurrent_kernel": np.zeros((4, 12)), "gru_cell/bias": np.zeros(12)},
                       {"reset_after": False})
    with pytest.raises(WeightMappingError, match="rebuild the Keras GRU with reset_after=True"):
        _assign(layer, "GRU", _recurrent_tensors(3, 3, 4))


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


def _lstm_arrays(rng, features, units, prefix="lstm_cell/") -> dict:
    return {f"{prefix}kernel": rng.normal(size=(features, 4 * units)),
            f"{prefix}recurrent_kernel": rng.normal(size=(units, 4 * units)),
            f"{prefix}bias": rng.normal(size=4 * units)}


def test_lstm_biases_aligned_zero_and_freeze_b_hh_and_native_leaves_it_to_torch():
    rng, features, units = np.random.default_rng(2), 3, 4
    arrays = _lstm_arrays(rng, features, units)
    layer, xs = KerasLayer("lstm", "LSTM", arrays), rng.normal(size=(5, features))
    assignments = _assign(layer, "LSTM", _recurrent_tensors(4, features, units))
    mapped = _arrays(assignments)
    expected = _keras_lstm(xs, *(arrays[f"lstm_cell/{k}"] for k in ("kernel", "recurrent_kernel", "bias")))
    np.testing.assert_allclose(_torch_lstm(xs, *(mapped[k] for k in TORCH_RECURRENT)), expected, atol=1e-12)
    # b_ih + b_hh is Keras' one bias: b_hh is 0 and frozen, or every step would move the sum by two gradients.
    assert not mapped["bias_hh_l0"].any() and not assignments["bias_hh_l0"].trainable
    # lstm_biases native: b_hh keeps torch's own U(+-1/sqrt(H)) draw (array None), trainable.
    native = _assign(layer, "LSTM", _recurrent_tensors(4, features, units),
                     alignment=Alignment(frozenset({"lstm_biases"})))
    assert native["bias_hh_l0"].array is None and native["bias_hh_l0"].trainable
    torch_init = rng.uniform(-1 / np.sqrt(units), 1 / np.sqrt(units), 4 * units)
    wrong = _torch_lstm(xs, *(native[k].array for k in TORCH_RECURRENT[:3]), torch_init)
    assert np.max(np.abs(wrong - expected)) > 0.01


def test_simple_rnn_gets_keras_bias_in_b_ih_and_a_frozen_zero_b_hh():
    rng, features, units = np.random.default_rng(3), 3, 4
    arrays = {"simple_rnn_cell/kernel": rng.normal(size=(features, units)),
              "simple_rnn_cell/recurrent_kernel": rng.normal(size=(units, units)),
              "simple_rnn_cell/bias": rng.normal(size=units)}
    assignments = _assign(KerasLayer("rnn", "SimpleRNN", arrays, {"activation": "tanh"}), "RNN",
                          _recurrent_tensors(1, features, units), settings={"nonlinearity": "tanh"})
    m = _arrays(assignments)
    h_keras = h_torch = np.zeros(units)
    for x in rng.normal(size=(5, features)):
        h_keras = np.tanh(x @ arrays["simple_rnn_cell/kernel"] + h_keras @ arrays["simple_rnn_cell/recurrent_kernel"]
                          + arrays["simple_rnn_cell/bias"])
        h_torch = np.tanh(m["weight_ih_l0"] @ x + m["bias_ih_l0"] + m["weight_hh_l0"] @ h_torch + m["bias_hh_l0"])
    np.testing.assert_allclose(h_torch, h_keras, atol=1e-12)
    assert not assignments["bias_hh_l0"].trainable
    with pytest.raises(WeightMappingError, match="nonlinearity='tanh'"):
        _assign(KerasLayer("rnn", "SimpleRNN", arrays), "RNN", _recurrent_tensors(1, features, units),
                settings={"nonlinearity": "relu"})


def test_bidirectional_forward_goes_to_l0_and_backward_to_l0_reverse():
    rng, features, units = np.random.default_rng(4), 3, 2
    forward, backward = _lstm_arrays(rng, features, units, "forward_lstm/lstm_cell/"), _lstm_arrays(
        rng, features, units, "backward_lstm/lstm_cell/")
    config = {"merge_mode": "concat", "layer": "LSTM", "backward_layer": "LSTM", "forward": "forward_lstm",
              "backward": "backward_lstm", "inner": {"activation": "tanh", "recurrent_activation": "sigmoid"}}
    layer = KerasLayer("bilstm_1", "Bidirectional", forward | backward, config)
    tensors = _recurrent_tensors(4, features, units) | _recurrent_tensors(4, features, units, "_reverse")
    mapped = _arrays(_assign(layer, "LSTM", tensors, settings={"bidirectional": True, "num_layers": 1}))
    assert np.array_equal(mapped["weight_ih_l0"], forward["forward_lstm/lstm_cell/kernel"].T)
    assert np.array_equal(mapped["weight_hh_l0_reverse"], backward["backward_lstm/lstm_cell/recurrent_kernel"].T)
    assert np.array_equal(mapped["bias_ih_l0_reverse"], backward["backward_lstm/lstm_cell/bias"])
    with pytest.raises(WeightMappingError, match="bidirectional=True"):
        _assign(layer, "LSTM", tensors, settings={"bidirectional": False})
    with pytest.raises(WeightMappingError, match="cannot go into a torch GRU"):
        _assign(layer, "GRU", tensors, settings={"bidirectional": True})


def test_layers_round_trip_through_a_file(tmp_path):
    layers = [
        KerasLayer("trunk/conv_1", "Conv2D", {"kernel": np.ones((3, 3, 1, 2), np.float32)}, {"padding": "valid"},
                   trainable=False),
        KerasLayer("bilstm_1", "Bidirectional", _lstm_arrays(RNG, 3, 2, "forward_lstm/lstm_cell/"),
                   {"merge_mode": "concat"}),
        KerasLayer("hidden", "Dense", {"kernel": np.eye(3, dtype=np.float32), "bias": np.zeros(3, np.float32)},
                   flatten_from=(1, 1, 3)),
    ]
    save_keras_layers(tmp_path / "w.npz", layers)
    loaded = load_keras_layers(tmp_path / "w.npz")
    for before, after in zip(layers, loaded, strict=True):
        assert (after.name, after.kind, after.config, after.trainable, after.flatten_from) == (
            before.name, before.kind, before.config, before.trainable, before.flatten_from)
        assert after.arrays.keys() == before.arrays.keys()
        assert all(np.array_equal(after.arrays[k], before.arrays[k]) for k in before.arrays)


def test_an_incomplete_transfer_is_refused_with_one_message_naming_every_leftover():
    layers = [
        KerasLayer("hidden", "Dense", {"kernel": np.zeros((4, 3)), "bias": np.zeros(3), "extra": np.zeros(1)}),
        KerasLayer("output", "Dense", {"kernel": np.zeros((3, 2)), "bias": np.zeros(2)}),
        KerasLayer("unmapped", "Dense", {"kernel": np.zeros((2, 2))}),
    ]
    targets = {
        "hidden": TorchTarget("net.0", "Linear", _linear(4, 3)),
        "output": TorchTarget("net.2", "Linear", {"weight": (2, 4), "bias": (2,)}),
        "ghost": TorchTarget("net.4", "Linear", _linear(1, 1)),
    }
    model = {"net.0.weight": (3, 4), "net.0.bias": (3,), "net.2.weight": (2, 4), "net.2.bias": (2,),
             "net.4.weight": (1, 1), "net.4.bias": (1,), "scale.weight": (1,)}
    with pytest.raises(WeightMappingError) as error:
        plan_transfer(layers, targets, model)
    message = str(error.value)
    for leftover in ("no torch module in keras_layers(): unmapped (Dense)", "names ghost, which the Keras model lacks",
                     "Keras variable hidden/extra is not transferred", "torch net.2.weight has shape (2, 4)",
                     "no Keras layer assigns: net.4.weight, net.4.bias, scale.weight"):
        assert leftover in message, leftover


def test_a_module_mapped_twice_and_an_unknown_pair_are_refused():
    layers = [KerasLayer(name, "Dense", {"kernel": np.zeros((2, 2)), "bias": np.zeros(2)}) for name in ("a", "b")]
    target = TorchTarget("fc", "Linear", _linear(2, 2))
    with pytest.raises(WeightMappingError, match=r"torch fc.weight would be assigned twice \(Keras a and b\)"):
        plan_transfer(layers, {"a": target, "b": target}, {"fc.weight": (2, 2), "fc.bias": (2,)})
    with pytest.raises(WeightMappingError, match="no converter for Keras Dense -> torch Conv2d"):
        plan_transfer(layers[:1], {"a": TorchTarget("fc", "Conv2d", _linear(2, 2))},
                      {"fc.weight": (2, 2), "fc.bias": (2,)})


def test_a_frozen_keras_layer_arrives_frozen():
    layer = KerasLayer("embedding", "Embedding", {"embeddings": np.ones((5, 2), np.float32)}, trainable=False)
    assert not _assign(layer, "Embedding", {"weight": (5, 2)})["weight"].trainable


def test_native_kernel_init_keeps_torch_values_but_still_checks_the_mapping():
    layer = _dense(np.ones((4, 3), np.float32))
    kept = _assign(layer, "Linear", _linear(4, 3), alignment=align.NATIVE)
    assert all(a.array is None and a.trainable for a in kept.values())
    with pytest.raises(WeightMappingError, match="has shape"):
        _assign(layer, "Linear", _linear(5, 3), alignment=align.NATIVE)
