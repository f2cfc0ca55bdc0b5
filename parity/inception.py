"""InceptionV3 transfer learning, framework-neutral: Keras layer names, the pretrained .h5, per-block comparison.

Keras' `InceptionV3` names its layers automatically (`conv2d`, `conv2d_1`, ..., `batch_normalization_93`),
numbered in creation order within a session; tf_models.transfer builds every InceptionV3 with the
fresh-session ("canonical") names, and the torch trunk (torch_models.transfer)
maps them to torchvision's module names: the i-th conv2d_bn of keras/src/applications/inception_v3.py
is the i-th BasicConv2d torchvision registers (Conv2d_1a_3x3 ... Mixed_6e.branch_pool), a fact the
weight transfer checks by shape and the forward check by value.

The course's weights file is a legacy Keras .h5 (`layer_names` / `weight_names` attributes). Keras
loads it by position: the k-th layer with weights in the file goes to the k-th layer with weights in
`model.layers` (depth-sorted, not creation order). `KERAS_LOAD_ORDER` is that order for the notop
InceptionV3 in canonical names, so `read_notop_h5` gives every array the name Keras gives it without
importing Keras (tests/test_inception.py checks the order against the installed Keras).
Only h5py and numpy are imported, inside the functions that read files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from parity import cache
from parity.catalog import ModelSpec
from parity.errors import DataError
from parity.weights import KerasLayer

NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
# md5 that keras/src/applications/inception_v3.py publishes for this file (keras 3.x get_file file_hash).
NOTOP_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
# Tried in order: the course's copy (spec.layers.weights_url), then keras-team's; the md5 guards both.
KERAS_APPLICATIONS_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
WEIGHTS_DATASET_ID = "inception-v3-notop"
# The spec's `weights` value that stands for the course's file before it is resolved to a local path.
COURSE_WEIGHTS = "imagenet_notop"

# Keras' mixed blocks and their torchvision modules (torchvision.models.inception.Inception3).
MIXED_BLOCKS = {"mixed0": "Mixed_5b", "mixed1": "Mixed_5c", "mixed2": "Mixed_5d", "mixed3": "Mixed_6a",
                "mixed4": "Mixed_6b", "mixed5": "Mixed_6c", "mixed6": "Mixed_6d", "mixed7": "Mixed_6e",
                "mixed8": "Mixed_7a", "mixed9": "Mixed_7b", "mixed10": "Mixed_7c"}

# The layers with weights of InceptionV3(include_top=False) in Keras' model.layers order, as
# c<i> (conv2d_<i>) and b<i> (batch_normalization_<i>) in canonical numbering. Printed from Keras 3.
_LOAD_ORDER_TOKENS = """
c0 b0 c1 b1 c2 b2 c3 b3 c4 b4 c8 b8 c6 c9 b6 b9 c5 c7 c10 c11 b5 b7 b10 b11 c15 b15 c13 c16 b13 b16 c12 c14
c17 c18 b12 b14 b17 b18 c22 b22 c20 c23 b20 b23 c19 c21 c24 c25 b19 b21 b24 b25 c27 b27 c28 b28 c26 c29 b26
b29 c34 b34 c35 b35 c31 c36 b31 b36 c32 c37 b32 b37 c30 c33 c38 c39 b30 b33 b38 b39 c44 b44 c45 b45 c41 c46
b41 b46 c42 c47 b42 b47 c40 c43 c48 c49 b40 b43 b48 b49 c54 b54 c55 b55 c51 c56 b51 b56 c52 c57 b52 b57 c50
c53 c58 c59 b50 b53 b58 b59 c64 b64 c65 b65 c61 c66 b61 b66 c62 c67 b62 b67 c60 c63 c68 c69 b60 b63 b68 b69
c72 b72 c73 b73 c70 c74 b70 b74 c71 c75 b71 b75 c80 b80 c77 c81 b77 b81 c78 c79 c82 c83 c76 b78 b79 b82 b83
c84 b76 b84 c89 b89 c86 c90 b86 b90 c87 c88 c91 c92 c85 b87 b88 b91 b92 c93 b85 b93
"""
_KINDS = {"c": ("conv2d", "Conv2D"), "b": ("batch_normalization", "BatchNormalization")}


def canonical_name(prefix: str, index: int) -> str:
    """Keras' automatic name of the `index`-th layer (from 0) named `prefix` in a fresh session."""
    return prefix if index == 0 else f"{prefix}_{index}"


def _decode(token: str) -> tuple[str, str]:
    prefix, kind = _KINDS[token[0]]
    return canonical_name(prefix, int(token[1:])), kind


KERAS_LOAD_ORDER: tuple[tuple[str, str], ...] = tuple(_decode(token) for token in _LOAD_ORDER_TOKENS.split())

# BatchNormalization channels of the trunk up to each cut (parameter counts: align.torch_extra_parameters).
TRUNK_BATCHNORM_CHANNELS = {"mixed7": 9408}


