"""Several sweep processes on one device: ``lakt sweep --parallel N``.

Low-data students are small: one of them leaves most of a GPU idle (a 5-per-class
student's epoch is one batch). Issue 13's paper-scale command therefore runs N
``lakt sweep --shard i/N`` processes at once on the same results folder; the run cache's
claims keep them from running a config twice. The teachers are trained first, in this
process, so the N shards do not all wait on (or race for) the same teacher claim.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..core.errors import require
from .cache import sweep


def shard_command(argv: list[str], i: int, n: int) -> list[str]:
    """This process's ``lakt sweep`` arguments with ``--parallel`` dropped and ``--shard i/n`` added."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--parallel", "--shard"):
            skip = True
            continue
        if arg.startswith(("--parallel=", "--shard=")):
            continue
        out.append(arg)
    return [sys.executable, "-m", "lakt.runs.cli", *out, "--shard", f"{i}/{n}"]


def parallel_sweep(configs, results: Path, processes: int, argv: list[str], **options) -> int:
    """Teachers here, then ``processes`` shard processes over every config; the number of shards that failed."""
    require(processes >= 1, f"--parallel must be >= 1, got {processes}")
    teachers = [c for c in configs if c.kind == "teacher"]
    sweep(teachers, results, **options)
    print(f"lakt: teachers done; starting {processes} sweep processes", flush=True)
    children = [subprocess.Popen(shard_command(argv, i, processes)) for i in range(1, processes + 1)]
    return sum(child.wait() != 0 for child in children)
