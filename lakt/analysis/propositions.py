"""Chapter 2: Propositions 1-2 and Equations 2-3 (Section 4) checked by Monte-Carlo.

Each statement says E L(x + xi), xi = sigma z, equals L(x) plus a sigma^2 term. We estimate
the left side by sampling and compare it with the paper's right side and with the exact
second-order coefficient (1/2) tr grad_x^2 L(x) (odd orders vanish). Two variance
reductions make small sigma measurable: antithetic pairs (xi, -xi) cancel odd orders, and
for Props 1-2 the linearised network is a control variate whose expectation is exactly the
right side, so the residual's standard error shrinks with the residual.

What the chapter finds: the proofs linearise the networks, so O(sigma^4) holds for a ReLU
net while the noise stays in one linear region (residual 0); a smooth net adds
sigma^2 sum_i d_i tr(H_T^i - H_S^i), d = T(x) - S(x), so the residual is O(sigma^2) unless
d = 0. Eqs 2-3 keep the wrong sigma^2 term even for linear logits. Everything is float64.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core.errors import require
from ..core.jacobian import full_jacobian
from .affine import derived_seed, loglog_slope, mlp
from .palette import styled

STATEMENTS = ("Prop 1", "Prop 2", "Eq 2", "Eq 3")
_SETTINGS = {  # draws per check, input points, sigmas per sweep, draws for the coefficients and the widget
    "smoke": {"samples": 400, "points": 4, "sigmas": 9, "coef_samples": 2000, "widget_samples": 200},
    "cpu": {"samples": 1000, "points": 8, "sigmas": 13, "coef_samples": 6000, "widget_samples": 400},
    "paper": {"samples": 8000, "points": 16, "sigmas": 25, "coef_samples": 40000, "widget_samples": 1000},
}


# ---------------------------------------------------------------- the paper's statements

def eq2_right_side(teacher_probs, student_probs, teacher_jac, student_jac, sigma: float) -> torch.Tensor:
    """Eq 2's right side per example: -sum T_s log S_s - sigma^2 sum grad T_s . grad S_s / S_s.

    ``*_probs``: softmax outputs [B, k]; ``*_jac``: their Jacobians [B, k, ...]. grad S_s / S_s
    is bounded, but computed as written it divides two numbers that underflow together.
    """
    ce = -(teacher_probs * torch.log(student_probs)).sum(dim=1)
    dots = (teacher_jac.flatten(2) * student_jac.flatten(2)).sum(dim=2)
    return ce - sigma ** 2 * (dots / student_probs).sum(dim=1)


def eq3_right_side(labels_onehot, student_probs, student_jac, sigma: float) -> torch.Tensor:
    """Eq 3's right side per example: -sum y log S_s + sigma^2 sum y ||grad S_s||^2 / S_s^2 (the
    exact second-order term is half of the latter minus sigma^2 tr(Hess S_s) / (2 S_s))."""
    ce = -(labels_onehot * torch.log(student_probs)).sum(dim=1)
    norms = student_jac.flatten(2).pow(2).sum(dim=2)
    return ce + sigma ** 2 * (labels_onehot * norms / student_probs.pow(2)).sum(dim=1)


def proposition1(teacher: nn.Module, student: nn.Module, x, sigma: float, samples: int = 2000, seed: int = 0,
                 chunk: int = 256) -> dict:
    """Prop 1: E sum_i (T^i - S^i)^2 at x + xi  vs  sum_i (T^i - S^i)^2 + sigma^2 sum_i ||grad T^i - grad S^i||^2.

    Floats ``lhs``, ``lhs_se``, ``distillation``, ``jacobian`` (before sigma^2), ``rhs``,
    ``residual``, ``residual_se`` (control variate), averaged over the points in ``x``.
    """
    teacher.eval(), student.eval()
    with torch.no_grad():
        d = teacher(x) - student(x)
    g = (full_jacobian(teacher, x) - full_jacobian(student, x)).flatten(2)
    sides = _noisy_squared_error(lambda p: _apply(teacher, p) - _apply(student, p), d, g, x, sigma, samples, seed, chunk)
    return {"sigma": sigma, "distillation": sides.pop("noiseless"), **sides}


def proposition2(model: nn.Module, x, targets, sigma: float, samples: int = 2000, seed: int = 0,
                 chunk: int = 256) -> dict:
    """Prop 2: E sum_i (y^i - S^i(x + xi))^2  vs  sum_i (y^i - S^i(x))^2 + sigma^2 sum_i ||grad S^i||^2.

    ``targets`` [B, k] (e.g. one-hot labels). :func:`proposition1`'s keys, ``loss`` for the noiseless error.
    """
    model.eval()
    with torch.no_grad():
        d = targets - model(x)
    g = -full_jacobian(model, x).flatten(2)  # the residual y - S(x) has Jacobian -J_S
    sides = _noisy_squared_error(lambda p: targets - _apply(model, p), d, g, x, sigma, samples, seed, chunk)
    return {"sigma": sigma, "loss": sides.pop("noiseless"), **sides}


def _draws(x, sigma: float, samples: int, seed: int, chunk: int):
    """Antithetic noise chunks [n, B, ...], each used as +xi and -xi, from a stream of their own
    (``seed`` itself would replay the draws torch.manual_seed(seed) fed into the weights)."""
    require(sigma >= 0 and math.isfinite(sigma), f"sigma must be a non-negative number, got {sigma!r}")
    require(samples >= 2, f"samples must be >= 2, got {samples!r}")
    generator = torch.Generator(device="cpu").manual_seed(1_000_003 * seed + 0x5EED)
    pairs = max(1, samples // 2)
    for start in range(0, pairs, chunk):
        z = torch.randn((min(chunk, pairs - start), *x.shape), generator=generator, dtype=x.dtype)
        yield sigma * z.to(x.device)


def _apply(model: nn.Module, points) -> torch.Tensor:
    """model on a [n, B, ...] stack of inputs -> [n, B, k]."""
    n, b = points.shape[:2]
    with torch.no_grad():
        return model(points.reshape(n * b, *points.shape[2:])).reshape(n, b, -1)


def _estimate(values) -> tuple[float, float]:
    v = torch.cat(values)
    return v.mean().item(), (v.std() / math.sqrt(len(v))).item()


def _noisy_squared_error(residual, d, g, x, sigma, samples, seed, chunk) -> dict:
    """E ||r(x + xi)||^2 for r(x) = d with Jacobian g [B, k, D], its Taylor prediction
    ||d||^2 + sigma^2 ||g||_F^2 and the control-variate residual (exact minus linearised error)."""
    noiseless, jacobian = d.pow(2).sum(1).mean().item(), g.pow(2).sum((1, 2)).mean().item()
    lhs, resid = [], []
    for xi in _draws(x, sigma, samples, seed, chunk):
        lin_step = torch.einsum("bkd,nbd->nbk", g, xi.flatten(2))
        pair_lhs, pair_res = 0.0, 0.0
        for sign in (1.0, -1.0):
            exact = residual(x + sign * xi).pow(2).sum(-1)
            linear = (d + sign * lin_step).pow(2).sum(-1)
            pair_lhs = pair_lhs + exact / 2
            pair_res = pair_res + (exact - linear) / 2
        lhs.append(pair_lhs.mean(1))
        resid.append(pair_res.mean(1))
    (lhs_mean, lhs_se), (res_mean, res_se) = _estimate(lhs), _estimate(resid)
    return {"lhs": lhs_mean, "lhs_se": lhs_se, "noiseless": noiseless, "jacobian": jacobian,
            "rhs": noiseless + sigma ** 2 * jacobian, "residual": res_mean, "residual_se": res_se}


def _softmax(model: nn.Module) -> nn.Module:
    return nn.Sequential(model, nn.Softmax(dim=1)).eval()


def _cross_entropy_check(target, soft, x, rhs, min_prob, sigma, samples, seed, chunk) -> dict:
    """E -sum target(x + xi) log soft(x + xi) (left) against ``rhs`` (right side at x, per example)."""
    with torch.no_grad():
        noiseless = -(target(x) * torch.log(soft(x))).sum(1).mean().item()
    lhs = []
    for xi in _draws(x, sigma, samples, seed, chunk):
        pair = sum(-(target(x + s * xi) * torch.log(_apply(soft, x + s * xi))).sum(-1) / 2 for s in (1.0, -1.0))
        lhs.append(pair.mean(1))
    lhs_mean, lhs_se = _estimate(lhs)
    return {"sigma": sigma, "lhs": lhs_mean, "lhs_se": lhs_se, "rhs": rhs.mean().item(), "noiseless": noiseless,
            "correction": rhs.mean().item() - noiseless, "min_student_prob": min_prob}


def _equation2(teacher, student, x, sigma, samples=2000, seed=0, chunk=256) -> dict:
    """Soft-target cross-entropy under noise vs Eq 2; ``correction`` = its sigma^2 term (with 1/S_s)."""
    t_soft, s_soft = _softmax(teacher), _softmax(student)
    with torch.no_grad():
        tp, sp = t_soft(x), s_soft(x)
    rhs = eq2_right_side(tp, sp, full_jacobian(t_soft, x), full_jacobian(s_soft, x), sigma)
    target = lambda p: _apply(t_soft, p) if p.dim() > x.dim() else t_soft(p)
    return _cross_entropy_check(target, s_soft, x, rhs, sp.min().item(), sigma, samples, seed, chunk)


def _equation3(model, x, labels, sigma, samples=2000, seed=0, chunk=256) -> dict:
    """Label cross-entropy under noise vs Eq 3, with Eq 2's extras."""
    soft = _softmax(model)
    with torch.no_grad():
        sp = soft(x)
    onehot = torch.nn.functional.one_hot(labels, sp.shape[1]).to(sp.dtype)
    rhs = eq3_right_side(onehot, sp, full_jacobian(soft, x), sigma)
    min_prob = sp.gather(1, labels.view(-1, 1)).min().item()
    return _cross_entropy_check(lambda p: onehot, soft, x, rhs, min_prob, sigma, samples, seed, chunk)


