"""AMBER (Wang et al. 2023, arXiv 2311.07397): generative CHAIR/Cover/Hal/Cog and discriminative yes/no.

Files (https://github.com/junyangwang0410/AMBER, ``data/``):

- ``query/query_all.json`` (or ``query_generative.json``, ``query_discriminative*.json``): a JSON list of
  ``{"id": 1, "image": "AMBER_1.jpg", "query": "Describe this image."}``; ids 1-1004 are generative;
- ``annotations.json``: a JSON list indexed by id, ``{"id", "type", "truth", "hallu"}`` for ``type:
  "generative"`` (truth/hallu: object words present / plausible but absent), ``{"id", "type", "truth":
  "yes"|"no"}`` for ``discriminative-hallucination`` (existence), ``discriminative-attribute-{state,number,
  action}`` and ``discriminative-relation`` (also written ``relation``);
- ``relation.json``: object word -> associated words (synonyms, parts) that also count as mentioning it;
- ``safe_words.txt``: words never counted as hallucinations.

Scoring follows the official ``inference.py``: a response's object words are its (lemmatised) words that
are in the vocabulary of ``relation.json`` (keys and values). A word that is a safe word is counted but
never a hallucination; one among the truth objects or their associated words marks that truth object
covered; any other is a hallucination, and if it is among the hallu objects or theirs, marks that
hallu object "cognitively" hit. Corpus-level: CHAIR = hallucinated words / object words; Cover = covered
truth objects / truth objects; Hal = responses with a hallucination / responses; Cog = hit hallu objects /
hallu objects (what the official code computes). Discriminative: "No" is the positive class (precision =
correct "No" / answered "No", recall = correct "No" / truth "no"), overall and per dimension. AMBER score
= ((1 - CHAIR) + F1) / 2. docs/benchmarks.md lists what differs (no spaCy similarity, no POS tagger).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vlmalign.errors import DataError
from vlmalign.eval.benchmarks.common import (
    Benchmark,
    Question,
    RowError,
    iter_records,
    ratio,
    read_json,
    require,
    resolve,
    row_id,
    string_list,
)
from vlmalign.eval.benchmarks.words import Singularizer, tokenize

GENERATIVE = "generative"
# annotation type -> discriminative dimension (the official script's else-branch takes both relation spellings)
DIMENSIONS = {
    "discriminative-hallucination": "existence",
    "discriminative-attribute-state": "attribute",
    "discriminative-attribute-number": "attribute",
    "discriminative-attribute-action": "attribute",
    "discriminative-relation": "relation",
    "relation": "relation",
}
# Words whose non-noun use dominates in descriptions ("we can see", "a hot day"): without a POS tagger they
# count as objects only right after a determiner, number or possessive. A heuristic stand-in for NLTK's
# noun tags (docs/benchmarks.md).
AMBIGUOUS = frozenset({"can", "hot", "watch", "sound", "support", "note", "drink", "lock", "switch", "brush",
                       "spray", "file", "ring", "star", "track", "light", "orange", "range", "line", "sign"})
DETERMINERS = frozenset({"a", "an", "the", "this", "that", "these", "those", "its", "his", "her", "their", "my",
                         "your", "our", "one", "two", "three", "four", "five", "some", "several", "many", "each",
                         "every", "another", "other", "no", "of"})


@dataclass(frozen=True)
class AmberAnnotation:
    id: str
    type: str
    truth: tuple[str, ...] | str  # generative: object words; discriminative: "yes" / "no"
    hallu: tuple[str, ...] = ()


class AmberVocabulary:
    """``relation.json`` + ``safe_words.txt``: which words are objects, their associations, the safe words."""

    def __init__(self, relation: Mapping[str, Sequence[str]], safe_words: Sequence[str]) -> None:
        self.relation = {k.lower(): [w.lower() for w in v] for k, v in relation.items()}
        self.words = frozenset(self.relation) | {w for ws in self.relation.values() for w in ws}
        self.safe = frozenset(w.strip().lower() for w in safe_words if w.strip())
        self.singular = Singularizer(self.words)

    def object_words(self, response: str) -> list[str]:
        """The response's words that are AMBER object words, in order, repeats kept."""
        tokens = tokenize(response)
        found = []
        for i, token in enumerate(tokens):
            word = self.singular(token)
            if word not in self.words:
                continue
            if word in AMBIGUOUS and (i == 0 or tokens[i - 1] not in DETERMINERS):
                continue
            found.append(word)
        return found

    def associations(self, word: str, where: str) -> list[str]:
        if word.lower() not in self.relation:
            raise RowError(f"object {word!r} is not a key of relation.json ({where})")
        return self.relation[word.lower()]


