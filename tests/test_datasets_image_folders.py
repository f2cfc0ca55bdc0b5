"""Class-per-folder image sets: layouts, safe archives, skipped and empty files, colour, resizing, the decode cache;
the issue 9 sets (course zip names, Keras' validation_split, the C2W3 test part, inception scaling, downloads)."""

import dataclasses
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from image_helpers import truncated_jpeg, write_files, write_image_folders
from parity.cache import sha256_file
from parity.catalog import ModelSpec, get_spec
from parity.datasets import decode, load_dataset, sources
from parity.datasets.decode import DataWarning, decoded_root
from parity.datasets.image_folder import load_image_folders
from parity.datasets.locate import local_directory
from parity.datasets.sources import Published, spec_source
from parity.datasets.split import course_test_split, keras_validation_split
from parity.datasets.store import PixelScale, SampleSource, load_sources, save_sources
from parity.errors import DataError
from parity.plan import collate

HAPPY = get_spec("c1w4_happy_sad")  # binary, validation on the training set, 150x150 rgb, rescale 1/255
CATS = get_spec("c2w1_cats_dogs_cnn")  # binary, train/ and validation/ sets


def zip_folder(folder: Path, archive: Path, prefix: str = "", extra: dict[str, bytes] | None = None) -> Path:
    """Zip every file under `folder` as prefix + relative path, plus `extra` members (name -> bytes)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
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


# ---------------------------------------------------------------------------- the issue 9 sets


def shrunk(model_id: str, size: int = 16, **data_changes) -> ModelSpec:
    """The model's spec with images of size x size (quick to decode), other data settings changed as given."""
    spec = get_spec(model_id)
    data = dataclasses.replace(spec.data, image_size=(size, size), **data_changes)
    return dataclasses.replace(spec, input_shape=(size, size, spec.input_shape[2]), data=data)


def keras_order(root: Path, classes: list[str]) -> list[str]:
    """'class/name' of each file Keras' index_directory lists: class by class, sorted names, its extensions only."""
    return [f"{name}/{path.name}" for name in classes for path in sorted((root / name).iterdir(), key=lambda p: p.name)
            if path.suffix.lower() in (".bmp", ".gif", ".jpeg", ".jpg", ".png")]


def test_horse_or_human_course_zips_and_their_unpacked_folders(tmp_path):
    spec = shrunk("c1w4_horse_human_150")
    train = write_image_folders(tmp_path / "t", {"horses": 3, "humans": 2}, size=(16, 16), seed=1)
    val = write_image_folders(tmp_path / "v", {"humans": 1, "horses": 2}, size=(16, 16), seed=2)
    zip_folder(tmp_path / "t", tmp_path / "zips" / "horse-or-human.zip")  # horses/, humans/ at the top, as the course's
    zip_folder(tmp_path / "v", tmp_path / "zips" / "validation-horse-or-human.zip")
    shutil.copytree(tmp_path / "t", tmp_path / "unpacked" / "horse-or-human")  # the course's unzip folders
    shutil.copytree(tmp_path / "v", tmp_path / "unpacked" / "validation-horse-or-human")
    for folder in ("zips", "unpacked"):
        split = load_dataset(spec, tmp_path / folder)
        assert split.info["classes"] == ["horses", "humans"] and (len(split.train), split.val_size) == (5, 3)
        assert split.train.y.dtype == np.float32 and split.train.y[:, 0].tolist() == [0, 0, 0, 1, 1]
        assert np.array_equal(split.val.x, np.stack(val["horses"] + val["humans"])) and split.val.y.shape == (3, 1)
        assert np.array_equal(split.train.x[3], train["humans"][0])
    assert split.location == str(tmp_path / "unpacked")
    with pytest.raises(DataError, match=r"horse-or-human\.zip, validation-horse-or-human\.zip"):
        load_dataset(spec, tmp_path / "t")  # one set only: the message names the course's zips


