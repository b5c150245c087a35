"""Hyper-parameters chosen on the validation split, never on the test set (issue 13, point 2).

Every knob the book tunes -- gamma of the Jacobian term, sigma of noisy-input
distillation, T and alpha of Hinton KD, beta of attention transfer -- is trained on a
grid (``cifar10-cpu-v2``) and every run records ``val_acc`` on 5,000 held-out training
images. Here, per method:

* :func:`validation_curves` -- mean validation accuracy of each grid value, per size and
  pooled over the sizes <= ``max_size`` (the chapter plots these);
* :func:`choose` -- the value with the best pooled mean validation accuracy;
* :func:`chosen_results` -- test accuracy (mean, std over seeds) at the chosen value only;
* :func:`transfer_table` -- Table 1: the paper's methods as specified, then the chosen values.

One value per method, pooled over the low-data sizes (<= 100 per class, where the
paper's claims live), rather than one per method and size: it is what a user would
carry to a new training-set size, each choice then rests on 4 sizes x 3 seeds = 12 runs
instead of 3 (validation noise of single runs is of the order of the differences
between neighbouring grid values), and it makes 1/4 as many choices, so less room to
fit the validation set's noise. Only (size, seed) cells finished at every value of a
method are compared, so a partly finished sweep never favours the value that has more
easy cells.

Input: a table like :func:`lakt.runs.cache.collect`'s, one row per finished student,
with columns method, n_per_class, seed, val_acc, test_acc and the knob columns
(:data:`KNOBS`; empty where the knob does not apply to the method).
"""
from __future__ import annotations

import pandas as pd

from ..core.errors import require

KNOBS = {"jac_weight": "γ", "noise_sigma": "σ", "kd_temperature": "T", "kd_alpha": "α", "at_weight": "β"}


def setting_label(row) -> str:
    """'γ=100', 'T=4 α=0.9', or '' for a method without a tuned knob."""
    return " ".join(f"{KNOBS[k]}={row[k]:g}" for k in KNOBS if k in row and pd.notna(row[k]))


def with_settings(table: pd.DataFrame) -> pd.DataFrame:
    """The students of a run table with a ``setting`` column (:func:`setting_label`): what a comparison pairs on."""
    require({"method", "n_per_class", "seed", "val_acc", "test_acc"} <= set(table.columns),
            "the table needs method, n_per_class, seed, val_acc and test_acc columns (lakt.runs.collect)")
    students = table[table["n_per_class"].notna()].copy()
    require(students["val_acc"].notna().all(),
            "some runs have no val_acc: they were trained without a validation split (use cifar10-cpu-v2)")
    students["setting"] = [setting_label(r) for _, r in students.iterrows()] if len(students) else []
    return students


def _balanced(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of one method whose (size, seed) cell is finished at every setting."""
    cells = rows.groupby("setting").apply(lambda g: set(zip(g["n_per_class"], g["seed"])), include_groups=False)
    common = set.intersection(*cells) if len(cells) else set()
    keep = [(n, s) in common for n, s in zip(rows["n_per_class"], rows["seed"])]
    return rows[keep]


def validation_curves(table: pd.DataFrame, max_size: int = 100) -> pd.DataFrame:
    """Mean val_acc per (method, setting): one column per size, then ``pooled`` over sizes <= max_size and ``runs``.

    Each method's rows are restricted to the (size, seed) cells finished at all its settings.
    """
    students = with_settings(table)
    out = []
    for method, rows in students.groupby("method", sort=False):
        rows = _balanced(rows)
        per_size = rows.pivot_table(index="setting", columns="n_per_class", values="val_acc", aggfunc="mean")
        per_size.columns = [int(c) for c in per_size.columns]
        low = rows[rows["n_per_class"] <= max_size]
        per_size["pooled"] = low.groupby("setting")["val_acc"].mean()
        per_size["runs"] = low.groupby("setting")["val_acc"].size()
        per_size.index = pd.MultiIndex.from_product([[method], per_size.index], names=["method", "setting"])
        out.append(per_size)
    require(out, "no finished students in the table")
    return pd.concat(out)


def choose(table: pd.DataFrame, max_size: int = 100) -> pd.DataFrame:
    """Per method: the setting with the best pooled validation accuracy (ties: the first in grid order)."""
    curves = validation_curves(table, max_size)
    rows = []
    for method, curve in curves.groupby(level="method", sort=False):
        require(curve["pooled"].notna().any(), f"method {method!r} has no finished run at sizes <= {max_size}")
        best = curve["pooled"].idxmax()[1]
        rows.append({"method": method, "setting": best, "val_acc": curve.loc[(method, best), "pooled"],
                     "runs": int(curve.loc[(method, best), "runs"]), "values": len(curve)})
    return pd.DataFrame(rows).set_index("method")


def chosen_results(table: pd.DataFrame, max_size: int = 100) -> pd.DataFrame:
    """Test accuracy at each method's validation-chosen setting: mean and std over seeds per size.

    Rows "method (setting)" (the setting omitted when the method has no knob), columns
    (quantity, n_per_class) with quantity in mean, std, seeds.
    """
    students = with_settings(table)
    picks = choose(table, max_size)["setting"]
    at = students[[picks.get(m) == s for m, s in zip(students["method"], students["setting"])]]
    at = at.assign(row=[f"{m} ({s})" if s else m for m, s in zip(at["method"], at["setting"])])
    grouped = at.groupby(["row", "n_per_class"], sort=False)["test_acc"]
    out = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "seeds": grouped.size()})
    out = out.unstack("n_per_class")
    out.columns = out.columns.set_levels([int(c) for c in out.columns.levels[1]], level=1)
    order = [r for r in dict.fromkeys(at["row"])]
    return out.loc[order]


def transfer_table(table: pd.DataFrame, max_size: int = 100) -> pd.DataFrame:
    """Table 1 from a run table: the paper's six methods as it specifies them, then each tuned method at its choice.

    Rows: the paper's methods with every constant 1 (γ = 1), named as :func:`lakt.analysis.paper.table1`
    names them so the two tables line up; then "method (setting)" for each method whose
    validation-chosen setting (:func:`choose`) is not already such a row. Columns
    (stat, n_per_class) with stats mean, std (over seeds), text ("mean ± std") and seeds,
    like :func:`lakt.analysis.report.transfer_table`.
    """
    from ..core.methods import PAPER_METHODS
    from .report import _wide

    students = with_settings(table)
    picks = choose(table, max_size)["setting"]
    specified = students["method"].isin(PAPER_METHODS) & students["setting"].isin(["", "γ=1"])
    label = pd.Series(students["method"].where(specified), index=students.index)
    for method, setting in picks.items():
        if setting and not (method in PAPER_METHODS and setting == "γ=1"):
            at = (students["method"] == method) & (students["setting"] == setting)
            label[at] = f"{method} ({setting})"
    students = students.assign(row=label).dropna(subset=["row"])
    long = (students.groupby(["row", "n_per_class"])["test_acc"]
            .agg(mean="mean", std="std", seeds="count").reset_index())
    long["n_per_class"] = long["n_per_class"].astype(int)
    wide = _wide(long, "row", "n_per_class")
    order = [m for m in PAPER_METHODS if m in wide.index] + [r for r in dict.fromkeys(label.dropna())
                                                             if r not in PAPER_METHODS]
    return wide.reindex(order).rename_axis("method")
