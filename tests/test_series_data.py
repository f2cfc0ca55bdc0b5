"""The course's generated series (lab and assignment variants), the series options, series_of and the shuffle buffer."""

import dataclasses

import numpy as np
import pytest

from parity.catalog import CATALOG, get_spec
from parity.datasets import SeriesOptions, load_dataset
from parity.datasets.series import series_of, synthetic_series
from parity.errors import DataError
from parity.plan import BatchPlan, buffer_shuffle_order, collate, train_plan
from parity.spec_types import ASSIGNMENT, COURSE_FILE, LAB, SeriesData

SERIES_MODELS = [spec for spec in CATALOG.values() if isinstance(spec.data, SeriesData)]
GENERATED_MODELS = [spec for spec in SERIES_MODELS if spec.data.synthetic is not None]


def course_generate_time_series(slope, amplitude, noise_level, seed, pattern):
    """The v2 assignments' generate_time_series(), written as the notebooks write it (float32 time)."""
    time = np.arange(4 * 365 + 1, dtype="float32")
    series = slope * time + 10
    season_time = ((time + 0) % 365) / 365
    series += amplitude * pattern(season_time)
    series += np.random.RandomState(seed).randn(len(time)) * noise_level
    return series


def c4w1_pattern(season_time):
    return np.where(season_time < 0.1, np.cos(season_time * 7 * np.pi), 1 / np.exp(5 * season_time))


def c4w2_c4w3_pattern(season_time):
    return np.where(season_time < 0.1, np.cos(season_time * 6 * np.pi), 2 / np.exp(9 * season_time))


@pytest.mark.parametrize(("model", "expected"), [
    ("c4w1_stat_forecast", course_generate_time_series(0.01, 40, 2, 42, c4w1_pattern)),
    ("c4w3_ts_bilstm", course_generate_time_series(0.005, 50, 3, 51, c4w2_c4w3_pattern)),
])
def test_assignment_series_are_the_notebooks_float32_values(model, expected):
    spec = get_spec(model)
    generated = synthetic_series(spec.data.synthetic[ASSIGNMENT])
    assert generated.dtype == expected.dtype == np.float32 and generated.tobytes() == expected.tobytes()
    split = load_dataset(spec, series=SeriesOptions(variant=ASSIGNMENT))
    assert split.info["series"] == ASSIGNMENT and split.info["split_time"] == 1100 and split.val_size == 361
    series, split_time = series_of(split, spec.data.window_size or 1)
    assert split_time == 1100 and series.tobytes() == expected.tobytes()


def test_each_generated_series_model_has_its_weeks_series():
    weeks = {spec.id: set(spec.data.synthetic) for spec in GENERATED_MODELS}
    assert weeks == {"c4w1_stat_forecast": {LAB, ASSIGNMENT}, "c4w2_ts_linear": {LAB, ASSIGNMENT},
                     "c4w2_ts_dnn": {LAB, ASSIGNMENT}, "c4w3_ts_simplernn": {LAB, ASSIGNMENT},
                     "c4w3_ts_bilstm": {LAB, ASSIGNMENT}, "c4w4_ts_conv_lstm": {LAB}}
    c4w1, c4w2 = get_spec("c4w1_stat_forecast").data.synthetic, get_spec("c4w2_ts_dnn").data.synthetic
    assert c4w1[LAB] == c4w2[LAB] and c4w1[ASSIGNMENT] != c4w2[ASSIGNMENT]
    assert (c4w2[ASSIGNMENT].noise_seed, c4w2[ASSIGNMENT].amplitude, c4w2[ASSIGNMENT].split_time) == (51, 50.0, 1100)


def test_the_default_variant_is_the_lab_series():
    spec = get_spec("c4w3_ts_simplernn")
    default, lab = load_dataset(spec), load_dataset(spec, series=SeriesOptions(variant=LAB))
    assert default.info == lab.info and default.info["series"] == LAB
    assert np.array_equal(default.val.y, lab.val.y) and default.train.x.shape == (980, 20, 1)
    assignment = load_dataset(spec, series=SeriesOptions(variant=ASSIGNMENT))
    assert assignment.train.x.shape == (1080, 20, 1) and not np.array_equal(assignment.train.y[:5], lab.train.y[:5])


