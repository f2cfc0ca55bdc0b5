"""The course's generated time series (course_models.md 6.0), the options that pick a series, and its windows."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from parity.catalog import ModelSpec
from parity.datasets.split import DataSplit, make_split
from parity.errors import DataError
from parity.spec_types import LAB, SeriesData, SyntheticSeries


@dataclass(frozen=True)
class SeriesOptions:
    """Which series a series model reads.

    `variant`: "lab" (the default) or "assignment", the course's generated series of the model's week.
    `value_column` / `time_column`: a CSV file's columns (header name or 0-based index); for the CSV
    data sets they replace the spec's, for a generated-series model they read a user's own CSV
    series from the data directory.
    """

    variant: str | None = None
    value_column: str | int | None = None
    time_column: str | int | None = None

    @property
    def columns_given(self) -> bool:
        return self.value_column is not None or self.time_column is not None


def synthetic_series(params: SyntheticSeries, steps: int | None = None) -> np.ndarray:
    """baseline + trend + seasonality + noise over t = 0..steps-1 (default params.steps), float32 as in the course."""
    steps = params.steps if steps is None else steps
    pattern = params.pattern
    time = np.arange(steps, dtype=np.float32)
    season_time = (time % params.period) / params.period
    season = np.where(season_time < pattern.switch, np.cos(season_time * pattern.cos_factor * np.pi),
                      pattern.decay_scale / np.exp(pattern.decay_rate * season_time))
    series = params.baseline + params.slope * time + params.amplitude * season
    # The course adds the float64 noise in place (`series += noise(...)`), so the series stays float32.
    series += np.random.RandomState(params.noise_seed).randn(steps) * params.noise_level
    return series


def pick_variant(spec: ModelSpec, variant: str | None) -> tuple[str, SyntheticSeries]:
    """The name and parameters of the generated series `variant` (None: "lab") of `spec`."""
    name = LAB if variant is None else variant
    variants = spec.data.synthetic
    if name not in variants:
        if name == "assignment":
            raise DataError(f"{spec.id}: the course has no assignment series for this model's week (week {spec.week}); "
                            f"leave out the variant (--series) or pass {LAB!r}")
        raise DataError(f"{spec.id}: no series variant {name!r} (--series); pass one of {', '.join(variants)}")
    return name, variants[name]


def load_series(spec: ModelSpec, variant: str | None, source: str = "real", steps: int | None = None,
                split_time: int | None = None) -> DataSplit:
    """Windows of the spec's generated series `variant`, over its own steps and split (or the given ones:
    the stand-ins' shorter series). It is the course's data, so source "real" unless told otherwise."""
    name, params = pick_variant(spec, variant)
    steps = params.steps if steps is None else steps
    split_time = params.split_time if split_time is None else split_time
    window = window_of(spec)
    train, val = windows(synthetic_series(params, steps), split_time, window)
    generator = {"function": f"{__name__}.synthetic_series", "variant": name, "steps": steps,
                 "split_time": split_time, "window_size": window, **asdict(params)}
    return make_split(spec, source, train, val, "generated",
                      {"series": name, "steps": steps, "split_time": split_time, "generator": generator})


def window_of(spec: ModelSpec) -> int:
    """The spec's window size; 1 for a spec without a model (c4w1_stat_forecast: each step is its own window)."""
    data: SeriesData = spec.data
    return 1 if data.window_size is None else data.window_size


def windows(
    series: np.ndarray, split_time: int, window: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(x, y) pairs: x = series[i:i+window], y = series[i+window]; training targets before split_time,
    validation targets at split_time..end (the course's forecast windows)."""
    if not window < split_time < len(series):
        raise DataError(
            f"series of {len(series)} steps split at {split_time} has no windows of {window}: "
            "need window < split_time < steps"
        )
    train = sliding_window_view(series[:split_time], window + 1)
    val = sliding_window_view(series[split_time - window :], window + 1)
    return (train[:, :window], train[:, window]), (val[:, :window], val[:, window])


def series_of(split: DataSplit, window_size: int) -> tuple[np.ndarray, int]:
    """The whole series and its split time, rebuilt from a windowed DataSplit (as `windows` cut it):
    the first training window, then the training targets, then the validation targets.

    A DataSplit whose windows are not those of one series (e.g. a `head` of one) is a DataError.
    """
    first = np.asarray(split.train.x[0]).reshape(-1)
    if split.val is None or len(first) != window_size:
        raise DataError(f"{split.dataset_id}: not a windowed series split with windows of {window_size} steps "
                        f"(training windows of {len(first)}, validation {'absent' if split.val is None else 'present'})")
    series = np.concatenate([first, np.asarray(split.train.y).reshape(-1), np.asarray(split.val.y).reshape(-1)])
    split_time = window_size + len(split.train)
    last_train_window = np.asarray(split.val.x[0]).reshape(-1)
    if not np.array_equal(last_train_window, series[split_time - window_size : split_time]):
        raise DataError(f"{split.dataset_id}: the validation windows do not continue the training windows; "
                        "rebuild the series from a whole split (not a head of one)")
    return series, split_time
