"""The figures of the experiment chapters (3-5), drawn from :mod:`lakt.analysis.report`'s tables,
in :mod:`lakt.analysis.palette`'s colours."""
from __future__ import annotations

import textwrap

import pandas as pd

from .palette import BOOK_WIDTH, SHORT_NAMES, book_style, method_color, method_label, penalty_colors  # noqa: F401
from .report import _means, paper_robustness_table

def _method_colors(methods) -> dict:
    return {m: method_color(m) for m in methods}


def _palette(name, n):
    import seaborn as sns

    return sns.color_palette(name, max(n, 1))


def _log_x(ax, ticks):
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(list(ticks)))
    ax.xaxis.set_minor_locator(NullLocator())
    crowded = len(ticks) > 5 and ax.get_figure().get_figwidth() / len(ax.get_figure().axes) < 4.5
    ax.set_xticklabels([f"{t:g}" if not crowded or i % 2 == 0 else "" for i, t in enumerate(ticks)])


def plot_transfer(table: pd.DataFrame, *, paper: pd.DataFrame | None = None, teacher_acc: float | None = None,
                  paper_teacher_acc: float | None = None, title: str = "ours", paper_title: str = "paper",
                  off_budget: dict | None = None):
    """Student accuracy against examples per class (log x), one line per method.

    Error bars are the std over training seeds (none with one seed). With ``paper``,
    a second panel shows the paper's curves in the same colours, so the *shapes*
    can be compared even when the datasets differ. Dashed: the teacher's accuracy.
    ``off_budget``: {size: note} of our sizes trained under another protocol, drawn open and
    joined by a dotted line, with the note beneath the axis.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    panels = [(table, teacher_acc, title)] + ([(paper, paper_teacher_acc, paper_title)] if paper is not None else [])
    methods = list(dict.fromkeys([*table.index, *(paper.index if paper is not None else [])]))
    colors = _method_colors(methods)
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(panels), figsize=(BOOK_WIDTH - 0.6 if len(panels) > 1 else 5.2, 4.9 if off_budget else 4.6),
                                 squeeze=False, sharey=True)
    for ax, (t, teacher, name) in zip(axes[0], panels):
        means = _means(t)
        stds = t["std"].astype(float) if isinstance(t.columns, pd.MultiIndex) else None
        sizes = [float(c) for c in means.columns]
        marked = set(off_budget or {}) if t is table else set()
        on = [i for i, n in enumerate(sizes) if n not in marked]
        for method in means.index:
            y = means.loc[method].to_numpy()
            err = None if stds is None else stds.loc[method].fillna(0).to_numpy()
            ax.errorbar([sizes[i] for i in on], y[on], yerr=None if err is None else err[on], marker="o", ms=4,
                        capsize=3, color=colors[method], label=method_label(method))
            for i in (i for i, n in enumerate(sizes) if n in marked):
                if i > 0:
                    ax.plot([sizes[i - 1], sizes[i]], y[i - 1:i + 1], ls=":", color=colors[method])
                ax.errorbar([sizes[i]], [y[i]], yerr=None if err is None else [err[i]], marker="o", ms=5,
                            mfc="white", capsize=3, color=colors[method])
        if marked:
            ax.set_xlabel("examples per class (log)\n" + "; ".join(f"open, {n:g}: {note}" for n, note in off_budget.items()))
        if teacher is not None:
            ax.axhline(teacher, color="0.35", ls="--", lw=1, label="teacher (VGG-9)")
        _log_x(ax, sizes)
        if not marked:
            ax.set_xlabel("examples per class (log)")
        ax.set_title(name)
    axes[0, 0].set_ylabel("student test accuracy (%)")
    handles, labels = {}, {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    labels = [textwrap.fill(label, 34) for label in handles]   # two columns inside the figure's width
    fig.legend(list(handles.values()), labels, loc="lower center", ncol=2, frameon=False,
               bbox_to_anchor=(0.5, -0.02), fontsize=9)
    fig.tight_layout(rect=(0, (0.2 if len(handles) > 4 else 0.12) + (0.05 if off_budget else 0), 1, 1))
    return fig


def plot_robustness(table, *, paper: pd.DataFrame | None = None, title: str = "ours",
                    paper_title: str = "paper"):
    """Accuracy against input-noise σ, one line per Jacobian-penalty strength (error bars: std).

    A flatter line is a more noise-robust network. ``table``: one robustness table, or a dict of
    them (panel title -> table, e.g. one per penalty form), each its own panel. With ``paper``
    (either :func:`lakt.analysis.report.table3` or :func:`paper_robustness_table`), a last panel
    shows the paper's Table 3; penalties share a colour map across panels.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if paper is not None and not isinstance(paper.columns, pd.MultiIndex):
        paper = paper_robustness_table(paper)
    ours = list(table.items()) if isinstance(table, dict) else [(title, table)]
    panels = [(t, name) for name, t in ours] + ([(paper, paper_title)] if paper is not None else [])
    penalties = sorted(set().union(*(t.index for t, _ in panels)))
    colors = penalty_colors(penalties)
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(panels), figsize=(BOOK_WIDTH if len(panels) > 1 else 5.2, 4.2),
                                 squeeze=False)
    for ax, (t, name) in zip(axes[0], panels):
        means, stds = t["mean"].astype(float), t["std"].astype(float)
        for penalty in means.index:
            ax.errorbar([float(s) for s in means.columns], means.loc[penalty].to_numpy(),
                        yerr=stds.loc[penalty].fillna(0).to_numpy(), marker="o", ms=4, capsize=3,
                        color=colors[penalty], label=f"penalty {penalty:g}")
        ax.set_xlabel("input noise σ")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(name)
    handles = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    rows = -(-len(handles) // 5)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(len(handles), 5), frameon=False,
               title="Jacobian-norm penalty", fontsize=9, title_fontsize=9)   # below the panels, never over a curve
    fig.tight_layout(rect=(0, 0.1 + 0.06 * rows, 1, 1))
    return fig


