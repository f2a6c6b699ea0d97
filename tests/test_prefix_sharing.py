"""Speed levers give the same numbers as the plain path: shared image + prompt prefixes, encode-once data."""

import pytest
import torch
from PIL import Image

from vlmalign.data.collate import MultiViewCollator
from vlmalign.data.corruptions import RandomResizedCrop
from vlmalign.data.encoded_once import EncodedOnce
from vlmalign.data.encoding import SequenceEncoder
from vlmalign.models import load_backbone
from vlmalign.models.prefix_sharing import pack_views
from vlmalign.models.views import view_logps

MDPO_VIEWS = ("chosen", "rejected", "chosen_corrupted")


def _examples(processor):
    """Prompts of different lengths and responses of different lengths, so every padding case occurs."""
    encoder = SequenceEncoder(processor, max_length=64)
    return [
        encoder.encode("a", Image.new("RGB", (32, 32), "red"), "describe the image .",
                       {"chosen": "a red circle .", "rejected": "a blue square at the top ."}),
        encoder.encode("b", Image.new("RGB", (32, 32), "blue"), "is there a blue square ?",
                       {"chosen": "yes", "rejected": "no"}),
        encoder.encode("c", Image.new("RGB", (32, 32), "green"), "describe .",
                       {"chosen": "a green square at the left . a red circle .", "rejected": "a circle ."}),
    ]


def _batch(processor, views):
    collate = MultiViewCollator(processor.tokenizer.pad_token_id, views, corruption=RandomResizedCrop())
    return collate(_examples(processor))


def _logps_and_grads(backbone, batch, views, share_prefix):
    backbone.zero_grad()
    logps = view_logps(backbone, batch, views, share_prefix=share_prefix)
    # Different weights per view, so a gradient routed to the wrong view's rows would show.
    loss = sum((weight + 1.0) * lp.sum.mean() for weight, lp in enumerate(logps.values()))
    loss.backward()
    grads = {name: p.grad.clone() for name, p in backbone.named_parameters() if p.grad is not None}
    return {view: lp.detach() for view, lp in logps.items()}, grads


@pytest.mark.parametrize("views", [("chosen", "rejected"), MDPO_VIEWS])
@pytest.mark.parametrize("options", [{}, {"lora": {"enabled": True, "r": 4, "alpha": 8}},
                                     {"gradient_checkpointing": True}], ids=["full", "lora", "checkpointing"])
def test_shared_prefix_gives_the_plain_forwards_logps_and_gradients(tiny_checkpoint, views, options):
    # Train mode, so activation checkpointing is really on; these configs have no dropout to differ by.
    backbone = load_backbone(str(tiny_checkpoint), **options).train()
    batch = _batch(backbone.processor, views)
    plain_logps, plain_grads = _logps_and_grads(backbone, batch, views, share_prefix=False)
    shared_logps, shared_grads = _logps_and_grads(backbone, batch, views, share_prefix=True)
    for view in views:
        torch.testing.assert_close(shared_logps[view].sum, plain_logps[view].sum, rtol=1e-5, atol=1e-5)
        assert torch.equal(shared_logps[view].count, plain_logps[view].count)
    assert shared_grads.keys() == plain_grads.keys() and plain_grads
    for name, grad in plain_grads.items():
        # Absolute scale per tensor: some (vision key biases) have a true gradient of 0 and only rounding noise.
        torch.testing.assert_close(shared_grads[name], grad, rtol=1e-4, atol=1e-5 * (1 + grad.abs().max().item()),
                                   msg=lambda m, n=name: f"{n}: {m}")


def _packed(processor, views):
    batch = _batch(processor, views)
    parts = [batch["views"][v] for v in views]
    rows = {k: torch.cat([p[k] for p in parts]) for k in ("input_ids", "attention_mask", "labels", "image_index")}
    return pack_views(**rows, prompt_lengths=torch.cat([p["prompt_length"] for p in parts]),
                      pad_token_id=processor.tokenizer.pad_token_id)


