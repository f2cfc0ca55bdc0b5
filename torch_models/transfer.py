"""Transfer learning: the course's frozen InceptionV3 trunk, cut at a mixed block, with a dense head.

The trunk is torchvision's Inception3 (module names kept: Conv2d_1a_3x3, Mixed_5b.branch1x1, ...) up
to the block of Keras' cut (parity.inception.MIXED_BLOCKS: mixed7 = Mixed_6e), with Keras' semantics:
BatchNorm per align.torch_batchnorm (eps 1e-3) whose weight stands for scale=False (1, frozen), the
'same' average pooling of the pool branches without the padding (avgpool_count_include_pad), and a
frozen trunk whose BatchNorm stays in inference mode while the model trains (frozen_batchnorm_mode).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception_v3
from torchvision.models.inception import InceptionA, InceptionB, InceptionC

from parity import align
from parity.catalog import ModelSpec
from parity.inception import KERAS_LOAD_ORDER, MIXED_BLOCKS, canonical_name, read_notop_h5, weights_file
from torch_models.base import REGISTRY, CourseModule, output_units
from torch_models.layers import batchnorm2d
from torch_models.weights import load_keras_layers_into


class ConvBatchNorm(nn.Module):
    """Keras' conv2d_bn: Conv2D(use_bias=False) -> BatchNormalization(scale=False) -> relu (torchvision BasicConv2d)."""

    def __init__(self, in_channels: int, out_channels: int, alignment: align.Alignment, **conv_options) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_options)
        self.bn = batchnorm2d(out_channels, alignment)
        self.bn.weight.requires_grad_(False)  # scale=False: Keras has no gamma; 1 (torch's init), never trained

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def same_avg_pool(alignment: align.Alignment) -> nn.AvgPool2d:
    """Keras AveragePooling2D((3, 3), strides=1, padding='same'); align.avgpool_count_include_pad decides the divisor."""
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=align.avgpool_count_include_pad(alignment))


class KerasInceptionA(InceptionA):
    """torchvision's InceptionA (mixed0-2) with the pool branch's average pooling from `same_avg_pool`."""

    def __init__(self, in_channels: int, pool_features: int, conv_block, alignment: align.Alignment) -> None:
        super().__init__(in_channels, pool_features, conv_block)
        self.pool = same_avg_pool(alignment)

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(self.pool(x))]


class KerasInceptionC(InceptionC):
    """torchvision's InceptionC (mixed4-7) with the pool branch's average pooling from `same_avg_pool`."""

    def __init__(self, in_channels: int, channels_7x7: int, conv_block, alignment: align.Alignment) -> None:
        super().__init__(in_channels, channels_7x7, conv_block)
        self.pool = same_avg_pool(alignment)

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                     self.branch7x7dbl_5):
            branch7x7dbl = conv(branch7x7dbl)
        return [self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(self.pool(x))]


