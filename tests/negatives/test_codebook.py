"""The error codebook Q: loaded from data, the single source of error-type names."""

import pytest

from vlmalign.data.shapes import ERROR_TYPES
from vlmalign.errors import ConfigError
from vlmalign.negatives import load_codebook
from vlmalign.negatives.codebook import DEFAULT_CODEBOOK


def test_codebook_has_the_five_nsft_error_types_with_prompt_text_and_templates():
    codebook = load_codebook()
    assert codebook.names == ("existence", "attribute", "count", "spatial", "scene")
    for error_type in codebook:
        assert error_type.description and error_type.title and error_type.templates
        assert error_type.example["question"] and error_type.example["answer"]
        # the example an LLM is shown must pass the validation its answers get
        assert error_type.answer_problem(error_type.example["answer"]) is None


def test_every_shapes_error_type_maps_onto_the_codebook_and_a_shape_swap_is_existence():
    codebook = load_codebook()
    mapped = {kind: codebook[kind].name for kind in ERROR_TYPES}
    assert mapped == {"existence": "existence", "attribute": "attribute", "count": "count", "spatial": "spatial",
                      "shape": "existence"}


def test_lookup_accepts_titles_and_aliases_in_any_case_and_rejects_the_rest():
    codebook = load_codebook()
    assert codebook["Spatial Relation"].name == "spatial"
    assert codebook["object_existence"].name == "existence"
    assert codebook.lookup("COUNTING").name == "count"
    assert codebook.lookup("grammar") is None
    with pytest.raises(KeyError, match="grammar"):
        codebook["grammar"]


@pytest.mark.parametrize(("kind", "answer", "ok"), [
    ("existence", "No.", True), ("existence", "yes, there is", True), ("existence", "There is a dog.", False),
    ("count", "There are 3 dogs.", True), ("count", "two", True), ("count", "There are no cats.", True),
    ("count", "Some dogs.", False), ("attribute", "It is red.", True),
])
def test_answer_formats(kind, answer, ok):
    assert (load_codebook()[kind].answer_problem(answer) is None) == ok


def test_question_templates_fill_and_unknown_templates_are_named():
    existence = load_codebook()["existence"]
    assert existence.question("present", object="red circle") == "Is there a red circle in the image?"
    with pytest.raises(KeyError, match="present"):
        existence.question("nope")


def test_a_malformed_codebook_file_is_a_config_error_naming_it(tmp_path):
    bad = tmp_path / "codebook.yaml"
    bad.write_text("error_types:\n  - name: existence\n    title: x\n")
    with pytest.raises(ConfigError, match=r"codebook.yaml: error_types\[0\]: missing field"):
        load_codebook(bad)
    clash = tmp_path / "clash.yaml"
    entry = ("  - {{name: {0}, title: {0}, description: d, answer: free, aliases: [same], templates: {{}}, "
             "example: {{question: q, answer: a}}}}\n")
    clash.write_text("error_types:\n" + entry.format("one") + entry.format("two"))
    with pytest.raises(ConfigError, match="more than one error type"):
        load_codebook(clash)


def test_fingerprint_is_stable_and_tracks_content(tmp_path):
    codebook = load_codebook()
    assert codebook.fingerprint() == load_codebook().fingerprint()
    edited = tmp_path / "edited.yaml"
    edited.write_text(DEFAULT_CODEBOOK.read_text().replace("a hallucination", "an invention"))
    assert load_codebook(edited).fingerprint() != codebook.fingerprint()
