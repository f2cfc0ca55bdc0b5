"""Safe loading: zip bombs and corrupt members refused in one line; nothing loaded can run code (a source scan).

Unsafe member names (absolute, `..`, a drive letter, a symlink) are refused by
tests/test_datasets_image_folders.py::test_unsafe_archive_members_make_the_archive_refused; torch
`weights_only=True` and Keras `safe_mode=True` refusals by tests/test_saved_models.py
(test_keras_reload_check_fails_on_a_planted_change_and_safe_mode_refuses_a_lambda,
test_torch_load_trained_refuses_a_pickle_with_an_arbitrary_object_without_running_it) and
tests/test_early_stopping.py (the restored Lightning checkpoint loads with weights_only). Tar
archives are not read yet (IMDB comes with a later issue): the scan below requires any future
extraction to pass tarfile's filter="data".
"""

import ast
import dataclasses
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from image_helpers import write_image_folders
from parity.catalog import get_spec
from parity.datasets import image_folder, load_dataset
from parity.datasets.decode import DataWarning
from parity.datasets.image_folder import ZipLimits, load_image_folders
from parity.errors import DataError

REPO = Path(__file__).resolve().parents[1]
PRODUCT_PACKAGES = ("parity", "tf_models", "torch_models", "scripts")
HAPPY = get_spec("c1w4_happy_sad")
SMALL = dataclasses.replace(HAPPY, input_shape=(8, 8, 3), data=dataclasses.replace(HAPPY.data, image_size=(8, 8)))
BOMB_BYTES = 50 * 2**20  # 50 MiB of zeros: deflates to about 50 KB


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("faces")
    write_image_folders(folder, {"happy": 2, "sad": 2}, size=(8, 8))
    return folder


