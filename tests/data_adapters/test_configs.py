"""Every conf/data file-dataset option composes with the real conf/ tree and builds on a fixture file."""

from __future__ import annotations

from omegaconf import OmegaConf

from tests.data_adapters.schemas import (
    llava_row,
    mdpo_row,
    rlaif_v_row,
    save_image,
    trl_row,
    vlfeedback_completion,
    vlfeedback_row,
    write_json,
    write_jsonl,
    write_rlaif_v,
    write_trl,
    write_trl_unpaired,
)
from tests.hydra_utils import compose_train
from vlmalign.utils.instantiate import build


def _fixtures(root):
    save_image(root / "img.png")
    for i in range(3):
        save_image(root / "images" / f"llava-reasoning-{i}.jpg", fmt="JPEG")
        save_image(root / "coco" / "train2017" / f"{i:012d}.jpg", fmt="JPEG")
        save_image(root / f"v{i}.jpg", fmt="JPEG")
    completions = [vlfeedback_completion("a", "a red square", (5, 5, 5)), vlfeedback_completion("b", "no", (1, 2, 1))]
    return {
        "rlaif_v": (write_rlaif_v(root / "rlaif.parquet", [rlaif_v_row(i) for i in range(3)]), "dpo"),
        "vlfeedback": (write_jsonl(root / "vlf.jsonl", [vlfeedback_row(f"v{i}", completions) for i in range(3)]),
                       "mdpo"),
        "mdpo_json": (write_json(root / "mdpo.json", [mdpo_row(i) for i in range(3)]), "mdpo"),
        "trl_preference": (write_trl(root / "trl.parquet", [trl_row(i) for i in range(3)]), "dpo"),
        "llava_sft": (write_json(root / "llava.json", [llava_row(i) for i in range(3)]), "sft"),
        "local_preference": (write_jsonl(root / "local.jsonl", [
            {"prompt": "p", "chosen": "yes", "rejected": f"no {i}", "image": "img.png"} for i in range(3)]), "ipo"),
        "kto_unpaired": (write_jsonl(root / "kto.jsonl", [
            {"prompt": "p", "completion": f"yes {i}", "label": i != 1, "image": "img.png"} for i in range(4)]), "kto"),
        "trl_unpaired": (write_trl_unpaired(root / "trl_kto.parquet", [trl_row(i) for i in range(4)]), "kto"),
    }


def test_every_file_data_option_composes_resolves_and_builds(processor, tmp_path):
    for option, (path, objective) in _fixtures(tmp_path).items():
        cfg = compose_train([f"data={option}", f"data.train_file={path}", f"objective={objective}",
                             "data.val_fraction=0.34", "data.max_length=96"], tmp_path / "out", tmp_path / "cache")
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # the eval/callback keys resolve too
        views = build(cfg.objective, "objective").views
        datamodule = build(cfg.data, "data", processor=processor, views=views)
        assert datamodule.train_set[0].prompt_ids, option
        assert datamodule.identity()["train_files"][0]["path"] == str(path), option
