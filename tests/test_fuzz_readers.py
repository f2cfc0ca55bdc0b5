"""Property-based fuzzing (hypothesis) of every data reader and the report/summary readers.

Each reader gets arbitrary bytes, truncations of a valid file and valid files with a few bytes
changed; it must answer with its clean error (DataError; a skipped image with a DataWarning;
summary.load's one-line warning and None; validate_report's jsonschema.ValidationError), never
another exception, and never hang (each example has a deadline). The default run tries
SHORT_EXAMPLES per reader (derandomized, so the suite is deterministic); the slow run
LONG_EXAMPLES per reader with fresh random examples:
    .venv/bin/python -m pytest tests/test_fuzz_readers.py -m slow --hypothesis-show-statistics
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import time
import warnings
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from parity import summary
from parity.catalog import get_spec
from parity.datasets.csv_series import read_series_file
from parity.datasets.decode import DataWarning, decode_one
from parity.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_idx_pair
from parity.datasets.image_folder import load_image_folders
from parity.datasets.sarcasm import read_headlines
from parity.errors import DataError
from parity.report import validate_report
from test_summary import _report as valid_report_document

SHORT_EXAMPLES, LONG_EXAMPLES = 50, 2000
DEADLINE = timedelta(seconds=10)  # per example; the readers take milliseconds, a hang would take forever
# What decode_one may raise for bytes that are no image: parity.datasets.decode skips the file for these.
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
HAPPY = get_spec("c1w4_happy_sad")
TINY_IMAGES = dataclasses.replace(HAPPY, input_shape=(8, 8, 3), data=dataclasses.replace(HAPPY.data, image_size=(8, 8)))


def _file(work: Path, name: str, data: bytes) -> Path:
    path = work / name
    path.write_bytes(data)
    return path


def _idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()


def _image(fmt: str) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("happy/a.png", "happy/b.png", "sad/c.png", "sad/d.png"):
            archive.writestr(name, _image("PNG"))
    return out.getvalue()


IDX_IMAGES = _idx(np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4))
IDX_LABELS = _idx(np.array([0, 1, 2], dtype=np.uint8))
CSV = b"Date,Value\n" + b"".join(b"2020-01-%02d,%d.5\n" % (day, day) for day in range(1, 11))
SARCASM = json.dumps([{"headline": f"headline {n}", "is_sarcastic": n % 2, "article_link": "x"}
                      for n in range(3)]).encode()
IMAGES = {fmt: _image(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP")}
ZIP = _zip()
REPORT = json.dumps(valid_report_document("m", "accuracy", [0.8, 0.82], [0.81, 0.8], (100.0, 90.0))).encode()


def damaged(*valid: bytes) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, a truncation of one of `valid`, one of `valid` with up to 8 bytes changed, or deeply
    nested JSON (an array or object opened up to 50,000 times)."""
    original = st.sampled_from(valid)
    truncated = original.flatmap(lambda data: st.integers(0, len(data)).map(lambda n: data[:n]))
    edits = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8)
    changed = st.tuples(original, edits).map(lambda pair: _edit(*pair))
    nested = st.tuples(st.sampled_from([b"[", b'{"a": ']), st.integers(1, 50_000)).map(lambda case: case[0] * case[1])
    return st.one_of(st.binary(max_size=2048), truncated, changed, nested)


def _edit(data: bytes, edits: list[tuple[float, int]]) -> bytes:
    changed = bytearray(data)
    for where, value in edits:
        changed[int(where * len(changed))] = value
    return bytes(changed)


def json_values() -> st.SearchStrategy:
    """Arbitrary JSON (NaN and infinities too, as Python's json writes them), keys often the report's own."""
    keys = st.sampled_from(["model", "mode", "seeds", "dataset", "frameworks", "comparison", "environment",
                            "keras", "lightning", "runs", "history", "loss", "first_divergence_step"]) | st.text()
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
                        max_leaves=40)


def mutated_report() -> st.SearchStrategy[dict]:
    """The valid report with one value, anywhere in it, replaced by arbitrary JSON (or removed)."""
    document = json.loads(REPORT)
    paths = list(_paths(document))
    return st.tuples(st.sampled_from(paths), json_values(), st.booleans()).map(
        lambda case: _replaced(document, *case))


def _paths(value, prefix=()):
    yield prefix
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


def _replaced(document: dict, path: tuple, value, remove: bool) -> dict:
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copy


# ---------------------------------------------------------------------------- the readers and their clean errors


def check_idx(work: Path, data: bytes) -> None:
    for name, magic in (("images", IMAGES_MAGIC), ("labels", LABELS_MAGIC)):
        for path in (_file(work, f"{name}-idx", data), _file(work, f"{name}-idx.gz", gzip.compress(data, mtime=0)),
                     _file(work, f"raw-{name}-idx.gz", data)):
            try:
                read_idx(path, magic)
            except DataError:
                pass
    try:
        read_idx_pair(_file(work, "pair-images-idx", data), _file(work, "pair-labels-idx", IDX_LABELS), classes=3)
    except DataError:
        pass


def check_csv(work: Path, data: bytes) -> None:
    path = _file(work, "series.csv", data)
    for value_column, time_column in ((None, None), ("Value", "Date"), ("1", None), (-1, 0)):
        try:
            read_series_file(path, value_column, time_column, ())
        except DataError:
            pass


