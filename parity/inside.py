"""`parity inside RUN_DIR`: looking inside both frameworks' trained models of a `--save` run, as the course does.

- Conv nets: the course's intermediate-representation picture (C1W3, C2W1): the feature maps of
  every convolution and pooling layer for one image, Keras and Lightning side by side, with each
  layer's largest absolute difference between the frameworks (torch's maps transposed to NHWC by its
  worker, torch_models/inside.py). Writes feature-maps.png, feature-maps.json (the differences) and
  feature-maps.npz (the maps).
- Embedding models: the course's projector export (C3W2): vecs.tsv (one embedding row per line,
  tab-separated) and meta.tsv (its word) per framework, skipping index 0 (padding) as the course's
  `for word_num in range(1, vocab_size)` does, and the cosine similarity of each word's two vectors.
  Writes keras-vecs.tsv, keras-meta.tsv, lightning-vecs.tsv, lightning-meta.tsv and embedding.json.

Each framework loads its model in its own worker process (the `inside` job); this module is numpy only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from parity import jobs
from parity.errors import ParityError
from parity.fileio import write_bytes_atomic, write_json_atomic, write_text_atomic
from parity.compare import forward_tolerance, max_abs_diff
from parity.predict import SavedRun, encode_image

CHANNELS_SHOWN = 4  # feature-map channels drawn per layer, the most active (the course draws one, CONVOLUTION_NUMBER)
LEAST_SIMILAR_SHOWN = 10  # words listed with the lowest cosine similarity between the frameworks
INSIDE_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class LayerMaps:
    """One layer's feature maps from both frameworks, NHWC, named as in Keras."""

    kind: str
    name: str
    keras: np.ndarray
    lightning: np.ndarray
    same_weights: np.ndarray  # torch's maps with the Keras trained weights


def pair_layers(keras: Sequence[tuple[str, str, np.ndarray]], lightning: Sequence[tuple[str, str, np.ndarray]],
                same_weights: Sequence[np.ndarray]) -> list[LayerMaps]:
    """Pair the frameworks' (kind, name, NHWC map) lists in order; a ParityError where they do not line up
    (another count, kind, convolution name or shape: a layer taken out of order, or a map in another layout)."""
    if [kind for kind, _, _ in keras] != [kind for kind, _, _ in lightning]:
        raise ParityError("the frameworks' conv and pooling layers differ: keras "
                          f"{[name for _, name, _ in keras]}, lightning {[name for _, name, _ in lightning]}")
    pairs = []
    for (kind, name, k_map), (_, t_name, t_map), s_map in zip(keras, lightning, same_weights):
        if kind == "conv" and name != t_name:
            raise ParityError(f"convolution {name} (keras) is paired with {t_name} (lightning); the layers are out "
                              "of order")
        if not k_map.shape == t_map.shape == s_map.shape:
            raise ParityError(f"{name}: keras maps {k_map.shape} (NHWC), lightning maps {t_map.shape}; "
                              "the torch maps must be transposed from NCHW to NHWC")
        pairs.append(LayerMaps(kind, name, k_map, t_map, s_map))
    return pairs


def layer_differences(pairs: Sequence[LayerMaps]) -> list[dict[str, Any]]:
    """Per layer: its shape, the largest absolute value of its Keras maps, the largest absolute difference between
    the frameworks' trained models' maps (also relative to that value) and that with the same weights in both,
    which must be within the forward check's tolerance (parity.compare.forward_tolerance): `passed`."""
    rows = []
    for pair in pairs:
        scale = float(np.max(np.abs(pair.keras)))
        diff, same = max_abs_diff(pair.keras, pair.lightning), max_abs_diff(pair.keras, pair.same_weights)
        tolerance = forward_tolerance(pair.keras)
        rows.append({"layer": pair.name, "kind": pair.kind, "shape": list(pair.keras.shape[1:]),
                     "max_abs_value": scale, "max_abs_diff": diff, "max_rel_diff": diff / scale if scale > 0 else diff,
                     "same_weights_max_abs_diff": same, "tolerance": tolerance, "passed": same <= tolerance})
    return rows


