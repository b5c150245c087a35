"""The paper's claims answered from the runs: the comparisons, their statistics, the verdict page.

The claims (Section 5 and Tables 1-3), each read as comparisons "A − B" of test accuracy:

* (a) distillation beats cross-entropy training at ≤ 100 examples per class -- every
  distillation method at its validation-chosen setting (:func:`choose`) minus CE;
* (b) Act+Jac beats Act there -- as the paper specifies it (γ = 1) and at the chosen γ,
  with and without CE (Act+Jac+CE − Act+CE);
* (c) a Jacobian-norm penalty makes a net more accurate under input noise (Table 3) -- at the
  strongest penalty whose clean cost is ≤ 2 points, the accuracy at σ = 0.3 and 0.4 minus the
  unpenalised net's (:func:`noise_answers`);
* (d) squared-error distillation beats Hinton KD ("worked much better") -- Act and Act+CE
  minus KD at its chosen T and α;
* Props 1-2: the remainder LHS − RHS is O(σ⁴) (chapter 2 measures the order).

**Statistics.** Both runs of a (size, seed) pair trained on the same nested subset from the
same initialisation (for (c): the same images, at one noise level), so their difference
removes what they share. A comparison pools its pairs at ≤ 100 per class (for (c): over
σ ∈ {0.3, 0.4} and the seeds) and reports the mean difference with its 95% interval (paired
t), how many pairs are positive, and the two-sided p-value of the paired t-test, corrected
by Holm's method across every comparison of the page that shows it (:func:`holm`). The word
(:func:`word`): *holds* when the corrected p < 0.05 and the mean is positive, *reversed* when
it is negative, *not shown* otherwise, *not testable here* with fewer than three pairs. Pairs
at different sizes are treated as draws of one difference -- the claim is about "few
examples", not one size -- so an effect present at some sizes only widens the interval.
Tables per size keep mean ± std over seeds.
"""
from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
from scipy import stats

from ..core.errors import require
from .palette import SHORT_NAMES, VERDICT_COLORS, Shown
from .report import PENALTY_NAMES, _wide, noise_curves, paper_curves, table1, table3

ALPHA = 0.05
WORDS = ("holds", "reversed", "not shown", "not testable here")
QUESTIONS = {
    "a": "Does any distillation beat CE at ≤ 100 examples per class?",
    "b": "Does Act+Jac beat Act at ≤ 100 examples per class (as specified, and at the validation-chosen γ)?",
    "c": "Is a net trained with a Jacobian-norm penalty more accurate under input noise (Table 3)?",
    "d": "Does squared-error distillation beat Hinton KD, as the paper says?",
}
RULES = (
    "Each comparison pools its paired differences (both runs of a pair share images and initialisation) at "
    "≤ 100 examples per class: the mean with its 95% interval (paired t) and a two-sided p-value, "
    "Holm-corrected across the comparisons of this page.",
    "**holds**: corrected p < 0.05 and the claimed winner ahead; **reversed**: corrected p < 0.05 and it is "
    "behind; **not shown**: otherwise (a difference inside the noise is no evidence either way).",
    "**not testable here**: fewer than three pairs; the paper-scale column has one seed, so it informs but "
    "never decides.",
)
"""The rules behind the words, shown under the verdict table."""


# ---------------------------------------------------------------- statistics

def paired_test(diff) -> dict:
    """One comparison's pooled paired differences: mean, 95% interval (paired t), pairs, positive, p."""
    d = np.asarray(pd.Series(diff).dropna(), dtype=float)
    n = len(d)
    out = {"mean": d.mean() if n else np.nan, "low": np.nan, "high": np.nan, "pairs": n,
           "positive": int((d > 0).sum()), "p": np.nan}
    if n >= 3:
        sd = d.std(ddof=1)
        half = stats.t.ppf(1 - ALPHA / 2, n - 1) * sd / np.sqrt(n)
        p = stats.ttest_1samp(d, 0.0).pvalue if sd > 0 else float(d.mean() == 0)
        out.update(low=d.mean() - half, high=d.mean() + half, p=float(p))
    return out


def holm(p) -> np.ndarray:
    """Holm's step-down correction of a family of p-values (NaN stays NaN, outside the family)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    known = np.flatnonzero(~np.isnan(p))
    order = known[np.argsort(p[known])]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def word(mean: float, p_holm: float) -> str:
    """holds / reversed / not shown from a mean difference and its corrected p; no p: not testable here."""
    if np.isnan(p_holm):
        return "not testable here"
    if p_holm < ALPHA:
        return "holds" if mean > 0 else "reversed"
    return "not shown"


def with_holm(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of :func:`paired_test` dicts with ``p_holm`` (Holm across them), the word, and the shown text columns."""
    rows = rows.assign(p_holm=holm(rows["p"]))
    rows["verdict"] = [word(m, p) for m, p in zip(rows["mean"], rows["p_holm"])]
    rows["p (Holm)"] = [p_text(p) for p in rows["p_holm"]]
    rows["mean [95% CI]"] = [interval(r) for _, r in rows.iterrows()]
    rows["positive"] = [f"{k} of {n}" for k, n in zip(rows["positive"], rows["pairs"])]
    return rows


