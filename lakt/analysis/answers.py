"""The paper's four questions, answered from the runs.

Each question is a set of comparisons "A − B" between two (method, setting) rows:

* (a) does any distillation beat CE at ≤ 100 examples per class -- every distillation
  method at its validation-chosen setting (:func:`lakt.analysis.answers.choose`; the
  paper's methods without a knob as they are) minus CE;
* (b) does Act+Jac beat Act there -- as the paper specifies it (γ = 1, every constant 1)
  and at the validation-chosen γ, with and without CE (Act+Jac+CE − Act+CE);
* (d) does squared-error distillation beat Hinton KD, as the paper says it "worked much
  better" -- Act and Act+CE against KD at its validation-chosen T and α.

* (c) is a net trained with a Jacobian-norm penalty more accurate under input noise
  (Table 3: "higher regularization strengths is better for robustness, even when the
  initial accuracy at the zero-noise case is lower") -- each penalty λ > 0 against λ = 0,
  per noise level σ > 0, the accuracy itself (:func:`noise_gain`); beside it, as
  "(c, flatter)", whether the curve is flatter: the points the unpenalised net loses from
  σ = 0 to σ minus the points the penalised one loses (:func:`flattening`). A net that
  collapses to a constant output is perfectly flat and useless, so flatness alone does not
  answer (c).

A comparison is **paired by seed**: for one seed both runs trained on the same nested
subset (for (c): the same training images) from the same initialisation, so per (cell,
seed) the difference removes what the two share, and its mean ± std over seeds is the
measurement; a cell is a size for (a), (b), (d) and a noise level for (c). A cell counts
as a win (or loss) only when |mean| exceeds that std -- inside the spread it is a tie,
never a win -- and a cell with fewer than two seeds has no spread, so it is not called. The word per comparison is :func:`lakt.analysis.answers.verdict`'s (*holds*: wins
at half the sizes or more and loses none), given only once every size is called -- a
half-finished sweep answers nothing rather than answering from its first sizes.

Input: for (a), (b), (d) a table like :func:`lakt.runs.cache.collect`'s (one row per
finished student, with ``val_acc``), e.g. the ``cifar10-cpu-v2`` runs; for (c) the noise
curves of the finished robust runs (:func:`noise_curves`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import require
from .palette import SHORT_NAMES
from .report import _means, paper_robustness_table

QUESTIONS = {
    "a": "Does any distillation beat CE at ≤ 100 examples per class?",
    "b": "Does Act+Jac beat Act at ≤ 100 examples per class (as specified, and at the validation-chosen γ)?",
    "c": "Is a net trained with a Jacobian-norm penalty more accurate under input noise (Table 3)?",
    "c, flatter": "Does the penalty flatten the accuracy-vs-noise curve (fewer points lost as σ grows)?",
    "d": "Does squared-error distillation beat Hinton KD, as the paper says?",
}


def _label(method: str, setting: str, chosen: bool) -> str:
    name = SHORT_NAMES.get(method, method)
    if not setting:
        return name
    return f"{name} ({setting}{', chosen' if chosen else ''})"


def comparisons(table: pd.DataFrame, max_size: int = 100) -> list[tuple[str, tuple, tuple]]:
    """The (question, (method A, setting A), (method B, setting B)) pairs the table has runs for."""
    students = with_settings(table)
    have = set(students["method"])
    picks = choose(table, max_size)["setting"].to_dict()

    def pick(method):
        return (method, picks.get(method, ""))

    out = []
    for method in [m for m in dict.fromkeys(students["method"]) if m != "ce"]:
        if "ce" in have:
            out.append(("a", pick(method), ("ce", "")))
    for jac, base in (("act+jac", "act"), ("act+jac+ce", "act+ce")):
        if jac in have and base in have:
            specified = (jac, "γ=1")
            out.append(("b", specified, (base, "")))
            if pick(jac) != specified:
                out.append(("b", pick(jac), (base, "")))
    if "kd" in have:
        for squared in ("act", "act+ce"):
            if squared in have:
                out.append(("d", (squared, ""), pick("kd")))
    return out


def paired(table: pd.DataFrame, a: tuple, b: tuple, max_size: int = 100) -> pd.DataFrame:
    """A − B per size ≤ ``max_size``, paired by seed: columns mean, std, seeds, outcome (index n_per_class)."""
    students = with_settings(table)
    students = students[students["n_per_class"] <= max_size]

    def acc(method, setting):
        rows = students[(students["method"] == method) & (students["setting"] == setting)]
        return rows.set_index(["n_per_class", "seed"])["test_acc"]

    return _per_cell((acc(*a) - acc(*b)).dropna(), "n_per_class")


def _per_cell(diff: pd.Series, cell: str) -> pd.DataFrame:
    """A difference indexed (cell, seed) -> per cell: mean, std and number of seeds, and the outcome."""
    rows = []
    for key, d in diff.groupby(level=cell):
        mean, std, seeds = d.mean(), d.std(ddof=1), len(d)
        if seeds < 2:
            outcome = "no spread"
        else:
            outcome = "tie" if abs(mean) <= std else ("win" if mean > 0 else "loss")
        rows.append({cell: key, "mean": mean, "std": std, "seeds": seeds, "outcome": outcome})
    return pd.DataFrame(rows, columns=[cell, "mean", "std", "seeds", "outcome"]).set_index(cell)


def comparison_row(table: pd.DataFrame, a: tuple, b: tuple, max_size: int = 100) -> dict:
    """One comparison A − B as a row: mean ± std per size, seeds, the tally and the word.

    Keys: one per size (text "mean ± std", just the mean with one seed), ``seeds`` (the
    number of seeds, or "k–m" when sizes differ), ``wins``, ``losses``, ``ties``,
    ``uncalled`` (sizes with one seed), ``mean`` (over sizes) and ``verdict`` (*not
    testable here* while any size is uncalled).
    """
    return _tally(paired(table, a, b, max_size), int)


def _tally(d: pd.DataFrame, key=int) -> dict:
    """:func:`_per_cell`'s frame as one row: text per cell (keyed ``key(cell)``), seeds, counts, word."""
    row = {}
    for cell, r in d.iterrows():
        row[key(cell)] = f"{r['mean']:+.2f}" + (f" ± {r['std']:.2f}" if r["seeds"] > 1 else "")
    seeds = sorted(set(d["seeds"].astype(int)))
    counts = d["outcome"].value_counts()
    wins, losses, ties = (int(counts.get(k, 0)) for k in ("win", "loss", "tie"))
    row.update(seeds=f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}", wins=wins, losses=losses,
               ties=ties, uncalled=int(counts.get("no spread", 0)), mean=d["mean"].mean(),
               verdict=verdict(wins, losses, ties) if "no spread" not in counts else "not testable here")
    return row


