"""Every real-model preset's code path, on a tiny random model of the preset's class.

For each family (LLaVA-1.5, Qwen2-VL, Qwen2.5-VL, Idefics3/SmolVLM, PaliGemma) a tiny model is built from its
config class, saved with ``save_pretrained`` and loaded through the preset (``conf/model/<preset>.yaml``
composed by Hydra, overriding only the checkpoint path, image size and dtype), then: encode + collate +
response log-probs, the shared-image-features path (and packed prefix sharing where the family has it) against
a plain HF forward with pixels, corrupted-image views, one DPO step touching LoRA only, ``generate``, and a
merged-LoRA export reloaded by plain ``transformers``. Real weights are not tested here (no hub).
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from PIL import Image, ImageDraw
from transformers import AutoModelForImageTextToText

from tests.hydra_utils import CONF, compose_train
from tests.model_presets.tiny_models import BUILDERS, IMAGE_SIZE
from vlmalign.data.collate import MultiViewCollator
from vlmalign.data.corruptions import RandomResizedCrop
from vlmalign.data.encoding import SequenceEncoder, pad_sequences
from vlmalign.errors import ConfigError
from vlmalign.models import response_logps
from vlmalign.models.image_inputs import CropsLayout, PatchListLayout, batch_images
from vlmalign.models.processors import load_processor
from vlmalign.models.views import view_logps
from vlmalign.objectives.functional import dpo_loss
from vlmalign.utils.instantiate import build

# preset -> the class it loads; every class here has a tiny-model test below (FAMILIES).
PRESETS = {
    "llava15_7b": "LlavaForConditionalGeneration",
    "llava15_13b": "LlavaForConditionalGeneration",
    "qwen2_vl_2b": "Qwen2VLForConditionalGeneration",
    "qwen2_vl_7b": "Qwen2VLForConditionalGeneration",
    "qwen25_vl_3b": "Qwen2_5_VLForConditionalGeneration",
    "qwen25_vl_7b": "Qwen2_5_VLForConditionalGeneration",
    "smolvlm": "Idefics3ForConditionalGeneration",
    "idefics3_8b": "Idefics3ForConditionalGeneration",
    "paligemma_3b": "PaliGemmaForConditionalGeneration",
}
# tiny builder -> the preset whose settings load it
FAMILIES = {"llava": "llava15_7b", "qwen2_vl": "qwen2_vl_2b", "qwen2_5_vl": "qwen25_vl_3b", "idefics3": "smolvlm",
            "paligemma": "paligemma_3b"}
QWEN = {"qwen2_vl", "qwen2_5_vl"}
# Qwen presets' pixel budget, shrunk for the tiny model (patch 4 x merge 2): a 48x48-pixel budget
QWEN_BUDGET = 48 * 48
VISION_PREFIXES = ("model.vision_tower", "model.multi_modal_projector", "model.visual", "model.vision_model",
                   "model.connector")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """family -> directory of its tiny model saved in HF format, built on first use."""
    paths: dict[str, object] = {}

    def get(family: str):
        if family not in paths:
            model, processor = BUILDERS[family]()
            path = tmp_path_factory.mktemp(family)
            model.save_pretrained(path)
            processor.save_pretrained(path)
            paths[family] = path
        return paths[family]

    return get


def preset_overrides(family: str, path) -> list[str]:
    overrides = [f"model={FAMILIES[family]}", f"model.name_or_path={path}", f"model.image_size={IMAGE_SIZE}",
                 "model.dtype=float32"]
    if family in QWEN:
        overrides += [f"model.processor_kwargs.size.shortest_edge={QWEN_BUDGET}",
                      f"model.processor_kwargs.size.longest_edge={QWEN_BUDGET}"]
    return overrides


@pytest.fixture(scope="module")
def load(checkpoints, tmp_path_factory):
    """family -> a fresh backbone loaded through its preset (the composed config is cached; loading is cheap)."""
    configs: dict = {}

    def load_family(family: str):
        if family not in configs:
            root = tmp_path_factory.mktemp(f"{family}_run")
            configs[family] = compose_train(preset_overrides(family, checkpoints(family)), root / "out", root / "cache")
        return build(configs[family].model, "model")

    return load_family


def scene(size: tuple[int, int], colour: str) -> Image.Image:
    """A coloured square on grey (not a flat image: a crop of it must differ from it)."""
    image = Image.new("RGB", size, "grey")
    ImageDraw.Draw(image).rectangle((4, 4, size[0] // 2, size[1] // 2), fill=colour)
    return image


def examples(backbone):
    encoder = SequenceEncoder(backbone.processor, max_length=256)
    # two aspect ratios: Qwen's dynamic resolution gives the two images different patch grids
    return [
        encoder.encode("a", scene((48, 32), "red"), "describe the image .",
                       {"chosen": "a red circle .", "rejected": "a blue square at the top ."}),
        encoder.encode("b", scene((32, 32), "blue"), "is there a blue square ?",
                       {"chosen": "yes", "rejected": "no"}),
    ]


def collate(backbone, exs, views=("chosen", "rejected")):
    corruption = RandomResizedCrop() if any(v.endswith("_corrupted") for v in views) else None
    return MultiViewCollator(backbone.processor.tokenizer.pad_token_id, views, corruption)(exs)


def single_image_inputs(example) -> tuple[torch.Tensor, dict]:
    """One example's image as the model takes it for a batch of one (the plain-forward reference)."""
    return batch_images([example.pixel_values], [example.image_inputs], example.pixel_layout)


