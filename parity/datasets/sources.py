"""Where each downloadable course data set lives upstream: file names, mirror URLs, checksums.

`SOURCES` lists the data sets with known mirrors and checksums; `spec_source` builds the source
of a data set from the course URLs in its spec (`spec.data.urls`), with no checksum known.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping
from urllib.parse import urlparse

from parity.catalog import ModelSpec


@dataclass(frozen=True)
class Source:
    """One data set's files, the base URLs to try in order, and each file's pooch `known_hash`.

    `local_names` are the folder names the data set may have under PARITY_DATA_DIR (default: its id).
    """

    dataset_id: str
    mirrors: tuple[str, ...]
    hashes: Mapping[str, str | None]
    local_names: tuple[str, ...] = ()

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
LOCAL_NAMES: Mapping[str, tuple[str, ...]] = MappingProxyType({"cats-and-dogs-filtered": ("cats_and_dogs_filtered",)})


def spec_source(spec: ModelSpec, roles: tuple[str, ...]) -> Source:
    """The source of `spec.dataset` from the course URLs of `roles` in `spec.data.urls` (e.g. "train", "data").

    The course files' sha256 are not known (course zips and CSVs are re-packed between course
    versions), so `known_hash` is None: each loader checks the structure of a download instead,
    as the sarcasm loader does. All URLs of one source must share a base URL.
    """
    urls = spec.data.urls or {}
    chosen = [urls[role] for role in roles if role in urls]
    if not chosen:
        raise ValueError(f"{spec.id}: spec.data.urls has none of the roles {roles}")
    bases = {url.rsplit("/", 1)[0] + "/" for url in chosen}
    if len(bases) != 1:
        raise ValueError(f"{spec.id}: the course URLs of {roles} do not share one base URL: {sorted(bases)}")
    names = [urlparse(url).path.rsplit("/", 1)[-1] for url in chosen]
    return Source(spec.dataset, mirrors=tuple(bases), hashes={name: None for name in names},
                  local_names=LOCAL_NAMES.get(spec.dataset, ()))
