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
