"""Chapter 6: what Jacobian matching costs, and what the paper's protocol costs, from measured step times.

Matching Jacobians differentiates through a gradient (a double backward). ``benchmarks/step_cost.py``
measures milliseconds per training step for every method beside a CE step of the same rounds;
:func:`paper_workload` counts the image-steps of the paper's protocol (Tables 1-3, one seed, 500
epochs per run, Section 5 and the supplementary) and the projections divide the two. Only measured
throughput goes in: a CPU measurement projects CPU hours, a GPU measurement GPU hours. Evaluation
passes are left out (well under 1% of the training work).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.errors import require
from ..core.methods import PAPER_METHODS
from .palette import styled
from .report import TABLE3_PENALTIES, table1, table2

_EPOCHS, _TRAIN_IMAGES, _BATCH = 500, 50_000, 128  # CIFAR-10/100 training sets; the paper preset's batch
_TARGETS = (  # (what, method, teacher mode, limit on the step-time ratio to CE), on every setting
    ("Act+Jac+CE step vs CE", "act+jac+ce", "cached", 2.0),
    ("Jac+CE step vs CE", "jac+ce", "cached", 2.0),
    ("Act step vs CE (cached teacher)", "act", "cached", 1.1),
    ("Act+FDJac+CE step vs CE (cached teacher)", "act+fdjac+ce", "cached", 1.3),
    ("the same, 1/8 of the batch moved", "act+fdjac+ce@0.125", "cached", 1.3),
)
_MEMORY_LIMIT = 3.0


def _markdown(text: str):
    from IPython.display import Markdown  # the chapter's readings; the benchmarks import this module without IPython

    return Markdown(text)


def _setting(model, width, batch, batch_label: str = "b", quarter: bool = False) -> str:
    """'VGG-4 ×0.25, b64' (``quarter``: ×¼)."""
    width = "¼" if quarter and width == 0.25 else f"{width:g}"
    return f"{model.upper().replace('VGG', 'VGG-')} ×{width}, {batch_label}{batch}"


def load_step_cost(path) -> pd.DataFrame:
    """The CSV of ``benchmarks/step_cost.py``, with a ``setting`` label (network, width, batch) and a
    ``row`` label (method, and the teacher mode a distillation method was timed with)."""
    path = Path(path)
    require(path.is_file(), f"no step-cost file at {str(path)!r}; run python benchmarks/step_cost.py --out {path}")
    table = pd.read_csv(path)
    table["setting"] = [_setting(*r) for r in zip(table["model"], table["width"], table["batch"])]
    table["row"] = table["method"] + table["teacher"].map(lambda t: "" if t == "none" else f" ({t})")
    return table


def step_cost_summary(table: pd.DataFrame) -> str:
    """Where the step costs were measured, on which networks, widths and batches, for which methods."""
    return (f"measured on: {', '.join(table['device'].unique())}\n"
            f"networks × widths × batches: {sorted(set(zip(table['model'], table['width'], table['batch'])))}\n"
            f"methods: {list(dict.fromkeys(table['method']))}")


def ratio_figure(table: pd.DataFrame):
    """Each method's step time over CE's: the median over the measured settings, their range as a line."""
    import matplotlib.pyplot as plt

    rows = list(dict.fromkeys(table["row"]))
    summary = table.groupby("row")["ratio_to_ce"].agg(["median", "min", "max"]).reindex(rows)
    fig, ax = plt.subplots(figsize=(7.0, 0.38 * len(rows) + 1.4))
    y = range(len(rows))
    ax.hlines(y, summary["min"], summary["max"], color="0.6", lw=3)
    ax.scatter(summary["median"], y, color="C0", zorder=3, label="median over settings")
    ax.axvline(1.0, color="grey", lw=1)
    ax.axvline(2.5, color="crimson", lw=1, ls="--", label="2.5× target (Act+Jac+CE)")
    ax.set_yticks(list(y), rows)
    ax.invert_yaxis()
    ax.set_xlabel("step time ÷ CE step time (line: min–max over settings)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _by_setting(table: pd.DataFrame, column: str) -> pd.DataFrame:
    return table.pivot(index="row", columns="setting", values=column).reindex(
        index=list(dict.fromkeys(table["row"])), columns=list(dict.fromkeys(table["setting"])))


def step_time_table(table: pd.DataFrame):
    """Step time over CE's for every method and measured setting."""
    return styled(_by_setting(table, "ratio_to_ce"),
                  f"Step time ÷ CE step time, every measured setting (b: batch) on {', '.join(table['device'].unique())}")