def test_the_stand_in_follows_the_chosen_variant_over_fewer_steps():
    spec = get_spec("c4w2_ts_dnn")
    stand_in = load_dataset(spec, synthetic=True, series=SeriesOptions(variant=ASSIGNMENT))
    assert stand_in.source == "synthetic" and stand_in.info["steps"] == 500
    series, _ = series_of(stand_in, 20)
    assert series.tobytes() == synthetic_series(spec.data.synthetic[ASSIGNMENT], 500).tobytes()


@pytest.mark.parametrize(("model", "options", "data_dir", "synthetic", "message"), [
    ("c4w4_ts_conv_lstm", SeriesOptions(variant=ASSIGNMENT), None, False,
     r"c4w4_ts_conv_lstm: the course has no assignment series for this model's week \(week 4\); leave out the variant"),
    ("c4w2_ts_dnn", SeriesOptions(variant="exercise"), None, False, r"no series variant .exercise. \(--series\); pass one of lab, assignment"),
    ("c1w2_fmnist_dnn", SeriesOptions(variant=LAB), None, False, r"c1w2_fmnist_dnn is not a series model"),
    ("c3w2_sarcasm_embed_gap", SeriesOptions(value_column="x"), None, True, r"is not a series model.*leave them out"),
    ("c4w2_ts_dnn", SeriesOptions(value_column="Temp"), None, False, r"pass --data-dir with the CSV file"),
    ("c4w2_ts_dnn", SeriesOptions(time_column=0), None, True, r"a synthetic stand-in reads no file"),
    ("c4w4_sunspots_dnn", SeriesOptions(variant=LAB), None, False, r"sunspots is one CSV series with no variants"),
    ("c4w2_ts_dnn", SeriesOptions(variant=ASSIGNMENT), "somewhere", False, r"pass one of the two"),
])
def test_options_that_do_not_apply_are_data_errors(model, options, data_dir, synthetic, message):
    with pytest.raises(DataError, match=message):
        load_dataset(get_spec(model), data_dir, synthetic=synthetic, series=options)


def test_empty_options_are_no_options():
    spec = get_spec("c1w1_hello_linear")
    assert np.array_equal(load_dataset(spec, series=SeriesOptions()).train.x, load_dataset(spec).train.x)


@pytest.mark.parametrize("spec", SERIES_MODELS, ids=lambda spec: spec.id)
def test_series_of_rebuilds_every_models_stand_in_series(spec):
    split = load_dataset(spec, synthetic=True)
    window = spec.data.window_size or 1
    series, split_time = series_of(split, window)
    assert len(series) == split.info["steps"] == 500 and split_time == split.info["split_time"] == 400
    rows = np.arange(len(split.train))
    x, y = collate(split.train, rows)
    assert np.array_equal(x.reshape(len(rows), window), np.stack([series[i : i + window] for i in rows]))
    assert np.array_equal(y[:, 0], series[window:split_time])
    with pytest.raises(DataError, match="do not continue the training windows"):
        series_of(split.head(len(split.train) - 1, 5), window)
    with pytest.raises(DataError, match=f"not a windowed series split with windows of {window + 1} steps"):
        series_of(split, window + 1)


def test_c4w1_without_a_model_gets_one_step_windows_whose_inputs_are_the_naive_forecast():
    split = load_dataset(get_spec("c4w1_stat_forecast"))
    series, split_time = series_of(split, 1)
    assert (len(series), split_time) == (1461, 1000)
    assert np.array_equal(split.val.x.reshape(-1), series[999:-1])


# --- the shuffle buffer ------------------------------------------------------------------------


