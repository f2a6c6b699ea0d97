"""A round's pairs file as the training data of ``vlmalign-train`` (``data=rlaifv_pairs``).

Each line of ``pairs.jsonl`` carries its scene, so the image is rendered exactly as the policy saw it
when it sampled the responses; validation stays the shapes preference split (reward accuracy on
held-out injected-error pairs, comparable across rounds).
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from vlmalign.data.encoding import EncodedExample, SequenceEncoder
from vlmalign.data.shapes import Scene, render_scene
from vlmalign.errors import DataError
from vlmalign.io.jsonl import iter_jsonl
from vlmalign.utils.files import file_digest

PAIR_FIELDS = ("instruction_id", "prompt", "chosen", "rejected", "scene")


def read_pairs(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data.pairs_file={str(path)!r}: no such file")
    pairs = []
    for line_number, pair in iter_jsonl(path):
        missing = [f for f in PAIR_FIELDS if not isinstance(pair, dict) or f not in pair]
        if missing:
            raise DataError(f"{path}:{line_number}: missing field(s) {missing}; a pair needs {list(PAIR_FIELDS)}")
        pairs.append(pair)
    if not pairs:
        raise DataError(f"{path}: no pairs to train on")
    return pairs


class ShapesPairsFile(Dataset):
    def __init__(self, encoder: SequenceEncoder, path: str | Path, image_size: int) -> None:
        self.encoder, self.image_size = encoder, image_size
        self.pairs = read_pairs(path)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> EncodedExample:
        pair = self.pairs[index]
        scene = Scene.from_dict(pair["scene"])
        responses = {"chosen": pair["chosen"], "rejected": pair["rejected"]}
        return self.encoder.encode(f"{pair['instruction_id']}#{index}", render_scene(scene, self.image_size),
                                   pair["prompt"], responses, {"errors": ()})


def round_pairs_datamodule(processor, views: tuple[str, ...], pairs_file: str, **shapes_kwargs):
    """The shapes preference datamodule with ``pairs_file`` as its training split."""
    from vlmalign.data.datamodule import ShapesDataModule

    module = ShapesDataModule(processor, views, **shapes_kwargs)
    module.train_set = ShapesPairsFile(module.encoder, pairs_file, module.val_set.world.image_size)
    module._description.update(pairs_file={"path": str(pairs_file), "sha256": file_digest(pairs_file)},
                               train=len(module.train_set))
    return module
