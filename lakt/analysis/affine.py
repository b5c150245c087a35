"""Chapter 1: how affine is a network around an input? (Section 3, Eq 1)

Eq 1, f(x + dx) = f(x) + grad f(x)^T dx + O(eps^2), and the paper's two claims for
piecewise-linear nets: the remainder is *exactly* zero for small dx (x and x + dx share a
linear region), and without bias units the "overall bias" f(x) - grad f(x)^T x is zero,
so the output is the gradient times the input. Biases, BatchNorm's mean subtraction and
hard-tanh's saturation each break the second claim; the functions below measure by how
much, one per table or figure of the chapter. Everything runs in float64, where the
exact identities hold to ~1e-15 instead of ~1e-7.
"""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core.errors import require
from ..core.jacobian import logits_and_gradient, output_gradient
from .palette import BOOK_WIDTH

_SETTINGS = {  # inputs measured, inputs for the Taylor remainder, its step grid, gradient panels
    "smoke": {"inputs": 64, "taylor_inputs": 8, "steps": 25, "saliency": 6},
    "cpu": {"inputs": 256, "taylor_inputs": 16, "steps": 41, "saliency": 8},
    "paper": {"inputs": 1000, "taylor_inputs": 32, "steps": 61, "saliency": 8},
}


@dataclass
class Inputs:
    """The chapter's float64 test images ``x`` and ``labels`` (f = the label's logit), the dataset, the VGGs'
    ``shape``, the preset's counts ``cfg``, the device ``where`` and a one-line ``summary``."""
    ds: object
    x: torch.Tensor
    labels: torch.Tensor
    shape: dict
    cfg: dict
    where: torch.device
    summary: str


def chapter_inputs(preset: str, dataset: str, data_root=None, device=None, seed: int = 0) -> Inputs:
    """The first test images of ``dataset`` in float64 on ``device``, as many as ``preset`` measures."""
    from ..core import data
    from ..core.train import default_device
    from .report import data_available

    require(preset in _SETTINGS, f"unknown preset {preset!r}; choose one of {', '.join(_SETTINGS)}")
    cfg = dict(_SETTINGS[preset])
    where = torch.device(device) if device is not None else default_device()
    available = data_available(dataset, data_root)
    require(available, f"{available.reason}; see the parameters above")
    ds = data.load(dataset, data_root)
    x, labels = ds.test.x[:cfg["inputs"]].double().to(where), ds.test.y[:cfg["inputs"]].to(where)
    summary = (f"preset {preset} · dataset {ds.name} · {len(x)} test inputs of shape {tuple(x.shape[1:])} "
               f"· seed {seed}")
    return Inputs(ds, x, labels, dict(num_classes=ds.num_classes, in_channels=ds.in_channels, width=0.125),
                  cfg, where, summary)


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for ``purpose`` that differs from ``seed``: noise drawn from ``seed`` itself would
    replay the stream ``torch.manual_seed(seed)`` fed into the weights, correlating the two."""
    return int(hashlib.sha256(f"{purpose}:{seed}".encode()).hexdigest()[:8], 16)


# ---------------------------------------------------------------- f(x) = grad f(x)^T x (sections 1-4)

def _selected(model: nn.Module, x: torch.Tensor, index):
    """f_index(x) [B], its input gradient (shaped like x) and the index tensor."""
    model.eval()
    index = torch.as_tensor(index, device=x.device).reshape(-1).expand(len(x))
    logits, grad = logits_and_gradient(model, x, index)
    return logits.detach().gather(1, index.view(-1, 1)).squeeze(1), grad.detach(), index


def _overall_bias(model: nn.Module, x: torch.Tensor, index) -> torch.Tensor:
    """f(x) - grad f(x)^T x per input: the local affine model's constant, zero without biases (Section 3)."""
    value, grad, _ = _selected(model, x, index)
    return value - (grad * x).flatten(1).sum(1)


def relative_residual(model: nn.Module, x: torch.Tensor, index) -> torch.Tensor:
    """|f(x) - grad f(x)^T x| / |f(x)| per input [B]: how far "output = gradient x input" is off."""
    value, grad, _ = _selected(model, x, index)
    return (value - (grad * x).flatten(1).sum(1)).abs() / value.abs()


