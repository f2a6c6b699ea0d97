"""``data=synth2_mix``: captioning batches that mix real images with Synth² synthetic embeddings.

Synth² (arXiv 2403.07750, §3.3) trains the VLM on real (image, caption) pairs plus synthetic (caption,
embedding) pairs, where the embedding comes from a text-to-embedding generator and enters the model after
the image encoder. Here every training batch holds exactly ``round(batch_size * synthetic_ratio)`` synthetic
samples and the rest real ones (a fixed composition, so a ratio means the same thing at every step):

- real: shapes scenes of the train split (the limited real budget, ``num_real_scenes``), rendered to
  pixels; the collated batch gives them as ``pixel_values`` and view ``chosen``;
- synthetic: captions from a caption source (``vlmalign.pipelines.synth2.captions``) with the generator's
  embeddings; the batch gives them as ``vision_embeddings`` and view ``synthetic``. The backbone sends them to
  the projector only (``VisionLanguageBackbone.image_features``): they never reach the vision tower.

An epoch is one pass over the real examples (over the synthetic ones when the ratio is 1). Synthetic samples
are drawn from an endless stream of seeded permutations, so a small ratio never repeats the same few.
Validation is on real held-out scenes only. Embeddings are only valid for the vision tower the generator was
trained against, so ``prepare_from_policy`` checks the model's tower is that one, and frozen.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator
from functools import cached_property, lru_cache

import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from vlmalign.data.encoding import EncodedExample, SequenceEncoder, pad_sequences
from vlmalign.data.shapes import CAPTION_PROMPTS, WorldSpec, world_spec
from vlmalign.data.shapes_sft import ShapesSFTDataset
from vlmalign.data.split_datamodule import SplitDataModule, consumed_train_batches
from vlmalign.errors import ConfigError
from vlmalign.models.logprobs import IGNORE_INDEX
from vlmalign.models.synth2_generator import load_generator

log = logging.getLogger(__name__)
MIX_VIEWS = ("chosen", "synthetic")  # real rows, synthetic rows


class SyntheticCaptions(Dataset):
    """Synthetic captioning examples: a caption prompt, the caption as the response, the generator's embedding."""

    def __init__(self, encoder: SequenceEncoder, captions: list, embeddings: torch.Tensor, image_size: int) -> None:
        self.encoder, self.captions, self.embeddings = encoder, captions, embeddings
        self.blank = Image.new("RGB", (image_size, image_size))

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int) -> EncodedExample:
        caption = self.captions[index]
        prompt = random.Random(caption.caption_id).choice(CAPTION_PROMPTS)
        return self.encoder.encode_embedded(caption.caption_id, self.embeddings[index], prompt,
                                            {"chosen": caption.text}, self.blank)


@lru_cache(maxsize=8)
def _permutation(seed: int, size: int) -> tuple[int, ...]:
    """A seeded permutation of range(size); kept, since every sample of a pass draws from the same one."""
    return tuple(torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist())


class MixedBatches(Dataset):
    """Index e * len(self) + k is slot k of epoch e: slot j of each batch is real for j < real_per_batch."""

    def __init__(self, real: Dataset, synthetic: Dataset, batch_size: int, synthetic_per_batch: int, seed: int) -> None:
        self.real, self.synthetic, self.seed = real, synthetic, seed
        self.batch_size, self.synthetic_per_batch = batch_size, synthetic_per_batch
        self.real_per_batch = batch_size - synthetic_per_batch
        epoch_source = len(real) / self.real_per_batch if self.real_per_batch else len(synthetic) / synthetic_per_batch
        self.batches_per_epoch = math.ceil(epoch_source)

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size

    def _draw(self, stream: str, position: int) -> EncodedExample:
        dataset = self.real if stream == "real" else self.synthetic
        cycle, offset = divmod(position, len(dataset))
        return dataset[_permutation(self.seed * 1_000_003 + cycle * 2 + (stream == "synthetic"), len(dataset))[offset]]

    def __getitem__(self, index: int) -> EncodedExample:
        epoch, slot = divmod(index, len(self))
        batch, j = divmod(slot, self.batch_size)
        step = epoch * self.batches_per_epoch + batch
        if j < self.real_per_batch:
            return self._draw("real", step * self.real_per_batch + j)
        return self._draw("synthetic", step * self.synthetic_per_batch + j - self.real_per_batch)


