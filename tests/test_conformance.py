"""One conformance suite over the registry: every model that both frameworks build is held to the same bar.

For each implemented model (the live answer of `parity list`, so a model added later is covered
without a new test): the parameter count of the course, a complete transfer, randomised forward
parity within the model's tolerance, 3 lockstep steps within the lockstep tolerance, and a safe
save/load round trip in each framework. One pool of workers (one process per framework) serves
the whole suite; the inputs are each model's synthetic stand-in (no download).

Tiers: every model's parameter count is checked by default. Its forward, lockstep and round-trip checks
run in the slow tier only (test_heavy_checks) when SLOW_CHECKS names them (a hand list, set by the owner
of those models), or when it is a twin: a model with the `architecture_kinds` of a cheaper implemented
model (same builder, loss, optimizer and layer kinds; sizes and counts aside, and data-side settings such
as augmentation or a stop callback, which these checks do not apply). The cheapest of such a group
(fewest input values, then smallest batch, as the lockstep trains 3 batches, then catalog order) stays in
the default tier and covers the group's code there; the slow tier checks every twin the same way.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parity import align, jobs, lockstep
from parity.catalog import CATALOG, ModelSpec, get_spec, resolve_spec
from parity.datasets import load_dataset
from parity.runner import CHECK_SEED, PROBE_SIZE, describe_models, forward_check
from parity.specs.part3 import DATA_SIZED_PARAMS

LOCKSTEP_STEPS = 3
ROUNDTRIP_INPUTS = 32
# Checks too heavy for the default suite, run by the slow test_heavy_checks: InceptionV3 at 150x150 takes ~21 s per
# lockstep run, ~8 s and 380 MB of files per round trip, ~12 s per forward check (both workers, one thread).
# c2w3_inception_horse_human has c2w3_inception_cats_dogs's architecture, so its forward check is slow-only too.
SLOW_CHECKS: dict[str, tuple[str, ...]] = {
    "c2w3_inception_cats_dogs": ("lockstep", "roundtrip"),
    "c2w3_inception_horse_human": ("forward", "lockstep", "roundtrip"),
}


CHECKED_PARTS = ("forward", "lockstep", "roundtrip")


def _layer_kind(value: Any) -> Any:
    """A hyperparameter as far as it chooses layers: a float rate on or off, a flag or a name as it is, a size not."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, float):
        return value != 0.0
    if isinstance(value, tuple):
        return tuple(sorted({repr(_layer_kind(item)) for item in value}))
    return "size"


def architecture_kinds(spec: ModelSpec) -> tuple:
    """What the forward, lockstep and round-trip checks exercise of a model apart from its sizes: the builder, the
    loss and optimizer the lockstep trains with, and the layer kinds its hyperparameters switch on."""
    return (spec.layers.architecture, spec.loss, spec.optimizer.name if spec.optimizer else None,
            tuple((name, _layer_kind(value)) for name, value in spec.layers.as_dict().items()))


def input_values(spec: ModelSpec) -> int:
    """The values of one input (a variable length, None, counts as 1)."""
    return math.prod(size or 1 for size in spec.input_shape)


def larger_twins(models: list[str]) -> set[str]:
    """The models of `models` (SLOW_CHECKS' aside) whose `architecture_kinds` a cheaper one shares."""
    order = {model_id: index for index, model_id in enumerate(CATALOG)}
    specs = sorted((get_spec(model_id) for model_id in models if model_id not in SLOW_CHECKS),
                   key=lambda spec: (input_values(spec), spec.batch_size, order[spec.id]))
    cheapest: dict[tuple, str] = {}
    for spec in specs:
        cheapest.setdefault(architecture_kinds(spec), spec.id)
    return {spec.id for spec in specs if cheapest[architecture_kinds(spec)] != spec.id}


def _selected(models: list[str], part: str, slow: bool) -> list[str]:
    """The models whose `part` this suite measures: the default suite all but the slow parts (SLOW_CHECKS, and
    every part of a larger twin), the slow one those."""
    twins = larger_twins(models)
    return [model_id for model_id in models
            if (part in SLOW_CHECKS.get(model_id, CHECKED_PARTS if model_id in twins else ())) == slow]


