"""`parity list` and `--help` answer without starting a framework: parameter counts cached per code version.

Timing is never asserted (the machine is shared); what makes the commands fast is: the CLI process
imports neither TensorFlow nor torch (read from Python's own import log), and a warm `parity list`
asks no worker (a planted cache answer is what it prints).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import REPO, run_cli
from parity import model_facts
from parity.runner import supported_ids

FRAMEWORK_MODULES = ("tensorflow", "keras", "torch", "lightning")
SLOW_PATH_LINE = "counting parameters in both frameworks once"


def imported_frameworks(import_log: str) -> set[str]:
    """The framework packages in a PYTHONPROFILEIMPORTTIME log ("import time: self | cumulative | name")."""
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in import_log.splitlines()
             if line.startswith("import time:")}
    return names & set(FRAMEWORK_MODULES)


def run_logged(*args: str) -> subprocess.CompletedProcess:
    """The real CLI with Python's import log on stderr."""
    return run_cli(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})


def test_the_import_log_check_sees_a_framework_import():
    planted = "import time:       120 |        340 |   torch._C\nimport time:  5 |  5 | parity.cli\n"
    assert imported_frameworks(planted) == {"torch"}
    assert imported_frameworks("import time: 5 | 5 | parity.runner\nimport time: 1 | 1 |   torchlike\n") == set()


@pytest.mark.parametrize("args", [("--help",), ("list", "--help"), ("explain", "--help")])
def test_help_imports_no_framework(args):
    result = run_logged(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: parity" in result.stdout
    assert imported_frameworks(result.stderr) == set()


def planted_answers() -> dict[str, dict]:
    """Answers no framework would give (a count of 123,456,789), so output showing it came from the cache."""
    return {framework: {"architectures": ["mlp_classifier"], "params": {"c1w2_fmnist_dnn": 123_456_789}}
            for framework in ("keras", "lightning")}


def test_warm_list_answers_from_the_cache_without_a_framework():
    candidates = supported_ids()
    path = model_facts.save_facts(model_facts.code_version(candidates), candidates, planted_answers())
    result = run_logged("list", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["c1w2_fmnist_dnn"]["params"] == {"keras": 123_456_789, "lightning": 123_456_789}
    assert rows["c1w2_fmnist_dnn"]["implemented"] == {"keras": True, "lightning": True}
    assert rows["c1w3_fmnist_cnn"]["implemented"] == {"keras": False, "lightning": False}
    assert SLOW_PATH_LINE not in result.stderr
    assert imported_frameworks(result.stderr) == set()
    assert path.parent == Path(os.environ["PARITY_CACHE_DIR"]) / model_facts.FACTS_DIR


@pytest.mark.slow
def test_cold_list_counts_once_then_answers_from_the_cache():
    cold = run_cli("list")
    assert cold.returncode == 0, cold.stderr[-2000:]
    assert SLOW_PATH_LINE in cold.stderr
    # The course's own count (course_models.md) for the Fashion-MNIST DNN, in both frameworks.
    assert "c1w2_fmnist_dnn                    C1W2       fashion-mnist            multiclass    101,770    101,770" \
        in cold.stdout
    assert len(list((Path(os.environ["PARITY_CACHE_DIR"]) / model_facts.FACTS_DIR).glob("*.json"))) == 1
    warm = run_logged("list")
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert warm.stdout == cold.stdout
    assert SLOW_PATH_LINE not in warm.stderr
    assert imported_frameworks(warm.stderr) == set()


def test_the_key_changes_with_the_code_the_versions_asked_about_and_the_models(tmp_path):
    files = [tmp_path / "a.py", tmp_path / "b.py"]
    for path in files:
        path.write_text("x = 1\n")
    key = model_facts.code_version(["m1", "m2"], files)
    assert model_facts.code_version(["m2", "m1"], files) == key  # the order of the ids does not matter
    assert model_facts.code_version(["m1"], files) != key
    files[1].write_text("x = 2\n")
    assert model_facts.code_version(["m1", "m2"], files) != key
    assert len(key) == 64


def test_a_damaged_or_foreign_cache_file_is_not_used():
    candidates = ["c1w2_fmnist_dnn", "c1w3_fmnist_cnn"]
    key = model_facts.code_version(candidates, [])
    path = model_facts.save_facts(key, candidates, planted_answers())
    assert model_facts.load_facts(key, candidates) == planted_answers()
    record = json.loads(path.read_text())
    damaged = {
        "not json": "{",
        "another key": json.dumps({**record, "key": "0" * 64}),
        "another format": json.dumps({**record, "format": model_facts.FACTS_FORMAT + 1}),
        "a framework missing": json.dumps({**record, "frameworks": {"keras": record["frameworks"]["keras"]}}),
        "a negative count": json.dumps({**record, "frameworks": {
            framework: {**answer, "params": {"c1w2_fmnist_dnn": -1}} for framework, answer in
            record["frameworks"].items()}}),
        "a count as text": json.dumps({**record, "frameworks": {
            framework: {**answer, "params": {"c1w2_fmnist_dnn": "12"}} for framework, answer in
            record["frameworks"].items()}}),
        "an id not asked about": json.dumps({**record, "frameworks": {
            framework: {**answer, "params": {"c9w9_other": 1}} for framework, answer in
            record["frameworks"].items()}}),
    }
    for what, text in damaged.items():
        path.write_text(text)
        assert model_facts.load_facts(key, candidates) is None, what


def test_the_slow_path_asks_once_and_says_so():
    candidates = ["c1w2_fmnist_dnn"]
    asked, heard = [], []

    def ask():
        asked.append(1)
        return planted_answers()

    assert model_facts.framework_facts(candidates, ask, heard.append) == planted_answers()
    assert model_facts.framework_facts(candidates, ask, heard.append) == planted_answers()
    assert len(asked) == 1
    assert len(heard) == 1 and SLOW_PATH_LINE in heard[0]


BUILD_EVERY_MODEL = """
import sys
from parity.catalog import CATALOG, shaped_by_data
from parity.datasets import stand_in_overrides
import {package}
from {package} import build
from {package}.base import REGISTRY
with shaped_by_data(stand_in_overrides(list(CATALOG))):
    for spec in CATALOG.values():
        if spec.architecture in REGISTRY:
            build(spec.id)
print("\\n".join(sorted(module.__file__ for name, module in sys.modules.items()
                        if name.split(".")[0] == "parity" and getattr(module, "__file__", None))))
"""


def uncovered(files: list[str], covered: list[Path]) -> list[str]:
    """The files of `files` that are not among `covered`."""
    known = {path.resolve() for path in covered}
    return [name for name in files if Path(name).resolve() not in known]


def test_the_uncovered_check_names_a_planted_module():
    covered = model_facts.source_files()
    planted = str(REPO / "parity" / "report.py")
    assert uncovered([str(covered[0]), planted], covered) == [planted]


@pytest.mark.parametrize("package", ["tf_models", "torch_models"])
def test_the_key_covers_every_parity_module_a_builder_imports(package):
    """Building every model of a framework imports only parity modules whose source is in the cache key."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", BUILD_EVERY_MODEL.format(package=package)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    files = result.stdout.split()
    assert any(name.endswith("spec_types.py") for name in files)
    assert uncovered(files, model_facts.source_files()) == []