def noise_curves(configs, results) -> pd.DataFrame:
    """Accuracy under input noise of each finished robust run: columns penalty, seed, sigma, acc.

    ``acc`` is the run's mean over its noise draws at that σ (one value at σ = 0, where
    nothing is drawn). Reads ``results`` only.
    """
    from ..runs import finished

    rows = [{"penalty": c.penalty, "seed": c.seed, "sigma": r["sigma"], "acc": r["mean"]}
            for c, m in finished([c for c in configs if c.kind == "robust"], results) for r in m["noise"]]
    require(rows, "no finished robust runs among these configs; run them with `lakt sweep --preset PRESET`")
    return pd.DataFrame(rows)


def flattening(curves: pd.DataFrame, penalty: float, baseline: float = 0.0) -> pd.DataFrame:
    """(c) for one penalty, per σ > 0, paired by seed: points lost from σ = 0 at ``baseline`` minus at ``penalty``.

    Positive: the penalised net loses fewer points as the noise grows -- a flatter curve,
    which is what Proposition 2 predicts and Table 3 reports. Columns of :func:`paired`,
    index ``sigma``.
    """
    gain = _gain(curves, penalty, baseline)  # per (σ, seed); fewer lost = the gain at σ minus the gain at σ = 0
    clean = min(curves["sigma"])
    fewer = gain.drop(index=clean, level="sigma").sub(gain.xs(clean, level="sigma"), level="seed")
    return _per_cell(fewer.dropna(), "sigma")


def noise_gain(curves: pd.DataFrame, penalty: float, baseline: float = 0.0) -> pd.DataFrame:
    """(c) for one penalty, per σ > 0, paired by seed: accuracy at ``penalty`` minus at ``baseline`` (points).

    Positive: the penalised net is more accurate under that much noise -- Table 3's
    "better for robustness". Columns of :func:`paired`, index ``sigma``.
    """
    gain = _gain(curves, penalty, baseline)
    return _per_cell(gain.drop(index=min(curves["sigma"]), level="sigma").dropna(), "sigma")