def _measure(tmp_path_factory: pytest.TempPathFactory, slow: bool) -> dict[str, Any]:
    """Everything the suite checks, measured once: descriptions, forward rows, lockstep runs, round trips."""
    workdir = tmp_path_factory.mktemp("conformance")
    mp = pytest.MonkeyPatch()
    mp.setenv("PARITY_OFFLINE", "1")
    mp.setenv("PARITY_CACHE_DIR", str(tmp_path_factory.mktemp("conformance-cache")))
    try:
        with jobs.worker_pool(threads=1, quiet=True) as workers:
            rows = {row["id"]: row for row in describe_models(workers=workers)}
            models = [model_id for model_id, row in rows.items() if all(row["implemented"].values())]
            overrides: dict[str, Any] = {}  # the sizes each stand-in fixes (a fitted vocabulary)
            for model_id in models:
                split = load_dataset(get_spec(model_id), synthetic=True)
                np.save(jobs.probe_inputs_path(workdir, model_id), split.probe_inputs(PROBE_SIZE))
                overrides.update(split.spec_overrides(model_id))
            checked = _selected(models, "forward", slow)
            forward = forward_check(checked, [CHECK_SEED], workers, workdir, spec_overrides=overrides) if checked else []
            options = lockstep.LockstepOptions(steps=LOCKSTEP_STEPS, rounding_control=False, synthetic=True)
            steps = {model_id: lockstep.measure(model_id, options, workers)
                     for model_id in _selected(models, "lockstep", slow)}
            for model_id, result in steps.items():  # the one-ulp control, only where the gradient norms need it
                if result["comparisons"][0]["max_rel_grad_norm_diff"] > lockstep.TOLERANCE:
                    steps[model_id] = lockstep.measure(model_id, replace(options, rounding_control=True), workers)
            tripped = _selected(models, "roundtrip", slow)
            for model_id in tripped:  # fewer inputs: the round trip compares predictions, not statistics
                np.save(jobs.probe_inputs_path(workdir, model_id),
                        np.load(jobs.probe_inputs_path(workdir, model_id))[:ROUNDTRIP_INPUTS])
            roundtrip = {framework: workers.run(framework, {"kind": "roundtrip", "models": tripped, "seed": 3,
                                                         "spec_overrides": overrides}, workdir)
                         ["models"] if tripped else {} for framework in jobs.FRAMEWORKS}
    finally:
        mp.undo()
    return {"models": models, "describe": rows, "forward": forward, "lockstep": steps, "roundtrip": roundtrip,
            "workdir": Path(workdir), "overrides": overrides, "slow": slow}


