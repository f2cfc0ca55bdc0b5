"""Class-per-folder image sets (happy-or-sad, horse-or-human, cats and dogs, rock-paper-scissors, a user's own),
from zips or folders; docs/image_data.md describes the layouts, the splits and the downloads.

The folder holding the class sub-folders is found wherever it is: at the top of the archive
(the course's happy-or-sad.zip: happy/, sad/), nested (the shared copy: Files/data/happy),
or once per split (cats_and_dogs_filtered.zip: cats_and_dogs_filtered/train/{cats,dogs} and
validation/{cats,dogs}). A split is named by its folder (train/, validation/, test/) or by the
course file it comes from (rps-test-set.zip, or the folder rps-test-set/ it unpacks to: the role
of that URL in spec.data.urls). Classes are the sorted sub-folder names (or `spec.data.class_names`);
files are taken in sorted order, and only the extensions Keras reads (others are skipped with a
warning, as unreadable images are). Hidden files and folders and macOS `__MACOSX` folders are
ignored; other files beside the class folders (a README, a script) too. A zip is read in
place, never extracted; a member with an absolute path, a `..` component or a symlink makes
the whole archive refused, and so does a zip bomb (`ZipLimits`: one member's or all members'
uncompressed size over a limit, or a large member compressed suspiciously well, from the sizes
the archive declares; and a member that inflates to more than the limit while it is read). A
corrupt member is a DataError naming it. Tar archives are not read here. Pixels come from
`parity.datasets.decode` (decoded once, cached; Pillow refuses decompression bombs in pixels).
"""

from __future__ import annotations

import hashlib
import lzma
import os
import stat
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import numpy as np

from parity.cache import cache_root, entry_lock, note, record_sha256, recorded_sha256, sha256_file
from parity.catalog import ModelSpec
from parity.datasets import download
from parity.datasets.decode import DataWarning, ImageFile, decode_images, write_rows
from parity.datasets.locate import cache_dir, local_directory
from parity.datasets.sources import Source, spec_source
from parity.datasets.split import DataSplit, course_test_split, keras_validation_split, make_split
from parity.datasets.store import PixelScale
from parity.errors import DataError
from parity.spec_types import ImageFolderData

# The extensions Keras' image_dataset_from_directory reads; other files in a class folder are skipped with a warning.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
SPLIT_ROLES = ("train", "validation", "test")
VALIDATION_NAMES = {"validation": ("validation", "test"), "test": ("test", "validation")}
# What opening a corrupt zip or reading a corrupt member can raise: a bad CRC or header, a broken
# deflate/bzip2/lzma stream, an unsupported zip version or compression method, an encrypted member,
# a name that is not UTF-8 (ValueError), a truncated file.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, RuntimeError,
              NotImplementedError, ValueError)
# spec.data.preprocess -> the scaling it stands for: Keras' inception_v3.preprocess_input is mode "tf",
# `x /= 127.5; x -= 1.0` on float32 (keras/src/applications/imagenet_utils.py).
PREPROCESS_SCALES = {"inception_v3": PixelScale(127.5, divide=True, offset=-1.0)}
SELECTED = "selected"  # cache folder of the rows a split picks from a decoded set


@dataclass(frozen=True)
class ZipLimits:
    """The most a zip archive may inflate to before it is refused as a zip bomb.

    The course's image zips hold members of at most 93 KB, 68.6 MB in all, stored at a ratio of
    about 1.0 (JPEG and PNG do not compress further); a Pillow-readable image is at most about
    2 x 89.5 M pixels (Image.MAX_IMAGE_PIXELS), so a larger member is no image anyway. The ratio
    limit is Apache POI's (its ZipSecureFile: minimum inflate ratio 0.01) for members over 1 MiB,
    where a highly compressible small file (a flat BMP) is harmless.
    """

    member_bytes: int = 256 * 2**20  # one member's uncompressed size, declared and as read
    total_bytes: int = 16 * 2**30  # all members' declared uncompressed sizes together
    ratio: float = 100.0  # uncompressed / compressed size of one member ...
    ratio_from_bytes: int = 2**20  # ... checked for members larger than this