def test_rock_paper_scissors_zips_categorical_labels_in_class_names_order(tmp_path):
    counts = {"paper": 2, "rock": 1, "scissors": 3}
    write_image_folders(tmp_path / "t", counts, size=(16, 16), seed=3)
    write_image_folders(tmp_path / "v", {"rock": 1, "paper": 1, "scissors": 1}, size=(16, 16), seed=4)
    zip_folder(tmp_path / "t", tmp_path / "zips" / "rps.zip", prefix="rps/")
    zip_folder(tmp_path / "v", tmp_path / "zips" / "rps-test-set.zip", prefix="rps-test-set/")
    split = load_dataset(shrunk("c2w4_rps_cnn"), tmp_path / "zips")
    assert split.info["classes"] == ["paper", "rock", "scissors"] and split.val_size == 3
    assert split.train.y.dtype == np.float32
    assert split.train.y.tolist() == [[1, 0, 0]] * 2 + [[0, 1, 0]] + [[0, 0, 1]] * 3
    reordered = load_dataset(shrunk("c2w4_rps_cnn", class_names=("scissors", "rock", "paper")), tmp_path / "zips")
    assert reordered.train.y.argmax(axis=1).tolist() == [0, 0, 0, 1, 2, 2]  # spec.data.class_names gives the order
    (tmp_path / "zips" / "rps-test-set.zip").unlink()
    (tmp_path / "v" / "rock" / "rock-00.png").unlink()
    zip_folder(tmp_path / "v", tmp_path / "zips" / "rps-test-set.zip", prefix="rps-test-set/",
               extra={"rps-test-set/rock/": b""})
    with pytest.raises(DataError, match=r"rps-test-set\.zip:rps-test-set/rock: empty class folder"):
        load_dataset(shrunk("c2w4_rps_cnn"), tmp_path / "zips")


def test_train_and_test_folders_validate_on_test_with_int_labels_of_the_present_classes(tmp_path):
    letters = [chr(ord("A") + i) for i in range(25) if i != 9]  # v2 sign-language: 24 letter folders
    write_image_folders(tmp_path / "data" / "train", {letter: 1 for letter in letters}, size=(28, 28), mode="L")
    write_image_folders(tmp_path / "data" / "test", {letter: 1 for letter in reversed(letters)}, size=(28, 28),
                        mode="L", seed=5)
    spec = get_spec("c2w4_sign_mnist_cnn")  # validation "validation": a test/ folder serves when there is none
    split = load_image_folders(spec, tmp_path / "data")
    assert split.info["classes"] == letters and split.train.x.shape == (24, 28, 28, 1)
    assert split.train.y.dtype == np.int64 and split.train.y.tolist() == list(range(24)) == split.val.y.tolist()


