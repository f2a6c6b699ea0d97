"""``vlmalign-claims``: rebuild docs/claims.md from the claims studies' run folders, offline.

    vlmalign-claims                                  # runs under outputs/claims, page to docs/claims.md
    vlmalign-claims --archive docs/claims_runs       # also keep each run's overrides, status and metrics there
    vlmalign-claims --runs docs/claims_runs          # rebuild the page from the archived records alone

The spec (experiments/claims/claims.yaml) says which studies make the table, which overrides pick each arm's
runs and what each claim compares; every number comes from the runs. A study that has not run yet keeps its
row, marked "not run yet", with the command that runs it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from vlmalign.errors import VlmalignError
from vlmalign.report.claims import Study, load_spec, table_runs
from vlmalign.report.claims_page import claims_page
from vlmalign.report.runs import COMPLETED, METRICS, OVERRIDES, ReportError
from vlmalign.report.status import STATUS_FILE
from vlmalign.utils.files import write_text_atomic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vlmalign-claims", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=Path("experiments/claims/claims.yaml"),
                        help="the studies and claims (default: experiments/claims/claims.yaml)")
    parser.add_argument("--runs", type=Path, default=Path("outputs/claims"),
                        help="the folder holding one sub-folder of runs per study (default: outputs/claims)")
    parser.add_argument("--out", type=Path, default=Path("docs/claims.md"), help="the page to write")
    parser.add_argument("--archive", type=Path, metavar="DIR",
                        help="also copy each counted run's overrides, status and metrics (final validation "
                             "included) under DIR/<study>/, enough to rebuild the page with --runs DIR")
    return parser.parse_args(argv)


def archive_runs(studies: dict[str, Study], runs_root: Path, archive: Path) -> int:
    """The few small files each of the table's runs needs to count the same again, under the same relative
    paths: its overrides, its status and (if it finished) its metrics with the final validation folded in."""
    runs = table_runs(studies)
    for run in runs:
        target = archive / run.path.relative_to(runs_root)
        (target / OVERRIDES).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.path / OVERRIDES, target / OVERRIDES)
        if (run.path / STATUS_FILE).exists():
            shutil.copyfile(run.path / STATUS_FILE, target / STATUS_FILE)
        if run.status == COMPLETED:
            write_text_atomic(target / METRICS, json.dumps(run.metrics, indent=1, sort_keys=True) + "\n")
    return len(runs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        intro, studies, claims, linked = load_spec(args.spec)
        if not args.runs.is_dir():
            raise ReportError(f"--runs {args.runs}: no such directory; run a study first "
                              f"(e.g. `{next(iter(studies.values())).command}`) or pass an archive folder")
        for study in studies.values():
            study.load(args.runs)
        rebuild_from = args.archive or args.runs  # what the page tells a reader to rebuild it from
        write_text_atomic(args.out, claims_page(intro, studies, claims, linked, rebuild_from))
        print(f"wrote {args.out} ({sum(s.ran for s in studies.values())} of {len(studies)} studies ran)",
              file=sys.stderr)
        if args.archive and args.archive.resolve() != args.runs.resolve():
            count = archive_runs(studies, args.runs, args.archive)
            print(f"archived {count} runs under {args.archive}", file=sys.stderr)
    except VlmalignError as error:
        print(f"vlmalign-claims: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
