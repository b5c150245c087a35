"""Monte-Carlo checks of Proposition 1, Proposition 2 and Equations 2-3.

Each function compares, at input points ``x``, the *left side* (an expectation over
input noise xi = sigma * z, estimated by sampling) with the *right side* the paper
derives from a Taylor expansion. Values are averaged over the points in ``x``.

Two variance reductions make the small-sigma regime measurable:

* antithetic pairs (xi, -xi) cancel every odd-order term of the noise exactly;
* for Props 1-2 the residual LHS - RHS is estimated with the linearised network as a
  control variate: per draw, the squared error at x + xi minus the squared error of
  the first-order Taylor model at the same xi, whose expectation is exactly the RHS.
  So the residual's standard error shrinks with the residual itself and a log-log
  plot shows its order in sigma.

What that plot shows (chapter 2): the paper's proof linearises the networks, so its
O(sigma^4) holds when they *are* locally linear -- a piecewise-linear (ReLU) net while
the noise stays inside one linear region, where the residual is 0. For smooth nets
the second-order Taylor term adds sigma^2 * sum_i d_i tr(H_T^i - H_S^i), with
d = T(x) - S(x): the residual is O(sigma^2) unless the student already matches the
teacher at x (d = 0), when it is O(sigma^4).

Use float64 models and inputs for clean numbers.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..core.errors import require
from ..core.jacobian import full_jacobian


def eq2_right_side(teacher_probs: torch.Tensor, student_probs: torch.Tensor,
                   teacher_jac: torch.Tensor, student_jac: torch.Tensor, sigma: float) -> torch.Tensor:
    """Right side of Eq 2, per example: -sum T_s log S_s - sigma^2 sum grad T_s . grad S_s / S_s.

    ``*_probs`` are softmax outputs [B, k]; ``*_jac`` their full Jacobians [B, k, ...].
    The paper calls this form unstable because of the 1/S_s factor. grad S_s / S_s =
    grad log S_s is bounded in exact arithmetic, but computed as written it divides two
    numbers that underflow together for classes the student thinks unlikely (0/0 in
    float32); and, unlike the squared-error form, it is not the second-order expansion
    (it drops Hessian terms of the same order) -- chapter 2 measures both.
    """
    ce = -(teacher_probs * torch.log(student_probs)).sum(dim=1)
    dots = (teacher_jac.flatten(2) * student_jac.flatten(2)).sum(dim=2)
    return ce - sigma ** 2 * (dots / student_probs).sum(dim=1)


def eq3_right_side(labels_onehot: torch.Tensor, student_probs: torch.Tensor,
                   student_jac: torch.Tensor, sigma: float) -> torch.Tensor:
    """Right side of Eq 3, per example: -sum y log S_s + sigma^2 sum y ||grad S_s||^2 / S_s^2.

    Note the 1/S_s^2 factor (compare the squared-error form of Prop 2, which has none),
    and that the exact second-order term is half this one minus sigma^2 tr(Hess S_s)/(2 S_s).
    """
    ce = -(labels_onehot * torch.log(student_probs)).sum(dim=1)
    norms = student_jac.flatten(2).pow(2).sum(dim=2)
    return ce + sigma ** 2 * (labels_onehot * norms / student_probs.pow(2)).sum(dim=1)


def _draws(x: torch.Tensor, sigma: float, samples: int, seed: int, chunk: int):
    """Yield antithetic noise chunks [n, B, *x.shape[1:]] (each used as +xi and -xi)."""
    require(sigma >= 0 and math.isfinite(sigma), f"sigma must be a non-negative number, got {sigma!r}")
    require(samples >= 2, f"samples must be >= 2, got {samples!r}")
    # A stream of its own: seeding with ``seed`` itself would replay the draws that
    # torch.manual_seed(seed) fed into the networks' initial weights.
    generator = torch.Generator(device="cpu").manual_seed(1_000_003 * seed + 0x5EED)
    pairs = max(1, samples // 2)
    for start in range(0, pairs, chunk):
        n = min(chunk, pairs - start)
        z = torch.randn((n, *x.shape), generator=generator, dtype=x.dtype)
        yield sigma * z.to(x.device)


def _apply(model: nn.Module, points: torch.Tensor) -> torch.Tensor:
    """model on a [n, B, ...] stack of inputs -> [n, B, k]."""
    n, b = points.shape[:2]
    with torch.no_grad():
        return model(points.reshape(n * b, *points.shape[2:])).reshape(n, b, -1)


def _estimate(values: list[torch.Tensor]) -> tuple[float, float]:
    v = torch.cat(values)
    return v.mean().item(), (v.std() / math.sqrt(len(v))).item()


def _softmax_model(model: nn.Module, temperature: float) -> nn.Module:
    return nn.Sequential(model, _Scale(1.0 / temperature), nn.Softmax(dim=1))


class _Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def proposition1(teacher: nn.Module, student: nn.Module, x: torch.Tensor, sigma: float,
                 samples: int = 2000, seed: int = 0, chunk: int = 256) -> dict:
    """E sum_i (T^i - S^i)^2 at x + xi  vs  sum_i (T^i - S^i)^2 + sigma^2 sum_i ||grad T^i - grad S^i||^2.

    Returns floats: ``lhs``, ``lhs_se``, ``distillation``, ``jacobian`` (the sum of
    squared Jacobian differences, before sigma^2), ``rhs``, ``residual``, ``residual_se``.
    """
    teacher.eval(), student.eval()
    with torch.no_grad():
        d = teacher(x) - student(x)                                   # [B, k]
    g = (full_jacobian(teacher, x) - full_jacobian(student, x)).flatten(2)  # [B, k, D]
    sides = _noisy_squared_error(lambda p: _apply(teacher, p) - _apply(student, p), d, g, x, sigma,
                                 samples, seed, chunk)
    return {"sigma": sigma, "distillation": sides.pop("noiseless"), **sides}


def _noisy_squared_error(residual, d, g, x, sigma, samples, seed, chunk) -> dict:
    """E ||r(x + xi)||^2 for a residual r with r(x) = d and Jacobian g ([B, k, D]).

    Also its Taylor prediction ||d||^2 + sigma^2 ||g||_F^2 and the control-variate
    residual (exact minus linearised squared error, per antithetic pair).
    """
    noiseless = d.pow(2).sum(1).mean().item()
    jacobian = g.pow(2).sum((1, 2)).mean().item()
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
    lhs_mean, lhs_se = _estimate(lhs)
    res_mean, res_se = _estimate(resid)
    return {"lhs": lhs_mean, "lhs_se": lhs_se, "noiseless": noiseless, "jacobian": jacobian,
            "rhs": noiseless + sigma ** 2 * jacobian, "residual": res_mean, "residual_se": res_se}


def proposition2(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, sigma: float,
                 samples: int = 2000, seed: int = 0, chunk: int = 256) -> dict:
    """E sum_i (y^i - S^i(x + xi))^2  vs  sum_i (y^i - S^i(x))^2 + sigma^2 sum_i ||grad S^i||^2.

    ``targets``: [B, k] target vectors (e.g. one-hot labels). Same keys as
    :func:`proposition1`, with ``loss`` for the noiseless squared error and
    ``jacobian`` for the Jacobian-norm term.
    """
    model.eval()
    with torch.no_grad():
        d = targets - model(x)
    g = -full_jacobian(model, x).flatten(2)  # the residual y - S(x) has Jacobian -J_S
    sides = _noisy_squared_error(lambda p: targets - _apply(model, p), d, g, x, sigma, samples, seed, chunk)
    return {"sigma": sigma, "loss": sides.pop("noiseless"), **sides}


def equation2(teacher: nn.Module, student: nn.Module, x: torch.Tensor, sigma: float, temperature: float = 1.0,
              samples: int = 2000, seed: int = 0, chunk: int = 256) -> dict:
    """Soft-target cross-entropy under noise (left) vs the paper's Eq 2 (right).

    Also returns ``noiseless`` (the cross-entropy at x), ``min_student_prob`` and
    ``correction`` (right minus noiseless): the sigma^2 term, which carries 1/S_s.
    """
    t_soft, s_soft = _softmax_model(teacher, temperature).eval(), _softmax_model(student, temperature).eval()
    with torch.no_grad():
        tp, sp = t_soft(x), s_soft(x)
    rhs = eq2_right_side(tp, sp, full_jacobian(t_soft, x), full_jacobian(s_soft, x), sigma)
    lhs = []
    for xi in _draws(x, sigma, samples, seed, chunk):
        pair = 0.0
        for sign in (1.0, -1.0):
            pair = pair + (-(_apply(t_soft, x + sign * xi) * torch.log(_apply(s_soft, x + sign * xi))).sum(-1)) / 2
        lhs.append(pair.mean(1))
    lhs_mean, lhs_se = _estimate(lhs)
    noiseless = -(tp * torch.log(sp)).sum(1).mean().item()
    return {"sigma": sigma, "lhs": lhs_mean, "lhs_se": lhs_se, "rhs": rhs.mean().item(),
            "noiseless": noiseless, "correction": rhs.mean().item() - noiseless,
            "min_student_prob": sp.min().item()}


def equation3(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, sigma: float,
              samples: int = 2000, seed: int = 0, chunk: int = 256) -> dict:
    """Label cross-entropy under noise (left) vs the paper's Eq 3 (right), with the same extras as Eq 2."""
    soft = _softmax_model(model, 1.0).eval()
    with torch.no_grad():
        sp = soft(x)
    onehot = torch.nn.functional.one_hot(labels, sp.shape[1]).to(sp.dtype)
    rhs = eq3_right_side(onehot, sp, full_jacobian(soft, x), sigma)
    lhs = []
    for xi in _draws(x, sigma, samples, seed, chunk):
        pair = 0.0
        for sign in (1.0, -1.0):
            pair = pair + (-(onehot * torch.log(_apply(soft, x + sign * xi))).sum(-1)) / 2
        lhs.append(pair.mean(1))
    lhs_mean, lhs_se = _estimate(lhs)
    noiseless = -(onehot * torch.log(sp)).sum(1).mean().item()
    return {"sigma": sigma, "lhs": lhs_mean, "lhs_se": lhs_se, "rhs": rhs.mean().item(),
            "noiseless": noiseless, "correction": rhs.mean().item() - noiseless,
            "min_student_prob": sp.gather(1, labels.view(-1, 1)).min().item()}

