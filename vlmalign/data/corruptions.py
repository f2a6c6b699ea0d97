"""Image corruptions m' for mDPO's conditional term (Wang et al. 2024, §3 and Table 3).

Each works on a batch of processed pixel tensors (B, C, H, W) and takes one ``torch.Generator`` per
sample, seeded from (corruption seed, sample id) by the collator: the policy, the reference and a
precomputed reference cache therefore all see the *same* m' for a sample (the official code draws
two different crops for policy and reference).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vlmalign.errors import ConfigError
from vlmalign.utils.files import fingerprint


def sample_generator(seed: int, sample_id: str) -> torch.Generator:
    return torch.Generator().manual_seed(int(fingerprint([seed, sample_id]), 16) % (2**63))


class ImageCorruption:
    name = "base"

    def __call__(self, pixels: Tensor, generators: list[torch.Generator]) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def apply_each(self, images: list[Tensor], generators: list[torch.Generator]) -> list[Tensor]:
        """The same corruption on (C, H, W) images that may differ in size (Qwen2-VL's dynamic resolution):
        one image at a time, each with its own generator, so image i gets what it gets in a batch."""
        return [self(image[None], [gen])[0] for image, gen in zip(images, generators)]


class RandomResizedCrop(ImageCorruption):
    """Keep a random crop of ``scale`` of the area (aspect ratio in ``ratio``), resized back to the input size.

    mDPO's default is scale (0.01, 0.2): the crop keeps 1-20% of the image (torchvision's
    RandomResizedCrop semantics, re-implemented on tensors since torchvision has no CPU wheel here).
    """

    def __init__(self, scale: tuple[float, float] = (0.01, 0.2), ratio: tuple[float, float] = (3 / 4, 4 / 3)):
        lo, hi = float(scale[0]), float(scale[1])
        if not 0.0 < lo <= hi <= 1.0:
            raise ConfigError(f"corruption.scale={list(scale)} must satisfy 0 < min <= max <= 1 (fractions of area)")
        self.scale, self.ratio = (lo, hi), (float(ratio[0]), float(ratio[1]))
        self.name = f"crop_{lo:g}_{hi:g}"

    def _box(self, height: int, width: int, gen: torch.Generator) -> tuple[int, int, int, int]:
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * (self.scale[0] + (self.scale[1] - self.scale[0]) * torch.rand(1, generator=gen).item())
            aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * torch.rand(1, generator=gen).item())
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=gen))
                left = int(torch.randint(0, width - w + 1, (1,), generator=gen))
                return top, left, h, w
        side = max(1, round(math.sqrt(area * self.scale[1])))  # fallback: a centred square
        return (height - side) // 2, (width - side) // 2, side, side

    def __call__(self, pixels: Tensor, generators: list[torch.Generator]) -> Tensor:
        height, width = pixels.shape[-2:]
        out = []
        for image, gen in zip(pixels, generators):
            top, left, h, w = self._box(height, width, gen)
            crop = image[None, :, top : top + h, left : left + w]
            out.append(F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)[0])
        return torch.stack(out)


class GaussianNoise(ImageCorruption):
    """Additive noise in normalised pixel space (mDPO Table 3's "noise" row)."""

    def __init__(self, std: float = 1.0):
        self.std = float(std)
        self.name = f"noise_{std:g}"

    def __call__(self, pixels: Tensor, generators: list[torch.Generator]) -> Tensor:
        noise = torch.stack([torch.randn(pixels.shape[1:], generator=g) for g in generators])
        return pixels + self.std * noise.to(pixels.dtype)


class PatchMask(ImageCorruption):
    """Zero (the normalised mean) a random ``fraction`` of ``patch`` x ``patch`` blocks."""

    def __init__(self, patch: int = 8, fraction: float = 0.5):
        if not 0.0 < fraction <= 1.0:
            raise ConfigError(f"corruption.fraction={fraction} must lie in (0, 1]")
        self.patch, self.fraction = int(patch), float(fraction)
        self.name = f"mask_{patch}_{fraction:g}"

    def __call__(self, pixels: Tensor, generators: list[torch.Generator]) -> Tensor:
        height, width = pixels.shape[-2:]
        rows, cols = math.ceil(height / self.patch), math.ceil(width / self.patch)
        out = pixels.clone()
        for image, gen in zip(out, generators):
            keep = torch.rand(rows * cols, generator=gen) >= self.fraction
            mask = keep.view(rows, cols).repeat_interleave(self.patch, 0).repeat_interleave(self.patch, 1)
            image.mul_(mask[:height, :width].to(image.dtype))
        return out


class OtherImage(ImageCorruption):
    """A different image of the same batch (mDPO Table 3's "random image" row); needs batch size >= 2."""

    name = "other_image"

    def __call__(self, pixels: Tensor, generators: list[torch.Generator]) -> Tensor:
        return torch.stack(self.apply_each(list(pixels), generators))

    def apply_each(self, images: list[Tensor], generators: list[torch.Generator]) -> list[Tensor]:
        size = len(images)
        if size < 2:
            raise ConfigError("corruption=other_image needs data.batch_size >= 2 (it borrows another sample's image)")
        shifts = [1 + int(torch.randint(0, size - 1, (1,), generator=g)) for g in generators]
        return [images[(i + s) % size] for i, s in enumerate(shifts)]