def _checks(teacher, student, x, labels) -> dict:
    """The four statements as functions of (sigma, samples, seed)."""
    onehot = torch.nn.functional.one_hot(labels, num_classes=student(x[:1]).shape[1]).to(x.dtype)
    return {"Prop 1": lambda **kw: proposition1(teacher, student, x, **kw),
            "Prop 2": lambda **kw: proposition2(student, x, onehot, **kw),
            "Eq 2": lambda **kw: _equation2(teacher, student, x, **kw),
            "Eq 3": lambda **kw: _equation3(student, x, labels, **kw)}


def _complete(row: dict) -> dict:
    """Uniform columns: noiseless, residual (+ se, how estimated), paper's and measured sigma^2
    coefficients, the latter's se never below the float64 rounding of the loss over sigma^2."""
    row, s2 = dict(row), row["sigma"] ** 2
    row.setdefault("noiseless", row.get("distillation", row.get("loss")))
    if "residual" in row:       # Props 1-2: control variate, precise at small sigma
        row.update(residual_method="control variate", paper_coef=row["jacobian"],
                   measured_coef=row["jacobian"] + row["residual"] / s2, measured_coef_se=row["residual_se"] / s2)
    else:                       # Eqs 2-3: plain Monte-Carlo difference
        row.update(residual=row["lhs"] - row["rhs"], residual_se=row["lhs_se"], residual_method="plain",
                   paper_coef=row["correction"] / s2, measured_coef=(row["lhs"] - row["noiseless"]) / s2,
                   measured_coef_se=row["lhs_se"] / s2)
    rounding = 4 * torch.finfo(torch.float64).eps * max(1.0, abs(row["noiseless"])) / s2
    row["measured_coef_se"] = max(row["measured_coef_se"], rounding)
    return row


