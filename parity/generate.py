"""`parity generate RUN_DIR_OR_MODEL`: the course's next-word generation with both frameworks' trained models.

The course's loop (C3W4), for each of N words: tokenize the current text with the run's vocabulary,
pad it 'pre' (and truncate 'pre') to max_sequence_len - 1, predict the next word's probabilities,
pick a word id, append the word. The pick is made here, framework-neutrally, from each
framework's float32 probabilities:
- greedy (no temperature, or 0): the argmax, the course's `np.argmax(model.predict(...))`;
- sampled (temperature T > 0): from softmax(log p / T) by inverting its cumulative sum at a uniform
  draw; the draws come from one numpy Generator seeded by `--seed` and are the same for every
  framework (word k uses draw k), so two frameworks' texts part only where their probabilities do.
The ids of '' (padding, 0) and '[UNK]' (1) are never picked: their probability is set to 0 first
(the course would append an empty word or "[UNK]").

Each framework runs the loop in its own worker (the `generate` job: tf_models/generate.py,
torch_models/generate.py) through `generate_words` below, with the Keras trained model, the
Lightning trained model, and a torch twin holding the Keras trained weights ("same weights", as
`parity predict` does). Greedy texts of Keras and the same-weights twin must be identical; where
they part, the first differing word and both frameworks' top-2 margin there tell whether it was
a near-tie (margin within the forward check's tolerance) or a real difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity import jobs, saved_models
from parity.catalog import CATALOG, get_spec, resolve_spec
from parity.compare import FORWARD_TOLERANCE
from parity.errors import ParityError
from parity.predict import SavedRun, open_run
from parity.spec_types import Generation
from parity.text import OOV_TOKEN, PAD_TOKEN

GENERATE_TIMEOUT_S = 600.0  # loading two models and 100 single-sentence predictions take seconds; a hang fails
GENERATE_FILE = "generate.json"
# What each framework's generation is called in the record: the Keras trained model, the Lightning trained model,
# and torch holding the Keras trained weights.
KERAS, LIGHTNING, SAME_WEIGHTS = "keras", "lightning", "lightning_keras_weights"
# A greedy pick is a near-tie when its top-2 margin is within this: with the same weights each framework's
# probabilities agree within the forward check's tolerance, so the margin of two of them within twice that.
NEAR_TIE = 2 * FORWARD_TOLERANCE


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate: `words` words after `seed_text`; greedy when `temperature` is None or 0, else sampled
    with the uniform draws of numpy's default_rng(`seed`)."""

    seed_text: str
    words: int
    temperature: float | None = None
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return not self.temperature

    def uniforms(self) -> list[float] | None:
        """One uniform draw in [0, 1) per word (None when greedy), shared by every framework."""
        return None if self.greedy else np.random.default_rng(self.seed).random(self.words).tolist()


# ---------------------------------------------------------------------------------------------- the loop


def masked_ids(vocabulary: Sequence[str]) -> list[int]:
    """The ids never picked: 0 (padding) and the ids of '' and '[UNK]'."""
    return sorted({0, *(index for index, token in enumerate(vocabulary) if token in (PAD_TOKEN, OOV_TOKEN))})


def pick(probabilities: np.ndarray, masked: Sequence[int], temperature: float | None = None,
         uniform: float | None = None) -> dict[str, Any]:
    """The next word id from one probability vector, and how clear the choice was.

    Returns {"id", "probability" (the model's, of the id), "top2": [[id, p], [id, p]] (the two most likely
    unmasked ids), "margin": p1 - p2, "gap"}: `gap` is how far the choice was from another one, the margin
    when greedy, else the distance of the draw from the nearest end of the chosen id's interval in the
    cumulative tempered distribution.
    """
    p = np.asarray(probabilities, dtype=np.float64).ravel().copy()
    p[list(masked)] = 0.0
    order = np.argsort(-p, kind="stable")
    top2 = [[int(index), float(p[index])] for index in order[:2]]
    margin = top2[0][1] - top2[1][1]
    if not temperature:
        chosen, gap = int(order[0]), margin
    else:
        allowed = np.flatnonzero(p > 0)
        logits = np.log(p[allowed]) / temperature
        tempered = np.exp(logits - logits.max())
        cumulative = np.cumsum(tempered / tempered.sum())
        position = min(int(np.searchsorted(cumulative, uniform, side="right")), len(allowed) - 1)
        low = cumulative[position - 1] if position else 0.0
        chosen, gap = int(allowed[position]), float(min(uniform - low, cumulative[position] - uniform))
    return {"id": chosen, "probability": float(p[chosen]), "top2": top2, "margin": margin, "gap": gap}