def test_packing_puts_each_images_responses_after_one_prefix(tiny_checkpoint):
    processor = load_backbone(str(tiny_checkpoint)).processor
    packed = _packed(processor, MDPO_VIEWS)
    examples = _examples(processor)
    # chosen and rejected share the real image; chosen_corrupted has its own: 6 packed rows for 9 sequences.
    assert packed.images == [0, 1, 2, 3, 4, 5] and packed.num_rows == 9
    for group, example in enumerate(examples):
        prompt, chosen, rejected = example.prompt_ids, example.responses["chosen"], example.responses["rejected"]
        length = len(prompt) + len(chosen) + len(rejected)
        assert packed.input_ids[group, :length].tolist() == prompt + chosen + rejected
        # Positions restart where the prompt ends, so each response is placed as in its own sequence.
        expected = [*range(len(prompt)), *range(len(prompt), len(prompt) + len(chosen)),
                    *range(len(prompt), len(prompt) + len(rejected))]
        assert packed.position_ids[group, :length].tolist() == expected
    # Every response token of every sequence is a target, in (sequence, position) order.
    sequences = [e.responses[k] for k in ("chosen", "rejected", "chosen") for e in examples]
    assert packed.targets.tolist() == [t for seq in sequences for t in seq]
    assert packed.target_row.tolist() == [row for row, seq in enumerate(sequences) for _ in seq]


def test_packed_mask_keeps_responses_apart(tiny_checkpoint):
    processor = load_backbone(str(tiny_checkpoint)).processor
    packed = _packed(processor, ("chosen", "rejected"))
    allowed = packed.attention_mask(torch.float32)[0, 0] == 0
    segments = packed.segments[0]
    prefix, first, second = (segments == 0), (segments == 1), (segments == 2)
    assert allowed[first][:, prefix].all() and allowed[second][:, prefix].all()  # both responses see the prompt
    assert not allowed[second][:, first].any() and not allowed[first][:, second].any()  # never each other
    assert not allowed[prefix][:, first | second].any()  # the prompt sees no response
    assert allowed.any(dim=1).all()  # no query row is fully masked (padding rows see the first token)


def test_packing_refuses_rows_of_one_image_with_different_prompts(tiny_checkpoint):
    processor = load_backbone(str(tiny_checkpoint)).processor
    view = _batch(processor, ("chosen",))["views"]["chosen"]
    with pytest.raises(ValueError, match="different prompts"):
        pack_views(view["input_ids"], view["attention_mask"], view["labels"], torch.zeros(3, dtype=torch.long),
                   view["prompt_length"], processor.tokenizer.pad_token_id)


def test_packing_refuses_a_row_with_no_response_after_its_prompt(tiny_checkpoint):
    processor = load_backbone(str(tiny_checkpoint)).processor
    view = _batch(processor, ("chosen",))["views"]["chosen"]
    lengths = view["attention_mask"].sum(1)  # claim the whole row is prompt: nothing is left to score
    with pytest.raises(ValueError, match="row 0 has no response token after its prompt"):
        pack_views(view["input_ids"], view["attention_mask"], view["labels"], view["image_index"], lengths,
                   processor.tokenizer.pad_token_id)


def test_dialogue_views_carry_no_prompt_length(tiny_checkpoint):
    """nSFT's negatives are whole dialogues with their own labels: never cut at the prompt."""
    processor = load_backbone(str(tiny_checkpoint)).processor
    encoder = SequenceEncoder(processor, max_length=64)
    example = encoder.encode("a", Image.new("RGB", (32, 32), "red"), "describe the image .",
                             {"chosen": "a red circle ."}, dialogues={"negatives": [("is there a square ?", "no")]})
    batch = MultiViewCollator(processor.tokenizer.pad_token_id, ("chosen", "negatives"))([example])
    assert "prompt_length" in batch["views"]["chosen"] and "prompt_length" not in batch["views"]["negatives"]


def test_encoded_once_encodes_each_example_once_and_returns_it_unchanged():
    calls = []

    class Counting(torch.utils.data.Dataset):
        scenes = ["s0", "s1"]

        def __len__(self):
            return 2

        def __getitem__(self, index):
            calls.append(index)
            return {"index": index}

    dataset = EncodedOnce(Counting())
    assert [dataset[i] for i in (0, 1, 0, 1, 0)] == [{"index": i} for i in (0, 1, 0, 1, 0)]
    assert calls == [0, 1] and len(dataset) == 2 and dataset.scenes == ["s0", "s1"]
