"""`parity bench`: the window protocol, the turns, its statistics, the rows and tables, the CLI and its errors."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

from parity import bench, interleave, jobs
from parity.errors import ParityError, WorkerError
from parity.plan import BatchPlan

TESTS = Path(__file__).resolve().parent
ROW_KEYS = {"model", "device", "variant", "batch_size", "scope", "input", "trainer", "frameworks", "throughput_ratio",
            "throughput_ratio_ci95", "trainer_vs_plain", "trainer_vs_plain_cpu", "settings", "environment"}
FRAMEWORK_KEYS = {"samples_per_s", "steps_per_s", "cpu_ms_per_step", "peak_mem_mb", "host_rss_mb", "warmup_s",
                  "windows"}
SETTINGS_KEYS = {"mode", "tf32", "determinism", "threads", "precision", "compile", "data", "load_average",
                 "malloc", "interleaving", "input_pipeline", "ratio_interval"}


def test_summary_is_median_min_max_of_the_windows():
    assert bench.summarize([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0}
    assert bench.summarize([1200.0, 900.0, 1000.0]) == {"median": 1000.0, "min": 900.0, "max": 1200.0}
    with pytest.raises(ValueError):
        bench.summarize([])


def test_rates_divide_samples_and_steps_by_window_seconds():
    per_window = bench.rates([0.5, 0.25, 0.4], [64, 64, 60], steps=2)
    assert per_window["samples_per_s"] == pytest.approx([128.0, 256.0, 150.0])
    assert per_window["steps_per_s"] == pytest.approx([4.0, 8.0, 5.0])
    with pytest.raises(ValueError):
        bench.rates([0.5, 0.0, 0.4], [64, 64, 64], steps=2)


class _FakeTime:
    """perf_counter and process_time that move only when told: each step costs 1 s wall and 0.5 s CPU."""

    def __init__(self):
        self.wall, self.cpu = 100.0, 10.0

    def work(self, wall, cpu):
        self.wall += wall
        self.cpu += cpu


def test_clock_times_the_warmup_and_every_window_and_leaves_the_turns_out(monkeypatch):
    fake = _FakeTime()
    monkeypatch.setattr(bench.time, "perf_counter", lambda: fake.wall)
    monkeypatch.setattr(bench.time, "process_time", lambda: fake.cpu)
    stops = []

    def stop():  # waiting for the other framework's window: 7 s of wall time, a little CPU
        stops.append(fake.wall)
        fake.work(7.0, 0.01)

    clock = bench.Clock(steps=2, windows=3, stop=stop)
    clock.start()
    boundaries = []
    for _ in range(clock.total_steps):
        fake.work(1.0, 0.5)
        boundaries.append(clock.step())
        if boundaries[-1]:
            clock.mark()
    assert clock.total_steps == 8 and boundaries == [False, True] * 4
    assert len(stops) == 5  # before the warm-up, after it, after each of the 3 windows
    assert clock.result() == {"warmup_s": 2.0, "window_s": [2.0, 2.0, 2.0], "window_cpu_s": [1.0, 1.0, 1.0]}
    clock.spans = clock.spans[:-1]
    with pytest.raises(RuntimeError, match="expected 4 closed windows"):
        clock.result()
    with pytest.raises(RuntimeError, match="without an open window"):
        clock.mark()  # the last window is closed: a loop that marks once too often is caught


def test_end_to_end_windows_count_the_short_last_batch_of_an_epoch():
    plan = BatchPlan(100, 32, seed=0)  # batches 32, 32, 32, 4 per epoch
    assert bench.stream_lengths(plan, 8).tolist() == [32, 32, 32, 4, 32, 32, 32, 4]
    assert bench.stream_epochs(plan, 8) == 2 and bench.stream_epochs(plan, 9) == 3
    # warm-up = steps 0-1, then windows of 2 steps: (32 + 4), (32 + 32), (32 + 4)
    assert bench.window_samples("end_to_end", plan, steps=2, windows=3).tolist() == [36, 64, 36]
    assert bench.window_samples("compute", plan, steps=2, windows=3).tolist() == [64, 64, 64]


def test_staged_batches_are_the_plans_first_full_batches():
    plan = bench.bench_plan(100, 32)
    staged = bench.staged_indices(plan)
    assert staged.shape == (3, 32)
    np.testing.assert_array_equal(staged, np.stack(plan.epoch_batches(0)[:3]))
    with pytest.raises(ParityError, match="larger than the 100 training samples"):
        bench.bench_plan(100, 101)


def _measured(model, scope, trainer, window_s, warmup_s=2.0):
    return {"model": model, "variant": "eager", "scope": scope, "input": bench.STAGED, "trainer": trainer,
            "batch_size": 10, "warmup_s": warmup_s, "window_s": window_s,
            "window_cpu_s": [seconds / 2 for seconds in window_s], "gpu_peak_mb": None, "host_rss_mb": 500.0,
            "host_rss_start_mb": 400.0, "load_average": [0.5, 0.6], "settings": {"input": {"pipeline": "staged"}},
            "repeat": 0, "process": 4242, "leaders": ["keras", "lightning", "lightning", "keras"]}


def _answer(framework, seconds):
    """Window seconds per (scope, trainer) -> a worker's answer."""
    measurements = [_measured("c1w2_fmnist_dnn", scope, trainer, window_s)
                    for (scope, trainer), window_s in seconds.items()]
    versions = {"keras": {"tensorflow": "2.21.0", "keras": "3.x"}, "lightning": {"torch": "2.14.1", "lightning": "2.6"},
                "keras-torch": {"keras": "3.x", "torch": "2.14.1", "keras_backend": "torch"}}[framework]
    process = {"tf32": False, "determinism": False, "threads": {"intra_op": 1, "inter_op": 1},
               "cudnn_autotune": True, "cudnn_benchmark": True}
    return {"device": "cpu (x86_64, 1 threads)", "versions": versions, "settings": process,
            "measurements": measurements}


