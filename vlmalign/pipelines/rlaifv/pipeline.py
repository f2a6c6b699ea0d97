"""K rounds of RLAIF-V, each stage saved with provenance, resumable at the stage it stopped in.

Layout of the pipeline's working directory::

    pipeline.json                the resolved config and its fingerprint (a resume must match it)
    round_1/samples.jsonl        n sampled responses per instruction        (stage "samples")
    round_1/claims.jsonl         + the claims and questions of each response  (stage "claims")
    round_1/labels.jsonl         + the labeler's P(yes), P(no), verdicts, scores (stage "labels")
    round_1/pairs.jsonl          the DPO pairs                               (stage "pairs")
    round_1/train/               a whole vlmalign-train run: checkpoints/, model/, metrics.json
    round_1/provenance.json      policy, labeler, seeds and counts of the round
    summary.json                 per-round counts and held-out metrics (round 0 = the starting policy)
    metrics.json                 written last: the final policy's held-out metrics, the labeler's agreement with
                                 the truth over all rounds and the pair count (what vlmalign-report and
                                 vlmalign-claims read, as for a vlmalign-train run)

Every stage file is checksummed; a finished stage is read back, never recomputed. The training
stage resumes from its last checkpoint. The trained model of round r is round r+1's policy.
"""

from __future__ import annotations

import json
import logging
import math
from functools import cached_property
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from vlmalign.errors import ConfigError
from vlmalign.job import TrainingJob
from vlmalign.pipelines.base_model import ensure_base_model
from vlmalign.pipelines.rlaifv import stages
from vlmalign.pipelines.rlaifv.store import RoundStore
from vlmalign.reliability.checkpoint_io import checkpoint_problem
from vlmalign.utils.compose import compose_train
from vlmalign.utils.files import fingerprint, write_json_atomic
from vlmalign.utils.instantiate import build
from vlmalign.utils.reporting import METRICS_FILE

log = logging.getLogger(__name__)
IDENTITY_EXCLUDES = ("paths", "hydra", "workdir", "rounds", "stop_after")  # a resume may add rounds or go further
DATA_STAGES = ("samples", "claims", "labels", "pairs")


def starting_policy(policy: DictConfig, cache_dir: str) -> Path:
    """Model directory of the round-1 policy: a cached base run (``conf/base/<name>``) or a given path."""
    if policy.init_from:
        path = Path(policy.init_from).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(f"policy.init_from={str(path)!r} is not an HF model directory (no config.json)")
        return path
    base = compose_train([f"base={policy.base}"]).base
    return ensure_base_model(base, cache_dir) / "model"


def final_metrics(summary: list[dict]) -> dict[str, float]:
    """The last round's held-out metrics, the labeler's agreement averaged over rounds (each round's claims
    weigh the same) and the pairs trained on in all rounds."""
    rounds = summary[1:]
    labeler = {key: sum(r[key] for r in rounds) / len(rounds) for key in rounds[0] if key.startswith("labeler/")
               and all(key in r for r in rounds)}
    held_out = {k: v for k, v in summary[-1].items() if k.startswith(("test/", "val/")) and isinstance(v, (int, float))}
    return {**held_out, **labeler, "pairs/total": sum(r["pairs"] for r in rounds), "rounds": len(rounds)}


