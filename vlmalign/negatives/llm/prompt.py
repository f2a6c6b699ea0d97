"""The prompt that asks an LLM to play G(y_l; y_w, Q) (nSFT, arXiv 2411.14797, Sec. 3.2).

As in the paper, the LLM sees text only: the chosen response stands in for the image's ground truth,
and the codebook tells it which kinds of visual error to look for. It answers with JSON, which
``parse.parse_turns`` validates. The template text is part of the cache key (the whole prompt is),
so editing it never serves stale completions.
"""

from __future__ import annotations

from vlmalign.negatives.codebook import Codebook
from vlmalign.negatives.interface import PreferenceSample

PROMPT_TEMPLATE = """\
You help correct a vision-language assistant. A user asked a question about an image. Two responses
were written: the CORRECT response describes the image faithfully; the REJECTED response contains
visual errors. Treat the correct response as the truth about the image.

Error types:
{error_types}

Find every visual error in the REJECTED response. For each one, write short corrective question-answer
turns a user could ask about the image: ask about what the rejected response got wrong and answer with
the truth from the correct response (e.g. "Is there a dog in the image?" "No."). Answers to yes/no
questions start with "Yes" or "No"; answers to count questions state the number.

Question: {prompt}
CORRECT response: {chosen}
REJECTED response: {rejected}

Reply with a JSON list only, no other text. Each item is an object with the keys "error_type" (one of:
{names}), "question" and "answer". Reply [] if the rejected response has no visual error. Example:
[{{"error_type": "{example_type}", "question": "{example_question}", "answer": "{example_answer}"}}]
"""


def render_prompt(sample: PreferenceSample, codebook: Codebook) -> str:
    error_types = "\n".join(
        f'- {t.name} ({t.title}): {t.description} Example: "{t.example["question"]}" "{t.example["answer"]}"'
        for t in codebook
    )
    first = codebook.error_types[0]
    return PROMPT_TEMPLATE.format(
        error_types=error_types,
        names=", ".join(codebook.names),
        prompt=sample.prompt.strip(),
        chosen=sample.chosen.strip(),
        rejected=sample.rejected.strip(),
        example_type=first.name,
        example_question=first.example["question"],
        example_answer=first.example["answer"],
    )
