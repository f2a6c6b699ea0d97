"""How each model family lays out one image's processed pixels, and how a batch of them is put together.

The data pipeline keeps, per example, what the model's processor returned for its one image: ``pixel_values``
plus any extra image tensors (``image_grid_thw``, ``pixel_attention_mask``). Families differ in shape:

- LLaVA, PaliGemma (and the tiny shapes model): one (C, H, W) tensor per image; a batch stacks them.
  This is the default (``layout=None``) and the path the tiny model has always taken.
- Qwen2-VL / Qwen2.5-VL (dynamic resolution): a flat list of patches (P, C·T·p·p) per image plus its
  (t, h, w) patch grid; a batch *concatenates* the patch lists and stacks the grids (what the processor
  itself does for several images).
- Idefics3 / SmolVLM: (n_crops, C, H, W) plus a (n_crops, H, W) pixel mask per image; a batch stacks them
  as (N, n_crops, C, H, W), zero-padding the crop axis (zero crops are dropped by the model, as the
  processor's own padding is).

mDPO's corruptions act on (C, H, W) images, so a layout also maps one image's processed pixels to such an
image and back (``to_image`` / ``from_image``): exact inverses of the processor's patch flattening, so a
corrupted Qwen image is the crop of the very pixels the model sees, not a re-run of the processor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vlmalign.errors import ConfigError

# Processor outputs that belong to the text, not to the image.
TEXT_KEYS = frozenset({"input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids", "labels"})

ImageInputs = dict[str, Tensor]  # extra per-image processor outputs besides pixel_values


class PixelLayout:
    """Base: one image's pixels are a (C, H, W) tensor; a batch stacks them."""

    name = "image"

    def collate(self, pixels: list[Tensor], extras: list[ImageInputs]) -> tuple[Tensor, ImageInputs]:
        return torch.stack(pixels), {}

    def to_image(self, pixels: Tensor, extras: ImageInputs) -> Tensor:
        return pixels

    def from_image(self, image: Tensor, extras: ImageInputs) -> tuple[Tensor, ImageInputs]:
        return image, extras


@dataclass(frozen=True)
class PatchListLayout(PixelLayout):
    """Qwen2-VL / Qwen2.5-VL: (P, C·T·p·p) patches in merge-window order, plus ``image_grid_thw`` (1, 3).

    The processor resizes to multiples of p·m, splits into p×p patches, orders them by m×m merge window
    (rows of windows, then the m×m patches inside one) and repeats a still image over the T temporal
    slots of each patch; ``to_image``/``from_image`` undo and redo exactly that.
    """

    patch_size: int
    temporal_patch_size: int
    merge_size: int
    name = "patch_list"

    def collate(self, pixels: list[Tensor], extras: list[ImageInputs]) -> tuple[Tensor, ImageInputs]:
        return torch.cat(pixels), {"image_grid_thw": torch.cat([e["image_grid_thw"] for e in extras])}

    def to_image(self, pixels: Tensor, extras: ImageInputs) -> Tensor:
        t, gh, gw = (int(v) for v in extras["image_grid_thw"].reshape(-1, 3)[0])
        if t != 1:
            raise ConfigError(f"image_grid_thw={[t, gh, gw]}: corruptions are defined for still images (t = 1) only")
        p, tp, m = self.patch_size, self.temporal_patch_size, self.merge_size
        channels = pixels.shape[1] // (tp * p * p)
        x = pixels.reshape(gh // m, gw // m, m, m, channels, tp, p, p)[:, :, :, :, :, 0]
        # (gh/m, gw/m, m, m, C, p, p) -> (C, gh/m, m, p, gw/m, m, p)
        return x.permute(4, 0, 2, 5, 1, 3, 6).reshape(channels, gh * p, gw * p)

    def from_image(self, image: Tensor, extras: ImageInputs) -> tuple[Tensor, ImageInputs]:
        p, tp, m = self.patch_size, self.temporal_patch_size, self.merge_size
        channels, height, width = image.shape
        gh, gw = height // p, width // p
        x = image.reshape(channels, gh // m, m, p, gw // m, m, p).permute(1, 4, 2, 5, 0, 3, 6)
        x = x[:, :, :, :, :, None].expand(-1, -1, -1, -1, -1, tp, -1, -1)
        grid = torch.tensor([[1, gh, gw]], dtype=extras["image_grid_thw"].dtype)
        return x.reshape(gh * gw, channels * tp * p * p).contiguous(), {"image_grid_thw": grid}


class CropsLayout(PixelLayout):
    """Idefics3 / SmolVLM: (n_crops, C, H, W) plus ``pixel_attention_mask`` (n_crops, H, W) per image."""

    name = "crops"

    def collate(self, pixels: list[Tensor], extras: list[ImageInputs]) -> tuple[Tensor, ImageInputs]:
        crops = max(p.shape[0] for p in pixels)

        def padded(tensors: list[Tensor]) -> Tensor:
            out = tensors[0].new_zeros((len(tensors), crops, *tensors[0].shape[1:]))
            for row, tensor in enumerate(tensors):
                out[row, : tensor.shape[0]] = tensor
            return out

        out_extras = {}
        if all("pixel_attention_mask" in e for e in extras):
            out_extras["pixel_attention_mask"] = padded([e["pixel_attention_mask"] for e in extras])
        return padded(pixels), out_extras

    def to_image(self, pixels: Tensor, extras: ImageInputs) -> Tensor:
        if pixels.shape[0] != 1:
            raise ConfigError(
                f"the processor split this image into {pixels.shape[0]} crops; mDPO's corrupted image m' is defined on "
                "one image, so corrupted-image views need image splitting off: set "
                "model.processor_kwargs.do_image_splitting=false (the SmolVLM / Idefics3 presets do)"
            )
        return pixels[0]

    def from_image(self, image: Tensor, extras: ImageInputs) -> tuple[Tensor, ImageInputs]:
        return image[None], extras


def layout_for(processor, outputs) -> PixelLayout | None:
    """The layout of this processor's image outputs; None for the default (C, H, W) one."""
    if "image_grid_thw" in outputs:
        image_processor = processor.image_processor
        return PatchListLayout(int(image_processor.patch_size), int(image_processor.temporal_patch_size),
                               int(image_processor.merge_size))
    if outputs["pixel_values"].ndim == 5:
        return CropsLayout()
    return None


def split_outputs(outputs, layout: PixelLayout | None) -> tuple[Tensor, ImageInputs]:
    """One image's (pixel_values, extras) from a processor call on one prompt with one image."""
    extras = {k: v for k, v in outputs.items() if k not in TEXT_KEYS and k != "pixel_values" and torch.is_tensor(v)}
    if isinstance(layout, PatchListLayout):  # no batch axis: the patches of every image are concatenated
        return outputs["pixel_values"], extras
    return outputs["pixel_values"][0], {k: v[0] for k, v in extras.items()}


def batch_images(
    pixels: list[Tensor], extras: list[ImageInputs], layout: PixelLayout | None
) -> tuple[Tensor, ImageInputs]:
    """A batch's pixel_values and extra image tensors (kwargs of ``encode_images`` / ``generate``)."""
    return (torch.stack(pixels), {}) if layout is None else layout.collate(pixels, extras)