def memory_table(table: pd.DataFrame):
    """Peak memory over CE's for every method and measured setting."""
    return styled(_by_setting(table, "mem_ratio_to_ce"), "Peak memory ÷ CE's peak memory")


def targets(step_cost: pd.DataFrame) -> pd.DataFrame:
    """For every measured (model, width, batch): is each speed target and the memory bound met?"""
    rows = []
    for (model, width, batch), group in step_cost.groupby(["model", "width", "batch"]):
        for what, method, mode, limit in _TARGETS:
            hit = group[(group["method"] == method) & (group["teacher"] == mode)]
            if len(hit):
                value = float(hit["ratio_to_ce"].iloc[0])
                rows.append({"model": model, "width": width, "batch": batch, "target": f"{what} <= {limit}x",
                             "measured": value, "met": value <= limit, "method": method, "mode": mode})
        worst = group.loc[group["mem_ratio_to_ce"].idxmax()]
        rows.append({"model": model, "width": width, "batch": batch,
                     "target": f"peak memory <= {_MEMORY_LIMIT}x CE (worst: {worst['method']}, {worst['teacher']})",
                     "measured": float(worst["mem_ratio_to_ce"]), "met": bool(worst["mem_ratio_to_ce"] <= _MEMORY_LIMIT),
                     "method": None, "mode": None})
    return pd.DataFrame(rows)


def targets_table(checks: pd.DataFrame):
    """:func:`targets`, setting by setting."""
    shown = pd.DataFrame({"setting": [_setting(r.model, r.width, r.batch, "batch ") for r in checks.itertuples()],
                          "target": checks["target"], "measured": checks["measured"],
                          "met": ["yes" if met else "no" for met in checks["met"]]}).set_index(["setting", "target"])
    return styled(shown, f"Targets: {int(checks['met'].sum())} of {len(checks)} met")


def _span(frame, column="measured") -> str:
    return f"{frame[column].min():.2f}–{frame[column].max():.2f}×"


def targets_reading(checks: pd.DataFrame, explain: str):
    """What :func:`targets` says, with the teacher's share of the finite-difference step read from the profiles."""
    exact = checks[checks["method"].isin(["act+jac+ce", "jac+ce"])]
    fd, fd8 = checks[checks["method"] == "act+fdjac+ce"], checks[checks["method"] == "act+fdjac+ce@0.125"]
    share = [int(v) for v in re.findall(r"teacher forward at x \+ h v [^%]*? (\d+)%", explain)]
    return _markdown(
        f"**Reading.** Exact per-sample Jacobian matching (Act+Jac+CE, Jac+CE) costs {_span(exact)} a CE step: "
        f"within 2.0× in {int(exact['met'].sum())} of {len(exact)} (method, setting) cells. The finite-difference "
        f"estimator with a quarter of the batch moved costs {_span(fd)} (within 1.3× in {int(fd['met'].sum())} of "
        f"{len(fd)} settings): its student pass is 1¼ batches long and the teacher's forward at the moved quarter "
        f"cannot be cached (the profiles above put it at {min(share)}–{max(share)}% of the step). With an eighth "
        f"moved: {_span(fd8)} ({int(fd8['met'].sum())} of {len(fd8)} within 1.3×). In the profiles of the "
        "exact-matching misses printed above, BatchNorm's backward (the one-pass Function) is a few percent of the "
        "step and the convolutions' backward the largest share: what is left above 2× is the convolutions' own "
        "double backward, not BatchNorm's.")


