"""vlmalign-claims on a small fixture of run folders: arms, verdicts, the page, the archive, bad specs."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from tests.test_report import make_run
from vlmalign.report.claims import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, PARTLY, REPRODUCED, REVERSED, load_spec
from vlmalign.report.claims_cli import main

ROOT = Path(__file__).resolve().parent.parent
SPEC = {
    "intro": "A fixture.",
    "studies": {
        "study": {"command": "bash run.sh", "metrics": ["test/chair_i", "test/cover"],
                  "arms": {"DPO": {"objective": "dpo"}, "mDPO": {"objective": "mdpo"}, "SFT": {"objective": "sft"}}},
        "scale": {"command": "bash scale.sh", "metrics": ["test/chair_i"],
                  "arms": {f"{o}@{n}": {"objective": o, "folder": f"pairs{n}"}  # one sub-folder per data size
                           for o in ("dpo", "mdpo") for n in (100, 400)}},
        "never_ran": {"command": "bash later.sh", "metrics": ["test/chair_i"], "arms": {"A": {"objective": "a"}}},
    },
    "claims": [
        {"paper": "P1", "claim": "mDPO beats DPO", "paper_number": "27.0 vs 44.3", "study": "study",
         "test": {"kind": "better", "metric": "test/chair_i", "arm": "mDPO", "than": ["DPO"]}},
        {"paper": "P1", "claim": "DPO beats mDPO", "study": "study",
         "test": {"kind": "better", "metric": "test/chair_i", "arm": "DPO", "than": ["mDPO"]}},
        {"paper": "P1", "claim": "mDPO beats DPO and SFT", "study": "study",
         "test": {"kind": "better", "metric": "test/chair_i", "arm": "mDPO", "than": ["DPO", "SFT"]}},
        {"paper": "P1", "claim": "mDPO covers more than SFT", "study": "study",
         "test": {"kind": "better", "metric": "test/cover", "lower_is_better": False, "arm": "mDPO", "than": ["SFT"]}},
        {"paper": "P2", "claim": "DPO is not worse than mDPO", "study": "study",
         "test": {"kind": "not_worse", "metric": "test/chair_i", "arm": "DPO", "than": ["mDPO"]}},
        {"paper": "P2", "claim": "mDPO is not worse than SFT", "study": "study",
         "test": {"kind": "not_worse", "metric": "test/chair_i", "arm": "mDPO", "than": ["SFT"]}},
        {"paper": "P3", "claim": "the gap grows with data", "study": "scale",
         "test": {"kind": "gap_grows", "metric": "test/chair_i", "arm": ["mdpo@100", "mdpo@400"],
                  "than": ["dpo@100", "dpo@400"]}},
        {"paper": "P4", "claim": "later", "study": "never_ran",
         "test": {"kind": "better", "metric": "test/chair_i", "arm": "A", "than": ["A"]}},
    ],
    "linked": [{"paper": "P5", "claim": "BTX wins", "page": "docs/btx.md", "verdict": "not reproduced"}],
}
# test/chair_i per seed: DPO 0.20/0.21/0.22, mDPO 0.10/0.11/0.12 (std 0.01 each), SFT 0.105/0.115/0.125
CHAIR = {"dpo": (0.20, 0.21, 0.22), "mdpo": (0.10, 0.11, 0.12), "sft": (0.105, 0.115, 0.125)}
COVER = {"dpo": (0.5, 0.5, 0.5), "mdpo": (0.80, 0.81, 0.82), "sft": (0.60, 0.61, 0.62)}


def done(minute: int) -> dict:
    return {"status": "completed", "wall_s": 60.0, "started": f"2026-01-01T00:{minute:02d}:00+00:00",
            "ended": f"2026-01-01T00:{minute + 1:02d}:00+00:00"}


@pytest.fixture
def fixture(tmp_path):
    """Run folders of two studies (one a multirun per data size), plus the spec; one SFT seed failed."""
    runs, number = tmp_path / "runs", 0
    for objective in ("dpo", "mdpo", "sft"):
        for seed in range(3):
            overrides = [f"objective={objective}", f"seed={seed}", "task_name=x"]
            if objective == "sft" and seed == 2:
                make_run(runs / "study", number, overrides, status={"status": "failed", "error": "NaN at step 3"})
            else:
                metrics = {"test/chair_i": CHAIR[objective][seed], "test/cover": COVER[objective][seed]}
                make_run(runs / "study", number, overrides, metrics, done(number))
            number += 1
    # gap (dpo - mdpo): 0.01 at 100 pairs, 0.10 at 400 pairs, each arm's seeds ±0.005
    for size, gap in ((100, 0.01), (400, 0.10)):
        for index, (objective, mean) in enumerate((("dpo", 0.30), ("mdpo", 0.30 - gap))):
            for seed in range(3):
                make_run(runs / "scale" / f"pairs{size}", index * 3 + seed, [f"objective={objective}", f"seed={seed}"],
                         {"test/chair_i": mean + 0.005 * (seed - 1)}, done(30 + seed))
    spec = tmp_path / "claims.yaml"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    return spec, runs


def rows(page: str) -> dict[str, list[str]]:
    """The claims table's rows by claim text: [paper, claim, number, ours, verdict, command, wall]."""
    table = page.split("## The studies")[0]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in table.splitlines() if line.startswith("| P")]
    return {re.sub(r" \(\[study\]\(#\w+\)\)$", "", c[1]): c for c in cells}


