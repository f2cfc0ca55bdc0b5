"""Provenance of a record (`parity run` report.json, a `parity bench` row, lockstep.json): what was measured, how.

A record's `provenance` holds the data (id, real|synthetic, where it was read, and the sha256
of what was used: the files the loader read, or the parameters that generated it), the epochs
(the course's and the run's), the mode and the differences left native, each worker's device
as it reported it, the threads, the versions, and the forward check's status; a run's record also
names the pretrained weights file it loaded (`weights_provenance`). Two records may
be merged or compared in one row only when their `provenance_key` agrees; `describe_provenance`
says it in one line for tables. Records written before provenance existed are keyed "legacy-..."
from what they do say, so they never merge with a record that carries provenance.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.align import Alignment
from parity.jobs import FRAMEWORKS, in_display_order  # FRAMEWORKS: the default pair; a record may hold keras-torch too

if TYPE_CHECKING:
    from parity.datasets import DataSplit

FORMAT = 1
VERSION_KEYS = ("python", "tensorflow", "keras", "torch", "lightning")
LISTED_FILES = 16  # data read from more files than this lists only their count, bytes and combined sha256
KEY_CHARS = 12
LEGACY = "legacy-"
CHUNK_BYTES = 1 << 20

# What must agree for two records to be merged or compared in one row (dotted paths into `provenance`).
# Not in the key: seeds, timestamps, wall times, the data's location (the sha256 stands for its
# content) and the forward check's largest difference (it varies with the seed).
SETTING_FIELDS = (
    "data.id", "data.source", "data.sha256",
    "mode", "native_differences",
    "device.keras", "device.lightning", "threads",
    *(f"versions.{name}" for name in VERSION_KEYS),
)
# Key fields hashed only when set: records without pretrained weights, or without keras-torch (and those written
# before the fields existed) keep the key they had; a record with keras-torch never merges with one without it.
OPTIONAL_KEY_FIELDS = ("weights.sha256", "device.keras-torch")
KEY_FIELDS = (*SETTING_FIELDS, "epochs.course", "epochs.run", "learning_rate", "forward_check.status",
              *OPTIONAL_KEY_FIELDS)


# ---------------------------------------------------------------------------- data


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes; computed once per (path, size, modification time) in this process."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _file_digest(str(resolved), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def parameters_sha256(parameters: Mapping[str, Any]) -> str:
    """The sha256 of generating parameters, written as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def combined_sha256(digests: Sequence[str]) -> str:
    """One file's sha256 itself; for several, the sha256 of their hex digests, one per line, in the loader's order."""
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(f"{digest}\n" for digest in digests).encode("ascii")).hexdigest()


def data_provenance(split: DataSplit) -> dict[str, Any]:
    """The data part of a provenance: id, source, location (absolute for files) and the sha256 of the data used.

    Files: the loader lists the files it read in `split.info["files"]`; each is hashed (once per
    path, size and modification time) and the digests combined (`combined_sha256`). Data made in
    code: the loader gives its generating parameters in `split.info["generator"]`, which are hashed.
    """
    files = split.info.get("files")
    generator = split.info.get("generator")
    data: dict[str, Any] = {"id": split.dataset_id, "source": split.source, "location": split.location}
    if files:
        digests = [file_sha256(path) for path in files]
        sizes = [Path(path).stat().st_size for path in files]
        data.update(location=str(Path(split.location).resolve()), sha256=combined_sha256(digests), hashed="files",
                    file_count=len(files), bytes=sum(sizes))
        if len(files) <= LISTED_FILES:
            data["files"] = [{"path": str(Path(path).resolve()), "bytes": size, "sha256": digest}
                             for path, size, digest in zip(files, sizes, digests)]
        return data
    if generator is not None:
        data.update(sha256=parameters_sha256(generator), hashed="parameters", generator=dict(generator))
        return data
    raise ValueError(f"{split.dataset_id}: the loader recorded neither the files it read (info['files']) nor the "
                     "parameters that generated the data (info['generator']); add one of them where the loader in "
                     "parity/datasets builds its DataSplit")


