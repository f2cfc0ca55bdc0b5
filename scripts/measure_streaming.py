"""Measure the streaming data path on an image set: decode time (first pass vs cached) and each worker's peak RSS.

    .venv/bin/python scripts/measure_streaming.py [--data-dir ../shared/data/cats_and_dogs_filtered]
        [--model c2w1_cats_dogs_cnn] [--batch-size 20] [--json]

The parent process (numpy only) loads the data set twice into a fresh decode cache (the first
load decodes with Pillow, the second reads the cache), writes the data directory the workers
read (`parity.jobs.save_data`), then starts one child process per framework. Each child imports
only its framework, builds the pipeline the training worker builds (`tf_models.data.train_dataset`,
`torch_models.data.plan_loader`), streams one epoch of the training set through it (one thread)
and reports its peak resident set size (VmHWM of /proc/self/status, which counts the
memory-mapped pages it touched) before and after the epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cats_and_dogs_filtered"


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def stream_one_epoch(framework: str, data_dir: str, batch_size: int) -> dict:
    """In a child process: one epoch of the training source through `framework`'s pipeline."""
    from parity import jobs
    from parity.plan import BatchPlan

    if framework == "keras":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from tf_models.data import train_dataset

        def batches(plan, source):
            return ((x.numpy(), y.numpy()) for x, y in train_dataset(plan, source, epochs=1))
    else:
        import torch

        torch.set_num_threads(1)
        from torch_models.data import plan_loader

        def batches(plan, source):
            return ((x.numpy(), y.numpy()) for x, y in plan_loader(plan, source))

    source = jobs.load_data(Path(data_dir)).train
    plan = BatchPlan(len(source), batch_size, seed=0)
    before = _status_mb("VmHWM")
    start = time.perf_counter()
    steps = samples = 0
    checksum = 0.0
    for x, y in batches(plan, source):
        steps += 1
        samples += len(x)
        checksum += float(x[:, 0, 0, 0].sum())
    return {"framework": framework, "steps": steps, "samples": samples, "epoch_s": time.perf_counter() - start,
            "peak_rss_mb_before_epoch": before, "peak_rss_mb": _status_mb("VmHWM"), "checksum": checksum}


def measure(data_dir: Path, model_id: str, batch_size: int) -> dict:
    """Decode timings and both workers' peak RSS; the decode cache is a fresh temporary directory."""
    from parity import jobs
    from parity.catalog import get_spec
    from parity.datasets import load_dataset

    spec = get_spec(model_id)
    with tempfile.TemporaryDirectory(prefix="parity-measure-") as scratch:
        os.environ["PARITY_CACHE_DIR"] = str(Path(scratch) / "cache")
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            split = load_dataset(spec, data_dir)
            timings.append(time.perf_counter() - start)
        data = jobs.save_data(Path(scratch), split)
        workers = []
        for framework in jobs.FRAMEWORKS:
            command = [sys.executable, __file__, "--child", framework, str(data), "--batch-size", str(batch_size)]
            done = subprocess.run(command, env=jobs.worker_env(framework, "cpu", 1), capture_output=True, text=True,
                                  check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{framework} child failed:\n{done.stderr[-3000:]}")
            workers.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"model": model_id, "data": str(data_dir), "train_images": len(split.train),
            "image_shape": list(split.train.x.shape[1:]), "batch_size": batch_size,
            "float32_set_mb": split.train.x.size * 4 / 2**20,
            "first_load_s": timings[0], "cached_load_s": timings[1], "workers": workers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default="c2w1_cats_dogs_cnn")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(stream_one_epoch(args.child[0], args.child[1], args.batch_size)))
        return 0
    result = measure(args.data_dir, args.model, args.batch_size)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{result['model']}: {result['train_images']} training images {result['image_shape']}, batch {args.batch_size}")
    print(f"load with decoding (first pass): {result['first_load_s']:.2f} s; from the cache: {result['cached_load_s']:.2f} s")
    for worker in result["workers"]:
        print(f"{worker['framework']:>9}: {worker['steps']} batches in {worker['epoch_s']:.2f} s, peak RSS "
              f"{worker['peak_rss_mb']:.0f} MiB (before the epoch {worker['peak_rss_mb_before_epoch']:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