def generate_words(predict: Callable[[np.ndarray], np.ndarray], request: Mapping[str, Any]) -> dict[str, Any]:
    """The course's loop with one framework's model (`predict`: a (1, max_length) int32 batch -> (1, V)
    probabilities). `request` is a `generate` job's "request" (`job_request`). Returns {"text", "words", "steps"}:
    the whole text, the generated words, and per word `pick`'s record."""
    text_record = request["text"]
    vocabulary = text_record["vocabulary"]
    masked = masked_ids(vocabulary)
    uniforms = request["uniforms"]
    text, words, steps = request["seed_text"], [], []
    for index in range(request["words"]):
        tokens = saved_models.encode_texts(text_record, [text])
        probabilities = np.asarray(predict(tokens), dtype=np.float32)
        if probabilities.shape != (1, len(vocabulary)):
            raise ValueError(f"the model gives probabilities of shape {probabilities.shape} for one text, the "
                             f"vocabulary has {len(vocabulary)} ids: the saved model does not fit inputs.json")
        step = pick(probabilities[0], masked, request["temperature"], None if uniforms is None else uniforms[index])
        word = vocabulary[step["id"]]
        text = f"{text} {word}"
        words.append(word)
        steps.append({**step, "word": word})
    return {"text": text, "words": words, "steps": steps}


# ---------------------------------------------------------------------------------------------- the harness


def locate_run(given: str, runs_dir: Path = Path("runs")) -> Path:
    """RUN_DIR_OR_MODEL: a run directory as given, or a model id's run under `runs_dir` (`parity run`'s --out)."""
    path = Path(given)
    if path.is_dir() or given not in CATALOG:
        return path
    return runs_dir / given


def course_generation(model_id: str) -> Generation:
    """The course's generation settings of `model_id` (seed text, words); a ParityError for a model that does not
    generate text."""
    generation = get_spec(model_id).generation
    if generation is None:
        generators = ", ".join(other.id for other in CATALOG.values() if other.generation is not None)
        raise ParityError(f"{model_id} is not a next-word model; `parity generate` takes a saved run of one of "
                          f"{generators}")
    return generation


def text_generation_inputs(run: SavedRun) -> tuple[dict[str, Any], int]:
    """The run's text record and the model's input length (max_sequence_len - 1); a ParityError for a run of a
    model that does not generate text, or whose inputs record lacks them."""
    course_generation(run.model_id)
    spec = get_spec(run.model_id)
    if not run.inputs.get("text"):
        raise ParityError(f"{saved_models.inputs_path(run.run_dir)} holds no text record (vocabulary, padding); "
                          f"rerun `parity run {run.model_id} --save` to write it")
    resolved = resolve_spec(spec, (run.inputs.get("spec_overrides") or {}).get(run.model_id))
    (length,) = resolved.input_shape
    if length is None:
        raise ParityError(f"{saved_models.inputs_path(run.run_dir)} does not state the model's input length "
                          f"(spec_overrides); rerun `parity run {run.model_id} --save` to write it")
    return dict(run.inputs["text"]), length


def job_request(text_record: Mapping[str, Any], length: int, request: GenerationRequest) -> dict[str, Any]:
    """A `generate` job's "request": the text record padded and truncated as the course's loop does ('pre' both,
    to `length`), the seed text, the number of words, the temperature and the shared uniform draws."""
    text = {**text_record, "max_length": length, "padding": "pre", "truncating": "pre"}
    return {"text": text, "seed_text": request.seed_text, "words": request.words,
            "temperature": request.temperature, "uniforms": request.uniforms()}


def first_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where two generations part: the 1-based word, each one's word, top-2 and gap there (both saw the same text
    up to it); None when every word is the same."""
    for index, (step_a, step_b) in enumerate(zip(a["steps"], b["steps"])):
        if step_a["id"] != step_b["id"]:
            return {"word": index + 1, "words": [step_a["word"], step_b["word"]],
                    "top2": [step_a["top2"], step_b["top2"]], "gaps": [step_a["gap"], step_b["gap"]]}
    return None


def compare_generations(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two frameworks' generations from the same seed text: identical or where they part, the smallest gap of `a`
    over the words they share (how near a tie the closest call was), and the largest difference of their top-2
    probabilities there (the forward computation's share while the texts agree)."""
    difference = first_difference(a, b)
    shared = len(a["steps"]) if difference is None else difference["word"] - 1
    pairs = list(zip(a["steps"][:shared], b["steps"][:shared]))
    top2_diff = max((abs(pa - pb) for step_a, step_b in pairs
                     for (_, pa), (_, pb) in zip(step_a["top2"], step_b["top2"])), default=0.0)
    smallest = min(range(shared), key=lambda k: a["steps"][k]["gap"], default=None)
    return {"identical": difference is None, "first_difference": difference, "shared_words": shared,
            "smallest_gap": None if smallest is None else {"word": smallest + 1, "gap": a["steps"][smallest]["gap"]},
            "max_top2_prob_diff": top2_diff}


