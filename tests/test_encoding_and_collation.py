"""Label masking, image-token handling and the multi-view batch layout."""

import pytest
import torch
from PIL import Image

from vlmalign.data.collate import MultiViewCollator
from vlmalign.data.encoding import SequenceEncoder
from vlmalign.errors import DataError
from vlmalign.models.logprobs import IGNORE_INDEX


def _image(color="red"):
    return Image.new("RGB", (32, 32), color)


def test_prompt_expands_image_tokens_and_labels_cover_only_the_response(tiny_parts):
    model, processor = tiny_parts
    encoder = SequenceEncoder(processor, max_length=64)
    ex = encoder.encode("s0", _image(), "describe the image .", {"chosen": "a red circle ."})
    assert ex.prompt_ids.count(model.config.image_token_id) == 16
    assert processor.tokenizer.decode(ex.responses["chosen"]) .startswith("a red circle .")
    assert ex.responses["chosen"][-1] == processor.tokenizer.eos_token_id
    batch = MultiViewCollator(processor.tokenizer.pad_token_id)([ex])
    labels = batch["views"]["chosen"]["labels"][0]
    n_prompt = len(ex.prompt_ids)
    assert (labels[:n_prompt] == IGNORE_INDEX).all()
    assert labels[n_prompt:].tolist() == ex.responses["chosen"]


def test_views_share_one_image_and_one_padded_length(tiny_parts):
    _, processor = tiny_parts
    encoder = SequenceEncoder(processor, max_length=64)
    examples = [
        encoder.encode("a", _image("red"), "describe the image .", {"chosen": "a red circle .", "rejected": "a"}),
        encoder.encode("b", _image("blue"), "is there a blue square ?",
                       {"chosen": "yes", "rejected": "no a blue square at the top left ."}),
    ]
    batch = MultiViewCollator(processor.tokenizer.pad_token_id, ("chosen", "rejected"))(examples)
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    chosen, rejected = batch["views"]["chosen"], batch["views"]["rejected"]
    assert chosen["input_ids"].shape == rejected["input_ids"].shape
    assert torch.equal(chosen["image_index"], rejected["image_index"])
    # padding is masked out of attention and labels
    pad_positions = chosen["attention_mask"] == 0
    assert (chosen["labels"][pad_positions] == IGNORE_INDEX).all()


def test_prompt_that_would_cut_the_image_span_is_refused(tiny_parts):
    _, processor = tiny_parts
    encoder = SequenceEncoder(processor, max_length=10)  # < 16 image tokens
    with pytest.raises(DataError, match=r"sample 'x'.*image span.*data.max_length"):
        encoder.encode("x", _image(), "describe the image .", {"chosen": "a red circle ."})


def test_long_response_is_truncated_but_prompt_kept(tiny_parts):
    model, processor = tiny_parts
    encoder = SequenceEncoder(processor, max_length=30)
    ex = encoder.encode("x", _image(), "describe the image .", {"chosen": " ".join(["red"] * 40)})
    assert len(ex.prompt_ids) + len(ex.responses["chosen"]) == 30
    assert ex.prompt_ids.count(model.config.image_token_id) == 16


def test_empty_response_and_unknown_view_are_clear_errors(tiny_parts):
    _, processor = tiny_parts
    with pytest.raises(DataError, match="'rejected' is empty"):
        SequenceEncoder(processor, 64).encode("x", _image(), "p", {"chosen": "a", "rejected": "  "})
    example = SequenceEncoder(processor, 64).encode("x", _image(), "p", {"chosen": "a"})
    with pytest.raises(DataError, match="no response or dialogue 'nonsense'"):  # a view is whatever examples carry
        MultiViewCollator(0, ("chosen", "nonsense"))([example])
