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
BATCH = 128  # the paper preset's batch size (lakt.runs.presets)


def paper_workload(batch: int = BATCH) -> pd.DataFrame:
    """One row per group of runs: phase, trained model, method, runs, image-steps, optimiser steps.

    ``steps`` counts optimiser steps at ``batch`` (a 5-per-class CIFAR-10 subset is one
    50-image step per epoch), which prices small runs on a device whose step time barely
    shrinks with the batch (a GPU); ``image_steps`` prices them by images.
    """
    from ..core.train import steps_per_epoch

    rows = [{"phase": f"teacher {d}", "model": "vgg9", "method": "ce", "runs": 1, "image_steps": EPOCHS * TRAIN_IMAGES,
             "steps": EPOCHS * steps_per_epoch(TRAIN_IMAGES, batch)} for d in ("CIFAR-10", "CIFAR-100")]
    for name, table, classes in (("Table 1 students", table1(), 10), ("Table 2 students", table2(), 100)):
        images = sum(int(n) * classes for n in table.columns)
        steps = sum(steps_per_epoch(int(n) * classes, batch) for n in table.columns)
        for method in PAPER_METHODS:
            rows.append({"phase": name, "model": "vgg4", "method": method, "runs": len(table.columns),
                         "image_steps": EPOCHS * images, "steps": EPOCHS * steps})
    for penalty in TABLE3_PENALTIES:
        rows.append({"phase": "Table 3 robustness", "model": "vgg9", "method": "ce" if penalty == 0 else "ce+jacnorm",
                     "runs": 1, "image_steps": EPOCHS * TRAIN_IMAGES,
                     "steps": EPOCHS * steps_per_epoch(TRAIN_IMAGES, batch)})
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


def concurrency_speedup(concurrency: pd.DataFrame, model: str, width: float, runs: int) -> tuple[int, float]:
    """(k, summed images/s at k / images/s at k = 1): the best measured k not above ``runs``.

    (1, 1.0) when the model was not measured concurrently -- no gain is assumed.
    """
    if concurrency is None or len(concurrency) == 0:
        return 1, 1.0
    rows = concurrency[(concurrency["model"] == model) & (concurrency["width"] == width)]
    single = rows[rows["k"] == 1]
    rows = rows[rows["k"] <= max(1, runs)]
    if len(single) == 0 or len(rows) == 0:
        return 1, 1.0
    best = rows.loc[rows["images_per_s"].idxmax()]
    return int(best["k"]), float(best["images_per_s"] / single["images_per_s"].iloc[0])


def project_concurrent_hours(workload: pd.DataFrame, step_cost: pd.DataFrame, concurrency: pd.DataFrame | None = None,
                             teacher_throughput: pd.DataFrame | None = None, *, precision: str = "bf16",
                             width: float = 1.0, batch: int = BATCH, teacher: str = "cached") -> pd.DataFrame:
    """Device hours of the paper protocol from measured throughput, concurrent runs included.

    ``step_cost`` is ``benchmarks/gpu_figures.py``'s step_cost.csv (or step_cost.py's, which
    has no ``precision`` column and is taken as fp32); ``concurrency`` its concurrency.csv:
    the summed images/s of k runs of one student method sharing the device. Per workload
    row, the run rate is the single-run rate of that (model, method) times the concurrency
    speed-up measured for the model (:func:`concurrency_speedup`, k at most the phase's
    run count) -- an assumption: the gain measured on one method (Act+Jac+CE) is taken to
    hold for the others. Teacher rows use ``teacher_throughput`` (VGG-9 with augmentation)
    when given. Two bounds per row (column ``bound``): ``images`` -- time proportional to
    images, a lower bound; ``steps`` -- every step costs a full ``batch``-image step, an
    upper bound for the small subsets whose steps have fewer images.
    """
    cost = step_cost[(step_cost["width"] == width) & (step_cost["batch"] == batch)]
    if "precision" in cost:
        cost = cost[cost["precision"] == precision]
    require(len(cost) > 0, f"the step-cost file has no rows at width {width}, batch {batch}, precision {precision}; "
                           "run python benchmarks/gpu_figures.py without --tiny")
    cost = cost[cost["teacher"].isin([teacher, "none"])]
    rate = cost.set_index(["model", "method"])["images_per_s"]
    teacher_rate = None
    if teacher_throughput is not None and len(teacher_throughput):
        hit = teacher_throughput[(teacher_throughput["width"] == width) & teacher_throughput["augmented"].astype(bool)]
        teacher_rate = float(hit["images_per_s"].iloc[0]) if len(hit) else None
    phase_runs = workload.groupby("phase")["runs"].sum()
    rows = []
    for r in workload.itertuples(index=False):
        single = rate.get((r.model, r.method), float("nan"))
        if r.phase.startswith("teacher") and teacher_rate is not None:
            single = teacher_rate
        k, speedup = concurrency_speedup(concurrency, r.model, width, int(phase_runs[r.phase]))
        for bound, work in (("images", r.image_steps), ("steps", r.steps * batch)):
            rows.append({**r._asdict(), "images_per_s": single, "k": k, "speedup": speedup, "bound": bound,
                         "hours": work / (single * speedup) / 3600, "device": cost["device"].iloc[0],
                         "precision": precision, "width": width, "batch": batch})
    return pd.DataFrame(rows)


