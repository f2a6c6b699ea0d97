"""Tiny random models of every preset's class, built offline from config classes, with a processor each.

Each builder returns (model, processor) of the real HF classes a preset loads (same ForConditionalGeneration
class, same processor class, same image-processor family), sized to run a forward in milliseconds:
hidden 32, one or two layers, 32x32-pixel images. The tokenizers are word-level ones trained with
``tokenizers`` on a tiny vocabulary plus each family's special tokens; the chat templates follow the
layout of the real checkpoints' templates (tokens and roles), since the real ones cannot be downloaded here.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

WORDS = ("a red green blue circle square at the top left right center . ? is there yes no describe image "
         "user assistant : User: Assistant: answer en caption").split()
IMAGE_SIZE = 32


def word_tokenizer(special: list[str], bos: str | None, eos: str, pad: str, **named) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    specials = list(dict.fromkeys(["<unk>", pad, eos, *([bos] if bos else []), *special]))
    tokenizer.train_from_iterator([" ".join(WORDS)], trainer=trainers.WordLevelTrainer(special_tokens=specials))
    kwargs = {"bos_token": bos} if bos else {}
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=eos, pad_token=pad, unk_token="<unk>",
                                   model_max_length=512, **kwargs, **named)


def _seeded(build):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build()


def _generation_ids(model, tokenizer) -> None:
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id


def _llama_text(tokenizer, **extra) -> dict:
    return dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                bos_token_id=tokenizer.bos_token_id, **extra)


# --- LLaVA-1.5 (llava-hf): CLIP tower + 2-layer MLP projector + Llama; Vicuna-style "USER: <image>\n... ASSISTANT:"
LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: "
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n{% else %}{{ part['text'] }}"
    "{% endif %}{% endfor %} {% else %}ASSISTANT: {{ message['content'][0]['text'] }}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def build_llava():
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = word_tokenizer(["<image>", "USER:", "ASSISTANT:"], "<s>", "</s>", "<pad>",
                               extra_special_tokens={"image_token": "<image>"})
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=8,
                                       projection_dim=32),
        text_config=_llama_text(tokenizer), image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    model = _seeded(lambda: LlavaForConditionalGeneration(config))
    _generation_ids(model, tokenizer)
    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size=size, crop_size=size, do_center_crop=False), tokenizer=tokenizer,
        patch_size=8, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=LLAVA_TEMPLATE, image_token="<image>",
    )
    return model, processor


# --- Qwen2-VL / Qwen2.5-VL: dynamic-resolution ViT (patch lists + image_grid_thw), mRoPE, ChatML template
QWEN_SPECIAL = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _qwen_processor(processor_class, tokenizer):
    from transformers import Qwen2VLImageProcessor
    from transformers.utils import is_torchvision_available

    from vlmalign.models.processors import image_only

    # patch 4, merge 2: a 32x32 image is an 8x8 patch grid, 16 image tokens; the pixel budget pins that size.
    pixels = IMAGE_SIZE * IMAGE_SIZE
    image_processor = Qwen2VLImageProcessor(patch_size=4, temporal_patch_size=2, merge_size=2,
                                            size={"shortest_edge": pixels, "longest_edge": pixels})
    # Image-only where torchvision is missing (its video processor needs it): what vlmalign's loader loads too.
    processor_class = processor_class if is_torchvision_available() else image_only(processor_class)
    return processor_class(image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN_TEMPLATE)


def _qwen_tokenizer():
    return word_tokenizer(QWEN_SPECIAL, None, "<|im_end|>", "<|endoftext|>")


def _qwen_ids(tokenizer) -> dict:
    ids = tokenizer.convert_tokens_to_ids
    return dict(image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))


def _qwen_text(tokenizer) -> dict:
    text = _llama_text(tokenizer, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                   "mrope_section": [2, 3, 3]})
    text.pop("bos_token_id")
    return text


def build_qwen2_vl():
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    tokenizer = _qwen_tokenizer()
    config = Qwen2VLConfig(
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, mlp_ratio=2, num_heads=2, patch_size=4,
                           spatial_merge_size=2, temporal_patch_size=2),
        text_config=_qwen_text(tokenizer), **_qwen_ids(tokenizer),
    )
    model = _seeded(lambda: Qwen2VLForConditionalGeneration(config))
    _generation_ids(model, tokenizer)
    return model, _qwen_processor(Qwen2VLProcessor, tokenizer)


def build_qwen25_vl():
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    tokenizer = _qwen_tokenizer()
    config = Qwen2_5_VLConfig(
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=4,
                           spatial_merge_size=2, temporal_patch_size=2, window_size=16, out_hidden_size=32,
                           fullatt_block_indexes=[1]),
        text_config=_qwen_text(tokenizer), **_qwen_ids(tokenizer),
    )
    model = _seeded(lambda: Qwen2_5_VLForConditionalGeneration(config))
    _generation_ids(model, tokenizer)
    return model, _qwen_processor(Qwen2_5_VLProcessor, tokenizer)


# --- Idefics3 / SmolVLM: SigLIP tower + pixel-shuffle connector + Llama; "User:<image>...<end_of_utterance>"
IDEFICS3_SPECIAL = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>", "<|im_start|>"]
IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>{% else %} {{ part['text'] }}"
    "{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


def build_idefics3():
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    tokenizer = word_tokenizer(IDEFICS3_SPECIAL, "<s>", "<end_of_utterance>", "<pad>")
    config = Idefics3Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=IMAGE_SIZE, patch_size=8),
        text_config=_llama_text(tokenizer), scale_factor=2, image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    model = _seeded(lambda: Idefics3ForConditionalGeneration(config))
    _generation_ids(model, tokenizer)
    # (32 / 8)^2 patches, pixel-shuffled by 2: 4 image tokens per crop
    image_processor = Idefics3ImageProcessor(size={"longest_edge": IMAGE_SIZE},
                                             max_image_size={"longest_edge": IMAGE_SIZE}, do_image_splitting=False)
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4,
                                  chat_template=IDEFICS3_TEMPLATE)
    return model, processor


# --- PaliGemma: SigLIP tower + linear projector + Gemma; no chat template (prefix "<image>*n<bos>prompt\n")
def build_paligemma():
    from transformers import (
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessor,
    )

    tokenizer = word_tokenizer(["<image>"], "<bos>", "<eos>", "<pad>", extra_special_tokens={"image_token": "<image>"})
    text = _llama_text(tokenizer, head_dim=16)
    text["intermediate_size"] = 64
    config = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=1, num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=8,
                           projection_dim=32),
        text_config=dict(model_type="gemma", **text), projection_dim=32,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), vocab_size=len(tokenizer),
    )
    model = _seeded(lambda: PaliGemmaForConditionalGeneration(config))
    _generation_ids(model, tokenizer)
    image_processor = SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    image_processor.image_seq_length = 16
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return model, processor


BUILDERS = {
    "llava": build_llava,
    "qwen2_vl": build_qwen2_vl,
    "qwen2_5_vl": build_qwen25_vl,
    "idefics3": build_idefics3,
    "paligemma": build_paligemma,
}
