"""LightningDataModule for the shapes world."""

from __future__ import annotations

import functools

from vlmalign.data.collate import MultiViewCollator
from vlmalign.data.corruptions import ImageCorruption
from vlmalign.data.encoding import SequenceEncoder
from vlmalign.data.nsft import NSFTJsonlDataset, ShapesNSFTDataset, max_turns_problem
from vlmalign.data.shapes.preference import check_preference_knobs
from vlmalign.data.shapes.world import WorldSpec, world_spec
from vlmalign.data.shapes_preference import PAIR_KINDS, PolicyCaptionPairs, ShapesPreferenceDataset
from vlmalign.data.shapes_sft import ShapesSFTDataset
from vlmalign.data.shapes_unpaired import ShapesUnpairedDataset
from vlmalign.data.split_datamodule import SplitDataModule, consumed_train_batches  # noqa: F401 (re-exported)
from vlmalign.data.unpaired import UNPAIRED_VIEWS
from vlmalign.errors import ConfigError, DataError

TASKS = ("sft", "preference", "nsft", "unpaired")
PREFERENCE_VIEWS = ("chosen", "rejected", "chosen_corrupted", "rejected_corrupted")
# The views each task's examples have; nsft = the preference pairs plus nSFT's corrective dialogue; unpaired = one
# labelled response per scene (KTO; vlmalign.data.unpaired names its views).
TASK_VIEWS = {"sft": ("chosen",), "preference": PREFERENCE_VIEWS, "nsft": (*PREFERENCE_VIEWS, "negatives"),
              "unpaired": UNPAIRED_VIEWS}



