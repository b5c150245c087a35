"""What the book's sliders and selectors draw: one reader-chosen slice of a chapter's results.

Each experiment chapter has one explorer (:func:`live`: ipywidgets controls over a figure)
whose drawing lives here, so it is tested like any figure and trains nothing:

* chapter 1 -- :func:`along_ray` / :func:`plot_ray`: a network against its first-order
  Taylor expansion (Eq 1) along one direction, at a chosen step;
* chapter 3 -- :func:`plot_methods_at_size`: every method's accuracy at one number of
  examples per class, one method highlighted, the paper's value beside it;
* chapter 5 -- :func:`plot_penalties_at_sigma`: accuracy per Jacobian penalty at one noise σ
  (Table 3's column), ours beside the paper's.

(Chapter 2's explorer draws :func:`lakt.analysis.sigma_sweeps.plot_at_sigma`.)
"""
from __future__ import annotations

import pandas as pd
import torch

from ..core.jacobian import logits_and_gradient
from .affine import random_directions
from .palette import BOOK_WIDTH, method_color
from .palette import SHORT_NAMES
from .report import _means


def live(draw, **controls) -> None:
    """Show ``draw(**values)``'s figure under the ``controls`` (ipywidgets), redrawn when one moves.

    ``draw`` takes one keyword per control and returns a matplotlib Figure, Axes or list of
    Axes. The first drawing is an ordinary output of the cell -- what the static book shows
    under the stored controls -- and a moved control replaces it in place (``update_display_data``), so a live
    kernel (JupyterLab) explores while the book stays a page.

    Why not ``ipywidgets.interact``: it draws into an Output widget, and for those a headless
    executor (nbclient, under papermill and the book build) sends a comm message on the shell
    channel while it is waiting on that channel for the cell's reply; under load the reply is
    then missed and the execution never ends (CI hung on chapter 1's slider; a one-slider
    notebook hung in 2 of 5 papermill runs on 2 loaded cores, the same one without the widget
    in none of 25).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    def render():
        drawn = draw(**{name: control.value for name, control in controls.items()})
        if isinstance(drawn, (list, tuple)) or hasattr(drawn, "flat"):  # several Axes: their figure
            drawn = list(getattr(drawn, "flat", drawn))[0]
        figure = getattr(drawn, "figure", drawn) if drawn is not None else plt.gcf()
        plt.close(figure)  # shown once, by display, not again by the inline backend
        return figure

    display(widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")))
    shown = display(render(), display_id=True)
    for control in controls.values():
        control.observe(lambda change: shown.update(render()), names="value")


def along_ray(model, x: torch.Tensor, index: torch.Tensor, steps, seed: int = 0) -> pd.DataFrame:
    """f(x + t u) and its affine approximation f(x) + t ∇f(x)ᵀu for one input, over the steps t.

    ``x``: one input (batch of 1); ``index``: the output (e.g. the label's logit); ``u``:
    :func:`lakt.analysis.affine.random_directions`' unit direction for ``seed``. Columns
    step, network, affine, relative (|network − affine| / |f(x)|).
    """
    logits, grad = logits_and_gradient(model, x, index)
    value = logits.gather(1, index.view(-1, 1)).squeeze(1).detach()
    u = random_directions(x, seed)
    slope = float((grad.detach() * u).sum())
    steps = torch.as_tensor(steps, dtype=x.dtype)
    with torch.no_grad():
        moved = [float(model(x + t * u).gather(1, index.view(-1, 1))) for t in steps.tolist()]
    f0 = float(value[0])
    affine = [f0 + t * slope for t in steps.tolist()]
    return pd.DataFrame({"step": steps.tolist(), "network": moved, "affine": affine,
                         "relative": [abs(m - a) / abs(f0) for m, a in zip(moved, affine)]})


def plot_ray(ray: pd.DataFrame, step: float, ax=None):
    """The network and its affine approximation along the ray (log step axis), the chosen step marked."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(BOOK_WIDTH, 3.8))
    ax.plot(ray["step"], ray["network"], lw=2, label=r"network $f(x + t u)$")
    ax.plot(ray["step"], ray["affine"], "--", color="k", lw=1.2, label=r"affine $f(x) + t\,\nabla f(x)^T u$")
    ax.axvline(step, color="C3", lw=1)
    i = int(np.argmin(np.abs(np.log(ray["step"].to_numpy()) - np.log(step))))
    ax.set_xscale("log")
    ax.set_xlabel(r"step $t = \|\Delta x\|$")
    ax.set_ylabel("label logit")
    ax.set_title(f"t = {ray['step'].iloc[i]:.1e}: relative remainder {ray['relative'].iloc[i]:.1e}")
    ax.legend(loc="best")
    ax.figure.tight_layout()
    return ax


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
        ax.legend(loc="lower right")
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
    ax.legend(loc="lower right")
    ax.figure.tight_layout()
    return ax
