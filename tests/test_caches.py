"""Caches you can trust: every entry checked before use, rebuilt when corrupt, built once by concurrent runs.

Downloads are checked against the source's published hash, else the sha256 recorded when the
download passed its structure check; decoded images against the sha256 and size of images.npy
in the entry's index; model facts against the sha256 of their answers. Concurrency: two
processes started at the same moment (a file barrier) build the same entry; the cache lock makes
the second wait and use the first one's entry.
"""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from image_helpers import write_image_folders
from parity import cache, model_facts
from parity.catalog import get_spec
from parity.datasets import download
from parity.datasets.decode import checked_index, decoded_root
from parity.datasets.image_folder import load_image_folders
from parity.datasets.sources import Source
from parity.errors import DataError

REPO = Path(__file__).resolve().parents[1]
HAPPY = get_spec("c1w4_happy_sad")
SMALL = dataclasses.replace(HAPPY, input_shape=(16, 16, 3), data=dataclasses.replace(HAPPY.data, image_size=(16, 16)))
PAYLOAD = b"TOY" + bytes(range(256)) * 64


def toy_source(url: str, known_hash: str | None) -> Source:
    return Source("toy", (url,), {"toy.bin": known_hash})


def toy_check(path: Path) -> None:
    if not path.read_bytes().startswith(b"TOY"):
        raise DataError(f"{path}: not a toy file")


def online(monkeypatch, tmp_path) -> Path:
    monkeypatch.delenv("PARITY_OFFLINE")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "toy"


def fetch(url: str, known_hash: str | None = None) -> Path:
    return download.fetch(toy_source(url, known_hash), cache.cache_root() / "toy", [], toy_check)["toy.bin"]


@pytest.mark.parametrize("published", [False, True], ids=["no published hash", "published sha256"])
def test_a_corrupt_cached_download_is_refused_offline_and_downloaded_again_online(
        published, served, tmp_path, monkeypatch, capfd):
    root, url = served
    (root / "toy.bin").write_bytes(PAYLOAD)
    known = f"sha256:{hashlib.sha256(PAYLOAD).hexdigest()}" if published else None
    folder = online(monkeypatch, tmp_path)
    path = fetch(url, known)
    assert path == folder / "toy.bin" and path.read_bytes() == PAYLOAD
    assert cache.recorded_sha256(path) == (None if published else hashlib.sha256(PAYLOAD).hexdigest())
    path.write_bytes(PAYLOAD[:-100])  # truncated
    monkeypatch.setenv("PARITY_OFFLINE", "1")
    with pytest.raises(DataError) as error:
        fetch(url, known)
    check = "its published sha256" if published else "the sha256 recorded when it was downloaded"
    assert f"the cached {path} does not match {check} (corrupt or truncated); download from {url} not attempted" \
        in str(error.value) and "\n" not in str(error.value)
    monkeypatch.setenv("PARITY_OFFLINE", "0")
    capfd.readouterr()
    assert fetch(url, known).read_bytes() == PAYLOAD
    assert f"parity: the cached {path} does not match {check} (corrupt or truncated); downloading it again" \
        in capfd.readouterr().err


def test_a_cached_file_without_a_record_is_adopted_only_when_its_structure_passes(tmp_path, monkeypatch):
    folder = online(monkeypatch, tmp_path)
    monkeypatch.setenv("PARITY_OFFLINE", "1")
    folder.mkdir(parents=True)
    (folder / "toy.bin").write_bytes(PAYLOAD)  # cached before sha256 records existed
    assert fetch("http://127.0.0.1:9/").read_bytes() == PAYLOAD
    assert cache.recorded_sha256(folder / "toy.bin") == hashlib.sha256(PAYLOAD).hexdigest()
    for leftover in (folder / "toy.bin", cache.sha256_record(folder / "toy.bin")):
        leftover.unlink()
    (folder / "toy.bin").write_bytes(b"<html>an error page</html>")
    with pytest.raises(DataError, match=r"the cached .*toy\.bin was rejected \(.*not a toy file\)"):
        fetch("http://127.0.0.1:9/")
    assert cache.recorded_sha256(folder / "toy.bin") is None