def _gain(curves: pd.DataFrame, penalty: float, baseline: float) -> pd.Series:
    """Accuracy at ``penalty`` minus at ``baseline``, indexed (σ, seed), σ = 0 included."""
    acc = curves.set_index(["penalty", "sigma", "seed"])["acc"]
    return acc.xs(penalty, level="penalty") - acc.xs(baseline, level="penalty")


def noise_table(curves: pd.DataFrame, baseline: float = 0.0) -> pd.DataFrame:
    """Question (c) as rows like :func:`answer_table`'s, columns "σ=…": per penalty λ ≠ ``baseline``,
    "(c)" its accuracy under noise (:func:`noise_gain`) and "(c, flatter)" its flattening
    (:func:`flattening`)."""
    rows = []
    for question, measure in (("(c)", noise_gain), ("(c, flatter)", flattening)):
        for lam in sorted(set(curves["penalty"]) - {baseline}):
            row = _tally(measure(curves, lam, baseline), key=lambda s: f"σ={s:g}")
            rows.append({"question": question, "comparison": f"λ={lam:g} − λ={baseline:g}", **row})
    require(rows, f"the noise curves need a penalty besides {baseline:g} to compare with it")
    frame = pd.DataFrame(rows).set_index(["question", "comparison"])
    cells = [c for c in frame.columns if str(c).startswith("σ=")]
    return frame[cells + ["seeds", "wins", "losses", "ties", "uncalled", "mean", "verdict"]]


def answer_table(table: pd.DataFrame, max_size: int = 100) -> pd.DataFrame:
    """One row per comparison of :func:`comparisons`: index (question, "A − B"), columns of :func:`comparison_row`."""
    picks = choose(table, max_size)
    tuned = {m: s for m, s, n in zip(picks.index, picks["setting"], picks["values"]) if n > 1}
    rows = []
    for question, a, b in comparisons(table, max_size):
        label = f"{_label(*a, chosen=tuned.get(a[0]) == a[1])} − {_label(*b, chosen=tuned.get(b[0]) == b[1])}"
        rows.append({"question": f"({question})", "comparison": label, **comparison_row(table, a, b, max_size)})
    require(rows, "no comparison has runs on both sides: the table needs CE, Act, Act+Jac or KD students")
    frame = pd.DataFrame(rows).set_index(["question", "comparison"])
    sizes = sorted(c for c in frame.columns if isinstance(c, int))
    return frame[sizes + ["seeds", "wins", "losses", "ties", "uncalled", "mean", "verdict"]]


def shown(answers: pd.DataFrame) -> pd.DataFrame:
    """The table for a page: the size columns, seeds, "wins–losses–ties" and the word."""
    sizes = [c for c in answers.columns if isinstance(c, int) or str(c).startswith("σ=")]
    tally = [f"{w}–{l}–{t}" for w, l, t in zip(answers["wins"], answers["losses"], answers["ties"])]
    return answers[sizes + ["seeds"]].assign(**{"won–lost–tied": tally, "verdict": answers["verdict"]})


def summary(answers: pd.DataFrame) -> pd.DataFrame:
    """Per question: how many comparisons hold, partly hold or do not, and one word.

    (a) and (d) ask whether *any* listed method wins, so the word is *holds* when one
    comparison holds; (b) asks it of Act+Jac in every form and (c) of every penalty
    strength (as Table 3's reading does), so they hold only when all do, and are *partly*
    when some do.
    """
    out = []
    for question, rows in answers.groupby(level="question", sort=False):
        words = rows["verdict"]
        called = words[words != "not testable here"]
        counts = {w: int((called == w).sum()) for w in ("holds", "partly", "does not hold")}
        if called.empty:
            word = "not testable here"
        elif question in ("(b)", "(c)", "(c, flatter)"):
            word = ("holds" if counts["holds"] == len(called) else
                    "does not hold" if counts["does not hold"] == len(called) else "partly")
        else:
            word = ("holds" if counts["holds"] else "partly" if counts["partly"] else "does not hold")
        out.append({"question": question, "asks": QUESTIONS[question.strip("()")],
                    "comparisons": len(rows), **counts, "not called": len(rows) - len(called), "answer": word})
    return pd.DataFrame(out).set_index("question")

