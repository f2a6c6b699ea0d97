"""CHAIR on COCO: synonym/double-word/plural handling and CHAIR_s, CHAIR_i, recall on COCO-format files."""

from __future__ import annotations

import pytest

from tests.eval_benchmarks.conftest import write_json, write_jsonl
from vlmalign.errors import DataError
from vlmalign.eval.benchmarks.chair_coco import ChairCocoBenchmark, CocoObjectExtractor, chair_scores

CATEGORIES = [{"supercategory": "person", "id": 1, "name": "person"},
              {"supercategory": "vehicle", "id": 3, "name": "car"},
              {"supercategory": "outdoor", "id": 10, "name": "traffic light"},
              {"supercategory": "animal", "id": 18, "name": "dog"},
              {"supercategory": "furniture", "id": 70, "name": "toilet"}]
IMAGES = [{"id": 1, "file_name": "COCO_val2014_000000000001.jpg", "height": 32, "width": 32},
          {"id": 2, "file_name": "COCO_val2014_000000000002.jpg", "height": 32, "width": 32},
          {"id": 3, "file_name": "COCO_val2014_000000000003.jpg", "height": 32, "width": 32}]
ANNOTATIONS = [{"id": 101, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0},
               {"id": 102, "image_id": 1, "category_id": 18, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0},
               {"id": 103, "image_id": 1, "category_id": 18, "bbox": [4, 4, 4, 4], "area": 16, "iscrowd": 0},
               {"id": 104, "image_id": 2, "category_id": 3, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0},
               {"id": 105, "image_id": 2, "category_id": 10, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0}]
# Image 3 has no instance annotation: its objects come from its reference caption (toilet, sink).
CAPTIONS = [{"id": 1, "image_id": 3, "caption": "A white toilet next to a sink."},
            {"id": 2, "image_id": 1, "caption": "A man with his dogs."}]
GENERATED = {
    "1": "A man walks two dogs past a baby cat.",  # person, dog, cat ("baby cat" is a cat, not a person)
    "2": "Cars wait at the traffic lights near a fire hydrant.",  # car, traffic light, fire hydrant
    "3": "The seat of the toilet is up.",  # toilet ("seat" is dropped next to "toilet")
}


def instances(**changes):
    return {"info": {}, "licenses": [], "images": IMAGES, "annotations": ANNOTATIONS, "categories": CATEGORIES,
            **changes}


@pytest.fixture
def coco_dir(tmp_path):
    write_json(tmp_path / "instances_val2014.json", instances())
    write_json(tmp_path / "captions_val2014.json", {"images": IMAGES, "annotations": CAPTIONS})
    return tmp_path


@pytest.mark.parametrize("caption, expected", [
    ("Two wine glasses and hot dogs.", ["wine glass", "hot dog"]),
    ("A passenger jet over buses and benches.", ["airplane", "bus", "bench"]),
    ("Knives, mice, people, skis, ponies and children.", ["knife", "mouse", "person", "skis", "horse", "person"]),
    ("A toilet seat.", ["toilet"]),
    ("A chair and a seat.", ["chair", "chair"]),
    ("A motor bike and a stop sign.", ["motorcycle", "stop sign"]),
    ("Bow ties and a baby elephant.", ["tie", "elephant"]),
    ("A desk with an iPhone and a TV.", ["dining table", "cell phone", "tv"]),
])
def test_object_words_follow_the_chair_rules(caption, expected):
    assert [m.category for m in CocoObjectExtractor().mentions(caption)] == expected


def test_chair_scores_by_hand():
    items = [(GENERATED["1"], {"person", "dog"}), (GENERATED["2"], {"car", "traffic light"}),
             (GENERATED["3"], {"toilet", "sink"})]
    scores = chair_scores(items)
    # mentions: 3 + 3 + 1 = 7; hallucinated: cat, fire hydrant = 2
    assert scores["chair_i"] == pytest.approx(2 / 7)
    assert scores["chair_s"] == pytest.approx(2 / 3)  # captions 1 and 2 hallucinate
    assert scores["recall"] == pytest.approx(5 / 6)  # recalled 2 + 2 + 1 of 2 + 2 + 2 ground-truth objects
    assert scores["mentions_per_caption"] == pytest.approx(7 / 3)
    assert scores["num_captions"] == 3.0