def _residuals(models: dict, x: torch.Tensor, index) -> pd.DataFrame:
    """:func:`relative_residual` of every model, one row per (model, input)."""
    return pd.concat([pd.DataFrame({"model": name, "relative": relative_residual(m, x, index).cpu().numpy()})
                      for name, m in models.items()], ignore_index=True)


def untrained_nets(inputs: Inputs, seed: int) -> dict:
    """The untrained VGGs of sections 1-4, each group built right after ``torch.manual_seed(seed)``.

    Keys: "VGG-4", "VGG-9" (no bias, no BatchNorm), "VGG-4 + biases", "VGG-4 + fresh BN"
    (running mean 0, variance 1: almost the identity), "VGG-4 + calibrated BN" (running
    statistics of 512 training images, no weight trained) and "hard-tanh VGG-4" (no bias).
    """
    from ..core import models

    def build(make, **options):
        return make(**inputs.shape, **options).double().to(inputs.where)

    torch.manual_seed(seed)
    nets = {"VGG-4": build(models.vgg4, bias=False, batch_norm=False),
            "VGG-9": build(models.vgg9, bias=False, batch_norm=False)}
    torch.manual_seed(seed)
    nets["VGG-4 + biases"] = build(models.vgg4, bias=True, batch_norm=False)
    torch.manual_seed(seed)
    nets["VGG-4 + fresh BN"] = build(models.vgg4, bias=False, batch_norm=True).eval()
    nets["VGG-4 + calibrated BN"] = _calibrate_batchnorm(
        build(models.vgg4, bias=False, batch_norm=True), inputs.ds.train.x[:512].double().to(inputs.where))
    torch.manual_seed(seed)
    nets["hard-tanh VGG-4"] = build(models.vgg4, bias=False, batch_norm=False, activation="hardtanh")
    return nets


def bias_free_table(nets: dict, x: torch.Tensor, labels) -> pd.DataFrame:
    """Section 1's table: median and max relative residual of the bias-free VGG-4 and VGG-9."""
    table = _residuals({name: nets[name] for name in ("VGG-4", "VGG-9")}, x, labels)
    return table.groupby("model")["relative"].agg(["median", "max"])


def bias_scale_residuals(net: nn.Module, x: torch.Tensor, labels, factors=(1e-4, 1e-3, 1e-2, 1e-1, 1.0)) -> pd.Series:
    """Section 2's figure: median relative residual with every bias of ``net`` scaled by each factor.

    Biases enter a ReLU net's output linearly, so the residual scales with them; ``net`` is not changed.
    """
    return pd.Series([relative_residual(_scale_biases(net, f), x, labels).median().item() for f in factors],
                     index=pd.Index(list(factors), name="factor"), name="median relative residual")


def bias_scale_figure(residuals: pd.Series):
    """:func:`bias_scale_residuals` on log-log axes."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.loglog(residuals.index, residuals.to_numpy(), marker="o")
    ax.set_xlabel("bias scale (1 = PyTorch default init)")
    ax.set_ylabel("median relative residual")
    ax.set_title("VGG-4 with biases (ReLU, no BN)")
    return fig


def _scale_biases(model: nn.Module, factor: float) -> nn.Module:
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for m in clone.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.mul_(factor)
    return clone


@torch.no_grad()
def _calibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """Every BatchNorm's running statistics set to those of ``x``; the model back in eval mode.

    A fresh BatchNorm (mean 0, variance 1) is almost the identity in eval mode and hides the
    mean subtraction the paper blames; calibrating shows it without training a weight.
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


def trained_teacher(preset: str, dataset: str, results, inputs: Inputs, data_root=None, device=None):
    """The preset's VGG-9 teacher in float64 (trained now and cached in ``results`` if missing) and a line saying so."""
    from .. import runs

    config = runs.get_preset(preset).teacher(dataset)
    metrics = runs.run(config, results, data_root=data_root, device=device, progress=False)
    teacher = runs.load_model(config, results, inputs.ds.num_classes, inputs.ds.in_channels,
                              device=inputs.where).double()
    return teacher, (f"teacher {config.name}: test accuracy {metrics['test_acc']:.1f}% after {config.epochs} "
                     f"epochs · trained on {metrics['device']} with torch {metrics['torch']} in "
                     f"{metrics['seconds']:.0f} s")


