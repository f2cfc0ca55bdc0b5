"""Keras half of tests/test_generate.py's saved run, in its own process (TensorFlow and torch never share one).

Usage: python tests/keras_textgen_run.py RUN_DIR MODEL_ID OVERRIDES_JSON SEED WEIGHTS_NPZ
Builds MODEL_ID at the sizes OVERRIDES_JSON states (a loader's spec_overrides), draws every variable at random
as the forward check does (tf_models.weights.randomize_variables(SEED): outputs that depend on every word of
the context), sharpens its softmax as training does (OUTPUT_SCALE) and keeps it as `parity run --save` keeps a
trained model, RUN_DIR/models/keras-seed0.keras; its weight export (parity.weights) goes to WEIGHTS_NPZ for the
torch side.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The output kernel times 4: random weights alone give next-word probabilities near 1/V whose top two are often
# within 1e-4; scaled, the greedy picks of the test's seed are clear (its test asserts the smallest margin).
OUTPUT_SCALE = 4.0


def main(argv: list[str]) -> int:
    from parity.catalog import shaped_by_data
    from parity.weights import save_keras_layers
    from tf_models import build
    from tf_models.saving import save_files
    from tf_models.weights import export_layers, randomize_variables

    run_dir, model_id, overrides, seed, weights = Path(argv[0]), argv[1], json.loads(argv[2]), int(argv[3]), argv[4]
    with shaped_by_data({model_id: overrides}):
        model = build(model_id)
    randomize_variables(model, seed)
    kernel = model.get_layer("output").kernel
    kernel.assign(kernel * OUTPUT_SCALE)
    save_files(model, run_dir, 0)
    save_keras_layers(Path(weights), export_layers(model))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
