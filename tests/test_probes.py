"""Layer probes (parity.probes): each difference the course models do not exercise yet, measured in both workers.

One fixture runs every probe once (two worker processes), aligned and with each difference
native on its own. Aligned results must sit at float32 noise; native ones clearly above it.
Tolerances: FLOAT32_NOISE = 1e-5 absolute for probed values of magnitude up to ~10 after up
to 20 chained updates (float32 resolves 1.2e-7 relative, so ~1e-6 at 10; measured aligned:
0 to 2.4e-6); RELATIVE_NOISE = 1e-6 for a learning rate or loss compared relative to Keras
(a few float32 ulps; measured 8e-8 to 3e-7). Native thresholds sit 2-5x below the measured value.
Augmented pictures (pixels in [0, 1], four bilinear resamplings): PICTURE_MEAN_NOISE = 1e-5 and
PICTURE_MAX_NOISE = 2e-4, tests/test_augment.py's bound (float32 sampling coordinates ~1e-5 pixel
apart next to full-range edges; measured here: mean 1.0e-6, max 2.0e-5).
"""

import numpy as np
import pytest

from parity import align, probes

FLOAT32_NOISE = 1e-5
RELATIVE_NOISE = 1e-6
PICTURE_MEAN_NOISE = 1e-5
PICTURE_MAX_NOISE = 2e-4


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return probes.measure_all(tmp_path_factory.mktemp("probes"))


def test_every_probed_difference_is_a_documented_one_with_a_summary(measured):
    assert set(measured) == {key for keys in probes.PROBE_DIFFERENCES.values() for key in keys}
    assert all(align.difference(key) for key in measured)
    for key, entry in measured.items():
        metric = probes.HEADLINES[key][1]
        assert f"{entry['native'][metric]:.1e}" in entry["summary"] and f"{entry['aligned'][metric]:.1e}" in entry["summary"]


def _all_below(effects, limit):
    return all(value <= limit for value in effects.values())


def test_batchnorm_aligned_matches_keras_moving_statistics_and_outputs(measured):
    aligned = measured["batchnorm_momentum"]["aligned"]
    assert set(aligned) == {"moving_mean_max_abs_diff", "moving_variance_max_abs_diff", "train_outputs_max_abs_diff",
                            "eval_outputs_max_abs_diff"}
    assert _all_below(aligned, FLOAT32_NOISE), aligned


def test_batchnorm_momentum_native_changes_moving_statistics(measured):
    native = measured["batchnorm_momentum"]["native"]
    # torch's 0.1 moves the statistics 10x faster than Keras' 1 - 0.99: measured 1.35 (mean), 4.75 (variance).
    assert native["moving_mean_max_abs_diff"] > 0.5 and native["moving_variance_max_abs_diff"] > 1.0
    assert native["eval_outputs_max_abs_diff"] > 1.0  # measured 3.7
    assert native["train_outputs_max_abs_diff"] <= FLOAT32_NOISE  # training normalises with batch statistics


def test_batchnorm_epsilon_native_changes_outputs_not_moving_statistics(measured):
    native = measured["batchnorm_epsilon"]["native"]
    # eps 1e-5 instead of 1e-3 under rsqrt(var + eps): measured 4.7e-4 (training) and 2.4e-3 (eval).
    assert native["train_outputs_max_abs_diff"] > 1e-4 and native["eval_outputs_max_abs_diff"] > 5e-4
    assert native["moving_mean_max_abs_diff"] <= FLOAT32_NOISE and native["moving_variance_max_abs_diff"] <= FLOAT32_NOISE


def test_batchnorm_variance_native_changes_moving_variance_only(measured):
    native = measured["batchnorm_variance"]["native"]
    # n/(n-1) with n = 32*8*8 = 2048 values per channel: measured 6.9e-4 on variances up to ~9, 1.2e-3 in eval.
    assert native["moving_variance_max_abs_diff"] > 2e-4 and native["eval_outputs_max_abs_diff"] > 3e-4
    assert native["moving_mean_max_abs_diff"] <= FLOAT32_NOISE and native["train_outputs_max_abs_diff"] <= FLOAT32_NOISE


def test_gru_layout_native_keeps_keras_gate_order_and_scrambles_outputs(measured):
    entry = measured["gru_layout"]
    assert entry["aligned"]["outputs_max_abs_diff"] <= FLOAT32_NOISE  # measured 1.3e-7
    assert entry["native"]["outputs_max_abs_diff"] > 0.1  # measured 0.50 on outputs in (-1, 1)


def test_lstm_biases_native_keeps_torch_recurrent_bias(measured):
    entry = measured["lstm_biases"]
    assert entry["aligned"]["outputs_max_abs_diff"] <= FLOAT32_NOISE  # measured 8.9e-8
    assert entry["native"]["outputs_max_abs_diff"] > 0.1  # measured 0.33 on outputs in (-1, 1)


def test_same_padding_stride_native_pads_symmetrically_and_shifts_outputs(measured):
    entry = measured["same_padding_stride"]
    assert entry["aligned"]["outputs_max_abs_diff"] <= FLOAT32_NOISE  # measured 0.0
    assert entry["native"]["outputs_max_abs_diff"] > 0.3  # measured 1.34


