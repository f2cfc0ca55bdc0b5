"""The batch plan (one index order per epoch, drawn from the seed), the collate that builds each batch from
it, and the per-sample random stream: the same for both frameworks."""

import numpy as np
import pytest

from parity.datasets.store import Padding, PixelScale, SampleSource, ragged_array
from parity.plan import BatchPlan, batch_signature, collate, eval_plan, sample_rng, sample_uniforms
from parity.text import pad_sequences


def test_each_epoch_is_a_permutation_cut_into_batches_with_a_short_last_batch():
    plan = BatchPlan(num_samples=70, batch_size=32, seed=3)
    batches = plan.epoch_batches(0)
    assert [len(b) for b in batches] == [32, 32, 6]
    assert plan.steps_per_epoch == 3
    assert sorted(np.concatenate(batches).tolist()) == list(range(70))


def test_order_changes_between_epochs_and_repeats_for_the_same_seed():
    plan = BatchPlan(num_samples=1000, batch_size=32, seed=7)
    assert not np.array_equal(plan.epoch_order(0), plan.epoch_order(1))
    assert np.array_equal(plan.epoch_order(1), BatchPlan(1000, 32, 7).epoch_order(1))
    assert not np.array_equal(plan.epoch_order(0), BatchPlan(1000, 32, 8).epoch_order(0))


def test_padded_batches_hold_every_epoch_in_order():
    plan = BatchPlan(num_samples=10, batch_size=4, seed=0)
    indices, lengths = plan.padded_batches(epochs=2)
    assert indices.shape == (6, 4) and lengths.tolist() == [4, 4, 2, 4, 4, 2]
    rebuilt = [row[:n] for row, n in zip(indices, lengths)]
    expected = plan.epoch_batches(0) + plan.epoch_batches(1)
    assert all(np.array_equal(a, b) for a, b in zip(rebuilt, expected))
    assert (indices[2, 2:] == -1).all()


def test_eval_plan_keeps_data_order():
    assert np.array_equal(eval_plan(5, 2).epoch_order(3), np.arange(5))


@pytest.mark.parametrize("num_samples, batch_size", [(0, 32), (10, 0)])
def test_empty_or_zero_sized_plans_are_refused(num_samples, batch_size):
    with pytest.raises(ValueError):
        BatchPlan(num_samples, batch_size, seed=0)


# --- collate: the one batch builder ----------------------------------------------------------


def test_collate_gathers_in_plan_order_and_scales_pixels_per_batch():
    pixels = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2, 1) * 12
    labels = np.arange(5, dtype=np.int64)
    rows = np.array([3, 0, 4])
    x, y = collate(SampleSource(pixels, labels, scale=PixelScale(1 / 255)), rows)
    assert x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable
    assert x.tobytes() == (pixels[rows].astype(np.float32) * np.float32(1 / 255)).tobytes()
    assert y.tolist() == [3, 0, 4]
    divided, _ = collate(SampleSource(pixels, labels, scale=PixelScale(255.0, divide=True)), rows)
    assert divided.tobytes() == (pixels[rows] / 255.0).astype(np.float32).tobytes()  # the notebooks' float64 / 255.0
    assert not np.array_equal(divided, x)  # the two roundings differ for some pixels: the spec picks one
    raw, _ = collate(SampleSource(pixels, labels), rows)
    assert raw.dtype == np.uint8 and np.array_equal(raw, pixels[rows])


def test_collate_keeps_label_dtypes_and_refuses_indices_outside_the_source():
    one_hot = np.eye(3, dtype=np.float32)[[2, 0, 1, 1]]
    source = SampleSource(np.zeros((4, 2), np.float32), one_hot)
    _, y = collate(source, np.array([1, 0]))
    assert y.dtype == np.float32 and y.tolist() == [[1, 0, 0], [0, 0, 1]]
    for bad in ([4], [-1]):
        with pytest.raises(IndexError, match=r"\[0, 4\)"):
            collate(source, np.array(bad))


SEQUENCES = [[5, 6, 7, 8, 9], [1], [], [2, 3, 4]]