# ---------------------------------------------------------------- σ sweeps: the chapters' measurements built on the checks above
# Chapter 2's view of the propositions: over a grid of sigmas, against exact second-order terms.
# 
# The checks of :mod:`lakt.analysis.propositions` hold at one sigma. Chapter 2 needs them
# over a grid of sigmas, the order of the residual (a log-log slope), and a reference for
# the sigma^2 term that does not come from the paper: the exact second-order Taylor
# coefficient
# 
#     E L(x + xi) = L(x) + sigma^2 * (1/2) tr grad_x^2 L(x) + O(sigma^4)      (xi = sigma z)
# 
# (odd orders vanish), computed from the Hessian of the loss with respect to the input.
# Comparing the paper's sigma^2 term with it tells which terms the paper's derivation
# keeps and which it drops.

STATEMENTS = ("Prop 1", "Prop 2", "Eq 2", "Eq 3")

# Monte-Carlo budgets of chapter 2 per preset: draws per check, input points,
# sigmas in the sweeps, draws for the sigma^2 coefficients and for the widget.
CHAPTER2_SETTINGS = {
    "smoke": {"samples": 400, "points": 4, "sigmas": 9, "coef_samples": 2000, "widget_samples": 200},
    "cpu": {"samples": 1000, "points": 8, "sigmas": 13, "coef_samples": 6000, "widget_samples": 400},
    "paper": {"samples": 8000, "points": 16, "sigmas": 25, "coef_samples": 40000, "widget_samples": 1000},
}


