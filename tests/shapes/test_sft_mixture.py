"""The SFT task mixture of the shapes world: captions, existence questions (direct or describe-first), others."""

import pytest

from vlmalign.data.shapes import CAPTION_PROMPTS, WorldSpec, parse_mentions, parse_yes_no
from vlmalign.data.shapes_sft import ShapesSFTDataset


def _dataset(**mixture) -> ShapesSFTDataset:
    # text_for never encodes, so no processor is needed
    return ShapesSFTDataset(None, "train", 40, WorldSpec(image_size=64), **mixture)


def _asked(question: str) -> tuple[str, str]:
    color, shape = question.split()[3:5]  # "is there a <color> <shape> in the image ?"
    return color, shape


def test_describe_first_existence_answers_describe_the_scene_then_answer_truthfully():
    data = _dataset(caption_fraction=0.0, existence_fraction=1.0, existence_answer="describe_first")
    answers = []
    for index in range(len(data)):
        scene, question, response = data.text_for(index)
        caption, _, answer = response.rpartition(" . ")
        truth = _asked(question) in {o.identity for o in scene.objects}
        assert parse_yes_no(response) is truth and answer in ("yes .", "no .")
        # the description is faithful and complete: every object, nothing else
        mentioned = sorted((m.color, m.shape) for m in parse_mentions(caption + " ."))
        assert mentioned == sorted(o.identity for o in scene.objects)
        answers.append(truth)
    assert 0.3 < sum(answers) / len(answers) < 0.7  # both answers occur, about equally


def test_direct_existence_answers_are_one_word_and_the_mixture_is_unchanged_by_the_answer_format():
    direct = _dataset(caption_fraction=0.5, existence_fraction=0.5)
    described = _dataset(caption_fraction=0.5, existence_fraction=0.5, existence_answer="describe_first")
    for index in range(len(direct)):
        _, prompt, response = direct.text_for(index)
        _, same_prompt, long_response = described.text_for(index)
        assert prompt == same_prompt  # the same task and question for every example: only the answer differs
        if prompt in CAPTION_PROMPTS:
            assert response == long_response
        else:
            assert response in ("yes", "no") and long_response.endswith(f" {response} .")


def test_an_unknown_answer_format_is_refused_by_name():
    with pytest.raises(ValueError, match="existence_answer='sometimes'.*direct.*describe_first"):
        _dataset(existence_answer="sometimes")


def _existence_examples(**negatives):
    data = ShapesSFTDataset(None, "train", 1500, WorldSpec(color_prior=0.5, cooccurrence=0.5), caption_fraction=0.0,
                            existence_fraction=1.0, **negatives)
    return [data.text_for(i) for i in range(len(data))]


def test_existence_curriculum_and_negative_kinds_follow_their_knobs():
    world = WorldSpec(color_prior=0.5, cooccurrence=0.5)
    plain = _existence_examples()
    assert all(not scene.image_id.endswith("/single") for scene, _, _ in plain)
    shaped = _existence_examples(existence_single_object=0.5, existence_likely_negatives=1.0,
                                 existence_confusable_negatives=0.0)
    single = [scene for scene, _, _ in shaped if scene.image_id.endswith("/single")]
    assert abs(len(single) / len(shaped) - 0.5) < 0.05 and all(len(s.objects) == 1 for s in single)
    for scene, question, answer in shaped:  # every "no" names what the priors expect beside the objects ...
        present = {o.identity for o in scene.objects}
        truth = _asked(question) in present
        assert parse_yes_no(answer) is truth
        likely = [p for p in world.expected_beside(scene) if p not in present]
        if not truth and likely:  # ... when the priors expect one that is absent
            assert _asked(question) in likely, (scene, question)

    def same_colour_share(examples) -> float:
        no = [(scene, _asked(q)) for scene, q, a in examples if a == "no"]
        return sum(any(o.color == color for o in scene.objects) for scene, (color, _) in no) / len(no)

    assert same_colour_share(_existence_examples(existence_confusable_negatives=1.0)) == 1.0
    assert same_colour_share(_existence_examples(existence_confusable_negatives=0.0)) < 0.6
    with pytest.raises(ValueError, match="existence_confusable_negatives=2"):
        _dataset(existence_confusable_negatives=2)


def test_empty_scene_questions_follow_their_share_are_answered_no_and_leave_the_other_examples_unchanged():
    plain = _existence_examples(existence_single_object=0.5)
    footed = _existence_examples(existence_single_object=0.5, existence_empty_scenes=0.25)
    empty = [(scene, q, a) for scene, q, a in footed if scene.image_id.endswith("/empty")]
    assert abs(len(empty) / len(footed) - 0.25) < 0.04
    assert all(scene.objects == () and a == "no" and parse_yes_no(a) is False for scene, q, a in empty)
    assert len({_asked(q) for _, q, _ in empty}) == 20  # any (colour, shape) pair is asked of the empty canvas
    # The knob at 0 draws nothing extra: earlier recipes' data (and bases) are unchanged by its existence.
    assert plain == _existence_examples(existence_single_object=0.5, existence_empty_scenes=0.0)
    with pytest.raises(ValueError, match="existence_empty_scenes=1.5"):
        _existence_examples(existence_empty_scenes=1.5)