def plain_logps(backbone, example, ids, mask, labels, prompt_length):
    """s(y|m) from an ordinary HF forward with pixels (processor-style extra inputs, no precomputed features)."""
    pixels, extras = single_image_inputs(example)
    kwargs = dict(extras)
    if backbone.model_type in ("qwen2_vl", "qwen2_5_vl"):
        kwargs["mm_token_type_ids"] = (ids == backbone.image_token_id).int()
    if backbone.model_type == "paligemma":  # prefix-LM: token type 1 from the answer on
        token_types = torch.zeros_like(ids)
        token_types[:, prompt_length:] = 1
        kwargs["token_type_ids"] = token_types
    logits = backbone.core(input_ids=ids, attention_mask=mask, pixel_values=pixels, **kwargs).logits
    return response_logps(logits, labels)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_composes_and_names_a_tested_class(preset, tmp_path):
    cfg = compose_train([f"model={preset}"], tmp_path)
    model = cfg.model
    assert model._target_ == "vlmalign.models.load_backbone"
    assert model.architecture == PRESETS[preset] and hasattr(transformers, model.architecture)
    assert PRESETS[preset] in {PRESETS[p] for p in FAMILIES.values()}  # its class has a tiny-model test
    assert model.dtype == "bfloat16" and model.gradient_checkpointing and not model.trust_remote_code
    assert model.lora.enabled and model.lora.language_model and "q_proj" in model.lora.target_modules
    assert "/" in model.name_or_path and (CONF / "model" / f"{preset}.yaml").exists()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_shared_features_equal_plain_forward(family, load):
    backbone = load(family)
    assert type(backbone.core).__name__ == PRESETS[FAMILIES[family]]
    exs = examples(backbone)
    batch = collate(backbone, exs)
    views = ("chosen", "rejected")
    shared = view_logps(backbone, batch, views, share_prefix=True)
    unshared = view_logps(backbone, batch, views, share_prefix=False)
    for view in views:
        v = batch["views"][view]
        for row, example in enumerate(exs):
            length = int(v["attention_mask"][row].sum())
            plain = plain_logps(backbone, example, v["input_ids"][row : row + 1, :length],
                                v["attention_mask"][row : row + 1, :length], v["labels"][row : row + 1, :length],
                                len(example.prompt_ids))
            for fast in (shared, unshared):
                torch.testing.assert_close(fast[view].sum[row : row + 1], plain.sum, rtol=1e-5, atol=1e-5)
                assert torch.equal(fast[view].count[row : row + 1], plain.count)
    # packed prefix sharing everywhere but PaliGemma (prefix-LM attention, 1-based positions)
    assert backbone.can_share_prefix == (family != "paligemma")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_corrupted_views_and_layouts(family, load):
    backbone = load(family)
    exs = examples(backbone)
    batch = collate(backbone, exs, ("chosen", "chosen_corrupted"))
    layout = exs[0].pixel_layout
    if family in QWEN:
        assert isinstance(layout, PatchListLayout)
        grids = batch["image_inputs"]["image_grid_thw"]
        assert grids.shape == (4, 3) and grids[0].tolist() != grids[1].tolist()  # two images, two grids, twice
        assert grids[1].tolist() == [1, 12, 12]  # the preset's processor_kwargs (pixel budget) reached the processor
        for ex in exs:  # the layout inverts the processor's patch flattening exactly
            image = layout.to_image(ex.pixel_values, ex.image_inputs)
            pixels, extras = layout.from_image(image, ex.image_inputs)
            assert torch.equal(pixels, ex.pixel_values)
            assert torch.equal(extras["image_grid_thw"], ex.image_inputs["image_grid_thw"])
        images = batch["pixel_values"].split(grids.prod(-1).tolist())  # real a, real b, then their m'
        assert all(not torch.equal(real, corrupted) for real, corrupted in zip(images[:2], images[2:]))
    elif family == "idefics3":
        assert isinstance(layout, CropsLayout) and batch["pixel_values"].shape[:2] == (4, 1)
        assert batch["image_inputs"]["pixel_attention_mask"].shape[:2] == (4, 1)
        with pytest.raises(ConfigError, match="do_image_splitting"):
            CropsLayout().to_image(torch.zeros(5, 3, 8, 8), {})
    else:
        assert layout is None and "image_inputs" not in batch and batch["pixel_values"].shape[0] == 4
    assert batch["views"]["chosen_corrupted"]["image_index"].tolist() == [2, 3]
    logps = view_logps(backbone, batch, ("chosen", "chosen_corrupted"))
    assert torch.isfinite(logps["chosen_corrupted"].sum).all()
    assert not torch.allclose(logps["chosen"].sum, logps["chosen_corrupted"].sum)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_dpo_step_trains_language_model_lora_only(family, load):
    backbone = load(family)
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert not any(prefix in n for n in trainable for prefix in VISION_PREFIXES)  # vision tower & projector frozen
    batch = collate(backbone, examples(backbone))
    with torch.no_grad(), backbone.model.disable_adapter():
        ref = view_logps(backbone, batch, ("chosen", "rejected"))
    before = {n: p.detach().clone() for n, p in backbone.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in backbone.parameters() if p.requires_grad], lr=1e-2)
    policy = view_logps(backbone, batch, ("chosen", "rejected"))
    loss = dpo_loss(policy["chosen"].sum, policy["rejected"].sum, ref["chosen"].sum, ref["rejected"].sum, 0.1).mean()
    loss.backward()
    optimizer.step()
    changed = {n for n, p in backbone.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable
    assert any(n for n in changed if "lora_B" in n)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generate(family, load):
    backbone = load(family)
    encoder = SequenceEncoder(backbone.processor, max_length=256)
    encoded = [encoder.encode_prompt_inputs(scene(size, colour), "describe the image .")
               for size, colour in (((48, 32), "red"), ((32, 32), "blue"))]
    ids, mask = pad_sequences([e[0] for e in encoded], backbone.pad_token_id, "left")
    pixels, extras = batch_images([e[1] for e in encoded], [e[2] for e in encoded], encoded[0][3])
    out = backbone.generate(ids, mask, pixels, **extras, max_new_tokens=3, do_sample=False, min_new_tokens=3)
    assert out.shape == (2, 3)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_merged_export_reloads_in_plain_transformers(family, load, tmp_path):
    backbone = load(family).eval()  # PEFT builds its LoRA dropout in train mode
    with torch.no_grad():  # give the adapters weight, so merging changes the model
        for name, parameter in backbone.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    exs = examples(backbone)
    v = collate(backbone, exs)["views"]["chosen"]
    length = int(v["attention_mask"][0].sum())
    pixels, extras = single_image_inputs(exs[0])
    if backbone.model_type in ("qwen2_vl", "qwen2_5_vl"):
        extras["mm_token_type_ids"] = (v["input_ids"][:1, :length] == backbone.image_token_id).int()
    inputs = dict(input_ids=v["input_ids"][:1, :length], attention_mask=v["attention_mask"][:1, :length],
                  pixel_values=pixels, **extras)
    with torch.no_grad():
        expected = backbone.core(**inputs).logits
        with backbone.model.disable_adapter():
            base_logits = backbone.core(**inputs).logits
    assert not torch.allclose(expected, base_logits, atol=1e-4)  # the adapters matter
    backbone.save_pretrained(tmp_path / "export", merge_lora=True)
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "export")
    assert type(reloaded).__name__ == PRESETS[FAMILIES[family]]
    assert not any("lora" in n for n, _ in reloaded.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, expected, rtol=1e-5, atol=1e-5)
    # The processor reloads as vlmalign loads it (image-only for Qwen without torchvision, no monkeypatch), and the
    # export names the family's own class, so plain AutoProcessor takes it where torchvision is installed.
    assert load_processor(str(tmp_path / "export")).chat_template is not None
    saved = json.loads((tmp_path / "export" / "processor_config.json").read_text()).get("processor_class")
    assert saved is None or not saved.endswith("ImageOnly")