TARGETS = (  # (what, method, teacher mode, column, limit), checked on every (model, width, batch)
    # exact per-sample Jacobian matching (<= 2.0x)
    ("Act+Jac+CE step vs CE", "act+jac+ce", "cached", "ratio_to_ce", 2.0),
    ("Jac+CE step vs CE", "jac+ce", "cached", "ratio_to_ce", 2.0),
    ("Act step vs CE (cached teacher)", "act", "cached", "ratio_to_ce", 1.1),
    ("Act+FDJac+CE step vs CE (cached teacher)", "act+fdjac+ce", "cached", "ratio_to_ce", 1.3),
    ("the same, 1/8 of the batch moved", "act+fdjac+ce@0.125", "cached", "ratio_to_ce", 1.3),
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
                             "measured": value, "met": value <= limit, "method": method, "mode": mode})
        worst = group.loc[group["mem_ratio_to_ce"].idxmax()]
        rows.append({"model": model, "width": width, "batch": batch,
                     "target": f"peak memory <= {MEMORY_LIMIT}x CE (worst: {worst['method']}, {worst['teacher']})",
                     "measured": float(worst["mem_ratio_to_ce"]), "met": bool(worst["mem_ratio_to_ce"] <= MEMORY_LIMIT),
                     "method": None, "mode": None})
    return pd.DataFrame(rows)


def scaled_to_faster_device(hours: float, speedups=(30, 100, 300)) -> pd.DataFrame:
    """Hours on a device ``s`` times faster than the one measured: a scenario, not a measurement.

    Used only when no GPU measurement exists; replace it by running the benchmark on the GPU.
    """
    return pd.DataFrame({"assumed speed-up over the measured device": list(speedups),
                         "projected hours": [hours / s for s in speedups]})


GPU_FILES = ("step_cost", "bf16_agreement", "concurrency", "teacher_throughput", "projection")


def load_gpu_figures(folder) -> dict:
    """The CSVs and meta.json written by ``benchmarks/gpu_figures.py --out FOLDER`` (chapter 6's GPU tables).

    Returns {"step_cost", "bf16_agreement", "concurrency", "teacher_throughput",
    "projection": DataFrame (empty when that part was skipped), "meta": dict}.
    """
    import json

    folder = Path(folder)
    require((folder / "meta.json").is_file(),
            f"no GPU figures in {str(folder)!r}; run python benchmarks/gpu_figures.py --out {folder} on a GPU")
    out = {"meta": json.loads((folder / "meta.json").read_text())}
    for name in GPU_FILES:
        path = folder / f"{name}.csv"
        out[name] = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    return out


def protocol_hours(projection: pd.DataFrame) -> pd.DataFrame:
    """Hours per phase of the paper protocol, both bounds side by side (rows of project_concurrent_hours)."""
    return projection.pivot_table(index="phase", columns="bound", values="hours", aggfunc="sum", sort=False)
