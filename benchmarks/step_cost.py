"""What Jacobian matching costs: time, throughput and peak memory of one training step.

    python benchmarks/step_cost.py --out step_cost.csv            # full matrix (long on a CPU)
    python benchmarks/step_cost.py --out step_cost.csv --quick    # every method at width 1/4, < 3 min on 2 cores

For each trained network (VGG-4 student or VGG-9, both with a VGG-9 teacher of the
same width), width, batch size and method, one training step -- objective, backward
(double backward for the Jacobian terms) and Adam update, exactly as lakt.train.fit
does it -- is timed on synthetic images already on the device; the median of
``--steps`` steps after ``--warmup`` is reported, with the ratio to plain CE in the
same run. Distillation methods are measured with the teacher's targets cached
(computed once per image, lakt's default when inputs are not perturbed) and live
(teacher forward + backward every step). Each measurement runs in its own process
so its peak memory (CUDA: max allocated; CPU: growth of the peak resident set
during the steps) is its own.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

METHODS = ["ce", "act+ce", "jac+ce", "act+jac+ce", "act", "act+jac", "noisy-act", "act+fulljac", "ce+jacnorm"]
UNCACHEABLE = {"noisy-act", "act+fulljac"}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def measure(spec: dict) -> dict:
    """Time one (model, width, batch, method, teacher mode) in this process."""
    import torch

    from lakt import models
    from lakt.methods import Objective, TeacherCache, get_method
    from lakt.train import train_step

    torch.manual_seed(0)
    device = torch.device(spec["device"])
    student = models.build(spec["model"], 10, width=spec["width"]).to(device)
    method = get_method(spec["method"])
    teacher = models.vgg9(10, width=spec["width"]).to(device) if method.needs_teacher else None
    pool = 4 * spec["batch"]
    x_all = torch.randn(pool, 3, 32, 32, device=device)
    y_all = torch.randint(0, 10, (pool,), device=device)
    objective = Objective(method, teacher, jacobian_form="normalized")
    if spec["teacher"] == "cached":
        objective.cache = TeacherCache.build(objective.teacher, x_all, y_all, "label")
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    student.train()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = _rss_mb()
    times = []
    generator = torch.Generator(device=device).manual_seed(0)
    for i in range(spec["warmup"] + spec["steps"]):
        positions = torch.randint(0, pool, (spec["batch"],), device=device, generator=generator)
        sync()
        began = time.perf_counter()
        train_step(student, objective, optimizer, positions, x_all[positions], y_all[positions])
        sync()
        if i >= spec["warmup"]:
            times.append(time.perf_counter() - began)
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20
        name = torch.cuda.get_device_name(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
        name = f"cpu x{torch.get_num_threads()} threads"
    ms = 1000 * statistics.median(times)
    return {**{k: spec[k] for k in ("method", "model", "width", "batch", "teacher")}, "device": name,
            "ms_per_step": ms, "images_per_s": spec["batch"] / ms * 1000, "peak_mem_mb": max(peak, 0.0),
            "steps": spec["steps"]}


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
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 10; quick 10)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
        return
    import pandas as pd
    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.steps = args.steps or 10
    rows = []
    specs = plan(args)
    began = time.perf_counter()
    for i, spec in enumerate(specs, 1):
        out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                             text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"[{i}/{len(specs)}] {r['model']} w{r['width']:g} b{r['batch']} {r['method']:12s} "
              f"{r['teacher']:6s} {r['ms_per_step']:8.1f} ms  {r['peak_mem_mb']:7.0f} MB", flush=True)
    table = pd.DataFrame(rows)
    keys = ["model", "width", "batch", "device"]
    ce = table[table.method == "ce"].set_index(keys)["ms_per_step"]
    ce_mem = table[table.method == "ce"].set_index(keys)["peak_mem_mb"]
    idx = pd.MultiIndex.from_frame(table[keys])
    table["ratio_to_ce"] = table["ms_per_step"].to_numpy() / ce.reindex(idx).to_numpy()
    table["mem_ratio_to_ce"] = table["peak_mem_mb"].to_numpy() / ce_mem.reindex(idx).to_numpy()
    table = table[["method", "teacher", "model", "width", "batch", "device", "ms_per_step", "images_per_s",
                   "ratio_to_ce", "peak_mem_mb", "mem_ratio_to_ce", "steps"]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.4g")
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"\n{len(table)} measurements in {time.perf_counter() - began:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