def test_kaggle_pet_images_split_is_keras_validation_split_of_the_readable_files(tmp_path):
    spec = shrunk("c2w1_cats_dogs_full")  # validation_split 0.1, seed 42
    root = tmp_path / "unpacked" / "PetImages"
    images = write_image_folders(root, {"Cat": 13, "Dog": 11}, size=(16, 16), seed=6)
    write_files(root, {"Cat/666.jpg": b"", "Dog/11702.jpg": truncated_jpeg(), "Dog/Thumbs.db": b"\x00" * 64})
    archive = zip_folder(tmp_path / "unpacked", tmp_path / "kaggle" / "kagglecatsanddogs_3367a.zip",
                         extra={"readme[1].txt": b"Microsoft", "MSR-LA - 3467.docx": b"licence"})
    with pytest.warns(DataWarning) as warned:
        split = load_dataset(spec, tmp_path / "kaggle")
    skipped = sorted(str(w.message).split(": ", 1)[0] for w in warned)
    assert skipped == [f"{archive}:PetImages/{name}" for name in ("Cat/666.jpg", "Dog/11702.jpg", "Dog/Thumbs.db")]
    # Keras' rule, from keras/src/utils/dataset_utils.py, over the readable files: the list shuffled by
    # RandomState(seed), the last int(0.1 * N) validate.
    readable = [path for path in keras_order(root, ["Cat", "Dog"]) if path not in ("Cat/666.jpg", "Dog/11702.jpg")]
    shuffled = list(readable)
    np.random.RandomState(42).shuffle(shuffled)
    val_count = int(0.1 * len(shuffled))
    assert (len(readable), val_count) == (24, 2)
    pixels = {f"{name}/{name}-{i:02d}.png": image for name in images for i, image in enumerate(images[name])}
    assert (len(split.train), split.val_size) == (22, 2)
    assert np.array_equal(split.val.x, np.stack([pixels[path] for path in shuffled[-val_count:]]))
    assert np.array_equal(split.train.x, np.stack([pixels[path] for path in shuffled[:-val_count]]))
    assert split.val.y[:, 0].tolist() == [float(path.startswith("Dog")) for path in shuffled[-val_count:]]
    # The rule is sensitive to what it is applied to: shuffling the list with the unreadable files in it would
    # have picked other validation files.
    with_unreadable = keras_order(root, ["Cat", "Dog"])
    np.random.RandomState(42).shuffle(with_unreadable)
    assert with_unreadable[-val_count:] != shuffled[-val_count:]
    # A smaller set keeps the proportion; one too small for a validation file is refused.
    shutil.rmtree(root / "Dog")
    write_image_folders(root, {"Dog": 2}, size=(16, 16))
    with pytest.warns(DataWarning, match="666.jpg"):
        assert load_dataset(spec, tmp_path / "unpacked").val_size == 1  # 15 readable: int(1.5)
    shutil.rmtree(root / "Cat")
    write_image_folders(root, {"Cat": 1}, size=(16, 16))
    with pytest.raises(DataError, match=r"3 readable images, so validation_split 0.1 leaves 0 for validation.*at least"):
        load_dataset(spec, tmp_path / "unpacked")


def test_inception_horse_human_splits_the_course_test_part_off_validation(tmp_path):
    spec = dataclasses.replace(shrunk("c2w3_inception_horse_human"), batch_size=4)  # 22 files: 6 batches, 6 // 5 = 1
    write_image_folders(tmp_path / "d" / "train", {"horses": 2, "humans": 2}, size=(16, 16), seed=7)
    val = write_image_folders(tmp_path / "d" / "validation", {"horses": 12, "humans": 10}, size=(16, 16), seed=8)
    split = load_dataset(spec, tmp_path / "d")
    # The course: image_dataset_from_directory(shuffle=True, seed=7) lists the files shuffled by RandomState(7);
    # keras.utils.split_dataset(val_ds, val_batches // 5) puts the first batch (4 files) in the test part.
    order = keras_order(tmp_path / "d" / "validation", ["horses", "humans"])
    np.random.RandomState(7).shuffle(order)
    pixels = {f"{name}/{name}-{i:02d}.png": image for name in val for i, image in enumerate(val[name])}
    assert split.info["test_size"] == 4 and split.val_size == 18
    assert np.array_equal(split.val.x, np.stack([pixels[path] for path in order[4:]]))
    assert split.train.scale == PixelScale(127.5, divide=True, offset=-1.0)  # inception_v3.preprocess_input
    assert collate(split.val, np.arange(1))[0].min() >= -1.0


def test_inception_v3_pixel_scale_is_keras_preprocess_input_bit_for_bit():
    pixels = np.arange(256, dtype=np.uint8)
    scaled = PixelScale(127.5, divide=True, offset=-1.0).apply(pixels)
    keras = pixels.astype(np.float32)
    keras /= np.float32(127.5)  # imagenet_utils mode "tf": x /= 127.5; x -= 1.0, in float32
    keras -= np.float32(1.0)
    assert scaled.dtype == np.float32 and scaled.tobytes() == keras.tobytes()
    assert (scaled[0], scaled[255]) == (-1.0, 1.0)
    # A planted change of the op order (multiply by the float32 reciprocal) is caught: it differs in some values.
    planted = pixels.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0)
    assert planted.tobytes() != keras.tobytes()
    # Scales without an offset keep their values, and the offset survives a data directory's manifest.
    assert PixelScale(1 / 255).apply(pixels).tobytes() == (pixels.astype(np.float32) * np.float32(1 / 255)).tobytes()