def paper_workload(batch: int = _BATCH) -> pd.DataFrame:
    """One row per group of runs: phase, model, method, runs, ``image_steps`` and optimiser ``steps`` at
    ``batch`` (a 5-per-class CIFAR-10 subset is one 50-image step per epoch: what a device whose step
    time barely shrinks with the batch, a GPU, pays for)."""
    from ..core.train import steps_per_epoch

    full = {"image_steps": _EPOCHS * _TRAIN_IMAGES, "steps": _EPOCHS * steps_per_epoch(_TRAIN_IMAGES, batch)}
    rows = [{"phase": f"teacher {d}", "model": "vgg9", "method": "ce", "runs": 1, **full} for d in ("CIFAR-10", "CIFAR-100")]
    for name, table, classes in (("Table 1 students", table1(), 10), ("Table 2 students", table2(), 100)):
        images = sum(int(n) * classes for n in table.columns)
        steps = sum(steps_per_epoch(int(n) * classes, batch) for n in table.columns)
        rows += [{"phase": name, "model": "vgg4", "method": method, "runs": len(table.columns),
                  "image_steps": _EPOCHS * images, "steps": _EPOCHS * steps} for method in PAPER_METHODS]
    rows += [{"phase": "Table 3 robustness", "model": "vgg9", "method": "ce" if penalty == 0 else "ce+jacnorm",
              "runs": 1, **full} for penalty in TABLE3_PENALTIES]
    return pd.DataFrame(rows)


def project_hours(workload: pd.DataFrame, step_cost: pd.DataFrame, width: float = 1.0, batch: int = 128,
                  teacher: str = "cached") -> pd.DataFrame:
    """Hours per workload row at the measured images/s of the same model, width, batch and method
    (distillation timed with the ``teacher`` mode: "cached" targets, lakt's default without augmentation)."""
    cost = step_cost[(step_cost["width"] == width) & (step_cost["batch"] == batch)]
    require(len(cost) > 0, f"the step-cost file has no rows at width {width}, batch {batch}; "
                           "run the full benchmark (without --quick)")
    cost = cost[cost["teacher"].isin([teacher, "none"])]
    rate = cost.set_index(["model", "method"])["images_per_s"]
    out = workload.copy()
    out["images_per_s"] = [rate.get(key, float("nan")) for key in zip(out["model"], out["method"])]
    out["hours"] = out["image_steps"] / out["images_per_s"] / 3600
    out["device"] = cost["device"].iloc[0]
    return out


def phase_hours_table(projection: pd.DataFrame):
    """:func:`project_hours` summed per phase."""
    by_phase = projection.groupby("phase", sort=False)[["image_steps", "hours"]].sum()
    return styled(by_phase, "Paper protocol, one seed: images trained on and projected hours per phase", 1)


def scaled_to_faster_device(hours: float, speedups=(30, 100, 300)):
    """Hours on a device ``s`` times faster than the one measured: scenarios, not measurements (shown
    only while no GPU measurement exists)."""
    return styled(pd.DataFrame({"assumed speed-up over the measured device": list(speedups),
                                "projected hours": [hours / s for s in speedups]}),
                  "Scenarios, not measurements: the total divided by assumed speed-ups", 1)


def load_gpu_figures(folder) -> dict:
    """``benchmarks/gpu_figures.py --out FOLDER``'s CSVs (empty frames for skipped parts) and its meta.json."""
    folder = Path(folder)
    require((folder / "meta.json").is_file(),
            f"no GPU figures in {str(folder)!r}; run python benchmarks/gpu_figures.py --out {folder} on a GPU")
    out = {"meta": json.loads((folder / "meta.json").read_text())}
    for name in ("step_cost", "bf16_agreement", "concurrency", "teacher_throughput", "projection"):
        path = folder / f"{name}.csv"
        out[name] = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    return out


def protocol_hours(projection: pd.DataFrame) -> pd.DataFrame:
    """Hours per phase of the paper protocol, both bounds side by side (rows of :func:`project_concurrent_hours`)."""
    return projection.pivot_table(index="phase", columns="bound", values="hours", aggfunc="sum", sort=False)


def gpu_tables(gpu: dict) -> dict:
    """The GPU section's tables from :func:`load_gpu_figures`: step ``ratios`` to CE per setting and
    method, ``concurrency`` (summed and per-run images/s per k), ``teachers`` (images/s without and
    with augmentation) and the protocol's ``hours`` per phase."""
    steps = gpu["step_cost"]
    steps = steps.assign(setting=[_setting(m, w, b, "batch ", quarter=True) + f", {p}"
                                  for m, w, b, p in zip(steps["model"], steps["width"], steps["batch"], steps["precision"])])
    return {"ratios": steps.pivot_table(index="setting", columns="method", values="ratio_to_ce", sort=False),
            "concurrency": gpu["concurrency"].set_index("k")[["images_per_s", "per_run_images_per_s"]],
            "teachers": gpu["teacher_throughput"].pivot_table(index=["model", "width"], columns="augmented",
                                                              values="images_per_s"),
            "hours": protocol_hours(gpu["projection"])}