def chapter2_settings(preset: str) -> dict:
    """Sample counts for chapter 2 under ``preset`` (smoke: seconds; cpu: about a minute)."""
    require(preset in CHAPTER2_SETTINGS, f"unknown preset {preset!r}; choose one of {', '.join(CHAPTER2_SETTINGS)}")
    return dict(CHAPTER2_SETTINGS[preset])


def theory_pair(activation: str, seed: int = 0, in_features: int = 1024, num_classes: int = 10,
                hidden: int = 32) -> tuple[nn.Module, nn.Module]:
    """A float64 teacher and student MLP with the same shape and different seeded weights.

    ``relu`` gives piecewise-linear nets (the paper's setting), ``tanh`` / ``softplus``
    smooth ones. Seeds are derived from ``seed`` so they never replay the noise stream.
    """
    from .affine import derived_seed, mlp

    make = lambda role: mlp(in_features, num_classes, hidden, 2, activation,
                            seed=derived_seed(seed, f"{role}-{activation}"))
    return make("teacher"), make("student")


@torch.no_grad()
def match_output(student: nn.Module, teacher: nn.Module, x0: torch.Tensor) -> nn.Module:
    """A copy of ``student`` whose last layer's bias is shifted so that S(x0) = T(x0) exactly.

    At that one point d = T(x0) - S(x0) = 0, the case in which Prop 1's residual is
    O(sigma^4) even for smooth nets; the Jacobians (and Hessians) are unchanged.
    """
    import copy

    require(len(x0) == 1, "match_output needs a single input point x0 of shape [1, ...]")
    clone = copy.deepcopy(student).eval()
    last = [m for m in clone.modules() if isinstance(m, nn.Linear)][-1]
    require(last.bias is not None, "the student's last layer needs a bias to match outputs")
    last.bias += (teacher.eval()(x0) - clone(x0)).squeeze(0)
    return clone