def weights_provenance(path: str | os.PathLike | None) -> dict[str, Any]:
    """The pretrained weights file a run loaded (`parity run --weights PATH`, or the course's file as
    parity.inception resolved it): {"source": "file", path, bytes, sha256, md5}, the md5 being the hash Keras
    publishes for its application weights (parity.inception.NOTOP_MD5 for the course's InceptionV3 file);
    {"source": "random"} for a run whose models start from seeded random weights only."""
    if path is None:
        return {"source": "random"}
    resolved = Path(path).resolve()
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(resolved, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            sha256.update(chunk)
            md5.update(chunk)
    return {"source": "file", "path": str(resolved), "bytes": resolved.stat().st_size, "sha256": sha256.hexdigest(),
            "md5": md5.hexdigest()}


# ---------------------------------------------------------------------------- records


def forward_check_status(rows: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    """passed / failed / not run, with the number of checks and the largest max abs diff."""
    if not rows:
        return {"status": "not run", "checks": 0, "failed": 0, "max_abs_diff": None}
    failed = sum(not row["passed"] for row in rows)
    return {"status": "failed" if failed else "passed", "checks": len(rows), "failed": failed,
            "max_abs_diff": max(float(row["max_abs_diff"]) for row in rows)}


def build_provenance(data: Mapping[str, Any], alignment: Alignment, workers: Mapping[str, Mapping[str, Any]],
                     threads: int, course_epochs: int | None = None, run_epochs: int | None = None,
                     forward_check: Sequence[Mapping[str, Any]] | None = None,
                     learning_rate: float | None = None, weights: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The provenance of one record.

    `data`: from `data_provenance`, computed once per run; `workers`: each framework's worker answer
    (its `device` and `versions` as it reported them), of every framework the record compares (keras and lightning,
    or any two or three of parity.jobs.ALL_FRAMEWORKS; a version two workers report, as keras-torch's keras and torch, is the
    Keras-on-TensorFlow or Lightning worker's when that one ran); `run_epochs` None for records that train by
    steps (bench, lockstep); `forward_check`: the forward check's rows, None when it did not run;
    `learning_rate`: the rate a run was told to use instead of the course's (`--lr`), None otherwise;
    `weights`: a run's `weights_provenance`, None for records that do not load weights files (bench, lockstep).
    """
    present = in_display_order(workers)
    versions = {name: version for framework in ("keras-torch", "keras", "lightning") if framework in workers
                for name, version in workers[framework]["versions"].items()}
    return {
        "format": FORMAT,
        "data": dict(data),
        "epochs": {"course": course_epochs, "run": run_epochs},
        "mode": alignment.mode,
        "native_differences": alignment.to_job(),
        "device": {framework: workers[framework]["device"] for framework in present},
        "threads": threads,
        "versions": {name: versions.get(name) for name in VERSION_KEYS},
        "forward_check": forward_check_status(forward_check),
        "learning_rate": learning_rate,
        **({"weights": dict(weights)} if weights is not None else {}),
    }


def record_provenance(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's `provenance`, or for a record written before it existed, `legacy_provenance(record)`."""
    provenance = record.get("provenance")
    return dict(provenance) if isinstance(provenance, Mapping) else legacy_provenance(record)


def provenance_key(record: Mapping[str, Any], fields: Sequence[str] = KEY_FIELDS) -> str:
    """A short stable hash of exactly the provenance fields that must agree for two records to be merged or
    compared in one row.

    `KEY_FIELDS` (default), for run reports: the data's id, source and sha256; the mode and the differences
    left native; each worker's device as reported and the threads; the python, tensorflow, keras, torch and
    lightning versions; the course's and the run's epochs; a learning rate given instead of the course's
    (absent, as in records written before it existed, means the course's); the forward check's status; the sha256
    of a pretrained weights file (OPTIONAL_KEY_FIELDS: hashed only when the run loaded one). `SETTING_FIELDS`, to
    put a bench row or a lockstep report beside a run: the same without the epochs and the forward check,
    which those records do not have. Seeds, timestamps, wall times, the data's location and the forward
    check's largest difference are left out. A record without provenance gets a "legacy-" key (over what it
    says, its data location included), which never equals the key of a record with provenance.
    """
    provenance = record_provenance(record)
    legacy = bool(provenance.get("legacy"))
    chosen = (*fields, "data.location") if legacy else tuple(fields)
    values = {field: _lookup(provenance, field) for field in chosen}
    values = {field: value for field, value in values.items() if value is not None or field not in OPTIONAL_KEY_FIELDS}
    digest = parameters_sha256(values)[:KEY_CHARS]
    return f"{LEGACY}{digest}" if legacy else digest


def _lookup(provenance: Mapping[str, Any], field: str) -> Any:
    value: Any = provenance
    for part in field.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def describe_provenance(record: Mapping[str, Any]) -> str:
    """One line for tables: 'real fashion-mnist (sha256 3aede38d…), 5 epochs, aligned, cpu 1 thread, tf 2.21.0 /
    torch 2.14.1'; 'legacy (no provenance): ...' for a record written before provenance existed."""
    provenance = record_provenance(record)
    data = provenance.get("data") or {}
    parts = [f"{data.get('source') or 'unknown'} {data.get('id') or 'data'}"]
    if data.get("sha256"):
        what = "parameters sha256" if data.get("hashed") == "parameters" else "sha256"
        parts[0] += f" ({what} {data['sha256'][:8]}…)"
    epochs = provenance.get("epochs") or {}
    if epochs.get("run") is not None:
        course = epochs.get("course")
        plural = "" if epochs["run"] == 1 else "s"
        parts.append(f"{epochs['run']} epoch{plural}" + (f" (course {course})" if course not in (None, epochs["run"]) else ""))
    parts.append(_mode_words(provenance.get("mode"), provenance.get("native_differences") or ()))
    parts.append(_device_words(provenance.get("device") or {}, provenance.get("threads")))
    versions = provenance.get("versions") or {}
    parts.append(f"tf {versions.get('tensorflow') or '?'} / torch {versions.get('torch') or '?'}")
    if provenance.get("learning_rate") is not None:
        parts.append(f"lr {provenance['learning_rate']:g} (not the course's)")
    weights = provenance.get("weights") or {}
    if weights.get("sha256"):
        parts.append(f"weights {Path(weights['path']).name} (sha256 {weights['sha256'][:8]}…)")
    status = (provenance.get("forward_check") or {}).get("status")
    if status == "failed":
        parts.append("forward check FAILED")
    line = ", ".join(parts)
    return f"legacy (no provenance): {line}" if provenance.get("legacy") else line


def _mode_words(mode: str | None, native: Sequence[str]) -> str:
    if mode == "aligned-except":
        return f"aligned except {', '.join(sorted(native))}"
    return mode or "mode unknown"


def _device_words(devices: Mapping[str, str | None], threads: int | None) -> str:
    """'cpu 1 thread', 'gpu (NVIDIA H200)', or each framework's device when they differ."""
    present = in_display_order(devices) or FRAMEWORKS
    described = {devices.get(framework) for framework in present} - {None}
    if len(described) > 1:
        return " / ".join(f"{framework} {devices.get(framework)}" for framework in present)
    device = next(iter(described), None) or "device unknown"
    if device.startswith("cpu"):
        count = "?" if threads is None else threads
        return f"cpu {count} thread{'' if threads == 1 else 's'}"
    return device


# ---------------------------------------------------------------------------- legacy records


def legacy_provenance(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a record written before provenance existed says about it, in the provenance layout, marked legacy.

    Run reports, bench rows and lockstep reports are told apart by their keys; the data's sha256 is unknown.
    """
    environment = _mapping(record.get("environment"))
    settings = _mapping(record.get("settings"))
    if "first_divergence_step" in record:  # lockstep.json
        dataset = _mapping(record.get("dataset"))
        alignment = Alignment.from_job(record.get("native") or ())
        mode, native, location = alignment.mode, alignment.to_job(), None
        devices = _split_devices(environment.get("device"))
        threads, epochs, checks = environment.get("threads"), (None, None), None
    elif "comparison" in record:  # report.json of `parity run`
        dataset = _mapping(record.get("dataset"))
        spec = _mapping(record.get("spec"))
        mode, native, location = record.get("mode"), list(record.get("native_differences") or ()), dataset.get("location")
        devices = _split_devices(environment.get("device"))
        threads, epochs = environment.get("threads"), (spec.get("course_epochs"), spec.get("epochs"))
        checks = _mapping(record.get("comparison")).get("forward_check")
    else:  # a `parity bench` row
        data = _mapping(settings.get("data"))
        dataset = {"id": None, "source": data.get("source")}
        alignment = Alignment.from_mode(settings["mode"]) if settings.get("mode") in ("aligned", "native") else None
        mode = alignment.mode if alignment else settings.get("mode")
        native, location = alignment.to_job() if alignment else [], data.get("location")
        devices = dict(_mapping(environment.get("device_name"))) or _split_devices(record.get("device"))
        threads, epochs, checks = _mapping(settings.get("threads")).get("requested"), (None, None), None
    return {
        "format": None,
        "legacy": True,
        "data": {"id": dataset.get("id"), "source": dataset.get("source"), "location": location, "sha256": None},
        "epochs": {"course": epochs[0], "run": epochs[1]},
        "mode": mode,
        "native_differences": native,
        "device": {framework: devices.get(framework) for framework in FRAMEWORKS},
        "threads": threads,
        "versions": {name: environment.get(name) for name in VERSION_KEYS},
        "forward_check": forward_check_status(checks),
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _split_devices(text: Any) -> dict[str, str | None]:
    """{'keras': ..., 'lightning': ...} from 'keras: cpu (...); lightning: cpu (...)'; the whole text for both otherwise."""
    if not isinstance(text, str):
        return {}
    devices = {}
    for part in text.split(";"):
        name, _, device = part.strip().partition(":")
        if name in FRAMEWORKS:
            devices[name] = device.strip()
    return devices or {framework: text for framework in FRAMEWORKS}
