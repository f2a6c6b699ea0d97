"""The claims table (docs/claims.md): each source paper's headline claim, tested on run folders.

A spec (``experiments/claims/claims.yaml``) names the studies (a folder of runs under the runs root, the
command that makes it, the arms: which overrides pick each arm's runs) and the claims (which arms a claim
compares, on which metric, in which direction). Everything numeric in the page comes from the runs'
``metrics.json`` and ``status.json``; the spec holds only words, commands and the comparisons to make.

Verdicts compare arms over seeds: an improvement of arm A over arm B is the difference of their means in the
metric's better direction; its spread is two standard errors of that difference, 2·sqrt(s_A²/n_A + s_B²/n_B)
(about a 95% interval for independent seeds). Beyond the spread the claim is reproduced (or reversed); inside
it the table says inconclusive and shows the spread that makes it so. Three seeds make the spread wide:
that is the honest reading, not a flaw to tune away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vlmalign.report.runs import ReportError, Run, find_runs
from vlmalign.report.table import Row, parse_override, span_seconds

REPRODUCED, PARTLY, INCONCLUSIVE, REVERSED, NOT_REPRODUCED = (
    "reproduced", "partly reproduced", "inconclusive", "reversed", "not reproduced")
NOT_RUN = "not run yet"
FOLDER = "folder"  # an arm's pick by sub-folder of the study rather than by override
KINDS = ("better", "not_worse", "gap_grows")  # arm beats each of than | none of than beats arm | gap widens


@dataclass
class Effect:
    """Arm A's improvement over arm B on one metric (positive: A is better), with two standard errors."""

    improvement: float
    spread: float

    @property
    def verdict(self) -> str:
        if math.isnan(self.spread):
            return INCONCLUSIVE
        if self.improvement > self.spread:
            return REPRODUCED
        return REVERSED if self.improvement < -self.spread else INCONCLUSIVE

    def text(self) -> str:
        return f"{round(self.improvement, 3) + 0.0:+.3f} ± {self.spread:.3f}"  # + 0.0: no "-0.000"


@dataclass
class Study:
    name: str
    command: str
    arms: dict[str, dict[str, str]]
    metrics: list[str]
    title: str = ""
    parts: list[str] | None = None  # sub-folders made by separate commands (``command`` joins them with &&)
    seeds: int = 3                  # runs each arm is meant to have
    rows: dict[str, Row] | None = None  # filled by ``load``
    wall_s: dict[str, float] | None = None  # per part ("" for the whole study)
    ran_on: str = ""                         # the UTC date the study's first run started
    folder: str = ""                         # its runs' folder under the runs root; "" : the study's name

    @property
    def ran(self) -> bool:
        return bool(self.rows) and any(row.completed for row in self.rows.values())

    def load(self, runs_root: Path) -> None:
        folder = runs_root / (self.folder or self.name)
        if not folder.is_dir():
            return
        runs = find_runs([folder])
        self.rows = {label: Row({"arm": label}, [r for r in runs if _matches(r, picks, folder)])
                     for label, picks in self.arms.items()}
        parts = {part: [r for r in runs if r.path.relative_to(folder).parts[:1] == (part,)]
                 for part in self.parts} if self.parts else {"": runs}
        self.wall_s = {part: wall for part, members in parts.items() if (wall := span_seconds(members)) is not None}
        starts = [r.span[0] for r in runs if r.span]
        self.ran_on = min(starts)[:10] if starts else ""

    def stats(self, arm: str, metric: str) -> tuple[float | None, float | None, int]:
        return self.rows[arm].stats(metric)

    def effect(self, arm: str, than: str, metric: str, lower_is_better: bool) -> Effect:
        (mean_a, std_a, n_a), (mean_b, std_b, n_b) = self.stats(arm, metric), self.stats(than, metric)
        if mean_a is None or mean_b is None:
            return Effect(math.nan, math.nan)
        sign = -1.0 if lower_is_better else 1.0
        if std_a is None or std_b is None:  # one seed: no spread to judge by
            return Effect(sign * (mean_a - mean_b), math.nan)
        return Effect(sign * (mean_a - mean_b), 2.0 * math.sqrt(std_a ** 2 / n_a + std_b ** 2 / n_b))


def _matches(run: Run, picks: dict[str, str], study_folder: Path) -> bool:
    """A run belongs to an arm when it has each picked override; ``folder`` picks by the sub-folder of the
    study the run is in (for pipelines whose conditions differ by a default left out of the overrides)."""
    overrides = dict(parse_override(o) for o in run.overrides)
    if FOLDER in picks and run.path.relative_to(study_folder).parts[0] != picks[FOLDER]:
        return False
    return all(overrides.get(key) == str(value) for key, value in picks.items() if key != FOLDER)