def test_claims_page_from_run_folders(fixture, tmp_path):
    spec, runs = fixture
    out = tmp_path / "claims.md"
    assert main(["--spec", str(spec), "--runs", str(runs), "--out", str(out)]) == 0
    page = out.read_text()
    table = rows(page)
    verdicts = {claim: cells[4].strip("*") for claim, cells in table.items()}
    assert verdicts == {"mDPO beats DPO": REPRODUCED, "DPO beats mDPO": REVERSED, "mDPO beats DPO and SFT": PARTLY,
                        "mDPO covers more than SFT": REPRODUCED, "DPO is not worse than mDPO": NOT_REPRODUCED,
                        "mDPO is not worse than SFT": REPRODUCED, "the gap grows with data": REPRODUCED,
                        "later": NOT_RUN, "BTX wins": "not reproduced"}
    # Δ = 0.21 - 0.11 = +0.100; 2 SE = 2·sqrt(0.01²/3 + 0.01²/3) = 0.0163
    two_se = 2 * math.sqrt(2 * 0.01 ** 2 / 3)
    assert f"mDPO 0.110 ± 0.010 vs DPO 0.210 ± 0.010 (Δ +0.100 ± {two_se:.3f})" in table["mDPO beats DPO"][3]
    assert table["mDPO beats DPO"][2] == "27.0 vs 44.3" and table["mDPO beats DPO"][5] == "`bash run.sh`"
    # SFT has two seeds (0.105, 0.115): mDPO's lead of 0.000 is inside the spread
    assert "vs SFT 0.110 ± 0.007 (Δ +0.000" in table["mDPO beats DPO and SFT"][3]
    assert "gap +0.010 ± 0.008 → +0.100 ± 0.008 (growth +0.090 ± 0.012)" in table["the gap grows with data"][3]
    # wall time: first start to last end of the study's runs (8 runs, minutes 0..8 with one failed)
    assert table["mDPO beats DPO"][6] == "8.0 min" and table["the gap grows with data"][6] == "3.0 min"
    study = page.split("### ")[1]
    assert "| SFT | 2 of 3 | 0.110 ± 0.007 | 0.605 ± 0.007 |" in study
    assert "not counted (failed)" in study and "NaN at step 3" in study
    assert '### <a id="never_ran"></a>never_ran' in page and "Not run yet." in page
    assert "| P5 | BTX wins |  | in [docs/btx.md](docs/btx.md) | **not reproduced** | – | – |" in page