def show_gpu_tables(gpu: dict, tables: dict) -> None:
    """Display :func:`gpu_tables` with their captions, and how far bf16's loss terms move from fp32's."""
    from IPython.display import display

    meta, agree = gpu["meta"], gpu["bf16_agreement"]
    display(styled(tables["ratios"], f"Step time relative to a CE step on {meta['device']} "
                   f"(torch {meta['torch']}; median of interleaved rounds)"))
    display(_markdown(f"bf16 against fp32, same weights and batch: {int(agree['within'].sum())} of {len(agree)} loss "
                     f"terms within {agree['tolerance'].iloc[0]:.0%}; the largest relative difference is "
                     f"{agree['rel_diff'].max():.2%}. Skipped for the time budget: {'; '.join(meta['skipped'])}."))
    display(styled(tables["concurrency"], "Concurrent VGG-4 ×¼ students (Act+Jac+CE, bf16, batch 128) sharing the "
                   "GPU: summed and per-run images/s", decimals=0))
    display(styled(tables["teachers"], "Teacher (VGG-9, CE, batch 128, bf16) images/s, without and with crop + flip",
                   decimals=0))
    display(styled(tables["hours"], "The paper's protocol, one seed of Tables 1–3, projected from these measurements "
                   "(hours; 'images': every image step at the measured rate; 'steps': small subsets priced as full steps)"))


def gpu_reading(tables: dict):
    """What the GPU tables say about the price of exact matching and the one-GPU-hour goal."""
    ratios, conc, total = tables["ratios"], tables["concurrency"], tables["hours"].sum()

    def span(method, precision):
        rows = ratios[ratios.index.str.endswith(precision)][method].dropna()
        return f"{rows.min():.1f}–{rows.max():.1f}×"

    gain = conc.loc[conc.index.max(), "images_per_s"] / conc.loc[1, "images_per_s"]
    return _markdown(
        f"So on this GPU exact per-sample Act+Jac+CE costs {span('act+jac+ce', 'fp32')} a CE step in fp32 and "
        f"{span('act+jac+ce', 'bf16')} in bf16 at these small networks, where a step lasts a few milliseconds and "
        f"kernel launches rather than arithmetic set the price; the finite-difference estimator costs "
        f"{span('act+fdjac+ce', 'fp32')} in fp32. {conc.index.max()} concurrent students give {gain:.1f}× the "
        f"throughput of one. The projection puts one seed of the paper's protocol at {total.min():.1f}–"
        f"{total.max():.1f} GPU-hours on it: the goal of one GPU-hour is {'met' if total.max() <= 1 else 'not met'}; "
        "concurrency at full width, not measured within this budget, is where the remaining factor would have to come from.")


# ---------------------------------------------------------------- Proposition 1 as a cheap estimator

@dataclass
class Estimator:
    """The finite-difference runs beside exact matching's: students of both presets, the estimator's
    validation ``curves`` and chosen settings ``pick``, the ``comparison`` table, the first-epoch sizes
    of its term (``fd_first``) and of the activation term (``act_first``), and its ``provenance`` line."""
    students: pd.DataFrame
    curves: pd.DataFrame
    pick: pd.Series
    comparison: pd.DataFrame
    fd_first: pd.DataFrame
    act_first: pd.DataFrame
    provenance: str