def test_buffer_order_is_a_permutation_reaching_at_most_a_buffer_ahead():
    order = buffer_shuffle_order(2970, 1000, np.random.default_rng(3))
    assert sorted(order.tolist()) == list(range(2970))
    # The k-th draw comes from the first k + 1000 samples of the stream: tf.data's shuffle(1000) constraint.
    assert (order - np.arange(2970)).max() <= 999 and (order - np.arange(2970)).max() > 900
    # The first draw is one of the first 1000; a full permutation would reach far beyond.
    assert order[0] < 1000 and np.random.default_rng(3).permutation(2970)[:50].max() > 1000
    assert np.array_equal(buffer_shuffle_order(10, 1, np.random.default_rng(0)), np.arange(10))


def test_buffer_draws_are_uniform_over_the_buffer():
    # Over 2000 epochs the first draw (uniform over samples 0..99) has mean 49.5 with standard error 0.64;
    # the 300th draw comes from the buffer after 299 refills, uniform over a set that also averages ~299.5.
    orders = np.stack([buffer_shuffle_order(400, 100, np.random.default_rng([5, epoch])) for epoch in range(2000)])
    assert abs(orders[:, 0].mean() - 49.5) < 5 * 28.9 / np.sqrt(2000)
    assert np.bincount(orders[:, 0], minlength=100).min() > 0


def test_series_specs_plan_with_their_shuffle_buffer_and_others_permute():
    sunspots = train_plan(get_spec("c4w4_sunspots_dnn"), 2970, seed=7)
    assert (sunspots.shuffle_buffer, sunspots.batch_size) == (1000, 32)
    assert np.array_equal(sunspots.epoch_order(1), buffer_shuffle_order(2970, 1000, np.random.default_rng([7, 1])))
    assert not np.array_equal(sunspots.epoch_order(0), sunspots.epoch_order(1))
    # 980 lab windows fit in the buffer of 1000: tf.data's order is then a uniform permutation, as before.
    lab = train_plan(get_spec("c4w2_ts_dnn"), 980, seed=7)
    assert np.array_equal(lab.epoch_order(0), BatchPlan(980, 32, 7).epoch_order(0))
    images = train_plan(get_spec("c2w1_cats_dogs_cnn"), 2000, seed=7)  # its shuffle_buffer shuffles batches
    assert images.shuffle_buffer is None and images.batch_size == 20
    with pytest.raises(ValueError, match="shuffle_buffer must be positive"):
        dataclasses.replace(sunspots, shuffle_buffer=0)


# --- the catalog's series settings ---------------------------------------------------------------


def test_every_trainable_part4_model_has_the_courses_lr_sweep():
    trainable = [spec for spec in SERIES_MODELS if spec.trainable]
    assert len(trainable) == 8
    for spec in trainable:
        sweep = spec.lr_sweep
        assert (sweep.epochs, sweep.schedule.rate(0), sweep.schedule.rate(20)) == (100, 1e-8, pytest.approx(1e-7)), spec.id
        assert sweep.schedule.rate(99) == pytest.approx(1e-8 * 10 ** (99 / 20)), spec.id


def test_every_series_model_has_baseline_settings_for_each_of_its_series():
    for spec in SERIES_MODELS:
        names = set(spec.data.synthetic) if spec.data.synthetic is not None else {COURSE_FILE}
        assert set(spec.data.baselines) == names, spec.id
        for settings in spec.data.baselines.values():
            assert settings.moving_average_window == (spec.data.window_size or settings.moving_average_window)
    assert get_spec("c4w4_sunspots_dnn").data.baselines[COURSE_FILE].seasonal_period is None
    assert get_spec("c4w4_daily_min_temp").data.baselines[COURSE_FILE].seasonal_period == 365
    with pytest.raises(ValueError, match=r"baselines for \['assignment'\], which this data does not have"):
        dataclasses.replace(get_spec("c4w4_ts_conv_lstm").data, baselines=get_spec("c4w2_ts_dnn").data.baselines)