def zip_with(faces: Path, archive: Path, members: dict[str, int]) -> Path:
    """The faces as a zip, plus `members` (name -> bytes of zeros, streamed: never all in memory)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(faces.rglob("*.png")):
            out.write(path, path.relative_to(faces).as_posix())
        for name, size in members.items():
            with out.open(name, "w", force_zip64=size > 2**31) as stream:
                for _ in range(size // 2**20):
                    stream.write(bytes(2**20))
                stream.write(bytes(size % 2**20))
    return archive


def refusal(spec, path: Path, limits: ZipLimits = ZipLimits()) -> str:
    with pytest.raises(DataError) as error:
        load_image_folders(spec, path, limits)
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_real_zip_bomb_is_refused_by_its_compression_ratio_and_by_a_size_limit(faces, tmp_path):
    bomb = zip_with(faces, tmp_path / "bomb.zip", {"happy/bomb.png": BOMB_BYTES})
    assert bomb.stat().st_size < 200_000  # 50 MiB inflated from about 50 KB
    message = refusal(SMALL, bomb)  # the default limits: 1,000-fold is over the 100-fold limit
    assert message.startswith(f"{bomb}: refusing a possible zip bomb: member 'happy/bomb.png' would inflate ")
    assert "-fold" in message and "52,428,800 bytes" in message and "--data-dir" in message
    message = refusal(SMALL, bomb, ZipLimits(member_bytes=10 * 2**20, ratio=10**6))  # the ratio allowed
    assert "member 'happy/bomb.png' would inflate to 52,428,800 bytes (limit 10,485,760)" in message
    # A control: the same archive without the bomb loads.
    assert len(load_image_folders(SMALL, zip_with(faces, tmp_path / "fine.zip", {})).train) == 4


def test_many_small_well_compressed_members_are_refused_together(faces, tmp_path):
    members = {f"happy/flat-{number}.bmp": 512 * 2**10 for number in range(8)}  # each under the per-member check
    archive = zip_with(faces, tmp_path / "many.zip", members)
    message = refusal(SMALL, archive)
    assert "its members together would inflate" in message and "-fold" in message
    assert "its members together would inflate to 4,19" in refusal(SMALL, archive,
                                                                  ZipLimits(total_bytes=3 * 2**20, ratio=10**6))


def test_a_member_that_inflates_beyond_its_declared_size_is_refused_as_corrupt(faces, tmp_path):
    archive = zip_with(faces, tmp_path / "forged.zip", {"happy/forged.png": BOMB_BYTES})
    data = bytearray(archive.read_bytes())
    # Declare 1,000 bytes in the central directory (uncompressed size at offset 24) and the local header (22).
    name = b"happy/forged.png"
    central = next(at for at in _all(data, b"PK\x01\x02") if data[at + 46:at + 46 + len(name)] == name)
    local = next(at for at in _all(data, b"PK\x03\x04") if data[at + 30:at + 30 + len(name)] == name)
    struct.pack_into("<I", data, central + 24, 1000)
    struct.pack_into("<I", data, local + 22, 1000)
    archive.write_bytes(bytes(data))
    with zipfile.ZipFile(archive) as check:
        assert check.getinfo(name.decode()).file_size == 1000  # the ratio check does not see it
    message = refusal(SMALL, archive)
    assert message.startswith(f"{archive}: corrupt archive member 'happy/forged.png' (Bad CRC-32")


def test_reading_a_member_stops_at_the_limit(faces, tmp_path):
    archive = zip_with(faces, tmp_path / "small.zip", {"happy/notes.txt": 1000})
    with zipfile.ZipFile(archive) as opened:
        member = opened.getinfo("happy/notes.txt")
        assert len(image_folder._zip_reader(archive, opened, member, ZipLimits())()) == 1000
        with pytest.raises(DataError, match=r"member 'happy/notes.txt' inflates to more than 100 bytes"):
            image_folder._zip_reader(archive, opened, member, ZipLimits(member_bytes=100))()


def test_a_corrupt_member_is_a_one_line_error_naming_it(faces, tmp_path):
    archive = tmp_path / "flipped.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        for path in sorted(faces.rglob("*.png")):
            out.write(path, path.relative_to(faces).as_posix())
    data = bytearray(archive.read_bytes())
    data[40 + len("happy/happy-00.png")] ^= 0xFF  # a byte of the first member's stored data
    archive.write_bytes(bytes(data))
    assert "corrupt archive member 'happy/happy-00.png' (Bad CRC-32" in refusal(SMALL, archive)


def test_backslash_dotdot_member_names_are_refused(faces, tmp_path):
    archive = zip_with(faces, tmp_path / "windows.zip", {})
    with zipfile.ZipFile(archive, "a") as out:
        out.writestr("happy\\..\\..\\evil.png", b"x")
    assert "unsafe archive member 'happy\\\\..\\\\..\\\\evil.png'" in refusal(SMALL, archive)


def test_a_member_with_an_empty_name_and_an_unknown_zip_version_are_refused(faces, tmp_path):
    """Both found by tests/test_fuzz_readers.py (they were an IndexError and a NotImplementedError)."""
    archive = zip_with(faces, tmp_path / "empty-name.zip", {})
    with zipfile.ZipFile(archive, "a") as out:
        out.writestr(zipfile.ZipInfo(""), b"x")
    assert "unsafe archive member '' (empty name" in refusal(SMALL, archive)
    data = bytearray(zip_with(faces, tmp_path / "version.zip", {}).read_bytes())
    struct.pack_into("<H", data, data.index(b"PK\x01\x02") + 6, 64)  # "version needed to extract": 6.4
    (tmp_path / "version.zip").write_bytes(bytes(data))
    assert refusal(SMALL, tmp_path / "version.zip").endswith(
        "version.zip: not a readable zip archive (zip file version 6.4); replace it with a complete copy")


def test_a_downloaded_zip_bomb_is_refused_and_not_cached(faces, served, tmp_path, monkeypatch):
    root, url = served
    zip_with(faces, root / "happy-or-sad.zip", {"happy/bomb.png": BOMB_BYTES})
    monkeypatch.delenv("PARITY_OFFLINE")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    spec = dataclasses.replace(SMALL, data=dataclasses.replace(SMALL.data, urls={"train": url + "happy-or-sad.zip"}))
    with pytest.raises(DataError, match=r"downloaded file rejected: .*refusing a possible zip bomb"):
        load_dataset(spec)
    assert not (tmp_path / "cache" / "happy-or-sad" / "happy-or-sad.zip").exists()


def test_a_path_traversal_member_is_refused_in_one_line_and_nothing_is_cached(faces, served, tmp_path, monkeypatch):
    root, url = served
    cache = tmp_path / "cache"
    monkeypatch.setenv("PARITY_CACHE_DIR", str(cache))
    horses = dataclasses.replace(get_spec("c1w4_horse_human_150"), input_shape=(8, 8, 3), validation="train")
    horses = dataclasses.replace(horses, data=dataclasses.replace(horses.data, image_size=(8, 8),
                                                                  urls={"train": url + "horse-or-human.zip"}))
    archive = zip_with(faces, tmp_path / "local" / "horse-or-human.zip", {})
    with zipfile.ZipFile(archive, "a") as out:
        out.writestr("horses/../../../etc/cron.d/evil.png", b"x")
    message = refusal(horses, tmp_path / "local")
    assert message == (f"{archive}: unsafe archive member 'horses/../../../etc/cron.d/evil.png' (empty name, absolute "
                       "path, '..' or symlink); refusing the archive")
    assert not cache.exists() or not any(cache.rglob("*.npy"))  # nothing decoded, nothing selected
    shutil.copy(archive, root / "horse-or-human.zip")  # the same archive downloaded: rejected, not cached
    monkeypatch.delenv("PARITY_OFFLINE")
    with pytest.raises(DataError, match=r"downloaded file rejected: DataError: .*unsafe archive member") as error:
        load_dataset(horses)
    assert "\n" not in str(error.value)
    assert not (cache / "horse-or-human" / "horse-or-human.zip").exists() and not any(cache.rglob("*.npy"))


def test_a_decompression_bomb_in_pixels_is_skipped_by_pillow(faces, tmp_path, monkeypatch):
    shutil.copytree(faces, tmp_path / "faces")
    Image.new("RGB", (40, 40)).save(tmp_path / "faces" / "happy" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 700)  # 40x40 = 1,600 pixels: over twice the limit, refused
    with pytest.warns(DataWarning, match=r"huge\.png: not a readable image \(Image size \(1600 pixels\) exceeds"):
        assert len(load_image_folders(SMALL, tmp_path / "faces").train) == 4


# ---------------------------------------------------------------------------- nothing loaded runs code


def _all(data: bytes, needle: bytes):
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


def _keyword(call: ast.Call, name: str):
    return next((keyword.value for keyword in call.keywords if keyword.arg == name), None)


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _callee(call: ast.Call) -> str:
    """'torch.load', 'keras.models.load_model', 'Lambda': the dotted name of what is called."""
    parts, node = [], call.func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def unsafe_loads(source: str, where: str) -> list[str]:
    """Each call in `source` that could run code from a file: torch.load without weights_only=True, a Keras
    load_model without safe_mode=True, a Lambda layer, np.load with allow_pickle=True, pickle or marshal loads,
    and an archive extraction without tarfile's filter="data"."""
    found = []
    for call in (node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)):
        name, last = _callee(call), _callee(call).rpartition(".")[2]
        line = f"{where}:{call.lineno}: {name}"
        if name == "torch.load" and not _is_true(_keyword(call, "weights_only")):
            found.append(f"{line} without weights_only=True")
        elif last == "load_model" and not _is_true(_keyword(call, "safe_mode")):
            found.append(f"{line} without safe_mode=True")
        elif last == "Lambda":
            found.append(f"{line}: a Lambda layer (code in the saved model; write a serializable layer)")
        elif last == "load" and name.startswith(("np.", "numpy.")) and _is_true(_keyword(call, "allow_pickle")):
            found.append(f"{line} with allow_pickle=True")
        elif name in ("pickle.load", "pickle.loads", "marshal.load", "marshal.loads", "dill.load"):
            found.append(line)
        elif last in ("extractall", "extract", "unpack_archive"):
            keyword = _keyword(call, "filter")
            if not (isinstance(keyword, ast.Constant) and keyword.value == "data"):
                found.append(f"{line} without filter='data'")
    return found