@pytest.fixture(scope="module")
def conformance(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _measure(tmp_path_factory, slow=False)


def implemented(conformance: dict[str, Any]) -> list[str]:
    return conformance["models"]


def test_the_suite_covers_every_model_that_both_frameworks_build(conformance):
    # The floor: the 13 models the core v2 issue names; more may join, none may silently drop out.
    required = {"c1w1_hello_linear", "c1w1_house_price", "c1w2_fmnist_dnn", "c1w2_fmnist_dnn_callback",
                "c1w2_mnist_dnn_callback", "c1w3_fmnist_cnn", "c1w3_mnist_cnn_callback", "c3w2_sarcasm_embed_gap",
                "c4w2_ts_linear", "c4w2_ts_dnn", "c1w4_happy_sad", "c3w3_sarcasm_bilstm", "c4w4_daily_min_temp"}
    assert required <= set(conformance["models"])


def _each_model(check, part=None):
    """Run `check(conformance, model_id)` for every implemented model whose `part` (forward, lockstep, roundtrip)
    this suite measured, reporting every failure at once."""
    def test(conformance):
        failures = []
        for model_id in conformance["models"] if part is None else _selected(conformance["models"], part,
                                                                               conformance["slow"]):
            try:
                check(conformance, model_id)
            except AssertionError as error:
                failures.append(f"{model_id}: {error}")
        assert not failures, "\n".join(failures)
    test.__name__ = check.__name__
    test.__doc__ = check.__doc__
    return test


def _parameter_count_is_the_course_s(conformance, model_id):
    """Keras builds the course's parameter count; torch adds exactly the documented extra (second LSTM biases).
    A model sized by its data (course_params None) has the count of the formula stated next to its spec
    (parity.specs.part3.DATA_SIZED_PARAMS), for the vocabulary `describe` built it with."""
    spec = get_spec(model_id)
    params = conformance["describe"][model_id]["params"]
    expected = spec.course_params
    if expected is None:
        assert model_id in DATA_SIZED_PARAMS, "the spec states neither a course parameter count nor a formula"
        if spec.layers.vocab_size is None:  # `describe` built it at its stand-in's size (parity.datasets.stand_in_overrides)
            spec = resolve_spec(spec, conformance["overrides"][model_id])
        expected = DATA_SIZED_PARAMS[model_id](spec.layers)
    assert params["keras"] == expected, params
    assert params["lightning"] == expected + align.torch_extra_parameters(spec), params


def _transfer_is_complete(conformance, model_id):
    """Every Keras variable is read and every torch parameter and buffer assigned (parity.weights refuses less)."""
    transfer = next(row["transfer"] for row in conformance["forward"] if row["model"] == model_id)
    assert transfer["keras_variables_read"] == transfer["keras_variables"] > 0, transfer
    assert transfer["torch_tensors_assigned"] == transfer["torch_tensors"] > 0, transfer


def _forward_parity_on_random_weights(conformance, model_id):
    """Every variable random (biases and statistics too), outputs within the model's tolerance in every mode."""
    rows = [row for row in conformance["forward"] if row["model"] == model_id]
    assert rows and rows[0]["mode"] == "inference"
    for row in rows:
        assert row["passed"] and row["max_abs_diff"] <= row["tolerance"], row


def _three_lockstep_steps_agree(conformance, model_id):
    """Same weights, same batches, aligned: 3 training steps' losses within the tolerance; gradient norms within it
    at the first step (same weights) and later within rounding (`lockstep.grad_norms_within_rounding`: after one
    step the weights differ by rounding, which max-pool near-ties and ReLU inputs near 0 can turn into a re-routed
    gradient; c2w4_rps_cnn's step-3 norm is 2.2e-4 apart, torch against itself one ulp apart 3.5e-3)."""
    result = conformance["lockstep"][model_id]
    (comparison,) = result["comparisons"]
    assert result["steps"] == LOCKSTEP_STEPS and len(result["keras"]["loss"]) == LOCKSTEP_STEPS
    assert comparison["first_divergence_step"] is None, comparison["rel_loss_diff"]
    assert comparison["max_rel_loss_diff"] <= comparison["tolerance"] == lockstep.TOLERANCE
    assert lockstep.grad_norms_within_rounding(comparison, result["rounding_control"]), (
        comparison["rel_grad_norm_diff"], result["rounding_control"])


def _save_and_load_round_trip(conformance, model_id):
    """Keras .keras loaded with safe_mode=True and torch state_dict with weights_only=True predict exactly as saved."""
    for framework in jobs.FRAMEWORKS:
        trip = conformance["roundtrip"][framework][model_id]
        assert trip["max_abs_diff"] == 0.0, (framework, trip)  # same weights, same kernels, same process
        params = conformance["describe"][model_id]["params"][framework]
        if model_id in DATA_SIZED_PARAMS and model_id in conformance["overrides"]:  # built at its stand-in's size
            spec = resolve_spec(get_spec(model_id), conformance["overrides"][model_id])
            extra = align.torch_extra_parameters(spec) if framework == "lightning" else 0
            params = DATA_SIZED_PARAMS[model_id](spec.layers) + extra
        assert trip["loaded_params"] == trip["params"] == params
        assert (conformance["workdir"] / trip["file"]).stat().st_size == trip["bytes"] > 0


test_parameter_count_is_the_course_s = _each_model(_parameter_count_is_the_course_s)
test_transfer_is_complete = _each_model(_transfer_is_complete, "forward")
test_forward_parity_on_random_weights = _each_model(_forward_parity_on_random_weights, "forward")
test_three_lockstep_steps_agree = _each_model(_three_lockstep_steps_agree, "lockstep")
test_save_and_load_round_trip = _each_model(_save_and_load_round_trip, "roundtrip")


def test_only_larger_twins_of_a_model_checked_by_default_leave_the_default_tier(conformance):
    twins = larger_twins(conformance["models"])
    default = set(_selected(conformance["models"], "lockstep", slow=False))
    for model_id in twins:
        spec = get_spec(model_id)
        cover = [other for other in default if architecture_kinds(get_spec(other)) == architecture_kinds(spec)]
        assert cover and all(input_values(get_spec(other)) <= input_values(spec) for other in cover), model_id
    # 300x300 RMSprop binary CNN: covered by c2w1_cats_dogs_cnn at 150x150; rps has its own Dropout and loss; the
    # callback variants by their base models; sign-language (Adam, sparse CCE) by c1w3_fmnist_cnn.
    assert {"c1w4_horse_human_300", "c2w2_horse_human_aug", "c1w2_fmnist_dnn_callback", "c2w4_sign_mnist_cnn"} <= twins
    assert not twins & {"c2w1_cats_dogs_cnn", "c1w4_happy_sad", "c2w4_rps_cnn", "c1w3_fmnist_cnn", "c1w2_fmnist_dnn"}


@pytest.mark.slow
def test_heavy_checks(tmp_path_factory):
    """The slow parts (SLOW_CHECKS, larger twins), held to the same checks as every other model."""
    heavy = _measure(tmp_path_factory, slow=True)
    for test in (test_transfer_is_complete, test_forward_parity_on_random_weights, test_three_lockstep_steps_agree,
                 test_save_and_load_round_trip):
        test(heavy)
