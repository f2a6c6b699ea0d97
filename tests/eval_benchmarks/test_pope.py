"""POPE: the official yes/no normalisation and metrics on a fixture in POPE's own JSON-lines format."""

from __future__ import annotations

import pytest

from tests.eval_benchmarks.conftest import write_json, write_jsonl
from vlmalign.errors import DataError
from vlmalign.eval.benchmarks.pope import PopeBenchmark, pope_answer_is_yes, pope_scores

IMAGE_1, IMAGE_2 = "COCO_val2014_000000000001.jpg", "COCO_val2014_000000000002.jpg"
RANDOM = [  # POPE's own JSON-lines format
    {"question_id": 1, "image": IMAGE_1, "text": "Is there a dog in the image?", "label": "yes"},
    {"question_id": 2, "image": IMAGE_1, "text": "Is there a cat in the image?", "label": "no"},
    {"question_id": 3, "image": IMAGE_2, "text": "Is there a car in the image?", "label": "yes"},
    {"question_id": 4, "image": IMAGE_2, "text": "Is there a tree in the image?", "label": "no"},
]
POPULAR = [
    {"question_id": 1, "image": IMAGE_1, "text": "Is there a dog in the image?", "label": "yes"},
    {"question_id": 2, "image": IMAGE_1, "text": "Is there a person in the image?", "label": "no"},
]


@pytest.fixture
def pope_dir(tmp_path):
    write_jsonl(tmp_path / "coco_pope_random.json", RANDOM)
    write_jsonl(tmp_path / "coco_pope_popular.json", POPULAR)
    return tmp_path


@pytest.mark.parametrize("answer, is_yes", [
    ("Yes", True),
    ("No", False),
    ("No.", False),
    ("no, there is none", False),
    ("I do not see one", False),  # "not" anywhere in the first sentence
    ("There is a cat. No dog though.", True),  # only the first sentence counts
    ("NO", True),  # the official rule matches "No", "no", "not" exactly
    ("Nope", True),
    ("", True),  # an empty answer is "yes" under the official rule
])
def test_answers_are_normalised_as_the_official_script_does(answer, is_yes):
    assert pope_answer_is_yes(answer) is is_yes


def test_pope_scores_by_hand():
    # labels   yes   no    yes   no
    # answers  yes   yes   no    no   -> TP=1 FP=1 FN=1 TN=1
    scores = pope_scores([True, False, True, False], ["Yes, a dog.", "Yes.", "There is not a car.", "No, no tree."])
    assert scores == {"accuracy": 0.5,  # (TP+TN)/4 = 2/4
                      "precision": 0.5,  # TP/(TP+FP) = 1/2
                      "recall": 0.5,  # TP/(TP+FN) = 1/2
                      "f1": 0.5,  # 2PR/(P+R) = 0.5
                      "yes_ratio": 0.5,  # 2 of 4 answers are yes
                      "num_questions": 4.0}


def test_benchmark_reads_pope_files_and_scores_each_split(pope_dir):
    bench = PopeBenchmark(str(pope_dir), splits=["random", "popular"])
    questions = bench.questions()
    assert [q.id for q in questions] == ["random/1", "random/2", "random/3", "random/4", "popular/1", "popular/2"]
    assert questions[0].prompt == "Is there a dog in the image?" and questions[0].meta["label"] is True
    answers = {"random/1": "Yes, there is a dog.", "random/2": "Yes.", "random/3": "There is not a car.",
               "random/4": "No, there is no tree.", "popular/1": "yes", "popular/2": "no"}
    metrics = bench.score(answers)
    # random: TP=1 FP=1 FN=1 TN=1 -> accuracy 0.5, F1 0.5; popular: TP=1 TN=1 -> accuracy 1, F1 1
    assert metrics["pope/random/accuracy"] == 0.5 and metrics["pope/random/f1"] == 0.5
    assert metrics["pope/popular/accuracy"] == 1.0 and metrics["pope/popular/f1"] == 1.0
    assert metrics["pope/popular/yes_ratio"] == 0.5
    assert metrics["pope/f1"] == 0.75  # (0.5 + 1.0) / 2
    assert metrics["pope/accuracy"] == 0.75
    assert metrics["pope/num_answered"] == 6.0


