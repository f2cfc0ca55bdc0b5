"""`parity generate`: the course's next-word loop in both frameworks, the shared pick, and where texts part.

Unit tests of the pick and the comparison are numpy only. The end-to-end tests use a saved run made here in
seconds (no training): Lanigan's model at a small vocabulary, the Keras model with the forward check's random
weights (tests/keras_textgen_run.py, in its own process), torch's own random initial weights as the Lightning
model; `parity.generate.generate` then runs both workers, and the torch twin holding the Keras weights must
generate the same greedy words. This process imports torch (never TensorFlow) to plant errors into that twin.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cli_helpers import run_cli

from parity import generate, jobs, saved_models
from parity.catalog import shaped_by_data
from parity.errors import ParityError
from parity.predict import SavedRun, open_run
from parity.weights import Assignment, load_keras_layers
from torch_models import build
from torch_models.inside import outputs
from torch_models.weights import apply_plan, transfer_plan

MODEL = "c3w4_lanigan_textgen"
WORDS = ("in the town of athy one jeremy lanigan battered away till he hadnt a pound his father died and made him a "
         "man again left him a farm and ten acres of ground").split()
VOCABULARY = ["", "[UNK]", *dict.fromkeys(WORDS)]  # '' and '[UNK]' first, as TextVectorization's
LENGTH = 8  # max_sequence_len - 1
SIZES = {"layers": {"vocab_size": len(VOCABULARY)}, "input_shape": [LENGTH]}
SEED_TEXT = "jeremy lanigan"  # shorter than LENGTH: the first steps are padded, the later ones truncated
KERAS_SEED = 3  # the random Keras weights; with these every greedy pick clears MIN_MARGIN (asserted below)
# The smallest top-2 margin of the greedy picks must be far above float32 rounding: 100 times the near-tie bound
# (2e-5, twice the forward check's tolerance), so no pick here can go either way between the frameworks.
MIN_MARGIN = 100 * generate.NEAR_TIE
TEXT_RECORD = {"tokenizer": "text_vectorization", "vocabulary": VOCABULARY, "max_length": LENGTH, "padding": "pre",
               "truncating": "pre", "oov_token": "[UNK]", "max_tokens": None,
               "standardize": "lower_and_strip_punctuation", "split": "whitespace"}


# ------------------------------------------------------------------------------------------------ the pick


def test_greedy_picks_the_argmax_and_never_padding_or_unk():
    p = np.array([0.5, 0.3, 0.05, 0.1, 0.05], dtype=np.float32)  # '' and '[UNK]' are the two most likely
    step = generate.pick(p, [0, 1])
    assert step["id"] == 3 and step["probability"] == pytest.approx(0.1)
    assert step["top2"] == [[3, pytest.approx(0.1)], [2, pytest.approx(0.05)]]
    assert step["margin"] == step["gap"] == pytest.approx(0.05)
    assert generate.masked_ids(VOCABULARY) == [0, 1]


def test_sampling_inverts_the_tempered_cumulative_distribution_at_the_draw():
    p = np.array([0.4, 0.1, 0.1, 0.2, 0.2])  # allowed ids 2, 3, 4 with shares 0.2, 0.4, 0.4 at T = 1
    assert [generate.pick(p, [0, 1], 1.0, u)["id"] for u in (0.0, 0.19, 0.21, 0.59, 0.61, 0.999)] == [2, 2, 3, 3, 4, 4]
    assert generate.pick(p, [0, 1], 1.0, 0.5)["gap"] == pytest.approx(0.1)  # 0.5 lies 0.1 inside [0.2, 0.6)
    # T = 0.5 squares the shares: 1 : 4 : 4 -> cumulative 1/9, 5/9, 1; a low temperature is almost greedy.
    assert [generate.pick(p, [0, 1], 0.5, u)["id"] for u in (0.1, 0.12, 0.55, 0.56)] == [2, 3, 3, 4]
    sharp = np.array([0.0, 0.0, 0.1, 0.5, 0.4])
    assert generate.pick(sharp, [0, 1], 0.01, 0.999)["id"] == 3


def test_the_draws_are_the_seeds_and_none_when_greedy():
    assert generate.GenerationRequest("a", 3).uniforms() is None
    drawn = generate.GenerationRequest("a", 3, temperature=0.7, seed=5).uniforms()
    assert drawn == np.random.default_rng(5).random(3).tolist()
    assert generate.GenerationRequest("a", 3, temperature=0.0).greedy


def _generation(ids: list[int], gaps: list[float]) -> dict[str, Any]:
    steps = [{"id": i, "word": f"w{i}", "gap": g, "top2": [[i, 0.5 + g / 2], [9, 0.5 - g / 2]]}
             for i, g in zip(ids, gaps)]
    return {"steps": steps, "words": [s["word"] for s in steps]}


def test_the_comparison_names_the_first_differing_word_and_the_gaps_there():
    a, b = _generation([4, 5, 6, 7], [0.3, 0.01, 1e-6, 0.2]), _generation([4, 5, 8, 7], [0.3, 0.01, 2e-6, 0.2])
    comparison = generate.compare_generations(a, b)
    assert not comparison["identical"] and comparison["shared_words"] == 2
    assert comparison["first_difference"] == {"word": 3, "words": ["w6", "w8"], "top2": [a["steps"][2]["top2"],
                                              b["steps"][2]["top2"]], "gaps": [1e-6, 2e-6]}
    assert comparison["smallest_gap"] == {"word": 2, "gap": 0.01}
    verdict = generate.same_weights_verdict(comparison, generate.NEAR_TIE)
    assert verdict["passed"] and verdict["near_tie"]  # parted at a margin of 1e-6: float32 may pick either
    real = generate.compare_generations(a, _generation([4, 9, 6, 7], [0.3, 0.01, 1e-6, 0.2]))
    assert generate.same_weights_verdict(real, generate.NEAR_TIE) == {"passed": False, "near_tie": False,
                                                                      "tolerance": generate.NEAR_TIE}
    same = generate.compare_generations(a, a)
    assert same["identical"] and same["first_difference"] is None and same["max_top2_prob_diff"] == 0.0


def test_only_next_word_runs_generate_and_a_model_id_means_its_run_under_runs(tmp_path: Path):
    classifier = SavedRun(tmp_path, {"model": "c3w2_sarcasm_embed_gap", "text": TEXT_RECORD}, 0)
    with pytest.raises(ParityError, match="not a next-word model; `parity generate` takes a saved run of one of "
                                          "c3w4_lanigan_textgen, c3w4_irish_lyrics_textgen"):
        generate.text_generation_inputs(classifier)
    no_text = SavedRun(tmp_path, {"model": MODEL, "text": None}, 0)
    with pytest.raises(ParityError, match="holds no text record"):
        generate.text_generation_inputs(no_text)
    assert generate.locate_run(MODEL, tmp_path) == tmp_path / MODEL
    assert generate.locate_run(str(tmp_path)) == tmp_path
    course = generate.default_request(SavedRun(tmp_path, {"model": "c3w4_irish_lyrics_textgen"}, 0), None, 20, None, 0)
    assert (course.seed_text, course.words, course.greedy) == ("help me obi-wan kenobi youre my only hope", 20, True)


# ------------------------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A saved run of MODEL (random weights, see the module docstring), its Keras weight export, and the greedy
    and sampled generation records of `parity.generate.generate` (one worker pool, whose Lightning worker starts
    while the Keras model is made)."""
    root = tmp_path_factory.mktemp("generate")
    run_dir, keras_weights = root / MODEL, root / "keras-layers.npz"
    keras = subprocess.Popen([sys.executable, str(Path(__file__).with_name("keras_textgen_run.py")), str(run_dir),
                              MODEL, json.dumps(SIZES), str(KERAS_SEED), str(keras_weights)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with shaped_by_data({MODEL: SIZES}):
        lightning = build(MODEL)
    saved_models.models_dir(run_dir).mkdir(parents=True, exist_ok=True)
    torch.save(lightning.state_dict(), saved_models.lightning_state_dict_path(run_dir, 0))
    (run_dir / "report.json").write_text(json.dumps({"model": MODEL, "mode": "aligned", "native_differences": []}))
    saved_models.write_inputs(run_dir, {"model": MODEL, "task": "multiclass", "input_shape": [None],
                                        "text": TEXT_RECORD, "spec_overrides": {MODEL: SIZES}})
    greedy = generate.GenerationRequest(SEED_TEXT, 20)
    sampled = generate.GenerationRequest(SEED_TEXT, 20, temperature=1.0, seed=7)
    with jobs.worker_pool(threads=1, quiet=True) as pool:
        pool.run("lightning", {"kind": "describe", "models": []}, root)  # torch starts while Keras makes its model
        assert keras.wait(timeout=120) == 0, keras.stdout.read()
        run = open_run(run_dir)
        records = {"greedy": generate.generate(run, greedy, workers=pool),
                   "sampled": generate.generate(run, sampled, workers=pool)}
    return {"run": run, "keras_weights": keras_weights, **records}


def test_greedy_words_are_identical_with_the_keras_weights(saved_run):
    record = saved_run["greedy"]
    keras = record["generations"][generate.KERAS]
    assert len(keras["words"]) == 20 and keras["text"] == " ".join([SEED_TEXT, *keras["words"]])
    assert len(set(keras["words"])) >= 5  # the context moves the prediction (not one word over and over)
    assert not {"", "[UNK]"} & set(keras["words"]) and record["masked"] == [[0, ""], [1, "[UNK]"]]
    same = record["same_weights"]
    assert same["identical"] and same["passed"] and not same["near_tie"], same
    assert record["generations"][generate.SAME_WEIGHTS]["words"] == keras["words"]
    assert same["smallest_gap"]["gap"] > MIN_MARGIN, same["smallest_gap"]  # no pick was near a tie
    assert same["max_top2_prob_diff"] <= 1e-5  # the forward check's tolerance on probabilities
    # torch's own random weights generate their own text, compared where it parts.
    trained = record["trained"]
    assert not trained["identical"] and trained["first_difference"]["word"] == trained["shared_words"] + 1
    assert generate.render(record).splitlines()[4].endswith(") PASS")


def test_sampling_draws_the_same_uniforms_in_both_frameworks(saved_run):
    record = saved_run["sampled"]
    keras = record["generations"][generate.KERAS]
    assert record["generations"][generate.SAME_WEIGHTS]["words"] == keras["words"]
    assert record["same_weights"]["identical"] and record["same_weights"]["passed"] is None
    assert record["same_weights"]["smallest_gap"]["gap"] > generate.NEAR_TIE
    assert keras["words"] != saved_run["greedy"]["generations"][generate.KERAS]["words"]
    assert (record["sampling_seed"], record["temperature"]) == (7, 1.0)


def _twin_words(saved_run: dict[str, Any], request: dict[str, Any], mutation=None) -> dict[str, Any]:
    """The greedy generation of a torch twin holding the Keras weights (transfer plan after `mutation`)."""
    with shaped_by_data({MODEL: SIZES}):
        twin = build(MODEL).eval()
    plan = transfer_plan(twin, load_keras_layers(saved_run["keras_weights"]))
    if mutation:
        mutation(plan.assignments)
    apply_plan(twin, plan)
    return generate.generate_words(lambda x: outputs(twin, x), request)


def _request(**text: Any) -> dict[str, Any]:
    return generate.job_request(TEXT_RECORD, LENGTH, generate.GenerationRequest(SEED_TEXT, 20)) | (
        {} if not text else {"text": {**TEXT_RECORD, "max_length": LENGTH, "truncating": "pre", **text}})


def keras_bias_in_both_torch_biases(assignments: dict[str, Assignment]) -> None:
    """No LSTM bias handling: the one Keras bias also as torch's b_hh, so it counts twice."""
    assignments["lstm.bias_hh_l0"] = assignments["lstm.bias_ih_l0"]


def input_and_forget_gates_swapped(assignments: dict[str, Assignment]) -> None:
    """Keras' gate blocks [i, f, c, o] taken as [f, i, c, o] in the forward direction."""
    for tensor in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0"):
        i, f, c, o = np.split(assignments[f"lstm.{tensor}"].array, 4, axis=0)
        assignments[f"lstm.{tensor}"] = dataclasses.replace(assignments[f"lstm.{tensor}"],
                                                            array=np.concatenate([f, i, c, o]))


def test_the_in_process_twin_reproduces_the_workers(saved_run):
    """The planted-error tests below start from this twin: unplanted, it generates the workers' words."""
    keras = saved_run["greedy"]["generations"][generate.KERAS]
    assert _twin_words(saved_run, _request())["words"] == keras["words"]


@pytest.mark.parametrize(("planted", "mutation", "text"), [
    ("generation pads 'post'", None, {"padding": "post"}),
    ("generation truncates 'post'", None, {"truncating": "post"}),
    ("LSTM bias counted twice", keras_bias_in_both_torch_biases, {}),
    ("LSTM gates out of order", input_and_forget_gates_swapped, {}),
], ids=lambda value: value if isinstance(value, str) else "")
def test_each_planted_error_changes_the_greedy_words(saved_run, planted, mutation, text):
    keras = saved_run["greedy"]["generations"][generate.KERAS]
    comparison = generate.compare_generations(keras, _twin_words(saved_run, _request(**text), mutation))
    difference = comparison["first_difference"]
    assert difference is not None, f"{planted}: the same words"
    # A real difference: Keras' pick there was clear, not a tie that rounding could flip.
    assert difference["gaps"][0] > MIN_MARGIN, (planted, difference)


@pytest.mark.slow
def test_the_command_prints_both_texts_and_writes_generate_json(saved_run, tmp_path: Path):
    out = tmp_path / "g.json"
    result = run_cli("generate", str(saved_run["run"].run_dir), "--seed-text", SEED_TEXT, "--words", "20",
                     "--out", str(out), "--threads", "1", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    assert record["generations"]["keras"]["words"] == saved_run["greedy"]["generations"]["keras"]["words"]
    lines = result.stdout.splitlines()
    assert lines[1].startswith("keras:") and lines[1].split(None, 1)[1] == record["generations"]["keras"]["text"]
    assert lines[-1] == f"written: {out}"