def _sweep(check, sigmas, *args, **kwargs) -> pd.DataFrame:
    """``check`` at every sigma, one :func:`_complete` row each."""
    sigmas = [float(s) for s in sigmas]
    require(sigmas and all(s > 0 for s in sigmas), "sigmas must be positive numbers")
    return pd.DataFrame([_complete(check(*args, sigma=s, **kwargs)) for s in sigmas])


def _fit_order(frame, min_z: float = 3.0, sigma_max: float | None = None) -> float:
    """Log-log slope of |residual| against sigma where it is resolved (> ``min_z`` se); NaN below two rows."""
    keep = frame["residual"].abs() > min_z * frame["residual_se"]
    if sigma_max is not None:
        keep &= frame["sigma"] <= sigma_max
    if int(keep.sum()) < 2:
        return float("nan")
    return loglog_slope(frame.loc[keep, "sigma"].to_numpy(), frame.loc[keep, "residual"].to_numpy())


def _losses(teacher, student, labels) -> dict:
    """Each statement's per-example loss as a function of the input [B, ...] -> [B]."""
    log_softmax = torch.nn.functional.log_softmax
    onehot = lambda out: torch.nn.functional.one_hot(labels, out.shape[1]).to(out.dtype)
    return {"Prop 1": lambda v: (teacher(v) - student(v)).pow(2).sum(1),
            "Prop 2": lambda v: (onehot(out := student(v)) - out).pow(2).sum(1),
            "Eq 2": lambda v: -(torch.softmax(teacher(v), 1) * log_softmax(student(v), 1)).sum(1),
            "Eq 3": lambda v: -log_softmax(student(v), 1).gather(1, labels.view(-1, 1)).squeeze(1)}


