"""CSV series (daily minimum temperatures, sunspots, a user's own): windows split as the course splits them, time checks."""

import csv
import dataclasses
import re
import shutil

import numpy as np
import pytest

from parity.catalog import get_spec
from parity.datasets import SeriesOptions, csv_series, load_dataset, sources
from parity.datasets.csv_series import read_series, read_series_file
from parity.errors import DataError
from parity.plan import collate

TEMPS = get_spec("c4w4_daily_min_temp")  # window 64, input (64, 1), split_time 2500 of 3650 steps


def write_temperatures(path, values, header=("Date", "Temp"), quote=False):
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream, quoting=csv.QUOTE_ALL if quote else csv.QUOTE_MINIMAL)
        writer.writerow(header)
        for day, value in enumerate(values):
            writer.writerow([str(np.datetime64("1981-01-01") + day), value])
    return path


def test_course_file_gives_the_course_windows(shared_data):
    split = load_dataset(TEMPS, shared_data / "daily-min-temperatures")
    assert split.location == str(shared_data / "daily-min-temperatures" / "daily-min-temperatures.csv")
    # No split note (the course's own split); the two days the course's file lacks are accepted and recorded.
    assert dict(split.info) == {"series": "file", "steps": 3650, "split_time": 2500, "files": [split.location],
                                "time": {"column": "Date", "step": "daily", "first": "1981-01-01",
                                         "last": "1990-12-31", "accepted_gaps": ["1984-12-31", "1988-12-31"]}}
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


# --- sunspots ----------------------------------------------------------------------------------

SUNSPOTS = get_spec("c4w4_sunspots_conv_lstm_dnn")  # window 30, input (30, 1), split_time 3000 of 3235 months


def test_sunspots_course_file_has_no_gaps_and_is_split_at_3000(shared_data):
    split = load_dataset(SUNSPOTS, shared_data / "sunspots")
    path = shared_data / "sunspots" / "Sunspots.csv"
    assert split.location == str(path)
    # The course's time is column 0, the row index 0..3234 (see the next test for the dates).
    assert dict(split.info) == {"series": "file", "steps": 3235, "split_time": 3000, "files": [str(path)],
                                "time": {"column": "", "step": "integer", "first": "0", "last": "3234"}}
    series = np.loadtxt(path, delimiter=",", skiprows=1, usecols=2, dtype=np.float64).astype(np.float32)
    (x_train, y_train), (x_val, y_val) = (collate(s, np.arange(len(s))) for s in (split.train, split.val))
    assert x_train.shape == (2970, 30, 1) and x_val.shape == (235, 30, 1)
    assert series[:2].tolist() == [np.float32(96.7), np.float32(104.3)]
    assert np.array_equal(y_train[:, 0], series[30:3000]) and np.array_equal(y_val[:, 0], series[3000:])
    assert np.array_equal(x_val[-1, :, 0], series[-31:-1])


def test_the_date_column_of_sunspots_is_monthly_from_1749_to_2018(shared_data):
    split = load_dataset(SUNSPOTS, shared_data / "sunspots", series=SeriesOptions(time_column="Date"))
    assert split.info["time"] == {"column": "Date", "step": "monthly", "first": "1749-01-31", "last": "2018-07-31"}


def write_sunspots(path, months, values=None):
    """Rows in the course's Sunspots.csv format: index, month-end date, value."""
    values = np.arange(len(months)) % 50 + 0.5 if values is None else values
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["", "Date", "Monthly Mean Total Sunspot Number"])
        for row, (month, value) in enumerate(zip(months, values)):
            last_day = (np.datetime64(month, "M") + 1).astype("datetime64[D]") - 1
            writer.writerow([row, str(last_day), value])
    return path


def test_a_users_monthly_file_with_a_missing_month_names_the_lines_and_the_fix(tmp_path):
    months = [str(np.datetime64("1990-01") + k) for k in range(120) if k != 40]
    path = write_sunspots(tmp_path / "Sunspots.csv", months)
    with pytest.raises(DataError) as error:
        load_dataset(SUNSPOTS, tmp_path, series=SeriesOptions(time_column="Date"))
    message = str(error.value)
    assert message.startswith(f"{path}: time column 'Date' (monthly) is not one row per month in order: "
                              "lines 41-42: 1 missing (1993-05)")
    assert "never filled in: add the missing rows" in message
    # The spec's time column is the index column 0, and its indices have no gap: the rows load as they are.
    assert load_dataset(SUNSPOTS, tmp_path).info["time"]["step"] == "integer"


