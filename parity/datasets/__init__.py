"""Course data sets as numpy arrays that Keras and Lightning consume unchanged.

`load_dataset(spec)` reads the real data from `data_dir` (one data set's files), else from
$PARITY_DATA_DIR/<id>, else from the download cache (~/.cache/parity/<id>, filled with pooch);
`synthetic=True` gives small generated stand-ins of the same shapes and dtypes. The result holds
index-addressable sources (`parity.datasets.store`), which `parity.jobs.save_data` hands to the
workers as a data directory and `parity.plan.collate` turns into batches. Series models take
`SeriesOptions`: the course's assignment series, or a CSV file's value and time columns.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from parity.catalog import ModelSpec, get_spec
from parity.datasets import inline
from parity.datasets import synthetic as stand_ins
from parity.datasets.bbc import load_bbc
from parity.datasets.csv_series import load_csv_series, load_user_series
from parity.datasets.image_folder import load_image_folders
from parity.datasets.imdb import load_imdb_reviews, load_imdb_subwords
from parity.datasets.sarcasm import load_sarcasm
from parity.datasets.sentiment140 import load_sentiment140_glove
from parity.datasets.series import SeriesOptions, load_series
from parity.datasets.sign_language import load_sign_language
from parity.datasets.split import DataSplit
from parity.datasets.textgen import load_lanigan, load_textgen
from parity.datasets.vision import load_idx_images
from parity.errors import DataError
from parity.spec_types import SeriesData

__all__ = ["DataSplit", "SeriesOptions", "load_dataset", "needs_files", "stand_in_overrides", "supported_datasets"]

# Data sets that live in code (inline arrays, the course's series generator): no files, no download.
_IN_CODE = frozenset({"hello-world", "house-prices", "synthetic-series", "lanigan-lyrics"})

_REAL: dict[str, Callable[[ModelSpec, str | os.PathLike | None], DataSplit]] = {
    "hello-world": lambda spec, _: inline.hello_world(spec),
    "house-prices": lambda spec, _: inline.house_prices(spec),
    "fashion-mnist": load_idx_images,
    "mnist": load_idx_images,
    "sarcasm": load_sarcasm,
    "synthetic-series": lambda spec, _: load_series(spec, None),
    "happy-or-sad": load_image_folders,
    "cats-and-dogs-filtered": load_image_folders,
    "horse-or-human": load_image_folders,
    "kaggle-cats-dogs": load_image_folders,
    "rock-paper-scissors": load_image_folders,
    "sign-language-mnist": load_sign_language,
    "daily-min-temperatures": load_csv_series,
    "sunspots": load_csv_series,
    "bbc-text": load_bbc,
    "irish-lyrics": load_textgen,
    "sonnets": load_textgen,
    "lanigan-lyrics": load_lanigan,
    "sentiment140-glove": load_sentiment140_glove,
    "imdb-reviews": load_imdb_reviews,
    "imdb-subwords": load_imdb_subwords,
}

_SYNTHETIC: dict[str, Callable[[ModelSpec], DataSplit]] = {
    "hello-world": inline.hello_world,
    "house-prices": inline.house_prices,
    "fashion-mnist": stand_ins.images,
    "mnist": stand_ins.images,
    "sarcasm": stand_ins.headlines,
    "synthetic-series": stand_ins.series,
    "happy-or-sad": stand_ins.images,
    "cats-and-dogs-filtered": stand_ins.images,
    "horse-or-human": stand_ins.images,
    "kaggle-cats-dogs": stand_ins.images,
    "rock-paper-scissors": stand_ins.images,
    "sign-language-mnist": stand_ins.sign_language_images,
    "daily-min-temperatures": stand_ins.file_series,
    "sunspots": stand_ins.file_series,
    "bbc-text": stand_ins.news,
    "irish-lyrics": stand_ins.lyrics,
    "sonnets": stand_ins.lyrics,
    "lanigan-lyrics": load_lanigan,
    "sentiment140-glove": stand_ins.tweets,
    "imdb-reviews": stand_ins.reviews,
    "imdb-subwords": stand_ins.reviews,
}
# Data sets whose token ids come from a subword vocabulary that `vocab` (a file, or "course") can replace.
_SUBWORD_DATASETS = frozenset({"imdb-subwords"})


def stand_in_overrides(model_ids: list[str]) -> dict[str, Any]:
    """The sizes that the synthetic stand-in fixes for each of `model_ids` whose spec leaves its vocabulary to the
    data (the next-word models), for `parity.catalog.shaped_by_data`: what `describe` and the tests build."""
    overrides: dict[str, Any] = {}
    for spec in map(get_spec, model_ids):
        if spec.layers is not None and getattr(spec.layers, "vocab_size", 0) is None:
            overrides.update(load_dataset(spec, synthetic=True).spec_overrides(spec.id))
    return overrides


def needs_files(dataset_id: str) -> bool:
    """Whether the real data set is read from files (a data directory or the download cache)."""
    return dataset_id not in _IN_CODE


def supported_datasets() -> frozenset[str]:
    """The dataset ids that have a real loader (and so a synthetic stand-in too)."""
    return frozenset(_REAL)


def load_dataset(
    spec: ModelSpec,
    data_dir: str | os.PathLike | None = None,
    synthetic: bool = False,
    series: SeriesOptions | None = None,
    vocab: str | os.PathLike | None = None,
) -> DataSplit:
    """The training and validation arrays of `spec.dataset`, real or (synthetic=True) a stand-in.

    The inline data sets (hello-world, house-prices, lanigan-lyrics) are tiny, so they are returned as they
    are, with source "real", even when synthetic=True; `data_dir` does not apply to them.
    Series models (`spec.data` a SeriesData) take `series`: for a generated-series model its
    `variant`, or with `data_dir` a user's CSV series (value and time columns from `series`);
    for a CSV data set the value and time columns that replace the spec's. Options that do not
    apply (any option for a non-series model) are a DataError; `SeriesOptions()` is no option.
    `vocab` replaces the learnt subword vocabulary of a subword data set (imdb-subwords): a file of one
    token per line, or "course" for the course's imdb_vocab_subwords.txt; for other data sets a DataError.
    """
    if vocab is not None and spec.dataset not in _SUBWORD_DATASETS:
        raise DataError(f"{spec.id}: --vocab gives the subword vocabulary of {', '.join(sorted(_SUBWORD_DATASETS))}; "
                        f"{spec.dataset} has none, so leave it out")
    loaders = _SYNTHETIC if synthetic else _REAL
    if spec.dataset not in loaders:
        raise DataError(
            f"{spec.id}: the dataset loader is not implemented yet for {spec.dataset!r} "
            f"(implemented: {', '.join(loaders)})"
        )
    options = series or SeriesOptions()
    if not isinstance(spec.data, SeriesData):
        if options != SeriesOptions():
            raise DataError(f"{spec.id} is not a series model ({spec.dataset}): series options (variant, series and "
                            "time columns) apply to the Part 4 series models only; leave them out")
        if vocab is not None:
            return stand_ins.reviews(spec, vocab) if synthetic else load_imdb_subwords(spec, data_dir, vocab)
        return _SYNTHETIC[spec.dataset](spec) if synthetic else _REAL[spec.dataset](spec, data_dir)
    return _load_series(spec, data_dir, synthetic, options)


def _load_series(spec: ModelSpec, data_dir: str | os.PathLike | None, synthetic: bool,
                 options: SeriesOptions) -> DataSplit:
    generated = spec.data.synthetic is not None
    if synthetic and options.columns_given:
        raise DataError(f"{spec.id}: series and time columns name a CSV file's columns, and a synthetic stand-in "
                        "reads no file; leave out the columns, or the synthetic stand-in")
    if not generated and options.variant is not None:
        raise DataError(f"{spec.id}: {spec.dataset} is one CSV series with no variants; leave out the variant "
                        "(it picks the lab or assignment series of the generated-series models)")
    if generated and data_dir is not None and not synthetic:
        if options.variant is not None:
            raise DataError(f"{spec.id}: a data directory holds your own CSV series, and variant {options.variant!r} "
                            "picks a generated one; pass one of the two")
        return load_user_series(spec, data_dir, options)
    if generated:
        if options.columns_given:
            raise DataError(f"{spec.id}: series and time columns read your own CSV series: pass --data-dir with the "
                            "CSV file (or its directory) too")
        return stand_ins.series(spec, options.variant) if synthetic else load_series(spec, options.variant)
    return stand_ins.file_series(spec) if synthetic else load_csv_series(spec, data_dir, options)