def _second_order_coefficient(loss, x, chunk: int = 256) -> torch.Tensor:
    """(1/2) tr grad_x^2 loss(x) per input: the exact sigma^2 coefficient of E loss(x + sigma z), from
    D Hessian-vector products (forward over reverse). For ReLU nets: inside x's linear region."""
    import warnings

    from torch.func import grad, jvp, vmap

    x, dim = x.detach(), x[0].numel()
    grad_fn = grad(lambda v: loss(v).sum())
    trace = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    with warnings.catch_warnings():  # forward-mode AD's first use scripts decompositions: a FutureWarning
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        for start in range(0, dim, chunk):
            idx = torch.arange(start, min(start + chunk, dim), device=x.device)
            tangents = torch.zeros(len(idx), len(x), dim, dtype=x.dtype, device=x.device)
            tangents[torch.arange(len(idx)), :, idx] = 1.0
            hvp = vmap(lambda t: jvp(grad_fn, (x,), (t.view_as(x),))[1])(tangents)
            trace += hvp.flatten(2)[torch.arange(len(idx)), :, idx].sum(0)
    return 0.5 * trace


# ---------------------------------------------------------------- the chapter's tables and figures

@dataclass
class Inputs:
    """The chapter's points ``x`` (float64 test images), ``labels``, teacher-student ``pairs``, sigma grid and budgets."""
    x: torch.Tensor
    labels: torch.Tensor
    pairs: dict
    sigmas: np.ndarray
    samples: int
    cfg: dict
    summary: str


def chapter_inputs(preset: str, dataset: str = "digits", data_root=None, samples=None, seed: int = 0) -> Inputs:
    """A ReLU (piecewise-linear) and a tanh (smooth) MLP pair, D -> 32 -> 32 -> k, teacher and student
    with different seeded weights, on the first test images; the Monte-Carlo budget of ``preset``."""
    from ..core import data
    from .report import data_available

    require(preset in _SETTINGS, f"unknown preset {preset!r}; choose one of {', '.join(_SETTINGS)}")
    cfg = dict(_SETTINGS[preset])
    available = data_available(dataset, data_root)
    require(available, f"{available.reason}; see the parameters above")
    ds = data.load(dataset, data_root)
    x, labels = ds.test.x[:cfg["points"]].double(), ds.test.y[:cfg["points"]]
    pairs = {"ReLU MLP": theory_pair("relu", seed, x[0].numel(), ds.num_classes),
             "tanh MLP": theory_pair("tanh", seed, x[0].numel(), ds.num_classes)}
    samples = samples or cfg["samples"]
    return Inputs(x, labels, pairs, np.logspace(-4, 0, cfg["sigmas"]), samples, cfg,
                  f"preset {preset} · dataset {ds.name} · {len(x)} input points · {samples} draws per check · seed {seed}")