ZIP_LIMITS = ZipLimits()


@dataclass(frozen=True)
class Tree:
    """The files (relative posix path, file) and folders (relative posix paths) of a zip or a directory."""

    origin: str
    files: list[tuple[str, ImageFile]]
    folders: list[str]


@dataclass(frozen=True)
class ClassFolders:
    """One set of class folders: `root` (a path inside `origin`), sorted class names, each class's files."""

    origin: str
    root: str
    classes: dict[str, list[ImageFile]]

    def where(self, name: str = "") -> str:
        """`origin:root/name`, for messages."""
        return f"{self.origin}:{'/'.join(part for part in (self.root, name) if part) or '/'}"


@dataclass(frozen=True)
class DecodedSet:
    """One set's readable images in (class, file name) order: uint8 pixels (a memory map of decoded-image cache
    entry `cache`) and class ids; `files` counts the image files read, readable or not."""

    pixels: np.ndarray
    ids: np.ndarray
    files: int
    cache: Path

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.pixels, self.ids

    def rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pixels, ids) of `rows`, in that order; the pixels memory-mapped from the cache (`selected_rows`)."""
        return selected_rows(self.pixels, rows, self.cache), self.ids[rows]


def load_image_folders(spec: ModelSpec, data_dir: str | os.PathLike | None,
                       zip_limits: ZipLimits = ZIP_LIMITS) -> DataSplit:
    """The spec's training and validation images: uint8 pixels, scaled per batch by `pixel_scale(spec.data)`.

    Reads `data_dir` (the course zip(s), or folders of class folders), else the data set's
    folder under PARITY_DATA_DIR, else the download cache (filled from spec.data.urls; a data set
    without course URLs is read from local folders only). A zip that would inflate beyond
    `zip_limits` is refused. spec.validation: "validation"/"test" a set of its own, less the
    course's test part when spec.data.test_from_validation_batches is set (its size in
    info["test_size"]); "split" Keras' validation_split of the readable training files; "train"
    the training set itself; "none" no validation.
    """
    source = spec_source(spec, SPLIT_ROLES) if spec.data.urls else Source(spec.dataset, mirrors=(), hashes={})
    sets, location = _find_sets(spec, source, data_dir, zip_limits)
    train = _pick(sets, "train", spec, location)
    classes = _class_names(spec, train)
    train_images = _decode(spec, train, classes)
    train_arrays = train_images.arrays
    info = {"classes": classes, "train_files": train_images.files, "files": files_read([train], classes)}
    if spec.validation == "train":
        val_arrays = train_arrays
    elif spec.validation == "split":
        train_arrays, val_arrays = _split_off_validation(spec, train_images, train.where(), info)
    elif spec.validation in VALIDATION_NAMES:
        val = next((sets[name] for name in VALIDATION_NAMES[spec.validation] if name in sets), None)
        if val is None:
            raise DataError(
                f"{location}: {spec.id} validates on a {spec.validation!r} set of class folders, found only "
                f"{', '.join(sorted(sets))}; give a folder with train/ and {spec.validation}/ (each of class folders) "
                f"or the course's {'zips' if len(source.files) > 1 else 'zip'} ({', '.join(source.files)})"
            )
        _same_classes(train, val, classes)
        val_images = _decode(spec, val, classes)
        val_arrays, info["val_files"] = val_images.arrays, val_images.files
        info["files"] = files_read([train, val], classes)
        if spec.data.test_from_validation_batches:
            val_arrays = _split_off_test(spec, val_images, info)
    elif spec.validation == "none":
        val_arrays = None
    else:
        raise DataError(f"{spec.id}: validation {spec.validation!r} is not implemented for image folders "
                        "(implemented: train, split, validation, test, none)")
    return make_split(spec, "real", train_arrays, val_arrays, location, info, scale=pixel_scale(spec.data))


def pixel_scale(data: ImageFolderData) -> PixelScale:
    """How the set's uint8 pixels become the model's float32 inputs: `data.preprocess` (a Keras application's
    preprocess_input), else pixels * `data.rescale`."""
    if data.preprocess is None:
        return PixelScale(data.rescale)
    if data.preprocess not in PREPROCESS_SCALES:
        raise DataError(f"preprocess {data.preprocess!r} is not implemented (implemented: "
                        f"{', '.join(PREPROCESS_SCALES)}); leave it out to scale pixels by `rescale`")
    return PREPROCESS_SCALES[data.preprocess]


def _split_off_validation(spec: ModelSpec, images: DecodedSet, where: str,
                          info: dict) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Keras' `image_dataset_from_directory(validation_split, subset, seed)` over the readable files (the course
    removes unreadable ones first): (training, validation) arrays, each in Keras' shuffled order."""
    data = spec.data
    if data.validation_split is None or data.split_seed is None:
        raise DataError(f"{spec.id}: validation 'split' needs spec.data.validation_split and split_seed "
                        f"(got {data.validation_split}, {data.split_seed}); set both in the spec")
    train_rows, val_rows = keras_validation_split(len(images.ids), data.validation_split, data.split_seed, where)
    info.update(readable_files=len(images.ids), validation_split=data.validation_split, split_seed=data.split_seed,
                val_files=len(val_rows))
    return images.rows(train_rows), images.rows(val_rows)


