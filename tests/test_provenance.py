"""Provenance: the data hash of what each loader read or generated, the key that decides what may be merged, and
every record (`parity run`, `parity bench`, `parity lockstep`) carrying it; a synthetic and a real run never merge."""

import copy
import gzip
import hashlib
import json
import zipfile
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from cli_helpers import run_cli
from image_helpers import write_image_folders

from parity import provenance
from parity.catalog import CATALOG, get_spec
from parity.datasets import load_dataset, supported_datasets
from parity.datasets import synthetic as stand_ins
from parity.datasets.split import make_split
from parity.provenance import SETTING_FIELDS, describe_provenance, provenance_key
from parity.report import build_report, render_markdown, validate_report

IDX_ORDER = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SHA = "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
CPU = "cpu (x86_64, 1 threads)"


def _write_idx_set(folder: Path, train: int = 320, val: int = 80, seed: int = 0) -> Path:
    """A small IDX set in the Fashion-MNIST file names: ten separable patterns."""
    folder.mkdir(parents=True)
    patterns = np.random.default_rng(seed).integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    for prefix, count in (("train", train), ("t10k", val)):
        labels = (np.arange(count) % 10).astype(np.uint8)
        header = np.array([0, 0, 8, 3], np.uint8).tobytes() + np.array([count, 28, 28], ">u4").tobytes()
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + patterns[labels].tobytes()))
        label_header = np.array([0, 0, 8, 1], np.uint8).tobytes() + np.array([count], ">u4").tobytes()
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(label_header + labels.tobytes()))
    return folder


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _provenance() -> dict:
    return {
        "format": 1,
        "data": {"id": "fashion-mnist", "source": "real", "location": "/data/fashion-mnist", "sha256": SHA,
                 "hashed": "files", "file_count": 4, "bytes": 30_878_645},
        "epochs": {"course": 5, "run": 5},
        "mode": "aligned",
        "native_differences": [],
        "device": {"keras": CPU, "lightning": CPU},
        "threads": 1,
        "versions": {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.12.0", "torch": "2.14.1",
                     "lightning": "2.6.0"},
        "forward_check": {"status": "passed", "checks": 3, "failed": 0, "max_abs_diff": 1.2e-7},
    }


def _record(prov: dict | None = None) -> dict:
    """A run record: what provenance_key reads, plus seeds, timestamps and wall times that it must ignore."""
    runs = [{"seed": seed, "wall_s": 10.0 + seed} for seed in (0, 1, 2)]
    return {"model": "c1w2_fmnist_dnn", "seeds": [0, 1, 2], "created": "2025-01-01T00:00:00+00:00",
            "frameworks": {"keras": {"runs": copy.deepcopy(runs)}, "lightning": {"runs": copy.deepcopy(runs)}},
            "provenance": prov or _provenance()}


def _set(mapping: dict, field: str, value) -> None:
    *parents, last = field.split(".")
    for part in parents:
        mapping = mapping[part]
    mapping[last] = value


def _get(mapping: dict, field: str):
    for part in field.split("."):
        mapping = mapping[part]
    return mapping


def _other(value):
    if isinstance(value, bool) or value is None:
        return "changed"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, list):
        return [*value, "changed"]
    return f"{value}-changed"


# ---------------------------------------------------------------------------- the data hash


def test_files_are_hashed_as_sha256_and_several_combine_in_the_loaders_order(tmp_path):
    folder = _write_idx_set(tmp_path / "own")
    split = load_dataset(get_spec("c1w2_fmnist_dnn"), folder)
    assert list(split.info["files"]) == [str(folder / name) for name in IDX_ORDER]
    data = provenance.data_provenance(split)
    digests = [_sha256(folder / name) for name in IDX_ORDER]
    assert data["files"] == [{"path": str((folder / name).resolve()), "bytes": (folder / name).stat().st_size, "sha256": digest}
                             for name, digest in zip(IDX_ORDER, digests)]
    assert data["sha256"] == hashlib.sha256("".join(f"{d}\n" for d in digests).encode()).hexdigest()
    assert (data["hashed"], data["file_count"], data["source"], data["location"]) == ("files", 4, "real", str(folder.resolve()))
    assert provenance.combined_sha256(digests[::-1]) != data["sha256"]  # the order (train vs t10k) counts
    assert provenance.combined_sha256(digests[:1]) == digests[0]  # one file: its own sha256, as sha256sum prints it