class EpochSequentialSampler(Sampler[int]):
    """Yields epoch e's indices e * n .. e * n + n - 1 in order (``MixedBatches`` does the shuffling), starting
    ``skip`` into the epoch on resume; each ``iter()`` is the next epoch."""

    def __init__(self, num_samples: int, epoch: int = 0, skip: int = 0) -> None:
        self.num_samples, self.epoch, self.skip = num_samples, epoch, skip

    def __iter__(self) -> Iterator[int]:
        start = self.epoch * self.num_samples
        indices = range(start + self.skip, start + self.num_samples)
        self.epoch, self.skip = self.epoch + 1, 0
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples


class MixCollator:
    """Real rows first (``pixel_values``, view ``chosen``), then synthetic rows (``vision_embeddings``, view
    ``synthetic``); one common padded length; ``image_index`` points into real images then embeddings."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[EncodedExample]) -> dict:
        real = [ex for ex in examples if ex.vision_embedding is None]
        synthetic = [ex for ex in examples if ex.vision_embedding is not None]
        rows = real + synthetic
        sequences, labels = zip(*(ex.tokens("chosen") for ex in rows))
        input_ids, attention_mask = pad_sequences(list(sequences), self.pad_token_id)
        label_tensor, _ = pad_sequences(list(labels), IGNORE_INDEX)
        views = {}
        for view, part in (("chosen", slice(0, len(real))), ("synthetic", slice(len(real), len(rows)))):
            views[view] = {"input_ids": input_ids[part], "attention_mask": attention_mask[part],
                           "labels": label_tensor[part], "image_index": torch.arange(len(rows))[part],
                           "prompt_length": torch.tensor([len(ex.prompt_ids) for ex in rows[part]], dtype=torch.long)}
        batch = {"sample_ids": [ex.sample_id for ex in rows], "views": views}
        if real:
            batch["pixel_values"] = torch.stack([ex.pixel_values for ex in real])
        if synthetic:
            batch["vision_embeddings"] = torch.stack([ex.vision_embedding for ex in synthetic])
        return batch


class Synth2MixDataModule(SplitDataModule):
    def __init__(
        self,
        processor,
        generator_path: str,
        captions,
        views: tuple[str, ...] = MIX_VIEWS,
        synthetic_ratio: float = 0.5,
        num_synthetic: int = 4000,
        num_real_scenes: int = 1000,
        num_val_scenes: int = 64,
        world: WorldSpec | dict | None = None,
        max_length: int = 160,
        batch_size: int = 16,
        num_workers: int = 0,
        shuffle_seed: int = 0,
    ) -> None:
        super().__init__()
        world = world_spec(world or {}, "world")
        if not 0.0 <= synthetic_ratio <= 1.0:
            raise ConfigError(f"data.synthetic_ratio={synthetic_ratio} must be in [0, 1] (the synthetic share of "
                              "a batch)")
        self.synthetic_per_batch = round(batch_size * synthetic_ratio)
        if batch_size < 1 or num_real_scenes < 0 or num_synthetic < 0:
            raise ConfigError(f"data.batch_size={batch_size} must be >= 1 and data.num_real_scenes="
                              f"{num_real_scenes}, data.num_synthetic={num_synthetic} >= 0")
        if self.synthetic_per_batch < batch_size and num_real_scenes < 1:
            raise ConfigError(f"data.synthetic_ratio={synthetic_ratio} leaves real slots in every batch but "
                              "data.num_real_scenes=0")
        if self.synthetic_per_batch and num_synthetic < 1:
            raise ConfigError(f"data.synthetic_ratio={synthetic_ratio} asks for synthetic samples but "
                              "data.num_synthetic=0")
        unknown = [v for v in views if v not in MIX_VIEWS]
        if unknown:
            raise ConfigError(f"the objective needs views {unknown}; data=synth2_mix has {list(MIX_VIEWS)} "
                              "(real and synthetic captions): use objective=synth2")
        if self.synthetic_per_batch and "synthetic" not in views:
            raise ConfigError(f"data.synthetic_ratio={synthetic_ratio} puts synthetic samples in every batch but the "
                              f"objective only reads views {list(views)}: they would be dropped; use objective=synth2")
        self.generator_path = str(generator_path)
        self.generator = load_generator(generator_path)
        self.caption_source, self.num_synthetic, self.image_size = captions, num_synthetic, world.image_size
        self.encoder = SequenceEncoder(processor, max_length)
        self.collator = MixCollator(processor.tokenizer.pad_token_id)
        self.batch_size, self.num_workers, self.shuffle_seed = batch_size, num_workers, shuffle_seed
        common = dict(world=world, caption_fraction=1.0, existence_fraction=0.0)
        self.real_set = ShapesSFTDataset(self.encoder, "train", num_real_scenes, **common)
        self.val_set = ShapesSFTDataset(self.encoder, "val", num_val_scenes, **common)
        trained_on = self.generator.meta.get("real", {})
        world_settings = world.to_dict()
        same_world = trained_on.get("world", world_settings) == world_settings
        if trained_on.get("num_scenes", 0) > num_real_scenes or not same_world:
            log.warning("the generator was trained on %s real scenes of world %s, more than this run's real budget "
                        "(%d of world %s) or another world: the comparison with real-only training is not like for "
                        "like", trained_on.get("num_scenes"), trained_on.get("world"), num_real_scenes, world_settings)
        self._description = {"task": "synth2_mix", "synthetic_ratio": synthetic_ratio,
                             "synthetic_per_batch": self.synthetic_per_batch, "num_real_scenes": num_real_scenes,
                             "num_synthetic": num_synthetic, "val": num_val_scenes, "world": world_settings,
                             "max_length": max_length,
                             "captions": getattr(captions, "identity", None), "generator": self.generator_path,
                             "generator_meta": {k: self.generator.meta.get(k) for k in ("real", "held_out")}}

    @cached_property
    def synthetic_set(self) -> SyntheticCaptions:
        """The synthetic captions and their embeddings, made once (the generator runs here, not per step)."""
        captions = self.caption_source.captions(self.num_synthetic) if self.synthetic_per_batch else []
        embeddings = self.generator.embed([c.text for c in captions])
        return SyntheticCaptions(self.encoder, captions, embeddings, self.image_size)

    @cached_property
    def train_set(self) -> MixedBatches:
        return MixedBatches(self.real_set, self.synthetic_set, self.batch_size, self.synthetic_per_batch,
                            self.shuffle_seed)

    def prepare_from_policy(self, backbone) -> None:
        """Refuse a model whose vision tower is not the (frozen) one the generator's embeddings imitate."""
        from vlmalign.models.weights import weights_digest

        tower = backbone.core.model.vision_tower
        expected = self.generator.meta.get("vision_tower_digest")
        if weights_digest(tower) != expected:
            raise ConfigError(
                f"data.generator_path={self.generator_path}: the generator was trained against another vision tower "
                "(digest mismatch); its embeddings mean nothing to this model. Start the model from the same base "
                "(base=sft_shapes_vision) or retrain the generator (vlmalign-synth2-generator)"
            )
        if any(p.requires_grad for p in tower.parameters()):
            raise ConfigError("data=synth2_mix: the vision tower trains, so the generator's embeddings go stale as it "
                              "moves; freeze it (model.freeze=[model.vision_tower], as experiment=synth2/mix does)")

    def encode_once(self) -> None:
        raise ConfigError("performance.encode_once is not supported by data=synth2_mix (its examples are already "
                          "cheap: synthetic ones have no pixels); leave it false")

    def train_dataloader(self):
        dataset = self.train_set
        consumed = consumed_train_batches(self.trainer) if self.trainer is not None else 0
        epoch, batch = divmod(consumed, dataset.batches_per_epoch)
        return self._loader(dataset, EpochSequentialSampler(len(dataset), epoch, batch * self.batch_size))