# ---------------------------------------------------------------- selection: one value per tuned knob, chosen on validation
# Hyper-parameters chosen on the validation split, never on the test set.
# 
# Every knob the book tunes -- gamma of the Jacobian term, sigma of noisy-input
# distillation, T and alpha of Hinton KD, beta of attention transfer -- is trained on a
# grid (``cifar10-cpu-v2``) and every run records ``val_acc`` on 5,000 held-out training
# images. Here, per method:
# 
# * :func:`validation_curves` -- mean validation accuracy of each grid value, per size and
#   pooled over the sizes <= ``max_size`` (the chapter plots these);
# * :func:`choose` -- the value with the best pooled mean validation accuracy;
# * :func:`transfer_table` -- Table 1: the paper's methods as specified, then the chosen values.
# 
# One value per method, pooled over the low-data sizes (<= 100 per class, where the
# paper's claims live), rather than one per method and size: it is what a user would
# carry to a new training-set size, each choice then rests on 4 sizes x 3 seeds = 12 runs
# instead of 3 (validation noise of single runs is of the order of the differences
# between neighbouring grid values), and it makes 1/4 as many choices, so less room to
# fit the validation set's noise. Only (size, seed) cells finished at every value of a
# method are compared, so a partly finished sweep never favours the value that has more
# easy cells.
# 
# Input: a table like :func:`lakt.runs.cache.collect`'s, one row per finished student,
# with columns method, n_per_class, seed, val_acc, test_acc and the knob columns
# (:data:`KNOBS`; empty where the knob does not apply to the method).

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

# ---------------------------------------------------------------- readings: sentences and findings computed from the tables
# The sentences of the experiment chapters, computed from their tables.
# 
# A reading never says more than its table: a difference inside the seeds' spread is
# called a tie, counts are "k of n", and every number is taken from the table passed in
# (:mod:`lakt.analysis.report` builds them from the run cache).


def verdict(wins: int, losses: int, ties: int) -> str:
    """One word for a claim "A beats B" measured on several cells: holds / partly / does not hold.

    *holds*: A wins at least half of the cells beyond the spread and loses none;
    *does not hold*: A wins none (ties and losses only -- a tie is no evidence that A is
    better); *partly*: anything between. No cells: *not testable here*.
    """
    n = wins + losses + ties
    if n == 0:
        return "not testable here"
    if losses == 0 and 2 * wins >= n:
        return "holds"
    return "does not hold" if wins == 0 else "partly"


def _spread(table: pd.DataFrame, a: str, b: str, cols) -> pd.Series:
    """The std of a − b from the two rows' stds over seeds (independent runs); NaN without stds."""
    if isinstance(table.columns, pd.MultiIndex) and "std" in table.columns.get_level_values(0):
        std = table["std"].astype(float)
        return np.sqrt(std.loc[a, cols] ** 2 + std.loc[b, cols] ** 2)
    return pd.Series(np.nan, index=pd.Index(cols))


def _outcomes(diff: pd.Series, spread) -> tuple[int, int, int]:
    """(wins, losses, ties) of differences: a tie is |diff| ≤ spread (NaN spread: no seeds to tell; 0 is a tie)."""
    spread = pd.Series(spread, index=diff.index, dtype=float) if not isinstance(spread, pd.Series) else spread
    known = spread.notna()
    beyond = diff.abs() > spread.where(known, 0.0)
    up = int(((diff > 0) & beyond).sum())
    down = int(((diff < 0) & beyond).sum())
    return up, down, int(len(diff) - up - down)


def _record(out: dict, key: str, diff: pd.Series, spread: pd.Series) -> None:
    up, down, tie = _outcomes(diff, spread.reindex(diff.index))
    out[key] = f"{up} of {len(diff)}"
    out[key + " [losses, ties]"] = (down, tie)


