"""What the paper's protocol costs, projected from measured step costs.

``benchmarks/step_cost.py`` measures milliseconds per training step for every
method; :func:`paper_workload` counts the image-steps the paper's protocol needs
(Tables 1-3, one seed, 500 epochs each, Section 5 and the supplementary); and
:func:`project_hours` multiplies the two. Only measured throughput goes in: a CPU
measurement projects CPU hours, a GPU measurement GPU hours. Evaluation passes are
left out (a few forward passes per run, well under 1% of the training work).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.errors import require
from ..core.methods import PAPER_METHODS
from .paper import TABLE3_PENALTIES, table1, table2

EPOCHS = 500
TRAIN_IMAGES = 50_000  # CIFAR-10 and CIFAR-100 training sets


def paper_workload() -> pd.DataFrame:
    """One row per group of runs: phase, trained model, method, runs, image-steps."""
    rows = [{"phase": f"teacher {d}", "model": "vgg9", "method": "ce", "runs": 1,
             "image_steps": EPOCHS * TRAIN_IMAGES} for d in ("CIFAR-10", "CIFAR-100")]
    for name, table, classes in (("Table 1 students", table1(), 10), ("Table 2 students", table2(), 100)):
        images = sum(int(n) * classes for n in table.columns)
        for method in PAPER_METHODS:
            rows.append({"phase": name, "model": "vgg4", "method": method, "runs": len(table.columns),
                         "image_steps": EPOCHS * images})
    for penalty in TABLE3_PENALTIES:
        rows.append({"phase": "Table 3 robustness", "model": "vgg9", "method": "ce" if penalty == 0 else "ce+jacnorm",
                     "runs": 1, "image_steps": EPOCHS * TRAIN_IMAGES})
    return pd.DataFrame(rows)


def load_step_cost(path) -> pd.DataFrame:
    """The CSV written by ``benchmarks/step_cost.py``."""
    path = Path(path)
    require(path.is_file(), f"no step-cost file at {str(path)!r}; run python benchmarks/step_cost.py --out {path}")
    return pd.read_csv(path)


def project_hours(workload: pd.DataFrame, step_cost: pd.DataFrame, width: float = 1.0, batch: int = 128,
                  teacher: str = "cached") -> pd.DataFrame:
    """Hours per workload row at the measured images/s of the same model, width, batch and method.

    Distillation methods use the ``teacher`` mode measured ("cached": targets computed
    once per image, lakt's default for un-augmented inputs).
    """
    cost = step_cost[(step_cost["width"] == width) & (step_cost["batch"] == batch)]
    require(len(cost) > 0, f"the step-cost file has no rows at width {width}, batch {batch}; "
                           "run the full benchmark (without --quick)")
    cost = cost[cost["teacher"].isin([teacher, "none"])]
    rate = cost.set_index(["model", "method"])["images_per_s"]
    device = cost["device"].iloc[0]
    out = workload.copy()
    out["images_per_s"] = [rate.get((m, meth), float("nan")) for m, meth in zip(out["model"], out["method"])]
    out["hours"] = out["image_steps"] / out["images_per_s"] / 3600
    out["device"] = device
    return out


TARGETS = (  # (what, model, method, teacher mode, column, limit): issue "Performance", checked on every row
    ("Act+Jac+CE step vs CE", "act+jac+ce", "cached", "ratio_to_ce", 2.5),
    ("Act step vs CE (cached teacher)", "act", "cached", "ratio_to_ce", 1.1),
)
MEMORY_LIMIT = 3.0


def targets(step_cost: pd.DataFrame) -> pd.DataFrame:
    """For every measured (model, width, batch): is each speed target and the memory bound met?"""
    rows = []
    for (model, width, batch), group in step_cost.groupby(["model", "width", "batch"]):
        for what, method, mode, column, limit in TARGETS:
            hit = group[(group["method"] == method) & (group["teacher"] == mode)]
            if len(hit):
                value = float(hit[column].iloc[0])
                rows.append({"model": model, "width": width, "batch": batch, "target": f"{what} <= {limit}x",
                             "measured": value, "met": value <= limit})
        worst = group.loc[group["mem_ratio_to_ce"].idxmax()]
        rows.append({"model": model, "width": width, "batch": batch,
                     "target": f"peak memory <= {MEMORY_LIMIT}x CE (worst: {worst['method']}, {worst['teacher']})",
                     "measured": float(worst["mem_ratio_to_ce"]), "met": bool(worst["mem_ratio_to_ce"] <= MEMORY_LIMIT)})
    return pd.DataFrame(rows)


def scaled_to_faster_device(hours: float, speedups=(30, 100, 300)) -> pd.DataFrame:
    """Hours on a device ``s`` times faster than the one measured: a scenario, not a measurement.

    Used only when no GPU measurement exists; replace it by running the benchmark on the GPU.
    """
    return pd.DataFrame({"assumed speed-up over the measured device": list(speedups),
                         "projected hours": [hours / s for s in speedups]})
