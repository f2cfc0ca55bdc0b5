"""Training-time augmentation of NHWC float32 batches with torchvision.transforms.v2. Mirror: tf_models/augment.py.

`apply_aligned` applies parameters drawn by parity.augment.draw_parameters (the Keras layers'
distributions) op by op as the Keras layers do: torchvision's affine takes the Keras angle,
shift and 1 / zoom; Keras' fill_mode is emulated by padding (augmentation_fill_mode) and Keras'
per-channel contrast is computed in torch ops (augmentation_contrast_mean). `native_augmenter` is
what a torch user writes: RandomHorizontalFlip, RandomAffine and ColorJitter with the course's ranges.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torchvision.transforms import v2 as T
from torchvision.transforms.v2 import functional as F

from parity.augment import COLUMN, GEOMETRIC, TORCH_PADDING, AugmentSettings, keras_transforms, padding_for, ranges

BILINEAR = T.InterpolationMode.BILINEAR


def _torch_affine(op: str, row: np.ndarray) -> dict:
    """torchvision affine arguments of one sample's op. Keras' transforms map output to input pixels,
    torchvision takes the forward motion: Keras' angle a (x_in = R(a) x_out, turning the picture
    counter-clockwise on screen for a > 0) is affine's -a (its angle turns clockwise), the shift is the
    same, the magnification is 1 / zoom; Keras' shear x_in = x + tan(s) y is affine's shear s."""
    angle, shift, scale, shear = 0.0, [0.0, 0.0], 1.0, [0.0, 0.0]
    if op == "rotation":
        angle = -float(row[COLUMN["angle"]])
    elif op == "translation":
        shift = [float(row[COLUMN["dx"]]), float(row[COLUMN["dy"]])]
    elif op == "zoom":
        scale = 1.0 / float(row[COLUMN["zoom"]])
    else:
        shear = [float(row[COLUMN["shear"]]), 0.0]
    return {"angle": angle, "translate": shift, "scale": scale, "shear": shear}


def _geometric(image: torch.Tensor, op: str, row: np.ndarray, transform: np.ndarray,
               settings: AugmentSettings) -> torch.Tensor:
    """One geometric op on one CHW image; with keras_fill, padded with Keras' fill mode and cropped back."""
    arguments = _torch_affine(op, row)
    if not settings.keras_fill:
        return F.affine(image, **arguments, interpolation=BILINEAR, fill=0.0)
    height, width = image.shape[-2:]
    pad = padding_for(transform, height, width)
    if pad >= min(height, width):
        raise ValueError(f"the {op} range needs {pad} pixels of {settings.spec.fill_mode} fill around a "
                         f"{height}x{width} image, more than one reflection; use a smaller range")
    padded = F.pad(image, [pad, pad, pad, pad], padding_mode=TORCH_PADDING[settings.spec.fill_mode])
    moved = F.affine(padded, **arguments, interpolation=BILINEAR, fill=0.0)
    return moved[..., pad:pad + height, pad:pad + width]


def _contrast(images: torch.Tensor, factors: torch.Tensor, settings: AugmentSettings) -> torch.Tensor:
    """Keras RandomContrast on NCHW: (x - channel mean) * f + channel mean, clipped to the value range; with
    augmentation_contrast_mean native, torchvision's adjust_contrast (grayscale mean) on the range mapped to [0, 1]."""
    low, high = settings.value_range
    if settings.channel_mean_contrast:
        mean = images.mean(dim=(-2, -1), keepdim=True)
        return ((images - mean) * factors.view(-1, 1, 1, 1) + mean).clamp(low, high)
    unit = (images - low) / (high - low)
    adjusted = torch.stack([F.adjust_contrast(image, float(f)) for image, f in zip(unit, factors)])
    return adjusted * (high - low) + low


def apply_aligned(images: torch.Tensor, params: np.ndarray, settings: AugmentSettings) -> torch.Tensor:
    """NHWC float32 `images` augmented with `params` (parity.augment.draw_parameters rows), op by op."""
    height, width = images.shape[1:3]
    x = images.permute(0, 3, 1, 2)
    transforms = keras_transforms(params, height, width)
    for op in settings.ops:
        if op == "flip":
            flips = torch.from_numpy(params[:, COLUMN["flip"]] > 0.5)
            x = torch.where(flips.view(-1, 1, 1, 1), F.horizontal_flip(x), x)
        elif op == "contrast":
            x = _contrast(x, torch.from_numpy(params[:, COLUMN["contrast"]].copy()), settings)
        else:
            x = torch.stack([_geometric(image, op, row, transform, settings)
                             for image, row, transform in zip(x, params, transforms[op])])
    return x.permute(0, 2, 3, 1).contiguous()


# ---------------------------------------------------------------- native mode


class UnitRangeContrast(torch.nn.Module):
    """ColorJitter's contrast on images whose pixels span `value_range`: mapped to [0, 1], adjusted, mapped back."""

    def __init__(self, factor: tuple[float, float], value_range: tuple[float, float]) -> None:
        super().__init__()
        self.jitter = T.ColorJitter(contrast=factor)
        self.value_range = value_range

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        low, high = self.value_range
        return self.jitter((image - low) / (high - low)) * (high - low) + low


def native_augmenter(settings: AugmentSettings) -> T.Compose:
    """The course's ranges as torchvision.transforms.v2 on one CHW image (torch's global RNG draws)."""
    spec, bounds = settings.spec, ranges(settings.spec)
    steps: list[torch.nn.Module] = []
    if spec.flip:
        steps.append(T.RandomHorizontalFlip(p=0.5))
    if any(op in settings.ops for op in GEOMETRIC):
        steps.append(T.RandomAffine(
            degrees=bounds["rotation_degrees"],
            translate=(spec.translation[1], spec.translation[0]) if any(spec.translation) else None,
            scale=bounds["image_scale"], shear=bounds["shear_degrees"] if spec.shear else None,
            interpolation=BILINEAR, fill=0.0))
    if "contrast" in settings.ops:
        steps.append(UnitRangeContrast(bounds["contrast"], settings.value_range))
    return T.Compose(steps)


def apply_native(images: torch.Tensor, augmenter: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """NHWC `images`, each augmented by `augmenter` with its own draw (v2 transforms draw once per call)."""
    x = images.permute(0, 3, 1, 2)
    return torch.stack([augmenter(image) for image in x]).permute(0, 2, 3, 1).contiguous()


def native_ranges(augmenter: T.Compose) -> dict[str, tuple[float, float]]:
    """The intervals the transforms of `augmenter` sample from, read from the transform objects (parity.augment.ranges'
    units)."""
    found: dict[str, tuple[float, float]] = {}
    for step in augmenter.transforms:
        if isinstance(step, T.RandomAffine):
            found["rotation_degrees"] = (float(step.degrees[0]), float(step.degrees[1]))
            horizontal, vertical = step.translate or (0.0, 0.0)
            found["translate_width"] = (-float(horizontal), float(horizontal))
            found["translate_height"] = (-float(vertical), float(vertical))
            found["image_scale"] = (float(step.scale[0]), float(step.scale[1])) if step.scale else (1.0, 1.0)
            found["shear_degrees"] = (float(step.shear[0]), float(step.shear[1])) if step.shear else (0.0, 0.0)
        elif isinstance(step, UnitRangeContrast):
            found["contrast"] = (float(step.jitter.contrast[0]), float(step.jitter.contrast[1]))
    # RandomAffine holds every geometric range; one it leaves at the identity is no transform (Keras has no layer).
    return {name: bounds for name, bounds in found.items() if bounds[0] != bounds[1]}