def check_sarcasm(work: Path, data: bytes) -> None:
    try:
        read_headlines(_file(work, "sarcasm.json", data))
    except DataError:
        pass


def check_image(work: Path, data: bytes) -> None:
    for size, mode in (((8, 8), "rgb"), ((6, 5), "grayscale")):
        try:
            pixels = decode_one(data, size, mode)
        except IMAGE_ERRORS:
            continue
        assert pixels.shape == (*size, 3 if mode == "rgb" else 1) and pixels.dtype == np.uint8


def check_image_folder_zip(work: Path, data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # a skipped image is one of the clean outcomes
        try:
            split = load_image_folders(TINY_IMAGES, _file(work, "faces.zip", data))
        except DataError:
            return
    assert split.train.x.shape[1:] == (8, 8, 3)


def check_summary_load(work: Path, data: bytes) -> None:
    for name in ("report.json", "bench.json", "lockstep.json", "other.json"):
        heard = []
        loaded = summary.load(_file(work, name, data), heard.append)
        assert loaded is None or (not heard and loaded[0] in ("run", "bench", "lockstep"))  # None after a warning
        assert len(heard) <= 1 and all("\n" not in line for line in heard)


def check_summary_load_json(work: Path, document) -> None:
    check_summary_load(work, json.dumps(document).encode())


def check_validate_report(work: Path, document) -> None:
    try:
        validate_report(document)
    except jsonschema.ValidationError:
        pass


READERS: dict[str, tuple[Callable[[], st.SearchStrategy], Callable]] = {
    "idx": (lambda: damaged(IDX_IMAGES, IDX_LABELS), check_idx),
    "csv_series": (lambda: damaged(CSV), check_csv),
    "sarcasm_json": (lambda: damaged(SARCASM), check_sarcasm),
    "image_decode": (lambda: damaged(*IMAGES.values()), check_image),
    "image_folder_zip": (lambda: damaged(ZIP), check_image_folder_zip),
    "summary_load_bytes": (lambda: damaged(REPORT), check_summary_load),
    "summary_load_json": (lambda: json_values() | mutated_report(), check_summary_load_json),
    "validate_report": (lambda: json_values() | mutated_report(), check_validate_report),
}


def fuzz(reader: str, examples: int, derandomize: bool, work: Path) -> None:
    """Run `reader`'s check on `examples` generated inputs (files written in `work`); print how many ran and how
    long they took."""
    strategy, check = READERS[reader]
    inputs = []

    @settings(max_examples=examples, deadline=DEADLINE, database=None, derandomize=derandomize,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(strategy())
    def property_holds(data) -> None:
        inputs.append(len(data) if isinstance(data, bytes) else 0)
        check(work, data)

    start = time.perf_counter()
    property_holds()
    print(f"fuzz {reader}: {len(inputs)} examples in {time.perf_counter() - start:.1f} s, no traceback")
    assert len(inputs) >= examples


def test_the_valid_files_are_read(tmp_path):
    """The seeds of the fuzzing are valid: the properties above are not vacuous."""
    assert read_idx(_file(tmp_path, "ok-idx", IDX_IMAGES), IMAGES_MAGIC).shape == (3, 4, 4)
    assert read_series_file(_file(tmp_path, "ok.csv", CSV), "Value", "Date", ()).values.tolist()[:2] == [1.5, 2.5]
    assert read_headlines(_file(tmp_path, "ok.json", SARCASM))[0] == ["headline 0", "headline 1", "headline 2"]
    assert all(decode_one(data, (6, 5), "rgb").shape == (6, 5, 3) for data in IMAGES.values())
    assert len(load_image_folders(TINY_IMAGES, _file(tmp_path, "ok.zip", ZIP)).train) == 4
    assert summary.load(_file(tmp_path, "report.json", REPORT), pytest.fail)[0] == "run"
    validate_report(json.loads(REPORT))


def test_a_csv_whose_first_line_is_blank_is_a_clean_error(tmp_path):
    """Found by this fuzzing: an IndexError naming the value column of an empty header."""
    with pytest.raises(DataError, match=r"series\.csv: blank first line; expected a header row"):
        read_series_file(_file(tmp_path, "series.csv", b"\r\x00"), None, None, ())


def test_json_nested_too_deeply_is_a_clean_error(tmp_path):
    """Found while fuzzing (by hand; the `nested` strategy now covers it): json.loads's RecursionError passed
    through the sarcasm and summary readers."""
    with pytest.raises(DataError, match=r"sarcasm\.json: not a readable JSON file \(maximum recursion depth"):
        read_headlines(_file(tmp_path, "sarcasm.json", b"[" * 100_000))
    heard = []
    assert summary.load(_file(tmp_path, "report.json", b"[" * 100_000), heard.append) is None
    assert len(heard) == 1 and "report.json: unreadable (maximum recursion depth" in heard[0]


@pytest.mark.parametrize("reader", READERS)
def test_damaged_input_gives_a_clean_error(reader, tmp_path):
    fuzz(reader, SHORT_EXAMPLES, derandomize=True, work=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("reader", READERS)
def test_damaged_input_gives_a_clean_error_long_run(reader, tmp_path):
    fuzz(reader, LONG_EXAMPLES, derandomize=False, work=tmp_path)
