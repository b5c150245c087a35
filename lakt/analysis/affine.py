"""Measurements for chapter 1: how affine is a network around an input? (Section 3)

The paper's Section 3 starts from the first-order Taylor expansion (Eq 1)

    f(x + dx) = f(x) + grad f(x)^T dx + O(eps^2),

and makes two claims for piecewise-linear nets (ReLU, max-pooling):

1. the O(eps^2) term is *exactly* zero for small enough dx (x and x + dx lie in one
   linear region) -- measured by :func:`taylor_error` over a grid of step sizes;
2. without bias units the "overall bias" f(x) - grad f(x)^T x is zero, so the output
   is the gradient times the input -- measured by :func:`overall_bias` and
   :func:`relative_residual`. Biases, BatchNorm's mean subtraction and hard-tanh's
   saturation each break it; :func:`bias_attribution` splits the overall bias of a
   ReLU net into the contribution of every bias / BatchNorm shift, and
   :func:`saturation_fraction` measures how many hard-tanh units sit at +-1.

All functions take a model (put in eval mode), inputs ``x`` [B, ...] and the index of
the output whose gradient is studied (one per input, as in :mod:`lakt.core.jacobian`). Use
float64 models and inputs: the exact identities then hold to ~1e-15 instead of ~1e-7.
"""
from __future__ import annotations

import copy
import hashlib

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core.errors import require
from ..core.jacobian import logits_and_gradient
from .palette import BOOK_WIDTH

# How many inputs / steps the chapter measures, per preset (smoke: seconds).
SETTINGS = {
    "smoke": {"inputs": 64, "taylor_inputs": 8, "steps": 25, "saliency": 6},
    "cpu": {"inputs": 256, "taylor_inputs": 16, "steps": 41, "saliency": 8},
    "paper": {"inputs": 1000, "taylor_inputs": 32, "steps": 61, "saliency": 8},
}


