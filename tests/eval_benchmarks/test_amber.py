"""AMBER: generative CHAIR/Cover/Hal/Cog and discriminative scores on a fixture in AMBER's own files."""

from __future__ import annotations

import pytest

from tests.eval_benchmarks.conftest import write_json
from vlmalign.errors import DataError
from vlmalign.eval.benchmarks.amber import AmberAnnotation, AmberBenchmark, AmberVocabulary, amber_scores

RELATION = {"dog": ["puppy"], "person": ["man", "woman", "people"], "grass": ["ground"], "cat": [], "ball": [],
            "tree": ["forest"], "sky": [], "car": [], "light": [], "can": []}
ANNOTATIONS = [
    {"id": 1, "type": "generative", "truth": ["dog", "grass", "person"], "hallu": ["cat", "ball"]},
    {"id": 2, "type": "generative", "truth": ["tree", "sky"], "hallu": ["car"]},
    {"id": 3, "type": "generative", "truth": ["sky"], "hallu": ["car"]},
    {"id": 4, "type": "discriminative-hallucination", "truth": "yes"},
    {"id": 5, "type": "discriminative-hallucination", "truth": "no"},
    {"id": 6, "type": "discriminative-attribute-state", "truth": "no"},
    {"id": 7, "type": "discriminative-relation", "truth": "yes"},
    {"id": 8, "type": "relation", "truth": "no"},  # the official file spells some relation items like this
]
QUERIES = [{"id": 1, "image": "AMBER_1.jpg", "query": "Describe this image."},
           {"id": 2, "image": "AMBER_2.jpg", "query": "Describe this image."},
           {"id": 3, "image": "AMBER_3.jpg", "query": "Describe this image."},
           {"id": 4, "image": "AMBER_1.jpg", "query": "Is there a dog in this image?"},
           {"id": 5, "image": "AMBER_1.jpg", "query": "Is there a cat in this image?"},
           {"id": 6, "image": "AMBER_2.jpg", "query": "Is the sky dark in this image?"},
           {"id": 7, "image": "AMBER_2.jpg", "query": "Is the car under the tree in this image?"},
           {"id": 8, "image": "AMBER_3.jpg", "query": "Is the sky above the car in this image?"}]
RESPONSES = [  # AMBER's response format: a JSON list of {"id", "response"}
    # object words: puppy (-> dog), ball (hallu object: hallucinated, Cog hit), grass, man (-> person), light (safe)
    {"id": 1, "response": "A puppy plays with a ball on the grass while a man watches. The light is bright."},
    # car (hallucinated, Cog hit), tree (covered), people (hallucinated here); "we can see": "can" is no noun
    {"id": 2, "response": "A car is parked under a tree. We can see people."},
    {"id": 3, "response": "The sky."},  # sky covered, nothing hallucinated
    {"id": 4, "response": "Yes, there is."},  # truth yes, said yes
    {"id": 5, "response": "No."},  # truth no, said no
    {"id": 6, "response": "Yes"},  # truth no, said yes
    {"id": 7, "response": "No, it is not."},  # truth yes, said no
    {"id": 8, "response": "I think so"},  # truth no, neither yes nor no
]


def amber_dir(tmp_path, annotations=ANNOTATIONS, queries=QUERIES):
    write_json(tmp_path / "relation.json", RELATION)
    (tmp_path / "safe_words.txt").write_text("light\n")
    write_json(tmp_path / "annotations.json", annotations)
    write_json(tmp_path / "query" / "query_all.json", queries)
    return tmp_path


def test_amber_scores_by_hand(tmp_path):
    bench = AmberBenchmark(str(amber_dir(tmp_path)))
    answers_file = write_json(tmp_path / "responses.json", RESPONSES)
    metrics = bench.score(bench.read_answers(answers_file))
    # Generative. Object words 5 + 3 + 1 = 9 (the safe word "light" is counted, never hallucinated);
    # hallucinated: ball | car, people | - = 3.
    assert metrics["amber/chair"] == pytest.approx(3 / 9)
    # Truth objects covered: dog, grass, person | tree | sky = 5 of 3 + 2 + 1 = 6.
    assert metrics["amber/cover"] == pytest.approx(5 / 6)
    assert metrics["amber/hal"] == pytest.approx(2 / 3)  # responses 1 and 2 hallucinate
    assert metrics["amber/cog"] == pytest.approx(2 / 4)  # hallu objects hit: ball | car | - of 2 + 1 + 1
    # Discriminative, "no" positive. Correct: 4, 5 -> accuracy 2/5. Answered "no": 5, 7 (true: 5) -> precision 1/2;
    # truth "no": 5, 6, 8 -> recall 1/3; F1 = 2 * 1/2 * 1/3 / (1/2 + 1/3) = 2/5.
    assert metrics["amber/accuracy"] == pytest.approx(2 / 5)
    assert metrics["amber/precision"] == pytest.approx(1 / 2)
    assert metrics["amber/recall"] == pytest.approx(1 / 3)
    assert metrics["amber/f1"] == pytest.approx(2 / 5)
    assert metrics["amber/unparsed"] == pytest.approx(1 / 5)
    # Per dimension: existence (4, 5) all right; attribute (6) and relation (7, 8) all wrong.
    assert (metrics["amber/existence/accuracy"], metrics["amber/existence/f1"]) == (1.0, 1.0)
    assert (metrics["amber/attribute/accuracy"], metrics["amber/attribute/f1"]) == (0.0, 0.0)
    assert (metrics["amber/relation/accuracy"], metrics["amber/relation/num_questions"]) == (0.0, 2.0)
    # AMBER score = ((1 - CHAIR) + F1) / 2 = (2/3 + 2/5) / 2 = 8/15
    assert metrics["amber/score"] == pytest.approx(8 / 15)


