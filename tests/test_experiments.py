"""The ablation studies: every variant composes, changes only preference-stage keys and is the paper's row;
the sweep configs (Optuna search, launchers) compose; wandb is configured per study; the samples table."""

from __future__ import annotations

import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tests.hydra_utils import CONF, compose_train, require_sweep_plugin
from vlmalign.logps import ResponseLogProbs
from vlmalign.objectives import AnchorTerm
from vlmalign.report.callback import missing_plugins
from vlmalign.utils.instantiate import build
from vlmalign.validation import validate_run_config

ROOT = CONF.parent
STUDIES = {  # study -> its variants in the paper's row order
    "mdpo_components": ["dpo", "no_conditional", "no_anchor", "mdpo"],
    "mdpo_corruption": ["other_image", "crop_0_20", "crop_20_50", "noise", "mask"],
    "mdpo_anchors": ["chosen", "chosen_rejected", "chosen_rejected_corrupted"],
    "dpo_beta": ["search", "confirm"],
}
VARIANTS = [f"{study}/{variant}" for study, variants in STUDIES.items() for variant in variants]
# What a study may change: the preference stage, the output folder and tags. Never the SFT base, model or data.
ALLOWED = ("objective.", "reference.", "corruption.", "data.corruption.", "task_name", "tags", "evaluate_initial",
           "callbacks.progress_bar", "paths.runs_dir", "eval.split")


def _flat(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()} or \
            {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): node}


def test_every_study_file_is_a_known_variant_or_its_common_settings():
    for study, variants in STUDIES.items():
        files = sorted(p.stem for p in (CONF / "experiment" / study).glob("*.yaml"))
        assert files == sorted([*variants, "common"]), study


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("out")


@pytest.fixture(scope="module")
def default(out):
    cfg = compose_train([], out)
    return cfg, _flat(OmegaConf.to_container(cfg, resolve=True))


@pytest.mark.parametrize("variant", [*VARIANTS, *(f"{s}/common" for s in STUDIES)])
def test_every_variant_composes_builds_and_changes_only_preference_stage_keys(variant, default, out):
    cfg = compose_train([f"experiment={variant}"], out)
    study = variant.split("/")[0]
    assert cfg.task_name == study and study in cfg.tags  # output folder and wandb group = the study
    validate_run_config(cfg, build(cfg.objective, "objective"))
    changed = {k for k, v in _flat(OmegaConf.to_container(cfg, resolve=True)).items() if default[1].get(k, "-") != v}
    assert all(k.startswith(ALLOWED) for k in changed), sorted(k for k in changed if not k.startswith(ALLOWED))
    # The SFT base is composed from `base` alone (pipelines/base_model.py): the same node, the same cached base.
    assert cfg.base == default[0].base


def _terms(variant: str, tmp_path) -> dict:
    return build(compose_train([f"experiment={variant}"], tmp_path).objective, "objective").terms


def test_components_rows_are_the_term_subsets_of_mdpo_table_2(tmp_path):
    rows = {v: sorted(_terms(f"mdpo_components/{v}", tmp_path)) for v in STUDIES["mdpo_components"]}
    assert rows == {"dpo": ["dpo"], "no_conditional": ["anchor", "dpo"], "no_anchor": ["conditional", "dpo"],
                    "mdpo": ["anchor", "conditional", "dpo"]}


def test_corruption_rows_use_the_corruption_options_of_mdpo_table_3(tmp_path):
    for variant in STUDIES["mdpo_corruption"]:
        cfg = compose_train([f"experiment=mdpo_corruption/{variant}"], tmp_path)
        option = OmegaConf.load(CONF / "corruption" / f"{variant}.yaml")  # may read the model (mask: patch size)
        option = OmegaConf.to_container(OmegaConf.create({"model": {"patch_size": cfg.model.patch_size},
                                                          "option": option}), resolve=True)
        assert OmegaConf.to_container(cfg.data.corruption, resolve=True) == option["option"]
        assert sorted(_terms(f"mdpo_corruption/{variant}", tmp_path)) == ["anchor", "conditional", "dpo"]


def test_anchor_rows_of_mdpo_table_4_anchor_the_right_views(tmp_path):
    views = {v: _terms(f"mdpo_anchors/{v}", tmp_path)["anchor"].views for v in STUDIES["mdpo_anchors"]}
    assert views == {"chosen": ("chosen",), "chosen_rejected": ("chosen", "rejected"),
                     "chosen_rejected_corrupted": ("chosen", "rejected", "chosen_corrupted")}


def test_anchors_hold_chosen_up_and_rejected_and_corrupted_down():
    """mDPO Table 4: −log σ(βr_w − δ) pushes the chosen reward up, −log σ(δ − βr) the others down."""
    policy = {v: ResponseLogProbs(torch.tensor([-2.0], requires_grad=True), torch.tensor([3]))
              for v in ("chosen", "rejected", "chosen_corrupted")}
    ref = {v: ResponseLogProbs(torch.tensor([-2.0]), torch.tensor([3])) for v in policy}
    term = AnchorTerm(beta=0.1, delta=0.0, anchored=("chosen", "rejected", "chosen_corrupted"))
    out = term(policy, ref)
    assert out.loss.item() == pytest.approx(3 * math.log(2))  # each at reward 0: −log σ(0)
    out.loss.backward()
    assert policy["chosen"].sum.grad.item() < 0 < policy["rejected"].sum.grad.item()
    assert policy["chosen_corrupted"].sum.grad.item() > 0