@pytest.mark.parametrize("length", [None, 3, 6])
@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_ragged_batches_are_padded_as_keras_pad_sequences(length, padding, truncating):
    source = SampleSource(ragged_array(SEQUENCES), np.zeros((4, 1), np.float32), padding=Padding(length, padding, truncating))
    rows = np.array([2, 0, 3])
    x, _ = collate(source, rows)
    expected = pad_sequences([SEQUENCES[i] for i in rows], length, padding, truncating)
    assert x.dtype == np.int32 and x.shape == expected.shape and x.tobytes() == expected.tobytes()


def test_per_batch_padding_follows_each_batch_longest_sequence():
    source = SampleSource(ragged_array(SEQUENCES), np.zeros(4, np.int64), padding=Padding(None, "post"))
    assert collate(source, np.array([1, 3]))[0].tolist() == [[1, 0, 0], [2, 3, 4]]
    assert collate(source, np.array([2]))[0].shape == (1, 0)
    assert collate(source, np.array([0, 1]))[0].shape == (2, 5)


def test_batch_signature_describes_what_collate_returns():
    images = SampleSource(np.zeros((4, 8, 8, 3), np.uint8), np.zeros((4, 1), np.float32), scale=PixelScale(0.5))
    x_sig, y_sig = batch_signature(images)
    assert (x_sig.shape, x_sig.dtype, y_sig.shape, y_sig.dtype) == ((None, 8, 8, 3), np.float32, (None, 1), np.float32)
    text = SampleSource(ragged_array(SEQUENCES), np.zeros(4, np.int64), padding=Padding(None))
    assert batch_signature(text)[0].shape == (None, None) and batch_signature(text)[0].dtype == np.int32
    fixed = SampleSource(ragged_array(SEQUENCES), np.zeros(4, np.int64), padding=Padding(7))
    assert batch_signature(fixed)[0].shape == (None, 7)


# --- the per-sample random stream ------------------------------------------------------------


def test_sample_stream_is_deterministic_and_keyed_by_seed_epoch_and_index():
    first = sample_rng(3, 1, 17).random(4)
    assert np.array_equal(first, sample_rng(3, 1, 17).random(4))
    others = [sample_rng(4, 1, 17), sample_rng(3, 2, 17), sample_rng(3, 1, 18)]
    assert all(not np.array_equal(first, other.random(4)) for other in others)


def test_sample_uniforms_do_not_depend_on_batch_composition_or_order():
    together = sample_uniforms(7, 2, np.array([5, 9, 1]), count=6)
    assert together.shape == (3, 6) and together.dtype == np.float64
    assert ((0 <= together) & (together < 1)).all()
    # The same sample in another batch, at another position, after other samples: the same draws.
    assert np.array_equal(sample_uniforms(7, 2, np.array([1, 40, 9, 5]), count=6)[[3, 2, 0]], together)
    assert np.array_equal(together[1], sample_rng(7, 2, 9).random(6))
    # The first uniforms do not depend on how many are drawn.
    assert np.array_equal(sample_uniforms(7, 2, np.array([5]), count=2)[0], together[0, :2])
    assert sample_uniforms(7, 2, np.array([], dtype=np.int64), count=3).shape == (0, 3)


def test_sample_streams_are_apart_from_the_plan_permutation_stream():
    # SeedSequence pads [seed, epoch] with zeros: without the leading SAMPLE_STREAM word, sample 0's
    # stream would be the very generator that shuffles the epoch.
    plan_draws = np.random.default_rng([3, 1]).random(8)
    assert not np.array_equal(sample_rng(3, 1, 0).random(8), plan_draws)
    assert np.array_equal(np.random.default_rng([3, 1, 0]).random(8), plan_draws)  # the trap being avoided
    streams = sample_uniforms(3, 1, np.arange(2000), count=1)[:, 0]
    assert len(np.unique(streams)) == 2000
    assert abs(streams.mean() - 0.5) < 4 * np.sqrt(1 / 12 / 2000)  # 4 standard errors: fails by chance < 1e-4