def plot_validation_curves(curves: pd.DataFrame, chosen: pd.Series | None = None, *, title: str = ""):
    """One panel per tuned method: validation accuracy against the knob's grid value.

    ``curves``: :func:`lakt.analysis.answers.validation_curves` (rows (method, setting),
    a column per size and ``pooled``). Thin lines: each size ≤ 100 per class; thick black:
    the pooled mean that decides; the ring marks ``chosen`` (:func:`answers.choose`'s
    ``setting`` column). Methods with a single setting (no knob) are left out.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    tuned = [m for m in dict.fromkeys(curves.index.get_level_values("method")) if len(curves.loc[m]) > 1]
    sizes = [c for c in curves.columns if isinstance(c, int) and c <= 100]
    cols = min(3, max(1, len(tuned)))
    rows = -(-len(tuned) // cols)
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(rows, cols, figsize=(BOOK_WIDTH - 0.3, 2.6 * rows + 1.2), squeeze=False)
    colors = dict(zip(sizes, _palette("crest", len(sizes))))
    for ax, method in zip(axes.ravel(), tuned):
        curve = curves.loc[method]
        x = range(len(curve))
        for n in sizes:
            ax.plot(x, curve[n], color=colors[n], lw=1, marker=".", label=f"{n} per class")
        ax.plot(x, curve["pooled"], color="black", lw=2.2, marker="o", ms=4, label="pooled (decides)")
        if chosen is not None and method in chosen.index:
            at = list(curve.index).index(chosen[method])
            ax.plot([at], [curve["pooled"].iloc[at]], "o", ms=11, mfc="none", mec="tab:red", mew=2, label="chosen")
        pairs = [[kv.split("=") for kv in setting.split()] for setting in curve.index]  # "T=4 α=0.9" -> knobs, values
        ax.set_xticks(list(x))
        ax.set_xticklabels([", ".join(v for _, v in p) for p in pairs], fontsize=9,
                           rotation=30 if len(curve) > 4 else 0, ha="right" if len(curve) > 4 else "center")
        ax.set_xlabel(", ".join(k for k, _ in pairs[0]))
        ax.set_title(SHORT_NAMES.get(method, method), fontsize=10)
    for ax in axes.ravel()[len(tuned):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("validation accuracy (%)")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), frameon=False, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot_methods_at_size(table: pd.DataFrame, size, method: str, paper: pd.DataFrame | None = None, ax=None):
    """Every method's accuracy at ``size`` examples per class (mean ± std over seeds), ``method`` highlighted.

    ``table``: :func:`lakt.analysis.report.transfer_table`; ``paper``: Table 1/2 (its value drawn
    as a black tick where it has this size).
    """
    import matplotlib.pyplot as plt

    means = _means(table)[size]
    stds = table["std"][size].astype(float).fillna(0) if "std" in table.columns.get_level_values(0) else 0 * means
    labels = [SHORT_NAMES.get(m, m) for m in means.index]
    if ax is None:
        _, ax = plt.subplots(figsize=(BOOK_WIDTH, 0.45 * len(means) + 1.4))
    colors = [method_color(m) if m == method else "0.8" for m in means.index]
    ax.barh(labels, means.to_numpy(), xerr=stds.to_numpy(), color=colors, capsize=3)
    if paper is not None and size in paper.columns:
        on_paper = [i for i, m in enumerate(means.index) if m in paper.index]
        ax.scatter([paper.loc[means.index[i], size] for i in on_paper], on_paper, marker="|", s=300, color="k",
                   label="paper", zorder=3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.invert_yaxis()
    ax.set_xlabel("student test accuracy (%)")
    ax.set_title(f"{size} examples per class: {SHORT_NAMES.get(method, method)} "
                 f"{means[method]:.2f} ± {float(stds[method]):.2f}")
    ax.figure.tight_layout()
    return ax
def plot_penalties_at_sigma(ours: pd.DataFrame, sigma: float, paper: pd.DataFrame | None = None, ax=None):
    """Accuracy per Jacobian-penalty strength at noise ``sigma``: ours (± std) and the paper's Table 3."""
    import matplotlib.pyplot as plt
    import numpy as np

    m = _means(ours)[sigma]
    s = ours["std"][sigma].astype(float).fillna(0)
    if ax is None:
        _, ax = plt.subplots(figsize=(BOOK_WIDTH, 3.6))
    x = np.arange(len(m))
    width = 0.4 if paper is not None else 0.7
    ax.bar(x - (width / 2 if paper is not None else 0), m.to_numpy(), width, yerr=s.to_numpy(), capsize=3,
           color="C0", label="ours")
    if paper is not None:
        p = _means(paper).reindex(index=m.index)
        p = p[sigma] if sigma in p.columns else p.iloc[:, 0] * np.nan
        ax.bar(x + width / 2, p.to_numpy(), width, color="0.6", label="paper (CIFAR-100)")
    ax.set_xticks(x, [f"{v:g}" for v in m.index])
    ax.set_xlabel("Jacobian-norm penalty λ")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"σ = {sigma:g}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)   # beside the bars, never over them
    ax.figure.tight_layout()
    return ax


def plot_budget(table: pd.DataFrame, size: int = 100):
    """Student accuracy against optimiser steps (log x) at one size, one line per method and setting:
    does a comparison's answer depend on how long the students train? Error bars: std over seeds.
    ``table``: :func:`lakt.analysis.report.budget_table`."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(5.6, 4.2))
    styles = ["-", "--", ":", "-."]
    for (method, setting), rows in table.groupby(["method", "setting"], sort=False):
        same = list(dict.fromkeys(table.loc[table["method"] == method, "setting"]))
        label = SHORT_NAMES.get(method, method) + (f" ({setting})" if len(same) > 1 else "")
        ax.errorbar(rows["steps"], rows["mean"], yerr=rows["std"].fillna(0), marker="o", ms=4, capsize=3,
                    color=method_color(method), ls=styles[same.index(setting) % 4], label=textwrap.fill(label, 30))
    _log_x(ax, sorted(set(table["steps"])))
    ax.set_xlabel("optimiser steps (log)")
    ax.set_ylabel(f"student test accuracy (%), {size} per class")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False, fontsize=9)
    fig.tight_layout()
    return fig
