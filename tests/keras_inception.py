"""The Keras half of tests/test_inception.py's pretrained-weights tests, in a TF-only process.

Usage: python tests/keras_inception.py WORKDIR MODEL_ID. In a fresh process (canonical layer names):
1. checks parity.inception.KERAS_LOAD_ORDER against the installed Keras' model.layers order;
2. writes WORKDIR/notop.h5 in the course file's legacy layout from a randomly initialised
   InceptionV3(include_top=False) (every variable drawn by tf_models.weights.randomize_variables),
   naming its layers as Keras 2 did (conv2d_1, ... one-based), so that only positions pair them;
3. builds MODEL_ID with that file as its weights (the builder's load_weights) and saves the inference
   values of every mixed block on WORKDIR/inputs.npy to WORKDIR/keras-blocks.npz.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import keras
import numpy as np

from parity.catalog import shaped_by_data
from parity.inception import KERAS_LOAD_ORDER, write_notop_h5
from tf_models import build
from tf_models.transfer import block_outputs
from tf_models.weights import randomize_variables

SEED = 3


AUTOMATIC = re.compile(r"(conv2d|batch_normalization|activation|max_pooling2d|average_pooling2d|concatenate)(?:_(\d+))?")


def keras2_name(name: str) -> str:
    """conv2d -> conv2d_1, conv2d_5 -> conv2d_6: Keras 2 numbered automatic names from 1 (given names stay)."""
    match = AUTOMATIC.fullmatch(name)
    return f"{match.group(1)}_{int(match.group(2) or 0) + 1}" if match else name


def main(workdir: Path, model_id: str) -> None:
    base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(150, 150, 3))
    weighted = [layer for layer in base.layers if layer.weights]
    order = [(layer.name, type(layer).__name__) for layer in weighted]
    if order != list(KERAS_LOAD_ORDER):
        raise SystemExit(f"KERAS_LOAD_ORDER differs from this Keras' model.layers order: {order}")
    randomize_variables(base, SEED)
    layers = [(keras2_name(layer.name), {variable.name: keras.ops.convert_to_numpy(variable)
                                          for variable in layer.weights}) for layer in weighted]
    unweighted = [keras2_name(layer.name) for layer in base.layers if not layer.weights]
    h5 = workdir / "notop.h5"
    write_notop_h5(h5, layers, unweighted)
    with shaped_by_data({model_id: {"layers": {"weights": str(h5)}}}):
        model = build(model_id)
    if not np.array_equal(keras.ops.convert_to_numpy(model.get_layer("conv2d").kernel), layers[0][1]["kernel"]):
        raise SystemExit("load_weights did not put the file's first kernel into conv2d")
    values = block_outputs(model, np.load(workdir / "inputs.npy"))
    np.savez(workdir / "keras-blocks.npz", **{name: value for name, value in values.items()
                                               if name.startswith("mixed")})


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