def bias_attribution(model: nn.Module, x: torch.Tensor, index) -> pd.DataFrame:
    """The overall bias of a ReLU / max-pool net split into one term per bias source.

    Positive homogeneity in (input, biases) jointly and Euler's theorem give, inside one
    linear region, f(x) - grad_x f^T x = sum_layers grad_b f^T b. For BatchNorm in eval mode,
    y = gamma (z - mu) / s + beta, the shifts are beta and the running mean mu
    (df/dmu = -gamma / s * df/dbeta). One row per (input, layer, source): ``contribution``
    and the ``overall_bias`` it belongs to. One backward pass per input: keep B small.
    """
    model.eval()
    index = torch.as_tensor(index, device=x.device).reshape(-1).expand(len(x))
    bias, rows = _overall_bias(model, x, index), []
    for b in range(len(x)):
        model.zero_grad(set_to_none=True)
        model(x[b:b + 1])[0, index[b]].backward()
        for name, m in model.named_modules():
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


def bias_sources(attribution: pd.DataFrame) -> pd.Series:
    """Mean |contribution| per source of :func:`bias_attribution`, smallest first (the bars of the figure)."""
    return attribution.groupby("source")["contribution"].apply(lambda c: c.abs().mean()).sort_values()


def bias_sources_figure(attribution: pd.DataFrame, preset: str):
    """Where the trained teacher's overall bias comes from: :func:`bias_sources` as bars."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.0))
    bias_sources(attribution).plot.barh(ax=ax, color="C1")
    ax.set_xlabel(rf"mean $|$contribution$|$ to $f(x) - \nabla f(x)^T x$ ({attribution['input'].nunique()} inputs)")
    ax.set_title(f"where the trained VGG-9's overall bias comes from ({preset} preset)")
    return fig


def saturation_sweep(nets: dict, x: torch.Tensor, labels,
                     scales=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)) -> pd.DataFrame:
    """Section 4's figure: per input scale a, the fraction of saturated hard-tanh units at a x, the
    hard-tanh net's median and the ReLU net's max relative residual (both bias-free VGG-4s)."""
    hardtanh, relu = nets["hard-tanh VGG-4"], nets["VGG-4"]
    return pd.DataFrame([{"scale": a, "saturated": _saturation_fraction(hardtanh, a * x),
                          "hardtanh": relative_residual(hardtanh, a * x, labels).median().item(),
                          "relu": relative_residual(relu, a * x, labels).max().item()} for a in scales])


def saturation_figure(saturation: pd.DataFrame, floor: float = 1e-17):
    """:func:`saturation_sweep`: residuals (left, exact zeros drawn at ``floor``) and saturation (right)."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(7.0, 3.4))
    a1.loglog(saturation["scale"], np.maximum(saturation["hardtanh"], floor), marker="o", label="hard-tanh (median)")
    a1.loglog(saturation["scale"], np.maximum(saturation["relu"], floor), marker="s", label="ReLU (max)")
    a1.set_xlabel("input scale $a$ (network sees $a x$)"), a1.set_ylabel("relative residual")
    a1.legend()
    a2.semilogx(saturation["scale"], 100 * saturation["saturated"], marker="o", color="C2")
    a2.set_xlabel("input scale $a$"), a2.set_ylabel("hard-tanh units saturated (%)")
    fig.suptitle("bias-free VGG-4: saturation is a bias the gradient cannot see")
    fig.tight_layout()
    return fig


@torch.no_grad()
def _saturation_fraction(model: nn.Module, x: torch.Tensor) -> float:
    """Fraction of hard-tanh outputs at +-1: slope 0, so invisible to the gradient (Section 3's corollary)."""
    counts = [0, 0]

    def hook(module, inputs, output):
        counts[0] += int(((output >= module.max_val) | (output <= module.min_val)).sum())
        counts[1] += output.numel()

    _run_with_hooks(model, x, nn.Hardtanh, hook, "the model has no hard-tanh units")
    return counts[0] / counts[1]


def _run_with_hooks(model: nn.Module, x: torch.Tensor, layer_type, hook, missing: str) -> None:
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, layer_type)]
    require(handles, missing)
    try:
        model.eval()(x)
    finally:
        for h in handles:
            h.remove()


_ALL_TOGETHER = {"VGG-4": "VGG-4\nno bias", "VGG-9": "VGG-9\nno bias", "VGG-4 + biases": "VGG-4\n+ biases\n(init)",
                 "VGG-4 + fresh BN": "VGG-4\n+ fresh\nBN", "VGG-4 + calibrated BN": "VGG-4\n+ calib.\nBN"}


