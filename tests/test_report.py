"""vlmalign-report on synthetic run directories: the table, failed and incomplete runs, charts, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vlmalign.report.cli import main
from vlmalign.report.runs import ReportError, expected_members, find_runs
from vlmalign.report.table import build_table

SHARED = ["reference=precomputed", "task_name=study"]


def make_run(sweep: Path, num: int, overrides: list[str], metrics: dict | None = None, status: dict | None = None,
             curve: list[float] | None = None) -> Path:
    """A run directory as vlmalign-train leaves it (only the files the report reads)."""
    run = sweep / str(num)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    seed = next((int(o.split("=")[1]) for o in overrides if o.startswith("seed=")), 0)
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "task_name": "study"}))
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
    if status is not None:
        (run / "status.json").write_text(json.dumps(status))
    if curve is not None:
        (run / "csv").mkdir()
        rows = ["step,train/loss,val/chair_i"] + [f"{i},{v},{'' if i % 2 else v / 2}" for i, v in enumerate(curve)]
        (run / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    return run


def m(chair_i: float, cover: float) -> dict:
    return {"test/chair_i": chair_i, "test/cover": cover, "time/total_s": 60.0}


@pytest.fixture
def sweep(tmp_path):
    """objective=dpo,mdpo x seed=0,1,2 where dpo seed 2 failed and mdpo seed 1 never finished."""
    sweep = tmp_path / "multiruns" / "2026-01-01_00-00-00_1"
    def done(minute: int) -> dict:  # one minute per member, one after another
        return {"status": "completed", "wall_s": 60.0, "started": f"2026-01-01T00:0{minute}:00+00:00",
                "ended": f"2026-01-01T00:0{minute + 1}:00+00:00"}

    make_run(sweep, 0, ["objective=dpo", "seed=0", *SHARED], m(0.1, 0.5), done(0), [0.7, 0.6, 0.5])
    make_run(sweep, 1, ["objective=dpo", "seed=1", *SHARED], m(0.2, 0.7), done(1), [0.7, 0.5, 0.4])
    make_run(sweep, 2, ["objective=dpo", "seed=2", *SHARED],
             status={"status": "failed", "error": "NumericalError: loss is NaN at step 3"})
    make_run(sweep, 3, ["objective=mdpo", "seed=0", *SHARED], m(0.3, 0.6), done(3), [0.9, 0.8, 0.7])
    make_run(sweep, 4, ["objective=mdpo", "seed=1", *SHARED], status={"status": "running", "started": "t0"})
    make_run(sweep, 5, ["objective=mdpo", "seed=2", *SHARED], m(0.5, 0.8), done(5), [0.9, 0.7, 0.6])
    return sweep


def test_table_groups_by_varying_overrides_with_mean_std_and_lists_failed_and_incomplete(sweep):
    runs = find_runs([sweep])
    assert [r.status for r in runs] == ["completed", "completed", "failed", "completed", "incomplete", "completed"]
    table = build_table(runs, ["test/chair_i", "test/cover"])
    assert table.keys == ["objective"]  # reference/task_name are shared, seed is the averaged axis
    lines = table.markdown().splitlines()
    assert lines[:4] == [
        "| objective | seeds | chair_i | cover |",
        "|---|---|---|---|",
        "| dpo | 2 of 3 | 0.150 ± 0.071 | 0.600 ± 0.141 |",
        "| mdpo | 2 of 3 | 0.400 ± 0.141 | 0.700 ± 0.141 |",
    ]
    text = table.markdown()
    assert "Not in the table: 2 of 6 runs." in text
    assert f"- failed: `{sweep / '2'}` (objective=dpo seed=2 {' '.join(SHARED)}): NumericalError: loss is NaN" in text
    assert f"- incomplete: `{sweep / '4'}`" in text and "no metrics.json (started t0)" in text
    assert f"{sweep}: members' wall time 4.0 min in all (4 runs, 60 s each on average); the sweep took 6.0 min" \
        in text
    rows = [line.split(",") for line in table.csv().splitlines()]
    assert rows[0] == ["objective", "seeds", "failed", "incomplete", "test/chair_i_mean", "test/chair_i_std",
                       "test/cover_mean", "test/cover_std"]
    assert rows[1][:4] == ["dpo", "2", "1", "0"] and rows[2][:4] == ["mdpo", "2", "0", "1"]
    assert float(rows[1][4]) == pytest.approx(0.15) and float(rows[2][5]) == pytest.approx(0.1414, abs=1e-4)


def test_a_key_set_in_some_runs_varies_and_a_shared_path_prefix_is_cut(tmp_path):
    sweep = tmp_path / "s"
    make_run(sweep, 0, ["experiment=study/dpo", "seed=0"], m(0.1, 0.5))
    make_run(sweep, 1, ["experiment=study/mdpo", "seed=0", "corruption=noise"], m(0.2, 0.5))
    table = build_table(find_runs([sweep]), ["test/chair_i"])
    assert table.keys == ["experiment", "corruption"]
    assert table.markdown().splitlines()[2:4] == ["| dpo | (default) | 1 | 0.100 |", "| mdpo | noise | 1 | 0.200 |"]
    assert table.csv().splitlines()[1].startswith("study/dpo,(default),1,")  # the CSV keeps full values


def test_long_float_values_show_four_significant_digits(tmp_path):
    sweep = tmp_path / "s"
    make_run(sweep, 0, ["optimizer.lr=3.2818239234032334e-05"], m(0.1, 0.5))  # an Optuna suggestion
    make_run(sweep, 1, ["optimizer.lr=1e-5"], m(0.2, 0.5))
    table = build_table(find_runs([sweep]), ["test/chair_i"])
    assert [label["optimizer.lr"] for label in table.display_labels()] == ["3.282e-05", "1e-5"]


def test_one_config_over_seeds_is_one_row_and_sort_orders_rows(tmp_path):
    sweep = tmp_path / "s"
    for seed, value in enumerate((0.3, 0.1)):
        make_run(sweep, seed, [f"seed={seed}"], m(value, 0.5))
    assert build_table(find_runs([sweep]), ["test/chair_i"]).markdown().splitlines()[2] == "| all | 2 | 0.200 ± 0.141 |"
    sweep2 = tmp_path / "t"
    for num, (objective, value) in enumerate((("a", 0.3), ("b", 0.1), ("c", 0.2))):
        make_run(sweep2, num, [f"objective={objective}"], m(value, 0.5))
    table = build_table(find_runs([sweep2]), ["test/chair_i"], sort="test/chair_i")
    assert [row.label["objective"] for row in table.rows] == ["b", "c", "a"]
    table = build_table(find_runs([sweep2]), ["test/chair_i"], sort="-test/chair_i")
    assert [row.label["objective"] for row in table.rows] == ["a", "c", "b"]


def test_members_that_never_started_are_noted_from_multirun_yaml(sweep):
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(
        {"hydra": {"sweeper": {"params": None}, "overrides": {"task": ["objective=dpo,mdpo", "seed=0,1,2,3"]}}}))
    assert expected_members(sweep) == 8
    text = build_table(find_runs([sweep])).markdown()
    assert f"{sweep}: 8 members expected, 6 found; the other 2 never started" in text


def test_a_run_resumed_elsewhere_counts_with_the_metrics_of_the_run_that_finished_it(tmp_path):
    finished = make_run(tmp_path / "runs", 0, ["objective=dpo", "seed=0"], m(0.1, 0.5))
    cut = make_run(tmp_path / "sweep", 0, ["objective=dpo", "seed=0"], status={"status": "running"})
    (cut / "superseded_by.json").write_text(json.dumps({"run": str(finished)}))
    run = find_runs([tmp_path / "sweep"])[0]
    assert run.status == "completed" and run.metrics["test/chair_i"] == 0.1 and str(finished) in run.detail


def test_cli_prints_markdown_and_writes_csv_and_charts(sweep, tmp_path, capsys):
    base = tmp_path / "bases" / "sft_shapes-0123456789abcdef"
    base.mkdir(parents=True)
    (base / "metrics.json").write_text(json.dumps(m(0.25, 0.55)))
    out = tmp_path / "report"
    assert main([str(sweep), "--metrics", "test/chair_i,test/cover", "--base", str(base), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| sft_shapes |  | 1 | 0.250 | 0.550 |" not in printed  # one key column: no padding cell
    assert "| sft_shapes | 1 | 0.250 | 0.550 |" in printed and "| dpo | 2 of 3 |" in printed
    assert (out / "report.md").read_text() == printed
    assert (out / "report.csv").read_text().splitlines()[1].startswith("sft_shapes,1,0,0,0.25,,0.55,")
    for png in ("bars.png", "curves.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main([str(sweep), "--format", "csv", "--metrics", "test/cover"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "objective,seeds,failed,incomplete,test/cover_mean,test/cover_std"


@pytest.mark.parametrize(("args", "message"), [
    (["{tmp}/nowhere"], "{tmp}/nowhere: no such file or directory"),
    (["{tmp}/empty"], "{tmp}/empty: no run directories found. A run directory holds .hydra/overrides.yaml"),
    (["{sweep}", "--metrics", "test/chair_j"], "metrics ['test/chair_j'] are in no run's metrics.json; available:"),
    (["{sweep}", "--sort", "test/pope/f1"], "--sort test/pope/f1: test/pope/f1 is not one of the table's metrics"),
    (["{sweep}", "--base", "{tmp}/empty"], "--base {tmp}/empty: expected a run directory with a readable metrics.json"),
])
def test_bad_input_is_a_clear_error_naming_the_path_or_key(sweep, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    assert main([a.format(tmp=tmp_path, sweep=sweep) for a in args]) == 2
    assert f"vlmalign-report: error: {message.format(tmp=tmp_path)}" in capsys.readouterr().err


def test_unreadable_overrides_name_the_file(tmp_path):
    run = make_run(tmp_path / "s", 0, ["seed=0"])
    (run / ".hydra" / "overrides.yaml").write_text("objective: [unclosed")
    with pytest.raises(ReportError, match=r"s/0/\.hydra/overrides\.yaml: cannot be read as YAML"):
        find_runs([tmp_path / "s"])


def test_the_final_validation_joins_the_test_metrics_for_selection_on_validation(sweep, capsys):
    # csv/metrics.csv logs val/chair_i at even steps (curve value / 2): the last one is the run's final validation
    runs = {r.path.name: r for r in find_runs([sweep])}
    assert runs["0"].metrics["val/chair_i"] == pytest.approx(0.5 / 2) and runs["0"].metrics["test/chair_i"] == 0.1
    assert runs["5"].metrics["val/chair_i"] == pytest.approx(0.6 / 2)
    assert main([str(sweep), "--metrics", "val/chair_i,test/chair_i", "--sort", "val/chair_i"]) == 0
    table = capsys.readouterr().out
    assert table.index("objective=dpo") < table.index("objective=mdpo")  # 0.275 vs 0.3 mean val CHAIR_i


def test_the_mean_of_each_training_curve_joins_the_metrics(sweep):
    # online RL's claims are about the course of training (reward variance, KL): mean/<curve> over the logged steps
    runs = {r.path.name: r for r in find_runs([sweep])}
    assert runs["0"].metrics["mean/train/loss"] == pytest.approx((0.7 + 0.6 + 0.5) / 3)
    assert runs["3"].metrics["mean/train/loss"] == pytest.approx((0.9 + 0.8 + 0.7) / 3)
    assert not any(key.startswith("mean/val/") for key in runs["0"].metrics)  # validation keeps its final value
