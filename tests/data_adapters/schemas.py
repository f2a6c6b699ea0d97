"""Writers of small fixture files in each public schema (the layout the real datasets ship in)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
from PIL import Image

COLORS = ("red", "green", "blue", "yellow", "purple", "orange")


def png_bytes(color: str = "red", size: tuple[int, int] = (20, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def save_image(path: Path, color: str = "red", fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 18), color).save(path, fmt)
    return path


def write_json(path: Path, rows: list) -> Path:
    path.write_text(json.dumps(rows, indent=1))
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


RLAIF_V_FEATURES = datasets.Features({
    "ds_name": datasets.Value("string"), "image": datasets.Image(), "question": datasets.Value("string"),
    "chosen": datasets.Value("string"), "rejected": datasets.Value("string"),
    "origin_dataset": datasets.Value("string"), "origin_split": datasets.Value("string"),
    "idx": datasets.Value("string"), "image_path": datasets.Value("string"),
})


def rlaif_v_row(index: int, **changes) -> dict:
    row = {"ds_name": "RLAIF-V", "image": {"bytes": png_bytes(COLORS[index % len(COLORS)]), "path": None},
           "question": f"What is in the image number {index}?", "chosen": f"a {COLORS[index % 6]} square",
           "rejected": f"a {COLORS[(index + 1) % 6]} circle", "origin_dataset": "OK-VQA",
           "origin_split": '{"model": "OmniLMM-12B", "type": "question_answering"}', "idx": f"OK-VQA_{index}",
           "image_path": f"OK-VQA/{index}.jpg"}
    return {**row, **changes}


def write_rlaif_v(path: Path, rows: list[dict]) -> Path:
    datasets.Dataset.from_list(rows, features=RLAIF_V_FEATURES).to_parquet(str(path))
    return path


def vlfeedback_completion(model: str, response: str, ratings: tuple) -> dict:
    aspects = ("Helpfulness", "Visual Faithfulness", "Ethical Considerations")
    return {"model": model, "response": response,
            "annotations": {a: {"Rating": str(r), "Rationale": f"{a} is {r}"} for a, r in zip(aspects, ratings)}}


def vlfeedback_row(row_id: str, completions: list[dict], prompt: str = "Describe the image in detail.") -> dict:
    return {"id": row_id, "prompt": prompt, "models": [c["model"] for c in completions], "completions": completions}


TRL_MESSAGES = datasets.List({"role": datasets.Value("string"), "content": datasets.List(
    {"type": datasets.Value("string"), "text": datasets.Value("string")})})
TRL_FEATURES = datasets.Features({"images": datasets.List(datasets.Image()), "prompt": TRL_MESSAGES,
                                  "chosen": TRL_MESSAGES, "rejected": TRL_MESSAGES})


def trl_row(index: int, prompt: str | None = None, chosen: str | None = None, rejected: str | None = None,
            images: list | None = None) -> dict:
    """A conversational row as HuggingFaceH4/rlaif-v_formatted has them."""
    text = f"What colour is image {index}?" if prompt is None else prompt
    chosen = COLORS[index % 6] if chosen is None else chosen
    rejected = COLORS[(index + 2) % 6] if rejected is None else rejected
    return {
        "images": [{"bytes": png_bytes(COLORS[index % 6]), "path": None}] if images is None else images,
        "prompt": [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": text}]}],
        "chosen": [{"role": "assistant", "content": [{"type": "text", "text": chosen}]}],
        "rejected": [{"role": "assistant", "content": [{"type": "text", "text": rejected}]}],
    }


def write_trl(path: Path, rows: list[dict]) -> Path:
    datasets.Dataset.from_list(rows, features=TRL_FEATURES).to_parquet(str(path))
    return path


TRL_UNPAIRED_FEATURES = datasets.Features({"images": datasets.List(datasets.Image()), "prompt": TRL_MESSAGES,
                                          "completion": TRL_MESSAGES, "label": datasets.Value("bool")})


def write_trl_unpaired(path: Path, pair_rows: list[dict]) -> Path:
    """TRL's unpaired (KTO) rows made from ``trl_row`` pairs: row i keeps its chosen answer, labelled desirable,
    when i is even, else its rejected one, labelled undesirable."""
    rows = [{"images": row["images"], "prompt": row["prompt"], "label": i % 2 == 0,
             "completion": row["chosen" if i % 2 == 0 else "rejected"]} for i, row in enumerate(pair_rows)]
    datasets.Dataset.from_list(rows, features=TRL_UNPAIRED_FEATURES).to_parquet(str(path))
    return path


SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions.")


def mdpo_row(index: int, **changes) -> dict:
    row = {"img_path": f"images/llava-reasoning-{index}.jpg",
           "prompt": f"{SYSTEM} USER: <image>\nWhat is the colour of shape {index}? ASSISTANT:",
           "chosen": "it is red", "rejected": f"it is blue number {index}"}
    return {**row, **changes}


def llava_row(index: int, turns: int = 1, **changes) -> dict:
    conversations = []
    for turn in range(turns):
        question = f"is there a red circle {turn} ?"
        conversations += [{"from": "human", "value": ("<image>\n" if turn == 0 else "") + question},
                          {"from": "gpt", "value": "yes" if turn % 2 else "no"}]
    row = {"id": f"{index:012d}", "image": f"coco/train2017/{index:012d}.jpg", "conversations": conversations}
    return {**row, **changes}
