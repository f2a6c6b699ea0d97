"""Build the tiny LLaVA-style backbone of the shapes world from `transformers` config classes.

Real HF classes (CLIP vision tower + MLP projector + Llama), saved with ``save_pretrained`` and
loaded back through the same ``AutoModelForImageTextToText``/``AutoProcessor`` path as a 7B
checkpoint, so everything tested on it is the code real runs execute.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

from vlmalign.models.tokenizer import IMAGE

# One user turn holding the image and the prompt, then the assistant's answer.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}user : "
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image> {% else %}{{ part['text'] }} {% endif %}"
    "{% endfor %}"
    "{% else %}assistant : {{ message['content'][0]['text'] }} </s> {% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)
# The same turn with the text before the image (``prompt_before_image``): the image tokens come after the question
# and can attend to it, as InstructBLIP's instruction-aware visual features do.
PROMPT_FIRST_TEMPLATE = CHAT_TEMPLATE.replace(
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image> {% else %}{{ part['text'] }} {% endif %}"
    "{% endfor %}",
    "{% for part in message['content'] %}{% if part['type'] != 'image' %}{{ part['text'] }} {% endif %}{% endfor %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image> {% endif %}{% endfor %}",
)


@dataclass(frozen=True)
class TinyLlavaSpec:
    """Sizes of the tiny backbone. Defaults: the 2.3M-parameter model of docs/design.md, "Calibration"."""

    image_size: int = 64
    patch_size: int = 8
    vision_hidden: int = 128
    vision_layers: int = 3
    vision_heads: int = 4
    text_hidden: int = 192
    text_layers: int = 4
    text_heads: int = 4
    mlp_ratio: int = 2  # MLP width / hidden size, both towers
    sincos_positions: bool = True  # 2-D sin-cos init of the vision position embeddings (see below)
    max_positions: int = 256
    prompt_before_image: bool = False  # the user turn's text before its image (PROMPT_FIRST_TEMPLATE)
    tower_pretraining_steps: int = 0  # per-cell attribute pre-training of the vision tower (tower_pretraining.py)
    projector_alignment_steps: int = 0  # projector -> word-embedding alignment after it (projector_alignment.py)

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"model.image_size={self.image_size} is not divisible by model.patch_size={self.patch_size}; "
                "the vision tower needs a whole number of patches."
            )
        for name in ("tower_pretraining_steps", "projector_alignment_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"model.{name}={getattr(self, name)} must be >= 0")
        for name in ("vision_hidden", "text_hidden"):
            heads = getattr(self, name.replace("hidden", "heads"))
            if getattr(self, name) % heads:
                raise ValueError(f"model.{name}={getattr(self, name)} must be divisible by its head count {heads}")

    @property
    def num_image_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        fields = asdict(self)
        if not self.projector_alignment_steps:  # added later: when off, earlier checkpoints keep their cache keys
            del fields["projector_alignment_steps"]
        return fields


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """(grid*grid, dim) fixed 2-D sine-cosine position codes, row-major (MAE, He et al. 2022, §3).

    A from-scratch CLIP tower starts its learned position embeddings at std 0.02, ~14x below the
    patch content, so *where* an object is stays nearly invisible to the language model for
    thousands of steps; pretrained towers never have that problem. Starting from sin-cos codes
    (still trainable) makes position readable from the first step.
    """
    if dim % 4:
        raise ValueError(f"vision_hidden={dim} must be divisible by 4 for 2-D sin-cos positions")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    coords = torch.arange(grid, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")

    def encode(values: torch.Tensor) -> torch.Tensor:
        angles = values.reshape(-1, 1) * omega
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([encode(rows), encode(cols)], dim=1).float()


def build_tiny_llava(
    spec: TinyLlavaSpec, tokenizer: PreTrainedTokenizerFast, seed: int = 0
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """Randomly initialised tiny LLaVA and its processor (seeded, so the same spec gives the same weights)."""
    vision = CLIPVisionConfig(
        hidden_size=spec.vision_hidden,
        intermediate_size=spec.mlp_ratio * spec.vision_hidden,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.vision_heads,
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        projection_dim=spec.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.text_hidden,
        intermediate_size=spec.mlp_ratio * spec.text_hidden,
        num_hidden_layers=spec.text_layers,
        num_attention_heads=spec.text_heads,
        num_key_value_heads=spec.text_heads,
        max_position_embeddings=spec.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",  # drop CLS: one token per patch
        vision_feature_layer=-1,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
    if spec.sincos_positions:
        embeddings = model.model.vision_tower.embeddings
        with torch.no_grad():
            embeddings.position_embedding.weight[1:] = 0.5 * sincos_2d(spec.image_size // spec.patch_size,
                                                                       spec.vision_hidden)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    image_processor = CLIPImageProcessor(
        size={"height": spec.image_size, "width": spec.image_size},
        crop_size={"height": spec.image_size, "width": spec.image_size},
        do_center_crop=False,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=spec.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS, dropped by the "default" strategy
        chat_template=PROMPT_FIRST_TEMPLATE if spec.prompt_before_image else CHAT_TEMPLATE,
        image_token=IMAGE,
    )
    return model, processor