def test_prompt_template_wraps_the_question(pope_dir):
    bench = PopeBenchmark(str(pope_dir), splits=["popular"],
                          prompt_template="{question} Answer the question using a single word or phrase.")
    assert bench.questions()[0].prompt == ("Is there a dog in the image? Answer the question using a single word "
                                           "or phrase.")


def test_official_llava_answer_file_with_bare_ids_scores_a_single_split(pope_dir, tmp_path):
    bench = PopeBenchmark(str(pope_dir), splits=["popular"])
    path = write_jsonl(tmp_path / "answers.jsonl", [{"question_id": 1, "prompt": "...", "text": "Yes"},
                                                    {"question_id": 2, "prompt": "...", "text": "No"}])
    assert bench.read_answers(path) == {"popular/1": "Yes", "popular/2": "No"}


@pytest.mark.parametrize("bad, message", [
    ({"question_id": 5, "image": "x.jpg", "text": "Is there a cat?", "label": "maybe"}, "label 'maybe'"),
    ({"question_id": 5, "image": "x.jpg", "label": "yes"}, "missing field 'text'"),
    ({"question_id": 5, "image": "", "text": "Is there a cat?", "label": "yes"}, "field 'image' is empty"),
    ({"question_id": 5.5, "image": "x.jpg", "text": "Is there a cat?", "label": "yes"}, "field 'question_id'"),
    ('{"question_id": 5, "image": ', "not valid JSON"),
    ({"question_id": 1, "image": "x.jpg", "text": "Is there a cat?", "label": "no"}, "question_id '1' repeats"),
])
def test_a_bad_row_names_file_and_line(tmp_path, bad, message):
    write_jsonl(tmp_path / "coco_pope_random.json", [*RANDOM, bad])
    with pytest.raises(DataError, match=message) as caught:
        PopeBenchmark(str(tmp_path), splits=["random"])
    assert "coco_pope_random.json:5" in str(caught.value)


def test_skip_policy_drops_and_counts_bad_rows(tmp_path):
    write_jsonl(tmp_path / "coco_pope_random.json",
                [*RANDOM, {"question_id": 5, "image": "x.jpg", "text": "Is there a cat?", "label": "maybe"}])
    bench = PopeBenchmark(str(tmp_path), splits=["random"], on_bad_row="skip")
    assert len(bench.questions()) == 4
    metrics = bench.score({f"random/{i}": "yes" for i in range(1, 5)})
    assert metrics["pope/skipped_rows"] == 1.0
    assert metrics["pope/random/recall"] == 1.0 and metrics["pope/random/precision"] == 0.5  # all yes: TP 2, FP 2


def test_bad_answers_files_are_refused_with_the_row(pope_dir, tmp_path):
    bench = PopeBenchmark(str(pope_dir), splits=["random", "popular"])
    unknown = write_jsonl(tmp_path / "a.jsonl", [{"question_id": "random/9", "answer": "yes"}])
    with pytest.raises(DataError, match=r"a.jsonl:1: unknown question id 'random/9'"):
        bench.read_answers(unknown)
    twice = write_jsonl(tmp_path / "b.jsonl", [{"question_id": "random/1", "answer": "yes"},
                                               {"question_id": "random/1", "answer": "no"}])
    with pytest.raises(DataError, match=r"b.jsonl:2: question 'random/1' is answered twice"):
        bench.read_answers(twice)
    no_text = write_json(tmp_path / "c.json", [{"question_id": "random/1", "score": 3}])
    with pytest.raises(DataError, match=r"c.json\[0\]: no answer field"):
        bench.read_answers(no_text)
    with pytest.raises(DataError, match="no answer for 5 of 6 questions"):
        bench.score({"random/1": "yes"})
    partial = bench.score({"random/1": "yes"}, allow_partial=True)
    assert partial["pope/random/accuracy"] == 1.0 and partial["pope/num_answered"] == 1.0


def test_a_missing_question_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="coco_pope_adversarial.json does not exist"):
        PopeBenchmark(str(tmp_path), splits=["adversarial"])
