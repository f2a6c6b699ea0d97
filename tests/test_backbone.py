"""Backbone load path, LoRA, and the shared-image single forward against HF's plain forward."""

import pytest
import torch
from PIL import Image

from vlmalign.data.collate import MultiViewCollator
from vlmalign.data.encoding import SequenceEncoder
from vlmalign.errors import ConfigError
from vlmalign.models import load_backbone, response_logps
from vlmalign.models.views import view_logps


def _batch(processor, views=("chosen", "rejected")):
    encoder = SequenceEncoder(processor, max_length=64)
    examples = [
        encoder.encode("a", Image.new("RGB", (32, 32), "red"), "describe the image .",
                       {"chosen": "a red circle .", "rejected": "a blue square at the top ."}),
        encoder.encode("b", Image.new("RGB", (32, 32), "blue"), "is there a blue square ?",
                       {"chosen": "yes", "rejected": "no"}),
    ]
    return MultiViewCollator(processor.tokenizer.pad_token_id, views)(examples)


def test_hf_round_trip_loads_identical_weights(tiny_parts, tiny_checkpoint):
    model, _ = tiny_parts
    backbone = load_backbone(str(tiny_checkpoint))
    assert type(backbone.core).__name__ == "LlavaForConditionalGeneration"
    for (name, a), b in zip(model.state_dict().items(), backbone.core.state_dict().values()):
        assert torch.equal(a, b), name


def test_view_logps_equal_plain_hf_forward(tiny_checkpoint):
    backbone = load_backbone(str(tiny_checkpoint))
    batch = _batch(backbone.processor)
    fast = view_logps(backbone, batch, ("chosen", "rejected"))
    for view in ("chosen", "rejected"):
        v = batch["views"][view]
        logits = backbone.core(input_ids=v["input_ids"], attention_mask=v["attention_mask"],
                               pixel_values=batch["pixel_values"][v["image_index"]]).logits
        plain = response_logps(logits, v["labels"])
        torch.testing.assert_close(fast[view].sum, plain.sum, rtol=1e-5, atol=1e-5)
        assert torch.equal(fast[view].count, plain.count)


def test_lora_trains_only_language_model_adapters(tiny_checkpoint):
    backbone = load_backbone(str(tiny_checkpoint), lora={"enabled": True, "r": 4, "alpha": 8})
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "language_model" in n for n in trainable)
    batch = _batch(backbone.processor, ("chosen",))
    loss = -view_logps(backbone, batch, ("chosen",))["chosen"].sum.mean()
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone.parameters() if p.requires_grad)


def test_export_merged_lora_loads_in_plain_transformers(tiny_checkpoint, tmp_path):
    from transformers import AutoModelForImageTextToText

    backbone = load_backbone(str(tiny_checkpoint), lora={"enabled": True, "r": 4, "alpha": 8})
    backbone.save_pretrained(tmp_path / "export", merge_lora=True)
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "export")
    assert not any("lora" in n for n, _ in reloaded.named_parameters())


def test_bad_model_path_and_dtype_are_config_errors(tiny_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="no such local directory"):
        load_backbone(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="model.dtype"):
        load_backbone(str(tiny_checkpoint), dtype="float8")


def test_prompt_before_image_moves_the_image_tokens_after_the_question():
    from vlmalign.models.tiny_llava import CHAT_TEMPLATE, PROMPT_FIRST_TEMPLATE, TinyLlavaSpec, build_tiny_llava
    from vlmalign.models.tokenizer import train_word_tokenizer

    words = "is there a red circle ? describe user assistant :".split()
    tokenizer = train_word_tokenizer([" ".join(words)], extra_words=words)
    spec = TinyLlavaSpec(image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
                         text_hidden=32, text_layers=1, text_heads=2, max_positions=64, prompt_before_image=True)
    _, processor = build_tiny_llava(spec, tokenizer, seed=0)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "is there a red circle ?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False)
    assert processor.chat_template == PROMPT_FIRST_TEMPLATE != CHAT_TEMPLATE
    assert text.index("is there a red circle ?") < text.index("<image>")