def estimator_comparison(real_preset: str, fdjac_preset: str, results) -> Estimator:
    """Act+FDJac (Prop 1's finite difference, no input gradient) against exact Act+Jac at each one's
    validation-chosen γ, against Act, and at equal γ: A − B in test accuracy paired by seed, a
    "mean ± std" column per size and the pooled statistics of :mod:`lakt.analysis.answers`."""
    from .. import runs
    from . import answers
    from .report import loss_terms, provenance

    real, fd = runs.preset(real_preset), runs.preset(fdjac_preset)
    fd_runs = runs.collect(fd, results)
    require(len(fd_runs) and (fd_runs["kind"] == "student").any(), f"no finished {fdjac_preset} students in {results}")
    real_runs = runs.collect(real, results)
    both = pd.concat([real_runs[real_runs["kind"] == "student"], fd_runs[fd_runs["kind"] == "student"]], ignore_index=True)
    pick = answers.choose(both)["setting"]
    fd_pick = ("act+fdjac", pick["act+fdjac"])
    pairs = [(fd_pick, ("act+jac", pick["act+jac"])), (fd_pick, ("act", ""))]
    pairs += [(("act+fdjac", g), ("act+jac", g)) for g in ("γ=1", "γ=10", "γ=100")]
    rows = []
    for a, b in pairs:
        diff = answers.paired(both, a, b)
        if len(diff):
            label = f"Act+FDJac ({a[1]}) − {'Act+Jac' if b[0] == 'act+jac' else 'Act'}" + (f" ({b[1]})" if b[1] else "")
            rows.append({"comparison": label, **{int(n): v for n, v in answers.per_cell(diff).items()}, **answers.paired_test(diff)})
    comparison = answers.with_holm(pd.DataFrame(rows)).set_index("comparison")
    real_terms = [c for c in real if c.kind == "student" and c.method in PAPER_METHODS]
    return Estimator(both, answers.validation_curves(both).loc[["act+fdjac"]], pick, comparison,
                     loss_terms([c for c in fd if c.kind == "student"], results, "jac", epoch=0),
                     loss_terms(real_terms, results, "act", epoch=0),
                     provenance(fd, [m for _, m in runs.finished(fd, results)], fdjac_preset))


def estimator_sizes(est: Estimator):
    """The first-epoch sizes of the finite-difference term and of the activation term: why γ needs a grid of its own."""
    return _markdown(f"First-epoch size of the finite-difference term (unweighted, mean over seeds): "
                    f"{est.fd_first.min().min():.0f}–{est.fd_first.max().max():.0f}; the activation term's: "
                    f"{est.act_first.min().min():.0f}–{est.act_first.max().max():.0f}.")


def estimator_table(est: Estimator):
    """:func:`estimator_comparison`'s comparisons as the book shows them."""
    from .answers import SHOWN

    table = est.comparison
    sizes = [c for c in table.columns if isinstance(c, int)]
    return styled(table[sizes + SHOWN], "Act+FDJac against exact Act+Jac and Act: A − B in accuracy points, paired by "
                  "seed, mean ± std over the seeds per examples per class, then pooled over sizes",
                  provenance=est.provenance, wrap=True)


def estimator_reading(est: Estimator, step_cost: pd.DataFrame):
    """Is the cheap estimator as good as exact matching, and at what price (this chapter's CPU step costs)?"""
    cached = step_cost[step_cost["teacher"].isin(["cached", "none"])]
    price = cached.pivot_table(index="method", columns=["model", "width", "batch"], values="ratio_to_ce")
    span = lambda method: f"{price.loc[method].min():.2f}–{price.loc[method].max():.2f}×"
    main, vs_act = est.comparison.iloc[0], est.comparison.iloc[1]
    said = lambda r: f"{r['mean [95% CI]']} points, {r['positive']} pairs positive: {r['verdict']}"
    chosen = est.pick["act+fdjac"]
    pooled = est.curves["pooled"].droplevel("method")
    edge = {pooled.index[0]: "smallest", pooled.index[-1]: "largest"}.get(chosen)
    trend = "falls" if pooled.is_monotonic_decreasing else "rises" if pooled.is_monotonic_increasing else None
    edge_note = (f" The chosen γ is the grid's {edge}, and pooled validation accuracy {trend} monotonically with γ "
                 f"({', '.join(f'{v:.1f}' for v in pooled)}%): the best weight may lie beyond the grid"
                 + (", towards γ = 0, i.e. Act alone." if edge == "smallest" and trend == "falls" else ".")
                 if edge and trend else "")
    return _markdown(
        f"**Is the cheap estimator as good?** At its validation-chosen {chosen}, Act+FDJac minus exact Act+Jac at "
        f"{est.pick['act+jac']}: {said(main)}; against Act: {said(vs_act)}. **At what price:** a step of "
        f"Act+FDJac+CE with an eighth of the batch moved, as in these runs, costs {span('act+fdjac+ce@0.125')} a CE "
        f"step over chapter 6's eight CPU settings ({span('act+fdjac+ce')} with lakt's default quarter), exact "
        f"Act+Jac+CE {span('act+jac+ce')}." + edge_note)