def shown_channels(maps: np.ndarray, count: int = CHANNELS_SHOWN) -> list[int]:
    """The `count` channels of an NHWC map with the largest mean activation (dead ReLU channels show nothing)."""
    means = np.abs(maps[0]).reshape(-1, maps.shape[-1]).mean(axis=0)
    return sorted(np.argsort(-means, kind="stable")[:count].tolist())


def shown_input(image: np.ndarray) -> np.ndarray:
    """The model input as the figure draws it: a greyscale (H, W) map (its colour map spans its values), or RGB
    in [0, 1], which matplotlib needs: an input outside [0, 1] (InceptionV3's preprocess gives [-1, 1], unscaled
    pixels 0..255) is mapped linearly from [min(its min, 0), max(its max, 1)] onto [0, 1]; one inside it is kept."""
    if image.shape[-1] == 1:
        return image[..., 0]
    low, high = min(float(image.min()), 0.0), max(float(image.max()), 1.0)
    return image if (low, high) == (0.0, 1.0) else (image - low) / (high - low)


def feature_map_figure(pairs: Sequence[LayerMaps], differences: Sequence[Mapping[str, Any]], image: np.ndarray,
                       title: str) -> bytes:
    """The course's intermediate-representation picture as PNG bytes: the input, then per layer a Keras row and a
    Lightning row of its convolution's CHANNELS_SHOWN most active channels (one colour scale per layer and channel)
    under the layer's largest differences."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(CHANNELS_SHOWN, min(pair.keras.shape[-1] for pair in pairs))
    fig = Figure(figsize=(1.7 * columns + 1.0, 1.0 + 3.4 * len(pairs) + 1.8), layout="constrained")
    FigureCanvasAgg(fig)
    panels = fig.subfigures(1 + len(pairs), 1, height_ratios=[1.8] + [3.4] * len(pairs))
    source = panels[0].subplots(1, 1)
    source.imshow(shown_input(image), cmap="gray")
    source.set_title("input", fontsize=9)
    source.set_axis_off()
    channels: list[int] = []
    for panel, pair, row in zip(panels[1:], pairs, differences):
        if pair.kind == "conv" or not channels:  # a pooling layer shows the channels of the convolution before it
            channels = shown_channels(pair.keras, columns)
        panel.suptitle(f"{pair.name} {tuple(row['shape'])}: max |keras - lightning| {row['max_abs_diff']:.2e} "
                       f"(same weights {row['same_weights_max_abs_diff']:.1e})", fontsize=9)
        axes = panel.subplots(2, columns, squeeze=False)
        for column, channel in enumerate(channels):
            maps = (pair.keras[0, ..., channel], pair.lightning[0, ..., channel])
            low, high = min(m.min() for m in maps), max(m.max() for m in maps)
            for ax, framework, values in zip(axes[:, column], jobs.FRAMEWORKS, maps):
                ax.imshow(values, cmap="inferno", vmin=low, vmax=high)
                ax.set_xticks([])
                ax.set_yticks([])
                if column == 0:
                    ax.set_ylabel(framework, fontsize=8)
            axes[0, column].set_title(f"channel {channel}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def maps_npz(pairs: Sequence[LayerMaps]) -> bytes:
    """The maps behind the picture as .npz bytes: keras_I, lightning_I and same_weights_I (torch with the Keras
    trained weights), NHWC, for the I-th layer of the record."""
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{name}_{index}": getattr(pair, name)
                        for index, pair in enumerate(pairs) for name in (*jobs.FRAMEWORKS, "same_weights")})
    return buffer.getvalue()


def _run_both(run: SavedRun, job: dict[str, Any], workdir: Path, device: str,
              threads: int) -> dict[str, tuple[list, Any]]:
    """Each framework's `inside` job: its ordered layer list and its arrays (the .npz it wrote)."""
    answers = {}
    with jobs.worker_pool(device=device, threads=threads, quiet=True) as workers:
        for framework in jobs.FRAMEWORKS:
            out = workdir / f"{framework}-inside.npz"
            result = workers.run(framework, {**job, "run_dir": str(run.run_dir.resolve()), "seed": run.seed,
                                             "out": str(out), "spec_overrides": run.inputs.get("spec_overrides") or {}},
                                 workdir, INSIDE_TIMEOUT_S)
            answers[framework] = (result["layers"], np.load(out))
    return answers