def transfer_findings(table: pd.DataFrame, low: int = 100) -> pd.Series:
    """The paper's Table 1/2 claims, measured on one table (ours or the paper's).

    * (a) distillation vs CE at ≤ ``low`` examples per class: in how many (method, size)
      cells a distillation method beats CE, and the mean gain;
    * (b) Act+Jac vs Act (and Act+Jac+CE vs Act+CE) at ≤ ``low``: sizes won, mean difference;
    * the same Jacobian comparison above ``low`` (the paper: not matching Jacobians
      is often better with much data).
    A cell counts as a win only when the difference exceeds its spread over seeds
    (the two rows' stds combined; :func:`_outcomes`); the ``[losses, ties]`` entries
    hold the rest. Differences are in accuracy points; absent where the table lacks
    the rows or sizes.
    """
    means = _means(table)
    small = [c for c in means.columns if c <= low]
    large = [c for c in means.columns if c > low]
    out = {}
    distil = [m for m in means.index if m != "ce"]
    if "ce" in means.index and distil and small:
        gain = means.loc[distil, small].sub(means.loc["ce", small], axis=1).stack()
        spread = pd.concat({m: _spread(table, m, "ce", small) for m in distil}).reindex(gain.index)
        _record(out, "distillation beats CE (cells ≤ low)", gain, spread)
        out["mean gain over CE (points, ≤ low)"] = gain.mean()
    for a, b in (("act+jac", "act"), ("act+jac+ce", "act+ce")):
        for cols, where in ((small, "≤ low"), (large, "> low")):
            if a in means.index and b in means.index and cols:
                diff = means.loc[a, cols] - means.loc[b, cols]
                _record(out, f"{SHORT_NAMES[a]} beats {SHORT_NAMES[b]} (sizes {where})", diff, _spread(table, a, b, cols))
                out[f"{SHORT_NAMES[a]} − {SHORT_NAMES[b]} (points, {where})"] = diff.mean()
    return pd.Series(out, dtype=object)


def _wins_losses_ties(f: pd.Series, key: str) -> tuple[int, int, int]:
    wins = int(f[key].split(" of ")[0])
    losses, ties = f[key + " [losses, ties]"]
    return wins, losses, ties


def _has_seeds(table: pd.DataFrame) -> bool:
    return (isinstance(table.columns, pd.MultiIndex) and "std" in table.columns.get_level_values(0)
            and table["std"].astype(float).notna().any().any())


def transfer_reading(ours: pd.DataFrame, paper: pd.DataFrame, low: int = 100) -> str:
    """A few Markdown sentences answering the chapter's questions (a) and (b) from ``ours`` and ``paper``.

    Every number and verdict is computed here from the tables (see
    :func:`transfer_findings`), so the prose cannot drift from the results; a
    difference inside the seeds' spread is a tie, not a win. Given the paper's table as both
    (``ours is paper``), the sentences read the paper's own numbers, named as the paper's.
    """
    alone = ours is paper
    who = "The paper" if alone else "Ours"
    f, g_all = transfer_findings(ours, low), transfer_findings(paper, low)
    shared = [c for c in _means(paper).columns if c in set(_means(ours).columns)]
    # at <= low, ask the paper the same question at the sizes we ran (when there are any)
    g = transfer_findings(paper[[col for col in paper.columns if col in shared]] if shared else paper, low)
    sizes = ", ".join(f"{c:g}" for c in (shared if shared else _means(paper).columns) if c <= low)
    seeds = ("a difference inside the seeds' spread counts as a tie" if _has_seeds(ours)
             else "one seed: no spread to tell a tie from a win, so every difference counts")
    lines = [] if alone else [f"*(paper figures at ≤{low} per class are taken at the sizes we ran: {sizes}; {seeds})*"]
    words = {"holds": "yes", "does not hold": "no", "partly": "mixed"}
    key = "distillation beats CE (cells ≤ low)"
    if key in f:
        wins, losses, ties = _wins_losses_ties(f, key)
        answer = words.get(verdict(wins, losses, ties), "n/a")
        lines.append(f"- **(a) Does distillation beat CE at ≤{low} examples per class?** {who}: **{answer}** — "
                     f"a distillation method beats CE in {f[key]} method–size cells ({losses} worse, {ties} ties), "
                     f"mean gain {f['mean gain over CE (points, ≤ low)']:+.2f} points."
                     + ("" if alone else f" Paper: {g.get(key, 'n/a')} cells, "
                        f"{g.get('mean gain over CE (points, ≤ low)', float('nan')):+.2f} points."))
    for a, b in (("act+jac", "act"), ("act+jac+ce", "act+ce")):
        k, d = f"{SHORT_NAMES[a]} beats {SHORT_NAMES[b]} (sizes ≤ low)", f"{SHORT_NAMES[a]} − {SHORT_NAMES[b]} (points, ≤ low)"
        if k not in f:
            continue
        wins, losses, ties = _wins_losses_ties(f, k)
        lines.append(f"- **(b) {SHORT_NAMES[a]} vs {SHORT_NAMES[b]} at ≤{low} per class:** {who.lower()} higher at {f[k]} "
                     f"sizes, lower at {losses}, tied at {ties} (mean {f[d]:+.2f} points)."
                     + ("" if alone else f" Paper: higher at {g.get(k, 'n/a')} sizes, {g.get(d, float('nan')):+.2f} points."))
    k, d = f"{SHORT_NAMES['act+jac']} beats {SHORT_NAMES['act']} (sizes > low)", f"{SHORT_NAMES['act+jac']} − {SHORT_NAMES['act']} (points, > low)"
    g = g_all
    if k in f:
        wins, losses, ties = _wins_losses_ties(f, k)
        lines.append(f"- **(b) with more data (>{low} per class):** Act+Jac beats Act at {f[k]} sizes, lower at "
                     f"{losses}, tied at {ties} (mean {f[d]:+.2f})"
                     + ("." if alone else f"; paper: {g.get(k, 'n/a')} ({g.get(d, float('nan')):+.2f})."))
    elif k in g:
        lines.append(f"- **(b) with more data (>{low} per class):** our sizes stop at {low}; the paper's Act+Jac "
                     f"beats Act at {g[k]} of its larger sizes ({g[d]:+.2f} points).")
    return "\n".join(lines)


