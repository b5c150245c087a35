"""``lakt status``: what a results folder says about a sweep -- finished, running, failed, pending.

Read from the results folder alone (the one source of truth, whatever executor ran the
runs): ``metrics.json`` means finished; a live ``.claim`` means running (its holder and
heartbeat age: the claim file is touched every minute while the run trains); the last
event of the run in ``runs.log`` gives a failure's one-line reason; a claim left by a
process or SLURM task that died names the task whose log to read. Nothing is written.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..core.errors import require
from .cache import load_result
from .claims import Claim
from .config import KINDS, RunConfig

STATES = ("finished", "running", "failed", "pending")


def last_events(results: Path) -> dict[str, dict]:
    """key -> the last ``runs.log`` event of that run (event, time, host, pid, reason)."""
    events = {}
    try:
        lines = (Path(results) / "runs.log").read_text().splitlines()
    except FileNotFoundError:
        return events
    for line in lines:
        parts = line.split(" ", 6)
        if len(parts) >= 6:
            events[parts[4]] = {"time": parts[0], "host": parts[1], "pid": parts[2], "event": parts[3],
                                "reason": parts[6] if len(parts) > 6 else ""}
    return events


def started_configs(results: Path) -> list[RunConfig]:
    """Every run that has a folder in ``results`` (what status shows without a preset)."""
    configs = []
    for kind in KINDS:
        for path in sorted((Path(results) / kind).glob("*/config.json")):
            try:
                configs.append(RunConfig.from_dict(json.loads(path.read_text())))
            except (ValueError, TypeError, OSError):
                continue
    return configs


def run_state(config: RunConfig, results: Path, events: dict) -> tuple[str, str]:
    """(state, detail) of one run."""
    metrics = load_result(config, results)
    if metrics is not None:
        return "finished", f"test accuracy {metrics['test_acc']:.2f}% ({metrics['seconds']:.0f} s)"
    folder = config.folder(results)
    last = events.get(config.key, {})
    claim = Claim(folder)
    if claim.path.exists():
        try:
            holder = json.loads(claim.path.read_text())
            age = time.time() - claim.path.stat().st_mtime
        except (OSError, ValueError):
            holder, age = {}, 0.0
        who = f"{holder.get('host', '?')} pid {holder.get('pid', '?')}"
        if holder.get("job"):
            who += f", SLURM task {holder['job']}"
        if not claim._is_stale():
            return "running", f"{who}, heartbeat {age:.0f} s ago"
        if last.get("event") != "fail":
            logs = f"; see {Path(results) / 'logs' / holder['job']}" if holder.get("job") else ""
            return "failed", f"killed while training ({who} is gone; resumes from its last epoch){logs}"
    if last.get("event") == "fail":
        return "failed", last["reason"] or "see runs.log"
    if last.get("event") == "requeue":
        return "pending", f"requeued after a time limit or preemption ({last['time']}); resumes from its last epoch"
    if (folder / "progress.pt").exists():
        return "pending", "stopped part-way; resumes from its last epoch"
    return "pending", ""


def status(results: Path, configs: list[RunConfig] | None = None):
    """A DataFrame, one row per run (``configs``, or every run with a folder): state, name, key, detail."""
    import pandas as pd

    results = Path(results)
    require(results.is_dir(), f"results folder {str(results)!r} "
            + ("is a file, not a folder" if results.exists() else "does not exist") + "; pass the --results of your sweep")
    events = last_events(results)
    rows = []
    for config in configs if configs is not None else started_configs(results):
        state, detail = run_state(config, results, events)
        rows.append({"state": state, "name": config.name, "key": config.key, "detail": detail})
    return pd.DataFrame(rows, columns=["state", "name", "key", "detail"])


def render(table) -> str:
    """Counts per state, then the runs that are not finished (running first)."""
    counts = ", ".join(f"{(table['state'] == s).sum()} {s}" for s in STATES)
    rest = table[table["state"] != "finished"].copy()
    rest["order"] = rest["state"].map({s: i for i, s in enumerate(STATES)})
    rest = rest.sort_values("order", kind="stable").drop(columns="order")
    lines = [f"{len(table)} runs: {counts}"]
    if len(rest):
        lines.append(rest.to_string(index=False, max_colwidth=120))
    return "\n".join(lines)
