"""The batch plan: one index order per epoch, drawn from the seed, the same for both frameworks."""

import numpy as np
import pytest

from parity.plan import BatchPlan, eval_plan


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