def weights_file(layers: Any) -> Path | None:
    """The local .h5 the builders load (`layers.weights` resolved to a path), or None for the unresolved
    course name: random initial weights, which the forward check draws anew anyway."""
    if layers.weights == COURSE_WEIGHTS:
        return None
    return _h5_path(Path(layers.weights))


def _h5_path(path: Path) -> Path:
    """`path` if it is an existing .h5 file (Keras' load_weights reads the legacy format by that suffix)."""
    if path.suffix not in (".h5", ".hdf5") or not path.is_file():
        raise DataError(f"InceptionV3 weights {path}: no such .h5 file; pass --weights PATH to the course's "
                        f"{NOTOP_FILE} (legacy Keras .h5)")
    return path


def _attribute(node: Any, name: str) -> list[str]:
    """A legacy Keras h5 string-list attribute (split over `name0`, `name1`... when it was too long)."""
    if name in node.attrs:
        values = list(node.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in node.attrs:
            values += list(node.attrs[f"{name}{chunk}"])
            chunk += 1
    return [value.decode() if isinstance(value, bytes) else str(value) for value in values]


def read_notop_h5(path: Path, trainable: bool = False) -> list[KerasLayer]:
    """Every layer with weights of a notop InceptionV3 legacy .h5, named as Keras' loader pairs them.

    Position k of the file's layers with weights gets the canonical name KERAS_LOAD_ORDER[k] (what
    Keras' `load_weights` does, whatever names the file holds); arrays are keyed by the variable
    name without the layer prefix and `:0` (`kernel`; `beta`, `moving_mean`, `moving_variance`:
    the BatchNormalization layers have scale=False). Raises DataError naming the problem.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
            layers = []
            for name in _attribute(root, "layer_names"):
                weight_names = _attribute(root[name], "weight_names")
                if weight_names:
                    arrays = {w.rsplit("/", 1)[-1].removesuffix(":0"): np.asarray(root[name][w], np.float32)
                              for w in weight_names}
                    layers.append((name, arrays))
    except (OSError, KeyError) as error:
        raise DataError(f"{path}: not a legacy Keras weights .h5 ({error}); pass --weights PATH to the course's "
                        f"{NOTOP_FILE}") from None
    if len(layers) != len(KERAS_LOAD_ORDER):
        raise DataError(f"{path} holds {len(layers)} layers with weights; InceptionV3(include_top=False) has "
                        f"{len(KERAS_LOAD_ORDER)}: pass --weights PATH to the course's {NOTOP_FILE}")
    out = []
    for (file_name, arrays), (name, kind) in zip(layers, KERAS_LOAD_ORDER):
        expected = {"kernel"} if kind == "Conv2D" else {"beta", "moving_mean", "moving_variance"}
        if set(arrays) != expected:
            raise DataError(f"{path}: layer {file_name} holds {sorted(arrays)} where Keras loads {kind} {name} "
                            f"({sorted(expected)}); not InceptionV3 notop weights")
        config = {"scale": False, "center": True} if kind == "BatchNormalization" else {"use_bias": False}
        out.append(KerasLayer(name, kind, arrays, config, trainable))
    return out


def write_notop_h5(path: Path, layers: Sequence[tuple[str, Mapping[str, np.ndarray]]],
                   unweighted: Sequence[str] = ()) -> None:
    """Write (file layer name, {variable: array}) pairs in the legacy Keras layout, in the given order.

    `unweighted` layer names are listed first without weights (as activation and pooling layers
    are in a saved model). Used by tests to stand in for the course's file.
    """
    import h5py

    with h5py.File(path, "w") as f:
        names = [*unweighted, *(name for name, _ in layers)]
        f.attrs["layer_names"] = [name.encode() for name in names]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.6"
        for name in unweighted:
            f.create_group(name).attrs["weight_names"] = np.array([], dtype="S1")
        for name, arrays in layers:
            group = f.create_group(name)
            weight_names = [f"{name}/{variable}:0" for variable in arrays]
            group.attrs["weight_names"] = [w.encode() for w in weight_names]
            for weight_name, array in zip(weight_names, arrays.values()):
                group.create_dataset(weight_name, data=np.asarray(array, np.float32))


def _check_notop(path: Path) -> None:
    read_notop_h5(path)


def weights_source(spec: ModelSpec) -> Any:
    """The download source of the course's notop weights: the course's URL first, then keras-team's."""
    from parity.datasets.sources import Source

    course_base = spec.layers.weights_url.rsplit("/", 1)[0] + "/"
    return Source(WEIGHTS_DATASET_ID, mirrors=(course_base, KERAS_APPLICATIONS_BASE),
                  hashes={NOTOP_FILE: f"md5:{NOTOP_MD5}"})


def resolve_weights(spec: ModelSpec, path: str | None) -> Path:
    """The local .h5 of `spec`'s pretrained trunk: `path` (`--weights`) checked, else the cached or downloaded
    course file (md5-checked; offline or unreachable: a DataError naming --weights). Never random weights:
    a frozen random trunk is not the course's model."""
    if path is not None:
        local = _h5_path(Path(path).expanduser().resolve())
        read_notop_h5(local)
        return local
    from parity.datasets.download import fetch

    source = weights_source(spec)
    try:
        return fetch(source, cache.cache_root() / WEIGHTS_DATASET_ID, [], _check_notop)[NOTOP_FILE]
    except DataError as error:
        raise DataError(f"{spec.id} needs the pretrained InceptionV3 weights: {error}; or pass --weights PATH "
                        f"(the course's {NOTOP_FILE}, from {spec.layers.weights_url})") from None


def weights_overrides(spec: ModelSpec, overrides: Mapping[str, Any], weights: Path | None) -> dict[str, Any]:
    """`overrides` (a job's spec_overrides) with `spec`'s trunk weights file (`trunk_weights`; None: unchanged)."""
    if weights is None:
        return dict(overrides)
    own = dict(overrides.get(spec.id) or {})
    own["layers"] = {**(own.get("layers") or {}), "weights": str(weights)}
    return {**overrides, spec.id: own}


def uses_pretrained_trunk(spec: ModelSpec) -> bool:
    """Whether `spec` is built on the pretrained InceptionV3 trunk (its weights file is resolved before training)."""
    return spec.architecture == "inception_transfer"


# ---------------------------------------------------------------------------- per-block forward comparison

FLOAT32_EPSILON = float(np.finfo(np.float32).eps)


def block_rows(keras_blocks: Mapping[str, np.ndarray], torch_blocks: Mapping[str, np.ndarray]) -> list[dict]:
    """Per block (mixed0..., then `outputs`): max abs diff, the largest |activation|, and the diff in units of
    float32 epsilon times that magnitude (a few dozen units: rounding accumulated over the block's depth)."""
    if list(keras_blocks) != list(torch_blocks):
        raise ValueError(f"blocks differ: Keras {list(keras_blocks)}, torch {list(torch_blocks)}")
    rows = []
    for name, keras_value in keras_blocks.items():
        reference = np.asarray(keras_value, np.float64)
        diff = float(np.max(np.abs(reference - np.asarray(torch_blocks[name], np.float64))))
        scale = float(np.max(np.abs(reference)))
        rows.append({"block": name, "max_abs_diff": diff, "max_abs_activation": scale,
                     "eps_units": diff / (FLOAT32_EPSILON * scale) if scale else 0.0})
    return rows


def format_block_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-block table as aligned text lines."""
    lines = [f"{'block':<8} {'max abs diff':>13} {'max |act|':>10} {'diff / (eps32 * max|act|)':>26}"]
    lines += [f"{row['block']:<8} {row['max_abs_diff']:>13.3e} {row['max_abs_activation']:>10.3g} "
              f"{row['eps_units']:>26.1f}" for row in rows]
    return "\n".join(lines)


def blocks_tag(model_id: str, seed: int) -> str:
    """The tag of a per-block comparison's files (its Keras export under parity.jobs.init_weights_path)."""
    return f"blocks-{model_id}-seed{seed}"


def blocks_path(workdir: Path, framework: str, model_id: str, seed: int) -> Path:
    """Where a `blocks` job writes one framework's per-block outputs."""
    return Path(workdir) / f"{framework}-{blocks_tag(model_id, seed)}.npz"


def measure_blocks(model_id: str, inputs: np.ndarray, seed: int, workers: Any,
                   native: Sequence[str] = ()) -> list[dict]:
    """Per-block forward comparison on random weights: the Keras worker draws every variable (seeded, as the
    forward check does) and saves each mixed block's, the hidden layer's and the output's values; the torch
    worker loads that export (torch side under `native` differences, for planted errors) and does the same.
    `workers`: a parity.jobs.WorkerPool. Returns `block_rows`."""
    from parity import jobs

    with jobs.work_directory("parity-blocks-") as workdir:
        np.save(jobs.probe_inputs_path(workdir, model_id), inputs)
        job = {"kind": "blocks", "models": [model_id], "seed": seed, "native": list(native)}
        for framework in jobs.FRAMEWORKS:  # Keras first: torch loads its export
            workers.run(framework, job, workdir)
        arrays = []
        for framework in jobs.FRAMEWORKS:
            with np.load(blocks_path(workdir, framework, model_id, seed)) as data:
                arrays.append({key: data[key] for key in data.files})
    return block_rows(*arrays)


def trunk_weights(spec: ModelSpec, path: str | None) -> Path | None:
    """`parity run --weights`: the resolved .h5 of a pretrained-trunk model (resolve_weights), None for any other
    model; --weights for a model without a pretrained trunk is an error."""
    if uses_pretrained_trunk(spec):
        return resolve_weights(spec, path)
    if path is not None:
        raise DataError(f"--weights: {spec.id} has no pretrained trunk; only the InceptionV3 transfer models "
                        "(c2w3_inception_*) load a weights file")
    return None