def test_l2_vs_weight_decay_native_halves_kernel_decay_and_decays_bias(measured):
    entry = measured["l2_vs_weight_decay"]
    assert _all_below(entry["aligned"], FLOAT32_NOISE), entry["aligned"]  # measured 6e-8, 7e-9
    # weight_decay=l gives gradient l*w where L2(l) gives 2*l*w, and it reaches the bias: 1.05e-2 and 1.2e-3.
    assert entry["native"]["kernel_max_abs_diff"] > 3e-3 and entry["native"]["bias_max_abs_diff"] > 3e-4


def test_lr_schedule_interval_native_steps_the_schedule_per_epoch(measured):
    entry = measured["lr_schedule_interval"]
    assert entry["aligned"]["lr_max_rel_diff"] <= RELATIVE_NOISE  # measured 1.3e-7
    assert entry["aligned"]["weights_max_abs_diff"] <= FLOAT32_NOISE  # measured 2.4e-7
    # Step 29: Keras 0.05 * 0.5**2.9 = 6.7e-3, Lightning per epoch 0.05 * 0.5**0.2 = 4.4e-2 (rel 5.5).
    assert entry["native"]["lr_max_rel_diff"] == pytest.approx(0.5 ** 0.2 / 0.5 ** 2.9 - 1, rel=1e-5)
    assert entry["native"]["weights_max_abs_diff"] > 0.05  # measured 0.28


def test_tensor_layout_reshaped_conv_kernel_breaks_outputs(measured):
    entry = measured["tensor_layout"]
    assert entry["aligned"]["outputs_max_abs_diff"] <= FLOAT32_NOISE  # measured 0.0
    assert entry["native"]["outputs_max_abs_diff"] > 0.2  # measured 0.62


def test_loss_target_shape_broadcast_targets_change_the_loss(measured):
    entry = measured["loss_target_shape"]
    assert entry["aligned"]["loss_max_rel_diff"] <= RELATIVE_NOISE  # measured 8.1e-8
    assert entry["native"]["loss_max_rel_diff"] > 0.02  # measured 7.8e-2: an (N, N) mean instead of (N,)


def test_tensorflow_same_pads_put_the_odd_pixel_after():
    from torch_models.layers import tensorflow_same_pads

    assert tensorflow_same_pads(28, 3, 2) == (0, 1)
    assert tensorflow_same_pads(27, 3, 2) == (1, 1)
    assert tensorflow_same_pads(224, 7, 2) == (2, 3)  # parity_notes b.1: torch's padding=3 differs
    assert tensorflow_same_pads(28, 3, 1) == (1, 1)


def test_conv2d_same_is_a_valid_conv_of_the_padded_input_and_keeps_its_torch_kind():
    import torch
    import torch.nn.functional as F

    from torch_models.layers import Conv2dSame, same_conv2d
    from torch_models.weights import torch_kind

    torch.manual_seed(0)
    conv = same_conv2d(3, 4, 3, 2, align.ALIGNED)
    assert isinstance(conv, Conv2dSame) and torch_kind(conv) == "Conv2d"
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2)
        assert torch.equal(conv(x), expected) and expected.shape == (2, 4, 14, 14)
        native = same_conv2d(3, 4, 3, 2, align.Alignment(frozenset({"same_padding_stride"})))
        assert type(native) is torch.nn.Conv2d and native.padding == (1, 1)


