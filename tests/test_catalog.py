"""The catalog holds the course's models, in course order, with consistent training recipes."""

import subprocess
import sys
from dataclasses import FrozenInstanceError, replace

import pytest

from parity.catalog import CATALOG, LOSSES, OPTIMIZERS, TASKS, VALIDATION, UnknownModelError, get_spec
from parity.spec_types import CnnClassifier, TextData

# The ids of the summary table of shared/course_models.md section 1, in course order.
COURSE_IDS = [
    "c1w1_hello_linear",
    "c1w1_house_price",
    "c1w2_fmnist_dnn",
    "c1w2_fmnist_dnn_callback",
    "c1w2_mnist_dnn_callback",
    "c1w3_fmnist_cnn",
    "c1w3_mnist_cnn_callback",
    "c1w4_horse_human_300",
    "c1w4_horse_human_150",
    "c1w4_happy_sad",
    "c2w1_cats_dogs_cnn",
    "c2w1_cats_dogs_full",
    "c2w2_cats_dogs_aug",
    "c2w2_horse_human_aug",
    "c2w3_inception_cats_dogs",
    "c2w3_inception_horse_human",
    "c2w4_rps_cnn",
    "c2w4_sign_mnist_cnn",
    "c3w1_text_preproc",
    "c3w2_imdb_embed_flatten",
    "c3w2_sarcasm_embed_gap",
    "c3w2_bbc_embed_gap",
    "c3w2_imdb_subwords_gap",
    "c3w3_imdb_bilstm1",
    "c3w3_imdb_bilstm2",
    "c3w3_imdb_conv1d",
    "c3w3_imdb_gru_lstm_conv",
    "c3w3_sarcasm_bilstm",
    "c3w3_sarcasm_conv1d",
    "c3w3_sentiment140_glove",
    "c3w4_lanigan_textgen",
    "c3w4_irish_lyrics_textgen",
    "c3w4_shakespeare_textgen",
    "c4w1_stat_forecast",
    "c4w2_ts_linear",
    "c4w2_ts_dnn",
    "c4w3_ts_simplernn",
    "c4w3_ts_bilstm",
    "c4w4_ts_conv_lstm",
    "c4w4_sunspots_dnn",
    "c4w4_sunspots_conv_lstm_dnn",
    "c4w4_daily_min_temp",
]
UNTRAINED_IDS = {"c3w1_text_preproc", "c4w1_stat_forecast"}
TASK_LOSSES = {
    "binary": {"binary_crossentropy"},
    "multiclass": {"sparse_categorical_crossentropy", "categorical_crossentropy"},
    "regression": {"mse", "huber"},
    "none": {"none"},
}

TRAINABLE = [spec for spec in CATALOG.values() if spec.trainable]


def test_catalog_holds_the_course_ids_in_course_order():
    assert [model_id for model_id, spec in CATALOG.items() if spec.variant_of is None] == COURSE_IDS
    assert len(set(COURSE_IDS)) == len(COURSE_IDS)


def test_a_variant_follows_the_course_model_it_is_a_variant_of():
    ids = list(CATALOG)
    for model_id, spec in CATALOG.items():
        if spec.variant_of is not None:
            assert CATALOG[spec.variant_of].variant_of is None, model_id
            between = ids[ids.index(spec.variant_of) + 1:ids.index(model_id)]
            assert all(CATALOG[other].variant_of == spec.variant_of for other in between), model_id


def test_ids_agree_with_part_and_week():
    for spec in CATALOG.values():
        assert spec.id.startswith(f"c{spec.part}w{spec.week}_"), spec.id


def test_only_the_preprocessing_and_statistics_ids_train_no_network():
    untrained = {spec.id for spec in CATALOG.values() if not spec.trainable}
    assert untrained == UNTRAINED_IDS
    for model_id in UNTRAINED_IDS:
        spec = get_spec(model_id)
        assert spec.task == "none" and spec.loss == "none"
        assert spec.optimizer is None and spec.epochs == 0 and spec.batch_size == 0
        assert spec.metric is None


@pytest.mark.parametrize("spec", TRAINABLE, ids=lambda spec: spec.id)
def test_trainable_spec_has_a_complete_recipe(spec):
    assert spec.optimizer is not None
    assert spec.optimizer.name in OPTIMIZERS
    assert spec.optimizer.learning_rate > 0
    assert 0.0 <= spec.optimizer.momentum < 1.0
    assert spec.epochs > 0
    assert spec.batch_size > 0
    assert spec.input_shape
    assert spec.task in TASKS and spec.task != "none"
    assert spec.loss in LOSSES


@pytest.mark.parametrize("spec", TRAINABLE, ids=lambda spec: spec.id)
def test_loss_is_consistent_with_the_task(spec):
    assert spec.loss in TASK_LOSSES[spec.task]
    assert spec.metric == ("mae" if spec.task == "regression" else "accuracy")