class RLAIFVPipeline:
    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.workdir = Path(cfg.workdir)
        self.instructions = build(cfg.instructions, "instructions")
        self.splitter = build(cfg.splitter, "splitter")

    @cached_property
    def labeler(self):
        """Built on first use: a resumed run past its label stages never loads the labeler model."""
        return build(self.cfg.labeler, "labeler", cache_dir=self.cfg.paths.cache_dir)

    def check_identity(self) -> None:
        """Refuse to mix rounds of two different configs in one working directory."""
        identity = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                    for k, v in self.cfg.items() if k not in IDENTITY_EXCLUDES}
        key = fingerprint(identity)
        marker = self.workdir / "pipeline.json"
        if marker.exists():
            saved = json.loads(marker.read_text())
            if saved["fingerprint"] != key:
                differ = sorted(k for k in {*identity, *saved["config"]}
                                if identity.get(k) != saved["config"].get(k))
                raise ConfigError(f"workdir={str(self.workdir)!r} holds an RLAIF-V run of another config (keys that "
                                  f"differ: {differ}); resume with the same config or use a new workdir")
            return
        write_json_atomic(marker, {"fingerprint": key, "config": identity})

    def run(self) -> list[dict]:
        stop_after = self.cfg.get("stop_after")
        if stop_after is not None and (stop_after not in DATA_STAGES or self.cfg.rounds != 1):
            raise ConfigError(f"stop_after={stop_after!r}: expected one of {list(DATA_STAGES)} with rounds=1 (a later "
                              "round needs the trained model of the one before)")
        self.check_identity()
        policy = starting_policy(self.cfg.policy, self.cfg.paths.cache_dir)
        summary = [{"round": 0, "policy": str(policy), **self.held_out_metrics(policy.parent)}]
        for round_index in range(self.cfg.rounds):
            result = self.run_round(round_index, policy)
            summary.append(result)
            write_json_atomic(self.workdir / "summary.json", summary)
            if "policy" not in result:  # stop_after: data only
                break
            policy = Path(result["policy"])
        if "policy" in summary[-1] and len(summary) > 1:
            write_json_atomic(self.workdir / METRICS_FILE, final_metrics(summary))
        return summary

    def run_round(self, round_index: int, policy: Path) -> dict:
        number = round_index + 1
        store = RoundStore(self.workdir / f"round_{number}")
        instructions = self.instructions.for_round(round_index)
        seed = self.cfg.seed * 1000 + number
        sampling = self.cfg.sampling
        stop_after = self.cfg.get("stop_after")

        def data_only(stage: str, records: list[dict], labels: list[dict] | None = None) -> dict:
            """What a ``stop_after`` round reports: its last stage's file and record count."""
            return {"round": number, stage: len(records), f"{stage}_file": str(store.path(stage)),
                    **(stages.labeler_agreement(labels) if labels is not None else {})}

        samples = store.stage("samples", lambda: stages.sample(
            self.policy_backbone(policy), instructions, sampling.num_samples, sampling.temperature,
            sampling.max_new_tokens, seed, sampling.batch_size))
        if stop_after == "samples":
            return data_only("samples", samples)
        claims = store.stage("claims", lambda: stages.split_claims(samples, self.splitter))
        if stop_after == "claims":
            return data_only("claims", claims)
        labels = store.stage("labels", lambda: stages.label(claims, instructions, self.labeler))
        if stop_after == "labels":
            return data_only("labels", labels, labels)
        p = self.cfg.pairs
        pairs = store.stage("pairs", lambda: stages.make_pairs(labels, instructions, p.min_gap,
                                                               p.max_per_instruction, p.length_tolerance, seed))
        if stop_after == "pairs":
            return data_only("pairs", pairs, labels)
        if not pairs:
            responses = sum(len(s["responses"]) for s in samples)
            raise ConfigError(f"round {number}: no pair has a score gap >= {p.min_gap} among {responses} responses; "
                              "sample more (sampling.num_samples) or more instructions (instructions.per_round)")
        metrics = self.train_round(store, policy, len(pairs), seed)
        responses = sum(len(s["responses"]) for s in samples)
        rejected = -sum(sum(r["scores"]) for r in labels)  # score = −(rejected claims)
        provenance = {"round": number, "policy": str(policy), "seed": seed, "instructions": len(instructions),
                      "responses": responses, "pairs": len(pairs),
                      "claims": sum(len(c) for r in claims for c in r["claims"]),
                      "rejected_claims": rejected, "mean_score": -rejected / max(1, responses),
                      **stages.labeler_agreement(labels)}
        write_json_atomic(store.directory / "provenance.json", provenance)
        return {**provenance, "policy": str(store.directory / "train" / "model"), "trained_from": str(policy),
                **metrics}

    def compose_round(self, overrides: list[str]) -> DictConfig:
        """A train config of this pipeline: its ``train.overrides``, then ``overrides``, in its cache."""
        return compose_train([*self.cfg.train.overrides, f"paths.cache_dir={self.cfg.paths.cache_dir}", *overrides])

    def policy_backbone(self, policy: Path):
        return build(self.compose_round([]).model, "model", init_from=str(policy))

    def train_overrides(self, store: RoundStore, policy: Path, num_pairs: int, seed: int) -> list[str]:
        t = self.cfg.train
        steps = max(1, math.ceil(num_pairs / t.batch_size) * t.epochs)
        return ["data=rlaifv_pairs", f"data.pairs_file={store.path('pairs').resolve()}",
                f"data.batch_size={t.batch_size}", "~base", f"+model.init_from={policy.resolve()}",
                f"seed={seed}", f"trainer.max_steps={steps}", f"trainer.val_check_interval={min(steps, 100)}",
                f"paths.output_dir={(store.directory / 'train').resolve()}", "evaluate_initial=false"]

    def train_round(self, store: RoundStore, policy: Path, num_pairs: int, seed: int) -> dict:
        """DPO on the round's pairs (a whole ``vlmalign-train`` run), resumed from its last checkpoint."""
        def fit() -> list[dict]:
            cfg = self.compose_round(self.train_overrides(store, policy, num_pairs, seed))
            last = store.directory / "train" / "checkpoints" / "last.ckpt"
            if last.exists() and checkpoint_problem(last) is None:
                log.info("%s: resuming training from %s", store.directory.name, last)
                with open_dict(cfg):
                    cfg.ckpt_path = str(last)
            return [TrainingJob(cfg).run({})]  # ~base: the policy comes in as model.init_from

        (metrics,) = store.stage("train", fit)
        return metrics

    @staticmethod
    def held_out_metrics(run_dir: Path) -> dict:
        """The test metrics a finished vlmalign-train run wrote (a base run's), when there are any."""
        path = run_dir / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else {}
