"""Class-per-folder image sets: layouts, safe archives, skipped and empty files, colour, resizing, the decode cache."""

import dataclasses
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from image_helpers import write_image_folders
from parity.catalog import get_spec
from parity.datasets import decode, load_dataset
from parity.datasets.decode import DataWarning, decoded_root
from parity.datasets.image_folder import load_image_folders
from parity.datasets.locate import local_directory
from parity.datasets.sources import spec_source
from parity.errors import DataError
from parity.plan import collate

HAPPY = get_spec("c1w4_happy_sad")  # binary, validation on the training set, 150x150 rgb, rescale 1/255
CATS = get_spec("c2w1_cats_dogs_cnn")  # binary, train/ and validation/ sets


def zip_folder(folder: Path, archive: Path, prefix: str = "", extra: dict[str, bytes] | None = None) -> Path:
    """Zip every file under `folder` as prefix + relative path, plus `extra` members (name -> bytes)."""
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, prefix + path.relative_to(folder).as_posix())
        for name, payload in (extra or {}).items():
            out.writestr(name, payload)
    return archive


def test_course_layout_at_the_top_of_the_zip(tmp_path):
    images = write_image_folders(tmp_path / "faces", {"sad": 3, "happy": 4}, size=(150, 150))
    split = load_image_folders(HAPPY, zip_folder(tmp_path / "faces", tmp_path / "happy-or-sad.zip"))
    assert split.info["classes"] == ["happy", "sad"] and split.val is split.train
    x, y = collate(split.train, np.arange(len(split.train)))
    assert split.train.x.dtype == np.uint8 and split.train.x.shape == (7, 150, 150, 3)
    assert y.dtype == np.float32 and y[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 1]  # classes sorted, then file names
    expected = np.stack(images["happy"] + images["sad"])  # already 150x150: stored exactly, no resampling
    assert np.array_equal(split.train.x, expected)
    assert x.tobytes() == (expected.astype(np.float32) * np.float32(1 / 255)).tobytes()
    assert split.location == str(tmp_path / "happy-or-sad.zip")


def test_nested_class_folders_are_found_and_junk_beside_them_ignored(tmp_path):
    write_image_folders(tmp_path / "faces", {"happy": 2, "sad": 2}, size=(150, 150))
    junk = {"README.txt": b"course data", "Files/data/.DS_Store": b"x",
            "__MACOSX/Files/data/happy/._happy-00.png": b"resource fork", "Files/notes/a.txt": b"not images"}
    archive = zip_folder(tmp_path / "faces", tmp_path / "happy-or-sad.zip", prefix="Files/data/", extra=junk)
    split = load_image_folders(HAPPY, archive)
    assert split.info["classes"] == ["happy", "sad"] and len(split.train) == 4


def test_train_and_validation_sets_in_one_zip_as_cats_and_dogs_filtered(tmp_path):
    write_image_folders(tmp_path / "c" / "train", {"cats": 3, "dogs": 2}, seed=1)
    write_image_folders(tmp_path / "c" / "validation", {"cats": 1, "dogs": 2}, seed=2)
    archive = zip_folder(tmp_path / "c", tmp_path / "cats_and_dogs_filtered.zip", prefix="cats_and_dogs_filtered/",
                         extra={"cats_and_dogs_filtered/vectorize.py": b"print()"})
    split = load_image_folders(CATS, archive)
    assert (len(split.train), split.val_size) == (5, 3)
    assert split.train.y[:, 0].tolist() == [0, 0, 0, 1, 1] and split.val.y[:, 0].tolist() == [0, 1, 1]
    # The same folders unzipped, given as the data directory, load the same pixels.
    unzipped = load_image_folders(CATS, tmp_path / "c")
    assert np.array_equal(unzipped.val.x, split.val.x) and unzipped.location == str(tmp_path / "c")


def test_a_single_set_for_a_model_that_validates_on_a_validation_set_is_refused(tmp_path):
    write_image_folders(tmp_path / "mine", {"cats": 1, "dogs": 1})
    with pytest.raises(DataError, match=r"validates on a 'validation' set.*train/ and validation/"):
        load_image_folders(CATS, tmp_path / "mine")


@pytest.mark.parametrize(
    "member", ["/etc/evil.png", "happy/../../evil.png", "C:/evil.png", "link.png"], ids=["absolute", "dotdot", "drive", "symlink"]
)
def test_unsafe_archive_members_make_the_archive_refused(tmp_path, member):
    write_image_folders(tmp_path / "faces", {"happy": 1, "sad": 1})
    archive = zip_folder(tmp_path / "faces", tmp_path / "bad.zip")
    with zipfile.ZipFile(archive, "a") as out:
        info = zipfile.ZipInfo(member)
        if member == "link.png":
            info.external_attr = 0o120777 << 16  # a symlink, as `zip --symlinks` stores it
        out.writestr(info, b"/etc/passwd")
    with pytest.raises(DataError, match=rf"bad\.zip: unsafe archive member '{member}'"):
        load_image_folders(HAPPY, archive)