def residuals_figure(nets: dict, teacher: nn.Module, x: torch.Tensor, labels, floor: float = 1e-17):
    """Every network of sections 1-4 on the same inputs (hard-tanh at input scale 3): the relative
    residual per input on a log axis, values below ``floor`` drawn at it, the median as a bar."""
    import matplotlib.pyplot as plt

    models = {label: nets[name] for name, label in _ALL_TOGETHER.items()} | {"trained\nVGG-9": teacher}
    table = pd.concat([_residuals(models, x, labels),
                       _residuals({"hard-tanh\nVGG-4 (3x)": nets["hard-tanh VGG-4"]}, 3 * x, labels)])
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
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
    ax.set_title(f"relative residual of f(x) = grad f(x)$^T$x, {len(x)} inputs (bar: median)")
    ax.tick_params(axis="x", labelsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the remainder of Eq 1 (section 5)

def break_ties(x: torch.Tensor, scale: float = 1e-3, seed: int = 0) -> torch.Tensor:
    """``x`` plus seeded Gaussian jitter of std ``scale``: moves inputs off linear-region boundaries.

    Flat backgrounds give max-pooling windows with equal entries; such an input sits *on* a
    boundary, where Eq 1's remainder is first order (:func:`maxpool_ties`).
    """
    generator = torch.Generator().manual_seed(derived_seed(seed, "jitter"))
    return x + scale * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


@torch.no_grad()
def maxpool_ties(model: nn.Module, x: torch.Tensor) -> list[float]:
    """Per max-pooling layer, the fraction of windows whose maximum is attained twice or more.

    At a tie the max is not differentiable: no eps > 0 makes Eq 1 exact in every direction.
    Windows whose maximum is 0 (dead ReLUs, locally constant) do not count. Only
    non-overlapping windows (kernel = stride, no padding).
    """
    fractions: list[float] = []

    def hook(module, inputs, output):
        k, s = module.kernel_size, module.stride
        require(k == s and module.padding == 0, "maxpool_ties supports kernel = stride and no padding")
        top = inputs[0].unfold(2, k, s).unfold(3, k, s).flatten(-2).topk(2, dim=-1).values
        fractions.append(((top[..., 0] == top[..., 1]) & (top[..., 0] != 0)).double().mean().item())

    _run_with_hooks(model, x, nn.MaxPool2d, hook, "the model has no max-pooling layers")
    return fractions


def _random_directions(x: torch.Tensor, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(derived_seed(seed, "directions"))
    u = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return u / u.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))


def taylor_error(model: nn.Module, x: torch.Tensor, index, steps, seed: int = 0) -> pd.DataFrame:
    """Eq 1's remainder |f(x + t u) - f(x) - t grad f(x)^T u| per input and step t, u a seeded random unit direction.

    Falls like t^2 for a smooth net; for a piecewise-linear one it is rounding until x + t u
    leaves x's linear region. Columns input, step, error, relative (error / |f(x)|).
    """
    value, grad, idx = _selected(model, x, index)
    u = _random_directions(x, seed)
    steps = torch.as_tensor(steps, dtype=x.dtype)
    require(steps.dim() == 1 and bool((steps > 0).all()), "steps must be a 1-d list of positive step sizes")
    slope = (grad * u).flatten(1).sum(1)
    with torch.no_grad():  # one forward per step keeps memory at one batch
        moved = torch.stack([model(x + t * u).gather(1, idx.view(-1, 1)).squeeze(1) for t in steps.tolist()])
    error = (moved - value.unsqueeze(0) - steps.view(-1, 1).to(x.device) * slope.unsqueeze(0)).abs()
    return pd.DataFrame([{"input": b, "step": steps[s].item(), "error": error[s, b].item(),
                          "relative": (error[s, b] / value[b].abs()).item()}
                         for s in range(len(steps)) for b in range(len(x))])