def p_text(p: float) -> str:
    """A p-value as shown: three decimals, '< 0.001', or '–' without a test."""
    return "–" if np.isnan(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def interval(r) -> str:
    """'+1.23 [+0.40, +2.06]' (the mean alone without an interval)."""
    if np.isnan(r["mean"]):
        return "–"
    text = f"{r['mean']:+.2f}"
    return text if np.isnan(r["low"]) else f"{text} [{r['low']:+.2f}, {r['high']:+.2f}]"


def per_cell(diff: pd.Series, cell: str = "n_per_class") -> pd.Series:
    """'mean ± std' over seeds per cell (just the mean with one seed)."""
    g = diff.groupby(level=cell)
    return pd.Series({k: f"{d.mean():+.2f}" + (f" ± {d.std(ddof=1):.2f}" if len(d) > 1 else "") for k, d in g})


# ---------------------------------------------------------------- knobs chosen on validation
# Every knob the book tunes (γ, σ, T and α, β) is trained on a grid and every run records
# val_acc on 5,000 held-out training images. One value per method, pooled over the sizes
# ≤ 100 per class where the claims live: what a user would carry to a new size, each choice
# resting on 12 runs rather than 3, and 1/4 as many chances to fit the validation noise. Only
# (size, seed) cells finished at every value are compared, so a partly finished sweep never
# favours the value that has more easy cells.

KNOBS = {"jac_weight": "γ", "noise_sigma": "σ", "kd_temperature": "T", "kd_alpha": "α", "at_weight": "β"}


def setting_label(row) -> str:
    """'γ=100', 'T=4 α=0.9', or '' for a method without a tuned knob."""
    return " ".join(f"{KNOBS[k]}={row[k]:g}" for k in KNOBS if k in row and pd.notna(row[k]))


def with_settings(table: pd.DataFrame) -> pd.DataFrame:
    """The students of a run table (:func:`lakt.runs.collect`) with a ``setting`` column."""
    require({"method", "n_per_class", "seed", "test_acc"} <= set(table.columns),
            "the table needs method, n_per_class, seed and test_acc columns (lakt.runs.collect)")
    students = table[table["n_per_class"].notna()].copy()
    students["setting"] = [setting_label(r) for _, r in students.iterrows()] if len(students) else []
    return students


def _balanced(rows: pd.DataFrame) -> pd.DataFrame:
    cells = rows.groupby("setting").apply(lambda g: set(zip(g["n_per_class"], g["seed"])), include_groups=False)
    common = set.intersection(*cells) if len(cells) else set()
    return rows[[(n, s) in common for n, s in zip(rows["n_per_class"], rows["seed"])]]


def validation_curves(table: pd.DataFrame, max_size: int = 100) -> pd.DataFrame:
    """Mean val_acc per (method, setting): one column per size, ``pooled`` over sizes ≤ max_size, ``runs``."""
    students = with_settings(table)
    require("val_acc" in students and students["val_acc"].notna().all(),
            "some runs have no val_acc: they were trained without a validation split (a preset with validation > 0)")
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
    """Per method: the setting with the best pooled validation accuracy (ties: the first in grid order).

    Runs trained without a validation split have one setting per method, taken as it is."""
    students = with_settings(table)
    if "val_acc" not in students or students["val_acc"].isna().all():
        require(students.groupby("method")["setting"].nunique().max() <= 1,
                "these runs have no val_acc, so nothing can choose between a method's settings: train them "
                "with a validation split (a preset with validation > 0)")
        first = students.drop_duplicates("method").set_index("method")
        return pd.DataFrame({"setting": first["setting"], "val_acc": np.nan, "runs": 0, "values": 1, "edge": ""})
    curves = validation_curves(table, max_size)
    rows = []
    for method, curve in curves.groupby(level="method", sort=False):
        require(curve["pooled"].notna().any(), f"method {method!r} has no finished run at sizes <= {max_size}")
        best = curve["pooled"].idxmax()[1]
        rows.append({"method": method, "setting": best, "val_acc": curve.loc[(method, best), "pooled"],
                     "runs": int(curve.loc[(method, best), "runs"]), "values": len(curve),
                     "edge": grid_edge(list(curve.index.get_level_values("setting")), best)})
    return pd.DataFrame(rows).set_index("method")


def grid_edge(settings: list[str], chosen: str) -> str:
    """Where ``chosen`` sits on an edge of its grid, knob by knob ("σ: the smallest of 3"), else "":
    the best value may then lie beyond the grid. Settings read "T=4 α=0.5" (:func:`setting_label`)."""
    knobs = [dict(kv.split("=", 1) for kv in s.split()) for s in settings]
    mine = dict(kv.split("=", 1) for kv in chosen.split())
    said = []
    for knob, value in mine.items():
        values = sorted({float(k[knob]) for k in knobs if knob in k})
        if len(values) > 1 and float(value) in (values[0], values[-1]):
            said.append(f"{knob}: the {'smallest' if float(value) == values[0] else 'largest'} of {len(values)}")
    return "; ".join(said)


def edge_note(chosen: pd.DataFrame, where: str = "") -> str:
    """One sentence naming every choice of :func:`choose` that sits on its grid's edge (or saying none does)."""
    on_edge = chosen[chosen["edge"] != ""]
    if on_edge.empty:
        return f"No chosen value{where} sits on an edge of its grid."
    listed = "; ".join(f"{SHORT_NAMES.get(m, m)} at {r['setting']} ({r['edge']})" for m, r in on_edge.iterrows())
    return f"Chosen on an edge of the grid{where}, so the best value may lie beyond it: {listed}."


def best_by_size(table: pd.DataFrame, max_size: int = 100) -> str:
    """One sentence: for each method trained at several settings, the setting with the best validation
    accuracy at each size, beside the pooled choice the tables use (:func:`choose`) -- whether the
    best value of a knob depends on how much data the student has."""
    curves, picks = validation_curves(table, max_size), choose(table, max_size)["setting"]
    said = []
    for method, curve in curves.groupby(level="method", sort=False):
        if len(curve) < 2:
            continue
        sizes = [n for n in curve.columns if isinstance(n, int) and n <= max_size and curve[n].notna().any()]
        best = {n: curve[n].droplevel("method").idxmax() for n in sizes}
        sizes_of = {}
        for n, setting in best.items():
            sizes_of.setdefault(setting, []).append(f"{n:g}")
        per = "; ".join(f"{setting} at {', '.join(ns)}" for setting, ns in sizes_of.items())
        said.append(f"{SHORT_NAMES.get(method, method)}: {per} (pooled: {picks[method]})")
    if not said:
        return ""
    return "Best on validation size by size (examples per class), beside the pooled choice: " + "; ".join(said) + "."


def kept_note(chosen: pd.DataFrame, trained: pd.DataFrame, where: str = "") -> str:
    """One sentence: which choices of :func:`choose` (over a grid extended after the tables were trained)
    differ from every setting the tables' runs ``trained`` at -- the tables keep theirs, not re-trained."""
    have = with_settings(trained).groupby("method")["setting"].agg(set)
    moved = [f"{SHORT_NAMES.get(m, m)} at {r['setting']} (the tables: {', '.join(sorted(have[m]))})"
             for m, r in chosen.iterrows() if m in have.index and r["setting"] not in have[m]]
    if not moved:
        return f"Every choice{where} is a setting the tables above were trained at."
    return (f"The grid{where} now chooses, on validation, {'; '.join(moved)}; the tables keep the "
            f"setting chosen before the grid was extended and were not re-trained.")


def transfer_table(table: pd.DataFrame, max_size: int = 100) -> pd.DataFrame:
    """Table 1 from a run table: the paper's six methods as specified (γ = 1), then each tuned method at its choice.

    Columns (stat, n_per_class), stats mean, std (over seeds), text ("mean ± std"), seeds."""
    from ..core.methods import PAPER_METHODS

    students = with_settings(table)
    picks = choose(table, max_size)["setting"]
    specified = students["method"].isin(PAPER_METHODS) & students["setting"].isin(["", "γ=1"])
    label = pd.Series(students["method"].where(specified), index=students.index)
    for method, setting in picks.items():
        if setting and not (method in PAPER_METHODS and setting == "γ=1"):
            label[(students["method"] == method) & (students["setting"] == setting)] = f"{method} ({setting})"
    students = students.assign(row=label).dropna(subset=["row"])
    long = students.groupby(["row", "n_per_class"])["test_acc"].agg(mean="mean", std="std", seeds="count").reset_index()
    long["n_per_class"] = long["n_per_class"].astype(int)
    wide = _wide(long, "row", "n_per_class")
    order = [m for m in PAPER_METHODS if m in wide.index] + [r for r in dict.fromkeys(label.dropna())
                                                             if r not in PAPER_METHODS]
    return wide.reindex(order).rename_axis("method")


def add_size(students: pd.DataFrame, other: pd.DataFrame, size: int) -> pd.DataFrame:
    """``students`` plus ``other``'s runs at ``size`` per class with a (method, setting) that
    ``students`` has: a column trained under another protocol, which every table and figure that
    shows it must mark (chapter 3: 500 per class at v3's 600 steps beside v4's 500 epochs, since
    500 epochs there would be 40,000 steps a student). Comparisons pool sizes ≤ 100 only, so such
    a column never enters a verdict."""
    ours, theirs = with_settings(students), with_settings(other)
    have = set(zip(ours["method"], ours["setting"]))
    keep = [(m, s) in have and n == size for m, s, n in zip(theirs["method"], theirs["setting"], theirs["n_per_class"])]
    return pd.concat([students, other.loc[theirs.index[keep]]])


# ---------------------------------------------------------------- (a), (b), (d): Tables 1 and 2

def comparisons(table: pd.DataFrame, max_size: int = 100) -> list[tuple[str, tuple, tuple]]:
    """The (question, (method A, setting A), (method B, setting B)) pairs the table has runs for."""
    students = with_settings(table)
    have = set(students["method"])
    picks = choose(table, max_size)["setting"].to_dict()
    pick = lambda method: (method, picks.get(method, ""))
    out = [("a", pick(m), ("ce", "")) for m in dict.fromkeys(students["method"]) if m != "ce" and "ce" in have]
    for jac, base in (("act+jac", "act"), ("act+jac+ce", "act+ce")):
        if jac in have and base in have:
            out.append(("b", (jac, "γ=1"), (base, "")))
            if pick(jac) != (jac, "γ=1"):
                out.append(("b", pick(jac), (base, "")))
    out += [("d", (sq, ""), pick("kd")) for sq in ("act", "act+ce") if "kd" in have and sq in have]
    return out


def paired(table: pd.DataFrame, a: tuple, b: tuple, max_size: int = 100) -> pd.Series:
    """A − B in test accuracy (points), indexed (n_per_class, seed), sizes ≤ ``max_size``."""
    students = with_settings(table)
    students = students[students["n_per_class"] <= max_size]

    def acc(method, setting):
        rows = students[(students["method"] == method) & (students["setting"] == setting)]
        return rows.set_index(["n_per_class", "seed"])["test_acc"]

    return (acc(*a) - acc(*b)).dropna()


def _label(method: str, setting: str, chosen: bool) -> str:
    name = SHORT_NAMES.get(method, method)
    return f"{name} ({setting}{', chosen' if chosen else ''})" if setting else name


SHOWN = ["mean [95% CI]", "positive", "p (Holm)", "verdict"]


def answer_table(table: pd.DataFrame, max_size: int = 100) -> pd.DataFrame:
    """Every comparison of (a), (b), (d): index (question, "A − B"); a "mean ± std" column per size,
    then the pooled statistics (:func:`paired_test`), Holm-corrected across the table's rows."""
    picks = choose(table, max_size)
    tuned = {m: s for m, s, n in zip(picks.index, picks["setting"], picks["values"]) if n > 1}
    rows = []
    for question, a, b in comparisons(table, max_size):
        label = f"{_label(*a, chosen=tuned.get(a[0]) == a[1])} − {_label(*b, chosen=tuned.get(b[0]) == b[1])}"
        diff = paired(table, a, b, max_size)
        rows.append({"question": f"({question})", "comparison": label, **per_cell(diff, "n_per_class"),
                     **paired_test(diff)})
    require(rows, "no comparison has runs on both sides: the table needs CE, Act, Act+Jac or KD students")
    frame = with_holm(pd.DataFrame(rows)).set_index(["question", "comparison"])
    sizes = sorted(c for c in frame.columns if isinstance(c, (int, np.integer)))
    return frame[sizes + ["mean", "low", "high", "pairs", "p", "p_holm", *SHOWN]]


def summary(answers: pd.DataFrame) -> pd.DataFrame:
    """Per question: how many comparisons hold, are reversed or not shown, and one answer.

    (a) and (d) ask whether *any* listed method wins: *holds* when one comparison holds. (b) and
    (c) ask it of every form: *holds* only when all hold. Either is *reversed* when a comparison is
    reversed and none holds."""
    out = []
    for question, rows in answers.groupby(level="question", sort=False):
        counts = {w: int((rows["verdict"] == w).sum()) for w in WORDS}
        called = len(rows) - counts["not testable here"]
        if not called:
            answer = "not testable here"
        elif counts["holds"] and (question in ("(a)", "(d)") or counts["holds"] == called):
            answer = "holds"
        else:
            answer = "reversed" if counts["reversed"] and not counts["holds"] else "not shown"
        out.append({"question": question, "asks": QUESTIONS[question.strip("()")], "comparisons": len(rows),
                    **counts, "answer": answer})
    return pd.DataFrame(out).set_index("question")


def budget_change(before: pd.DataFrame, after: pd.DataFrame, names=("before", "after")) -> pd.DataFrame:
    """Two :func:`answer_table` tables side by side (each corrected across its own rows): per comparison,
    its pooled mean [95% CI] and verdict under each protocol (chapter 3: v3's 600 steps against
    the paper's 500 epochs). A tuned method is one row, "(chosen)", whatever value each protocol
    took (its ``chosen`` column says which: on validation, or the one value a table trained); the
    paper's own γ = 1 keeps its row. A comparison only one side has shows "–" on the other."""
    setting = re.compile(r"\(([^()]*?)(?:, chosen)?\)")

    def key(label: str) -> str:
        return setting.sub(lambda m: m.group(0) if m.group(1) == "γ=1" else "(chosen)", label)

    def value(label: str) -> str:
        return "; ".join(v for v in setting.findall(label) if v != "γ=1")

    sides = []
    for name, table in zip(names, (before, after)):
        side = table[["mean [95% CI]", "p (Holm)", "verdict"]].copy()
        side.insert(0, "chosen", [value(c) for _, c in side.index])
        side.index = pd.MultiIndex.from_tuples([(q, key(c)) for q, c in side.index], names=["question", "comparison"])
        side.columns = pd.MultiIndex.from_product([[name], side.columns], names=["quantity", ""])
        sides.append(side)
    return pd.concat(sides, axis=1).fillna("–")


def changed(change: pd.DataFrame) -> str:
    """One sentence from :func:`budget_change`'s table: which comparisons changed verdict, and how."""
    before, after = change.columns.get_level_values(0).unique()[:2]
    moved = change[change[(before, "verdict")] != change[(after, "verdict")]]
    if moved.empty:
        return f"No verdict changes between {before} and {after}."
    parts = [f"{q} {c}: *{r[(before, 'verdict')]}* → *{r[(after, 'verdict')]}*" for (q, c), r in moved.iterrows()]
    return f"Verdicts that change from {before} to {after}: " + "; ".join(parts) + "."


def paper_answers(table: pd.DataFrame, max_size: int = 100) -> pd.DataFrame:
    """The same comparisons on the paper's Table 1 or 2 (one run per cell, so no statistics): per
    comparison the difference at each size ≤ ``max_size``, its mean and how many sizes are positive."""
    sizes = [n for n in table.columns if n <= max_size]
    pairs = [("(a)", m, "ce") for m in table.index if m != "ce"] + [("(b)", "act+jac", "act"), ("(b)", "act+jac+ce", "act+ce")]
    rows = []
    for question, a, b in pairs:
        d = table.loc[a, sizes] - table.loc[b, sizes]
        rows.append({"question": question, "comparison": f"{SHORT_NAMES[a]} − {SHORT_NAMES[b]}",
                     **{n: f"{v:+.2f}" for n, v in d.items()}, "mean": d.mean(), "positive": f"{(d > 0).sum()} of {len(d)}"})
    return pd.DataFrame(rows).set_index(["question", "comparison"])


# ---------------------------------------------------------------- (c): Table 3

def noise_answers(curves: pd.DataFrame, noisy=(0.3, 0.4), max_cost: float = 2.0) -> pd.DataFrame:
    """(c) per penalised form and strength: the clean cost (unpenalised minus penalised at σ = 0, mean
    over seeds) and the accuracy gain at σ ∈ ``noisy``, paired by (σ, seed), Holm-corrected across rows.

    ``answers`` marks the row the paper's claim is read on: per form, the strongest penalty whose clean
    cost is ≤ ``max_cost`` points (the paper's strongest costs 1.2). The unpenalised nets (penalty 0,
    any form) are the baseline of every form."""
    base = curves[curves["penalty"] == 0].groupby(["sigma", "seed"])["acc"].mean()
    require(len(base), "the noise curves need the unpenalised nets (penalty 0) to compare with")
    rows = []
    for (form, penalty), g in curves[curves["penalty"] > 0].groupby(["form", "penalty"]):
        gain = g.set_index(["sigma", "seed"])["acc"] - base
        clean = -gain.xs(min(g["sigma"]), level="sigma")
        noisy_gain = gain[gain.index.get_level_values("sigma").isin(noisy)].dropna()
        rows.append({"form": form, "penalty": penalty, "clean cost": clean.mean(), "seeds": clean.count(),
                     **paired_test(noisy_gain)})
    require(rows, "the noise curves need a penalised net (penalty > 0)")
    frame = with_holm(pd.DataFrame(rows)).set_index(["form", "penalty"])
    frame["answers"] = False
    for form, g in frame.groupby(level="form"):
        cheap = g[g["clean cost"] <= max_cost]
        if len(cheap):
            frame.loc[cheap.index[-1], "answers"] = True
    return frame


def noise_reading(noise: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    """(c) in words, one sentence per penalty form: the verdict at the strongest penalty costing ≤ 2 clean
    points (``noise``: :func:`noise_answers`), or why there is none, and the clean accuracy at each λ
    (``tables``: :func:`lakt.analysis.report.robustness_tables`)."""
    from .report import PENALTY_FORMS

    lines = []
    for form, table in tables.items():
        rows = noise.xs(form, level="form") if form in noise.index.get_level_values("form") else noise.iloc[:0]
        cheap = rows[rows["answers"]]
        verdict = (f"at λ = {cheap.index[0]:g}, clean cost {cheap['clean cost'].iloc[0]:.2f} points: "
                   f"**{cheap['verdict'].iloc[0]}** ({cheap['mean [95% CI]'].iloc[0]} points, "
                   f"{cheap['positive'].iloc[0]} pairs ahead, p (Holm) {cheap['p (Holm)'].iloc[0]})"
                   if len(cheap) else "**not testable here**: no strength run costs ≤ 2 clean points")
        clean = table["mean"][0.0]
        lines.append(f"**(c), {PENALTY_FORMS[form]}:** {verdict}. Clean accuracy (σ = 0): "
                     + ", ".join(f"λ = {lam:g}: {acc:.1f}%" for lam, acc in clean.items()) + ".")
    return "\n\n".join(lines)


# ---------------------------------------------------------------- the verdict page

CLAIMS = {
    "(a)": ("Distillation beats cross-entropy training with few examples", ("act+ce", ""), ("ce", ""), "Act+CE − CE"),
    "(b)": ("Matching Jacobians too beats matching activations alone with few examples",
            ("act+jac", "γ=1"), ("act", ""), "Act+Jac − Act"),
    "(d)": ("Squared-error distillation beats Hinton's KD", ("act", ""), ("kd", None), "Act − KD"),
}
"""Question -> (claim, method A, method B, short name): the one comparison each row measures.
A setting of None is the validation-chosen one."""

PENALTY_CLAIMS = {"ce+jacnorm": "on the label logit", "ce+logjacnorm": "on the label's log-softmax (Eq 3)"}
"""Penalty form -> how its (c) row's claim names it (the row is "(c) " + its short name, without "penalty")."""

LINKS = {"(a)": "03_transfer_cifar10.html#sec-answers", "(b)": "03_transfer_cifar10.html#sec-answers",
         "(d)": "03_transfer_cifar10.html#sec-answers", "(c)": "05_noise_robustness.html#sec-noise-answers",
         "Prop 1": "02_propositions.html#sec-orders", "Prop 2": "02_propositions.html#sec-orders"}
"""Question -> the section that shows it in full."""


def proposition(relu_exact: bool, smooth_order: float) -> str:
    """Props 1-2: LHS − RHS = O(σ⁴). *holds* when a ReLU pair's remainder is exactly 0 inside a linear
    region and a smooth pair's fitted order is ≥ 3.5; *not shown* otherwise."""
    return "holds" if relu_exact and smooth_order >= 3.5 else "not shown"


def _measure(students: pd.DataFrame, a: tuple, b: tuple) -> dict:
    """A − B paired over (size, seed) at ≤ 100 per class, a setting of None chosen on validation."""
    if students.empty:
        return {"pairs": 0}
    picks = choose(students)["setting"]
    a, b = [(m, picks.get(m, "") if s is None else s) for m, s in (a, b)]
    return {**paired_test(paired(students, a, b)), "settings": (a[1], b[1])}


def _shown(m: dict) -> str:
    """A measure as the verdict page shows it; ``positive`` may already read "k of n" (:func:`with_holm`)."""
    if not m.get("pairs"):
        return m.get("why", "not run")
    positive = m["positive"] if isinstance(m["positive"], str) else f"{m['positive']} of {m['pairs']}"
    return f"{interval(m)} pts; {positive} pairs > 0".replace("-", "−")


def scale_parts(configs, done: pd.DataFrame, steps: int | None = None) -> list[str]:
    """The scale a column's runs were trained at: [network, width, steps or epochs, seeds, hardware]."""
    runs = [c for c in configs if c.kind in ("student", "robust")]
    if not runs or done.empty:
        return []
    c = runs[0]
    fraction = {0.5: "½", 0.25: "¼", 0.125: "⅛"}.get(c.width, f"{c.width:g}")
    seeds = done["seed"].nunique()
    hardware = sorted({str(d) if not str(d).startswith("cpu") else "CPU" for d in done["device"]})
    length = f"{steps} steps" if steps else f"{c.epochs} epochs"
    return [{"vgg4": "VGG-4", "vgg9": "VGG-9"}.get(c.model, c.model), "full width" if c.width == 1 else f"×{fraction} width",
            length, f"{seeds} seed{'s' if seeds > 1 else ''}", ", ".join(hardware)]


def scale(configs, done: pd.DataFrame, steps: int | None = None) -> str:
    """:func:`scale_parts` as one line, e.g. "VGG-4 ×¼ width, 500 epochs, 3 seeds, CPU"."""
    parts = scale_parts(configs, done, steps)
    return f"{parts[0]} {', '.join(parts[1:])}" if parts else "not run"


def verdict_table(real_preset: str, robust_preset: str, gpu_preset: str, results, theory: dict) -> pd.DataFrame:
    """The verdict table (rows (a), (b), (c) once per penalty form, (d), Prop 1, Prop 2) from the committed
    runs; the experiments' p-values Holm-corrected together.

    ``theory``: :func:`lakt.analysis.propositions.proposition_orders`'s dict."""
    from pathlib import Path

    from .. import runs

    real_configs = runs.preset(real_preset)
    real = runs.collect(real_configs, results)
    require(len(real), f"no finished runs in {Path(results).resolve()}; set the parameter real_results "
                       "to the folder holding the committed results")
    students = real[real["kind"] == "student"]
    gpu_configs = [runs.with_speed(c, "bf16", True) for c in runs.preset(gpu_preset)]
    gpu = runs.collect(gpu_configs, results)
    gpu_students = gpu[gpu["kind"] == "student"] if len(gpu) else gpu
    steps, gpu_steps = runs.get_preset(real_preset).student_steps, runs.get_preset(gpu_preset).student_steps
    rows, measures = [], []
    for question, (claim, a, b, name) in CLAIMS.items():
        ours, big = _measure(students, a, b), _measure(gpu_students, a, b)
        paper = (f"{paper_answers(table1()).loc[('(a)' if b[0] == 'ce' else '(b)', name), 'mean']:+.2f} pts "
                 "(Table 1, 1 run per size)" if b[0] != "kd" else "argued, not measured (§5)")
        knob = f", KD at {ours['settings'][1]} (chosen on validation)" if ours.get("settings", ("", ""))[1] else ""
        big_text = _shown(big)
        if big.get("pairs"):
            parts = scale_parts(gpu_configs, gpu_students, gpu_steps)
            big_text += f" -- {parts[1]}, {parts[2]}, {parts[4]}"
        rows.append({"question": question, "claim": f"{claim}: {name}, pooled over 5–100 per class{knob}",
                     "paper": paper, "ours": _shown(ours), "paper scale": big_text,
                     "scale": scale(real_configs, students, steps)})
        measures.append(ours)
    robust_configs = [c for c in runs.preset(robust_preset) if c.kind == "robust"]
    noise = noise_answers(noise_curves(robust_configs, results))
    paper_noise = noise_answers(paper_curves(table3()))
    paper_row = paper_noise[paper_noise["answers"]].iloc[0]
    robust_scale = (scale(robust_configs, real[real["kind"] == "robust"]) if robust_preset == real_preset else
                    scale(robust_configs, runs.collect(robust_configs, results)))
    for i, form in enumerate(noise.index.unique("form")):   # one row per reading of the penalty (chapter 5)
        rows_of_form = noise.xs(form, level="form")
        chosen = rows_of_form[rows_of_form["answers"]]
        none = "no strength run costs ≤ 2 clean points"
        c_measure = chosen.iloc[0].to_dict() if len(chosen) else {"pairs": 0, "why": none}
        at = (f"λ = {chosen.index[0]:g} (the strongest costing ≤ 2 clean points) − none, at σ = 0.3 and 0.4"
              if len(chosen) else none)
        rows.append({"question": f"(c) {PENALTY_NAMES[form].removesuffix(' penalty')}",
                     "claim": ("A Jacobian-norm penalty makes a net more accurate under input noise" if i == 0 else
                               "The same") + f", the penalty {PENALTY_CLAIMS[form]}: {at}",
                     "paper": f"{paper_row['mean']:+.2f} pts (Table 3, penalty {paper_row.name[1]:g}, CIFAR-100, one net)",
                     "ours": _shown(c_measure), "paper scale": "not run", "scale": robust_scale})
        measures.append(c_measure)
    p = holm([m.get("p", np.nan) for m in measures])
    for row, m, ph in zip(rows, measures, p):
        row["verdict"] = word(m.get("mean", np.nan), ph)
        row["p (Holm)"] = p_text(ph)
    for prop, claim in (("Prop 1", "Distilling at noisy inputs = matching activations + σ² × matching Jacobians"),
                        ("Prop 2", "Training at noisy inputs = clean loss + σ² × a Jacobian-norm penalty")):
        t = theory[prop]
        rows.append({"question": prop, "claim": f"{claim}, up to O(σ⁴): order of the remainder in σ",
                     "paper": "4 (its proof)", "ours": f"{t['order']:.1f} for a smooth (tanh) pair; ReLU pair: "
                     f"{'exactly 0' if t['relu_exact'] else 'not 0'} for σ ≤ 1e-3",
                     "paper scale": "not run", "scale": t["scale"], "p (Holm)": "–",
                     "verdict": proposition(t["relu_exact"], t["order"])})
    order = ["(a)", "(b)", *[r["question"] for r in rows if r["question"].startswith("(c)")], "(d)", "Prop 1", "Prop 2"]
    frame = pd.DataFrame(rows).set_index("question").reindex(order)
    frame["where"] = [LINKS.get(q[:3], "") for q in frame.index]
    return frame


_COLUMNS = {"claim": "claim and measure", "paper": "paper", "ours": "ours, CPU scale",
            "paper scale": "ours, paper scale", "scale": "CPU scale", "p (Holm)": "p (Holm)", "verdict": "verdict"}


def show(table: pd.DataFrame, caption: str = "") -> Shown:
    """The verdict table as the book shows it: a table at page width, one card per claim on a narrow
    screen, the rules beneath it."""
    head = "".join(f"<th>{html.escape(v)}</th>" for v in ["", *_COLUMNS.values(), ""])
    body = []
    for q, r in table.iterrows():
        cells = [f'<th class="lakt-q">{html.escape(str(q))}</th>']
        for key, label in _COLUMNS.items():
            style = f' style="background-color: {VERDICT_COLORS[r[key]]}"' if key == "verdict" else ""
            cells.append(f'<td data-label="{html.escape(label)}"{style}>{html.escape(str(r[key]))}</td>')
        link = f'<a href="{html.escape(r["where"])}">details</a>' if r["where"] else ""
        body.append("<tr>" + "".join(cells) + f'<td class="lakt-where">{link}</td></tr>')
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    rules = "".join(f"<li>{_bold(s)}</li>" for s in RULES)
    page = (f'<div class="lakt-verdicts"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
            f'</tbody></table><ul class="lakt-rules">{rules}</ul></div>')
    return Shown(page, (caption + "\n" if caption else "") + table.drop(columns="where").to_string())


def _bold(sentence: str) -> str:
    parts = html.escape(sentence).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def counts(table: pd.DataFrame) -> pd.Series:
    """How many claims got each word (every word listed, zeros included)."""
    return table["verdict"].value_counts().reindex(list(WORDS), fill_value=0).astype(np.int64)


def sentences(answers: pd.DataFrame) -> str:
    """One Markdown line per question of :func:`answer_table`: its answer (:func:`summary`), how many of
    its comparisons hold or are reversed, and which."""
    lines = []
    for question, s in summary(answers).iterrows():
        verdicts = answers.loc[question, "verdict"]
        named = {w: [c for c, v in verdicts.items() if v == w] for w in ("holds", "reversed")}
        text = (f"- **{question}** {s['asks']} **{s['answer']}** -- of {s['comparisons']} comparisons, "
                f"{s['holds']} hold, {s['reversed']} reversed, {s['not shown']} not shown"
                + (f", {s['not testable here']} not testable (fewer than three pairs)" if s["not testable here"] else "") + ".")
        lines.append(text + "".join(f" {w.capitalize()}: {'; '.join(c)}." for w, c in named.items() if c))
    return "\n".join(lines)


# ---------------------------------------------------------------- the paper's unstated reductions

D = 3 * 32 * 32   # input elements of a CIFAR image
JAC_READINGS = (("both summed (lakt)", 1.0), ("Act: mean over k", 10.0), ("Jac: mean over D", 3e-4),
                ("both means", 3e-3))
"""(the paper's Act+Jac read as -- k = 10 logits, D = 3,072 input elements -- and the γ it is in lakt's
units under Adam's scale invariance; 1/D and k/D rounded to the values that were run)."""
PENALTY_READINGS = (("logit, sum over D", "ce+jacnorm", 1.0), ("logit, mean over D", "ce+jacnorm", 1 / D),
                    ("Eq 3, sum over D", "ce+logjacnorm", 1.0), ("Eq 3, mean over D", "ce+logjacnorm", 1 / D))
"""(the paper's penalty read as -- on the label logit, or Eq 3's log-softmax (``ce+logjacnorm``) -- the
method, the factor its λ ∈ {0.01, 0.1, 0.5, 1} takes in lakt's units)."""
PAPER_PENALTIES = (0.01, 0.1, 0.5, 1.0)


def conventions(students: pd.DataFrame, curves: pd.DataFrame | None = None, max_size: int = 100) -> pd.DataFrame:
    """Every reduction the paper leaves open, mapped to lakt's γ or λ, with the answer under each reading.

    Act+Jac rows: (b) as specified -- Act+Jac − Act and Act+Jac+CE − Act+CE -- at the γ the reading
    amounts to (:data:`JAC_READINGS`). Penalty rows: (c) -- the paper's λ grid mapped to lakt's
    units, and among the strengths run in that range the strongest costing ≤ 2 clean points, its
    gain at σ = 0.3 and 0.4 (:func:`noise_answers`). Holm-corrected across the table's rows."""
    students = with_settings(students)
    rows = []
    for reading, gamma in JAC_READINGS:
        for a, b in (("act+jac", "act"), ("act+jac+ce", "act+ce")):
            setting = f"γ={gamma:g}"   # answer_table's setting labels
            diff = paired(students, (a, setting), (b, ""), max_size)
            rows.append({"term": "Act+Jac", "reading": reading, "in lakt's units": setting,
                         "comparison": f"{SHORT_NAMES[a]} − {SHORT_NAMES[b]}", **paired_test(diff)})
    noise = noise_answers(curves) if curves is not None and len(curves) else None
    for reading, form, factor in PENALTY_READINGS:
        grid = [lam * factor for lam in PAPER_PENALTIES]
        row = {"term": "penalty", "reading": reading, "in lakt's units": f"λ = {grid[0]:.2g}…{grid[-1]:.2g}",
               "comparison": "not run", **paired_test([])}
        if noise is not None and form in noise.index.get_level_values("form"):
            ran = noise.loc[form]
            ran = ran[(ran.index >= grid[0] / 3) & (ran.index <= grid[-1] * 3)]
            row["comparison"] = "no λ run within 3× of this range" if ran.empty else "every λ run costs > 2 clean points"
            ran = ran[ran["clean cost"] <= 2.0]
            if len(ran):
                lam = ran.index[-1]
                row.update(comparison=f"λ = {lam:g} − none at σ = 0.3, 0.4 (costs {ran.loc[lam, 'clean cost']:.1f} clean)",
                           **{k: ran.loc[lam, k] for k in ("mean", "low", "high", "pairs", "p")},
                           positive=int(ran.loc[lam, "positive"].split(" of ")[0]))
        rows.append(row)
    frame = with_holm(pd.DataFrame(rows)).set_index(["term", "reading", "in lakt's units", "comparison"])
    return frame[["mean", "low", "high", "pairs", "p", "p_holm", *SHOWN]]


def readings_sentence(table: pd.DataFrame) -> str:
    """Two Markdown lines from :func:`conventions`' table: under which readings (b) as specified and (c)
    hold, and under which they are not shown or cannot be asked (with the reason the table gives)."""
    lines = []
    for term, question in (("Act+Jac", "(b) as specified, Act+Jac beats Act"),
                           ("penalty", "(c) the cheap penalty makes the net more robust")):
        said = {}
        for reading, rows in table.loc[term].groupby(level="reading", sort=False):
            words = list(dict.fromkeys(rows["verdict"]))
            units, comparison = rows.index[0][1], rows.index[0][2]
            name = f"{reading} ({units})" if term == "Act+Jac" else reading
            if len(words) > 1:    # the two comparisons of one reading disagree: name each
                name += " -- " + ", ".join(f"{v} for {c[2]}" for c, v in rows["verdict"].items())
            elif words[0] == "not testable here":   # why: the penalty rows say; an Act+Jac row was not run
                name += f" ({comparison if term == 'penalty' else 'not run'})"
            said.setdefault(words[0] if len(words) == 1 else "mixed", []).append(name)
        parts = [f"*{word}* under {'; '.join(names)}" if word != "mixed" else "; ".join(names)
                 for word, names in said.items()]
        lines.append(f"- **{question}:** " + "; ".join(parts) + ".")
    return "\n".join(lines)


def budget_reading(budget: pd.DataFrame) -> str:
    """One sentence from :func:`lakt.analysis.report.budget_table`: per line of the budget figure, how
    far its accuracy moved from the fewest to the most steps, and whether that is more than its seeds'
    spread (the ±1 std bars at the two ends do not overlap) or a tie; which lines peak before the most
    steps; then which line leads at each end."""
    first, last = budget["steps"].min(), budget["steps"].max()
    moved, ties, peaks = [], [], []
    for (method, setting), rows in budget.groupby(["method", "setting"], sort=False):
        ends = rows.set_index("steps")
        if first not in ends.index or last not in ends.index:
            continue
        a, b = ends.loc[first], ends.loc[last]
        name = _label(method, setting, chosen=False)
        text = f"{name} {b['mean'] - a['mean']:+.2f}"
        (moved if abs(b["mean"] - a["mean"]) > a["std"] + b["std"] else ties).append(text)
        best = ends["mean"].idxmax()
        if best != last:
            seeds = ends.loc[best, "seeds"]
            peaks.append(f"{name} at {best:,} ({ends.loc[best, 'mean']:.2f}%, {seeds:g} seed{'' if seeds == 1 else 's'})")
    lead = {s: budget[budget["steps"] == s].sort_values("mean").iloc[-1] for s in (first, last)}
    leader = {s: f"{_label(r['method'], r['setting'], chosen=False)}, {r['mean']:.2f}%" for s, r in lead.items()}
    return (f"From {first:,} to {last:,} steps: "
            + (f"beyond the seeds' spread, {'; '.join(moved)}" if moved else "no line moves beyond its seeds' spread")
            + (f"; inside it (a tie), {'; '.join(ties)}" if ties else "") + " points. "
            + (f"Peaking before the most steps: {'; '.join(peaks)}. " if peaks else "")
            + f"Highest at {first:,} steps: {leader[first]}; at {last:,}: {leader[last]}.")
