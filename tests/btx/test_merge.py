"""Branch-Train-MiX's merge (arXiv 2403.07816, §2.2) on the tiny LLaVA: exactness, the averaging, the MoE as a plain
transformers checkpoint, top-k routing, and the two special cases (Branch-Train-Merge, sparse upcycling)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForImageTextToText

from vlmalign.pipelines.btx.domain_data import shapes_domain_batches
from vlmalign.pipelines.btx.merge import btx_merge

TEXT = "model.language_model.layers"


def inputs(model, seed: int = 0, rows: int = 2, length: int = 24):
    """Random token rows with the image placeholders after the first token, and random pixels."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, model.config.text_config.vocab_size, (rows, length), generator=generator)
    ids[:, 1:17] = model.config.image_token_id  # 32x32 pixels, patch 8: 16 image tokens
    return {"input_ids": ids, "pixel_values": torch.randn(rows, 3, 32, 32, generator=generator)}


def load(path):
    return AutoModelForImageTextToText.from_pretrained(path).eval()


@torch.no_grad()
def logits(model, batch):
    return model(**batch).logits


@pytest.mark.parametrize("top_k,seed_as_expert,router_seed", [(1, False, 0), (2, False, 1), (2, True, 2),
                                                              (4, True, 3)])
def test_n_identical_experts_give_the_dense_seed_logits_with_any_router(seed_dir, tmp_path, top_k, seed_as_expert,
                                                                        router_seed):
    out = btx_merge(seed_dir, tmp_path / "moe", experts=[seed_dir] * 3, top_k=top_k, seed_as_expert=seed_as_expert,
                    router_seed=router_seed)
    moe, dense = load(out), load(seed_dir)
    assert type(moe.model.language_model).__name__ == "MixtralModel"
    with torch.no_grad():  # a sharp, arbitrary router: the gate weights still sum to 1 over k copies of one FFN
        for layer in moe.model.language_model.layers:
            layer.mlp.gate.weight.normal_(0, 5.0)
    batch = inputs(dense)
    torch.testing.assert_close(logits(moe, batch), logits(dense, batch), rtol=1e-5, atol=1e-5)


def test_non_ffn_weights_are_the_weighted_mean_and_each_ffn_is_an_expert(seed_dir, expert_dirs, tmp_path):
    weights = [1.0, 2.0, 3.0]
    moe = load(btx_merge(seed_dir, tmp_path / "moe", experts=expert_dirs, expert_weights=weights))
    experts = [load(path).state_dict() for path in expert_dirs]
    merged = moe.state_dict()
    for name in (f"{TEXT}.1.self_attn.q_proj.weight", f"{TEXT}.0.input_layernorm.weight",
                 "model.language_model.embed_tokens.weight", "model.vision_tower.encoder.layers.0.mlp.fc1.weight",
                 "model.multi_modal_projector.linear_2.bias"):
        hand = (1 * experts[0][name] + 2 * experts[1][name] + 3 * experts[2][name]) / 6
        torch.testing.assert_close(merged[name], hand, rtol=0, atol=1e-6)
    for e, state in enumerate(experts):
        for layer in range(2):
            mlp = f"{TEXT}.{layer}.mlp"
            gate_up = merged[f"{mlp}.experts.gate_up_proj"][e]
            assert torch.equal(gate_up, torch.cat([state[f"{mlp}.gate_proj.weight"], state[f"{mlp}.up_proj.weight"]]))
            assert torch.equal(merged[f"{mlp}.experts.down_proj"][e], state[f"{mlp}.down_proj.weight"])


def test_the_merged_model_round_trips_through_plain_transformers_and_generates(seed_dir, expert_dirs, tmp_path):
    out = btx_merge(seed_dir, tmp_path / "moe", experts=expert_dirs, top_k=2)
    first = load(out)
    assert (first.config.text_config.model_type, first.config.text_config.num_local_experts,
            first.config.text_config.num_experts_per_tok) == ("mixtral", 3, 2)
    first.save_pretrained(tmp_path / "again")
    second = load(tmp_path / "again")
    batch = inputs(first)
    torch.testing.assert_close(logits(second, batch), logits(first, batch), rtol=0, atol=0)
    new = second.generate(**batch, max_new_tokens=5, do_sample=False, min_new_tokens=5)
    assert new.shape == (2, batch["input_ids"].shape[1] + 5)
    assert (out / "btx_merge.json").is_file() and (out / "tokenizer.json").is_file()


def test_top_k_routing_sends_each_token_to_k_distinct_experts(seed_dir, expert_dirs, tmp_path):
    moe = load(btx_merge(seed_dir, tmp_path / "moe", experts=expert_dirs, seed_as_expert=True, top_k=3))
    chosen = []
    hooks = [layer.mlp.gate.register_forward_hook(lambda m, a, out: chosen.append(out[2]))
             for layer in moe.model.language_model.layers]
    batch = inputs(moe)
    logits(moe, batch)
    for hook in hooks:
        hook.remove()
    assert len(chosen) == 2
    for indices in chosen:  # (tokens, k)
        assert indices.shape == (batch["input_ids"].numel(), 3)
        assert all(len(set(row)) == 3 for row in indices.tolist())
        assert indices.max() < 4  # 3 experts + the seed


def test_branch_train_merge_averages_everything_into_a_dense_model(seed_dir, expert_dirs, tmp_path):
    dense = load(btx_merge(seed_dir, tmp_path / "btm", experts=expert_dirs, method="btm"))
    assert type(dense.model.language_model).__name__ == "LlamaModel"
    states = [load(path).state_dict() for path in expert_dirs]
    for name, value in dense.state_dict().items():
        torch.testing.assert_close(value, sum(s[name] for s in states) / 3, rtol=0, atol=1e-6)


def test_sparse_upcycling_is_n_copies_of_the_seed(seed_dir, tmp_path):
    moe = load(btx_merge(seed_dir, tmp_path / "up", method="upcycle", num_experts=4))
    assert moe.config.text_config.num_local_experts == 4
    batch = inputs(moe)
    torch.testing.assert_close(logits(moe, batch), logits(load(seed_dir), batch), rtol=1e-5, atol=1e-5)


def test_the_activation_router_starts_each_expert_at_its_domain(seed_dir, expert_dirs, tmp_path):
    domains = ["captioning", "counting", "spatial"]
    batches = shapes_domain_batches({"image_size": 32}, num_scenes=4, batch_size=4, max_length=80)
    moe = load(btx_merge(seed_dir, tmp_path / "moe", experts=expert_dirs, router_init="activations",
                         domains=domains, domain_batches=batches))
    router = moe.model.language_model.layers[0].mlp.gate.weight  # (experts, hidden)
    assert router.norm(dim=-1).tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)  # centred, unit rows
    assert not torch.allclose(router[0], router[1])