def _split_off_test(spec: ModelSpec, images: DecodedSet, info: dict) -> tuple[np.ndarray, np.ndarray]:
    """The validation arrays less the course's test part (`course_test_split`), whose size goes to info."""
    test_rows, val_rows = course_test_split(len(images.ids), spec.batch_size, spec.data.test_from_validation_batches,
                                            spec.data.shuffle_seed)
    info.update(test_size=len(test_rows), test_from_validation_batches=spec.data.test_from_validation_batches)
    return images.rows(val_rows)


def selected_rows(pixels: np.ndarray, rows: np.ndarray, entry: Path) -> np.ndarray:
    """pixels[rows] of decoded-image cache entry `entry` as a read-only memory map of a cache file,
    $PARITY_CACHE_DIR/selected/<key>.npy (key: the entry and the rows), written once, in chunks (a large
    split is never held in memory whole), renamed into place, its sha256 recorded and checked before use."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    key = hashlib.sha256(entry.name.encode() + rows.tobytes()).hexdigest()
    path = cache_root() / SELECTED / f"{key}.npy"
    with entry_lock(f"{SELECTED}-{key}"):
        if path.is_file():
            if recorded_sha256(path) == sha256_file(path):
                return np.load(path, mmap_mode="r")
            note(f"parity: the cached selection {path} fails its sha256 check; writing it again")
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{key}-{os.getpid()}.npy")
        write_rows(pixels, rows, temporary)
        os.replace(temporary, path)
        record_sha256(path)
    return np.load(path, mmap_mode="r")


def _find_sets(spec: ModelSpec, source: Source, data_dir: str | os.PathLike | None,
               limits: ZipLimits) -> tuple[dict[str, ClassFolders], str]:
    """The sets of class folders by split role, and the location they were read from."""
    local, looked = local_directory(source, data_dir)
    roles = _course_roles(spec)
    if local is not None and local.is_file():
        return _sets_by_role(_read_zip(local, limits), roles.get(local.name, "train"), roles), str(local)
    if local is not None:
        if not local.is_dir():
            raise DataError(f"{spec.dataset}: data directory {local} does not exist; it should hold "
                            f"{', '.join(source.files) or 'train/ and validation/'} or folders of class folders")
        archives = {name: local / name for name in source.files if (local / name).is_file()}
        if not archives:
            return _sets_by_role(_read_folder_or_hint(local, source), "train", roles), str(local)
    elif not source.files:
        raise DataError(f"{spec.dataset}: no data found (looked in {', '.join(looked) or 'no place'}) and no course "
                        "URL to download from; pass --data-dir DIR (folders train/ and validation/ of class folders)")
    else:
        archives = download.fetch(source, cache_dir(source.dataset_id), looked,
                                  lambda path: _check_download(path, limits, source.sizes.get(path.name)))
        local = cache_dir(source.dataset_id)
    sets: dict[str, ClassFolders] = {}
    for name, path in archives.items():
        sets.update(_sets_by_role(_read_zip(path, limits), roles.get(name, "train"), roles))
    return sets, str(local if len(archives) > 1 else next(iter(archives.values())))


def _course_roles(spec: ModelSpec) -> dict[str, str]:
    """The split role of each course file of spec.data.urls, by its file name and by the folder it unpacks to
    (the name without .zip): {"rps.zip": "train", "rps": "train", "rps-test-set.zip": "validation", ...}."""
    roles = {}
    for role, url in (spec.data.urls or {}).items():
        if role in SPLIT_ROLES:
            name = PurePosixPath(urlparse(url).path).name
            roles[name] = roles[name.removesuffix(".zip")] = role
    return roles


def _sets_by_role(tree: Tree, role: str, course_roles: dict[str, str]) -> dict[str, ClassFolders]:
    """One set is the file's `role`; several are named by their folder: train/, validation/, test/, or the
    folder a course file unpacks to (validation-horse-or-human/, rps-test-set/)."""
    sets = class_folders(tree)
    if len(sets) == 1:
        return {role: sets[0]}
    by_role: dict[str, ClassFolders] = {}
    for folders in sets:
        name = PurePosixPath(folders.root).name
        set_role = name if name in SPLIT_ROLES else course_roles.get(name)
        if set_role is None or set_role in by_role:
            course = sorted(name for name in course_roles if not name.endswith(".zip"))
            raise DataError(
                f"{tree.origin}: class folders under several folders "
                f"({', '.join(folders.root or '/' for folders in sets)}); name each set {', '.join(SPLIT_ROLES)}"
                f"{' or as the course does (' + ', '.join(course) + ')' if course else ''}, one folder per set"
            )
        by_role[set_role] = folders
    return by_role


def class_folders(tree: Tree) -> list[ClassFolders]:
    """The sets of class folders in `tree`: the folders whose sub-folders hold image files directly,
    each with all its sub-folders as classes (sorted; an empty one too) and their files (sorted)."""
    origin = tree.origin
    kept = sorted(((PurePosixPath(path), image) for path, image in tree.files if not _ignored(PurePosixPath(path))),
                  key=lambda item: item[0])
    class_dirs = {path.parent for path, _ in kept if path.suffix.lower() in IMAGE_EXTENSIONS and len(path.parts) >= 2}
    roots = sorted({directory.parent for directory in class_dirs})
    if not roots:
        raise DataError(f"{origin}: no class folders of images found (expected e.g. happy/*.png, sad/*.png; "
                        f"image files: {', '.join(IMAGE_EXTENSIONS)})")
    nested = [(a, b) for a in roots for b in roots if a != b and a in b.parents]
    if nested:
        outer, inner = nested[0]
        raise DataError(f"{origin}: images at different depths under {outer or '/'} and {inner}; put each class's "
                        "images directly in its class folder")
    folders = {PurePosixPath(folder) for folder in tree.folders} | {path.parent for path, _ in kept}
    sets = []
    for root in roots:
        classes: dict[str, list[ImageFile]] = {folder.name: [] for folder in folders
                                               if folder.parent == root and not _ignored(folder)}
        for path, image in kept:
            if path.parent.parent == root:
                classes[path.parent.name].append(image)
        sets.append(ClassFolders(origin, "" if str(root) == "." else str(root), dict(sorted(classes.items()))))
    return sets


def _ignored(path: PurePosixPath) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in path.parts)


def _read_zip(path: Path, limits: ZipLimits) -> Tree:
    """The files of a zip archive, read in place; an unsafe member name or a zip bomb makes the archive refused."""
    try:
        archive = zipfile.ZipFile(path)
    except ZIP_ERRORS as error:
        raise DataError(f"{path}: not a readable zip archive ({_one_line(error)}); "
                        "replace it with a complete copy") from None
    files, folders = [], []
    for member in archive.infolist():
        name = member.filename.replace("\\", "/")
        unsafe = (not name or name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in name.split("/")
                  or stat.S_ISLNK(member.external_attr >> 16))
        if unsafe:
            raise DataError(f"{path}: unsafe archive member {member.filename!r} (empty name, absolute path, '..' "
                            "or symlink); refusing the archive")
        if member.is_dir():
            folders.append(name.rstrip("/"))
        else:
            files.append((name, ImageFile(f"{path}:{name}", _zip_reader(path, archive, member, limits))))
    _check_inflation(path, archive.infolist(), limits)
    return Tree(str(path), files, folders)


def _check_inflation(path: Path, members: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    """Refuse the archive when the sizes its members declare exceed `limits`: one member's size or ratio, or
    all members' size or ratio together (many small, well-compressed members)."""
    checks = [(f"member {member.filename!r}", member.file_size, member.compress_size, limits.member_bytes)
              for member in members]
    checks.append(("its members together", sum(member.file_size for member in members),
                   sum(member.compress_size for member in members), limits.total_bytes))
    for what, size, packed, limit in checks:
        if size > limit:
            problem = f"{what} would inflate to {size:,} bytes (limit {limit:,})"
        elif size > limits.ratio_from_bytes and size > limits.ratio * max(packed, 1):
            problem = (f"{what} would inflate {size / max(packed, 1):,.0f}-fold, {packed:,} to {size:,} bytes "
                       f"(limit {limits.ratio:g}-fold)")
        else:
            continue
        raise DataError(f"{path}: refusing a possible zip bomb: {problem}; if the archive is genuine, unpack it "
                        "yourself and pass the folder with --data-dir")


