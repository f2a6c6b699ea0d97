"""The JSON lines of ``benchmarks/gpu_suite.sh``: one for the machine, one per member whatever became of it.

Standard library only, and torch imported only by ``machine`` (inside a try), so a line still comes out where the
members cannot run at all (torch missing, no GPU, a member killed by its timeout).

    python -m benchmarks.suite_lines machine [--dry-run]          # the preflight line; exit 1 if the GPU is missing
    python -m benchmarks.suite_lines record --member dpo --rc 0 --stdout F --stderr F --wall-s 41.2 --timeout-s 90
                                                        # exit 1 when the member failed (the line says why)
    python -m benchmarks.suite_lines skip --member trl_dpo --reason "..."
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

# What the members import beyond torch (distribution names), so the preflight line names what a machine lacks; the
# lent GPU machines' image has torch, transformers, lightning and peft but none of the others (docs/distributed.md).
PACKAGES = ("transformers", "pytorch-lightning", "peft", "deepspeed", "hjson", "pydantic", "hydra-core", "omegaconf",
            "antlr4-python3-runtime", "trl", "datasets", "dill", "multiprocess")
TIMEOUT_CODES = (124, 137)  # timeout(1): TERM sent (124), or KILL after the grace period (128 + 9)
STDERR_TAIL_LINES = 25


def machine(dry_run: bool) -> tuple[dict, bool]:
    """The preflight line and whether the suite can go on (a GPU run needs a CUDA device)."""
    line = {"suite": "gpu_suite", "member": "preflight", "dry_run": dry_run, "python": platform.python_version(),
            "executable": sys.executable}
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    line["packages"] = packages
    line["missing"] = [name for name, version in packages.items() if version is None]
    try:
        import torch
    except ImportError as error:
        return {**line, "error": f"torch does not import: {error}"}, False
    cuda = torch.cuda.is_available()
    line.update(torch=torch.__version__, cuda=torch.version.cuda, gpus=torch.cuda.device_count(),
                device=torch.cuda.get_device_name() if cuda else "cpu")
    if not cuda and not dry_run:
        line["error"] = (f"torch {torch.__version__} at {sys.executable} sees no CUDA device; on a GPU machine set "
                         "PYTHON to an interpreter with CUDA torch, or run `bash benchmarks/gpu_suite.sh --dry-run` "
                         "for the CPU path")
        return line, False
    return line, True


def machine_fields(path: str | None) -> dict:
    """The preflight line's machine description, repeated on error and skip lines (they have no other)."""
    if not path or not Path(path).is_file():
        return {}
    line = json.loads(Path(path).read_text())
    return {key: line[key] for key in ("python", "torch", "cuda", "device", "gpus") if key in line}


def last_json_line(text: str) -> dict | None:
    """The member's result: its last stdout line, if that is a JSON object (chatter may come before it)."""
    for raw in reversed(text.strip().splitlines()):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    return None


def record(member: str, rc: int, stdout: str, stderr: str, wall_s: float, timeout_s: float, dry_run: bool,
           machine_file: str | None) -> dict:
    """The member's line: its own JSON on success, else what went wrong with the end of its stderr."""
    head = {"suite": "gpu_suite", "member": member, "dry_run": dry_run, "wall_s": round(wall_s, 2)}
    result = last_json_line(stdout) if rc == 0 else None
    if result is not None:
        return {**head, **result}
    if rc in TIMEOUT_CODES:
        error = f"timed out after {timeout_s:g} s (the member's budget in benchmarks/gpu_suite.sh)"
    elif rc:
        error = f"exited with code {rc}"
    else:
        error = "exited 0 but its last stdout line is not a JSON object"
    tail = stderr.strip().splitlines()[-STDERR_TAIL_LINES:]
    return {**head, "error": error, "stderr_tail": tail, **machine_fields(machine_file)}


def read_if_any(path: str) -> str:
    """A member killed early may not have written its output file."""
    return Path(path).read_text(errors="replace") if Path(path).is_file() else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    probe = commands.add_parser("machine", help="the preflight line")
    probe.add_argument("--dry-run", action="store_true")
    done = commands.add_parser("record", help="a member's line from its exit code and output files")
    skipped = commands.add_parser("skip", help="a line for a member that was not run")
    for sub in (done, skipped):
        sub.add_argument("--member", required=True)
        sub.add_argument("--machine-file", help="the preflight line, for its machine description")
        sub.add_argument("--dry-run", action="store_true")
    done.add_argument("--rc", type=int, required=True)
    done.add_argument("--stdout", required=True)
    done.add_argument("--stderr", required=True)
    done.add_argument("--wall-s", type=float, required=True)
    done.add_argument("--timeout-s", type=float, required=True)
    skipped.add_argument("--reason", required=True)
    args = parser.parse_args(argv)

    ok = True
    if args.command == "machine":
        line, ok = machine(args.dry_run)
    elif args.command == "record":
        line = record(args.member, args.rc, read_if_any(args.stdout), read_if_any(args.stderr), args.wall_s,
                      args.timeout_s, args.dry_run, args.machine_file)
        ok = "error" not in line
    else:
        line = {"suite": "gpu_suite", "member": args.member, "dry_run": args.dry_run, "skipped": args.reason,
                **machine_fields(args.machine_file)}
    print(json.dumps(line), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
