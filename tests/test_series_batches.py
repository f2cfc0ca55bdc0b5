"""Windowed series batches: built once, fed identically to Keras (tf.data) and Lightning (DataLoader), batch by batch.

The windows of the real Sunspots.csv (2,970 training windows, more than the course's shuffle
buffer of 1000, so the buffer order matters) go to each framework's own pipeline in its own
process (tf_models.data.train_dataset, torch_models.data.plan_loader), following the spec's
batch plan (`parity.plan.train_plan`). Every batch of two epochs must be byte-identical between
the two and equal to the windows the plan names.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parity import jobs
from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.plan import BatchPlan, eval_plan, train_plan

REPO = Path(__file__).resolve().parents[1]
SPEC = get_spec("c4w4_sunspots_conv_lstm_dnn")  # window 30, (30, 1) inputs, batch 32, shuffle buffer 1000
EPOCHS, SEED = 2, 5

# Each script imports one framework only, builds the plan from the same numbers and dumps what its pipeline yields.
DUMP = {
    "keras": """
import tensorflow as tf
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)
from tf_models.data import eval_dataset, train_dataset
train = [(x.numpy(), y.numpy()) for x, y in train_dataset(plan, data.train, args["epochs"])]
val = [(x.numpy(), y.numpy()) for x, y in eval_dataset(eval_plan(len(data.val), plan.batch_size), data.val)]
""",
    "lightning": """
import torch
torch.set_num_threads(1)
from torch_models.data import plan_loader
loader, train = plan_loader(plan, data.train), []
for epoch in range(args["epochs"]):
    loader.sampler.set_epoch(epoch)
    train += [(x.numpy(), y.numpy()) for x, y in loader]
val = [(x.numpy(), y.numpy()) for x, y in plan_loader(eval_plan(len(data.val), plan.batch_size), data.val)]
""",
}
PREAMBLE = """
import json, sys
from pathlib import Path
from parity import jobs
from parity.plan import BatchPlan, eval_plan
args = json.loads(sys.argv[1])
data = jobs.load_data(Path(args["data"]))
plan = BatchPlan(**args["plan"])
"""


def dump_batches(framework: str, data_dir: Path, plan: BatchPlan, out: Path) -> dict[str, np.ndarray]:
    args = {"data": str(data_dir), "epochs": EPOCHS, "out": str(out),
            "plan": {"num_samples": plan.num_samples, "batch_size": plan.batch_size, "seed": plan.seed,
                     "shuffle_buffer": plan.shuffle_buffer}}
    script = PREAMBLE + DUMP[framework] + "jobs.save_batches(args['out'], train, val)\n"
    done = subprocess.run([sys.executable, "-c", script, json.dumps(args)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as batches:
        return {key: batches[key] for key in batches.files}


@pytest.fixture(scope="module")
def sunspots(tmp_path_factory):
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "sunspots").is_dir():
        pytest.skip("shared Sunspots.csv not found")
    split = load_dataset(SPEC, SHARED_DATA / "sunspots")
    workdir = tmp_path_factory.mktemp("series-batches")
    plan = train_plan(SPEC, len(split.train), SEED)
    data_dir = jobs.save_data(workdir, split)
    return split, plan, {framework: dump_batches(framework, data_dir, plan, workdir / f"{framework}.npz")
                         for framework in DUMP}


def test_sunspots_windows_are_batched_identically_in_both_frameworks(sunspots):
    split, plan, dumps = sunspots
    keras, lightning = dumps["keras"], dumps["lightning"]
    assert (plan.num_samples, plan.shuffle_buffer, plan.batch_size) == (2970, 1000, 32)
    steps = EPOCHS * plan.steps_per_epoch + eval_plan(split.val_size, 32).steps_per_epoch
    assert keras.keys() == lightning.keys() and len(keras) == 1 + 2 * steps
    for key in keras:
        assert keras[key].dtype == lightning[key].dtype and keras[key].shape == lightning[key].shape, key
        assert keras[key].tobytes() == lightning[key].tobytes(), key
    # Each training batch holds the windows the plan names: x = series[i : i + 30], y = series[i + 30].
    series = np.concatenate([split.train.x[0, :, 0], split.train.y[:, 0], split.val.y[:, 0]])
    batches = [rows for epoch in range(EPOCHS) for rows in plan.epoch_batches(epoch)]
    assert keras["train_sizes"].tolist() == [32] * 92 + [26] + [32] * 92 + [26]
    for step, rows in enumerate(batches):
        x, y = keras[f"train_x_{step:04d}"], keras[f"train_y_{step:04d}"]
        assert x.dtype == np.float32 and x.shape == (len(rows), 30, 1)
        assert np.array_equal(x[:, :, 0], np.stack([series[i : i + 30] for i in rows]))
        assert np.array_equal(y[:, 0], series[rows + 30])
    assert np.array_equal(keras["val_y_0007"][:, 0], series[3000 + 7 * 32 : 3235])


def test_the_batches_follow_the_courses_shuffle_buffer_not_a_full_permutation(sunspots):
    split, plan, dumps = sunspots
    first_epoch = np.concatenate([dumps["keras"][f"train_y_{step:04d}"][:, 0] for step in range(plan.steps_per_epoch)])
    targets = np.asarray(split.train.y[:, 0])
    assert np.array_equal(first_epoch, targets[plan.epoch_order(0)])
    # The first batch draws from the first 1000 windows only (tf.data's shuffle(1000)); a full permutation would not.
    assert plan.epoch_batches(0)[0].max() < 1000
    assert BatchPlan(2970, 32, SEED).epoch_batches(0)[0].max() >= 1000
