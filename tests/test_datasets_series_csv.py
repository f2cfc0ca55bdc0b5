"""Daily minimum temperatures: the course's CSV (or a user's own) as windows, split as the course splits it."""

import csv
import re
import dataclasses

import numpy as np
import pytest

from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.datasets.csv_series import read_series
from parity.errors import DataError
from parity.plan import collate

TEMPS = get_spec("c4w4_daily_min_temp")  # window 64, input (64, 1), split_time 2500 of 3650 steps


def write_temperatures(path, values, header=("Date", "Temp"), quote=False):
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream, quoting=csv.QUOTE_ALL if quote else csv.QUOTE_MINIMAL)
        writer.writerow(header)
        for day, value in enumerate(values):
            writer.writerow([f"1981-01-{day:04d}", value])
    return path


def test_course_file_gives_the_course_windows(shared_data):
    split = load_dataset(TEMPS, shared_data / "daily-min-temperatures")
    assert split.location == str(shared_data / "daily-min-temperatures" / "daily-min-temperatures.csv")
    assert dict(split.info) == {"steps": 3650, "split_time": 2500,  # no note: the course's own split
                                "files": [split.location]}
    series = np.loadtxt(shared_data / "daily-min-temperatures" / "daily-min-temperatures.csv", delimiter=",",
                        skiprows=1, usecols=1, dtype=np.float64)
    assert series[:3].tolist() == [20.7, 17.9, 18.8]
    (x_train, y_train), (x_val, y_val) = (collate(s, np.arange(len(s))) for s in (split.train, split.val))
    assert x_train.shape == (2500 - 64, 64, 1) and y_train.shape == (2436, 1) and x_train.dtype == np.float32
    assert x_val.shape == (3650 - 2500, 64, 1) and y_val.dtype == np.float32
    # window i is series[i:i+64] with target series[i+64]; validation forecasts series[2500:]
    assert np.array_equal(x_train[10, :, 0], series[10:74].astype(np.float32))
    assert np.array_equal(y_train[:, 0], series[64:2500].astype(np.float32))
    assert np.array_equal(x_val[0, :, 0], series[2436:2500].astype(np.float32))
    assert np.array_equal(y_val[:, 0], series[2500:].astype(np.float32))


def test_a_users_shorter_file_keeps_the_course_proportion_and_says_so(tmp_path, capsys):
    values = 10 + 5 * np.sin(np.arange(1000) / 58.0)
    write_temperatures(tmp_path / "daily-min-temperatures.csv", np.round(values, 1), quote=True)
    split = load_dataset(TEMPS, tmp_path)
    split_time = 685  # 1000 * 2500 / 3650 = 684.9
    assert split.info["split_time"] == split_time and split.info["steps"] == 1000
    assert (len(split.train), split.val_size) == (split_time - 64, 1000 - split_time)
    note = split.info["split_note"]
    assert "1000 steps, fewer than the course's 3650" in note and f"the first {split_time} train" in note
    assert note in capsys.readouterr().err  # the run prints it too
    np.testing.assert_array_equal(split.val.y[:3, 0], np.round(values, 1)[split_time : split_time + 3].astype(np.float32))


def test_a_file_too_short_for_the_window_is_refused_with_the_length_it_needs(tmp_path):
    write_temperatures(tmp_path / "daily-min-temperatures.csv", np.ones(94))
    with pytest.raises(DataError, match=r"94 steps put the split at step 64, too early for windows of 64 steps.*at least 95"):
        load_dataset(TEMPS, tmp_path)
    write_temperatures(tmp_path / "daily-min-temperatures.csv", np.ones(95))
    assert load_dataset(TEMPS, tmp_path).info["split_time"] == 65


@pytest.mark.parametrize("bad", ["?0.2", "", "nan", "twenty"])
def test_a_value_that_is_not_a_number_names_the_file_and_line(tmp_path, bad):
    path = write_temperatures(tmp_path / "daily-min-temperatures.csv", ["20.7", "17.9", bad, "14.6"])
    with pytest.raises(DataError, match=rf"daily-min-temperatures\.csv, line 4: 'Temp' value '{re.escape(bad)}' is not a number"):
        read_series(path, "Temp")


def test_columns_by_name_or_index_and_a_missing_column(tmp_path):
    path = write_temperatures(tmp_path / "t.csv", ["1.5", "2.5"], header=("Date", " Temp "))
    assert read_series(path, "Temp").tolist() == [1.5, 2.5] and read_series(path, 1).tolist() == [1.5, 2.5]
    assert read_series(path, None).dtype == np.float32
    with pytest.raises(DataError, match=r"t\.csv: no column 'Temperature' in the header \(Date, Temp\)"):
        read_series(path, "Temperature")
    (tmp_path / "short.csv").write_text("Date,Temp\n1981-01-01,20.7\n\n1981-01-02\n")
    with pytest.raises(DataError, match=r"short\.csv, line 4: 1 columns, no column 'Temp'"):
        read_series(tmp_path / "short.csv", "Temp")


def test_offline_without_the_file_names_the_course_url(tmp_path):
    with pytest.raises(DataError) as error:
        load_dataset(TEMPS)
    message = str(error.value)
    assert "daily-min-temperatures.csv" in message
    assert "https://raw.githubusercontent.com/jbrownlee/Datasets/master/" in message and "--data-dir" in message


def test_spec_without_a_trailing_feature_axis_gets_flat_windows(tmp_path):
    write_temperatures(tmp_path / "daily-min-temperatures.csv", np.arange(200) / 10)
    flat = dataclasses.replace(TEMPS, input_shape=(64,), data=dataclasses.replace(TEMPS.data, expand_dims=False))
    assert collate(load_dataset(flat, tmp_path).train, np.arange(2))[0].shape == (2, 64)
