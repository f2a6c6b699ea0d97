"""Peak memory of this process, one definition for every benchmark."""

from __future__ import annotations

import resource


def peak_rss_mib() -> float:
    """This process's peak RSS. On Linux the kernel's high-water mark of this process's own memory (``VmHWM``), not
    ``ru_maxrss``: a process started by ``subprocess`` begins with its parent's peak as its ``ru_maxrss`` (the
    kernel carries it over at exec), so a child of a parent that built a model would report the parent's peak as
    its own baseline and understate its growth."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024  # KiB
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