def _checks(teacher, student, x, labels):
    """The four checks as functions of (sigma, samples, seed)."""
    onehot = torch.nn.functional.one_hot(labels, num_classes=student(x[:1]).shape[1]).to(x.dtype)
    return {
        "Prop 1": lambda **kw: proposition1(teacher, student, x, **kw),
        "Prop 2": lambda **kw: proposition2(student, x, onehot, **kw),
        "Eq 2": lambda **kw: equation2(teacher, student, x, **kw),
        "Eq 3": lambda **kw: equation3(student, x, labels, **kw),
    }


def _complete(row: dict) -> dict:
    """Add uniform columns: noiseless, residual (+ se, how estimated) and sigma^2 coefficients."""
    row = dict(row)
    s2 = row["sigma"] ** 2
    row.setdefault("noiseless", row.get("distillation", row.get("loss")))
    if "residual" in row:       # Props 1-2: control-variate residual, precise at small sigma
        row["residual_method"] = "control variate"
        row["paper_coef"] = row["jacobian"]
        row["measured_coef"] = row["jacobian"] + row["residual"] / s2
        row["measured_coef_se"] = row["residual_se"] / s2
    else:                       # Eqs 2-3: plain Monte-Carlo difference
        row["residual"], row["residual_se"] = row["lhs"] - row["rhs"], row["lhs_se"]
        row["residual_method"] = "plain"
        row["paper_coef"] = row["correction"] / s2  # rounding ~ eps * |loss| / sigma^2
        row["measured_coef"] = (row["lhs"] - row["noiseless"]) / s2
        row["measured_coef_se"] = row["lhs_se"] / s2
    # float64 rounding of the losses bounds how well any coefficient can be known
    rounding = 4 * torch.finfo(torch.float64).eps * max(1.0, abs(row["noiseless"])) / s2
    row["measured_coef_se"] = max(row["measured_coef_se"], rounding)
    return row


def sweep(check, sigmas, *args, **kwargs):
    """Run ``check`` (e.g. :func:`proposition1`) at every sigma; one DataFrame row per sigma.

    ``args`` / ``kwargs`` are passed through (models, x, samples, seed...). Besides
    the check's own keys, every row has ``noiseless``, ``residual``/``residual_se``
    (lhs - rhs for Eqs 2-3, where no control variate exists), ``measured_coef`` =
    (E loss - noiseless) / sigma^2 with its standard error (never below the float64
    rounding of the loss divided by sigma^2), and ``paper_coef`` = the paper's sigma^2
    term divided by sigma^2.
    """
    import pandas as pd

    sigmas = [float(s) for s in sigmas]
    require(sigmas and all(s > 0 for s in sigmas), "sigmas must be positive numbers")
    return pd.DataFrame([_complete(check(*args, sigma=s, **kwargs)) for s in sigmas])


def sweep_all(teacher, student, x, labels, sigmas, samples: int = 2000, seed: int = 0):
    """:func:`sweep` of all four statements; a DataFrame with a ``statement`` column."""
    import pandas as pd

    frames = []
    for name, check in _checks(teacher, student, x, labels).items():
        frames.append(sweep(check, sigmas, samples=samples, seed=seed).assign(statement=name))
    return pd.concat(frames, ignore_index=True)