def test_a_changed_file_changes_the_hash_and_an_unchanged_one_is_read_once(tmp_path, monkeypatch):
    folder = _write_idx_set(tmp_path / "own")
    spec = get_spec("c1w2_fmnist_dnn")
    before = provenance.data_provenance(load_dataset(spec, folder))["sha256"]
    opened = []
    monkeypatch.setattr(provenance, "open", lambda path, mode: opened.append(path) or open(path, mode), raising=False)
    assert provenance.data_provenance(load_dataset(spec, folder))["sha256"] == before
    assert opened == []  # same path, size and modification time: the digests come from the cache
    _write_idx_set(tmp_path / "other", seed=1)
    (folder / IDX_ORDER[0]).write_bytes((tmp_path / "other" / IDX_ORDER[0]).read_bytes())
    changed = provenance.data_provenance(load_dataset(spec, folder))
    assert opened == [str(folder / IDX_ORDER[0])]
    assert changed["sha256"] != before and changed["files"][0]["sha256"] == _sha256(folder / IDX_ORDER[0])


def test_generated_data_is_hashed_by_its_generating_parameters(monkeypatch):
    spec = get_spec("c1w2_fmnist_dnn")
    data = provenance.data_provenance(load_dataset(spec, synthetic=True))
    assert (data["source"], data["location"], data["hashed"]) == ("synthetic", "generated", "parameters")
    assert data["generator"]["function"] == "parity.datasets.synthetic.images"
    assert data["sha256"] == provenance.parameters_sha256(data["generator"])
    assert provenance.data_provenance(load_dataset(spec, synthetic=True))["sha256"] == data["sha256"]  # stable
    monkeypatch.setattr(stand_ins, "LABEL_NOISE", 0.2)
    assert provenance.data_provenance(load_dataset(spec, synthetic=True))["sha256"] != data["sha256"]


def test_every_loader_records_its_files_or_its_generating_parameters(tmp_path):
    for dataset in sorted(supported_datasets()):  # every stand-in (and the inline and lab series data)
        spec = next(spec for spec in CATALOG.values() if spec.dataset == dataset and spec.trainable)
        data = provenance.data_provenance(load_dataset(spec, synthetic=True))
        assert data["hashed"] == "parameters" and len(data["sha256"]) == 64, dataset
    sarcasm = tmp_path / "sarcasm.json"
    sarcasm.write_text(json.dumps([{"headline": f"headline number {i}", "is_sarcastic": i % 2} for i in range(40)]))
    csv = tmp_path / "daily-min-temperatures.csv"
    csv.write_text('"Date","Temp"\n' + "".join(f'"{np.datetime64("1981-01-01") + i}",{10 + i % 7}.5\n' for i in range(120)))
    faces = tmp_path / "faces"
    write_image_folders(faces, {"happy": 3, "sad": 2})
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(faces.rglob("*.png")):
            zipped.write(path, path.relative_to(faces).as_posix())
    pictures = [str(faces / "happy" / f"happy-0{i}.png") for i in range(3)] + [str(faces / "sad" / f"sad-0{i}.png")
                                                                               for i in range(2)]
    for model, where, files in (("c3w2_sarcasm_embed_gap", tmp_path, [str(sarcasm)]),
                                ("c4w4_daily_min_temp", tmp_path, [str(csv)]),
                                ("c1w4_happy_sad", faces, pictures),
                                ("c1w4_happy_sad", archive, [str(archive)])):
        split = load_dataset(get_spec(model), where)
        assert list(split.info["files"]) == files, model
        data = provenance.data_provenance(split)
        assert data["sha256"] == provenance.combined_sha256([_sha256(Path(path)) for path in files]), model


