"""The four data stages of one RLAIF-V round, as pure-ish functions from the previous stage's records.

Records are JSON-able dicts, one per instruction, so each stage's output is one JSON-lines file
(``vlmalign.pipelines.rlaifv.store``) that the next stage, a resumed run or a person can read.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from vlmalign.data.shapes.claims import Claim, claim_holds
from vlmalign.models.generation import sample_responses
from vlmalign.pipelines.rlaifv.instructions import Instruction
from vlmalign.pipelines.rlaifv.labelers import Question, accepts
from vlmalign.pipelines.rlaifv.pairs import ScoredResponse, instruction_pairs, length_balance, response_score


def sample(backbone, instructions: Sequence[Instruction], num_samples: int, temperature: float,
           max_new_tokens: int, seed: int, batch_size: int) -> list[dict]:
    """n responses per instruction from the current policy (RLAIF-V: T = 0.7)."""
    responses = sample_responses(backbone, [i.image for i in instructions], [i.prompt for i in instructions],
                                 num_samples, temperature, max_new_tokens, seed, batch_size)
    return [{"instruction_id": i.id, "prompt": i.prompt, "responses": r} for i, r in zip(instructions, responses)]


def split_claims(samples: Sequence[dict], splitter) -> list[dict]:
    """Each response divided into claims, each claim with its yes/no question."""
    return [{**s, "claims": [[vars(c) for c in splitter.split(text)] for text in s["responses"]]} for s in samples]


def label(records: Sequence[dict], instructions: Sequence[Instruction], labeler) -> list[dict]:
    """Every claim's (P(yes), P(no)) from the labeler, its verdict, and each response's score; with a known
    scene and a structured claim, also the claim's truth (``true``), to measure the labeler against it."""
    by_id = {i.id: i for i in instructions}
    questions = [Question(by_id[r["instruction_id"]].image, Claim(**c), by_id[r["instruction_id"]].scene)
                 for r in records for claims in r["claims"] for c in claims]
    answers = iter(labeler.probabilities(questions))
    out = []
    for record in records:
        verdicts = []
        for claims in record["claims"]:
            scene = by_id[record["instruction_id"]].scene
            verdict = []
            for claim in claims:
                p_yes, p_no = next(answers)
                verdict.append({"p_yes": p_yes, "p_no": p_no, "accepted": accepts(p_yes, p_no)})
                if scene is not None and claim.get("fact"):
                    verdict[-1]["true"] = claim_holds(claim["fact"], scene)
            verdicts.append(verdict)
        scores = [response_score([v["accepted"] for v in vs]) for vs in verdicts]
        out.append({**record, "verdicts": verdicts, "scores": scores})
    return out


def labeler_agreement(labelled: Sequence[dict]) -> dict:
    """How the labeler's verdicts compare with the truth, over claims whose truth is known."""
    known = [v for r in labelled for vs in r["verdicts"] for v in vs if "true" in v]
    if not known:
        return {}
    true_claims = sum(v["true"] for v in known)
    return {"labeler/accuracy": sum(v["accepted"] == v["true"] for v in known) / len(known),
            "labeler/true_claim_rate": true_claims / len(known),
            "labeler/accept_rate": sum(v["accepted"] for v in known) / len(known),
            "labeler/false_claims_caught": sum(not v["accepted"] and not v["true"] for v in known)
            / max(1, len(known) - true_claims),
            "labeler/true_claims_kept": sum(v["accepted"] and v["true"] for v in known) / max(1, true_claims)}


def make_pairs(labelled: Sequence[dict], instructions: Sequence[Instruction], min_gap: float, max_pairs: int,
               length_tolerance: float | None, seed: int) -> list[dict]:
    """Pairs with score gap >= ``min_gap``, at most ``max_pairs`` per instruction, then length-balanced."""
    by_id = {i.id: i for i in instructions}
    pairs = []
    for record in labelled:
        rng = random.Random(f"{seed}:pairs:{record['instruction_id']}")
        scored = [ScoredResponse(t, s, len(c)) for t, s, c in zip(record["responses"], record["scores"],
                                                                   record["claims"])]
        scene = by_id[record["instruction_id"]].scene
        for chosen, rejected in instruction_pairs(scored, rng, min_gap, max_pairs):
            pairs.append({"instruction_id": record["instruction_id"], "prompt": record["prompt"],
                          "chosen": scored[chosen].text, "rejected": scored[rejected].text,
                          "chosen_score": scored[chosen].score, "rejected_score": scored[rejected].score,
                          "scene": scene.to_dict() if scene is not None else None})
    return pairs if length_tolerance is None else length_balance(pairs, length_tolerance)
