"""The sentences of the experiment chapters, computed from their tables.

A reading never says more than its table: a difference inside the seeds' spread is
called a tie, counts are "k of n", and every number is taken from the table passed in
(:mod:`lakt.analysis.report` builds them from the run cache).
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from .report import _SHORT, _means, paper_robustness_table

def differences_reading(diff: pd.DataFrame) -> str:
    """Markdown: for each row of :func:`paired_differences`, how often it wins and whether beyond the seeds' spread.

    A difference counts as clear when its mean is larger than its std over seeds
    (with three seeds, about a 1.7-sigma paired t-statistic; a screen, not a test).
    """
    means, stds = diff["mean"].astype(float), diff["std"].astype(float)
    lines = []
    for row in means.index:
        m, s = means.loc[row].dropna(), stds.loc[row]
        above = m > 0
        clear_up = int(((m > 0) & (m.abs() > s[m.index])).sum())
        clear_down = int(((m < 0) & (m.abs() > s[m.index])).sum())
        lines.append(f"- **{row}:** positive at {int(above.sum())} of {len(m)} sizes, mean {m.mean():+.2f} points; "
                     f"clearly above zero (mean > seed std) at {clear_up}, clearly below at {clear_down}.")
    return "\n".join(lines)


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
        names = ", ".join(_SHORT.get(m, m) for m in with_act)
        lines.append(f"- Trained next to the activation term ({names}), the Jacobian term ends within {gap:.2f} of 2 "
                     "at every size -- the value of two unrelated directions.")
    alone = [m for m in jac_last.index if m not in act_first.index]
    for m in alone:
        row = jac_last.loc[m]
        lines.append(f"- Trained next to CE only ({_SHORT.get(m, m)}), it ends at {row.min():.2f} at "
                     f"{row.idxmin():g} per class (and {row.max():.2f} at {row.idxmax():g}).")
    return "\n".join(lines)


def _count(series) -> str:
    return f"{int((series > 0).sum())} of {int(series.notna().sum())}"


def transfer_findings(table: pd.DataFrame, low: int = 100) -> pd.Series:
    """The paper's Table 1/2 claims, measured on one table (ours or the paper's).

    * distillation vs CE at ≤ ``low`` examples per class: in how many (method, size)
      cells a distillation method beats CE, and the mean gain;
    * Act+Jac vs Act (and Act+Jac+CE vs Act+CE) at ≤ ``low``: sizes won, mean difference;
    * the same Jacobian comparison above ``low`` (the paper: not matching Jacobians
      is often better with much data).
    Differences are in accuracy points; ``nan`` where the table lacks the rows or sizes.
    """
    means = _means(table)
    small = [c for c in means.columns if c <= low]
    large = [c for c in means.columns if c > low]
    out = {}
    distil = [m for m in means.index if m != "ce"]
    if "ce" in means.index and distil and small:
        gain = means.loc[distil, small].sub(means.loc["ce", small], axis=1).stack()
        out["distillation beats CE (cells ≤ low)"] = _count(gain)
        out["mean gain over CE (points, ≤ low)"] = gain.mean()
    for a, b in (("act+jac", "act"), ("act+jac+ce", "act+ce")):
        for cols, where in ((small, "≤ low"), (large, "> low")):
            if a in means.index and b in means.index and cols:
                diff = means.loc[a, cols] - means.loc[b, cols]
                out[f"{_SHORT[a]} beats {_SHORT[b]} (sizes {where})"] = _count(diff)
                out[f"{_SHORT[a]} − {_SHORT[b]} (points, {where})"] = diff.mean()
    return pd.Series(out, dtype=object)


def _within_noise(table: pd.DataFrame, a: str, b: str, cols) -> str | None:
    """How many of the a − b differences are smaller than their combined seed std."""
    if not (isinstance(table.columns, pd.MultiIndex) and "std" in table.columns.get_level_values(0)):
        return None
    std = table["std"].astype(float)
    if a not in std.index or b not in std.index or std.loc[[a, b], cols].isna().any().any():
        return None
    diff = (_means(table).loc[a, cols] - _means(table).loc[b, cols]).abs()
    noise = np.sqrt(std.loc[a, cols] ** 2 + std.loc[b, cols] ** 2)
    return f"{int((diff < noise).sum())} of {len(cols)}"


def transfer_reading(ours: pd.DataFrame, paper: pd.DataFrame, low: int = 100) -> str:
    """A few Markdown sentences answering the chapter's questions from ``ours`` and ``paper``.

    Every number and verdict is computed here from the tables (see
    :func:`transfer_findings`), so the prose cannot drift from the results.
    """
    f, g_all = transfer_findings(ours, low), transfer_findings(paper, low)
    shared = [c for c in _means(paper).columns if c in set(_means(ours).columns)]
    # at <= low, ask the paper the same question at the sizes we ran (when there are any)
    g = transfer_findings(paper[[col for col in paper.columns if col in shared]] if shared else paper, low)
    sizes = ", ".join(f"{c:g}" for c in (shared if shared else _means(paper).columns) if c <= low)
    lines = [f"*(paper figures at ≤{low} per class are taken at the sizes we ran: {sizes})*"]
    key = "distillation beats CE (cells ≤ low)"
    if key in f:
        wins, cells = (int(v) for v in f[key].split(" of "))
        mean_gain = f["mean gain over CE (points, ≤ low)"]
        verdict = "yes" if 2 * wins > cells and mean_gain > 0 else "no" if wins == 0 or mean_gain <= 0 else "mixed"
        lines.append(f"- **Does distillation beat CE at ≤{low} examples per class?** Ours: **{verdict}** — "
                     f"a distillation method beats CE in {f[key]} method–size cells, mean gain "
                     f"{f['mean gain over CE (points, ≤ low)']:+.2f} points. Paper: {g.get(key, 'n/a')} cells, "
                     f"{g.get('mean gain over CE (points, ≤ low)', float('nan')):+.2f} points.")
    for a, b in (("act+jac", "act"), ("act+jac+ce", "act+ce")):
        k, d = f"{_SHORT[a]} beats {_SHORT[b]} (sizes ≤ low)", f"{_SHORT[a]} − {_SHORT[b]} (points, ≤ low)"
        if k not in f:
            continue
        small = [c for c in _means(ours).columns if c <= low]
        noise = _within_noise(ours, a, b, small)
        noise_text = (f"; {noise} of those differences are smaller than the seeds' spread" if noise
                      else "; with one seed there is no spread to compare against")
        lines.append(f"- **{_SHORT[a]} vs {_SHORT[b]} at ≤{low} per class:** ours higher at {f[k]} sizes "
                     f"(mean {f[d]:+.2f} points{noise_text}). Paper: {g.get(k, 'n/a')} sizes, "
                     f"{g.get(d, float('nan')):+.2f} points.")
    k, d = f"{_SHORT['act+jac']} beats {_SHORT['act']} (sizes > low)", f"{_SHORT['act+jac']} − {_SHORT['act']} (points, > low)"
    g = g_all
    if k in f:
        lines.append(f"- **With more data (>{low} per class):** Act+Jac beats Act at {f[k]} sizes "
                     f"(mean {f[d]:+.2f}); paper: {g.get(k, 'n/a')} ({g.get(d, float('nan')):+.2f}).")
    elif k in g:
        lines.append(f"- **With more data (>{low} per class):** our sizes stop at {low}; the paper's Act+Jac "
                     f"beats Act at {g[k]} of its larger sizes ({g[d]:+.2f} points).")
    return "\n".join(lines)


def robustness_findings(table: pd.DataFrame) -> pd.DataFrame:
    """Per penalty: clean accuracy, accuracy at the largest σ, and the drop between them (points)."""
    means = _means(table)
    lo, hi = min(means.columns), max(means.columns)
    out = pd.DataFrame({"clean": means[lo], f"at σ={hi:g}": means[hi], "drop": means[lo] - means[hi]})
    out.index.name = "penalty"
    return out


def robustness_reading(ours: pd.DataFrame, paper: pd.DataFrame) -> str:
    """Markdown sentences: does a larger Jacobian penalty flatten the accuracy-vs-σ curve? At what cost?

    Measured on both tables as the drop from σ = 0 to the largest σ; "flattens" is
    the rank correlation between penalty and drop (−1: every larger penalty drops less).
    """
    lines = []
    for name, t in (("Ours", ours), ("Paper", paper)):
        if not isinstance(t.columns, pd.MultiIndex):
            t = paper_robustness_table(t)
        f = robustness_findings(t)
        hi = f.columns[1]
        if len(f) < 2:
            lines.append(f"- **{name}:** one penalty only; nothing to compare.")
            continue
        rho = pd.Series(f.index, index=f.index).rank().corr(f["drop"].rank())
        first, last = f.iloc[0], f.iloc[-1]
        flattens = "yes" if rho < 0 and last["drop"] < first["drop"] else "no"
        monotone = "strictly" if f["drop"].is_monotonic_decreasing and f["drop"].is_unique else "not strictly"
        lines.append(f"- **{name}: does a larger penalty flatten the curve? {flattens}.** From σ=0 to {hi[3:]}, "
                     f"penalty {f.index[0]:g} loses {first['drop']:.2f} points and penalty {f.index[-1]:g} loses "
                     f"{last['drop']:.2f} (rank correlation penalty↔drop {rho:+.2f}; {monotone} decreasing). "
                     f"Clean accuracy moves {last['clean'] - first['clean']:+.2f} points.")
    return "\n".join(lines)
