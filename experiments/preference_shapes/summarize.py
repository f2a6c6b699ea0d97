"""Kept so the commands in older notes still work: the table is ``vlmalign-report`` now (vlmalign/report/).

    python experiments/preference_shapes/summarize.py outputs/preference_study/multiruns/<time> [--base <base dir>]
is the same as
    vlmalign-report outputs/preference_study/multiruns/<time> [--base <base dir>]
"""

import sys

from vlmalign.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