def test_each_study_readme_names_its_table_command_variants_and_paper_numbers():
    tables = {"mdpo_components": "Table 2", "mdpo_corruption": "Table 3", "mdpo_anchors": "Table 4",
              "dpo_beta": "hparams_search=dpo_beta"}
    for study, variants in STUDIES.items():
        text = (ROOT / "experiments" / study / "README.md").read_text()
        assert tables[study] in text and "vlmalign-train -m" in text and "vlmalign-report" in text, study
        assert "runtime" in text.lower(), study
        for variant in variants:
            assert f"{study}/{variant}" in text, (study, variant)


def _compose_with_hydra(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_the_optuna_search_composes_without_the_plugin_and_scores_on_validation_scenes():
    cfg = _compose_with_hydra(["hparams_search=dpo_beta"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.direction == "minimize"
    assert set(sweeper.params) == {"objective.terms.dpo.beta", "optimizer.lr"}
    for key in sweeper.params:
        assert OmegaConf.select(cfg, key) is not None, key  # each searched key exists in the composed config
    assert cfg.eval.split == "val" and cfg.optimized_metric == "test/chair_i" and cfg.task_name == "dpo_beta"
    assert sweeper.max_failure_rate == 1.0  # a failed trial does not end the search
    assert _compose_with_hydra(["experiment=dpo_beta/confirm"]).eval.split == "test"


@pytest.mark.parametrize(("launcher", "plugin", "target"), [
    ("local_parallel", "hydra_plugins.hydra_joblib_launcher", "joblib_launcher.JoblibLauncher"),
    ("slurm", "hydra_plugins.hydra_submitit_launcher", "submitit_launcher.SlurmLauncher"),
])
def test_launcher_configs_compose_when_their_plugin_is_installed(launcher, plugin, target):
    require_sweep_plugin(plugin)
    cfg = _compose_with_hydra([f"hydra/launcher={launcher}"])
    assert cfg.hydra.launcher._target_ == f"{plugin}.{target}"
    if launcher == "slurm":
        assert cfg.hydra.launcher.timeout_min > 0 and cfg.hydra.launcher.max_num_timeout == 0


def test_the_default_launcher_is_basic_and_a_missing_plugin_is_named():
    cfg = _compose_with_hydra([])
    assert cfg.hydra.launcher._target_.endswith("BasicLauncher") and missing_plugins(cfg) == []
    fake = OmegaConf.create({"hydra": {"sweeper": {"_target_": "hydra_plugins.not_installed_xyz.sweeper.S"},
                                       "launcher": {"_target_": "hydra._internal.core_plugins.x.L"}}})
    assert missing_plugins(fake) == ["hydra.sweeper._target_=hydra_plugins.not_installed_xyz.sweeper.S"]


def test_wandb_group_is_the_study_job_type_the_objective_tags_from_config(tmp_path):
    cfg = compose_train(["experiment=mdpo_components/no_anchor", "seed=2", "logger=wandb"], tmp_path)
    wandb = OmegaConf.to_container(cfg.logger.wandb, resolve=True)
    assert wandb["group"] == "mdpo_components" and wandb["job_type"] == "mdpo"
    assert wandb["tags"] == ["shapes", "mdpo_components"] and wandb["offline"] is True
    assert wandb["name"] == "mdpo_components[experiment=mdpo_components/no_anchor,seed=2]"
    assert "csv" in cfg.logger  # vlmalign-report reads the CSV logs of wandb runs too


def test_samples_table_marks_hallucinated_objects_per_image(monkeypatch):
    from pytorch_lightning.loggers import WandbLogger

    from vlmalign.data.shapes.world import Scene, ShapeObject
    from vlmalign.eval.samples_table import COLUMNS, log_samples_table, sample_marks
    from vlmalign.eval.shapes_evaluator import ShapesEvaluator

    scene = Scene("s0", (ShapeObject("circle", "red", "large", "top left"),
                         ShapeObject("square", "blue", "small", "center")))
    marks = sample_marks(scene, "a large red circle at the top left and a green triangle at the center.")
    assert marks["hallucinated"] == "green triangle at center" and marks["chair_i"] == 0.5
    assert marks["covered"] == "1/2" and marks["size_errors"] == 0 and marks["position_errors"] == 0

    class RecordingWandb(WandbLogger):  # the real class, so the isinstance dispatch is what a run does
        def __init__(self):
            self.tables = []

        def log_table(self, key, columns=None, data=None, dataframe=None, step=None):
            self.tables.append((key, columns, data, step))

    evaluator = ShapesEvaluator(split="val", num_scenes=3, world={"image_size": 64}, pope_samplings=())
    samples = [{"image_id": s.image_id, "response": "a red circle at the top left."} for s in evaluator.scenes]
    recorder = RecordingWandb()
    log_samples_table([object(), recorder], "val/samples", evaluator, samples, step=7, limit=2)
    ((key, columns, rows, step),) = recorder.tables
    assert (key, columns, step, len(rows)) == ("val/samples", COLUMNS, 7, 2)
    assert rows[0][0] == evaluator.scenes[0].image_id and rows[0][2] == samples[0]["response"]
    assert type(rows[0][1]).__name__ == "Image"  # a wandb.Image of the rendered scene
    log_samples_table([object()], "val/samples", evaluator, samples)  # no wandb logger: nothing to do