def _zip_reader(path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo,
                limits: ZipLimits) -> Callable[[], bytes]:
    """Reads `member`, at most limits.member_bytes of it: a member that inflates beyond is refused. (zipfile
    itself stops at the size the member declares; one that inflates further fails its CRC check: corrupt.)"""
    def read() -> bytes:
        try:
            with archive.open(member) as stream:
                data = stream.read(limits.member_bytes + 1)
        except ZIP_ERRORS as error:
            raise DataError(f"{path}: corrupt archive member {member.filename!r} ({_one_line(error)}); "
                            "replace the archive with a complete copy") from None
        if len(data) > limits.member_bytes:
            raise DataError(f"{path}: refusing a possible zip bomb: member {member.filename!r} inflates to more "
                            f"than {limits.member_bytes:,} bytes; if the archive is genuine, unpack it yourself "
                            "and pass the folder with --data-dir")
        return data

    return read


def _one_line(error: Exception, limit: int = 200) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_folder_or_hint(directory: Path, source: Source) -> Tree:
    """The folder's tree; a folder of zips not named as the course's files, and no images, is a DataError saying so."""
    tree = _read_folder(directory)
    zips = sorted(name for name, _ in tree.files if "/" not in name and name.lower().endswith(".zip"))
    if zips and not any(PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS for name, _ in tree.files):
        raise DataError(f"{directory}: holds {', '.join(zips)} but not the course's "
                        f"{', '.join(source.files) or 'image folders'}; pass the zip itself as --data-dir, or name it "
                        "as the course does")
    return tree