def test_sunspots_download_is_checked_against_the_course_files_sha256(served, shared_data, monkeypatch, tmp_path):
    root, url = served
    shutil.copy(shared_data / "sunspots" / "Sunspots.csv", root / "Sunspots.csv")
    monkeypatch.delenv("PARITY_OFFLINE")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    moved = dataclasses.replace(sources.SOURCES["sunspots"], mirrors=(url + "gone/", url))
    monkeypatch.setattr(csv_series, "SOURCES", {**sources.SOURCES, "sunspots": moved})
    split = load_dataset(SUNSPOTS)
    assert split.location == str(tmp_path / "cache" / "sunspots" / "Sunspots.csv") and len(split.train) == 2970
    (root / "Sunspots.csv").write_text((root / "Sunspots.csv").read_text().replace("96.7", "96.8"))
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "other-cache"))
    with pytest.raises(DataError, match=r"Sunspots\.csv.*hash"):
        load_dataset(SUNSPOTS)
    assert not (tmp_path / "other-cache" / "sunspots" / "Sunspots.csv").exists()


def test_download_sources_hold_the_specs_urls():
    for model in ("c4w4_sunspots_dnn", "c4w4_sunspots_conv_lstm_dnn", "c4w4_daily_min_temp"):
        spec = get_spec(model)
        source = sources.SOURCES[spec.dataset]
        assert spec.data.urls["data"] == source.urls(source.files[0])[0], model
    assert sources.SOURCES["sunspots"].hashes["Sunspots.csv"].startswith("sha256:0ef4cf03")


def test_a_temperatures_download_without_a_hash_is_checked_for_its_rows_and_dates(served, monkeypatch, tmp_path):
    root, url = served
    monkeypatch.delenv("PARITY_OFFLINE")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    moved = dataclasses.replace(sources.SOURCES["daily-min-temperatures"], mirrors=(url,))
    monkeypatch.setattr(csv_series, "SOURCES", {**sources.SOURCES, "daily-min-temperatures": moved})
    write_temperatures(root / "daily-min-temperatures.csv", np.ones(3000))
    with pytest.raises(DataError, match=r"downloaded file rejected.*3000 steps, the course's file has 3650"):
        load_dataset(TEMPS)
    assert not (tmp_path / "cache" / "daily-min-temperatures" / "daily-min-temperatures.csv").exists()


# --- the time column ---------------------------------------------------------------------------


def write_dated(path, times, header=("Date", "Value")):
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows([time, f"{row % 9}.5"] for row, time in enumerate(times))
    return path


def days(first, count, skip=()):
    return [str(np.datetime64(first) + k) for k in range(count) if k not in skip]


@pytest.mark.parametrize(("times", "expected"), [
    (days("2001-02-26", 8, skip=(3, 4)), "lines 4-5: 2 missing (2001-03-01, 2001-03-02)"),
    (days("2001-01-01", 5)[:3] + days("2001-01-03", 3), "line 5: 2001-01-03 repeats line 4"),
    (days("2001-01-01", 3) + ["2000-12-31"] + days("2001-01-04", 3),
     "line 5: 2000-12-31 comes after 2001-01-03 (line 4)"),
    ([str(k) for k in (0, 1, 2, 7, 8, 9)], "lines 4-5: 4 missing (3, 4, 5 and 1 more)"),
])
def test_time_problems_are_errors_naming_the_lines(tmp_path, times, expected):
    path = write_dated(tmp_path / "s.csv", times)
    with pytest.raises(DataError) as error:
        read_series_file(path, "Value", "Date", ())
    assert expected in str(error.value) and str(path) in str(error.value)


def test_many_time_problems_list_five_and_count_the_rest(tmp_path):
    path = write_dated(tmp_path / "s.csv", days("2001-01-01", 40, skip=range(2, 40, 4)))  # 10 single-day gaps
    with pytest.raises(DataError, match=r"lines 3-4: 1 missing \(2001-01-03\);.*; and 5 more\. Gaps are never filled"):
        read_series_file(path, "Value", "Date", ())