def _context(options):
    """What the parent knows of a bench of c1w2_fmnist_dnn (synthetic, 100 samples, order seed 11)."""
    return {"options": options, "started": "now", "command": "parity bench c1w2_fmnist_dnn", "env": {},
            "order_seed": 11,
            "load_average": {"start": [1.0, 1.0, 1.0], "end": [1.5, 1.0, 1.0]},
            "data": {"c1w2_fmnist_dnn": {"source": "synthetic", "location": "generated", "train_size": 100,
                                         "staged_batches": 3,
                                         "provenance": {"id": "fashion-mnist", "source": "synthetic",
                                                        "location": "generated", "sha256": "0" * 64,
                                                        "hashed": "parameters"}}}}


COMPUTE_CASE = {"model": "c1w2_fmnist_dnn", "variant": "eager", "scope": "compute", "input": bench.STAGED,
                "batch_size": 10}


def test_rows_hold_medians_per_framework_and_the_paired_ratio_with_its_interval():
    options = bench.BenchOptions(scopes=("compute",), steps=2, windows=3, repeats=1)
    keras = _answer("keras", {("compute", "framework"): [0.1, 0.2, 0.4], ("compute", "plain"): [0.1, 0.1, 0.1]})
    lightning = _answer("lightning", {("compute", "framework"): [0.4, 0.4, 0.5],
                                      ("compute", "plain"): [0.2, 0.25, 0.2]})
    context = _context(options)
    framework_row, plain_row = bench.build_rows([COMPUTE_CASE], {"keras": keras, "lightning": lightning}, context)
    assert "ratios" not in framework_row  # the default two frameworks: today's row, its one ratio in throughput_ratio
    # 2 steps x 10 samples per window: keras fit 200, 100, 50 samples/s; lightning Trainer 50, 50, 40
    assert framework_row["frameworks"]["keras"]["samples_per_s"] == {"median": 100.0, "min": 50.0, "max": 200.0}
    assert framework_row["frameworks"]["keras"]["steps_per_s"] == {"median": 10.0, "min": 5.0, "max": 20.0}
    assert framework_row["frameworks"]["lightning"]["samples_per_s"]["median"] == pytest.approx(50.0)
    # Paired windows: lightning/keras 50/200, 50/100, 40/50 -> median 0.5; the bootstrap draws from those three.
    assert framework_row["throughput_ratio"] == pytest.approx(0.5)
    low, high = framework_row["throughput_ratio_ci95"]
    assert 0.25 <= low <= 0.5 <= high <= 0.8
    assert plain_row["throughput_ratio"] == pytest.approx(100.0 / 200.0)  # 100/200, 80/200, 100/200
    assert framework_row["settings"]["interleaving"] == {"unit": "window", "seed": 11,
                                                         "first": [["keras", "lightning", "lightning", "keras"]]}
    assert framework_row["settings"]["ratio_interval"]["pairs"] == 3 and framework_row["input"] == bench.STAGED
    assert framework_row["trainer_vs_plain"] == pytest.approx({"keras": 0.5, "lightning": 0.5})
    # CPU half the wall time per window: keras fit 50 ms per step (median of 25, 50, 100), plain 25 ms
    assert framework_row["frameworks"]["keras"]["cpu_ms_per_step"] == pytest.approx(
        {"median": 50.0, "min": 25.0, "max": 100.0})
    assert framework_row["trainer_vs_plain_cpu"] == pytest.approx({"keras": 0.5, "lightning": 0.5})
    assert framework_row["frameworks"]["keras"]["peak_mem_mb"] == 500.0
    text = bench.render_markdown([framework_row, plain_row])
    assert framework_row["frameworks"]["keras"]["cpu_share"] == 0.5  # CPU half the wall time in every window
    assert (f"| c1w2_fmnist_dnn | cpu | compute | fit / Trainer | eager | 10 | 100 [50-200] | 50 [40-50] | "
            f"0.500 [{low:.3f}, {high:.3f}] | 0.50 / 0.50 |") in text
    assert "| interleaving | Keras and Lightning take turns window by window" in text and "(seed 11;" in text
    assert ("| model | device | scope | trainer | variant | batch | Keras | Lightning | Lightning / Keras [95% CI] | "
            "CPU share (Keras / Lightning) |") in text
    assert "Keras-torch" not in text and "keras-torch" not in bench.row_line(framework_row)


