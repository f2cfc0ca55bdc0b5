"""`parity explain MODEL`: which differences of parity.align apply to a model, their measured effects, its sources."""

from __future__ import annotations

import ast
import json

import pytest

from cli_helpers import REPO, run_cli
from parity import align, explain
from parity.catalog import CATALOG, get_spec
from test_list_fast import imported_frameworks

EVERY_MODEL = {"tf32", "determinism", "float32_summation_order", "tensor_layout"}
MEASUREMENTS = json.loads((REPO / "docs" / "differences.json").read_text())["differences"]


def keys(spec_id: str, every_model: bool) -> set[str]:
    return {entry.difference.key for entry in explain.applicable_differences(get_spec(spec_id))
            if entry.every_model == every_model}


def rule_problems(rules: dict[str, explain.Rule]) -> list[str]:
    """Differences without a rule, rules of no difference, and rules whose `unused` note disagrees with the catalog
    (a difference applies to some trained course model exactly when its rule has no such note)."""
    known = {difference.key for difference in align.DIFFERENCES}
    problems = [f"{key}: no rule" for key in sorted(known - set(rules))]
    problems += [f"{key}: a rule for no difference" for key in sorted(set(rules) - known)]
    trained = [spec for spec in CATALOG.values() if spec.trainable]
    for key, rule in rules.items():
        users = [spec.id for spec in trained if rule.reason(spec, explain.model_layers(spec)) is not None]
        if rule.every_model and len(users) != len(trained):
            problems.append(f"{key}: marked every_model but misses {sorted({s.id for s in trained} - set(users))}")
        if bool(users) == bool(rule.unused):
            problems.append(f"{key}: applies to {users[:3]}... yet noted unused" if users
                            else f"{key}: applies to no course model and has no `unused` note")
    return problems


def test_every_difference_applies_to_a_course_model_or_says_why_none_does():
    assert rule_problems(explain.RULES) == []


def test_the_rule_check_fails_on_planted_rules():
    planted = {**explain.RULES, "gru_layout": explain.Rule(lambda spec, layers: None),
               "same_padding_stride": explain.Rule(lambda spec, layers: "always", unused="never"),
               "not_a_difference": explain.Rule(lambda spec, layers: None)}
    del planted["tf32"]
    assert rule_problems(planted) == [
        "tf32: no rule", "not_a_difference: a rule for no difference",
        "gru_layout: applies to no course model and has no `unused` note",
        "same_padding_stride: applies to ['c1w1_hello_linear', 'c1w1_house_price', 'c1w2_fmnist_dnn']... yet noted "
        "unused",
        "not_a_difference: applies to no course model and has no `unused` note",
    ]


def test_a_cnn_meets_the_optimizer_flatten_and_metric_differences():
    assert keys("c1w3_fmnist_cnn", every_model=False) == {
        "kernel_init", "adam_epsilon_value", "adam_epsilon_placement", "flatten_order",
        "crossentropy_on_probabilities", "accuracy_average"}
    assert keys("c1w3_fmnist_cnn", every_model=True) == EVERY_MODEL


def test_an_lstm_text_model_meets_the_embedding_and_recurrent_differences():
    assert keys("c3w3_sarcasm_bilstm", every_model=False) == {
        "kernel_init", "embedding_init", "embedding_sparse_gradient", "adam_epsilon_value", "adam_epsilon_placement",
        "lstm_biases", "crossentropy_on_probabilities", "loss_target_shape"}
    assert keys("c3w3_sarcasm_bilstm", every_model=True) == EVERY_MODEL


def test_a_series_model_meets_the_sgd_and_recurrent_differences():
    assert keys("c4w3_ts_bilstm", every_model=False) == {
        "kernel_init", "sgd_momentum_form", "lstm_biases", "loss_target_shape"}
    assert keys("c4w3_ts_bilstm", every_model=True) == EVERY_MODEL


def test_frozen_or_loaded_layers_meet_fewer_differences():
    # GloVe vectors, frozen: neither the embedding's initialisation nor its sparse gradient matters.
    glove = keys("c3w3_sentiment140_glove", every_model=False)
    assert "lstm_biases" in glove and not {"embedding_init", "embedding_sparse_gradient"} & glove
    # The frozen InceptionV3 trunk normalises with fixed statistics: epsilon matters, momentum and variance do not.
    inception = keys("c2w3_inception_cats_dogs", every_model=False)
    assert "batchnorm_epsilon" in inception and not {"batchnorm_momentum", "batchnorm_variance"} & inception


def test_a_model_without_a_network_meets_no_difference():
    assert explain.applicable_differences(get_spec("c3w1_text_preproc")) == []


def source_kinds(parts: list[explain.SourcePart]) -> set[str]:
    """The Keras layer classes a builder's source names as `layers.X` (the base class `layers.Layer` aside)."""
    return {node.attr for part in parts for node in ast.walk(ast.parse(part.text))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "layers"
            and node.attr[0].isupper()} - {"Layer"}