def test_benchmark_builds_ground_truth_from_instances_and_captions(coco_dir, tmp_path):
    bench = ChairCocoBenchmark(str(coco_dir), captions_files=["captions_val2014.json"], num_images=None)
    assert [q.id for q in bench.questions()] == ["1", "2", "3"]
    assert bench.questions()[0].image == "COCO_val2014_000000000001.jpg"
    assert bench.annotations.objects == {"1": {"person", "dog"}, "2": {"car", "traffic light"},
                                         "3": {"toilet", "sink"}}
    # The official cap-file format: [{"image_id": ..., "caption": ...}]
    cap_file = write_json(tmp_path / "caps.json", [{"image_id": int(k), "caption": v} for k, v in GENERATED.items()])
    metrics = bench.score(bench.read_answers(cap_file))
    assert metrics["chair_coco/chair_i"] == pytest.approx(2 / 7)
    assert metrics["chair_coco/chair_s"] == pytest.approx(2 / 3)
    assert metrics["chair_coco/recall"] == pytest.approx(5 / 6)


def test_without_reference_captions_only_instances_count(coco_dir):
    bench = ChairCocoBenchmark(str(coco_dir), captions_files=[], num_images=None)
    metrics = bench.score(GENERATED)
    # image 3 has no ground-truth object now: its "toilet" is hallucinated -> 3 of 7 mentions, 3 of 3 captions
    assert metrics["chair_coco/chair_i"] == pytest.approx(3 / 7)
    assert metrics["chair_coco/chair_s"] == 1.0
    assert metrics["chair_coco/recall"] == 1.0  # 2 + 2 of 2 + 2 (+ 0 of 0)


def test_image_selection_by_file_or_seeded_sample(coco_dir):
    write_jsonl(coco_dir / "halbench.jsonl", [{"image_id": 3, "question": "Describe."}, {"image_id": 1}])
    listed = ChairCocoBenchmark(str(coco_dir), captions_files=[], image_ids_file="halbench.jsonl")
    assert [q.id for q in listed.questions()] == ["3", "1"]
    sampled = [q.id for q in ChairCocoBenchmark(str(coco_dir), captions_files=[], num_images=2, seed=1).questions()]
    assert len(sampled) == 2 and sampled == [q.id for q in ChairCocoBenchmark(
        str(coco_dir), captions_files=[], num_images=2, seed=1).questions()]


@pytest.mark.parametrize("change, message", [
    ({"annotations": [*ANNOTATIONS, {"id": 9, "image_id": 1, "category_id": 99}]},
     r"annotations\[5\]: category_id 99 is not in the file's categories"),
    ({"annotations": [*ANNOTATIONS, {"id": 9, "image_id": 7, "category_id": 1}]},
     r"annotations\[5\]: image_id 7 is not in the file's images"),
    ({"annotations": [*ANNOTATIONS, {"id": 9, "category_id": 1}]}, r"annotations\[5\]: missing field 'image_id'"),
    ({"categories": [*CATEGORIES, {"id": 91, "name": "unicorn"}]}, r"categories\[5\]: category name 'unicorn'"),
    ({"images": [*IMAGES, {"id": "4", "file_name": "x.jpg"}]}, r"images\[3\]: field 'id' is str"),
])
def test_a_bad_row_names_the_file_and_index(tmp_path, change, message):
    write_json(tmp_path / "instances_val2014.json", instances(**change))
    with pytest.raises(DataError, match=message) as caught:
        ChairCocoBenchmark(str(tmp_path), captions_files=[])
    assert "instances_val2014.json" in str(caught.value)


def test_bad_files_and_unknown_image_ids(coco_dir, tmp_path):
    write_json(tmp_path / "broken.json", {"images": IMAGES})
    with pytest.raises(DataError, match="broken.json: no 'annotations' list"):
        ChairCocoBenchmark(str(tmp_path), instances_files=["broken.json"], captions_files=[])
    write_json(coco_dir / "ids.json", [1, 42])
    with pytest.raises(DataError, match=r"ids.json\[1\]: image id 42 is not in the COCO instances files"):
        ChairCocoBenchmark(str(coco_dir), captions_files=[], image_ids_file="ids.json")
    bench = ChairCocoBenchmark(str(coco_dir), captions_files=[], num_images=None)
    cap_file = write_jsonl(tmp_path / "caps.jsonl", [{"image_id": 1, "caption": "A dog."},
                                                     {"image_id": 42, "caption": "A cat."}])
    with pytest.raises(DataError, match=r"caps.jsonl:2: unknown question id '42'"):
        bench.read_answers(cap_file)


def test_skip_policy_keeps_the_good_annotations(tmp_path):
    write_json(tmp_path / "instances_val2014.json",
               instances(annotations=[*ANNOTATIONS, {"id": 9, "image_id": 1, "category_id": 99}]))
    bench = ChairCocoBenchmark(str(tmp_path), captions_files=[], num_images=None, on_bad_row="skip")
    assert bench.annotations.objects["1"] == {"person", "dog"}
    assert bench.score(GENERATED)["chair_coco/skipped_rows"] == 1.0