def test_a_split_without_files_or_parameters_is_refused_with_the_fix():
    spec = get_spec("c1w1_hello_linear")
    points = (np.arange(3, dtype=np.float32), np.arange(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"neither the files it read \(info\['files'\]\) nor the parameters"):
        provenance.data_provenance(make_split(spec, "real", points, points, "inline"))


# ---------------------------------------------------------------------------- the key


# Written out, not read from KEY_FIELDS: a field dropped from the key must fail its case here.
MUST_MATCH = ("data.id", "data.source", "data.sha256", "epochs.course", "epochs.run", "mode", "native_differences",
              "device.keras", "device.lightning", "threads", "versions.python", "versions.tensorflow", "versions.keras",
              "versions.torch", "versions.lightning", "forward_check.status")


@pytest.mark.parametrize("field", MUST_MATCH)
def test_the_key_changes_when_any_key_field_changes(field):
    changed = _provenance()
    _set(changed, field, _other(_get(changed, field)))
    assert provenance_key(_record(changed)) != provenance_key(_record())


@pytest.mark.parametrize("field, value", [
    ("seeds", [5, 6]), ("created", "2030-06-01T12:00:00+00:00"), ("frameworks", {}),
    ("provenance.data.location", "/elsewhere/fashion-mnist"), ("provenance.forward_check.max_abs_diff", 3e-6),
    ("provenance.forward_check.checks", 5),
])
def test_the_key_ignores_seeds_timestamps_wall_times_location_and_the_largest_forward_diff(field, value):
    record = _record()
    _set(record, field, value)
    assert provenance_key(record) == provenance_key(_record())
    assert len(provenance_key(record)) == provenance.KEY_CHARS and int(provenance_key(record), 16) >= 0


def test_the_setting_key_puts_a_bench_or_lockstep_record_beside_a_run_of_the_same_setting():
    run = _record()
    bench = {"model": "c1w2_fmnist_dnn", "provenance": _provenance()}
    bench["provenance"].update(epochs={"course": 5, "run": None},
                               forward_check=provenance.forward_check_status(None))
    assert provenance_key(bench, SETTING_FIELDS) == provenance_key(run, SETTING_FIELDS)
    assert provenance_key(bench) != provenance_key(run)
    native = copy.deepcopy(bench)
    native["provenance"]["mode"] = "native"
    assert provenance_key(native, SETTING_FIELDS) != provenance_key(run, SETTING_FIELDS)


def test_a_run_with_its_own_learning_rate_is_never_merged_with_a_course_rate_run():
    course = _record()
    own = _record()
    own["provenance"]["learning_rate"] = 2e-6  # `parity run --lr 2e-6`
    assert provenance_key(own) != provenance_key(course)
    assert provenance_key(own, SETTING_FIELDS) == provenance_key(course, SETTING_FIELDS)  # a bench still sits beside it
    assert describe_provenance(own).endswith("lr 2e-06 (not the course's)")
    # A record written before the field existed took the course's rate: it keys like `learning_rate: None`.
    without = copy.deepcopy(course)
    without["provenance"].pop("learning_rate", None)
    course["provenance"]["learning_rate"] = None
    assert provenance_key(without) == provenance_key(course)


def test_records_without_provenance_are_keyed_legacy_and_never_merge_with_new_ones():
    legacy = {"model": "c1w2_fmnist_dnn", "mode": "aligned", "native_differences": [], "seeds": [0],
              "dataset": {"id": "fashion-mnist", "source": "real", "location": "/data/fashion-mnist"},
              "comparison": {"forward_check": [{"passed": True, "max_abs_diff": 1e-7}]},
              "environment": {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.12.0", "torch": "2.14.1",
                              "lightning": "2.6.0", "device": f"keras: {CPU}; lightning: {CPU}", "threads": 1},
              "spec": {"epochs": 5, "course_epochs": 5}}
    key = provenance_key(legacy)
    assert key.startswith("legacy-") and key == provenance_key(copy.deepcopy(legacy))
    read = provenance.legacy_provenance(legacy)
    assert (read["mode"], read["device"], read["threads"], read["epochs"], read["forward_check"]["status"]) == (
        "aligned", {"keras": CPU, "lightning": CPU}, 1, {"course": 5, "run": 5}, "passed")
    # The same facts with provenance (a sha256 added) never share a key with the legacy record.
    assert provenance_key(_record()) != key and provenance_key({**legacy, "provenance": _provenance()}) != key
    moved = copy.deepcopy(legacy)
    moved["dataset"]["location"] = "/other/fashion-mnist"  # no sha256 stands for a legacy record's data
    assert provenance_key(moved) != key
    synthetic = copy.deepcopy(legacy)
    synthetic["dataset"].update(source="synthetic", location="generated")
    assert provenance_key(synthetic) != key
    assert describe_provenance(legacy) == ("legacy (no provenance): real fashion-mnist, 5 epochs, aligned, "
                                           "cpu 1 thread, tf 2.21.0 / torch 2.14.1")


def test_legacy_bench_rows_and_lockstep_reports_are_read_too():
    bench = {"model": "c1w2_fmnist_dnn", "device": "cpu", "variant": "eager", "scope": "end_to_end",
             "trainer": "framework", "batch_size": 32, "frameworks": {},
             "settings": {"mode": "native", "threads": {"requested": 2},
                          "data": {"source": "synthetic", "location": "generated"}},
             "environment": {"tensorflow": "2.21.0", "torch": "2.14.1", "device_name": {"keras": CPU, "lightning": CPU}}}
    read = provenance.legacy_provenance(bench)
    assert (read["mode"], read["threads"], read["data"]["source"], read["device"]["lightning"]) == (
        "native", 2, "synthetic", CPU)
    assert provenance_key(bench, SETTING_FIELDS).startswith("legacy-")
    lockstep = {"model": "c1w2_fmnist_dnn", "first_divergence_step": None, "native": ["adam_epsilon_placement"],
                "dataset": {"id": "fashion-mnist", "source": "real"},
                "environment": {"device": f"keras: {CPU}, tensors on cpu:0; lightning: {CPU}, tensors on cpu",
                                "threads": 1}}
    read = provenance.legacy_provenance(lockstep)
    assert (read["mode"], read["native_differences"], read["device"]["keras"]) == (
        "aligned-except", ["adam_epsilon_placement"], f"{CPU}, tensors on cpu:0")
    assert describe_provenance(lockstep).startswith("legacy (no provenance): real fashion-mnist, aligned except "
                                                    "adam_epsilon_placement")


def test_describe_gives_one_line_for_tables():
    assert describe_provenance(_record()) == ("real fashion-mnist (sha256 3aede38d…), 5 epochs, aligned, cpu 1 thread, "
                                              "tf 2.21.0 / torch 2.14.1")
    generated = _provenance()
    generated["data"].update(source="synthetic", hashed="parameters", sha256="1a2b3c4d" + "0" * 56)
    generated.update(epochs={"course": 5, "run": 1}, mode="aligned-except", native_differences=["tf32", "kernel_init"],
                     device={"keras": "gpu (NVIDIA H200)", "lightning": "gpu (NVIDIA H200)"})
    assert describe_provenance(_record(generated)) == (
        "synthetic fashion-mnist (parameters sha256 1a2b3c4d…), 1 epoch (course 5), aligned except kernel_init, tf32, "
        "gpu (NVIDIA H200), tf 2.21.0 / torch 2.14.1")


def test_forward_check_status_is_passed_failed_or_not_run_with_the_largest_diff():
    assert provenance.forward_check_status(None) == {"status": "not run", "checks": 0, "failed": 0,
                                                     "max_abs_diff": None}
    rows = [{"passed": True, "max_abs_diff": 2e-7}, {"passed": False, "max_abs_diff": 0.3}]
    assert provenance.forward_check_status(rows) == {"status": "failed", "checks": 2, "failed": 1, "max_abs_diff": 0.3}
    assert provenance.forward_check_status(rows[:1])["status"] == "passed"


def test_report_json_and_md_carry_the_provenance_and_the_schema_checks_it():
    from test_report import _results

    results = {**_results(), "provenance": _provenance()}
    report = build_report(results)
    validate_report(report)
    assert report["provenance"] == _provenance()
    text = render_markdown(report)
    assert "## Provenance" in text and f"- {describe_provenance(report)}" in text
    assert f"- Key `{provenance_key(report)}`" in text and f"sha256 `{SHA}` of the files read" in text
    assert "- Forward check: passed (3 checks, largest max abs diff 1.2e-07)" in text
    broken = copy.deepcopy(report)
    broken["provenance"]["data"]["sha256"] = "not a hash"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(broken)
    legacy = build_report(_results())  # a report built without provenance: still valid, keyed legacy
    validate_report(legacy)
    assert "provenance" not in legacy and provenance_key(legacy).startswith("legacy-")
    assert "- Not recorded (written before provenance existed)" in render_markdown(legacy)


# ---------------------------------------------------------------------------- pretrained weights (--weights)


def test_a_weights_file_is_recorded_with_its_path_size_sha256_and_md5(tmp_path):
    weights = tmp_path / "notop.h5"
    weights.write_bytes(b"\x89HDF\r\n" + bytes(range(256)) * 40)
    record = provenance.weights_provenance(weights)
    assert record == {"source": "file", "path": str(weights.resolve()), "bytes": weights.stat().st_size,
                      "sha256": _sha256(weights), "md5": hashlib.md5(weights.read_bytes()).hexdigest()}
    assert provenance.weights_provenance(None) == {"source": "random"}  # no pretrained trunk, no file
    with pytest.raises(FileNotFoundError):
        provenance.weights_provenance(tmp_path / "missing.h5")


def test_runs_on_other_weights_files_never_merge_and_random_weights_keep_the_key_they_had(tmp_path):
    first, second = tmp_path / "a.h5", tmp_path / "b.h5"
    first.write_bytes(b"weights a")
    second.write_bytes(b"weights b")
    keyed = {}
    for name, path in (("a", first), ("b", second), ("random", None)):
        prov = _provenance()
        prov["weights"] = provenance.weights_provenance(path)
        keyed[name] = _record(prov)
    assert provenance_key(keyed["a"]) != provenance_key(keyed["b"])
    assert provenance_key(keyed["a"]) != provenance_key(keyed["random"])
    # Random weights, and records written before the field existed (no "weights"), keep one key.
    assert provenance_key(keyed["random"]) == provenance_key(_record())
    moved = copy.deepcopy(keyed["a"])
    moved["provenance"]["weights"]["path"] = "/elsewhere/a.h5"  # the sha256 stands for the content
    assert provenance_key(moved) == provenance_key(keyed["a"])
    assert provenance_key(keyed["a"], SETTING_FIELDS) == provenance_key(keyed["b"], SETTING_FIELDS)
    assert describe_provenance(keyed["a"]).endswith(f"weights a.h5 (sha256 {_sha256(first)[:8]}…)")
    assert describe_provenance(keyed["random"]) == describe_provenance(_record())


def test_report_json_and_md_carry_the_weights_file_and_the_schema_checks_it(tmp_path):
    from test_report import _results

    weights = tmp_path / "notop.h5"
    weights.write_bytes(b"weights")
    prov = {**_provenance(), "weights": provenance.weights_provenance(weights)}
    report = build_report({**_results(), "provenance": prov})
    validate_report(report)
    assert report["provenance"]["weights"]["sha256"] == _sha256(weights)
    assert (f"- Pretrained weights: `{weights.resolve()}`, 7 bytes, sha256 `{_sha256(weights)}`, md5 "
            f"`{hashlib.md5(b'weights').hexdigest()}`") in render_markdown(report)
    for field, wrong in (("md5", "not an md5"), ("source", "imagenet")):
        broken = copy.deepcopy(report)
        broken["provenance"]["weights"][field] = wrong
        with pytest.raises(jsonschema.ValidationError):
            validate_report(broken)
    random = build_report({**_results(), "provenance": {**_provenance(), "weights": {"source": "random"}}})
    validate_report(random)
    assert "Pretrained weights" not in render_markdown(random)  # report.json says "random"; the text stays as it was


# ---------------------------------------------------------------------------- the commands, end to end


def _run_report(out: Path, model: str) -> dict:
    report = json.loads((out / model / "report.json").read_text())
    validate_report(report)
    return report


@pytest.mark.slow  # two CLI runs (40 s); the key tests above check the same rule in-process
def test_a_synthetic_run_and_a_real_run_of_one_model_are_never_merged(tmp_path):
    folder = _write_idx_set(tmp_path / "own")
    model = "c1w2_fmnist_dnn"
    runs = {"synthetic": ["--synthetic"], "real": ["--data-dir", str(folder)]}
    reports = {}
    for name, data in runs.items():
        result = run_cli("run", model, *data, "--epochs", "1", "--out", str(tmp_path / name), "--quiet")
        assert result.returncode == 0, result.stderr
        reports[name] = _run_report(tmp_path / name, model)
    real, synthetic = reports["real"]["provenance"], reports["synthetic"]["provenance"]
    digests = [_sha256(folder / name) for name in IDX_ORDER]
    assert real["data"]["sha256"] == provenance.combined_sha256(digests) and real["data"]["hashed"] == "files"
    assert [entry["sha256"] for entry in real["data"]["files"]] == digests
    assert synthetic["data"]["hashed"] == "parameters" and synthetic["data"]["source"] == "synthetic"
    for name, prov in (("real", real), ("synthetic", synthetic)):
        environment = reports[name]["environment"]
        assert prov["epochs"] == {"course": 5, "run": 1} and (prov["mode"], prov["native_differences"]) == ("aligned", [])
        assert environment["device"] == f"keras: {prov['device']['keras']}; lightning: {prov['device']['lightning']}"
        assert prov["threads"] == 1 and prov["device"]["keras"].startswith("cpu")
        assert prov["versions"] == {key: environment[key] for key in provenance.VERSION_KEYS}
        check = prov["forward_check"]  # one seed, inference mode: one check, within the 1e-5 tolerance
        assert (check["status"], check["checks"]) == ("passed", 1) and check["max_abs_diff"] <= 1e-5
        assert "files" not in reports[name]["dataset"] and "generator" not in reports[name]["dataset"]
        assert f"- {describe_provenance(reports[name])}" in (tmp_path / name / model / "report.md").read_text()
    keys = {name: provenance_key(report) for name, report in reports.items()}
    assert keys["real"] != keys["synthetic"]
    assert provenance_key(reports["real"], SETTING_FIELDS) != provenance_key(reports["synthetic"], SETTING_FIELDS)

    result = run_cli("report", str(tmp_path / "synthetic"), str(tmp_path / "real"), "--json")
    assert result.returncode == 0, result.stderr
    assert "superseded" not in result.stderr
    rows = [row for row in json.loads(result.stdout) if row["model"] == model]
    assert len(rows) == 2
    shown = {row["provenance_key"]: row["provenance"] for row in rows}
    assert shown == {keys[name]: describe_provenance(report) for name, report in reports.items()}
    assert sorted(text.split(" ", 1)[0] for text in shown.values()) == ["real", "synthetic"]


@pytest.mark.slow
def test_lockstep_json_carries_the_provenance_of_its_alignment(tmp_path):
    result = run_cli("lockstep", "c1w1_hello_linear", "--steps", "3", "--native", "default_learning_rate",
                     "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "lockstep" / "c1w1_hello_linear-sgd-native-default_learning_rate"
    document = json.loads((run_dir / "lockstep.json").read_text())
    prov = document["provenance"]
    assert (prov["mode"], prov["native_differences"]) == ("aligned-except", ["default_learning_rate"])
    assert prov["epochs"]["run"] is None and prov["forward_check"]["status"] == "not run"
    assert prov["data"]["hashed"] == "parameters" and prov["data"]["generator"]["x"] == [-1, 0, 1, 2, 3, 4]
    assert prov["threads"] == 1 and prov["device"]["keras"].startswith("cpu") and prov["versions"]["torch"]
    assert f"- Provenance: {describe_provenance(document)}" in (run_dir / "lockstep.md").read_text()


@pytest.mark.slow
def test_bench_rows_carry_the_provenance_of_their_setting(tmp_path):
    result = run_cli("bench", "c1w2_fmnist_dnn", "--synthetic", "--device", "cpu", "--threads", "1", "--steps", "2",
                     "--windows", "3", "--scope", "compute", "--mode", "aligned", "--json", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "bench.json").read_text())
    assert rows and all("provenance" in row for row in rows)
    prov = rows[0]["provenance"]
    assert (prov["mode"], prov["native_differences"], prov["threads"]) == ("aligned", [], 1)
    assert prov["data"] == provenance.data_provenance(load_dataset(get_spec("c1w2_fmnist_dnn"), synthetic=True))
    assert prov["epochs"] == {"course": 5, "run": None} and prov["forward_check"]["status"] == "not run"