def same_weights_verdict(comparison: Mapping[str, Any], tolerance: float) -> dict[str, Any]:
    """Keras against torch with the Keras weights: passed when identical, or when they part at a near-tie (Keras'
    gap there within `tolerance`, so float32 rounding may pick either word); `near_tie` says which."""
    difference = comparison["first_difference"]
    near_tie = difference is not None and difference["gaps"][0] <= tolerance
    return {"passed": difference is None or near_tie, "near_tie": near_tie, "tolerance": tolerance}


def generate(run: SavedRun, request: GenerationRequest, device: str = "cpu", threads: int = 1,
             workers: jobs.WorkerPool | None = None) -> dict[str, Any]:
    """Both frameworks' generations (and torch's with the Keras weights), each in its own worker (of `workers` when
    given); the record that `parity generate` writes as generate.json."""
    text_record, length = text_generation_inputs(run)
    with jobs.worker_pool(device=device, threads=threads, quiet=True, reuse=workers) as workers, \
            jobs.work_directory(".work-generate-") as workdir:
        job = {"kind": "generate", "run_dir": str(run.run_dir.resolve()), "seed": run.seed,
               "keras_weights": str(workdir / "keras-trained.npz"),
               "spec_overrides": run.inputs.get("spec_overrides") or {},
               "request": job_request(text_record, length, request)}
        answers = {framework: workers.run(framework, job, workdir, GENERATE_TIMEOUT_S) for framework in jobs.FRAMEWORKS}
    generations = {KERAS: answers["keras"]["generations"]["trained"],
                   LIGHTNING: answers["lightning"]["generations"]["trained"],
                   SAME_WEIGHTS: answers["lightning"]["generations"]["same_weights"]}
    same = compare_generations(generations[KERAS], generations[SAME_WEIGHTS])
    return {
        "model": run.model_id, "run_dir": str(run.run_dir), "model_seed": run.seed,
        "seed_text": request.seed_text, "words": request.words, "greedy": request.greedy,
        "temperature": request.temperature, "sampling_seed": None if request.greedy else request.seed,
        "input_length": length,
        "masked": [[index, text_record["vocabulary"][index]] for index in masked_ids(text_record["vocabulary"])],
        "generations": generations,
        "same_weights": {**same, **(same_weights_verdict(same, NEAR_TIE)
                                    if request.greedy else {"passed": None})},
        "trained": compare_generations(generations[KERAS], generations[LIGHTNING]),
    }


def _parting(comparison: Mapping[str, Any]) -> str:
    difference = comparison["first_difference"]
    if difference is None:
        closest = comparison["smallest_gap"]
        return "identical" + ("" if closest is None else
                              f" (closest call: word {closest['word']}, gap {closest['gap']:.3g})")
    first, second = difference["words"]
    return (f"differ from word {difference['word']} ({first!r} / {second!r}; Keras' gap there "
            f"{difference['gaps'][0]:.3g}, the other's {difference['gaps'][1]:.3g})")


def render(record: Mapping[str, Any]) -> str:
    """The generated texts and the comparisons, for people."""
    how = "greedy" if record["greedy"] else f"sampled at temperature {record['temperature']:g} " \
                                            f"(seed {record['sampling_seed']})"
    masked = ", ".join(f"{index} {token!r}" for index, token in record["masked"])
    same = record["same_weights"]
    if same["passed"] is None:  # sampled: no verdict
        verdict = ""
    elif same["passed"]:
        verdict = " PASS (parted at a near-tie)" if same["near_tie"] else " PASS"
    else:
        verdict = f" FAIL (Keras' gap there above the near-tie bound {same['tolerance']:.1e})"
    labels = {KERAS: "keras", LIGHTNING: "lightning", SAME_WEIGHTS: "lightning, Keras weights"}
    return "\n".join([
        f"{record['model']} seed {record['model_seed']} ({record['run_dir']}): {record['words']} words, {how}; "
        f"never picked: {masked}",
        *(f"{label + ':':26} {record['generations'][key]['text']}" for key, label in labels.items()),
        f"same weights (keras / lightning, Keras weights): {_parting(same)}{verdict}",
        f"trained models (keras / lightning): {_parting(record['trained'])}",
        "gap: the top-2 probability margin (greedy), or how near the draw fell to the next word's share (sampled)",
    ])


def open_generator_run(given: str, seed: int | None = None, runs_dir: Path = Path("runs")) -> SavedRun:
    """The saved run of RUN_DIR_OR_MODEL (`locate_run`) with `seed`'s models (default: the first saved)."""
    return open_run(locate_run(given, runs_dir), seed)


def default_request(run: SavedRun, seed_text: str | None, words: int | None, temperature: float | None,
                    seed: int) -> GenerationRequest:
    """The request with the course's seed text and word count (the spec's `generation`) where none is given."""
    course = course_generation(run.model_id)
    return GenerationRequest(course.seed_text if seed_text is None else seed_text,
                             course.next_words if words is None else words, temperature, seed)


def output_path(run: SavedRun, out: Path | None) -> Path:
    """Where generate.json goes: `out`, or RUN_DIR/generate.json."""
    return out if out is not None else run.run_dir / GENERATE_FILE