def _mark_first(noun: str, objects: Sequence[str], vocab: AmberVocabulary, hit: list[int]) -> bool:
    """Mark the object ``noun`` refers to, the official way: search the associated words of every object (in
    object order) before the objects themselves, and mark the owner of the first match only."""
    for index, obj in enumerate(objects):
        if noun in vocab.relation[obj.lower()]:
            hit[index] = 1
            return True
    for index, obj in enumerate(objects):
        if noun == obj.lower():
            hit[index] = 1
            return True
    return False


@dataclass
class GenerativeCounts:
    object_words: int = 0
    hallucinated_words: int = 0
    truth_objects: int = 0
    covered: int = 0
    hallu_objects: int = 0
    cognitive: int = 0
    responses: int = 0
    hallucinated_responses: int = 0


def score_generative(annotation: AmberAnnotation, response: str, vocab: AmberVocabulary,
                     counts: GenerativeCounts) -> list[str]:
    """Add one response to ``counts``; returns its hallucinated words."""
    truth = [w.lower() for w in annotation.truth]
    hallu = [w.lower() for w in annotation.hallu]
    covered, cognitive = [0] * len(truth), [0] * len(hallu)
    hallucinated = []
    nouns = vocab.object_words(response)
    for noun in nouns:
        if noun in vocab.safe:
            continue
        if _mark_first(noun, truth, vocab, covered):
            continue
        _mark_first(noun, hallu, vocab, cognitive)
        hallucinated.append(noun)
    counts.object_words += len(nouns)
    counts.hallucinated_words += len(hallucinated)
    counts.truth_objects += len(truth)
    counts.covered += sum(covered)
    counts.hallu_objects += len(hallu)
    counts.cognitive += sum(cognitive)
    counts.responses += 1
    counts.hallucinated_responses += bool(hallucinated)
    return hallucinated


def amber_yes_no(response: str) -> str | None:
    """"yes" / "no" from the response's first word (the official script needs exactly "Yes" / "No")."""
    words = tokenize(response)
    return words[0] if words and words[0] in ("yes", "no") else None


def discriminative_scores(items: Sequence[tuple[str, str]]) -> dict[str, float]:
    """(truth "yes"/"no", response) pairs -> accuracy, precision, recall, F1 with "no" as positive."""
    said = [(truth, amber_yes_no(response)) for truth, response in items]
    correct = sum(truth == answer for truth, answer in said)
    answered_no = sum(answer == "no" for _, answer in said)
    truth_no = sum(truth == "no" for truth, _ in said)
    true_no = sum(truth == "no" and answer == "no" for truth, answer in said)
    precision, recall = ratio(true_no, answered_no), ratio(true_no, truth_no)
    return {
        "accuracy": ratio(correct, len(said)),
        "precision": precision,
        "recall": recall,
        "f1": ratio(2 * precision * recall, precision + recall),
        "yes_ratio": ratio(sum(answer == "yes" for _, answer in said), len(said)),
        "unparsed": ratio(sum(answer is None for _, answer in said), len(said)),
        "num_questions": float(len(said)),
    }


def amber_scores(items: Sequence[tuple[AmberAnnotation, str]], vocab: AmberVocabulary) -> dict[str, float]:
    """AMBER metrics of (annotation, response) pairs; generative and discriminative keys as present."""
    metrics: dict[str, float] = {}
    generative = [(a, r) for a, r in items if a.type == GENERATIVE]
    if generative:
        counts = GenerativeCounts()
        for annotation, response in generative:
            score_generative(annotation, response, vocab, counts)
        metrics.update({
            "chair": ratio(counts.hallucinated_words, counts.object_words),
            "cover": ratio(counts.covered, counts.truth_objects),
            "hal": ratio(counts.hallucinated_responses, counts.responses),
            "cog": ratio(counts.cognitive, counts.hallu_objects),
            "num_generative": float(counts.responses),
        })
    discriminative = [(a, r) for a, r in items if a.type != GENERATIVE]
    if discriminative:
        overall = discriminative_scores([(a.truth, r) for a, r in discriminative])
        metrics.update(overall)
        for dimension in ("existence", "attribute", "relation"):
            subset = [(a.truth, r) for a, r in discriminative if DIMENSIONS[a.type] == dimension]
            if subset:
                metrics.update({f"{dimension}/{k}": v for k, v in discriminative_scores(subset).items()})
    if generative and discriminative:
        metrics["score"] = ((1 - metrics["chair"]) + metrics["f1"]) / 2  # the paper's AMBER score, as a fraction
    return metrics


