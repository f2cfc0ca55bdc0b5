"""The course's synthetic time series (course_models.md 6.0) and its windows."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from parity.catalog import ModelSpec
from parity.datasets.split import DataSplit, make_split
from parity.errors import DataError

SERIES_VARIANTS = ("lab",)


def lab_series(
    steps: int,
    baseline: float,
    slope: float,
    amplitude: float,
    period: int,
    noise_level: float,
    noise_seed: int,
) -> np.ndarray:
    """baseline + trend + seasonality + noise over t = 0..steps-1, float32 as in the labs."""
    time = np.arange(steps, dtype=np.float32)
    season_time = (time % period) / period
    pattern = np.where(season_time < 0.4, np.cos(season_time * 2 * np.pi), 1 / np.exp(3 * season_time))
    series = baseline + slope * time + amplitude * pattern
    # The labs add the float64 noise in place (`series += noise(...)`), so the series stays float32.
    series += np.random.RandomState(noise_seed).randn(steps) * noise_level
    return series


def load_series(spec: ModelSpec) -> DataSplit:
    """The course's series with the spec's length and split (it is the course data, so source "real")."""
    return series_split(spec, "real", spec.data.steps, spec.data.split_time)


def series_split(spec: ModelSpec, source: str, steps: int, split_time: int) -> DataSplit:
    """Windows of the spec's series over `steps`: train from series[:split_time], one validation
    window per later step."""
    data = spec.data
    if data.series not in SERIES_VARIANTS:
        raise DataError(
            f"{spec.id}: series variant {data.series!r} is not implemented yet "
            f"(implemented: {', '.join(SERIES_VARIANTS)})"
        )
    series = lab_series(
        steps, data.baseline, data.slope, data.amplitude, data.period,
        data.noise_level, data.noise_seed,
    )
    train, val = windows(series, split_time, data.window_size)
    generator = {"function": f"{__name__}.lab_series", "steps": steps, "split_time": split_time,
                 "window_size": data.window_size, "baseline": data.baseline, "slope": data.slope,
                 "amplitude": data.amplitude, "period": data.period, "noise_level": data.noise_level,
                 "noise_seed": data.noise_seed}
    return make_split(spec, source, train, val, "generated",
                      {"steps": steps, "split_time": split_time, "generator": generator})


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