@dataclass
class Claim:
    paper: str
    claim: str
    paper_number: str
    study: Study
    kind: str
    metric: str
    arm: str | list[str]
    than: list[str]
    lower_is_better: bool = True
    reading: str = ""

    def evaluate(self) -> tuple[str, str]:
        """(verdict, our measurement as text)."""
        if not self.study.ran:
            return NOT_RUN, ""
        missing = [arm for arm in _named_arms(self.arm, self.than) if not self.study.rows[arm].completed]
        if missing:  # a study half run (one of its commands not yet): the claim waits for the rest
            return NOT_RUN, f"no finished runs yet for {', '.join(missing)}"
        if self.kind == "gap_grows":
            return self._gap_grows()
        effects = {other: self.study.effect(self.arm, other, self.metric, self.lower_is_better) for other in self.than}
        measured = "; ".join(f"{self.arm} {_mean_std(self.study, self.arm, self.metric)} vs {other} "
                             f"{_mean_std(self.study, other, self.metric)} (Δ {e.text()})"
                             for other, e in effects.items())
        verdicts = [e.verdict for e in effects.values()]
        if self.kind == "not_worse":  # the claim: none of the others does better than the arm beyond noise
            return (NOT_REPRODUCED if REVERSED in verdicts else REPRODUCED), measured
        if REVERSED in verdicts:
            return REVERSED, measured
        if all(v == REPRODUCED for v in verdicts):
            return REPRODUCED, measured
        return (PARTLY if REPRODUCED in verdicts else INCONCLUSIVE), measured

    def _gap_grows(self) -> tuple[str, str]:
        """``arm`` and ``than`` list arms step by step (e.g. data sizes); arm's improvement over than should be
        larger at the last step than at the first, beyond the spread of that difference."""
        gaps = [self.study.effect(a, b, self.metric, self.lower_is_better) for a, b in zip(self.arm, self.than)]
        first, last = gaps[0], gaps[-1]
        growth = Effect(last.improvement - first.improvement, math.hypot(first.spread, last.spread))
        measured = "gap " + " → ".join(g.text() for g in gaps) + f" (growth {growth.text()})"
        return growth.verdict, measured


def _named_arms(arm: str | list[str], than: list[str]) -> list[str]:
    """Every arm a claim names, once each, in order."""
    return list(dict.fromkeys([*(arm if isinstance(arm, list) else [arm]), *than]))


def _mean_std(study: Study, arm: str, metric: str) -> str:
    mean, std, _ = study.stats(arm, metric)
    if mean is None:
        return "–"
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def _require(entry: dict, key: str, where: str) -> Any:
    if key not in entry:
        raise ReportError(f"{where}: missing key '{key}'")
    return entry[key]


def load_spec(path: Path) -> tuple[str, dict[str, Study], list[Claim], list[dict]]:
    """(intro, studies, claims, linked rows) from the spec, every reference checked before any run is read."""
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ReportError(f"{path}: cannot be read as YAML ({error})") from error
    if not isinstance(spec, dict):
        raise ReportError(f"{path}: expected a mapping with keys intro, studies, claims")
    studies = {}
    for name, entry in (_require(spec, "studies", str(path)) or {}).items():
        where = f"{path}: studies.{name}"
        arms = {str(label): {str(k): str(v) for k, v in (picks or {}).items()}
                for label, picks in _require(entry, "arms", where).items()}
        studies[name] = Study(name, _require(entry, "command", where), arms, list(_require(entry, "metrics", where)),
                              entry.get("title", ""), entry.get("parts"), int(entry.get("seeds", 3)),
                              folder=str(entry.get("folder", "")))
    claims = []
    for index, entry in enumerate(_require(spec, "claims", str(path)) or []):
        where = f"{path}: claims[{index}]"
        study_name = _require(entry, "study", where)
        if study_name not in studies:
            raise ReportError(f"{where}: study '{study_name}' is not under studies: ({sorted(studies)})")
        study, test = studies[study_name], _require(entry, "test", where)
        kind = _require(test, "kind", f"{where}.test")
        if kind not in KINDS:
            raise ReportError(f"{where}.test.kind: expected one of {KINDS}, found '{kind}'")
        arm, than = _require(test, "arm", f"{where}.test"), list(_require(test, "than", f"{where}.test"))
        unknown = [a for a in _named_arms(arm, than) if a not in study.arms]
        if unknown:
            raise ReportError(f"{where}.test: arms {unknown} are not arms of study '{study_name}' ({list(study.arms)})")
        if kind == "gap_grows" and (not isinstance(arm, list) or len(arm) != len(than) or len(arm) < 2):
            raise ReportError(f"{where}.test: kind 'gap_grows' wants arm and than as lists of the same length (≥ 2), "
                              "one entry per step")
        if kind != "gap_grows" and not isinstance(arm, str):
            raise ReportError(f"{where}.test.arm: kind '{kind}' compares one arm with the others; found {arm!r}")
        metric = _require(test, "metric", f"{where}.test")
        if metric not in study.metrics:
            raise ReportError(f"{where}.test.metric: '{metric}' is not in studies.{study_name}.metrics")
        claims.append(Claim(_require(entry, "paper", where), _require(entry, "claim", where),
                            entry.get("paper_number", ""), study, kind, metric, arm, than,
                            bool(test.get("lower_is_better", True)), entry.get("reading", "")))
    linked = spec.get("linked") or []
    for index, entry in enumerate(linked):
        for key in ("paper", "claim", "verdict"):
            _require(entry, key, f"{path}: linked[{index}]")
    return spec.get("intro", ""), studies, claims, linked


def table_runs(studies: dict[str, Study]) -> list[Run]:
    """Every run an arm picked, finished or not (each once)."""
    runs = {r.path: r for s in studies.values() if s.rows for row in s.rows.values() for r in row.runs}
    return list(runs.values())
