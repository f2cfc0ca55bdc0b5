"""Where each downloadable course data set lives upstream: file names, mirror URLs, checksums.

`SOURCES` lists the data sets with known mirrors and checksums; `spec_source` builds the source
of a data set from the course URLs in its spec (`spec.data.urls`), with the published checksum,
size and mirror of a course file where one is known (`PUBLISHED`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping
from urllib.parse import urlparse

from parity.catalog import ModelSpec


@dataclass(frozen=True)
class Source:
    """One data set's files, the base URLs to try in order, and each file's pooch `known_hash`.

    `local_names` are the folder names the data set may have under PARITY_DATA_DIR (default: its id).
    `sizes` gives the byte size of a file whose size is known but whose checksum is not (checked by
    the loader's structure check of a download).
    """

    dataset_id: str
    mirrors: tuple[str, ...]
    hashes: Mapping[str, str | None]
    local_names: tuple[str, ...] = ()
    sizes: Mapping[str, int] = field(default_factory=dict)

    @property
    def folders(self) -> tuple[str, ...]:
        """Folder names to look for under PARITY_DATA_DIR, in order: the id, then `local_names`."""
        return (self.dataset_id, *self.local_names)

    @property
    def files(self) -> tuple[str, ...]:
        """The file names, as upstream names them."""
        return tuple(self.hashes)

    def urls(self, name: str) -> list[str]:
        """The download URLs of file `name`, in the order they are tried."""
        return [base + name for base in self.mirrors]


IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

SOURCES: Mapping[str, Source] = MappingProxyType(
    {
        "fashion-mnist": Source(
            "fashion-mnist",
            mirrors=(
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                # Keras' fashion_mnist.load_data() origin; the sha256 check guards it.
                "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
            ),
            hashes={
                "train-images-idx3-ubyte.gz": "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "train-labels-idx1-ubyte.gz": "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "t10k-images-idx3-ubyte.gz": "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "t10k-labels-idx1-ubyte.gz": "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            },
        ),
        "mnist": Source(
            "mnist",
            mirrors=(
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "http://yann.lecun.com/exdb/mnist/",
            ),
            # Upstream publishes md5s of the .gz files.
            hashes={
                "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
                "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
                "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
            },
        ),
        "sarcasm": Source(
            "sarcasm",
            mirrors=(
                "https://storage.googleapis.com/tensorflow-1-public/course3/",
                "https://storage.googleapis.com/learning-datasets/",
            ),
            # The official file's sha256 is unknown (the shared copy is a reconstruction that
            # differs by 3 bytes, see shared/data/MANIFEST.md), so no hash: the loader checks
            # the structure of the downloaded file instead.
            hashes={"sarcasm.json": None},
        ),
        "sunspots": Source(
            "sunspots",
            mirrors=(
                "https://storage.googleapis.com/tensorflow-1-public/course4/",  # v2 (the spec's URL)
                "https://storage.googleapis.com/learning-datasets/",  # v1
            ),
            # The course repository's file (shared/data/MANIFEST.md: 70,827 bytes, the size the v1 download has).
            hashes={"Sunspots.csv": "sha256:0ef4cf0379879a9be0043885d8de1c1907ae852c903a0fcbbc58ba813efb3f10"},
        ),
        "daily-min-temperatures": Source(
            "daily-min-temperatures",
            mirrors=("https://raw.githubusercontent.com/jbrownlee/Datasets/master/",),
            # The shared copy is the course repository's (sha256 8b9de63e...); whether the upstream file above is
            # byte-identical is not known, so no hash: the loader checks a download's rows, values and dates.
            hashes={"daily-min-temperatures.csv": None},
        ),
        # The course's text files below have no published checksum (shared/data/MANIFEST.md: the shared copies
        # come from GitHub), so no hash: each loader checks the structure of a download instead.
        "bbc-text": Source(
            "bbc-text",
            mirrors=("https://storage.googleapis.com/learning-datasets/",),  # the spec's BBC_TEXT_URL
            hashes={"bbc-text.csv": None},
        ),
        "irish-lyrics": Source(
            "irish-lyrics",
            mirrors=(
                "https://storage.googleapis.com/tensorflow-1-public/course3/",  # v2 (the spec's URL)
                "https://storage.googleapis.com/learning-datasets/",  # v1
            ),
            hashes={"irish-lyrics-eof.txt": None},
        ),
        "sonnets": Source(
            "sonnets",
            mirrors=("https://storage.googleapis.com/learning-datasets/",),
            hashes={"sonnets.txt": None},
        ),
        # Both IMDB data sets (imdb-reviews, imdb-subwords) read this one archive, cached once under "imdb". The
        # upstream sha256 is TFDS's (and other loaders'); shared/data's copy lacks train/unsup, so it differs.
        "imdb": Source(
            "imdb",
            mirrors=("https://ai.stanford.edu/~amaas/data/sentiment/",),
            hashes={"aclImdb_v1.tar.gz": "sha256:c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"},
            local_names=("imdb-reviews", "imdb-subwords"),
        ),
    }
)


# Folder names that ../shared/data (and the course's own archive root) give some data sets.
LOCAL_NAMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"cats-and-dogs-filtered": ("cats_and_dogs_filtered",), "kaggle-cats-dogs": ("PetImages",)})


@dataclass(frozen=True)
class Published:
    """What is published about one course file: its checksum (pooch form) or, without one, its byte size; and a
    mirror (base URL) that serves the very file the checksum was published for."""

    known_hash: str | None = None
    size: int | None = None
    mirror: str | None = None


# TensorFlow Datasets publishes sha256 and size of the horse-or-human and rock-paper-scissors zips at
# storage.googleapis.com/download.tensorflow.org/data/ (tensorflow/datasets, tensorflow_datasets/url_checksums/
# horses_or_humans.txt and rock_paper_scissors.txt); the course's copies at learning-datasets/ have the same byte
# sizes (course_models.md 3.8: 149,574,867 and 11,480,187). The checksum is the check for both mirrors: should the
# course's copy differ, it is rejected and the TFDS mirror, the file the checksum belongs to, serves it.
_TFDS_DATA = "https://storage.googleapis.com/download.tensorflow.org/data/"
_COURSE_DATA = "https://storage.googleapis.com/learning-datasets/"
PUBLISHED: Mapping[str, Published] = MappingProxyType({
    _COURSE_DATA + "horse-or-human.zip": Published(
        "sha256:e2e6f70d3d549c5dd10a57165e55af253ee66ad750403f95c0fb76bb943633a9", 149_574_867, _TFDS_DATA),
    _COURSE_DATA + "validation-horse-or-human.zip": Published(
        "sha256:ae5fff2f4f5554791f05358108e2e05d9801b191f1896ea101402f0e7f6c32c0", 11_480_187, _TFDS_DATA),
    _COURSE_DATA + "rps.zip": Published(
        "sha256:c2403444395842ad04c53612bad54b574443eae17a0723117a2ff87b9d72194f", 200_682_221, _TFDS_DATA),
    _COURSE_DATA + "rps-test-set.zip": Published(
        "sha256:c27ab9fa43ce40b2e453de711365b477f4424586edf0388116674fd320f07503", 29_516_758, _TFDS_DATA),
    # The exact course URL, in tensorflow/datasets tensorflow_datasets/url_checksums/cats_vs_dogs.txt.
    "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_3367a.zip":
        Published("sha256:f9553e426bd725354ed3a27e3c6920caadb55c835d1ebd880d2e56d3f1fbb22b", 824_894_548),
    # No published checksum found; the size is course_models.md 4.1's (the download's).
    "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip": Published(size=68_606_236),
})


def spec_source(spec: ModelSpec, roles: tuple[str, ...]) -> Source:
    """The source of `spec.dataset` from the course URLs of `roles` in `spec.data.urls` (e.g. "train", "data").

    A course file in `PUBLISHED` gets its checksum (else its size, for the loader's structure check of
    a download) and its extra mirror; the others (course zips and CSVs re-packed between course
    versions) have `known_hash` None, and each loader checks the structure of a download instead, as
    the sarcasm loader does. All URLs of one source must share a base URL, and so must their mirrors.
    """
    urls = spec.data.urls or {}
    chosen = [urls[role] for role in roles if role in urls]
    if not chosen:
        raise ValueError(f"{spec.id}: spec.data.urls has none of the roles {roles}")
    bases = {url.rsplit("/", 1)[0] + "/" for url in chosen}
    published = [PUBLISHED.get(url, Published()) for url in chosen]
    extra = {known.mirror for known in published}
    if len(bases) != 1 or len(extra) != 1:
        raise ValueError(f"{spec.id}: the course URLs of {roles} do not share one base URL and mirror: {sorted(bases)}")
    names = [urlparse(url).path.rsplit("/", 1)[-1] for url in chosen]
    mirrors = (*bases, *(mirror for mirror in extra if mirror is not None))
    hashes = {name: known.known_hash for name, known in zip(names, published)}
    return Source(spec.dataset, mirrors=mirrors, hashes=hashes,
                  local_names=LOCAL_NAMES.get(spec.dataset, ()),
                  sizes={name: known.size for name, known in zip(names, published)
                         if known.known_hash is None and known.size is not None})