def theory_pair(activation: str, seed: int = 0, in_features: int = 1024, num_classes: int = 10, hidden: int = 32):
    """A float64 teacher and student MLP (``relu``, ``tanh`` or ``softplus``) of one shape, different seeded weights."""
    make = lambda role: mlp(in_features, num_classes, hidden, 2, activation, seed=derived_seed(seed, f"{role}-{activation}"))
    return make("teacher"), make("student")


def statement_sweeps(pairs: dict, x, labels, sigmas, samples: int = 2000, seed: int = 0) -> dict:
    """Section 1's figures: per pair, every statement at every sigma (a ``statement`` column), with
    residual (lhs - rhs for Eqs 2-3, no control variate there), ``paper_coef`` (its sigma^2 term over
    sigma^2) and ``measured_coef`` ((E loss - noiseless) / sigma^2, with ``measured_coef_se``)."""
    return {name: pd.concat([_sweep(check, sigmas, samples=samples, seed=seed).assign(statement=statement)
                             for statement, check in _checks(T, S, x, labels).items()], ignore_index=True)
            for name, (T, S) in pairs.items()}


def exact_coefficients(pairs: dict, x, labels) -> dict:
    """Per pair and statement, the exact sigma^2 coefficient (1/2) tr grad_x^2 L, averaged over ``x``."""
    return {name: {k: _second_order_coefficient(L, x).mean().item() for k, L in _losses(T, S, labels).items()}
            for name, (T, S) in pairs.items()}