def _bootstrap_median_interval(ratios, resamples=bench.BOOTSTRAP_RESAMPLES, seed=bench.BOOTSTRAP_SEED):
    """The one-repeat percentile bootstrap of the median, written out here as the docstring states it."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(ratios), size=(resamples, len(ratios)))
    medians = np.median(np.asarray(ratios)[draws], axis=1)
    return list(np.percentile(medians, [2.5, 97.5]))


THREE = ("keras", "lightning", "keras-torch")


def test_three_frameworks_give_every_pairs_ratio_and_interval_and_every_frameworks_overhead():
    options = bench.BenchOptions(scopes=("compute",), steps=2, windows=4, repeats=1, frameworks=THREE)
    seconds = {"keras": ([0.10, 0.20, 0.40, 0.25], [0.1, 0.1, 0.1, 0.1]),
               "lightning": ([0.40, 0.40, 0.50, 0.20], [0.2, 0.25, 0.2, 0.2]),
               # planted: keras-torch's windows take exactly twice keras' (a load that hits both alike)
               "keras-torch": ([0.20, 0.40, 0.80, 0.50], [0.4, 0.4, 0.5, 0.4])}
    answers = {fw: _answer(fw, {("compute", "framework"): fit, ("compute", "plain"): plain})
               for fw, (fit, plain) in seconds.items()}
    orders = bench.draw_orders(np.random.default_rng(11), 5, THREE)
    for answer in answers.values():
        for measured in answer["measurements"]:
            measured.update(leaders=[order[0] for order in orders], orders=[list(order) for order in orders])
    framework_row, plain_row = bench.build_rows([COMPUTE_CASE], answers, _context(options))
    assert list(framework_row["frameworks"]) == list(THREE)
    assert list(framework_row["ratios"]) == ["lightning/keras", "keras-torch/keras", "keras-torch/lightning"]
    for row, index in ((framework_row, 0), (plain_row, 1)):
        rates = {fw: 20 / np.asarray(windows[index]) for fw, windows in seconds.items()}  # 2 steps x 10 samples
        for key, entry in row["ratios"].items():
            b, a = key.split("/")
            per_pair = rates[b] / rates[a]
            assert entry["ratio"] == pytest.approx(np.median(per_pair), rel=1e-12)
            assert entry["interval"] == pytest.approx(_bootstrap_median_interval(per_pair), rel=1e-12)
        # throughput_ratio stays lightning / keras
        assert (row["throughput_ratio"], row["throughput_ratio_ci95"]) == (
            row["ratios"]["lightning/keras"]["ratio"], row["ratios"]["lightning/keras"]["interval"])
    # The planted exact halving: every paired ratio 0.5, so the ratio and both ends of its interval are 0.5.
    assert framework_row["ratios"]["keras-torch/keras"]["ratio"] == pytest.approx(0.5)
    assert framework_row["ratios"]["keras-torch/keras"]["interval"] == pytest.approx([0.5, 0.5])
    # Overhead, framework trainer / plain loop, for each framework: median samples/s of fit over plain loop.
    expected = {fw: np.median(20 / np.asarray(fit)) / np.median(20 / np.asarray(plain))
                for fw, (fit, plain) in seconds.items()}
    assert framework_row["trainer_vs_plain"] == pytest.approx(expected)
    # keras-torch by hand: fit 100, 50, 25, 40 samples/s (median 45), plain loop 50, 50, 40, 50 (median 50)
    assert framework_row["trainer_vs_plain"]["keras-torch"] == pytest.approx(0.9)
    assert framework_row["environment"]["versions"]["keras-torch"]["keras_backend"] == "torch"
    assert framework_row["settings"]["compile"]["keras-torch"] == "jit_compile=False (torch eager)"
    assert framework_row["settings"]["interleaving"]["orders"] == [[list(order) for order in orders]]
    text = bench.render_markdown([framework_row, plain_row])
    low, high = framework_row["ratios"]["keras-torch/lightning"]["interval"]
    assert ("| Keras | Lightning | Keras-torch | Lightning / Keras [95% CI] | Keras-torch / Keras [95% CI] | "
            "Keras-torch / Lightning [95% CI] | CPU share (Keras / Lightning / Keras-torch) |") in text
    assert f"0.500 [0.500, 0.500] | {framework_row['ratios']['keras-torch/lightning']['ratio']:.3f} " \
           f"[{low:.3f}, {high:.3f}] | 0.50 / 0.50 / 0.50 |" in text
    assert "Keras-torch fit / torch-backend train_step loop (wall, CPU)" in text
    assert f"{expected['keras-torch']:.3f}, " in text
    line = bench.row_line(framework_row)
    assert "keras-torch/keras 0.500 [0.500, 0.500]" in line
    assert f"keras-torch fit/plain {expected['keras-torch']:.2f}" in line


def test_the_ratio_interval_keeps_pairs_together():
    # Load that swings the two frameworks' windows alike (x0.5 to x2) leaves each pair's ratio at 0.8: resampling
    # whole pairs gives exactly [0.8, 0.8]; resampling the frameworks' windows apart would not.
    load = np.array([1.0, 2.0, 0.5, 1.5, 0.7, 1.2, 1.9, 0.6, 1.1, 0.9])
    keras = 1000 * load
    assert bench.paired_ratio(keras, 0.8 * keras) == pytest.approx(0.8)
    assert bench.ratio_interval(keras, 0.8 * keras) == pytest.approx([0.8, 0.8])
    unpaired = bench.ratio_interval(keras, 0.8 * keras[::-1])  # planted: the pairs broken
    assert unpaired[0] < 0.6 and unpaired[1] > 1.1
    assert bench.ratio_interval(keras, 0.8 * keras, seed=1) == bench.ratio_interval(keras, 0.8 * keras, seed=1)
    with pytest.raises(ValueError, match="paired windows needed"):
        bench.ratio_interval(keras, keras[:-1])


def test_the_95_percent_ratio_interval_covers_the_true_ratio_about_95_times_in_100():
    # 300 simulated benches of 10 paired windows, true ratio 0.8: lognormal window noise (sd 4%) on load shared
    # by each pair that drifts as a random walk (sd 5% per window). Measured coverage 0.933; the band is about
    # three binomial standard errors (1.3% at 0.95) on each side of the nominal 0.95.
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(300):
        load = np.exp(np.cumsum(rng.normal(0, 0.05, 10)))
        keras = 1000 / load * np.exp(rng.normal(0, 0.04, 10))
        lightning = 800 / load * np.exp(rng.normal(0, 0.04, 10))
        low, high = bench.ratio_interval(keras, lightning, resamples=2000)
        covered += low <= 0.8 <= high
    assert 0.91 <= covered / 300 <= 0.99


def _leaders(seed, segments):
    return [order[0] for order in bench.draw_orders(np.random.default_rng(seed), segments)]


def test_leaders_are_balanced_seeded_and_shuffled():
    leaders = _leaders(5, 9)
    assert sorted(leaders.count(fw) for fw in jobs.FRAMEWORKS) == [4, 5]
    assert leaders == _leaders(5, 9)
    orders = {tuple(_leaders(seed, 8)) for seed in range(20)}
    assert len(orders) > 10  # not one fixed alternation


def test_two_frameworks_keep_the_leaders_drawn_before_three_existed():
    # The two-framework draw as it was written before --frameworks: a balanced resize of a random order, shuffled.
    for seed in range(50):
        rng = np.random.default_rng(seed)
        before = [str(name) for name in rng.permutation(np.resize(rng.permutation(jobs.FRAMEWORKS), 7))]
        assert _leaders(seed, 7) == before


@pytest.mark.parametrize("segments", [6, 7, 8])
def test_three_frameworks_take_every_position_equally_often(segments):
    for seed in range(20):
        orders = bench.draw_orders(np.random.default_rng(seed), segments, THREE)
        assert all(sorted(order) == sorted(THREE) for order in orders)
        for position in range(3):
            counts = sorted(sum(order[position] == fw for order in orders) for fw in THREE)
            assert counts[-1] - counts[0] <= 1 and sum(counts) == segments  # balanced up to the segments left over
    shuffled = {tuple(bench.draw_orders(np.random.default_rng(seed), 6, THREE)) for seed in range(20)}
    assert len(shuffled) > 10


def test_frameworks_that_cannot_be_compared_are_refused():
    with pytest.raises(ParityError, match="--frameworks: .*at least two frameworks"):
        bench.check_options(bench.BenchOptions(frameworks=("keras",)))
    with pytest.raises(ParityError, match="unknown framework 'jax'"):
        bench.check_options(bench.BenchOptions(frameworks=("keras", "jax")))


@pytest.fixture
def fake_pair(monkeypatch):
    """Two framework-free workers that take turns (tests/fake_turns_worker.py), as sessions of one pool."""
    for name in ("fake_a", "fake_b"):
        monkeypatch.setitem(jobs.WORKER_MODULES, name, "fake_turns_worker")
    return jobs.worker_pool(quiet=True, env={"PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])})


def test_two_workers_take_turns_one_segment_at_a_time_in_the_drawn_order(tmp_path, fake_pair):
    orders = [("fake_b", "fake_a"), ("fake_a", "fake_b"), ("fake_a", "fake_b"), ("fake_b", "fake_a"),
              ("fake_b", "fake_a"), ("fake_a", "fake_b")]
    job = {"kind": "turns", "segments": len(orders), "seconds": 0.02}
    with interleave.Turns(tmp_path) as turns, fake_pair as pool:
        answers = turns.run_together(lambda name, job: pool.run(name, job, tmp_path), ("fake_a", "fake_b"), job,
                                     orders)
    spans = {name: answers[name]["spans"] for name in ("fake_a", "fake_b")}
    # Every segment of one worker ends before the other's starts, in the order drawn (system-wide monotonic clock).
    timeline = sorted((start, end, name) for name, own in spans.items() for start, end in own)
    assert all(end <= next_start for (_, end, _), (next_start, _, _) in zip(timeline, timeline[1:]))
    assert [name for _, _, name in timeline] == [name for order in orders for name in order]


def test_three_workers_take_turns_one_segment_at_a_time_in_each_drawn_order(tmp_path, monkeypatch):
    for name in ("fake_a", "fake_b", "fake_c"):
        monkeypatch.setitem(jobs.WORKER_MODULES, name, "fake_turns_worker")
    names = ("fake_a", "fake_b", "fake_c")
    orders = bench.draw_orders(np.random.default_rng(2), 6, names)
    job = {"kind": "turns", "segments": len(orders), "seconds": 0.02}
    pool = jobs.worker_pool(quiet=True, env={"PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])})
    with interleave.Turns(tmp_path) as turns, pool as workers:
        answers = turns.run_together(lambda name, job: workers.run(name, job, tmp_path), names, job, orders)
        with pytest.raises(ValueError, match="must name every worker"):
            turns.run_together(lambda name, job: workers.run(name, job, tmp_path), names, job, [names[:2]])
    timeline = sorted((start, end, name) for name in names for start, end in answers[name]["spans"])
    assert all(end <= next_start for (_, end, _), (next_start, _, _) in zip(timeline, timeline[1:]))
    assert [name for _, _, name in timeline] == [name for order in orders for name in order]


def test_a_worker_that_fails_mid_measurement_releases_the_other_and_its_error_is_raised(tmp_path, fake_pair):
    job = {"kind": "turns", "segments": 4, "seconds": 0.0}
    pair = ("fake_a", "fake_b")
    with interleave.Turns(tmp_path) as turns, fake_pair as pool:
        run = lambda name, job: pool.run(name, job, tmp_path)  # noqa: E731
        with pytest.raises(WorkerError, match="the fake_b worker failed .* planted failure in segment 2"):
            turns.run_together(run, pair, {**job, "failing": "fake_b", "fail_at": 2}, [pair] * 4)
        with pytest.raises(WorkerError, match="planted failure before the first turn"):  # fake_b connects and waits
            turns.run_together(run, pair, {**job, "failing": "fake_a", "fail_at": "start"}, [pair] * 4)
        # The other worker was released (its job failed at its next stop) and both serve the next measurement.
        answers = turns.run_together(run, pair, job, [pair[::-1]] * 4)
        assert pool.starts == {"fake_a": 1, "fake_b": 1}
    assert all(len(answers[name]["spans"]) == 4 for name in ("fake_a", "fake_b"))


SINGLE_THREADED_INPUT = """
import json, time
import parity.datasets
from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.plan import BatchPlan
import tf_models.data as data