@pytest.mark.parametrize("spec", list(CATALOG.values()), ids=lambda spec: spec.id)
def test_reference_and_stop_rule_are_sane(spec):
    assert spec.reference.text
    if spec.reference.val_metric is not None:
        assert spec.trainable
        if spec.task in ("binary", "multiclass"):
            assert 0.0 < spec.reference.val_metric <= 1.0
        else:
            assert spec.reference.val_metric > 0.0
    if spec.stop is not None:
        assert spec.trainable
        assert spec.stop.monitor in ("loss", "accuracy", "val_loss", "val_accuracy", "mae", "val_mae")
    if spec.course_params is not None:
        assert spec.course_params > 0


def test_get_spec_returns_the_catalog_entry():
    assert get_spec("c1w3_fmnist_cnn") is CATALOG["c1w3_fmnist_cnn"]


def test_unknown_id_raises_with_the_valid_ids():
    with pytest.raises(UnknownModelError) as excinfo:
        get_spec("c9w9_no_such_model")
    message = str(excinfo.value)
    assert "c9w9_no_such_model" in message
    for model_id in COURSE_IDS:
        assert model_id in message
    assert isinstance(excinfo.value, ValueError)


def test_specs_are_read_only():
    spec = get_spec("c1w3_fmnist_cnn")
    with pytest.raises(FrozenInstanceError):
        spec.layers.classes = 3  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        spec.validation = "train"  # type: ignore[misc]
    with pytest.raises(TypeError):
        get_spec("c2w1_cats_dogs_cnn").data.urls["train"] = "http://elsewhere"  # type: ignore[index]


def test_an_unknown_hyperparameter_is_an_error_when_the_spec_is_written():
    # c2w4_rps_cnn needs Flatten -> Dropout; a misspelt key must not be silently ignored by a builder.
    with pytest.raises(TypeError, match="flaten_dropout"):
        CnnClassifier(conv_filters=(8,), kernel_size=3, pool_size=2, hidden_units=4, classes=3, flaten_dropout=0.5)
    with pytest.raises(TypeError, match="training_sise"):
        TextData(tokenizer="keras2_tokenizer", training_sise=20_000)


def test_recipe_values_are_checked():
    spec = get_spec("c2w4_rps_cnn")
    with pytest.raises(ValueError, match="label_mode 'categorical'"):
        replace(spec, label_mode="int")
    with pytest.raises(ValueError, match="validation"):
        replace(spec, validation="holdout")


def test_importing_a_part_module_alone_has_no_import_cycle():
    # parity.specs.part1 used to import parity.catalog, which imported it back: a partially initialised module.
    code = "import parity.specs.part3 as p; import parity.catalog as c; assert c.CATALOG['c3w2_sarcasm_embed_gap']"
    for first in ("parity.specs.part1", "parity.specs.part4", "parity.spec_types"):
        result = subprocess.run([sys.executable, "-c", f"import {first}; {code}"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("spec", TRAINABLE, ids=lambda spec: spec.id)
def test_label_mode_fits_the_loss_and_validation_is_named(spec):
    expected = {"sparse_categorical_crossentropy": "int", "categorical_crossentropy": "categorical",
                "binary_crossentropy": "binary"}.get(spec.loss, "none")
    assert spec.label_mode == expected
    assert spec.validation in VALIDATION
    if spec.generation is not None:
        assert spec.validation == "none" and spec.generation.next_words > 0


def test_catalog_is_read_only():
    with pytest.raises(TypeError):
        CATALOG["new_model"] = CATALOG["c1w1_hello_linear"]  # type: ignore[index]


def test_resolve_spec_applies_the_sizes_the_data_fixed() -> None:
    from parity.catalog import resolve_spec

    spec = get_spec("c3w4_irish_lyrics_textgen")
    resolved = resolve_spec(spec, {"layers": {"vocab_size": 2690}, "input_shape": [15]})
    assert (resolved.layers.vocab_size, resolved.input_shape) == (2690, (15,))
    assert (spec.layers.vocab_size, spec.input_shape) == (None, (None,))  # the catalog's spec is untouched
    assert resolve_spec(spec, None) is spec and resolve_spec(spec, {}) is spec
    with pytest.raises(ValueError, match="not among"):
        resolve_spec(spec, {"vocab_size": 2690})
    with pytest.raises(TypeError):  # a field the architecture does not have
        resolve_spec(spec, {"layers": {"filters": 3}})


def test_shaped_by_data_resolves_get_spec_within_the_block_only() -> None:
    from parity.catalog import shaped_by_data

    with shaped_by_data({"c3w4_irish_lyrics_textgen": {"layers": {"vocab_size": 7}}}):
        assert get_spec("c3w4_irish_lyrics_textgen").layers.vocab_size == 7
        assert get_spec("c3w4_lanigan_textgen").layers.vocab_size is None  # other ids keep their spec
        with shaped_by_data({"c3w4_irish_lyrics_textgen": {"layers": {"vocab_size": 9}}}):
            assert get_spec("c3w4_irish_lyrics_textgen").layers.vocab_size == 9
        assert get_spec("c3w4_irish_lyrics_textgen").layers.vocab_size == 7
    assert get_spec("c3w4_irish_lyrics_textgen").layers.vocab_size is None