def coefficient_figure(sweep: pd.DataFrame, taylor2: dict, title: str):
    """One pair's statements over sigma: measured (E loss - loss(x)) / sigma^2 with a 95% band against
    the paper's sigma^2 term / sigma^2 (LHS vs RHS, noiseless part removed), the exact term dashed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(7.0, 6.4))
    for ax, statement in zip(axes.flat, STATEMENTS):
        f = sweep[sweep["statement"] == statement].sort_values("sigma")
        line, = ax.plot(f["sigma"], f["measured_coef"], marker="o", ms=3, label="measured (LHS)")
        band = 1.96 * f["measured_coef_se"]
        ax.fill_between(f["sigma"], f["measured_coef"] - band, f["measured_coef"] + band, color=line.get_color(), alpha=0.25)
        ax.plot(f["sigma"], f["paper_coef"], color="C3", lw=2, label="paper (RHS)")
        ax.axhline(taylor2[statement], color="k", ls="--", lw=1, label=r"exact $\frac{1}{2}\mathrm{tr}\,\nabla^2 L$")
        ax.set_xscale("log"), ax.set_xlabel(r"$\sigma$"), ax.set_title(statement)
        ax.set_ylabel(r"$(\mathbb{E}L(x+\xi) - L(x))/\sigma^2$")
    axes[0, 0].legend(fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def order_sweeps(pairs: dict, sweeps: dict, x0, sigmas, samples: int = 2000, seed: int = 0) -> dict:
    """Section 2's figure: the residuals of Props 1-2 -- ReLU, tanh (d != 0) and tanh with d = 0 at
    the one point ``x0`` (the student's last bias shifted so S(x0) = T(x0); for Prop 2 the target S(x0))."""
    T, S = pairs["tanh MLP"]
    with torch.no_grad():
        own_output = S(x0)
    return {"Prop 1, ReLU": sweeps["ReLU MLP"].query("statement == 'Prop 1'"),
            "Prop 1, tanh, d ≠ 0": sweeps["tanh MLP"].query("statement == 'Prop 1'"),
            "Prop 1, tanh, d = 0": _sweep(proposition1, sigmas, T, _match_output(S, T, x0), x0, samples=samples, seed=seed),
            "Prop 2, tanh, d ≠ 0": sweeps["tanh MLP"].query("statement == 'Prop 2'"),
            "Prop 2, tanh, d = 0": _sweep(proposition2, sigmas, S, x0, own_output, samples=samples, seed=seed)}


@torch.no_grad()
def _match_output(student, teacher, x0):
    """A copy of ``student`` whose last bias makes S(x0) = T(x0): d = 0, Jacobians and Hessians unchanged."""
    require(len(x0) == 1, "match_output needs a single input point x0 of shape [1, ...]")
    clone = copy.deepcopy(student).eval()
    last = [m for m in clone.modules() if isinstance(m, nn.Linear)][-1]
    require(last.bias is not None, "the student's last layer needs a bias to match outputs")
    last.bias += (teacher.eval()(x0) - clone(x0)).squeeze(0)
    return clone


def residual_orders(frames: dict, sigma_max: float = 0.1) -> dict:
    """The order in sigma of each sweep's resolved residual (log-log slope up to ``sigma_max``): 2 or 4."""
    return {label: _fit_order(frame, sigma_max=sigma_max) for label, frame in frames.items()}


def residuals_figure(frames: dict, floor: float = 1e-20, reference_slopes=(2, 4)):
    """|LHS - RHS| of :func:`order_sweeps` against sigma, log-log, with slope guides; unresolved points
    (|r| < 2 se) hollow, exact zeros of piecewise-linear nets on the ``floor``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    for label, f in frames.items():
        f = f.sort_values("sigma")
        r = np.maximum(f["residual"].abs().to_numpy(), floor)
        resolved = (f["residual"].abs() > 2 * f["residual_se"]).to_numpy() & (r > floor)
        line, = ax.plot(f["sigma"], r, lw=1, label=label)
        ax.scatter(f["sigma"][resolved], r[resolved], color=line.get_color(), s=18)
        ax.scatter(f["sigma"][~resolved], r[~resolved], facecolors="none", edgecolors=line.get_color(), s=18)
    sig = np.asarray(sorted(set().union(*[set(f["sigma"]) for f in frames.values()])))
    for p in reference_slopes:
        ax.plot(sig, 1e-3 * (sig / sig.max()) ** p, color="grey", ls=":", lw=1)
        ax.text(sig[0], 1e-3 * (sig[0] / sig.max()) ** p, rf"$\sigma^{p}$", color="grey", ha="right", va="center")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_ylim(floor / 3, None)
    ax.set_xlabel(r"$\sigma$"), ax.set_ylabel(r"$|\mathrm{LHS} - \mathrm{RHS}|$")
    ax.legend()
    ax.set_title("|LHS - RHS| of Props 1 and 2 (control-variate estimate)")
    return fig


def coefficient_table(pairs: dict, x, labels, sigma: float, samples: int = 10000, seed: int = 0) -> pd.DataFrame:
    """Section 3's table: per (net, statement) the sigma^2 coefficient three ways -- ``paper``, ``measured``
    (Monte-Carlo at ``sigma``, with ``measured_se``) and ``taylor2`` (exact) -- and the gaps ``z_paper``,
    ``z_taylor2`` to the measurement in standard errors: |z_paper| >> 3 means the paper's term is not the expansion's."""
    rows = []
    for net, (T, S) in pairs.items():
        losses = _losses(T, S, labels)
        for name, check in _checks(T, S, x, labels).items():
            r = _complete(check(sigma=sigma, samples=samples, seed=seed))
            t2, se = _second_order_coefficient(losses[name], x).mean().item(), r["measured_coef_se"]
            rows.append({"net": net, "statement": name, "paper": r["paper_coef"], "measured": r["measured_coef"],
                         "measured_se": se, "taylor2": t2, "z_paper": (r["paper_coef"] - r["measured_coef"]) / se,
                         "z_taylor2": (t2 - r["measured_coef"]) / se})
    return pd.DataFrame(rows).set_index(["net", "statement"])


def coefficient_table_shown(coef: pd.DataFrame, sigma: float = 1e-3):
    """:func:`coefficient_table` as the book shows it."""
    shown = coef.rename(columns={"measured_se": "se", "taylor2": "Taylor-2", "z_paper": "z paper", "z_taylor2": "z Taylor-2"})
    at = f"{sigma:.0e}".replace("e-0", "e-")
    return styled(shown, f"σ² coefficients at σ = {at}: the paper's, measured (± standard error se) and exact "
                  "(Taylor-2); z: gap to the measurement in standard errors",
                  formats={"paper": "{:.4g}", "measured": "{:.4g}", "se": "{:.1e}", "Taylor-2": "{:.4g}",
                           "z paper": "{:.0f}", "z Taylor-2": "{:.1f}"})


def confident_wrong(student: nn.Module, x0, label: int, margins, sigma: float = 1e-3, samples: int = 400,
                    seed: int = 0) -> pd.DataFrame:
    """Section 4's figure: Eq 3's sigma^2 term for students ever more confident in a wrong class.

    Per margin a the student's top wrong class gets a bias + a, so S_s[label] falls like e^-a.
    Columns ``p_label``; ``paper64`` / ``paper32``: ||grad S_s||^2 / S_s^2 as written in float64 /
    float32; ``log_space``: ||grad log S_s||^2, what it equals mathematically; ``taylor2``: the
    exact coefficient; ``measured`` (+ ``measured_se``): Monte-Carlo at ``sigma``; ``roundoff``:
    the smallest coefficient that Monte-Carlo resolves (float64 rounding of the loss / sigma^2).
    """
    require(len(x0) == 1, "confident_wrong needs one input point x0 of shape [1, ...]")
    labels = torch.as_tensor([label], device=x0.device)
    with torch.no_grad():
        logits = student.eval()(x0)[0].clone()
    logits[label] = -math.inf
    wrong, rows = int(logits.argmax()), []
    for a in margins:
        net = copy.deepcopy(student).eval()
        with torch.no_grad():
            [m for m in net.modules() if isinstance(m, nn.Linear)][-1].bias[wrong] += a
        row = {"margin": float(a)}
        for dtype, key in ((torch.float64, "paper64"), (torch.float32, "paper32")):
            soft, xx = _softmax(copy.deepcopy(net).to(dtype)), x0.to(dtype)
            with torch.no_grad():
                probs = soft(xx)
            onehot = torch.nn.functional.one_hot(labels, probs.shape[1]).to(dtype)
            row[key] = (eq3_right_side(onehot, probs, full_jacobian(soft, xx), 1.0)
                        + (onehot * torch.log(probs)).sum(1)).item()
            if dtype == torch.float64:
                row["p_label"] = probs[0, label].item()
        eq3 = _losses(net, net, labels)["Eq 3"]
        xg = x0.detach().requires_grad_(True)
        row["log_space"] = torch.autograd.grad(eq3(xg).sum(), xg)[0].pow(2).sum().item()
        row["taylor2"] = _second_order_coefficient(eq3, x0).item()
        r = _complete(_equation3(net, x0, labels, sigma, samples=samples, seed=seed))
        row["measured"], row["measured_se"] = r["measured_coef"], r["measured_coef_se"]
        row["roundoff"] = 8 * torch.finfo(torch.float64).eps * max(1.0, abs(r["noiseless"])) / sigma ** 2
        rows.append(row)
    return pd.DataFrame(rows)


def confident_wrong_figure(wrong: pd.DataFrame):
    """:func:`confident_wrong` against the label's probability; float32 zeros and NaNs marked above."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    p, ok = wrong["p_label"], np.isfinite(wrong["paper32"]) & (wrong["paper32"] > 0)
    ax.loglog(p, wrong["paper64"], "o-", color="C3", label="Eq 3 as written, float64")
    ax.loglog(p, wrong["log_space"], "--", color="k", lw=1, label=r"$\|\nabla \log S_s^c\|^2$ (same quantity)")
    ax.loglog(p[ok], wrong["paper32"][ok], "s", mfc="none", color="C1", label="Eq 3 as written, float32")
    ax.scatter(p[~ok], np.full((~ok).sum(), wrong["paper64"].max() * 3), marker="x", color="C1", label="float32: 0 or NaN")
    ax.loglog(p, wrong["taylor2"], "o-", color="C0", label=r"exact $\frac{1}{2}\mathrm{tr}\nabla^2(-\log S_s^c)$")
    m = (wrong["measured"] > 2 * wrong["measured_se"]) & (wrong["measured"] > wrong["roundoff"])
    ax.errorbar(p[m], wrong["measured"][m], yerr=1.96 * wrong["measured_se"][m], fmt="D", ms=4, color="C2",
                label="Monte-Carlo, 95% CI (where above rounding)")
    ax.invert_xaxis()
    ax.set_xlabel(r"student's probability of the label $S_s^c(x)$ (confidently wrong →)")
    ax.set_ylabel(r"$\sigma^2$ coefficient of Eq 3")
    ax.legend(fontsize=9)
    return fig


def at_sigma_figure(inputs: Inputs, taylor2: dict, net: str, sigma: float, seed: int = 0):
    """The explorer: for one pair and sigma, each statement's noise term E loss(x + xi) - loss(x) (95% CI)
    beside the paper's sigma^2 term and the exact sigma^2 (1/2) tr Hessian, in 2 x 2 panels."""
    import matplotlib.pyplot as plt

    T, S = inputs.pairs[net]
    fig, axes = plt.subplots(2, 2, figsize=(7.0, 5.2))
    for ax, (name, check) in zip(axes.flat, _checks(T, S, inputs.x, inputs.labels).items()):
        r = check(sigma=sigma, samples=inputs.cfg["widget_samples"], seed=seed)
        noiseless = r.get("noiseless", r.get("distillation", r.get("loss")))
        heights = [r["lhs"] - noiseless, r["rhs"] - noiseless, sigma ** 2 * taylor2[net][name]]
        ax.bar(["measured", "paper", "Taylor-2"], heights, color=["C0", "C3", "0.4"])
        ax.errorbar([0], heights[:1], yerr=[1.96 * r["lhs_se"]], color="k", capsize=3)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(name)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    fig.suptitle(f"{net}, sigma = {sigma:.2g}")
    fig.tight_layout()
    return fig


def ratio_table(sweeps: dict, sigmas):
    """The paper's sigma^2 term over the measured noise term at the smallest, middle and largest sigma."""
    rows = []
    for name, sweep in sweeps.items():
        for s in (sigmas[0], sigmas[len(sigmas) // 2], sigmas[-1]):
            frame = sweep[np.isclose(sweep["sigma"], s)].set_index("statement")
            rows.append({"net": name, "σ": f"{s:.0e}", **(frame["paper_coef"] / frame["measured_coef"]).to_dict()})
    ratio = pd.DataFrame(rows).set_index(["net", "σ"])[list(STATEMENTS)]
    return styled(ratio, "The paper's σ² term ÷ the measured noise term (1.00: the paper is right)")


def proposition_orders(preset: str = "smoke", seed: int = 0) -> dict:
    """Props 1-2 as the verdict table reads them, on digits test images: per statement ``order`` (of the
    smooth pair's remainder in sigma, sigma <= 0.1), ``relu_exact`` (the ReLU pair's remainder below
    1e-12 for every sigma <= 1e-3) and ``scale`` (what was measured)."""
    inputs = chapter_inputs(preset, "digits", seed=seed)
    sweeps = statement_sweeps(inputs.pairs, inputs.x, inputs.labels, inputs.sigmas, inputs.samples, seed)
    out = {}
    for prop in ("Prop 1", "Prop 2"):
        relu = sweeps["ReLU MLP"].query(f"statement == '{prop}' and sigma <= 1e-3")
        out[prop] = {"relu_exact": bool((relu["residual"].abs() < 1e-12).all()),
                     "order": _fit_order(sweeps["tanh MLP"].query(f"statement == '{prop}'"), sigma_max=0.1),
                     "scale": f"MLP pairs, {len(inputs.x)} digits images, {inputs.samples} noise draws, float64, CPU"}
    return out