def fit_order(frame, min_z: float = 3.0, sigma_max: float | None = None) -> float:
    """Log-log slope of |residual| against sigma over the rows where the residual is resolved.

    Rows count when |residual| > ``min_z`` standard errors (and sigma <= ``sigma_max``);
    NaN if fewer than two do. Slope 2 means an O(sigma^2) residual, 4 means O(sigma^4).
    """
    from .affine import loglog_slope

    keep = frame["residual"].abs() > min_z * frame["residual_se"]
    if sigma_max is not None:
        keep &= frame["sigma"] <= sigma_max
    if int(keep.sum()) < 2:
        return float("nan")
    return loglog_slope(frame.loc[keep, "sigma"].to_numpy(), frame.loc[keep, "residual"].to_numpy())


def noisy_losses(teacher: nn.Module, student: nn.Module, labels: torch.Tensor, temperature: float = 1.0) -> dict:
    """The per-example loss under each statement's expectation, as functions of the input [B, ...] -> [B].

    Prop 1: sum (T - S)^2; Prop 2: sum (y - S)^2 with one-hot y; Eq 2: soft-target
    cross-entropy -sum T_s log S_s; Eq 3: label cross-entropy -log S_s[label].
    """
    log_softmax = torch.nn.functional.log_softmax

    def onehot(out):
        return torch.nn.functional.one_hot(labels, out.shape[1]).to(out.dtype)

    return {
        "Prop 1": lambda v: (teacher(v) - student(v)).pow(2).sum(1),
        "Prop 2": lambda v: (onehot(out := student(v)) - out).pow(2).sum(1),
        "Eq 2": lambda v: -(torch.softmax(teacher(v) / temperature, 1)
                            * log_softmax(student(v) / temperature, 1)).sum(1),
        "Eq 3": lambda v: -log_softmax(student(v), 1).gather(1, labels.view(-1, 1)).squeeze(1),
    }