def _flip_a_byte(entry: Path) -> None:
    data = bytearray((entry / "images.npy").read_bytes())
    data[-1] ^= 0xFF
    (entry / "images.npy").write_bytes(bytes(data))


def _truncate(entry: Path) -> None:
    with open(entry / "images.npy", "r+b") as stream:
        stream.truncate(os.path.getsize(entry / "images.npy") // 2)


def _older_index(entry: Path) -> None:
    index = json.loads((entry / "index.json").read_text())
    (entry / "index.json").write_text(json.dumps({key: index[key] for key in ("kept", "skipped", "reasons")}))


CORRUPTIONS = {
    "a flipped byte": (_flip_a_byte, "images.npy has 3,968 bytes and sha256"),
    "truncated": (_truncate, "images.npy has 1,984 bytes"),
    "no images": (lambda entry: (entry / "images.npy").unlink(), "images.npy unreadable: No such file"),
    "garbled index": (lambda entry: (entry / "index.json").write_text('{"kept": [0'), "unreadable index"),
    "index of another entry": (lambda entry: (entry / "index.json").write_text(
        json.dumps({**json.loads((entry / "index.json").read_text()), "kept": [0, 1]})),
        "index does not describe the input files"),
    "written before checksums": (_older_index, "index not in format 2"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_corrupt_decoded_entry_is_decoded_again_with_a_note(corruption, tmp_path, capfd):
    images = write_image_folders(tmp_path / "faces", {"happy": 2, "sad": 3}, size=(16, 16))
    first = load_image_folders(SMALL, tmp_path / "faces")
    entry = Path(first.train.x.filename).parent
    expected = np.concatenate([np.stack(images["happy"]), np.stack(images["sad"])])
    assert np.array_equal(first.train.x, expected) and checked_index(entry, 5)[0] is not None
    corrupt, reason = CORRUPTIONS[corruption]
    corrupt(entry)
    assert checked_index(entry, 5)[0] is None
    capfd.readouterr()
    again = load_image_folders(SMALL, tmp_path / "faces")
    err = capfd.readouterr().err
    assert f"parity: the decoded-image cache entry {entry} is unusable ({reason}" in err
    assert len([line for line in err.splitlines() if "unusable" in line]) == 1
    assert np.array_equal(again.train.x, expected) and Path(again.train.x.filename).parent == entry
    assert checked_index(entry, 5)[0] is not None
    assert [path.name for path in decoded_root().iterdir()] == [entry.name]  # no temporary folder left


def test_a_model_facts_record_whose_answers_changed_is_not_used():
    candidates = ["c1w2_fmnist_dnn"]
    key = model_facts.code_version(candidates, [])
    answers = {framework: {"architectures": ["mlp_classifier"], "params": {"c1w2_fmnist_dnn": 101_770}}
               for framework in ("keras", "lightning")}
    path = model_facts.save_facts(key, candidates, answers)
    assert model_facts.load_facts(key, candidates) == answers
    path.write_text(path.read_text().replace("101770", "101771", 1))  # a changed digit: still the right shape
    assert model_facts.load_facts(key, candidates) is None


# ---------------------------------------------------------------------------- two processes at once

BARRIER = """
import sys, time
from pathlib import Path
Path(sys.argv[2]).touch()
while not Path(sys.argv[1]).exists():
    time.sleep(0.002)
"""

DECODE = BARRIER + """
import dataclasses, hashlib
import numpy as np
from parity.catalog import get_spec
from parity.datasets.image_folder import load_image_folders
spec = get_spec("c1w4_happy_sad")
spec = dataclasses.replace(spec, input_shape=(64, 64, 3), data=dataclasses.replace(spec.data, image_size=(64, 64)))
split = load_image_folders(spec, sys.argv[3])
print(split.train.x.filename, hashlib.sha256(np.ascontiguousarray(split.train.x)).hexdigest(), len(split.train))
"""

DOWNLOAD = BARRIER + """
from parity.datasets import download
from parity.datasets.sources import Source
from parity.datasets.locate import cache_dir
source = Source("toy", (sys.argv[3],), {"big.bin": None})
path = download.fetch(source, cache_dir("toy"), [])["big.bin"]
import hashlib
print(path, hashlib.sha256(path.read_bytes()).hexdigest())
"""

FACTS = BARRIER + """
import time
from pathlib import Path
from parity import model_facts

def ask():
    with open(sys.argv[3], "a") as log:
        log.write("asked\\n")
    time.sleep(0.5)
    return {fw: {"architectures": ["mlp_classifier"], "params": {"c1w2_fmnist_dnn": 7}}
            for fw in ("keras", "lightning")}

print(model_facts.framework_facts(["c1w2_fmnist_dnn"], ask, lambda line: print(line, file=sys.stderr))["keras"])
"""


def start_together(script: str, argument: str, tmp_path: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    """Run `script` in two processes released at the same moment; their (stdout, stderr), after asserting exit 0."""
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{number}" for number in range(2)]
    processes = [subprocess.Popen([sys.executable, "-c", script, str(go), str(flag), argument], cwd=REPO,
                                  env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for flag in ready]
    try:
        deadline = time.monotonic() + 60
        while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
            time.sleep(0.005)
        go.touch()
        outputs = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    return outputs


def test_two_processes_decoding_the_same_images_at_once_decode_them_once(tmp_path):
    write_image_folders(tmp_path / "faces", {"happy": 150, "sad": 150}, size=(64, 64))
    cache_root = tmp_path / "shared-cache"
    outputs = start_together(DECODE, str(tmp_path / "faces"), tmp_path, {"PARITY_CACHE_DIR": str(cache_root)})
    assert outputs[0][0] == outputs[1][0] and outputs[0][0].split()[2] == "300"  # the same entry, the same pixels
    assert sum(err.count("parity: decoding 300 images") for _, err in outputs) == 1
    entry = Path(outputs[0][0].split()[0]).parent
    assert [path.name for path in (cache_root / "decoded").iterdir()] == [entry.name]
    assert checked_index(entry, 300)[0] is not None


def test_two_processes_downloading_the_same_file_at_once_download_it_once(served, tmp_path):
    root, url = served
    payload = np.random.default_rng(0).integers(0, 256, 8 * 2**20, dtype=np.uint8).tobytes()
    (root / "big.bin").write_bytes(payload)
    cache_root = tmp_path / "shared-cache"
    outputs = start_together(DOWNLOAD, url, tmp_path, {"PARITY_CACHE_DIR": str(cache_root), "PARITY_OFFLINE": "0"})
    digest = hashlib.sha256(payload).hexdigest()
    assert [out.split()[1] for out, _ in outputs] == [digest, digest]
    assert sum(err.count(f"Downloading data from '{url}big.bin'") for _, err in outputs) == 1
    assert sorted(path.name for path in (cache_root / "toy").iterdir()) == ["big.bin", "big.bin.sha256"]
    assert cache.recorded_sha256(cache_root / "toy" / "big.bin") == digest


def test_two_processes_asking_for_the_model_facts_at_once_ask_the_frameworks_once(tmp_path):
    log = tmp_path / "asked.log"
    outputs = start_together(FACTS, str(log), tmp_path, {"PARITY_CACHE_DIR": str(tmp_path / "shared-cache")})
    assert log.read_text() == "asked\n"
    answer = "{'architectures': ['mlp_classifier'], 'params': {'c1w2_fmnist_dnn': 7}}\n"
    assert [out for out, _ in outputs] == [answer, answer]