def test_cover_marks_the_first_object_whose_associations_match_as_the_official_code():
    # inference.py searches every truth object's associated words (in truth order) before the truth words
    # themselves and marks only the first match: "person" is associated with "woman", so it covers "woman".
    vocab = AmberVocabulary({"woman": ["person"], "person": ["woman"], "dog": ["puppy"]}, [])
    annotation = AmberAnnotation("1", "generative", ("woman", "person"), ())
    assert amber_scores([(annotation, "A person.")], vocab)["cover"] == 0.5  # woman covered, person not
    # plurals are singularised onto the vocabulary: "dogs" -> dog, "puppies" -> puppy (both hallucinated here)
    result = amber_scores([(annotation, "Two puppies and dogs.")], vocab)
    assert (result["chair"], result["hal"]) == (1.0, 1.0)


def test_query_subset_files_score_only_their_task(tmp_path):
    root = amber_dir(tmp_path)
    write_json(root / "query" / "query_generative.json", QUERIES[:3])
    bench = AmberBenchmark(str(root), query_file="query/query_generative.json")
    metrics = bench.score({str(r["id"]): r["response"] for r in RESPONSES[:3]})
    assert metrics["amber/chair"] == pytest.approx(3 / 9) and "amber/f1" not in metrics
    assert bench.max_new_tokens_for(bench.questions()[0]) == 512


@pytest.mark.parametrize("bad, message", [
    ({"id": 9, "type": "generative", "truth": ["dog", "unicorn"], "hallu": []},
     "object 'unicorn' is not a key of relation.json"),
    ({"id": 9, "type": "discriminative-hallucination", "truth": "maybe"}, "truth 'maybe'"),
    ({"id": 9, "type": "discriminative-colour", "truth": "yes"}, "type 'discriminative-colour' is not one of"),
    ({"id": 9, "type": "generative", "truth": "dog", "hallu": []}, "field 'truth' is str"),
    ({"type": "generative", "truth": [], "hallu": []}, "missing field 'id'"),
])
def test_a_bad_annotation_names_file_and_index(tmp_path, bad, message):
    with pytest.raises(DataError, match=message) as caught:
        AmberBenchmark(str(amber_dir(tmp_path, annotations=[*ANNOTATIONS, bad])))
    assert "annotations.json[8]" in str(caught.value)


def test_bad_queries_and_answers(tmp_path):
    with pytest.raises(DataError, match=r"query_all.json\[8\]: query id 99 has no entry in annotations.json"):
        AmberBenchmark(str(amber_dir(tmp_path, queries=[*QUERIES, {"id": 99, "image": "x.jpg", "query": "?"}])))
    with pytest.raises(DataError, match=r"query_all.json\[8\]: missing field 'query'"):
        AmberBenchmark(str(amber_dir(tmp_path, queries=[*QUERIES, {"id": 8, "image": "x.jpg"}])))
    bench = AmberBenchmark(str(amber_dir(tmp_path)))
    path = write_json(tmp_path / "responses.json", [*RESPONSES, {"id": 1234, "response": "Yes"}])
    with pytest.raises(DataError, match=r"responses.json\[8\]: unknown question id '1234'"):
        bench.read_answers(path)
    write_json(tmp_path / "relation.json", {"dog": "puppy"})
    with pytest.raises(DataError, match="expected an object of word -> list of words"):
        AmberBenchmark(str(tmp_path))


def test_skip_policy_drops_a_bad_annotation_and_its_query(tmp_path):
    bad = {"id": 9, "type": "discriminative-hallucination", "truth": "maybe"}
    root = amber_dir(tmp_path, annotations=[*ANNOTATIONS, bad],
                     queries=[*QUERIES, {"id": 9, "image": "AMBER_1.jpg", "query": "Is there a cow?"}])
    bench = AmberBenchmark(str(root), on_bad_row="skip")
    assert len(bench.questions()) == 8  # the query of the skipped annotation is skipped too
    metrics = bench.score({str(r["id"]): r["response"] for r in RESPONSES})
    assert metrics["amber/skipped_rows"] == 2.0 and metrics["amber/f1"] == pytest.approx(2 / 5)