def second_order_coefficient(loss, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """(1/2) tr grad_x^2 loss(x) per input [B]: the exact sigma^2 coefficient of E loss(x + sigma z).

    ``loss`` maps inputs [B, ...] to per-example losses [B] (each depending on its own
    input only, e.g. a model in eval mode). The Hessian's diagonal is read off D
    Hessian-vector products (forward-over-reverse, ``chunk`` directions at a time), so
    this is for small inputs and small nets. For ReLU nets it is the coefficient
    inside x's linear region (autograd sets the second derivative of a kink to 0).
    """
    import warnings

    from torch.func import grad, jvp, vmap

    x = x.detach()
    dim = x[0].numel()
    grad_fn = grad(lambda v: loss(v).sum())
    trace = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    with warnings.catch_warnings():  # forward-mode AD's first use scripts decompositions: a FutureWarning
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        for start in range(0, dim, chunk):
            idx = torch.arange(start, min(start + chunk, dim), device=x.device)
            tangents = torch.zeros(len(idx), len(x), dim, dtype=x.dtype, device=x.device)
            tangents[torch.arange(len(idx)), :, idx] = 1.0
            hvp = vmap(lambda t: jvp(grad_fn, (x,), (t.view_as(x),))[1])(tangents)  # [n, B, ...]
            trace += hvp.flatten(2)[torch.arange(len(idx)), :, idx].sum(0)
    return 0.5 * trace


def coefficients(teacher: nn.Module, student: nn.Module, x: torch.Tensor, labels: torch.Tensor,
                 sigma: float, samples: int = 10000, seed: int = 0):
    """The sigma^2 coefficient of every statement three ways, one row each.

    ``paper``: the paper's sigma^2 term / sigma^2; ``measured``: Monte-Carlo
    (E loss(x + xi) - loss(x)) / sigma^2 at ``sigma`` with its standard error;
    ``taylor2``: the exact (1/2) tr Hessian. ``z_paper`` / ``z_taylor2`` are the
    gaps to the measurement in standard errors. At small sigma the measurement
    converges to ``taylor2`` (for smooth losses), so |z_paper| >> 3 means the paper's
    sigma^2 term is not the expansion's.
    """
    import pandas as pd

    losses_of_x = noisy_losses(teacher, student, labels)
    rows = []
    for name, check in _checks(teacher, student, x, labels).items():
        r = _complete(check(sigma=sigma, samples=samples, seed=seed))
        t2 = second_order_coefficient(losses_of_x[name], x).mean().item()
        se = r["measured_coef_se"]
        rows.append({"statement": name, "paper": r["paper_coef"], "measured": r["measured_coef"],
                     "measured_se": se, "taylor2": t2,
                     "z_paper": (r["paper_coef"] - r["measured_coef"]) / se,
                     "z_taylor2": (t2 - r["measured_coef"]) / se})
    return pd.DataFrame(rows)


def at_sigma(teacher, student, x, labels, sigma: float, samples: int = 400, seed: int = 0):
    """All four statements at one sigma (one row each): what the widget and its static grid show."""
    import pandas as pd

    rows = [_complete(check(sigma=sigma, samples=samples, seed=seed)) | {"statement": name}
            for name, check in _checks(teacher, student, x, labels).items()]
    return pd.DataFrame(rows)


def confident_wrong(student: nn.Module, x0: torch.Tensor, label: int, margins, sigma: float = 1e-3,
                    samples: int = 400, seed: int = 0):
    """Eq 3's sigma^2 term for students ever more confident in a wrong class, computed four ways.

    For each margin a, the student's last bias of its top wrong class is raised by a,
    so S_s[label] falls like e^-a. Columns: ``p_label``; ``paper64`` / ``paper32``:
    Eq 3's ||grad S_s||^2 / S_s^2 evaluated as written (via :func:`lakt.analysis.propositions.eq3_right_side`) in
    float64 and float32; ``log_space``: the same quantity as ||grad log S_s||^2,
    which is what it equals mathematically (grad S = S grad log S: the 1/S^2 only
    cancels a factor S^2); ``taylor2``: the exact coefficient (1/2) tr Hessian of
    -log S_s[label]; ``measured`` (+ ``measured_se``): Monte-Carlo at ``sigma``;
    ``roundoff``: the smallest coefficient the Monte-Carlo can resolve at ``sigma``
    (float64 rounding of the loss, divided by sigma^2).
    """
    import copy

    import pandas as pd

    require(len(x0) == 1, "confident_wrong needs one input point x0 of shape [1, ...]")
    labels = torch.as_tensor([label], device=x0.device)
    with torch.no_grad():
        logits = student.eval()(x0)[0].clone()
    logits[label] = -math.inf
    wrong = int(logits.argmax())
    rows = []
    for a in margins:
        net = copy.deepcopy(student).eval()
        with torch.no_grad():
            [m for m in net.modules() if isinstance(m, nn.Linear)][-1].bias[wrong] += a
        row = {"margin": float(a)}
        for dtype, key in ((torch.float64, "paper64"), (torch.float32, "paper32")):
            m, xx = copy.deepcopy(net).to(dtype), x0.to(dtype)
            soft = _softmax_model(m, 1.0).eval()
            with torch.no_grad():
                probs = soft(xx)
            onehot = torch.nn.functional.one_hot(labels, probs.shape[1]).to(dtype)
            value = eq3_right_side(onehot, probs, full_jacobian(soft, xx), 1.0)
            ce = -(onehot * torch.log(probs)).sum(1)
            row[key] = (value - ce).item()
            if dtype == torch.float64:
                row["p_label"] = probs[0, label].item()
        eq3 = noisy_losses(net, net, labels)["Eq 3"]
        xg = x0.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(eq3(xg).sum(), xg)
        row["log_space"] = g.pow(2).sum().item()
        row["taylor2"] = second_order_coefficient(eq3, x0).item()
        r = _complete(equation3(net, x0, labels, sigma, samples=samples, seed=seed))
        row["measured"], row["measured_se"] = r["measured_coef"], r["measured_coef_se"]
        row["roundoff"] = 8 * torch.finfo(torch.float64).eps * max(1.0, abs(r["noiseless"])) / sigma ** 2
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- plots

def plot_coefficients(frame, ax=None, taylor2: float | None = None, title: str | None = None):
    """One statement over sigma: measured (E loss - loss(x)) / sigma^2 with a 95% band vs the paper's term.

    ``frame``: rows of one statement from :func:`sweep`. This is LHS vs RHS with the
    common noiseless part removed and divided by sigma^2, so both are visible at
    every sigma; ``taylor2`` (optional) draws the exact second-order coefficient.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    f = frame.sort_values("sigma")
    line, = ax.plot(f["sigma"], f["measured_coef"], marker="o", ms=3, label="measured (LHS)")
    ax.fill_between(f["sigma"], f["measured_coef"] - 1.96 * f["measured_coef_se"],
                    f["measured_coef"] + 1.96 * f["measured_coef_se"], color=line.get_color(), alpha=0.25)
    ax.plot(f["sigma"], f["paper_coef"], color="C3", lw=2, label="paper (RHS)")
    if taylor2 is not None:
        ax.axhline(taylor2, color="k", ls="--", lw=1, label=r"exact $\frac{1}{2}\mathrm{tr}\,\nabla^2 L$")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\sigma$")
    ax.set_ylabel(r"$(\mathbb{E}\,L(x+\xi) - L(x)) \,/\, \sigma^2$")
    if title:
        ax.set_title(title)
    return ax


def plot_residuals(frames: dict, ax=None, floor: float = 1e-20, reference_slopes=(2, 4)):
    """|LHS - RHS| vs sigma on log-log axes, one line per labelled sweep, with slope guides.

    Points whose residual is not resolved (|r| < 2 se) are drawn hollow; residuals
    below ``floor`` (exact zeros of piecewise-linear nets) sit on the floor.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
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
        ax.text(sig[0], 1e-3 * (sig[0] / sig.max()) ** p, rf"$\sigma^{p}$", color="grey",
                ha="right", va="center")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_ylim(floor / 3, None)
    ax.set_xlabel(r"$\sigma$")
    ax.set_ylabel(r"$|\mathrm{LHS} - \mathrm{RHS}|$")
    ax.legend()
    return ax


def plot_at_sigma(frame, axes=None, taylor2: dict | None = None, title: str | None = None):
    """Bars for one sigma: the noise term E loss(x + xi) - loss(x) (95% CI) vs the paper's sigma^2 term.

    ``frame``: :func:`at_sigma` output; ``taylor2`` (statement -> coefficient) adds the
    exact second-order prediction sigma^2 * (1/2) tr Hessian. Four panels, 2 × 2, the
    figure's title above them (never over a panel's).
    """
    import matplotlib.pyplot as plt

    fig = None
    if axes is None:
        fig, axes = plt.subplots(2, 2, figsize=(7.0, 5.2))
    axes = list(getattr(axes, "flat", axes))
    for ax, (_, r) in zip(axes, frame.iterrows()):
        s2 = r["sigma"] ** 2
        heights = [r["lhs"] - r["noiseless"], r["rhs"] - r["noiseless"]]
        labels = ["measured", "paper"]
        if taylor2 is not None:
            heights.append(s2 * taylor2[r["statement"]]), labels.append("Taylor-2")
        ax.bar(labels, heights, color=["C0", "C3", "0.4"][:len(heights)])
        ax.errorbar([0], heights[:1], yerr=[1.96 * r["lhs_se"]], color="k", capsize=3)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(r["statement"])
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    fig = fig or axes[0].figure
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return axes


def proposition_orders(preset: str = "smoke", seed: int = 0) -> dict:
    """Props 1-2 measured as the verdict table reads them, on digits test images (float64).

    Per statement: ``order`` -- the fitted order in σ of the remainder for a smooth (tanh)
    teacher-student pair (σ ≤ 0.1); ``relu_exact`` -- whether a ReLU pair's remainder is
    0 (below 1e-12) for every σ ≤ 1e-3; ``scale`` -- what was measured.
    """
    import numpy as np

    from ..core import data

    cfg = chapter2_settings(preset)
    digits = data.load("digits")
    x, labels = digits.test.x[:cfg["points"]].double(), digits.test.y[:cfg["points"]]
    sigmas = np.logspace(-4, 0, cfg["sigmas"])
    out = {}
    sweeps = {a: sweep_all(*theory_pair(a, seed, x[0].numel(), 10), x, labels, sigmas, samples=cfg["samples"],
                           seed=seed) for a in ("relu", "tanh")}
    for prop in ("Prop 1", "Prop 2"):
        relu = sweeps["relu"].query(f"statement == '{prop}' and sigma <= 1e-3")
        out[prop] = {"relu_exact": bool((relu["residual"].abs() < 1e-12).all()),
                     "order": fit_order(sweeps["tanh"].query(f"statement == '{prop}'"), sigma_max=0.1),
                     "scale": f"MLP pairs, {len(x)} digits images, {cfg['samples']} noise draws, float64, CPU"}
    return out
