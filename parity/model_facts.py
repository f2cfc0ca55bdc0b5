"""What only the frameworks can tell about the course models, cached per code version.

Which architectures each framework builds and every buildable model's parameter count come
from the workers (a `describe` job), which start TensorFlow and torch: seconds each. The
answers change only with the code that builds the models, so they are kept in
$PARITY_CACHE_DIR/model-facts/<key>.json (default ~/.cache/parity), where the key is a sha256
over that code (`source_files`: both model packages and the parity modules their builders
import), the installed framework versions and the models asked about. A changed file gives a
new key, so a stale answer is never read; a file that does not hold the key's answers in the
expected shape, with the sha256 of those answers it records, is ignored and written again. The
file is written atomically; two processes asking at once count once (the second waits on the
cache lock, `parity.cache.entry_lock`, and reads what the first cached).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from parity.cache import cache_root, entry_lock
from parity.errors import ParityError
from parity.fileio import write_json_atomic
from parity.jobs import FRAMEWORKS, WORKER_MODULES

FACTS_FORMAT = 2  # 2: the record holds the sha256 of its answers
FACTS_DIR = "model-facts"
# The parity modules that tf_models and torch_models import to build a model (tests/test_list_fast.py checks
# this list against a real import of each package), relative to the parity package.
# The data code is in too: a next-word model is built at its synthetic stand-in's vocabulary (stand_in_overrides).
PARITY_BUILD_SOURCES = ("__init__.py", "align.py", "augment.py", "cache.py", "catalog.py", "datasets", "errors.py",
                        "fileio.py", "inception.py", "plan.py", "registry.py", "spec_types.py", "specs", "subwords.py",
                        "text.py", "weights.py")
# Installed distributions whose version can change what a framework builds.
VERSIONED_DISTRIBUTIONS = ("tensorflow", "keras", "torch", "lightning", "torchmetrics")

Answers = dict[str, dict[str, Any]]  # framework -> {"architectures": [name, ...], "params": {model id: count}}


def model_packages() -> dict[str, str]:
    """The model package of each framework ({"keras": "tf_models", "lightning": "torch_models"})."""
    return {framework: WORKER_MODULES[framework].split(".")[0] for framework in FRAMEWORKS}


def package_dir(name: str) -> Path:
    """The directory of the top-level package `name`, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ParityError(f"package {name!r} is not installed; reinstall the project (bash scripts/install.sh)")
    return Path(next(iter(spec.submodule_search_locations)))


def source_files() -> list[Path]:
    """Every source file whose content can change the frameworks' answers, in a fixed order."""
    parity_dir = Path(__file__).resolve().parent
    roots = [parity_dir / name for name in PARITY_BUILD_SOURCES]
    roots += [package_dir(package) for package in model_packages().values()]
    files: list[Path] = []
    for root in roots:
        files += sorted(root.rglob("*.py")) if root.is_dir() else [root]
    return files


def installed_versions() -> dict[str, str]:
    """The installed version of each of VERSIONED_DISTRIBUTIONS ("absent" where one is not installed)."""
    versions = {}
    for name in VERSIONED_DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def code_version(candidates: Iterable[str], files: Iterable[Path] | None = None) -> str:
    """The cache key: sha256 over the format, Python's and the frameworks' versions, the model ids asked
    about and the name and content of every file of `files` (default: `source_files()`)."""
    digest = hashlib.sha256()
    header = {"format": FACTS_FORMAT, "python": list(sys.version_info[:3]), "versions": installed_versions(),
              "candidates": sorted(candidates)}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for path in source_files() if files is None else files:
        content = path.read_bytes()
        digest.update(f"\0{'/'.join(path.parts[-2:])}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def facts_path(key: str) -> Path:
    """Where the answers of code version `key` are cached."""
    return cache_root() / FACTS_DIR / f"{key}.json"


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _valid_answers(answers: Any, candidates: set[str]) -> bool:
    """Whether `answers` has one entry per framework: a list of architecture names and counts of asked-about ids."""
    if not isinstance(answers, dict) or set(answers) != set(FRAMEWORKS):
        return False
    for answer in answers.values():
        if not isinstance(answer, dict):
            return False
        architectures, params = answer.get("architectures"), answer.get("params")
        if not isinstance(architectures, list) or not all(isinstance(name, str) for name in architectures):
            return False
        if not isinstance(params, dict) or not set(params) <= candidates or not all(map(_is_count, params.values())):
            return False
    return True


def load_facts(key: str, candidates: Iterable[str]) -> Answers | None:
    """The cached answers of code version `key`; None when there are none, or the file is not what it should be."""
    try:
        record = json.loads(facts_path(key).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested too deeply
        return None
    if not isinstance(record, dict) or record.get("format") != FACTS_FORMAT or record.get("key") != key:
        return None
    answers = record.get("frameworks")
    if not _valid_answers(answers, set(candidates)) or record.get("sha256") != answers_sha256(answers):
        return None
    return answers


def save_facts(key: str, candidates: Iterable[str], answers: Answers) -> Path:
    """Cache `answers` under `key` (atomically); returns the file."""
    path = facts_path(key)
    write_json_atomic(path, {"format": FACTS_FORMAT, "key": key, "candidates": sorted(candidates),
                             "versions": installed_versions(), "frameworks": answers,
                             "sha256": answers_sha256(answers)})
    return path


def answers_sha256(answers: Any) -> str:
    """The sha256 of `answers` as canonical JSON (sorted keys): a changed count or name changes it."""
    return hashlib.sha256(json.dumps(answers, sort_keys=True).encode()).hexdigest()


def framework_facts(candidates: list[str], ask: Callable[[], Answers],
                    notify: Callable[[str], None]) -> Answers:
    """The frameworks' answers about `candidates`: from the cache when it holds this code version's, else from
    `ask()` (which starts the frameworks), cached for the next call. `notify` hears when the slow path is taken."""
    key = code_version(candidates)
    cached = load_facts(key, candidates)
    if cached is not None:
        return cached
    with entry_lock(f"{FACTS_DIR}-{key}", notify):  # a concurrent call waits and reads what this one caches
        cached = load_facts(key, candidates)
        if cached is not None:
            return cached
        path = facts_path(key)
        notify(f"parity: first listing since the model code or the frameworks changed: counting parameters in both "
               f"frameworks once (cached in {path})")
        answers = ask()
        if not _valid_answers(answers, set(candidates)):
            raise ParityError(f"the framework workers answered the describe job in an unexpected shape: {answers!r}; "
                              "the worker code and parity.model_facts disagree")
        try:
            save_facts(key, candidates, answers)
        except ParityError as error:
            notify(f"parity: warning: the parameter counts were not cached ({error}); the next call counts them again")
    return answers