class AmberBenchmark(Benchmark):
    name = "amber"
    default_max_new_tokens = 512

    def __init__(
        self,
        data_dir: str,
        query_file: str = "query/query_all.json",
        annotations_file: str = "annotations.json",
        relation_file: str = "relation.json",
        safe_words_file: str = "safe_words.txt",
        image_dir: str | None = None,
        name: str = "amber",
        on_bad_row: str = "raise",
        max_new_tokens: int | None = None,
        discriminative_max_new_tokens: int = 8,
    ) -> None:
        super().__init__(name, image_dir, on_bad_row, max_new_tokens)
        relation_path = resolve(data_dir, relation_file)
        relation = read_json(relation_path, "AMBER relation file")
        if not isinstance(relation, dict) or not all(
                isinstance(k, str) and isinstance(v, list) and all(isinstance(w, str) for w in v)
                for k, v in relation.items()):
            raise DataError(f"AMBER relation file {relation_path}: expected an object of word -> list of words")
        safe_path = resolve(data_dir, safe_words_file)
        try:
            safe_words = safe_path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise DataError(f"cannot read AMBER safe words file {safe_path}: {error}") from None
        self.vocab = AmberVocabulary(relation, safe_words)
        self.annotations = self._load_annotations(resolve(data_dir, annotations_file))
        self.discriminative_max_new_tokens = discriminative_max_new_tokens
        self._questions = self._load_queries(resolve(data_dir, query_file))
        self._ids = {q.id for q in self._questions}

    def _load_annotations(self, path: Path) -> dict[str, AmberAnnotation]:
        annotations: dict[str, AmberAnnotation] = {}
        for where, row in iter_records(path, "AMBER annotations file"):
            annotation = self.rows.parse(where, row, lambda r, w=where: self._annotation(r, w))
            if annotation is None:
                continue
            if annotation.id in annotations:
                raise DataError(f"{where}: annotation id {annotation.id} repeats")
            annotations[annotation.id] = annotation
        return annotations

    def _annotation(self, row, where: str) -> AmberAnnotation:
        annotation_id = row_id(require(row, "id", int))
        kind = require(row, "type", str)
        if kind == GENERATIVE:
            truth, hallu = string_list(row, "truth"), string_list(row, "hallu")
            for word in [*truth, *hallu]:
                self.vocab.associations(word, "relation.json must list every truth and hallu object")
            return AmberAnnotation(annotation_id, kind, tuple(truth), tuple(hallu))
        if kind not in DIMENSIONS:
            raise RowError(f"type {kind!r} is not one of {[GENERATIVE, *DIMENSIONS]}")
        truth = require(row, "truth", str).strip().lower()
        if truth not in ("yes", "no"):
            raise RowError(f"truth {row['truth']!r} of a discriminative question is not 'yes' or 'no'")
        return AmberAnnotation(annotation_id, kind, truth)

    def _load_queries(self, path: Path) -> list[Question]:
        questions, seen = [], set()
        for where, row in iter_records(path, "AMBER query file"):
            question = self.rows.parse(where, row, self._query)
            if question is None:
                continue
            if question.id in seen:
                raise DataError(f"{where}: query id {question.id} repeats")
            seen.add(question.id)
            questions.append(question)
        if not questions:
            raise DataError(f"AMBER query file {path} has no queries")
        return questions

    def _query(self, row) -> Question:
        query_id = row_id(require(row, "id", int))
        image = require(row, "image", str)
        query = require(row, "query", str)
        if query_id not in self.annotations:
            raise RowError(f"query id {query_id} has no entry in annotations.json")
        kind = self.annotations[query_id].type
        return Question(query_id, image, query, {"type": kind})

    def questions(self) -> list[Question]:
        return list(self._questions)

    def max_new_tokens_for(self, question: Question) -> int:
        """Yes/no questions need a few tokens, descriptions many: the runner batches them apart."""
        return self.max_new_tokens if question.meta["type"] == GENERATIVE else self.discriminative_max_new_tokens

    def score_answers(self, questions: list[Question], answers: Mapping[str, str],
                      output_dir: Path | None) -> dict[str, float]:
        return amber_scores([(self.annotations[q.id], answers[q.id]) for q in questions], self.vocab)

    def identity(self) -> dict:
        return {**super().identity(), "discriminative_max_new_tokens": self.discriminative_max_new_tokens}