collated = []
collate = data.collate
data.collate = lambda source, rows: collated.append(len(rows)) or collate(source, rows)
split = load_dataset(get_spec("c1w2_fmnist_dnn"), synthetic=True)
dataset = data.train_dataset(BatchPlan(len(split.train), 32, 0), split.train, 1, parallel=False)
batches = iter(dataset)
counts = []
for _ in range(6):
    next(batches)
    time.sleep(0.05)  # room for any background thread to collate ahead
    counts.append(len(collated))
options = dataset.options().experimental_optimization
print(json.dumps({"counts": counts, "map_parallelization": options.map_parallelization,
                  "inject_prefetch": options.inject_prefetch}))
"""


def test_single_threaded_tf_data_collates_each_batch_when_asked_and_none_ahead():
    # tf.data parallelises a stateless map and injects a prefetch by itself unless told not to: either would
    # collate batches ahead of the consumer (measured with the recommended pipeline: 3 ahead after the first).
    result = subprocess.run([sys.executable, "-c", SINGLE_THREADED_INPUT], capture_output=True, text=True,
                            timeout=300, cwd=TESTS.parent, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    read = json.loads(result.stdout.strip().splitlines()[-1])
    assert read == {"counts": [1, 2, 3, 4, 5, 6], "map_parallelization": False, "inject_prefetch": False}


def test_markdown_replaces_only_the_generated_block(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nProse before.\n\n{bench.MARKDOWN_BEGIN}\nold numbers\n{bench.MARKDOWN_END}\n\n"
                   "Prose after.\n")
    bench.write_markdown([], doc)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nProse before.\n\n") and text.endswith("Prose after.\n")
    assert "old numbers" not in text and "No measurements." in text
    assert [path.name for path in tmp_path.iterdir()] == ["benchmarks.md"]  # no temporary file left


@pytest.mark.parametrize("options, message", [
    (bench.BenchOptions(variants=("eager", "turbo")), "unknown variant 'turbo'"),
    (bench.BenchOptions(windows=2), "at least 3 timed windows"),
    (bench.BenchOptions(variants=("mixed_float16",), device="cpu"), "mixed_float16 needs a GPU"),
    (bench.BenchOptions(mode="loose"), "unknown mode 'loose'"),
    (bench.BenchOptions(inputs=("threaded",)), "unknown input setting 'threaded'"),
])
def test_options_that_cannot_be_measured_are_refused(options, message):
    with pytest.raises(ParityError, match=message):
        bench.check_options(options)


def test_bench_leaves_tf32_and_determinism_to_itself_in_both_modes():
    for mode in ("aligned", "native"):
        alignment = bench.bench_alignment(mode)
        assert not alignment.is_aligned("tf32") and not alignment.is_aligned("determinism")
    assert bench.bench_alignment("aligned").is_aligned("adam_epsilon_placement")


def test_tuned_malloc_adds_fixed_thresholds_to_the_workers_glibc_tunables(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert bench.worker_environment("glibc") == {}
    assert bench.worker_environment("tuned") == {"GLIBC_TUNABLES": bench.MALLOC_TUNABLES}
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert bench.worker_environment("tuned")["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{bench.MALLOC_TUNABLES}"


@pytest.mark.parametrize("args, message", [
    (["--variant", "turbo"], "unknown variant 'turbo'; known variants: eager, compiled"),
    (["--variant", "mixed_float16"], "variant mixed_float16 needs a GPU"),
    (["--windows", "2"], "a median needs at least 3 timed windows"),
    (["--batch-size", "5000"], "--batch-size 5000 is larger than the 1200 training samples"),
])
def test_bench_errors_are_one_line_with_exit_2(args, message):
    result = run_cli("bench", "c1w2_fmnist_dnn", "--synthetic", "--device", "cpu", "--threads", "1", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("parity: error: ") and message in lines[0]


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine may have a GPU")
def test_bench_on_gpu_without_one_names_the_framework():
    result = run_cli("bench", "c1w2_fmnist_dnn", "--synthetic", "--device", "gpu", "--threads", "1", "--json")
    assert result.returncode == 2
    assert "--device gpu: TensorFlow sees no GPU" in result.stderr.strip().splitlines()[-1]
    assert result.stdout == ""


def test_bench_cli_smoke_measures_both_frameworks_on_cpu_taking_turns(tmp_path):
    result = run_cli("bench", "c1w2_fmnist_dnn", "c1w3_fmnist_cnn", "--device", "cpu", "--threads", "1",
                     "--synthetic", "--steps", "2", "--windows", "3", "--repeats", "2", "--order-seed", "3", "--json",
                     "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows == json.loads((tmp_path / "bench.json").read_text())
    assert bench.MARKDOWN_BEGIN in (tmp_path / "bench.md").read_text()
    assert [(row["model"], row["scope"], row["input"], row["trainer"]) for row in rows] == [
        (model, scope, setting, trainer) for model in ("c1w2_fmnist_dnn", "c1w3_fmnist_cnn")
        for scope, setting in (("compute", "staged"), ("end_to_end", "single_threaded"),
                               ("end_to_end", "recommended"))
        for trainer in ("framework", "plain")]
    cpus = len(os.sched_getaffinity(0))
    for row in rows:
        pipelines = row["settings"]["input_pipeline"]
        if row["input"] == "single_threaded":
            assert pipelines["lightning"]["num_workers"] == 0 and pipelines["keras"]["map_parallelization"] is False
        if row["input"] == "recommended":
            assert pipelines["lightning"] == {"num_workers": cpus, "pin_memory": False, "persistent_workers": True}
            assert pipelines["keras"]["prefetch"] == "AUTOTUNE"
        turns = row["settings"]["interleaving"]
        # One turn order per repeat (2 here; the default is 3), each over the warm-up and the 3 windows.
        assert turns["seed"] == 3 and len(turns["first"]) == 2
        assert all(len(order) == 4 for order in turns["first"])
        low, high = row["throughput_ratio_ci95"]
        assert 0 < low <= row["throughput_ratio"] <= high
        assert row["settings"]["tf32"]["applicable"] is False
        assert ROW_KEYS <= row.keys() and SETTINGS_KEYS <= row["settings"].keys()
        assert (row["device"], row["variant"], row["batch_size"]) == ("cpu", "eager", 32)
        assert row["settings"]["threads"]["keras"]["intra_op"] == row["settings"]["threads"]["lightning"]["intra_op"] == 1
        assert row["settings"]["data"]["source"] == "synthetic"
        windows = {}
        for framework, entry in row["frameworks"].items():
            assert FRAMEWORK_KEYS <= entry.keys()
            assert len(entry["windows"]) == 3 * 2 and all(value > 0 for value in entry["windows"])
            assert 0 < entry["samples_per_s"]["min"] <= entry["samples_per_s"]["median"] <= entry["samples_per_s"]["max"]
            assert entry["steps_per_s"]["median"] > 0 and entry["warmup_s"] > 0 and entry["host_rss_mb"] > 0
            windows[framework] = entry["windows"]
            # Each repeat ran in a fresh worker process of its framework.
            assert len(set(entry["processes"])) == 2
        assert row["throughput_ratio"] == pytest.approx(np.median(np.divide(windows["lightning"], windows["keras"])))


@pytest.mark.slow
def test_compiled_and_bfloat16_variants_run_both_models_in_one_worker():
    result = run_cli("bench", "c1w2_fmnist_dnn", "c1w3_fmnist_cnn", "--device", "cpu", "--threads", "1",
                     "--synthetic", "--steps", "2", "--windows", "3", "--scope", "compute",
                     "--variant", "compiled", "mixed_bfloat16", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {(row["model"], row["variant"]) for row in rows} == {
        (model, variant) for model in ("c1w2_fmnist_dnn", "c1w3_fmnist_cnn") for variant in ("compiled", "mixed_bfloat16")}
    for row in rows:
        keras, lightning = row["frameworks"]["keras"]["settings"], row["frameworks"]["lightning"]["settings"]
        if row["variant"] == "compiled":
            assert keras["jit_compile"] is True and lightning["torch_compile"] == "dynamic=False"
        else:
            assert keras["dtype_policy"] == "mixed_bfloat16" and lightning["precision"] == "bf16-mixed"
        assert row["frameworks"]["lightning"]["samples_per_s"]["median"] > 0


def test_with_two_repeats_the_ratio_interval_carries_the_variation_between_them():
    # Two repeats whose turns agree within themselves but not with each other (0.60 vs 0.70): a run's
    # persistent state moved the ratio. Resampling pairs inside one repeat gives an interval that excludes
    # the other repeat's ratio; drawing repeats first covers both.
    first, second = [0.60, 0.61, 0.60, 0.61, 0.60], [0.70, 0.71, 0.70, 0.71, 0.70]
    keras = [1.0] * 10
    low, high = bench.ratio_interval(keras, first + second, repeats=2)
    assert low <= 0.605 and high >= 0.70
    within_one = bench.ratio_interval(keras[:5], first, repeats=1)
    assert within_one[1] < 0.70
    with pytest.raises(ValueError, match="do not split into 3 equal repeats"):
        bench.ratio_interval(keras, first + second, repeats=3)


def test_the_bench_defaults_to_three_repeats_so_its_interval_sees_between_repeat_variation():
    assert bench.BenchOptions().repeats == bench.DEFAULT_REPEATS == 3


@pytest.mark.slow
def test_bench_cli_measures_three_frameworks_taking_turns(tmp_path):
    result = run_cli("bench", "c1w2_fmnist_dnn", "--device", "cpu", "--threads", "1", "--synthetic", "--steps", "2",
                     "--windows", "3", "--repeats", "1", "--scope", "compute", "--order-seed", "3", "--json",
                     "--frameworks", "keras-torch,keras,lightning", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["trainer"] for row in rows] == ["framework", "plain"]
    for row in rows:
        assert list(row["frameworks"]) == list(THREE)
        windows = {fw: np.asarray(entry["windows"]) for fw, entry in row["frameworks"].items()}
        for key, entry in row["ratios"].items():
            b, a = key.split("/")
            assert entry["ratio"] == pytest.approx(np.median(windows[b] / windows[a]))
            assert entry["interval"][0] <= entry["ratio"] <= entry["interval"][1]
        (orders,) = row["settings"]["interleaving"]["orders"]
        assert len(orders) == 4 and all(sorted(order) == sorted(THREE) for order in orders)
        assert row["settings"]["interleaving"]["first"] == [[order[0] for order in orders]]
        assert set(row["trainer_vs_plain"]) == set(THREE)
        assert row["environment"]["versions"]["keras-torch"]["keras_backend"] == "torch"
    assert "--frameworks keras,lightning,keras-torch" in rows[0]["settings"]["command"]
    assert "| Keras-torch / Lightning [95% CI] |" in (tmp_path / "bench.md").read_text()
