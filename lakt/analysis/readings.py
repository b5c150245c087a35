"""The sentences of the experiment chapters, computed from their tables.

A reading never says more than its table: a difference inside the seeds' spread is
called a tie, counts are "k of n", and every number is taken from the table passed in
(:mod:`lakt.analysis.report` builds them from the run cache).
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from .palette import SHORT_NAMES
from .report import _means, paper_robustness_table

def differences_reading(diff: pd.DataFrame) -> str:
    """Markdown: for each row of :func:`paired_differences`, where it is above, below or tied with zero.

    A difference is a tie when its mean is inside the seeds' spread (|mean| ≤ std over
    seeds; with three seeds, about a 1.7-sigma paired t-statistic: a screen, not a test),
    so a mean of +0.01 is never counted as a win.
    """
    means, stds = diff["mean"].astype(float), diff["std"].astype(float)
    lines = []
    for row in means.index:
        m = means.loc[row].dropna()
        up, down, tie = _outcomes(m, stds.loc[row, m.index])
        lines.append(f"- **{row}:** mean {m.mean():+.2f} points over {len(m)} sizes; above zero beyond the seeds' "
                     f"spread at {up}, below at {down}, a tie (inside the spread) at {tie}.")
    return "\n".join(lines)


def _outcomes(diff: pd.Series, spread) -> tuple[int, int, int]:
    """(wins, losses, ties) of differences: a tie is |diff| ≤ spread (NaN spread: no seeds to tell; 0 is a tie)."""
    spread = pd.Series(spread, index=diff.index, dtype=float) if not isinstance(spread, pd.Series) else spread
    known = spread.notna()
    beyond = diff.abs() > spread.where(known, 0.0)
    up = int(((diff > 0) & beyond).sum())
    down = int(((diff < 0) & beyond).sum())
    return up, down, int(len(diff) - up - down)


def term_balance_reading(act_first: pd.DataFrame, jac_last: pd.DataFrame) -> str:
    """Markdown: how large the activation term starts, and whether the Jacobian term moved.

    ``act_first``: :func:`loss_terms` (``"act"``, epoch 0); ``jac_last``:
    :func:`loss_terms` (``"jac"``, last epoch), normalised form. Rows trained with
    both terms are compared with the rows trained with the Jacobian term and CE only.
    """
    lines = [f"- The activation term starts between {act_first.min().min():.0f} and {act_first.max().max():.0f} "
             "(squared logit error summed over the outputs); the normalised Jacobian term can never exceed 4."]
    with_act = [m for m in jac_last.index if m in act_first.index]
    if with_act:
        gap = (jac_last.loc[with_act] - 2).abs().max().max()
        names = ", ".join(SHORT_NAMES.get(m, m) for m in with_act)
        lines.append(f"- Trained next to the activation term ({names}), the Jacobian term ends within {gap:.2f} of 2 "
                     "at every size -- the value of two unrelated directions.")
    alone = [m for m in jac_last.index if m not in act_first.index]
    for m in alone:
        row = jac_last.loc[m]
        lines.append(f"- Trained next to CE only ({SHORT_NAMES.get(m, m)}), it ends at {row.min():.2f} at "
                     f"{row.idxmin():g} per class (and {row.max():.2f} at {row.idxmax():g}).")
    return "\n".join(lines)


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


def _tally(f: pd.Series, key: str) -> tuple[int, int, int]:
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
    difference inside the seeds' spread is a tie, not a win.
    """
    f, g_all = transfer_findings(ours, low), transfer_findings(paper, low)
    shared = [c for c in _means(paper).columns if c in set(_means(ours).columns)]
    # at <= low, ask the paper the same question at the sizes we ran (when there are any)
    g = transfer_findings(paper[[col for col in paper.columns if col in shared]] if shared else paper, low)
    sizes = ", ".join(f"{c:g}" for c in (shared if shared else _means(paper).columns) if c <= low)
    seeds = ("a difference inside the seeds' spread counts as a tie" if _has_seeds(ours)
             else "one seed: no spread to tell a tie from a win, so every difference counts")
    lines = [f"*(paper figures at ≤{low} per class are taken at the sizes we ran: {sizes}; {seeds})*"]
    words = {"holds": "yes", "does not hold": "no", "partly": "mixed"}
    key = "distillation beats CE (cells ≤ low)"
    if key in f:
        wins, losses, ties = _tally(f, key)
        answer = words.get(verdict(wins, losses, ties), "n/a")
        lines.append(f"- **(a) Does distillation beat CE at ≤{low} examples per class?** Ours: **{answer}** — "
                     f"a distillation method beats CE in {f[key]} method–size cells ({losses} worse, {ties} ties), "
                     f"mean gain {f['mean gain over CE (points, ≤ low)']:+.2f} points. Paper: {g.get(key, 'n/a')} "
                     f"cells, {g.get('mean gain over CE (points, ≤ low)', float('nan')):+.2f} points.")
    for a, b in (("act+jac", "act"), ("act+jac+ce", "act+ce")):
        k, d = f"{SHORT_NAMES[a]} beats {SHORT_NAMES[b]} (sizes ≤ low)", f"{SHORT_NAMES[a]} − {SHORT_NAMES[b]} (points, ≤ low)"
        if k not in f:
            continue
        wins, losses, ties = _tally(f, k)
        lines.append(f"- **(b) {SHORT_NAMES[a]} vs {SHORT_NAMES[b]} at ≤{low} per class:** ours higher at {f[k]} sizes, "
                     f"lower at {losses}, tied at {ties} (mean {f[d]:+.2f} points). Paper: higher at "
                     f"{g.get(k, 'n/a')} sizes, {g.get(d, float('nan')):+.2f} points.")
    k, d = f"{SHORT_NAMES['act+jac']} beats {SHORT_NAMES['act']} (sizes > low)", f"{SHORT_NAMES['act+jac']} − {SHORT_NAMES['act']} (points, > low)"
    g = g_all
    if k in f:
        wins, losses, ties = _tally(f, k)
        lines.append(f"- **(b) with more data (>{low} per class):** Act+Jac beats Act at {f[k]} sizes, lower at "
                     f"{losses}, tied at {ties} (mean {f[d]:+.2f}); paper: {g.get(k, 'n/a')} ({g.get(d, float('nan')):+.2f}).")
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