class InceptionTrunk(nn.Sequential):
    """torchvision Inception3's modules from Conv2d_1a_3x3 to the block of Keras' `cut_layer`, on NCHW input."""

    def __init__(self, cut_layer: str, alignment: align.Alignment) -> None:
        if cut_layer not in MIXED_BLOCKS:
            raise ValueError(f"InceptionV3 cut layer {cut_layer!r} unknown; one of {', '.join(MIXED_BLOCKS)}")
        conv = functools.partial(ConvBatchNorm, alignment=alignment)
        blocks = [conv, functools.partial(KerasInceptionA, conv_block=conv, alignment=alignment),
                  functools.partial(InceptionB, conv_block=conv),
                  functools.partial(KerasInceptionC, conv_block=conv, alignment=alignment)]
        full = inception_v3(weights=None, aux_logits=False, init_weights=False,
                            inception_blocks=blocks + [nn.Identity] * 3)  # Mixed_7a-c and AuxLogits: cut away
        kept = OrderedDict()
        for name, module in full.named_children():
            kept[name] = module
            if name == MIXED_BLOCKS[cut_layer]:
                break
        super().__init__(kept)
        self.keras_blocks = {torch_name: keras_name for keras_name, torch_name in MIXED_BLOCKS.items()
                             if torch_name in kept}

    def keras_layers(self) -> dict[str, nn.Module]:
        """conv2d_i / batch_normalization_i -> the conv / bn of the i-th ConvBatchNorm in registration order, which
        is the order keras/src/applications/inception_v3.py creates its conv2d_bn layers (shapes checked by the
        transfer, values by the forward check); listed in Keras' model.layers order (KERAS_LOAD_ORDER)."""
        units = [module for module in self.modules() if isinstance(module, ConvBatchNorm)]
        layers = {}
        for index, unit in enumerate(units):
            layers[canonical_name("conv2d", index)] = unit.conv
            layers[canonical_name("batch_normalization", index)] = unit.bn
        return {name: layers[name] for name, _ in KERAS_LOAD_ORDER if name in layers}

    def block_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The output of every mixed block (NCHW), keyed by its Keras name."""
        outputs = {}
        for name, module in self.named_children():
            x = module(x)
            if name in self.keras_blocks:
                outputs[self.keras_blocks[name]] = x
        return outputs


def set_frozen_mode(trunk: nn.Module, training: bool, frozen: bool, alignment: align.Alignment) -> None:
    """Put `trunk` in train/eval mode as Keras would: a frozen trunk stays in eval() (align.frozen_batchnorm_inference)."""
    trunk.train(training and not (frozen and align.frozen_batchnorm_inference(alignment)))


class InceptionTransfer(CourseModule):
    """trunk (InceptionTrunk, frozen unless trainable_base) -> flatten -> hidden Linear + ReLU -> dropout -> output."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        height, width, channels = self.spec.input_shape
        self.trunk = InceptionTrunk(h.cut_layer, alignment)
        if not h.trainable_base:
            self.trunk.requires_grad_(False)  # requires_grad is not in a state_dict: the builder freezes, not the transfer
        with torch.no_grad():
            features = self.trunk.eval()(torch.zeros(1, channels, height, width)).numel()
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(features, h.hidden_units)
        self.dropout = nn.Dropout(h.dropout)
        self.output = nn.Linear(h.hidden_units, output_units(self.spec))
        path = weights_file(h)
        if path is not None:
            self.load_notop_h5(path)
        self.train()

    def train(self, mode: bool = True) -> InceptionTransfer:
        super().train(mode)
        set_frozen_mode(self.trunk, mode, not self.spec.layers.trainable_base, self.alignment)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)  # align.tensor_layout: the shared arrays are NHWC; torch convolutions want NCHW
        return self.output(self.dropout(torch.relu(self.hidden(self.flatten(self.trunk(x))))))

    def keras_layers(self) -> dict[str, nn.Module]:
        return {**self.trunk.keras_layers(), "hidden": self.hidden, "output": self.output}

    def load_notop_h5(self, path: Path) -> None:
        """The trunk's weights from the course's legacy Keras .h5 (parity.inception.read_notop_h5), by Keras name.

        Always copied (align.ALIGNED): pretrained weights are the model, not an initialisation choice. The file's
        layers beyond the cut must be exactly the ones the trunk leaves out.
        """
        wanted = self.trunk.keras_layers()
        layers = read_notop_h5(path, trainable=self.spec.layers.trainable_base)
        kept = [layer for layer in layers if layer.name in wanted]
        if len(kept) != len(wanted):
            missing = sorted(set(wanted) - {layer.name for layer in kept})
            raise ValueError(f"{path}: no weights for trunk layers {', '.join(missing)}")
        load_keras_layers_into(self.trunk, kept, align.ALIGNED)

    @torch.no_grad()
    def block_outputs(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Inference outputs of every mixed block (NHWC, as Keras has them) and of the model (`outputs`)."""
        self.eval()
        x = torch.from_numpy(inputs)
        blocks = self.trunk.block_outputs(x.permute(0, 3, 1, 2))
        arrays = {name: value.permute(0, 2, 3, 1).numpy() for name, value in blocks.items()}
        hidden = torch.relu(self.hidden(self.flatten(next(reversed(blocks.values())))))
        return {**arrays, "hidden": hidden.numpy(), "outputs": self.predict_outputs(self(x)).numpy()}


@REGISTRY.register
def inception_transfer(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c2w3_inception_cats_dogs, c2w3_inception_horse_human."""
    return InceptionTransfer(spec.id, alignment)


def run_blocks(job: dict[str, Any]) -> dict[str, Any]:
    """The torch side of a `blocks` job (parity.inception.measure_blocks): the Keras export loaded, then the
    inference values of every mixed block, the hidden layer and the output; torch built under `native`."""
    from parity import jobs
    from parity.inception import blocks_path, blocks_tag
    from parity.weights import load_keras_layers
    from torch_models import build

    workdir = Path(job["workdir"])
    alignment = align.Alignment.from_job(job.get("native", ()))
    for model_id in job["models"]:
        model = build(model_id, alignment)
        load_keras_layers_into(model, load_keras_layers(jobs.init_weights_path(workdir, blocks_tag(model_id, job["seed"]))),
                               align.ALIGNED)
        values = model.block_outputs(np.load(jobs.probe_inputs_path(workdir, model_id)))
        np.savez(blocks_path(workdir, "lightning", model_id, job["seed"]), **values)
    return {}