def look_at_feature_maps(run: SavedRun, image_path: Path, out_dir: Path, device: str = "cpu",
                         threads: int = 1) -> dict[str, Any]:
    """Both frameworks' feature maps of one image; writes OUT_DIR/feature-maps.png and feature-maps.json."""
    image = encode_image(image_path, run.inputs["image"])
    with jobs.work_directory(".work-inside-") as workdir:
        inputs_file = workdir / "inputs.npy"
        np.save(inputs_file, image[None])  # the batch axis: a batch of one image
        answers = _run_both(run, {"kind": "inside", "look": "feature_maps", "inputs": str(inputs_file),
                                  "keras_weights": str(workdir / "keras-trained.npz")}, workdir, device, threads)
        maps = {framework: [(kind, name, arrays[f"map_{index}"]) for index, (kind, name) in enumerate(layers)]
                for framework, (layers, arrays) in answers.items()}
        layers, arrays = answers["lightning"]
        same_weights = [arrays[f"same_weights_map_{index}"] for index in range(len(layers))]
    pairs = pair_layers(maps["keras"], maps["lightning"], same_weights)
    differences = layer_differences(pairs)
    record = {"model": run.model_id, "seed": run.seed, "image": str(image_path), "layers": differences,
              "note": "each layer's maps after the layer (a convolution after its activation), NHWC; max_abs_diff: "
                      "of the two frameworks' trained models on the same input (training drift included); "
                      "same_weights_max_abs_diff: with the Keras trained weights in both (the forward computation)"}
    title = f"{run.model_id} seed {run.seed}: feature maps of {Path(image_path).name}, Keras and Lightning"
    write_bytes_atomic(Path(out_dir) / "feature-maps.png", feature_map_figure(pairs, differences, image, title))
    write_bytes_atomic(Path(out_dir) / "feature-maps.npz", maps_npz(pairs))
    write_json_atomic(Path(out_dir) / "feature-maps.json", record)
    return record


# ---------------------------------------------------------------------------------------------- embeddings