def test_a_pixel_scale_with_an_offset_survives_the_data_directory(tmp_path):
    scale = PixelScale(127.5, divide=True, offset=-1.0)
    source = SampleSource(np.zeros((2, 4, 4, 3), np.uint8), np.zeros((2, 1), np.float32), scale=scale)
    assert load_sources(save_sources(tmp_path / "data", source, None)).train.scale == scale


def test_synthetic_stand_ins_of_the_vision_sets():
    for model_id, classes in (("c1w4_horse_human_300", 2), ("c2w1_cats_dogs_full", 2), ("c2w4_rps_cnn", 3)):
        split = load_dataset(get_spec(model_id), synthetic=True)
        assert split.train.x.shape[1:] == get_spec(model_id).input_shape and split.train.x.dtype == np.uint8
        labels = split.train.y.argmax(axis=1) if classes > 2 else split.train.y[:, 0]
        assert sorted(set(labels.tolist())) == list(range(classes)) and split.val_size > 0
    assert load_dataset(get_spec("c2w3_inception_cats_dogs"), synthetic=True).train.scale.offset == -1.0


def test_a_course_file_with_a_published_checksum_falls_back_to_the_mirror_it_belongs_to(served, tmp_path, monkeypatch):
    root, url = served
    write_image_folders(tmp_path / "t", {"horses": 1, "humans": 1}, size=(16, 16))
    good = zip_folder(tmp_path / "t", root / "tfds" / "horse-or-human.zip")
    zip_folder(tmp_path / "t", root / "course" / "horse-or-human.zip", extra={"README": b"re-packed"})
    spec = shrunk("c1w4_horse_human_150", urls={"train": url + "course/horse-or-human.zip"})
    spec = dataclasses.replace(spec, validation="train")
    published = {url + "course/horse-or-human.zip": Published(f"sha256:{sha256_file(good)}", mirror=url + "tfds/")}
    monkeypatch.setattr(sources, "PUBLISHED", published)
    monkeypatch.delenv("PARITY_OFFLINE")
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "horse-or-human" / "horse-or-human.zip"
    assert len(load_dataset(spec).train) == 2 and sha256_file(cache) == sha256_file(good)
    # Without a checksum, a known byte size is checked, and a download of another size is not cached.
    cache.unlink()
    monkeypatch.setattr(sources, "PUBLISHED", {url + "course/horse-or-human.zip": Published(size=123)})
    with pytest.raises(DataError, match=r"downloaded file rejected: .* bytes where the course's file has 123"):
        load_dataset(spec)
    assert not cache.exists()


def test_the_course_sources_carry_the_published_checksums_and_sizes():
    horses = spec_source(get_spec("c1w4_horse_human_300"), ("train", "validation", "test"))
    assert horses.mirrors == ("https://storage.googleapis.com/learning-datasets/",
                              "https://storage.googleapis.com/download.tensorflow.org/data/")
    assert horses.hashes["validation-horse-or-human.zip"].startswith("sha256:ae5fff2f")
    pets = spec_source(get_spec("c2w1_cats_dogs_full"), ("train",))
    assert pets.hashes == {"kagglecatsanddogs_3367a.zip":
                           "sha256:f9553e426bd725354ed3a27e3c6920caadb55c835d1ebd880d2e56d3f1fbb22b"}
    assert spec_source(CATS, ("train",)).sizes == {"cats_and_dogs_filtered.zip": 68_606_236}


def test_the_split_sizes_are_the_courses_printed_counts():
    found, training, validation = get_spec("c2w1_cats_dogs_full").data.expected_files  # v2: 22434 / 20191 / 2243
    train_rows, val_rows = keras_validation_split(found, 0.1, 42, "PetImages")
    assert (len(train_rows), len(val_rows)) == (training, validation)
    assert sorted(np.concatenate([train_rows, val_rows]).tolist()) == list(range(found))
    assert [len(part) for part in keras_validation_split(found, 0.15, 42, "PetImages")] == [19069, 3365]  # v2 W2
    test_rows, val_rows = course_test_split(256, 32, 5, 7)  # horse-or-human's 256 validation images, batch 32
    assert (len(test_rows), len(val_rows)) == (32, 224)
