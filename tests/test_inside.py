"""`parity inside`: the course's feature-map picture and projector export from both frameworks' trained models.

Uses the tiny `--save` runs of tests/saved_runs.py and the real `parity inside` command; numpy only in
this process. The feature maps' check compares Keras' maps with torch's computed from the Keras trained
weights, within the forward check's tolerance (parity.compare.forward_tolerance): planted errors on the
real maps (height and width swapped, NCHW left untransposed, layers out of order) must fail it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli
from PIL import Image
from saved_runs import FMNIST, SARCASM, SERIES

from parity import inside, saved_models
from parity.errors import ParityError

LAYERS = ["conv_1", "pool_1", "conv_2", "pool_2"]
# Each framework's own trained model drifts from the other during training (tests/test_predict.py, DRIFT_TOLERANCE):
# after one synthetic epoch the Fashion-MNIST CNN's maps differ by up to 13% of a layer's largest value. 0.5 bounds
# that drift loosely; the exact check is the same-weights one.
DRIFT_TOLERANCE = 0.5


@pytest.fixture(scope="module")
def feature_maps(saved_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """`parity inside` on the Fashion-MNIST CNN run for one 28x28 image: its JSON record and its output folder."""
    out = tmp_path_factory.mktemp("inside")
    image = np.random.default_rng(3).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(image).save(out / "shoe.png")
    result = run_cli("inside", str(saved_runs[FMNIST]), "--image", str(out / "shoe.png"), "--out", str(out),
                     "--json", "--threads", "1", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), out


def _maps(out: Path) -> list[inside.LayerMaps]:
    """The maps behind the figure, as written to feature-maps.npz."""
    arrays = np.load(out / "feature-maps.npz")
    return [inside.LayerMaps(kind, name, arrays[f"keras_{i}"], arrays[f"lightning_{i}"], arrays[f"same_weights_{i}"])
            for i, (kind, name) in enumerate(zip(["conv", "pool"] * 2, LAYERS))]


def _layers(maps: list[inside.LayerMaps], framework: str) -> list[tuple[str, str, np.ndarray]]:
    return [(m.kind, m.name, getattr(m, framework)) for m in maps]


@pytest.mark.slow
def test_feature_maps_of_every_conv_and_pool_layer_agree_between_frameworks(feature_maps):
    record, out = feature_maps
    assert [row["layer"] for row in record["layers"]] == LAYERS
    assert [row["shape"] for row in record["layers"]] == [[26, 26, 64], [13, 13, 64], [11, 11, 64], [5, 5, 64]]
    for row in record["layers"]:
        assert row["same_weights_max_abs_diff"] <= row["tolerance"] and row["passed"]
        assert row["max_rel_diff"] < DRIFT_TOLERANCE
    assert json.loads((out / "feature-maps.json").read_text()) == record
    with Image.open(out / "feature-maps.png") as figure:
        assert figure.format == "PNG" and figure.size[1] > figure.size[0]
    maps = _maps(out)
    assert inside.layer_differences(maps) == record["layers"]
    for conv, pool in zip(maps[::2], maps[1::2]):  # each pooling map is the 2x2 max of the convolution's
        height, width = pool.keras.shape[1:3]
        blocks = conv.lightning[:, : 2 * height, : 2 * width].reshape(1, height, 2, width, 2, -1)
        np.testing.assert_array_equal(blocks.max(axis=(2, 4)), pool.lightning)


@pytest.mark.slow
def test_planted_layout_and_order_errors_fail_the_feature_map_check(feature_maps):
    _, out = feature_maps
    maps = _maps(out)
    swapped = [inside.LayerMaps(m.kind, m.name, m.keras, m.lightning, m.same_weights.transpose(0, 2, 1, 3))
               for m in maps]  # NCHW -> NWHC instead of NHWC: same shapes, wrong pixels
    assert not any(row["passed"] for row in inside.layer_differences(swapped))
    assert min(row["same_weights_max_abs_diff"] / row["tolerance"] for row in inside.layer_differences(swapped)) > 100
    keras, lightning = _layers(maps, "keras"), _layers(maps, "lightning")
    untransposed = [(kind, name, array.transpose(0, 3, 1, 2)) for kind, name, array in lightning]
    with pytest.raises(ParityError, match="transposed from NCHW to NHWC"):
        inside.pair_layers(keras, untransposed, [m.same_weights for m in maps])
    with pytest.raises(ParityError, match="layers differ"):
        inside.pair_layers(keras, lightning[::-1], [m.same_weights for m in maps][::-1])
    convs_swapped = [lightning[2], lightning[1], lightning[0], lightning[3]]
    with pytest.raises(ParityError, match="conv_1 \\(keras\\) is paired with conv_2 \\(lightning\\)"):
        inside.pair_layers(keras, convs_swapped, [m.same_weights for m in maps])


@pytest.mark.slow
def test_projector_export_loads_back_with_one_row_per_word(saved_runs: dict[str, Path], tmp_path: Path):
    result = run_cli("inside", str(saved_runs[SARCASM]), "--out", str(tmp_path), "--json", "--threads", "1",
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    vocabulary = saved_models.read_inputs(saved_runs[SARCASM])["text"]["vocabulary"]
    rows, dim = record["embedding_shape"]
    exported = min(rows, len(vocabulary)) - 1  # id 0 (padding) skipped, as the course's range(1, vocab_size)
    vectors = {}
    for framework in ("keras", "lightning"):
        words, vectors[framework] = inside.read_projector(tmp_path / f"{framework}-vecs.tsv",
                                                          tmp_path / f"{framework}-meta.tsv")
        assert words == vocabulary[1:exported + 1] and vectors[framework].shape == (exported, dim)
    similarities = inside.cosine_similarities(vectors["keras"], vectors["lightning"])
    stats = record["cosine_similarity"]
    assert (stats["min"], stats["median"], stats["max"]) == pytest.approx(
        (similarities.min(), np.median(similarities), similarities.max()), abs=1e-6)  # the TSVs hold float32 text
    assert stats["min"] > 0.999  # aligned training from the same start: the vectors point the same way
    assert [word for word, _ in stats["least_similar"]] == [words[i] for i in np.argsort(similarities,
                                                                                          kind="stable")[:10]]


@pytest.mark.slow
def test_inside_of_a_series_model_says_what_it_can_show(saved_runs: dict[str, Path], tmp_path: Path):
    result = run_cli("inside", str(saved_runs[SERIES]), "--out", str(tmp_path), "--threads", "1", "--device", "cpu")
    assert result.returncode == 2
    assert "neither a conv net nor a text model" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cosine_similarity_and_projector_rows_on_known_vectors(tmp_path: Path):
    similarities = inside.cosine_similarities(np.array([[1.0, 0], [1, 1], [0, 0]]), np.array([[2.0, 0], [-1, -1], [1, 0]]))
    np.testing.assert_allclose(similarities, [1, -1, 0])
    words, vectors = inside.projector_rows(["", "<OOV>", "a", "b"], np.arange(10.0).reshape(5, 2))
    assert words == ["<OOV>", "a", "b"] and vectors.tolist() == [[2, 3], [4, 5], [6, 7]]
    vecs, meta = inside.projector_tsv(words, vectors)
    (tmp_path / "v.tsv").write_text(vecs)
    (tmp_path / "m.tsv").write_text(meta)
    assert vecs.splitlines()[0] == "2.0\t3.0"
    read_words, read = inside.read_projector(tmp_path / "v.tsv", tmp_path / "m.tsv")
    assert read_words == words and read.tolist() == vectors.tolist()


def test_the_input_panel_shows_preprocessed_pixels_in_the_range_matplotlib_draws():
    """An RGB input drawn as given must lie in [0, 1] (matplotlib clips it otherwise): InceptionV3's [-1, 1] input
    is drawn as pixels / 255 again (float32 rounding of / 127.5 - 1 and back: well under 1e-6), [0, 1] as given."""
    pixels = np.random.default_rng(4).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    pixels[0, 0] = (0, 255, 0)  # both ends of the range present
    preprocessed = saved_models.scale_pixels({"scale": 127.5, "divide": True, "offset": -1.0}, pixels)
    np.testing.assert_allclose(inside.shown_input(preprocessed), pixels / 255.0, atol=1e-6)
    unit = saved_models.scale_pixels({"scale": 255.0, "divide": True}, pixels)
    assert inside.shown_input(unit) is unit
    assert inside.shown_input(unit[..., :1]).shape == (6, 5)