def _read_folder(directory: Path) -> Tree:
    files, folders = [], []
    for folder, subfolders, names in os.walk(directory):
        folders += [(Path(folder) / name).relative_to(directory).as_posix() for name in subfolders]
        for name in names:
            path = Path(folder) / name
            files.append((path.relative_to(directory).as_posix(), ImageFile(str(path), path.read_bytes)))
    return Tree(str(directory), files, folders)


def _pick(sets: dict[str, ClassFolders], role: str, spec: ModelSpec, location: str) -> ClassFolders:
    if role not in sets:
        raise DataError(f"{location}: no {role!r} set of class folders for {spec.id} (found {', '.join(sorted(sets))})")
    return sets[role]


def _class_names(spec: ModelSpec, folders: ClassFolders) -> list[str]:
    """The classes in label order: spec.data.class_names, else the sorted folder names; checked against the model
    (its classes, or spec.data.present_classes where the course's data holds fewer than the model has outputs)."""
    names = list(spec.data.class_names or folders.classes)
    missing = [name for name in names if name not in folders.classes]
    if missing:
        raise DataError(f"{folders.where()}: no class folder {', '.join(missing)} (found {', '.join(folders.classes)})")
    wanted = spec.data.present_classes or (2 if spec.label_mode == "binary" else spec.classes)
    if len(names) != wanted:
        raise DataError(f"{folders.where()}: {len(names)} class folders ({', '.join(names)}), but {spec.id} "
                        f"has {wanted} classes ({spec.label_mode} labels)")
    return names