def settings(preset: str) -> dict:
    """The sample counts chapter 1 uses for ``preset`` (smoke, cpu or paper)."""
    require(preset in SETTINGS, f"unknown preset {preset!r}; choose one of {', '.join(SETTINGS)}")
    return dict(SETTINGS[preset])


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for ``purpose`` that differs from ``seed`` itself.

    Models are initialised after ``torch.manual_seed(seed)``; drawing noise or
    directions from a generator seeded with the same number replays the same random
    stream, so the "random" directions come out correlated with the weights.
    """
    return int(hashlib.sha256(f"{purpose}:{seed}".encode()).hexdigest()[:8], 16)


def _selected(model: nn.Module, x: torch.Tensor, index) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """f_index(x) [B], its input gradient (shaped like x) and the index tensor."""
    model.eval()
    index = torch.as_tensor(index, device=x.device).reshape(-1).expand(len(x))
    logits, grad = logits_and_gradient(model, x, index)
    value = logits.detach().gather(1, index.view(-1, 1)).squeeze(1)
    return value, grad.detach(), index


def overall_bias(model: nn.Module, x: torch.Tensor, index) -> torch.Tensor:
    """f(x) - grad f(x)^T x per input [B]: the constant term of the local affine model.

    Zero for bias-free piecewise-linear nets (Section 3); everything else that enters
    the output without being multiplied by x shows up here.
    """
    value, grad, _ = _selected(model, x, index)
    return value - (grad * x).flatten(1).sum(1)


def relative_residual(model: nn.Module, x: torch.Tensor, index) -> torch.Tensor:
    """|f(x) - grad f(x)^T x| / |f(x)| per input [B]: how far "output = gradient x input" is off."""
    value, grad, _ = _selected(model, x, index)
    return (value - (grad * x).flatten(1).sum(1)).abs() / value.abs()


def residual_table(models: dict, x: torch.Tensor, index):
    """One row per (model, input): f(x), grad f(x)^T x, their difference and the relative residual.

    ``models`` maps a display name to a network; all see the same inputs and outputs.
    """
    import pandas as pd

    rows = []
    for name, model in models.items():
        value, grad, idx = _selected(model, x, index)
        linear = (grad * x).flatten(1).sum(1)
        for b in range(len(x)):
            rows.append({"model": name, "input": b, "output": int(idx[b]), "f": value[b].item(),
                         "grad_dot_x": linear[b].item(), "bias": (value[b] - linear[b]).item(),
                         "relative": ((value[b] - linear[b]).abs() / value[b].abs()).item()})
    return pd.DataFrame(rows)


def random_directions(x: torch.Tensor, seed: int) -> torch.Tensor:
    """One random unit-norm direction per input (shaped like x), from a seeded generator."""
    generator = torch.Generator().manual_seed(derived_seed(seed, "directions"))
    u = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return u / u.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))


def taylor_error(model: nn.Module, x: torch.Tensor, index, steps, seed: int = 0,
                 directions: torch.Tensor | None = None):
    """|f(x + t u) - f(x) - t grad f(x)^T u| for every input, direction u and step t = ||dx||.

    The remainder of Eq 1. For a smooth net it falls like t^2; for a piecewise-linear
    net it is exactly zero (roundoff) until x + t u leaves x's linear region, and
    then grows. Returns a DataFrame with columns input, step, error and relative
    (error / |f(x)|). ``directions`` default to :func:`random_directions`.
    """
    import pandas as pd

    value, grad, idx = _selected(model, x, index)
    u = random_directions(x, seed) if directions is None else directions
    steps = torch.as_tensor(steps, dtype=x.dtype)
    require(steps.dim() == 1 and bool((steps > 0).all()), "steps must be a 1-d list of positive step sizes")
    slope = (grad * u).flatten(1).sum(1)                                     # [B]
    with torch.no_grad():  # one forward per step keeps memory at one batch
        moved = torch.stack([model(x + t * u).gather(1, idx.view(-1, 1)).squeeze(1) for t in steps.tolist()])
    error = (moved - value.unsqueeze(0) - steps.view(-1, 1).to(x.device) * slope.unsqueeze(0)).abs()
    rows = [{"input": b, "step": steps[s].item(), "error": error[s, b].item(),
             "relative": (error[s, b] / value[b].abs()).item()}
            for s in range(len(steps)) for b in range(len(x))]
    return pd.DataFrame(rows)


def exact_radius(errors, tol: float = 1e-10):
    """Per input, the largest step of the grid up to which the relative error stays below ``tol``.

    For a piecewise-linear net that is (a lower bound on) the distance along u to the
    edge of x's linear region; NaN if even the smallest step exceeds ``tol``.
    """
    def radius(group):
        ok = (group.sort_values("step")["relative"] < tol).to_numpy()
        steps = group.sort_values("step")["step"].to_numpy()
        if not ok[0]:
            return float("nan")
        first_bad = ok.argmin() if not ok.all() else len(ok)
        return float(steps[first_bad - 1])

    return errors.groupby("input").apply(radius, include_groups=False).rename("radius")


def loglog_slope(x, y) -> float:
    """Least-squares slope of log|y| against log x (the order of a power law y ~ x^p)."""
    x = torch.tensor(np.array(x, dtype=np.float64))
    y = torch.tensor(np.array(y, dtype=np.float64)).abs()
    keep = (x > 0) & (y > 0) & torch.isfinite(y)
    require(int(keep.sum()) >= 2, "need at least two positive points to fit a log-log slope")
    lx, ly = x[keep].log(), y[keep].log()
    lx = lx - lx.mean()
    return float((lx * (ly - ly.mean())).sum() / (lx * lx).sum())


def break_ties(x: torch.Tensor, scale: float = 1e-3, seed: int = 0) -> torch.Tensor:
    """``x`` plus tiny seeded Gaussian jitter (std ``scale``), to move inputs off region boundaries.

    Images with flat backgrounds (digits, and padding everywhere) give max-pooling
    windows whose entries are exactly equal; such an input sits *on* the boundary
    between linear regions, where Eq 1's remainder is first order (see
    :func:`maxpool_ties`). A jitter far below the pixel noise breaks the ties.
    """
    generator = torch.Generator().manual_seed(derived_seed(seed, "jitter"))
    return x + scale * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


@torch.no_grad()
def maxpool_ties(model: nn.Module, x: torch.Tensor) -> list[float]:
    """Per max-pooling layer, the fraction of pooling windows whose maximum is attained twice or more.

    At a tie the max is not differentiable: x lies on a boundary between linear
    regions and no epsilon > 0 makes the first-order expansion exact in every
    direction. Windows whose maximum is 0 are not counted: after a ReLU they are
    dead units, locally constant, not a kink. Only non-overlapping square windows
    (kernel = stride, no padding).
    """
    fractions: list[float] = []

    def hook(module, inputs, output):
        k, s = module.kernel_size, module.stride
        require(k == s and module.padding == 0, "maxpool_ties supports kernel = stride and no padding")
        windows = inputs[0].unfold(2, k, s).unfold(3, k, s).flatten(-2)
        top = windows.topk(2, dim=-1).values
        fractions.append(((top[..., 0] == top[..., 1]) & (top[..., 0] != 0)).double().mean().item())

    _run_with_hooks(model, x, nn.MaxPool2d, hook, "the model has no max-pooling layers")
    return fractions


# ---------------------------------------------------------------- making the "bias" visible

def scale_biases(model: nn.Module, factor: float) -> nn.Module:
    """A copy of ``model`` with every conv / linear bias multiplied by ``factor``.

    Biases enter a ReLU net's output linearly (see :func:`bias_attribution`), so the
    overall bias scales with them: this measures how small biases must be for
    "output = gradient x input" to hold approximately (the paper's VGG19 remark).
    """
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for m in clone.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.mul_(factor)
    return clone


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """Set every BatchNorm's running mean / variance to the statistics of ``x``; return it in eval mode.

    A fresh BatchNorm has mean 0 and variance 1, which in eval mode is (almost) the
    identity and hides the mean subtraction the paper blames. No weights are trained.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    require(norms, "the model has no BatchNorm layers to calibrate")
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    for start in range(0, len(x), batch_size):
        model(x[start:start + batch_size])
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    return model.eval()


@torch.no_grad()
def saturation_fraction(model: nn.Module, x: torch.Tensor) -> float:
    """Fraction of hard-tanh outputs that sit at a saturation value (+-1) for inputs ``x``.

    A saturated unit has slope 0, so its constant output is invisible to the gradient
    and adds to the overall bias (Section 3, "As a corollary for other non-linearities").
    """
    counts = [0, 0]

    def hook(module, inputs, output):
        counts[0] += int(((output >= module.max_val) | (output <= module.min_val)).sum())
        counts[1] += output.numel()

    _run_with_hooks(model, x, nn.Hardtanh, hook, "the model has no hard-tanh units")
    return counts[0] / counts[1]


def _run_with_hooks(model: nn.Module, x: torch.Tensor, layer_type, hook, missing: str) -> None:
    """Evaluate ``model(x)`` with ``hook`` on every layer of ``layer_type`` (removed afterwards)."""
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, layer_type)]
    require(handles, missing)
    try:
        model.eval()(x)
    finally:
        for h in handles:
            h.remove()