def test_unreadable_and_non_image_files_are_skipped_with_a_warning_naming_them(tmp_path):
    write_image_folders(tmp_path / "faces", {"happy": 2, "sad": 2}, size=(150, 150))
    (tmp_path / "faces" / "sad" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "faces" / "happy" / "notes.txt").write_text("a note")
    for attempt in ("decoded", "cached"):
        with pytest.warns(DataWarning) as warned:
            split = load_image_folders(HAPPY, tmp_path / "faces")
        messages = sorted(str(w.message) for w in warned)
        assert len(messages) == 2, attempt
        assert messages[0].startswith(str(tmp_path / "faces" / "happy" / "notes.txt") + ": not a readable image")
        assert messages[1].startswith(str(tmp_path / "faces" / "sad" / "broken.jpg") + ": not a readable image")
        assert split.train.y[:, 0].tolist() == [0, 0, 1, 1] and split.info["train_files"] == 6


def test_an_empty_class_folder_is_an_error_naming_it(tmp_path):
    write_image_folders(tmp_path / "faces", {"happy": 2}, size=(150, 150))
    (tmp_path / "faces" / "sad").mkdir()
    with pytest.raises(DataError, match=rf"{tmp_path / 'faces'}:sad: empty class folder"):
        load_image_folders(HAPPY, tmp_path / "faces")
    (tmp_path / "faces" / "sad" / "broken.png").write_bytes(b"not a png")
    with pytest.warns(DataWarning), pytest.raises(DataError, match=r":sad: no readable image in this class folder"):
        load_image_folders(HAPPY, tmp_path / "faces")
    (tmp_path / "faces" / "sad" / "broken.png").unlink()
    archive = zip_folder(tmp_path / "faces", tmp_path / "empty.zip", extra={"happy/": b"", "sad/": b""})
    with pytest.raises(DataError, match=r"empty\.zip:sad: empty class folder"):
        load_image_folders(HAPPY, archive)


def test_the_number_of_class_folders_must_fit_the_model(tmp_path):
    write_image_folders(tmp_path / "faces", {"happy": 1, "sad": 1, "angry": 1})
    with pytest.raises(DataError, match=r"3 class folders \(angry, happy, sad\), but c1w4_happy_sad has 2 classes"):
        load_image_folders(HAPPY, tmp_path / "faces")


def test_rgba_palette_and_grey_images_become_rgb_and_other_sizes_are_resized_bilinear(tmp_path):
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (150, 150, 4), dtype=np.uint8)
    grey = rng.integers(0, 256, (150, 150), dtype=np.uint8)
    small = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    palette = Image.fromarray(small[:150, :150]).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    folder = tmp_path / "faces"
    for name, image in (("happy/a.png", Image.fromarray(rgba)), ("happy/b.png", Image.fromarray(grey)),
                        ("sad/c.png", palette), ("sad/d.png", Image.fromarray(small))):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(folder / name)
    pixels = load_image_folders(HAPPY, folder).train.x
    assert np.array_equal(pixels[0], rgba[..., :3])  # alpha dropped, not composited
    assert np.array_equal(pixels[1], np.repeat(grey[..., None], 3, axis=2))
    bilinear = Image.Resampling.BILINEAR
    assert np.array_equal(pixels[2], np.asarray(palette.convert("RGB").resize((150, 150), bilinear)))
    assert np.array_equal(pixels[3], np.asarray(Image.fromarray(small).resize((150, 150), bilinear)))
    # grayscale colour mode: Pillow's luma, one channel
    grey_spec = dataclasses.replace(HAPPY, input_shape=(150, 150, 1),
                                    data=dataclasses.replace(HAPPY.data, color_mode="grayscale"))
    grey_pixels = load_image_folders(grey_spec, folder).train.x
    assert grey_pixels.shape == (4, 150, 150, 1)
    assert np.array_equal(grey_pixels[0, ..., 0], np.asarray(Image.fromarray(rgba).convert("L")))