def taylor_errors(teacher: nn.Module, inputs: Inputs, jittered: torch.Tensor, seed: int) -> dict:
    """Section 5's figure: :func:`taylor_error` of the teacher on raw and jittered images and of a
    smooth tanh MLP, over the preset's step grid from 1e-10 to 10."""
    n, x = inputs.cfg["taylor_inputs"], inputs.x
    xt, yt = x[:n], inputs.labels[:n]
    steps = torch.logspace(-10, 1, inputs.cfg["steps"], dtype=torch.float64)
    smooth = mlp(x[0].numel(), inputs.ds.num_classes, activation="tanh", seed=seed).to(inputs.where)
    return {"trained VGG-9, raw images": taylor_error(teacher, xt, yt, steps, seed),
            "trained VGG-9, jittered images": taylor_error(teacher, jittered, yt, steps, seed),
            "tanh MLP (smooth)": taylor_error(smooth, xt, yt, steps, seed)}


def smooth_order(errors: pd.DataFrame, low: float = 1e-5, high: float = 1e-1) -> float:
    """The power p of remainder ~ step^p: the log-log slope of the median over inputs between ``low`` and ``high``."""
    mid = errors[(errors["step"] >= low) & (errors["step"] <= high)].groupby("step")["relative"].median()
    return loglog_slope(mid.index, mid.values)


def taylor_figure(errors: dict, floor: float = 1e-18, reference_slopes=(1, 2)):
    """Median (band: range over inputs) of each :func:`taylor_errors` remainder against the step, log-log,
    with dotted reference slopes."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    for label, frame in errors.items():
        g = frame.assign(relative=np.maximum(frame["relative"], floor)).groupby("step")["relative"]
        steps = np.asarray(g.median().index)
        line, = ax.plot(steps, g.median().to_numpy(), marker="o", ms=3, label=label)
        ax.fill_between(steps, g.min().to_numpy(), g.max().to_numpy(), color=line.get_color(), alpha=0.15)
    steps = np.asarray(sorted(set().union(*[set(f["step"]) for f in errors.values()])))
    top = max(float(np.maximum(f["relative"], floor).max()) for f in errors.values())
    for p in reference_slopes:
        guide = 1e-6 * (steps / steps[len(steps) // 2]) ** p
        inside = guide <= top * 10
        ax.plot(steps[inside], guide[inside], color="grey", ls=":", lw=1)
        last = np.flatnonzero(inside)[-1]
        ax.text(steps[last], guide[last], f"slope {p}", color="grey", ha="right", va="bottom")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_ylim(floor / 2, top * 30)
    ax.set_xlabel(r"step $\|\Delta x\|$")
    ax.set_ylabel(r"$|f(x+\Delta x) - f(x) - \nabla f(x)^T \Delta x| \,/\, |f(x)|$")
    ax.legend()
    ax.set_title(f"remainder of Eq 1 along random directions ({frame['input'].nunique()} inputs; band: min-max)")
    return fig


def exact_radius(errors: pd.DataFrame, tol: float = 1e-10) -> pd.Series:
    """Per input, the largest step of the grid up to which the relative remainder stays below ``tol``:
    a lower bound on the distance to the edge of x's linear region (NaN if the smallest step fails)."""
    def radius(group):
        group = group.sort_values("step")
        ok, steps = (group["relative"] < tol).to_numpy(), group["step"].to_numpy()
        if not ok[0]:
            return float("nan")
        return float(steps[(ok.argmin() if not ok.all() else len(ok)) - 1])

    return errors.groupby("input").apply(radius, include_groups=False).rename("radius")


def loglog_slope(x, y) -> float:
    """Least-squares slope of log|y| against log x: the power p of y ~ x^p."""
    x = torch.tensor(np.array(x, dtype=np.float64))
    y = torch.tensor(np.array(y, dtype=np.float64)).abs()
    keep = (x > 0) & (y > 0) & torch.isfinite(y)
    require(int(keep.sum()) >= 2, "need at least two positive points to fit a log-log slope")
    lx, ly = x[keep].log(), y[keep].log()
    lx = lx - lx.mean()
    return float((lx * (ly - ly.mean())).sum() / (lx * lx).sum())