def bias_attribution(model: nn.Module, x: torch.Tensor, index):
    """Split the overall bias of a ReLU / max-pool net into one term per bias source.

    A ReLU net is positively homogeneous of degree 1 in (input, biases) jointly, so
    Euler's theorem gives, exactly inside one linear region,

        f(x) - grad_x f^T x = sum_layers grad_b f^T b,

    where for BatchNorm in eval mode, y = gamma (z - mu) / s + beta, the shifts are
    beta and the running mean mu (d f / d mu = -gamma / s * d f / d beta). Returns a
    DataFrame with one row per (input, layer, source): the contribution and, for
    comparison, the overall bias it belongs to. Per-input backward passes: keep B small.
    """
    import pandas as pd

    model.eval()
    index = torch.as_tensor(index, device=x.device).reshape(-1).expand(len(x))
    named = list(model.named_modules())
    rows = []
    bias = overall_bias(model, x, index)
    for b in range(len(x)):
        model.zero_grad(set_to_none=True)
        model(x[b:b + 1])[0, index[b]].backward()
        for name, m in named:
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                kind = "linear bias" if isinstance(m, nn.Linear) else "conv bias"
                rows.append((b, name, kind, (m.bias.grad * m.bias).sum().item()))
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                require(m.affine and m.track_running_stats,
                        "bias_attribution needs BatchNorm with affine=True and running statistics")
                scale = m.weight / torch.sqrt(m.running_var + m.eps)
                rows.append((b, name, "BN beta", (m.bias.grad * m.bias).sum().item()))
                rows.append((b, name, "BN mean", (-scale * m.bias.grad * m.running_mean).sum().item()))
    model.zero_grad(set_to_none=True)
    frame = pd.DataFrame(rows, columns=["input", "layer", "source", "contribution"])
    frame["overall_bias"] = frame["input"].map(dict(enumerate(bias.tolist())))
    return frame


# ---------------------------------------------------------------- small smooth / piecewise-linear nets

MLP_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "hardtanh": nn.Hardtanh}


def mlp(in_features: int, num_classes: int = 10, hidden: int = 32, depth: int = 2,
        activation: str = "tanh", bias: bool = True, seed: int = 0) -> nn.Module:
    """A small float64 MLP on flattened inputs, initialised after ``torch.manual_seed(seed)``.

    The theory chapters need *smooth* networks (tanh, softplus) next to piecewise-linear
    ones, which the VGG builder does not offer.
    """
    require(activation in MLP_ACTIVATIONS,
            f"unknown activation {activation!r}; choose one of {sorted(MLP_ACTIVATIONS)}")
    require(depth >= 1 and hidden >= 1, "depth and hidden must be positive")
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden, bias=bias), MLP_ACTIVATIONS[activation]()]
            width = hidden
        layers.append(nn.Linear(width, num_classes, bias=bias))
        net = nn.Sequential(*layers).double().eval()
    finally:
        torch.random.set_rng_state(state)
    return net