def robustness_findings(table: pd.DataFrame) -> pd.DataFrame:
    """Per penalty: clean accuracy, accuracy at the largest σ, and the drop between them (points)."""
    means = _means(table)
    lo, hi = min(means.columns), max(means.columns)
    out = pd.DataFrame({"clean": means[lo], f"at σ={hi:g}": means[hi], "drop": means[lo] - means[hi]})
    out.index.name = "penalty"
    return out


def robustness_verdict(table: pd.DataFrame) -> tuple[str, dict]:
    """(c) Does a larger Jacobian penalty flatten the accuracy-vs-σ curve? One word and its numbers.

    The drop from σ = 0 to the largest σ of the largest penalty against the
    smallest's: *holds* when the larger penalty drops less by more than the two drops'
    combined std (a tie otherwise) and the rank correlation penalty↔drop is negative,
    *partly* when it drops less beyond the spread but the penalties in between do not
    line up, *does not hold* otherwise.
    """
    if not isinstance(table.columns, pd.MultiIndex):
        table = paper_robustness_table(table)
    f = robustness_findings(table)
    if len(f) < 2:
        return "not testable here", {"findings": f}
    std = table["std"].astype(float).fillna(0.0)
    lo, hi = min(table["mean"].columns), max(table["mean"].columns)
    spread_drop = np.sqrt(std[lo] ** 2 + std[hi] ** 2)
    first, last = f.index[0], f.index[-1]
    gap = f.loc[first, "drop"] - f.loc[last, "drop"]
    spread = float(np.sqrt(spread_drop[first] ** 2 + spread_drop[last] ** 2))
    rho = pd.Series(f.index, index=f.index).rank().corr(f["drop"].rank())
    if gap > spread and rho < 0:
        word = "holds" if f["drop"].is_monotonic_decreasing else "partly"
    else:
        word = "does not hold"
    return word, {"findings": f, "gap": gap, "spread": spread, "rho": rho, "tie": abs(gap) <= spread}


def robustness_reading(ours: pd.DataFrame, paper: pd.DataFrame) -> str:
    """Markdown sentences for question (c): does a larger Jacobian penalty flatten the curve? At what cost?

    Measured on both tables as the drop from σ = 0 to the largest σ (:func:`robustness_verdict`);
    a difference in drops inside their spread is a tie, not a flattening.
    """
    lines = []
    words = {"holds": "yes", "partly": "partly", "does not hold": "no"}
    for name, t in (("Ours", ours), ("Paper", paper)):
        word, n = robustness_verdict(t)
        f = n["findings"]
        if len(f) < 2:
            lines.append(f"- **{name}:** one penalty only; nothing to compare.")
            continue
        first, last = f.iloc[0], f.iloc[-1]
        hi = f.columns[1]
        tie = " — inside the spread, a tie" if n["tie"] else ""
        monotone = "strictly" if f["drop"].is_monotonic_decreasing and f["drop"].is_unique else "not strictly"
        lines.append(f"- **(c) {name}: does a larger penalty flatten the curve? {words[word]}.** From σ=0 to {hi[3:]}, "
                     f"penalty {f.index[0]:g} loses {first['drop']:.2f} points and penalty {f.index[-1]:g} loses "
                     f"{last['drop']:.2f} (difference {n['gap']:+.2f} ± {n['spread']:.2f}{tie}; rank correlation "
                     f"penalty↔drop {n['rho']:+.2f}; {monotone} decreasing). "
                     f"Clean accuracy moves {last['clean'] - first['clean']:+.2f} points.")
    return "\n".join(lines)
