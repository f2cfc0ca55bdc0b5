"""The course's statistical forecasts (C4W1, course_models.md 6.1): what a series network must beat.

Pure numpy, the course's formulas on the course's float32 series, over the validation period
series[split_time:]:
- naive: the previous step, series[split - 1 : -1];
- moving average: mean(series[t - w : t]) for each t, i.e. MA_w(series)[split - w :];
- differencing plus past: the seasonal difference d = series[P:] - series[:-P], its moving average
  MA_dw(d)[split - P - dw :], plus the value one period back, series[split - P : -P];
- differencing plus smoothed past: the same, plus the past smoothed over sw steps around t - P,
  MA_sw(series[split - P - sw // 2 : N - P + sw - sw // 2]) (the lab's [split - 370 : -359] for
  sw = 11; the assignment's [split - 370 : -360] for sw = 10).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets.split import DataSplit
from parity.spec_types import USER_FILE, BaselineSettings

__all__ = ["METHODS", "BaselineResult", "BaselineSettings", "baseline_forecasts", "baseline_settings",
           "moving_average_forecast"]

METHODS = ("naive", "moving_average", "diff_plus_past", "diff_plus_smoothed_past")


@dataclass(frozen=True)
class BaselineResult:
    """One method's forecast of series[split_time:] with its MAE and MSE; or, when `left_out` says why
    (no seasonal period, a series too short), no forecast and no errors."""

    name: str
    forecast: np.ndarray | None
    mae: float | None
    mse: float | None
    left_out: str | None = None


def moving_average_forecast(series: np.ndarray, window: int) -> np.ndarray:
    """The course's `moving_average_forecast`: forecast[t] = series[t : t + window].mean(), t < len - window."""
    return np.array([series[time : time + window].mean() for time in range(len(series) - window)])


def baseline_forecasts(series: np.ndarray, split_time: int, settings: BaselineSettings) -> dict[str, BaselineResult]:
    """Each of METHODS by name (in that order): its forecast of series[split_time:], MAE and MSE, or why it was
    left out (differencing without a seasonal period, or a split too early for a method's windows)."""
    series = np.asarray(series)
    if not 0 < split_time < len(series):
        raise ValueError(f"split_time {split_time} must lie inside the series (1..{len(series) - 1})")
    truth = series[split_time:]
    forecasts: dict[str, np.ndarray | str] = {
        "naive": series[split_time - 1 : -1],
        "moving_average": _moving_average(series, split_time, settings.moving_average_window),
    }
    forecasts.update(_seasonal(series, split_time, settings))
    return {name: _result(name, forecasts[name], truth) for name in METHODS}


def baseline_settings(spec: ModelSpec, split: DataSplit) -> BaselineSettings:
    """The catalog's baseline settings for the series `split` holds (`split.info["series"]`: a generated
    variant, the CSV data set's file, or a user's file); a user's own series gets naive and the moving
    average over the model's window only, as its season is not known."""
    name = split.info.get("series")
    catalog = spec.data.baselines or {}
    if name in catalog:
        return catalog[name]
    if name == USER_FILE and spec.data.window_size is not None:
        return BaselineSettings(moving_average_window=spec.data.window_size)
    raise ValueError(f"{spec.id}: the catalog gives no baseline settings for series {name!r} "
                     f"(it has {', '.join(catalog) or 'none'}); add them to its SeriesData.baselines")


def _moving_average(series: np.ndarray, split_time: int, window: int) -> np.ndarray | str:
    if split_time < window:
        return f"the split ({split_time}) comes before a first window of {window} steps"
    return moving_average_forecast(series, window)[split_time - window :]


def _seasonal(series: np.ndarray, split_time: int, settings: BaselineSettings) -> dict[str, np.ndarray | str]:
    period = settings.seasonal_period
    if period is None:
        reason = "no seasonal period for this series"
        return {"diff_plus_past": reason, "diff_plus_smoothed_past": reason}
    window, smoothing = settings.diff_moving_average_window, settings.smoothing_window
    start = split_time - period - smoothing // 2
    if split_time - period - window < 0 or start < 0 or period < smoothing - smoothing // 2:
        reason = (f"the split ({split_time}) comes before a period ({period}) plus the windows "
                  f"({window}, {smoothing} // 2), or the period is shorter than the smoothing window")
        return {"diff_plus_past": reason, "diff_plus_smoothed_past": reason}
    difference = series[period:] - series[:-period]
    moving_difference = moving_average_forecast(difference, window)[split_time - period - window :]
    stop = len(series) - period + smoothing - smoothing // 2
    smoothed_past = moving_average_forecast(series[start:stop], smoothing)
    return {"diff_plus_past": series[split_time - period : -period] + moving_difference,
            "diff_plus_smoothed_past": smoothed_past + moving_difference}


def _result(name: str, forecast: np.ndarray | str, truth: np.ndarray) -> BaselineResult:
    if isinstance(forecast, str):
        return BaselineResult(name, None, None, None, left_out=forecast)
    error = forecast.astype(np.float64) - truth.astype(np.float64)
    return BaselineResult(name, forecast, float(np.mean(np.abs(error))), float(np.mean(error**2)))