def test_no_product_code_loads_anything_that_can_run_code():
    files = [path for package in PRODUCT_PACKAGES for path in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 50
    found = [hit for path in files for hit in unsafe_loads(path.read_text(), str(path.relative_to(REPO)))]
    assert found == []
    # Every torch.load and load_model the product has passes the check (it must see them to pass them).
    loads = sum(path.read_text().count("torch.load(") + path.read_text().count("load_model(") for path in files)
    assert loads >= 6


@pytest.mark.parametrize("planted, problem", [
    ("torch.load(path)", "without weights_only=True"),
    ("torch.load(path, weights_only=False)", "without weights_only=True"),
    ("keras.saving.load_model(path)", "without safe_mode=True"),
    ("keras.models.load_model(path, safe_mode=False)", "without safe_mode=True"),
    ("keras.layers.Lambda(lambda x: x * 2)", "a Lambda layer"),
    ("np.load(path, allow_pickle=True)", "with allow_pickle=True"),
    ("pickle.loads(data)", "pickle.loads"),
    ("tarfile.open(path).extractall(out)", "without filter='data'"),
])
def test_the_scan_finds_a_planted_unsafe_load(planted, problem):
    found = unsafe_loads("torch.load(path, weights_only=True)\n" + planted, "x.py")
    assert len(found) == 1 and found[0].startswith("x.py:2: ") and problem in found[0]