def _same_classes(train: ClassFolders, val: ClassFolders, classes: list[str]) -> None:
    missing = [name for name in classes if name not in val.classes]
    extra = [name for name in val.classes if name not in train.classes]
    if missing or extra:
        raise DataError(f"{val.where()}: class folders {', '.join(val.classes)}, the training set {train.where()} has "
                        f"{', '.join(train.classes)}; both need the same classes")


def files_read(sets: list[ClassFolders], classes: list[str]) -> list[str]:
    """The files the sets' images come from, for the data's provenance: the zip archives, or each image file."""
    files = []
    for folders in sets:
        if Path(folders.origin).is_file():
            files.append(folders.origin)
        else:
            files += [image.name for name in classes for image in folders.classes[name]]
    return list(dict.fromkeys(files))


def _decode(spec: ModelSpec, folders: ClassFolders, classes: list[str]) -> DecodedSet:
    """The readable images of one set; an empty class folder is a DataError. Files without an image extension
    Keras reads are skipped with a DataWarning naming them, unreadable images too (`decode_images`)."""
    files, labels, count = [], [], 0
    for label, name in enumerate(classes):
        images, others = [], []
        for image in folders.classes[name]:
            (images if Path(image.name).suffix.lower() in IMAGE_EXTENSIONS else others).append(image)
        if not images:
            raise DataError(f"{folders.where(name)}: empty class folder (no {'/'.join(IMAGE_EXTENSIONS)} files); "
                            "add its images or remove the folder")
        for other in others:
            warnings.warn(f"{other.name}: not a readable image (not a {'/'.join(IMAGE_EXTENSIONS)} file, which "
                          "Keras' image_dataset_from_directory skips too); skipped", DataWarning, stacklevel=3)
        files += images
        labels += [label] * len(images)
        count += len(folders.classes[name])
    decoded = decode_images(files, tuple(spec.data.image_size), spec.data.color_mode)
    ids = np.array(labels, dtype=np.int64)[decoded.kept]
    empty = [name for label, name in enumerate(classes) if not (ids == label).any()]
    if empty:
        raise DataError(f"{folders.where(empty[0])}: no readable image in this class folder; add images or remove it")
    return DecodedSet(decoded.pixels, ids, count, decoded.cache)


def _check_download(path: Path, limits: ZipLimits, size: int | None = None) -> None:
    """The structure check of a download without a published checksum (see sources.py): the byte size where it
    is known, and a safe zip of class folders."""
    if size is not None and path.stat().st_size != size:
        raise DataError(f"{path}: {path.stat().st_size:,} bytes where the course's file has {size:,} (truncated, or "
                        "not the course's file)")
    class_folders(_read_zip(path, limits))