class ShapesDataModule(SplitDataModule):
    """Train/val splits of shapes examples; the test split is the evaluator's.

    ``task``: sft (captions and questions), preference (chosen/rejected caption pairs) or nsft (the same
    pairs as preference, for the same knobs, plus the corrective ``negatives`` dialogue of nSFT, arXiv
    2411.14797) or unpaired (KTO: each pair's chosen or rejected caption alone, labelled desirable or
    undesirable; ``desirable_fraction`` is the class balance). ``negatives_files`` ({split: path}, nsft only)
    reads a split from a JSON-lines file written by ``vlmalign-build-negatives`` instead of building its turns
    on the fly.
    """

    def __init__(
        self,
        processor,
        views: tuple[str, ...] = ("chosen",),
        task: str = "sft",
        caption_fraction: float = 0.75,
        existence_fraction: float = 0.25,
        existence_answer: str = "direct",
        existence_single_object: float = 0.0,
        existence_empty_scenes: float = 0.0,
        existence_one_attribute: float = 0.0,
        existence_likely_negatives: float = 0.0,
        existence_confusable_negatives: float = 0.5,
        domain: str | None = None,
        error_mix: dict | None = None,
        plausibility: float = 1.0,
        num_errors: int = 1,
        pair_kind: str = "injected",
        desirable_fraction: float = 0.5,
        blank_images: bool = False,
        onpolicy_cache_dir: str | None = None,
        onpolicy_max_new_tokens: int = 48,
        negatives_files: dict | None = None,
        negatives_max_turns: int | None = None,
        corruption: ImageCorruption | None = None,
        corruption_seed: int = 0,
        num_train_scenes: int = 8000,
        num_val_scenes: int = 128,
        world: WorldSpec | dict | None = None,
        max_length: int = 160,
        batch_size: int = 16,
        num_workers: int = 0,
        shuffle_seed: int = 0,
        group_by_length: bool = False,
    ) -> None:
        super().__init__()
        world = world_spec(world or {}, "world")
        if task not in TASKS:
            raise ConfigError(f"data.task={task!r} is not one of {TASKS}")
        if task == "sft" and set(views) - {"chosen"}:
            raise ConfigError(
                f"the objective needs views {list(views)} but data.task=sft only has a chosen response; "
                "use a preference dataset (e.g. data=shapes_preference)"
            )
        lacking = [v for v in views if v not in TASK_VIEWS[task]]
        if lacking:
            hint = "; the negatives dialogue is nSFT data: use data=shapes_nsft" if "negatives" in lacking else ""
            raise ConfigError(f"the objective needs views {lacking} that data.task={task} does not have{hint}")
        files = {split: path for split, path in (negatives_files or {}).items() if path}
        if files and (task != "nsft" or set(files) - {"train", "val"}):
            raise ConfigError(f"data.negatives_files={dict(files)}: only data.task=nsft reads nSFT files, keyed by "
                              "split (train, val)")
        if pair_kind not in PAIR_KINDS:
            raise ConfigError(f"data.pair_kind={pair_kind!r} is not one of {PAIR_KINDS}")
        onpolicy = pair_kind == "onpolicy"
        if onpolicy and (task != "preference" or not onpolicy_cache_dir):
            raise ConfigError(f"data.pair_kind=onpolicy needs data.task=preference (got {task!r}) and "
                              "data.onpolicy_cache_dir (where the policy's caption pairs are cached)")
        self.onpolicy = dict(cache_dir=onpolicy_cache_dir, max_new_tokens=onpolicy_max_new_tokens) if onpolicy else None
        if batch_size < 1 or num_train_scenes < 1:
            raise ConfigError(f"data.batch_size={batch_size} and data.num_train_scenes={num_train_scenes} must be >= 1")
        self.encoder = SequenceEncoder(processor, max_length)
        self.collator = MultiViewCollator(processor.tokenizer.pad_token_id, tuple(views), corruption, corruption_seed)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.shuffle_seed, self.group_by_length = shuffle_seed, group_by_length
        common = dict(world=world)
        if task in ("preference", "nsft", "unpaired"):
            try:
                check_preference_knobs(error_mix, plausibility, num_errors)
            except ValueError as error:
                raise ConfigError(f"data: {error}") from error
            knobs = dict(error_mix=error_mix, plausibility=plausibility, num_errors=num_errors,
                         pair_kind="injected" if onpolicy else pair_kind, blank_images=blank_images)
            pairs = ShapesPreferenceDataset
            if task == "nsft":
                if problem := max_turns_problem(negatives_max_turns):
                    raise ConfigError(problem)
                pairs = functools.partial(ShapesNSFTDataset, max_turns=negatives_max_turns)
            splits = {}
            for split, size in (("train", num_train_scenes), ("val", num_val_scenes)):
                splits[split] = (NSFTJsonlDataset(self.encoder, files[split], world.image_size) if split in files
                                 else pairs(self.encoder, split, size, **common, **knobs))
                if task == "unpaired":
                    splits[split] = ShapesUnpairedDataset(splits[split], desirable_fraction)
            self.train_set, self.val_set = splits["train"], splits["val"]
        else:
            mixture = dict(caption_fraction=caption_fraction, existence_fraction=existence_fraction,
                           existence_answer=existence_answer, existence_single_object=existence_single_object,
                           existence_empty_scenes=existence_empty_scenes,
                           existence_one_attribute=existence_one_attribute,
                           existence_likely_negatives=existence_likely_negatives,
                           existence_confusable_negatives=existence_confusable_negatives, domain=domain)
            try:
                self.train_set = ShapesSFTDataset(self.encoder, "train", num_train_scenes, **common, **mixture)
                self.val_set = ShapesSFTDataset(self.encoder, "val", num_val_scenes, **common, **mixture)
            except ValueError as error:
                raise ConfigError(f"data: {error}") from error
        self._description = {"task": task, "train": num_train_scenes, "val": num_val_scenes, "world": world.to_dict(),
                             "max_length": max_length, "error_mix": error_mix, "plausibility": plausibility,
                             "num_errors": num_errors, "pair_kind": pair_kind,
                             **({"desirable_fraction": desirable_fraction} if task == "unpaired" else {}),
                             "blank_images": blank_images, "caption_fraction": caption_fraction,
                             "existence_fraction": existence_fraction,
                             "existence_single_object": existence_single_object,
                             **({"existence_empty_scenes": existence_empty_scenes} if existence_empty_scenes else {}),
                             **({"existence_one_attribute": existence_one_attribute}
                                if existence_one_attribute else {}),
                             "existence_likely_negatives": existence_likely_negatives,
                             "existence_confusable_negatives": existence_confusable_negatives,
                             "corruption": getattr(corruption, "name", None), "corruption_seed": corruption_seed,
                             **({"domain": domain} if domain is not None else {})}
        if task == "nsft" and negatives_max_turns is not None:
            self._description["negatives_max_turns"] = negatives_max_turns
        if files:  # the file, not the knobs, fixes the pairs and turns of those splits
            self._description["negatives_files"] = {split: {"path": str(files[split]), "sha256": splits[split].digest()}
                                                    for split in sorted(files)}

    def prepare_from_policy(self, backbone) -> None:
        """With ``onpolicy``: replace the injected-error pairs by RLHF-V-style pairs on the starting policy's
        own captions (``vlmalign.data.onpolicy_pairs``). Called once before training, with the
        initial weights (also on resume), so every seed and every resumed run gets the same pairs."""
        if self.onpolicy is None:
            return
        from vlmalign.data.onpolicy_pairs import cached_caption_pairs

        counts, policy = {}, None
        for split in ("train", "val"):
            scenes = getattr(self, f"{split}_set")
            pairs, policy = cached_caption_pairs(backbone, scenes, self._description, **self.onpolicy)
            if not pairs:
                raise DataError(f"data.pair_kind=onpolicy: the policy's {split} captions have no correctable shape "
                                f"error in {len(scenes)} scenes, so there are no pairs to train on")
            setattr(self, f"{split}_set", PolicyCaptionPairs(scenes, pairs))
            counts[split] = len(pairs)
        self._description["onpolicy"] = {"policy": policy, "pairs": counts,
                                         "max_new_tokens": self.onpolicy["max_new_tokens"]}