def test_keras_batchnorm2d_feeds_the_biased_variance_into_running_var():
    import torch

    from torch_models.layers import KerasBatchNorm2d, batchnorm2d
    from torch_models.weights import torch_kind

    bn = batchnorm2d(2, align.ALIGNED)
    assert isinstance(bn, KerasBatchNorm2d) and torch_kind(bn) == "BatchNorm2d"
    assert bn.momentum == pytest.approx(1 - align.KERAS_BATCHNORM_MOMENTUM) and bn.eps == align.KERAS_BATCHNORM_EPSILON
    torch.manual_seed(0)
    x = 3 * torch.randn(4, 2, 3, 3) + 1
    reference = torch.nn.BatchNorm2d(2, eps=bn.eps, momentum=bn.momentum)
    with torch.no_grad():
        # Training output: both normalise with the biased batch variance (float32 noise, values ~1).
        torch.testing.assert_close(bn(x), reference(x), atol=1e-5, rtol=0)
    n = 4 * 3 * 3
    biased = x.var(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(bn.running_var, 1 + bn.momentum * (biased - 1), atol=1e-6, rtol=0)
    torch.testing.assert_close(reference.running_var, 1 + bn.momentum * (biased * n / (n - 1) - 1), atol=1e-6, rtol=0)
    native = batchnorm2d(2, align.Alignment(frozenset({"batchnorm_variance"})))
    assert type(native) is torch.nn.BatchNorm2d


# Early stopping (parity.probes 'early_stopping'): epochs are whole numbers, so aligned means exactly equal.
# tests/test_early_stopping.py checks the epochs themselves in each framework.
def test_early_stopping_mode_native_lightning_minimises_an_accuracy(measured):
    entry = measured["early_stopping_mode"]
    assert _all_below(entry["aligned"], 0), entry["aligned"]
    assert entry["native"]["epochs_run_mode_max_abs_diff"] == 5  # Keras stops at 8; mode 'min' at the first rise, 3
    assert entry["native"]["restored_epoch_mode_max_abs_diff"] == 5  # Keras restores 6; mode 'min' the lowest, 1


def test_early_stopping_non_finite_native_lightning_stops_at_the_nan(measured):
    native = measured["early_stopping_non_finite"]["native"]
    assert native["epochs_run_non_finite_max_abs_diff"] == 3  # Keras goes on past the NaN to epoch 6; check_finite: 3
    assert native["restored_epoch_non_finite_max_abs_diff"] == 2  # Keras restores 4 (after the NaN); Lightning 2
    assert native["epochs_run_ties_max_abs_diff"] == 0  # no NaN, no difference


def test_early_stopping_restore_min_delta_native_reloads_the_lowest_value(measured):
    native = measured["early_stopping_restore_min_delta"]["native"]
    assert native["epochs_run_min_delta_max_abs_diff"] == 0  # both stop by the same min_delta rule
    assert native["restored_epoch_min_delta_max_abs_diff"] == 2  # Keras restores 2; the checkpoint keeps 4 (0.893)


def test_avgpool_count_include_pad_native_divides_border_windows_by_nine(measured):
    entry = measured["avgpool_count_include_pad"]
    # Pixels in [0, 1]: a corner window of 4 pixels averaged over 9 loses 5/9 of its mean: measured 0.45 native.
    assert entry["aligned"]["outputs_max_abs_diff"] <= FLOAT32_NOISE
    assert entry["native"]["outputs_max_abs_diff"] > 0.2


def test_frozen_batchnorm_mode_native_normalises_with_batch_statistics(measured):
    entry = measured["frozen_batchnorm_mode"]
    # Keras keeps a frozen layer in inference mode; torch's train() normalises with the batch statistics
    # (inputs offset by up to 2 and spread up to 3: measured 7.7) and moves the running ones (0.09, 0.30).
    assert _all_below(entry["aligned"], FLOAT32_NOISE), entry["aligned"]
    native = entry["native"]
    assert native["train_outputs_max_abs_diff"] > 1.0
    assert native["moving_mean_max_abs_diff"] > 0.01 and native["moving_variance_max_abs_diff"] > 0.05


def _pictures_agree(effects, model):
    return effects[f"{model}_mean_abs_diff"] <= PICTURE_MEAN_NOISE and effects[f"{model}_max_abs_diff"] <= PICTURE_MAX_NOISE


def test_augmentation_stream_native_torch_draws_other_pictures(measured):
    entry = measured["augmentation_stream"]
    for model in probes.SETTINGS["augmentation"]["models"]:
        assert _pictures_agree(entry["aligned"], model), entry["aligned"]
        # torchvision's own draws from the same ranges: other angles, shifts, zooms (measured mean 0.27 and 0.26).
        assert entry["native"][f"{model}_mean_abs_diff"] > 0.05, entry["native"]


def test_augmentation_fill_mode_native_torch_fills_uncovered_pixels_with_zeros(measured):
    native = measured["augmentation_fill_mode"]["native"]
    # Same parameters; torchvision's fill 0 where Keras mirrors (c2w4) or repeats edges (c2w2): measured 0.12, 0.11.
    assert native["c2w4_rps_cnn_mean_abs_diff"] > 0.03 and native["c2w2_cats_dogs_aug_mean_abs_diff"] > 0.03
    assert native["c2w2_cats_dogs_aug_max_abs_diff"] > 0.5  # a whole-range pixel replaced by black (measured 1.0)


def test_augmentation_contrast_mean_native_changes_only_the_augmentation_with_contrast(measured):
    native = measured["augmentation_contrast_mean"]["native"]
    # adjust_contrast pulls all channels to one grayscale mean: measured mean 1.9e-2, max 9.4e-2 (factors up to 1.4).
    assert native["c2w4_rps_cnn_mean_abs_diff"] > 5e-3
    assert _pictures_agree(native, "c2w2_cats_dogs_aug"), native  # c2w2 has no RandomContrast


def test_picture_effects_report_the_mean_beside_the_max_and_a_one_pixel_shift_exceeds_the_noise():
    model = probes.SETTINGS["augmentation"]["models"][0]
    keras = {model: probes.structured_images(2, 32).astype(np.float32) / 255}
    shifted = {model: np.roll(keras[model], 1, axis=2)}  # a planted half-pixel-convention error, doubled
    found = probes.effects(keras, shifted)
    assert set(found) == {f"{model}_max_abs_diff", f"{model}_mean_abs_diff"}
    assert not _pictures_agree(found, model) and found[f"{model}_mean_abs_diff"] > 100 * PICTURE_MEAN_NOISE
    assert _pictures_agree(probes.effects(keras, keras), model)
