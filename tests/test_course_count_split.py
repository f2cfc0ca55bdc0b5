"""course_count_split: the course's "first N train, the rest validate" in data of any size."""

import pytest

from parity.datasets.split import CountSplit, course_count_split
from parity.errors import DataError

SARCASM = (20_000, 26_709)  # the course's count and the course file's records
SERIES = (1_000, 1_461)  # the lab series: split_time and steps


@pytest.mark.parametrize("total", [26_709, 26_710, 40_000])
def test_data_as_large_as_the_courses_keeps_the_count(total):
    assert course_count_split(total, *SARCASM, "f.json") == CountSplit(20_000, total)


@pytest.mark.parametrize(
    ("total", "train"),
    [
        (26_708, 19_999),  # 19,999.25
        (20_000, 14_976),  # 14,976.25: the course's count would leave no validation data
        (1_000, 749),  # 748.81
        (4, 3),  # 2.995
        (3, 2),  # 2.246
        (2, 1),  # 1.498
    ],
)
def test_smaller_data_keeps_the_proportion_and_says_so(total, train):
    split = course_count_split(total, *SARCASM, "mine/sarcasm.json")
    assert (split.train, split.total) == (train, total)
    assert split.note == (
        f"mine/sarcasm.json: {total} records, fewer than the course's 26709, so its split (the first 20000 "
        f"train, the rest validate) is kept as a proportion: the first {train} train, the other {total - train} validate"
    )


def test_both_parts_keep_at_least_one_item():
    assert course_count_split(2, 1, 1_000, "f").train == 1  # 0.002 rounds to 0
    assert course_count_split(2, 999, 1_000, "f").train == 1  # 1.998 rounds to 2
    assert course_count_split(500, *SERIES, "series.csv", unit="steps").train == 342  # 342.23


def test_fewer_than_two_items_fail_naming_the_data():
    for total in (0, 1):
        with pytest.raises(DataError, match=rf"mine\.csv: too few steps \({total}\).*at least 2 steps"):
            course_count_split(total, *SERIES, "mine.csv", unit="steps")


def test_a_users_own_longer_series_keeps_the_proportion_not_the_count():
    # 1000 of 1461 lab steps: a user's 14,610-step series trains on the first 10,000, not on 1000 of them.
    split = course_count_split(14_610, *SERIES, "own.csv", unit="steps", proportional=True)
    assert (split.train, split.total) == (10_000, 14_610)
    assert "more than the course's 1461" in split.note
    assert course_count_split(14_610, *SERIES, "Sunspots-longer.csv", unit="steps").train == 1_000
    assert course_count_split(1_461, *SERIES, "own.csv", unit="steps", proportional=True) == CountSplit(1_000, 1_461)
