"""What Jacobian matching costs: time, throughput and peak memory of one training step.

    python benchmarks/step_cost.py --out step_cost.csv            # full matrix (long on a CPU)
    python benchmarks/step_cost.py --out step_cost.csv --quick    # every method at width 1/4, < 3 min on 2 cores
    python benchmarks/step_cost.py --quick --before /tmp/old      # the same, for this code and a checkout of
                                                                  # an earlier commit, group by group in one run

For each trained network (VGG-4 student or VGG-9, both with a VGG-9 teacher of the
same width), width, batch size and method, one training step -- objective, backward
(double backward for the Jacobian terms) and Adam update, exactly as lakt.core.train.fit
does it -- is timed on synthetic images already on the device. All methods of one
(network, width, batch) are timed in one process, interleaved step by step, and the
median of ``--steps`` rounds after ``--warmup`` is reported with the ratio to plain
CE from the same rounds. Distillation methods are measured with the teacher's targets cached
(computed once per image, lakt's default when inputs are not perturbed) and live
(teacher forward + backward every step). Memory is measured in a process of its own
per method, so its peak is its own: on CUDA the maximum allocated; on the CPU the peak
resident set while a few steps run, sampled every 0.2 ms, minus the process's size
before any model was built. For the CPU figure a second process is started in which
glibc returns freed blocks at once (so the resident set follows live memory); that
slows allocation, so it is never the process that is timed. Both include model,
optimiser, teacher and cached targets, i.e. everything the method needs.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

# "name@f": the method with a share f of each batch moved for the finite-difference term
# (lakt's default is 1/4; 1/8 shows what the fraction buys: the target is <= 1.3x CE)
METHODS = ["ce", "act+ce", "jac+ce", "act+jac+ce", "act", "act+jac", "noisy-act", "act+fulljac", "ce+jacnorm",
           "act+fdjac+ce", "act+fdjac+ce@0.125"]
UNCACHEABLE = {"noisy-act", "act+fulljac"}
# Speed trick, CPU: glibc's default lets a process mmap and unmap every large tensor each
# step until its heuristics settle, which made a plain CE step up to 50% slower than a
# step that had first built a teacher cache. Fixed thresholds keep freed blocks for
# reuse, so every method is timed with the same warm allocator (tasks.py uses them too).
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2 ** 20), "MALLOC_TRIM_THRESHOLD_": str(128 * 2 ** 20)}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def setup(spec: dict, with_objective: bool = False):
    """Build one (model, width, batch, method, teacher mode[, precision]) and return its training step.

    ``with_objective``: also return (student, objective, x, y, positions) of one fixed
    batch, so that the loss of the same batch can be compared across precisions.
    """
    import torch

    from lakt.core import models
    from lakt.core.methods import get_method
    from lakt.core.objective import Objective, TeacherCache
    from lakt.core.train import train_step

    torch.manual_seed(0)
    device = torch.device(spec["device"])
    student = models.build(spec["model"], 10, width=spec["width"]).to(device)
    name, _, fraction = spec["method"].partition("@")
    method = get_method(name, fd_fraction=float(fraction) if fraction else None)
    teacher = models.vgg9(10, width=spec["width"]).to(device) if method.needs_teacher else None
    pool = 4 * spec["batch"]
    x_all = torch.randn(pool, 3, 32, 32, device=device)
    y_all = torch.randint(0, 10, (pool,), device=device)
    form = "plain" if "fdjac" in name else "normalized"  # the finite-difference estimator's only form
    objective = Objective(method, teacher, jacobian_form=form, precision=spec.get("precision", "fp32"))
    if spec["teacher"] == "cached":
        objective.cache = TeacherCache.build(objective.teacher, x_all, y_all, "label")
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    student.train()
    generator = torch.Generator(device=device).manual_seed(0)

    def step():
        positions = torch.randint(0, pool, (spec["batch"],), device=device, generator=generator)
        train_step(student, objective, optimizer, positions, x_all[positions], y_all[positions])

    if with_objective:
        first = torch.arange(spec["batch"], device=device)
        return step, (student, objective, x_all[first], y_all[first], first)
    return step


def time_group(specs: list[dict]) -> list[dict]:
    """Time several methods of one (model, width, batch) in one process, interleaved.

    Round r runs one step of every method in turn, so drifts of the machine (clock,
    other load) hit all methods alike; the median over rounds is reported.
    """
    import torch

    device = torch.device(specs[0]["device"])
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    steps = [setup(spec) for spec in specs]
    times = [[] for _ in specs]
    for r in range(specs[0]["warmup"] + specs[0]["steps"]):
        for i, step in enumerate(steps):
            sync()
            began = time.perf_counter()
            step()
            sync()
            if r >= specs[0]["warmup"]:
                times[i].append(time.perf_counter() - began)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    # the one validation layer (lakt.core.checks), once per step: its own cost, measured alone
    _, (student, objective, x, y, _) = setup(specs[0], with_objective=True)
    from lakt.core.checks import check_inputs
    checked = []
    for _ in range(200):
        sync()
        began = time.perf_counter()
        check_inputs(student, objective.teacher, x, y)
        sync()
        checked.append(time.perf_counter() - began)
    rows = []
    for spec, t in zip(specs, times):
        ms = 1000 * statistics.median(t)
        rows.append({**{k: spec[k] for k in ("method", "model", "width", "batch", "teacher")}, "device": name,
                     "ms_per_step": ms, "images_per_s": spec["batch"] / ms * 1000, "steps": spec["steps"],
                     "validation_ms": 1000 * statistics.median(checked)})
    return rows


def peak_memory(spec: dict) -> float:
    """MB the method needs: model, optimiser, teacher, cached targets and one step's working set."""
    import torch

    device = torch.device(spec["device"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        step = setup(spec)
        step(), step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    base = _rss_mb()
    return _cpu_peak(setup(spec), base)


def _cpu_peak(step, base: float) -> float:
    """Peak resident set (MB above ``base``) over a warm-up step and three sampled steps."""
    step()
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            samples.append(_rss_mb())
            time.sleep(0.0002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    for _ in range(3):
        step()
    done.set()
    sampler.join()
    return max(samples) - base


def summarise(rows: list[dict]):
    """The CSV table: one row per measurement, with ratios to CE of the same group."""
    import pandas as pd

    table = pd.DataFrame(rows)
    if "code" not in table:
        table["code"] = "this"
    keys = ["code", "model", "width", "batch", "device"]
    ce = table[table.method == "ce"].set_index(keys)
    idx = pd.MultiIndex.from_frame(table[keys])
    table["ratio_to_ce"] = table["ms_per_step"].to_numpy() / ce["ms_per_step"].reindex(idx).to_numpy()
    table["mem_ratio_to_ce"] = table["peak_mem_mb"].to_numpy() / ce["peak_mem_mb"].reindex(idx).to_numpy()
    table["validation_share_of_ce"] = table["validation_ms"].to_numpy() / ce["ms_per_step"].reindex(idx).to_numpy()
    return table[["code", "method", "teacher", "model", "width", "batch", "device", "ms_per_step", "images_per_s",
                  "ratio_to_ce", "peak_mem_mb", "mem_ratio_to_ce", "validation_share_of_ce", "steps"]]


def profile_step(spec: dict, steps: int = 5) -> list[dict]:
    """Where one method's step spends its time: the top operators by self time (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    step = setup(spec)
    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    # BatchNorm's backward work: the two-way Function's (lakt.core.jacobian), or a native double backward
    bn = sum(e.cpu_time_total for e in events if e.key in ("NativeBatchNormBackwardBackward0", "_BatchNorm2WayBackward"))
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:4]
    from lakt.core.objective import TEACHER_AT_MOVED
    teacher = sum(e.cpu_time_total for e in events if e.key == TEACHER_AT_MOVED)
    extra = [{"op": "teacher forward at x + h v (finite differences, inclusive)", "share": teacher / total}] if teacher else []
    return (extra + [{"op": "BatchNorm backward (one-pass Function or native double backward, inclusive)", "share": bn / total}]
            + [{"op": e.key, "share": e.self_cpu_time_total / total} for e in top])


def explain_misses(table, device: str) -> None:
    """For every setting whose target is missed, print the measured reason (a profile)."""
    from lakt.analysis.cost import targets

    checks = targets(table)
    print("\ntargets:")
    for row in checks.itertuples():
        print(f"  {row.model} x{row.width:g} b{row.batch}: {row.target}: {row.measured:.2f} "
              f"{'met' if row.met else 'NOT met'}")
    missed = checks[~checks["met"] & checks["method"].notna()]
    for row in missed.itertuples():
        spec = {"model": row.model, "width": row.width, "batch": int(row.batch), "method": row.method,
                "teacher": row.mode, "device": device, "steps": 0, "warmup": 0}
        shares = _worker({"task": "profile", "spec": spec}, dict(os.environ, **STEADY_MALLOC))
        print(f"  why {row.method} at {row.model} x{row.width:g} b{row.batch} misses: "
              + "; ".join(f"{s['op']} {100 * s['share']:.0f}%" for s in shares))


def _worker(job: dict, env=None):
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True,
                         text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def plan(args) -> list[dict]:
    if args.quick:
        models_, widths, batches = ["vgg4"], [0.25], [64]
    else:
        models_, widths, batches = ["vgg4", "vgg9"], [1.0, 0.25], [64, 128]
    specs = []
    for model, width, batch, method in itertools.product(models_, widths, batches, METHODS):
        needs_teacher = method not in ("ce", "ce+jacnorm")
        modes = ["none"] if not needs_teacher else (["live"] if method in UNCACHEABLE else ["cached", "live"])
        for mode in modes:
            specs.append({"model": model, "width": width, "batch": batch, "method": method, "teacher": mode,
                          "device": args.device, "steps": args.steps, "warmup": args.warmup})
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("step_cost.csv"), help="CSV file to write")
    parser.add_argument("--quick", action="store_true", help="VGG-4, width 1/4, batch 64 only")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps; the median is reported")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--explain", type=Path, metavar="CSV",
                        help="only check the targets of an existing CSV and profile the settings that miss them")
    parser.add_argument("--before", type=Path, metavar="DIR",
                        help="also time a checkout of an earlier commit (e.g. git worktree add DIR REV), "
                             "alternating with this code group by group; the table's 'code' column says which")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        tasks = {"time": lambda: time_group(job["specs"]), "memory": lambda: peak_memory(job["spec"]),
                 "profile": lambda: profile_step(job["spec"])}
        result = tasks[job["task"]]()
        print(json.dumps(result))
        return
    import pandas as pd
    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.explain:
        explain_misses(pd.read_csv(args.explain), args.device)
        return
    rows = []
    specs = plan(args)
    began = time.perf_counter()
    groups = {}
    for spec in specs:
        groups.setdefault((spec["model"], spec["width"], spec["batch"]), []).append(spec)
    mem_env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    # cheap groups first, then the full-width batch-128 ones the paper projection needs
    order = sorted(groups, key=lambda k: (k[1] == 1.0, k[1] == 1.0 and k[2] == 64, k[0] == "vgg9"))
    for (model, width, batch) in order:
        group = groups[(model, width, batch)]
        codes = [("this", None)] if args.before is None else [("before", args.before), ("after", None)]
        for code, path in codes:
            env = dict(os.environ, **STEADY_MALLOC, **({"PYTHONPATH": str(path.resolve())} if path else {}))
            timed = _worker({"task": "time", "specs": group}, env)
            for spec, row in zip(group, timed):
                row["code"] = code
                row["peak_mem_mb"] = float("nan") if path else _worker(
                    {"task": "memory", "spec": spec}, mem_env if args.device == "cpu" else None)
                rows.append(row)
                print(f"{code:6s} {model} w{width:g} b{batch} {row['method']:12s} {row['teacher']:6s} "
                      f"{row['ms_per_step']:8.1f} ms  {row['peak_mem_mb']:7.0f} MB", flush=True)
        table = summarise(rows)  # written after every group: a cut-short run still leaves its rows
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False, float_format="%.4g")
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    explain_misses(table[table["code"] != "before"], args.device)
    print(f"\n{len(table)} measurements in {time.perf_counter() - began:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
