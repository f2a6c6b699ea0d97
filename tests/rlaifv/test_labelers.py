"""Conquer: labelers return (P(yes words), P(no words)) per question, read at the right token."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from vlmalign.data.encoding import SequenceEncoder
from vlmalign.data.shapes import Scene, ShapeObject
from vlmalign.data.shapes.claims import object_claim
from vlmalign.errors import ConfigError
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.pipelines.rlaifv.labelers import ModelLabeler, OracleLabeler, Question, answer_token_ids


@pytest.fixture(scope="module")
def backbone(tiny_parts):
    model, processor = tiny_parts
    return VisionLanguageBackbone(model, processor, name="tiny")


def _questions(n: int = 3) -> list[Question]:
    images = [Image.new("RGB", (32, 32), color) for color in ("red", "blue", "green")]
    claims = [object_claim("circle", "red"), object_claim("square", position="top left"), object_claim("circle")]
    return [Question(images[i % 3], claims[i % 3]) for i in range(n)]


def test_answer_words_map_to_single_known_tokens(backbone):
    tokenizer = backbone.processor.tokenizer
    assert answer_token_ids(tokenizer, ("yes", "Yes")) == [tokenizer.convert_tokens_to_ids("yes")]
    assert answer_token_ids(tokenizer, ("nonsense-word",)) == []


def test_first_token_probabilities_are_the_softmax_at_the_reply_position(backbone):
    questions = _questions()
    labeler = ModelLabeler(backbone, batch_size=2)  # two batches, different padding
    got = labeler.probabilities(questions)
    encoder = SequenceEncoder(backbone.processor, max_length=10**6)
    yes = backbone.processor.tokenizer.convert_tokens_to_ids("yes")
    no = backbone.processor.tokenizer.convert_tokens_to_ids("no")
    for question, (p_yes, p_no) in zip(questions, got):
        ids, pixels = encoder.encode_prompt(question.image, question.claim.question)
        with torch.no_grad():
            logits = backbone.core(input_ids=torch.tensor([ids]), pixel_values=pixels[None]).logits[0, -1]
        probs = logits.softmax(-1)
        assert p_yes == pytest.approx(probs[yes].item(), abs=1e-5)
        assert p_no == pytest.approx(probs[no].item(), abs=1e-5)


def test_think_first_reads_the_last_yes_no_word_of_the_greedy_reply(backbone):
    labeler = ModelLabeler(backbone, batch_size=4, think_first=True, max_rationale_tokens=6)
    for p_yes, p_no in labeler.probabilities(_questions()):
        assert 0.0 <= p_yes <= 1.0 and 0.0 <= p_no <= 1.0 and p_yes + p_no <= 1.0 + 1e-6


def test_a_tokenizer_without_yes_no_tokens_is_a_clear_error(backbone, monkeypatch):
    monkeypatch.setattr("vlmalign.pipelines.rlaifv.labelers.YES_WORDS", ("qwerty",))
    with pytest.raises(ConfigError, match="yes"):
        ModelLabeler(backbone)


def test_oracle_answers_from_the_scene_and_needs_structured_claims():
    scene = Scene("s", (ShapeObject("circle", "red", "large", "top left"),))
    image = Image.new("RGB", (32, 32))
    questions = [Question(image, object_claim("circle", "red"), scene), Question(image, object_claim("square"), scene)]
    assert OracleLabeler().probabilities(questions) == [(1.0, 0.0), (0.0, 1.0)]
    with pytest.raises(ConfigError, match="oracle"):
        OracleLabeler().probabilities([Question(image, object_claim("circle"))])
