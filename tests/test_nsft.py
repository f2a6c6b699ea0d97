"""nSFT (arXiv 2411.14797): multi-turn encoding, nSFT data, the negative-SFT and per-token KL terms."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from vlmalign.data.collate import MultiViewCollator
from vlmalign.data.datamodule import ShapesDataModule
from vlmalign.data.encoding import SequenceEncoder
from vlmalign.errors import ConfigError, DataError
from vlmalign.models import load_backbone
from vlmalign.models.logprobs import (
    IGNORE_INDEX,
    ResponseLogProbs,
    ResponseStates,
    response_logps,
    response_states,
    response_token_kl,
    token_kl,
)
from vlmalign.module import AlignmentModule
from vlmalign.negatives import corrective_turns
from vlmalign.objectives import NegativeSFTTerm, Objective, SFTTerm, TokenKLTerm
from vlmalign.reference import FrozenCopyReference, LoraDisabledReference, NoReference, PrecomputedReference

TURNS = [("is there a red circle ?", "yes"), ("is there a blue square ?", "no"), ("is there a green circle ?", "no")]
NSFT_VIEWS = ("chosen", "negatives")
MIX = {"existence": 1.0, "attribute": 1.0, "count": 1.0, "spatial": 1.0, "shape": 1.0}


def _image(color="red"):
    return Image.new("RGB", (32, 32), color)


def _nsft_objective(kl_weight: float = 0.0):
    terms = {"sft": SFTTerm(), "negatives": NegativeSFTTerm(weight=0.5)}
    if kl_weight:
        terms["kl"] = TokenKLTerm(weight=kl_weight)
    return Objective(terms)


def _module(backbone, objective, reference=None):
    return AlignmentModule(backbone, objective, optimizer=lambda p: torch.optim.SGD(p, 0.1), reference=reference)


def _shapes(processor, task, **overrides):
    settings = dict(views=NSFT_VIEWS if task == "nsft" else ("chosen", "rejected"), task=task, num_train_scenes=6,
                    num_val_scenes=2, world={"image_size": 32}, max_length=100, batch_size=3, error_mix=MIX)
    return ShapesDataModule(processor, **{**settings, **overrides})


# --- multi-turn encoding -------------------------------------------------------------------------------------


def test_dialogue_is_the_chat_template_rendering_with_labels_on_answers_only(tiny_parts):
    model, processor = tiny_parts
    tokenizer = processor.tokenizer
    encoder = SequenceEncoder(processor, max_length=80)
    ex = encoder.encode("s", _image(), "describe the image .", {"chosen": "a red circle ."},
                        dialogues={"negatives": TURNS[:2]})
    dialogue = ex.dialogues["negatives"]
    # Token for token what the processor makes of the whole conversation rendered by the chat template.
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": TURNS[0][0]}]},
                {"role": "assistant", "content": [{"type": "text", "text": "yes"}]},
                {"role": "user", "content": [{"type": "text", "text": TURNS[1][0]}]},
                {"role": "assistant", "content": [{"type": "text", "text": "no"}]}]
    text = processor.apply_chat_template(messages, tokenize=False)
    assert dialogue.input_ids == list(processor(text=[text], images=[_image()])["input_ids"][0])
    assert dialogue.input_ids.count(model.config.image_token_id) == 16
    # Labels: exactly the answers and their end-of-turn token, each at its own position.
    labelled = [(i, t) for i, t in enumerate(dialogue.labels) if t != IGNORE_INDEX]
    assert all(dialogue.input_ids[i] == t for i, t in labelled)
    eos = tokenizer.eos_token_id
    assert [t for _, t in labelled] == [tokenizer.convert_tokens_to_ids("yes"), eos,
                                        tokenizer.convert_tokens_to_ids("no"), eos]
    assert (dialogue.num_turns, dialogue.dropped_turns) == (2, 0)
    # Collated: the view keeps its own labels; padding is masked.
    batch = MultiViewCollator(tokenizer.pad_token_id, ("chosen", "negatives"))(
        [ex, encoder.encode("t", _image("blue"), "p", {"chosen": "a"}, dialogues={"negatives": TURNS})])
    view = batch["views"]["negatives"]
    assert view["labels"][0, : len(dialogue.labels)].tolist() == dialogue.labels
    assert (view["labels"][view["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert batch["pixel_values"].shape[0] == 2 and view["image_index"].tolist() == [0, 1]


def test_one_turn_encoding_is_unchanged_by_the_dialogue_support(tiny_parts):
    _, processor = tiny_parts
    encoder = SequenceEncoder(processor, max_length=64)
    ex = encoder.encode("s", _image(), "describe the image .", {"chosen": "a red circle ."})
    ids, labels = ex.tokens("chosen")
    assert ids == ex.prompt_ids + ex.responses["chosen"] and labels[len(ex.prompt_ids):] == ex.responses["chosen"]
    with pytest.raises(DataError, match="no response or dialogue 'negatives'"):
        ex.tokens("negatives")


def test_trailing_turns_are_dropped_whole_and_a_first_turn_that_does_not_fit_is_an_error(tiny_parts):
    _, processor = tiny_parts
    full = SequenceEncoder(processor, 200).encode_dialogue("s", _image(), TURNS, [])
    first_two = SequenceEncoder(processor, 200).encode_dialogue("s", _image(), TURNS[:2], [])
    cut = SequenceEncoder(processor, len(full.input_ids) - 1).encode_dialogue("s", _image(), TURNS, [])
    assert (cut.num_turns, cut.dropped_turns) == (2, 1)
    assert cut.input_ids == first_two.input_ids and cut.labels == first_two.labels
    assert cut.labels[-1] == processor.tokenizer.eos_token_id  # it ends on a whole answer
    first = SequenceEncoder(processor, 200).encode_dialogue("s", _image(), TURNS[:1], [])
    with pytest.raises(DataError, match=r"sample 's'.*first dialogue turn.*data.max_length=20"):
        SequenceEncoder(processor, 20).encode_dialogue("s", _image(), TURNS, [])  # < 16 image tokens + question
    assert SequenceEncoder(processor, len(first.input_ids)).encode_dialogue("s", _image(), TURNS, []).num_turns == 1
    with pytest.raises(DataError, match="empty question or answer"):
        SequenceEncoder(processor, 200).encode_dialogue("s", _image(), [("is there a red circle ?", " ")], [])


def test_an_empty_dialogue_is_the_prompt_with_nothing_labelled(tiny_parts):
    _, processor = tiny_parts
    ex = SequenceEncoder(processor, 64).encode("s", _image(), "describe the image .", {"chosen": "a"},
                                               dialogues={"negatives": []})
    assert ex.dialogues["negatives"].input_ids == ex.prompt_ids  # keeps the image placeholders of its row
    assert set(ex.dialogues["negatives"].labels) == {IGNORE_INDEX}


# --- nSFT data ---------------------------------------------------------------------------------------------------


def test_nsft_data_has_the_preference_pairs_plus_their_corrective_turns(tiny_parts):
    _, processor = tiny_parts
    nsft, preference = _shapes(processor, "nsft"), _shapes(processor, "preference")
    for split in ("train_set", "val_set"):
        for index in range(len(getattr(preference, split))):
            a, b = getattr(nsft, split)[index], getattr(preference, split)[index]
            assert (a.sample_id, a.prompt_ids, a.responses) == (b.sample_id, b.prompt_ids, b.responses)
            assert torch.equal(a.pixel_values, b.pixel_values)
    encoder = nsft.encoder
    for index in range(len(nsft.train_set)):
        scene, pair = nsft.train_set.pair_for(index)
        turns = corrective_turns(scene, pair.rejected)
        assert turns, "every injected error should give a corrective turn"
        expected = encoder.encode_dialogue("x", Image.new("RGB", (32, 32)), [(t.question, t.answer) for t in turns],
                                           [])
        assert nsft.train_set[index].dialogues["negatives"].labels == expected.labels
    batch = next(iter(nsft.train_dataloader()))
    assert set(batch["views"]) == set(NSFT_VIEWS)


def test_negatives_max_turns_keeps_the_first_corrective_turns(tiny_parts):
    _, processor = tiny_parts
    full, first = _shapes(processor, "nsft"), _shapes(processor, "nsft", negatives_max_turns=1)
    encoder = first.encoder
    several = 0
    for index in range(len(first.train_set)):
        scene, pair = first.train_set.pair_for(index)
        turns = corrective_turns(scene, pair.rejected)
        several += len(turns) > 1
        expected = encoder.encode_dialogue("x", Image.new("RGB", (32, 32)), [(turns[0].question, turns[0].answer)], [])
        assert first.train_set[index].dialogues["negatives"].labels == expected.labels
        assert first.train_set[index].responses == full.train_set[index].responses  # the pairs are untouched
    assert several, "the fixture should have dialogues of more than one turn, or the test shows nothing"
    with pytest.raises(ConfigError, match="data.negatives_max_turns=0: expected null"):
        _shapes(processor, "nsft", negatives_max_turns=0)


def test_views_the_task_lacks_are_a_clear_error(tiny_parts):
    _, processor = tiny_parts
    with pytest.raises(ConfigError, match="negatives.*data=shapes_nsft"):
        _shapes(processor, "preference", views=NSFT_VIEWS)
    with pytest.raises(ConfigError, match="negatives_files"):
        _shapes(processor, "preference", negatives_files={"train": "x.jsonl"})


def test_nsft_jsonl_from_the_builder_cli_gives_the_same_examples(tiny_parts, tmp_path, capsys):
    from vlmalign.negatives.cli import main, shapes_data_defaults

    _, processor = tiny_parts
    out = tmp_path / "nsft_train.jsonl"
    assert main(["--shapes-split", "train", "--num-scenes", "6", "--world-seed", "0", "--min-objects", "1",
                 "--max-objects", "3", "--pair-kind", "injected", "--plausibility", "1.0", "--num-errors", "1",
                 "--error-mix", "shape=1",
                 "-o", str(out)]) == 0
    capsys.readouterr()
    world = {**shapes_data_defaults()["world"], "image_size": 32}  # the CLI's world: the composed config's
    from_rules = _shapes(processor, "nsft", error_mix={"shape": 1.0}, world=world)
    from_file = _shapes(processor, "nsft", negatives_files={"train": str(out), "val": None}, error_mix={"shape": 1.0},
                        world=world)
    assert len(from_file.train_set) == 6
    for a, b in zip(from_file.train_set, from_rules.train_set):
        assert (a.sample_id, a.prompt_ids, a.responses) == (b.sample_id, b.prompt_ids, b.responses)
        assert a.dialogues == b.dialogues and torch.equal(a.pixel_values, b.pixel_values)
    assert from_file.identity()["negatives_files"]["train"]["sha256"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(out.read_text().splitlines()[0].replace('"negative_turns"', '"turns"') + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: field 'negative_turns'"):
        _shapes(processor, "nsft", negatives_files={"train": str(bad)})


def test_nsft_jsonl_rows_may_name_an_image_file_instead_of_a_scene(tiny_parts, tmp_path):
    import json

    from vlmalign.data.nsft import NSFTJsonlDataset

    _, processor = tiny_parts
    _image("green").save(tmp_path / "img.png")
    row = {"id": 7, "image": "img.png", "prompt": "describe the image .", "chosen": "a green circle .",
           "rejected": "a red circle .", "negative_turns": [{"question": TURNS[0][0], "answer": "no",
                                                              "error_type": "existence"}]}
    (tmp_path / "real.jsonl").write_text(json.dumps(row) + "\n")
    ex = NSFTJsonlDataset(SequenceEncoder(processor, 80), tmp_path / "real.jsonl", image_size=32)[0]
    expected = SequenceEncoder(processor, 80).encode("7", _image("green"), row["prompt"], {"chosen": row["chosen"]})
    assert ex.sample_id == "7" and torch.equal(ex.pixel_values, expected.pixel_values)
    assert ex.dialogues["negatives"].num_turns == 1 and ex.meta["negative_error_types"] == ["existence"]


# --- objective terms without a model -----------------------------------------------------------------------------


def test_negative_sft_is_token_mean_nll_over_rows_with_turns():
    negatives = ResponseLogProbs(torch.tensor([-2.0, 0.0, -4.0]), torch.tensor([2, 0, 3]))
    out = NegativeSFTTerm()({"negatives": negatives}, None)
    assert out.loss.item() == pytest.approx(6.0 / 5)
    assert out.metrics["logps/negatives"].item() == pytest.approx(-3.0)  # mean over the two rows with turns
    assert out.metrics["negatives/fraction_with_turns"].item() == pytest.approx(2 / 3)
    chosen = ResponseLogProbs(torch.tensor([-1.0, -3.0, -2.0]), torch.tensor([1, 1, 2]))
    total = _nsft_objective()({"chosen": chosen, "negatives": negatives})
    assert total.loss.item() == pytest.approx(6.0 / 4 + 0.5 * 6.0 / 5)
    no_turns = ResponseLogProbs(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    assert NegativeSFTTerm()({"negatives": no_turns}, None).loss.item() == 0.0


def test_token_kl_matches_the_definition_and_vanishes_for_equal_distributions():
    torch.manual_seed(0)
    p, q = torch.randn(4, 7), torch.randn(4, 7)
    expected = (p.softmax(-1) * (p.log_softmax(-1) - q.log_softmax(-1))).sum(-1)
    torch.testing.assert_close(token_kl(p, q), expected)
    torch.testing.assert_close(token_kl(p, p), torch.zeros(4), atol=1e-6, rtol=0)
    assert (token_kl(p, q) > 0).all()
    e = math.e
    p1, p2, q1, q2 = 1 / (1 + e), e / (1 + e), e**2 / (e**2 + 1), 1 / (e**2 + 1)  # softmax([0, 1]), softmax([2, 0])
    hand = p1 * math.log(p1 / q1) + p2 * math.log(p2 / q2)
    assert token_kl(torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 0.0]])).item() == pytest.approx(hand, abs=1e-6)


def _labels():
    labels = torch.full((3, 6), IGNORE_INDEX)
    labels[0, 2:5] = torch.tensor([1, 4, 2])
    labels[2, 4:] = torch.tensor([3, 0])  # row 1 has no response tokens (an empty dialogue)
    return labels


def test_response_token_kl_sums_per_sequence_and_only_the_policy_gets_gradients():
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 5, bias=False)
    policy_hidden = torch.randn(3, 6, 8, requires_grad=True)
    reference_hidden = policy_hidden.detach().clone().requires_grad_(True)
    labels = _labels()
    same = response_token_kl(response_states(policy_hidden, labels, head), response_states(reference_hidden, labels,
                                                                                          head), chunk_size=2)
    torch.testing.assert_close(same, torch.zeros(3), atol=1e-6, rtol=0)
    moved = response_token_kl(response_states(policy_hidden + 0.5, labels, head),
                              response_states(reference_hidden, labels, head), chunk_size=2)
    assert moved[0] > 0 and moved[2] > 0 and moved[1] == 0
    # Against the plain computation on full logits, position by position.
    plain = token_kl(head(policy_hidden + 0.5)[:, :-1], head(reference_hidden)[:, :-1])
    mask = labels[:, 1:] != IGNORE_INDEX
    torch.testing.assert_close(moved, (plain * mask).sum(1))
    moved.sum().backward()
    assert reference_hidden.grad is None  # the reference never trains
    has_grad = policy_hidden.grad.abs().sum(-1) > 0
    predicts_response = torch.zeros_like(has_grad)
    predicts_response[:, :-1] = mask
    assert torch.equal(has_grad, predicts_response)  # only positions that predict a response token
    with pytest.raises(ValueError, match="same sequences"):
        response_token_kl(response_states(policy_hidden, labels, head), response_states(reference_hidden,
                                                                                        torch.roll(labels, 1, 1), head))


def test_negative_sft_gradient_reaches_only_answer_positions(tiny_parts):
    _, processor = tiny_parts
    encoder = SequenceEncoder(processor, max_length=80)
    examples = [encoder.encode("a", _image(), "describe the image .", {"chosen": "a"}, dialogues={"negatives": TURNS}),
                encoder.encode("b", _image(), "describe the image .", {"chosen": "a"}, dialogues={"negatives": []})]
    labels = MultiViewCollator(processor.tokenizer.pad_token_id, NSFT_VIEWS)(examples)["views"]["negatives"]["labels"]
    torch.manual_seed(0)
    hidden = torch.randn(*labels.shape, 8, requires_grad=True)
    head = torch.nn.Linear(8, len(processor.tokenizer), bias=False)
    loss = NegativeSFTTerm()({"negatives": response_logps(hidden, labels, head)}, None).loss
    loss.backward()
    has_grad = hidden.grad.abs().sum(-1) > 0
    predicts_answer = torch.zeros_like(has_grad)
    predicts_answer[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    assert torch.equal(has_grad, predicts_answer) and has_grad[0].sum() == 6  # 3 answers + 3 end-of-turn tokens
    assert not has_grad[1].any()  # the sample with no turns: no gradient at all


def test_states_select_slices_one_view_out_of_a_concatenated_batch():
    hidden, labels = torch.randn(3, 6, 5), _labels()
    states = response_states(hidden, labels)
    tail = states.select(1, 3)
    assert isinstance(tail, ResponseStates) and tail.batch_size == 2 and tail.batch_index.tolist() == [1, 1]
    torch.testing.assert_close(tail.rows, hidden[2, 3:5])


# --- through the module, on the tiny model ------------------------------------------------------------------------


def _batch_with_and_without_turns(processor, with_turns: bool = True):
    encoder = SequenceEncoder(processor, max_length=80)
    first = encoder.encode("a", _image(), "describe the image .", {"chosen": "a red circle ."},
                           dialogues={"negatives": TURNS if with_turns else []})
    second = encoder.encode("b", _image("blue"), "describe the image .", {"chosen": "a blue square ."},
                            dialogues={"negatives": []})
    collate = MultiViewCollator(processor.tokenizer.pad_token_id, NSFT_VIEWS)
    return collate([first, second]), collate([first])


def test_pairs_without_turns_add_nothing_to_the_negative_loss_and_never_nan(tiny_checkpoint):
    policy = load_backbone(str(tiny_checkpoint))
    module = _module(policy, _nsft_objective(), NoReference())
    mixed, alone = _batch_with_and_without_turns(policy.processor)
    policy.eval()  # no dropout, so the two batches see the same function
    with_empty_row = module.step(mixed).metrics["loss/negatives"]
    assert with_empty_row.item() == pytest.approx(module.step(alone).metrics["loss/negatives"].item(), rel=1e-5)
    none, _ = _batch_with_and_without_turns(policy.processor, with_turns=False)
    out = module.step(none)
    assert out.metrics["loss/negatives"].item() == 0.0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in policy.parameters() if p.grad is not None)


def test_kl_is_zero_at_the_start_positive_after_a_change_and_the_same_from_both_model_references(tiny_checkpoint):
    policy = load_backbone(str(tiny_checkpoint), lora={"enabled": True, "r": 4, "alpha": 8})
    batch, _ = _batch_with_and_without_turns(policy.processor)
    objective = _nsft_objective(kl_weight=0.1)
    assert objective.views == NSFT_VIEWS and objective.token_kl_views == ("chosen",)
    modules = {name: _module(policy, objective, reference)
               for name, reference in (("frozen", FrozenCopyReference()), ("lora_disabled", LoraDisabledReference()))}
    for module in modules.values():
        assert module.step(batch).metrics["kl/chosen"].item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.fill_(0.05)
    kl = {name: module.step(batch).metrics["kl/chosen"].item() for name, module in modules.items()}
    assert kl["frozen"] > 1e-6
    assert kl["frozen"] == pytest.approx(kl["lora_disabled"], rel=1e-4)


def test_references_that_cannot_give_distributions_are_refused_when_the_module_is_built(tiny_checkpoint, tmp_path):
    policy = load_backbone(str(tiny_checkpoint))
    refused = r"\['kl'\].*reference=precomputed.*reference=frozen.*reference=lora_disabled"
    with pytest.raises(ConfigError, match=refused):
        _module(policy, _nsft_objective(kl_weight=0.1), PrecomputedReference(str(tmp_path)))
    with pytest.raises(ConfigError, match=r"reference=none.*no reference policy.*reference=frozen"):
        _module(policy, _nsft_objective(kl_weight=0.1), NoReference())
    from vlmalign.objectives import DPOTerm

    with pytest.raises(ConfigError, match=r"\['dpo'\] need a reference policy but reference=none"):
        _module(policy, Objective({"dpo": DPOTerm()}))
    _module(policy, _nsft_objective(), NoReference())  # plain nSFT is reference-free
    with pytest.raises(ConfigError, match="per-token KL of view 'chosen' was not computed"):
        _nsft_objective(kl_weight=0.1)({"chosen": ResponseLogProbs(torch.zeros(1), torch.ones(1)),
                                         "negatives": ResponseLogProbs(torch.zeros(1), torch.ones(1))})