def projector_rows(vocabulary: Sequence[str], weights: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The words and embedding rows the course exports: ids 1 .. up to the embedding's rows (id 0, padding, skipped),
    only ids that have a word (a training set with fewer distinct words than rows leaves the rest unnamed)."""
    last = min(len(vocabulary), len(weights))
    words = [str(word) for word in vocabulary[1:last]]
    bad = [word for word in words if not word or "\t" in word or "\n" in word]
    if bad:
        raise ParityError(f"vocabulary words {bad[:3]} cannot be written to a one-column meta.tsv")
    return words, np.asarray(weights[1:last])


def projector_tsv(words: Sequence[str], vectors: np.ndarray) -> tuple[str, str]:
    """vecs.tsv and meta.tsv contents, written as the course writes them (str() of each float32, one row a line)."""
    vecs = "".join("\t".join(str(value) for value in row) + "\n" for row in vectors.astype(np.float32))
    return vecs, "".join(f"{word}\n" for word in words)


def read_projector(vecs_path: Path, meta_path: Path) -> tuple[list[str], np.ndarray]:
    """A projector export read back: its words and float32 vectors; a ParityError if the two files disagree."""
    words = Path(meta_path).read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in Path(vecs_path).read_text(encoding="utf-8").splitlines()]
    if len(rows) != len(words) or len({len(row) for row in rows}) > 1:
        raise ParityError(f"{vecs_path}: {len(rows)} rows of widths {sorted({len(row) for row in rows})}, "
                          f"{meta_path}: {len(words)} words; a projector export has one row of one width per word")
    return words, np.array(rows, dtype=np.float32).reshape(len(rows), -1)


def cosine_similarities(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (words, dim) arrays (float64; a zero row has similarity 0)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.sum(a * b, axis=1)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def similarity_summary(words: Sequence[str], similarities: np.ndarray) -> dict[str, Any]:
    """min / median / max of the per-word cosine similarities and the LEAST_SIMILAR_SHOWN least similar words."""
    order = np.argsort(similarities, kind="stable")[:LEAST_SIMILAR_SHOWN]
    return {"words": len(words), "min": float(similarities.min()), "median": float(np.median(similarities)),
            "max": float(similarities.max()),
            "least_similar": [[words[index], float(similarities[index])] for index in order]}


def export_embeddings(run: SavedRun, out_dir: Path, device: str = "cpu", threads: int = 1) -> dict[str, Any]:
    """Both frameworks' projector exports and the cosine similarity of each word's two vectors; writes
    OUT_DIR/{keras,lightning}-{vecs,meta}.tsv and embedding.json."""
    text = run.inputs.get("text")
    if not text:
        raise ParityError(f"{run.model_id} is neither a conv net nor a text model: `parity inside` draws the feature "
                          "maps of image models and exports the word embedding of text models")
    with jobs.work_directory(".work-inside-") as workdir:
        answers = _run_both(run, {"kind": "inside", "look": "embedding"}, workdir, device, threads)
        weights = {framework: (layers[0][1], np.asarray(arrays["embedding"]))
                   for framework, (layers, arrays) in answers.items()}
    if weights["keras"][1].shape != weights["lightning"][1].shape:
        raise ParityError(f"the embeddings differ in shape: keras {weights['keras'][1].shape}, "
                          f"lightning {weights['lightning'][1].shape}")
    files, vectors = {}, {}
    for framework, (_, matrix) in weights.items():
        words, vectors[framework] = projector_rows(text["vocabulary"], matrix)
        vecs, meta = projector_tsv(words, vectors[framework])
        for name, content in (("vecs", vecs), ("meta", meta)):
            path = Path(out_dir) / f"{framework}-{name}.tsv"
            write_text_atomic(path, content)
            files[f"{framework}-{name}"] = str(path)
    similarities = cosine_similarities(vectors["keras"], vectors["lightning"])
    record = {"model": run.model_id, "seed": run.seed, "layer": weights["keras"][0],
              "embedding_shape": list(weights["keras"][1].shape), "rows_exported": len(words),
              "skipped": "id 0 (padding), as the course's range(1, vocab_size)", "files": files,
              "cosine_similarity": similarity_summary(words, similarities)}
    write_json_atomic(Path(out_dir) / "embedding.json", record)
    return record


def render_feature_maps(record: Mapping[str, Any]) -> str:
    """The per-layer differences as lines for people."""
    lines = [f"{record['model']} seed {record['seed']}: feature maps of {record['image']}",
             f"{'layer':14} {'shape':16} {'max |value|':>12} {'max abs diff':>13} {'relative':>9} {'same weights':>13}"]
    for row in record["layers"]:
        lines.append(f"{row['layer']:14} {str(tuple(row['shape'])):16} {row['max_abs_value']:12.4g} "
                     f"{row['max_abs_diff']:13.2e} {row['max_rel_diff']:9.1e} {row['same_weights_max_abs_diff']:13.2e}"
                     f"{'' if row['passed'] else ' FAIL (tolerance %.1e)' % row['tolerance']}")
    lines.append("max abs diff: between the frameworks' trained models (training drift included); same weights: "
                 "with the Keras trained weights in both (within the forward check's tolerance unless marked FAIL)")
    return "\n".join(lines)


def render_embeddings(record: Mapping[str, Any]) -> str:
    """The cosine similarity summary as lines for people."""
    stats = record["cosine_similarity"]
    least = ", ".join(f"{word} {value:.8f}" for word, value in stats["least_similar"][:5])
    return (f"{record['model']} seed {record['seed']}: {record['rows_exported']} words of the {record['layer']} "
            f"layer {tuple(record['embedding_shape'])} exported per framework\n"
            f"cosine similarity keras vs lightning per word: min {stats['min']:.8f}, median {stats['median']:.8f}, "
            f"max {stats['max']:.8f}\nleast similar: {least}")