def along_ray(model, x: torch.Tensor, index: torch.Tensor, steps, seed: int = 0) -> pd.DataFrame:
    """The explorer's data: f(x + t u) and its affine model f(x) + t grad f(x)^T u for one input
    (batch of 1) along the seeded direction u of :func:`taylor_error`. Columns step, network,
    affine, relative (|network - affine| / |f(x)|)."""
    logits, grad = logits_and_gradient(model, x, index)
    f0 = float(logits.gather(1, index.view(-1, 1)).squeeze(1).detach()[0])
    u = _random_directions(x, seed)
    slope = float((grad.detach() * u).sum())
    steps = torch.as_tensor(steps, dtype=x.dtype).tolist()
    with torch.no_grad():
        moved = [float(model(x + t * u).gather(1, index.view(-1, 1))) for t in steps]
    affine = [f0 + t * slope for t in steps]
    return pd.DataFrame({"step": steps, "network": moved, "affine": affine,
                         "relative": [abs(m - a) / abs(f0) for m, a in zip(moved, affine)]})


def ray_figure(ray: pd.DataFrame, step: float):
    """:func:`along_ray` on a log step axis, the chosen ``step`` marked and its remainder in the title."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(BOOK_WIDTH, 3.8))
    ax.plot(ray["step"], ray["network"], lw=2, label=r"network $f(x + t u)$")
    ax.plot(ray["step"], ray["affine"], "--", color="k", lw=1.2, label=r"affine $f(x) + t\,\nabla f(x)^T u$")
    ax.axvline(step, color="C3", lw=1)
    i = int(np.argmin(np.abs(np.log(ray["step"].to_numpy()) - np.log(step))))
    ax.set_xscale("log")
    ax.set_xlabel(r"step $t = \|\Delta x\|$")
    ax.set_ylabel("label logit")
    ax.set_title(f"t = {ray['step'].iloc[i]:.1e}: relative remainder {ray['relative'].iloc[i]:.1e}")
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def gradients_figure(teacher: nn.Module, images: torch.Tensor, labels: torch.Tensor, classes, width: float = BOOK_WIDTH):
    """Each image above the teacher's label gradient and gradient x input: the "Jacobian" as a picture.

    One symmetric diverging scale per row, with a colour bar, so a colour means one value
    across a row: red raises the label's logit, blue lowers it. Titles: label -> prediction.
    """
    import matplotlib.pyplot as plt

    grads = output_gradient(teacher, images, labels)
    with torch.no_grad():
        predictions = teacher(images).argmax(1)
    titles = [f"{classes[int(y)]} → {classes[int(p)]}" for y, p in zip(labels, predictions)]
    n, side = len(images), min(1.5, (width - 1.2) / len(images))
    fig, axes = plt.subplots(3, n, figsize=(width, side * 3 + 0.8), squeeze=False)
    images, grads = images.detach().cpu().double(), grads.detach().cpu().double()
    maps = [list(images.mean(1)), list(grads.sum(1)), list((grads * images).sum(1))]
    for r, row in enumerate(maps):
        lim = max(float(m.abs().max()) for m in row) or 1.0
        for i, panel in enumerate(row):
            ax = axes[r, i]
            im = (ax.imshow(panel.numpy(), cmap="gray") if r == 0
                  else ax.imshow(panel.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim))
            ax.set_xticks([]), ax.set_yticks([])
        if r == 0:
            for ax, title in zip(axes[0], titles):
                ax.set_title(title, fontsize=9)
        else:
            bar = fig.colorbar(im, ax=list(axes[r]), fraction=0.04, pad=0.02)
            bar.ax.tick_params(labelsize=9)
            bar.formatter.set_powerlimits((-2, 2))
    for ax, label in zip(axes[:, 0], ("input", r"$\nabla_x f_y$", r"$\nabla_x f_y \odot x$")):
        ax.set_ylabel(label)
    return fig


# ---------------------------------------------------------------- small nets for the theory chapters

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "hardtanh": nn.Hardtanh}


def mlp(in_features: int, num_classes: int = 10, hidden: int = 32, depth: int = 2,
        activation: str = "tanh", bias: bool = True, seed: int = 0) -> nn.Module:
    """A float64 MLP on flattened inputs, seeded without touching the global generator: the smooth
    (tanh, softplus) nets the theory needs beside piecewise-linear ones, which the VGGs do not offer."""
    require(activation in _ACTIVATIONS, f"unknown activation {activation!r}; choose one of {sorted(_ACTIVATIONS)}")
    require(depth >= 1 and hidden >= 1, "depth and hidden must be positive")
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden, bias=bias), _ACTIVATIONS[activation]()]
            width = hidden
        layers.append(nn.Linear(width, num_classes, bias=bias))
        return nn.Sequential(*layers).double().eval()
    finally:
        torch.random.set_rng_state(state)
