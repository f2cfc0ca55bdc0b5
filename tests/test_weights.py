"""Keras -> torch weight mapping, checked against numpy re-implementations of both layouts."""

import numpy as np
import pytest

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
    with pytest.raises(WeightMappingError, match="LSTM"):
        plan_transfer([KerasLayer("lstm", "LSTM", {"kernel": np.zeros((1, 4))})], [])