# Layers of explain.ARCHITECTURE_LAYERS that a builder takes from elsewhere: the output Dense (tf_models.base
# output_layer) and the course's Lambda scaling (tf_models.layers.Scale); per architecture, the layers of a
# pretrained trunk that keras.applications builds (InceptionV3 in tf_models.transfer).
OUTSIDE_BUILDER = {"Dense", "Lambda"}
TRUNK_LAYERS = {"inception_transfer": {"Conv2D", "BatchNormalization", "MaxPooling2D", "AveragePooling2D"}}


def test_the_layer_table_matches_the_keras_builders():
    """Every Keras layer a builder's source calls is in explain's table for that architecture, and back."""
    checked = 0
    for architecture in explain.ARCHITECTURE_LAYERS:
        parts = explain.builder_source("tf_models", architecture)
        if not parts:
            continue
        table = {layer.kind for spec in CATALOG.values() if spec.architecture == architecture
                 for layer in explain.model_layers(spec)}
        in_source = source_kinds(parts)
        assert in_source <= table, f"{architecture}: {in_source - table} missing from ARCHITECTURE_LAYERS"
        outside = OUTSIDE_BUILDER | TRUNK_LAYERS.get(architecture, set())
        assert table - outside <= in_source, f"{architecture}: {table - in_source} not in its builder"
        checked += 1
    assert checked >= 8
    planted = [explain.SourcePart("x.py", "f", 1, "def f() -> layers.Layer:\n    return layers.BatchNormalization()\n")]
    assert source_kinds(planted) == {"BatchNormalization"}


def test_sources_are_the_registered_builders_and_the_module_class():
    keras_parts = explain.builder_source("tf_models", "embedding_gap_classifier")
    torch_parts = explain.builder_source("torch_models", "embedding_gap_classifier")
    assert [(part.path, part.name) for part in keras_parts] == [("tf_models/text.py", "embedding_gap_classifier")]
    assert [part.name for part in torch_parts] == ["_embedding", "EmbeddingGapClassifier", "embedding_gap_classifier"]
    assert keras_parts[0].text.startswith("@REGISTRY.register\ndef embedding_gap_classifier(spec: ModelSpec)")
    source = (REPO / "torch_models" / "text.py").read_text().splitlines()
    assert source[torch_parts[1].line - 1] == "class EmbeddingGapClassifier(CourseModule):"
    assert explain.builder_source("tf_models", "no_such_architecture") == []


def test_a_difference_without_a_measurement_says_not_measured():
    record = explain.explanation(get_spec("c3w2_sarcasm_embed_gap"), measurements={})
    assert {entry["measured"] for entry in record["differences"]} == {"not measured"}
    assert explain.measured_effect({"kind": "probe", "summary": ""}) == "not measured"


def test_two_columns_on_a_wide_terminal_one_after_the_other_on_a_narrow_one():
    record = explain.explanation(get_spec("c1w3_fmnist_cnn"))
    wide, narrow = explain.render(record, width=200), explain.render(record, width=80)
    assert any(line.startswith("Keras (tf_models)") and line.endswith("| Lightning (torch_models)")
               for line in wide.splitlines())
    assert max(map(len, wide.splitlines())) <= 200
    assert "Keras (tf_models)" in narrow.splitlines() and "Lightning (torch_models)" in narrow.splitlines()
    assert max(map(len, narrow.splitlines())) <= 80


ACCEPTANCE = ("embedding_init", "embedding_sparse_gradient", "adam_epsilon_value", "adam_epsilon_placement")


def test_explain_lists_the_embedding_adam_and_sparse_gradient_differences_with_their_measured_effects():
    result = run_cli("explain", "c3w2_sarcasm_embed_gap", env={"COLUMNS": "1000", "PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for key in ACCEPTANCE:
        measured = MEASUREMENTS[key]
        assert any(line.startswith(f"  {key}: ") for line in lines), key
        assert f"measured: {measured['setup']}: {measured['summary']}" in result.stdout, key
    assert "class EmbeddingGapClassifier(CourseModule):" in result.stdout
    assert imported_frameworks(result.stderr) == set()


def test_explain_json():
    result = run_cli("explain", "c3w2_sarcasm_embed_gap", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(result.stdout)
    differences = {entry["key"]: entry for entry in record["differences"]}
    assert set(ACCEPTANCE) <= set(differences)
    assert differences["embedding_sparse_gradient"]["measurement"] == MEASUREMENTS["embedding_sparse_gradient"]
    assert differences["tf32"]["scope"] == "every_model"
    assert [part["name"] for part in record["sources"]["keras"]] == ["embedding_gap_classifier"]


@pytest.mark.parametrize("args", [("explain", "c9w9_nothing"), ("explain", "c9w9_nothing", "--json")])
def test_an_unknown_model_is_the_usual_one_line_error(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("parity: error: unknown model id 'c9w9_nothing'; valid ids: ")
    assert len(result.stderr.strip().splitlines()) == 1
