"""The shapes world's per-domain examples, collated, for the activation router init of ``vlmalign-btx-merge``
(each expert's mean FFN input on the domain it was branched on; ``vlmalign/models/router_init.py``)."""

from __future__ import annotations

from vlmalign.data.collate import MultiViewCollator
from vlmalign.data.encoding import SequenceEncoder
from vlmalign.data.shapes import world_spec
from vlmalign.data.shapes_sft import ShapesSFTDataset
from vlmalign.errors import ConfigError


def shapes_domain_batches(world: dict, num_scenes: int, batch_size: int, max_length: int):
    """A ``DomainBatches`` (``vlmalign/pipelines/btx/merge.py``) over ``num_scenes`` train scenes of ``world``:
    the examples of one ``data.domain`` (None: the SFT mixture), in order, ``batch_size`` per batch."""
    spec = world_spec(world, "router.world")

    def batches(processor, domain: str | None) -> list[dict]:
        encoder = SequenceEncoder(processor, max_length)
        collate = MultiViewCollator(processor.tokenizer.pad_token_id, ("chosen",))
        try:
            dataset = ShapesSFTDataset(encoder, "train", num_scenes, spec, domain=domain)
        except ValueError as error:
            raise ConfigError(f"router.domains: {error}") from error
        examples = [dataset[i] for i in range(len(dataset))]
        return [collate(examples[i:i + batch_size]) for i in range(0, len(examples), batch_size)]

    return batches
