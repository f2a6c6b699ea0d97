"""``vlmalign-report``: paper-style tables and charts from the run directories of Hydra multiruns.

- ``status``: the ``status.json`` each run records (running / completed / failed, wall time, error);
- ``callback``: the Hydra callback that writes it and gives a sweep member's failure a clear message;
- ``runs``: finds run directories and reads their saved overrides, config, status and ``metrics.json``;
- ``table``: groups runs by the overrides that vary and aggregates mean ± std over seeds (markdown, CSV);
- ``charts``: PNG bar charts with error bars and training curves from the CSV logs;
- ``cli``: the ``vlmalign-report PATH...`` entry point.
"""

from vlmalign.report.runs import ReportError, Run, find_runs
from vlmalign.report.table import Table, build_table

__all__ = ["ReportError", "Run", "Table", "build_table", "find_runs"]