def test_a_time_that_is_not_a_date_names_its_line(tmp_path):
    path = write_dated(tmp_path / "s.csv", days("2001-01-01", 3) + ["2001-02-30"])
    with pytest.raises(DataError, match=r"s\.csv, line 5: time '2001-02-30' in column 'Date' is neither an ISO date"):
        read_series_file(path, "Value", "Date", ())
    path = write_dated(tmp_path / "w.csv", days("2001-01-01", 21)[::7])  # weekly
    with pytest.raises(DataError, match=r"steps are neither daily nor monthly \(most often 7 days apart\)"):
        read_series_file(path, "Value", "Date", ())


def test_only_the_specs_known_gaps_are_accepted(tmp_path, capsys):
    values = np.arange(900) % 20 + 0.5
    dates = days("1984-06-01", 900)
    write_temperatures(tmp_path / "daily-min-temperatures.csv", [])
    for skip, accepted in ((("1984-12-31",), True), (("1984-12-30",), False)):
        kept = [(day, value) for day, value in zip(dates, values) if day not in skip]
        with open(tmp_path / "daily-min-temperatures.csv", "w", newline="") as stream:
            csv.writer(stream).writerows([("Date", "Temp"), *kept])
        if accepted:
            assert load_dataset(TEMPS, tmp_path).info["time"]["accepted_gaps"] == ["1984-12-31"]
            assert "missing 1984-12-31 (known gaps of the course's file" in capsys.readouterr().err
        else:
            with pytest.raises(DataError, match=r"lines 213-214: 1 missing \(1984-12-30\)"):
                load_dataset(TEMPS, tmp_path)


# --- options: other columns, a user's own series ----------------------------------------------


def test_series_and_time_columns_replace_the_specs(tmp_path):
    path = tmp_path / "daily-min-temperatures.csv"
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Day", "Max", "Min"])
        writer.writerows([day, 20 + row % 5, row % 7] for row, day in enumerate(days("1990-01-01", 300)))
    with pytest.raises(DataError, match=r"no column 'Temp' in the header \(Day, Max, Min\)"):
        load_dataset(TEMPS, tmp_path)
    split = load_dataset(TEMPS, tmp_path, series=SeriesOptions(value_column="Min", time_column="Day"))
    assert split.info["time"]["column"] == "Day" and split.val.y[0, 0] == (205 % 7)  # split at 300 * 2500/3650 = 205


DNN = get_spec("c4w2_ts_dnn")  # the lab series: split 1000 of 1461, window 20


def test_a_generated_series_model_reads_a_users_two_column_series(tmp_path, capsys):
    path = write_dated(tmp_path / "mine.csv", days("2010-01-01", 146))
    split = load_dataset(DNN, tmp_path)
    assert split.info["series"] == "user" and split.info["files"] == [str(path)]
    assert split.info["split_time"] == 100  # 146 * 1000 / 1461 = 99.9
    assert "time" not in split.info  # no time column named: the rows are taken as consecutive steps
    assert "146 steps, fewer than the course's 1461" in capsys.readouterr().err
    assert (len(split.train), split.val_size) == (80, 46)
    timed = load_dataset(DNN, path, series=SeriesOptions(time_column="Date"))  # the file itself as data_dir
    assert timed.info["time"]["step"] == "daily" and np.array_equal(timed.val.y, split.val.y)


def test_a_users_wider_series_file_needs_its_column_named(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("when,a,b\n" + "".join(f"{k},{k},{2 * k}\n" for k in range(60)))
    with pytest.raises(DataError, match=r"wide\.csv: 3 columns \(when, a, b\); name the series column: pass "
                                        r"--series-column NAME"):
        load_dataset(DNN, tmp_path)
    split = load_dataset(DNN, tmp_path, series=SeriesOptions(value_column="b", time_column="when"))
    assert split.val.y[0, 0] == 2 * 41 and split.info["time"]["step"] == "integer"  # split 60 * 1000/1461 = 41
    by_index = load_dataset(DNN, tmp_path, series=SeriesOptions(value_column="2"))  # an index as a flag gives it
    assert np.array_equal(by_index.val.y, split.val.y)


def test_a_directory_without_one_csv_file_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"0 \.csv files; it should hold exactly one \.csv file"):
        load_dataset(DNN, tmp_path)
    for name in ("a.csv", "b.csv"):
        write_dated(tmp_path / name, days("2010-01-01", 50))
    with pytest.raises(DataError, match=r"2 \.csv files \(a\.csv, b\.csv\).*pass the CSV file itself"):
        load_dataset(DNN, tmp_path)