def test_model_hf_on_an_idefics3_checkpoint_scopes_lora_to_its_text_model_with_no_override(checkpoints, tmp_path):
    """Idefics3/SmolVLM name their decoder model.text_model; model=hf (no preset) finds it."""
    cfg = compose_train(["model=hf", f"model.name_or_path={checkpoints('idefics3')}", f"model.image_size={IMAGE_SIZE}",
                         "model.dtype=float32", "model.gradient_checkpointing=false"], tmp_path / "out", tmp_path / "c")
    assert "language_model" not in cfg.model.lora
    backbone = build(cfg.model, "model")
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n and ".text_model." in n for n in trainable)
    with pytest.raises(ConfigError, match="names no module of this model; its text decoder is 'model.text_model'"):
        build(compose_train(["model=hf", f"model.name_or_path={checkpoints('idefics3')}", "model.dtype=float32",
                             f"model.image_size={IMAGE_SIZE}", "+model.lora.language_model=language_model"],
                            tmp_path / "out2", tmp_path / "c").model, "model")


def test_preset_pointed_at_another_family_is_a_config_error(checkpoints, tmp_path):
    cfg = compose_train([*preset_overrides("llava", checkpoints("llava"))[1:], "model=qwen2_vl_2b",
                         "model.processor_kwargs={}"],
                        tmp_path / "out", tmp_path / "cache")
    with pytest.raises(ConfigError, match="Qwen2VLForConditionalGeneration"):
        build(cfg.model, "model")