def test_inconclusive_when_the_difference_is_inside_two_standard_errors(fixture, tmp_path):
    spec, runs = fixture
    _, studies, claims, _ = load_spec(spec)
    for study in studies.values():
        study.load(runs)
    effect = studies["study"].effect("mDPO", "SFT", "test/chair_i", lower_is_better=True)
    assert effect.improvement == pytest.approx(0.0, abs=1e-12) and effect.verdict == INCONCLUSIVE
    one_seed = studies["study"].rows["SFT"].runs[0]
    studies["study"].rows["SFT"].runs = [one_seed]
    assert studies["study"].effect("mDPO", "SFT", "test/chair_i", True).verdict == INCONCLUSIVE  # no spread


def test_archive_rebuilds_the_same_page(fixture, tmp_path):
    spec, runs = fixture
    archive, first, second = tmp_path / "archive", tmp_path / "first.md", tmp_path / "second.md"
    assert main(["--spec", str(spec), "--runs", str(runs), "--out", str(first), "--archive", str(archive)]) == 0
    assert not list(archive.rglob("config.yaml")) and len(list(archive.rglob("overrides.yaml"))) == 21
    assert main(["--spec", str(spec), "--runs", str(archive), "--out", str(second)]) == 0
    assert second.read_text() == first.read_text()


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["claims"][0]["test"].update(than=["PPO"]), "claims[0].test: arms ['PPO'] are not arms of study"),
    (lambda s: s["claims"][0].update(study="nope"), "claims[0]: study 'nope' is not under studies"),
    (lambda s: s["claims"][0]["test"].update(kind="wins"), "claims[0].test.kind: expected one of"),
    (lambda s: s["claims"][0]["test"].update(metric="test/pope"), "claims[0].test.metric: 'test/pope' is not in"),
    (lambda s: s["claims"][6]["test"].update(than=["dpo@100"]), "claims[6].test: kind 'gap_grows' wants"),
    (lambda s: s["studies"]["study"].pop("command"), "studies.study: missing key 'command'"),
])
def test_bad_spec_is_one_clear_error_naming_the_key(fixture, tmp_path, capsys, edit, message):
    spec, runs = fixture
    data = yaml.safe_load(spec.read_text())
    edit(data)
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "claims.md"
    assert main(["--spec", str(spec), "--runs", str(runs), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("vlmalign-claims: error: ") and str(spec) in error and message in error
    assert not out.exists()


def test_missing_runs_folder_is_a_clear_error(fixture, tmp_path, capsys):
    spec, _ = fixture
    assert main(["--spec", str(spec), "--runs", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.md")]) == 2
    assert "no such directory; run a study first (e.g. `bash run.sh`)" in capsys.readouterr().err


def test_the_projects_spec_names_real_experiments_and_scripts():
    """Every arm of experiments/claims/claims.yaml picks a config that exists and every command a script."""
    _, studies, claims, linked = load_spec(ROOT / "experiments" / "claims" / "claims.yaml")
    assert all((ROOT / row["page"]).is_file() for row in linked if "page" in row)
    assert claims and all(c.study.name in studies for c in claims)
    for study in studies.values():
        for script in re.findall(r"bash (\S+)", study.command):
            assert (ROOT / script).is_file(), study.command
        for picks in study.arms.values():
            if "experiment" in picks:
                assert (ROOT / "conf" / "experiment" / f"{picks['experiment']}.yaml").is_file(), picks
            if "objective" in picks:
                assert (ROOT / "conf" / "objective" / f"{picks['objective']}.yaml").is_file(), picks


def test_the_committed_page_is_what_the_archived_runs_give(tmp_path, monkeypatch):
    """docs/claims.md is generated: rebuilding it from the archived records in docs/claims_runs changes nothing."""
    monkeypatch.chdir(ROOT)  # the page names the archive by the relative path it was built from
    out = tmp_path / "claims.md"
    assert main(["--runs", "docs/claims_runs", "--out", str(out)]) == 0
    assert out.read_text() == (ROOT / "docs" / "claims.md").read_text()