def test_the_decode_cache_is_keyed_by_content_and_reused(tmp_path, monkeypatch):
    write_image_folders(tmp_path / "faces", {"happy": 2, "sad": 2}, size=(150, 150))
    first = load_image_folders(HAPPY, tmp_path / "faces")
    entry = Path(first.train.x.filename).parent
    assert entry.parent == decoded_root() and [p.name for p in decoded_root().iterdir()] == [entry.name]  # no leftovers
    calls = []
    with monkeypatch.context() as patch:
        patch.setattr(decode, "decode_one", lambda *args: calls.append(args) or np.zeros((150, 150, 3), np.uint8))
        shutil.copytree(tmp_path / "faces", tmp_path / "renamed copy")
        again = load_image_folders(HAPPY, tmp_path / "renamed copy")
        assert calls == [] and Path(again.train.x.filename).parent == entry  # same bytes: the same entry, no decoding
        Image.fromarray(np.zeros((150, 150, 3), np.uint8)).save(tmp_path / "renamed copy" / "sad" / "sad-00.png")
        load_image_folders(HAPPY, tmp_path / "renamed copy")
        assert len(calls) == 4 and len(list(decoded_root().iterdir())) == 2  # one changed file: a new entry
    other_size = dataclasses.replace(HAPPY, input_shape=(75, 75, 3),
                                     data=dataclasses.replace(HAPPY.data, image_size=(75, 75)))
    assert load_image_folders(other_size, tmp_path / "faces").train.x.shape == (4, 75, 75, 3)
    assert len(list(decoded_root().iterdir())) == 3


def test_real_happy_or_sad_zip_nested_rgba(shared_data):
    split = load_dataset(HAPPY, shared_data / "happy-or-sad")
    assert split.location == str(shared_data / "happy-or-sad" / "happy-or-sad.zip")
    assert split.info["classes"] == ["happy", "sad"] and split.val is split.train
    assert split.train.x.shape == (80, 150, 150, 3) and split.train.x.dtype == np.uint8
    assert np.bincount(split.train.y[:, 0].astype(int)).tolist() == [40, 40]
    with zipfile.ZipFile(shared_data / "happy-or-sad" / "happy-or-sad.zip") as archive:
        first = np.asarray(Image.open(io.BytesIO(archive.read("Files/data/happy/happy1-00.png"))))
    assert first.shape == (150, 150, 4) and np.array_equal(split.train.x[0], first[..., :3])


def test_parity_data_dir_finds_cats_and_dogs_under_the_shared_folder_name(shared_data, monkeypatch):
    monkeypatch.setenv("PARITY_DATA_DIR", str(shared_data))
    assert local_directory(spec_source(CATS, ("train",)))[0] == shared_data / "cats_and_dogs_filtered"



def test_download_from_the_spec_url_is_checked_for_structure_and_cached(served, tmp_path, monkeypatch):
    root, url = served
    write_image_folders(tmp_path / "faces", {"happy": 2, "sad": 1}, size=(150, 150))
    zip_folder(tmp_path / "faces", root / "happy-or-sad.zip")
    (root / "broken").mkdir()
    (root / "broken" / "happy-or-sad.zip").write_text("<html>not found</html>")
    monkeypatch.delenv("PARITY_OFFLINE")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))

    def pointed_at(base: str):
        return dataclasses.replace(HAPPY, data=dataclasses.replace(HAPPY.data, urls={"train": base + "happy-or-sad.zip"}))

    with pytest.raises(DataError, match=r"downloaded file rejected.*not a readable zip archive"):
        load_dataset(pointed_at(url + "broken/"))
    assert not (tmp_path / "cache" / "happy-or-sad" / "happy-or-sad.zip").exists()
    split = load_dataset(pointed_at(url))
    assert len(split.train) == 3 and split.location == str(tmp_path / "cache" / "happy-or-sad" / "happy-or-sad.zip")
    monkeypatch.setenv("PARITY_OFFLINE", "1")
    assert len(load_dataset(pointed_at(url + "gone/")).train) == 3  # the cached download serves offline


def test_offline_without_data_names_the_course_url(tmp_path):
    with pytest.raises(DataError) as error:
        load_dataset(CATS)
    message = str(error.value)
    assert "cats_and_dogs_filtered.zip" in message and "https://storage.googleapis.com/mledu-datasets/" in message
    assert "PARITY_OFFLINE=1" in message and "--data-dir" in message


def test_training_and_validation_sets_must_have_the_same_classes(tmp_path):
    write_image_folders(tmp_path / "c" / "train", {"cats": 1, "dogs": 1})
    write_image_folders(tmp_path / "c" / "validation", {"cats": 1, "foxes": 1})
    with pytest.raises(DataError, match=r"c:validation: class folders cats, foxes, the training set .*c:train has cats, dogs"):
        load_image_folders(CATS, tmp_path / "c")