# ---------------------------------------------------------------- plots

def plot_residuals(table, ax=None, floor: float = 1e-17):
    """Strip plot of the relative residual per model on a log axis (values below ``floor`` drawn at it)."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    names = list(dict.fromkeys(table["model"]))
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        values = np.maximum(table.loc[table["model"] == name, "relative"].to_numpy(), floor)
        ax.scatter(i + rng.uniform(-0.18, 0.18, len(values)), values, s=10, alpha=0.6)
        ax.hlines(np.median(values), i - 0.3, i + 0.3, color="k", lw=2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(r"$|f(x) - \nabla f(x)^T x| \,/\, |f(x)|$")
    ax.axhline(2.2e-16, color="grey", ls=":", lw=1)
    ax.text(len(names) - 0.5, 2.2e-16, "float64 eps", va="bottom", ha="right", color="grey")
    return ax


def plot_taylor(errors: dict, ax=None, floor: float = 1e-18, reference_slopes=(1, 2)):
    """Median (and range over inputs) of the relative Taylor error vs ||dx||, log-log, one line per model.

    ``errors`` maps a label to a :func:`taylor_error` frame. Dotted reference lines
    show the slopes in ``reference_slopes``.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for label, frame in errors.items():
        g = frame.assign(relative=np.maximum(frame["relative"], floor)).groupby("step")["relative"]
        steps = np.asarray(g.median().index)
        line, = ax.plot(steps, g.median().to_numpy(), marker="o", ms=3, label=label)
        ax.fill_between(steps, g.min().to_numpy(), g.max().to_numpy(), color=line.get_color(), alpha=0.15)
    steps = np.asarray(sorted(set().union(*[set(f["step"]) for f in errors.values()])))
    top = max(float(np.maximum(f["relative"], floor).max()) for f in errors.values())
    for p in reference_slopes:
        anchor = steps[len(steps) // 2]
        guide = 1e-6 * (steps / anchor) ** p
        inside = guide <= top * 10
        ax.plot(steps[inside], guide[inside], color="grey", ls=":", lw=1)
        last = np.flatnonzero(inside)[-1]
        ax.text(steps[last], guide[last], f"slope {p}", color="grey", ha="right", va="bottom")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_ylim(floor / 2, top * 30)
    ax.set_xlabel(r"step $\|\Delta x\|$")
    ax.set_ylabel(r"$|f(x+\Delta x) - f(x) - \nabla f(x)^T \Delta x| \,/\, |f(x)|$")
    ax.legend()
    return ax


def plot_gradients(images: torch.Tensor, grads: torch.Tensor, titles, show_product: bool = True,
                   width: float = 7.0):
    """Each input above its gradient map (and gradient x input): the teacher's label "Jacobian" as a picture.

    Diverging colours on one symmetric scale per row, with a colour bar, so a colour
    means the same value in every panel of a row: red raises the label's logit, blue
    lowers it. ``width``: the figure's width in inches (the book's column). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    rows = 3 if show_product else 2
    n = len(images)
    side = min(1.5, (width - 1.2) / n)
    fig, axes = plt.subplots(rows, n, figsize=(width, side * rows + 0.8), squeeze=False)
    maps = [[] for _ in range(rows)]
    for i in range(n):
        img, g = images[i].detach().cpu().double(), grads[i].detach().cpu().double()  # [C, H, W]
        maps[0].append(img.mean(0))
        maps[1].append(g.sum(0))
        if show_product:
            maps[2].append((g * img).sum(0))
    for r in range(rows):
        lim = max(float(m.abs().max()) for m in maps[r]) or 1.0
        for i, panel in enumerate(maps[r]):
            ax = axes[r, i]
            if r == 0:
                im = ax.imshow(panel.numpy(), cmap="gray")
                ax.set_title(titles[i], fontsize=9)
            else:
                im = ax.imshow(panel.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([]), ax.set_yticks([])
        if r > 0:
            bar = fig.colorbar(im, ax=list(axes[r]), fraction=0.04, pad=0.02)
            bar.ax.tick_params(labelsize=9)
            bar.formatter.set_powerlimits((-2, 2))
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel(r"$\nabla_x f_y$")
    if show_product:
        axes[2, 0].set_ylabel(r"$\nabla_x f_y \odot x$")
    return fig


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
