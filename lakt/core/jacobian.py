"""Input gradients of chosen outputs, per sample (the paper's "Jacobians").

The paper matches one row of the Jacobian per image (Section 4, "Approximating the
Full Jacobian"): the row of the ground-truth class, or of the teacher's largest
logit -- grad_x S^i(x), a derivative of one sample's output with respect to that
sample's input. :func:`output_gradient` gets that row for every image of a batch
with *one* backward pass of the summed selected logits.

When is one backward per sample? d/dx_b of sum_j f_{index_j}(x_j) equals the
per-sample row d f_{index_b}(x_b) / dx_b only if sample b's output does not depend on
the other samples. That holds for any model in eval mode (BatchNorm then uses its
running statistics) -- the teacher is always evaluated so. A *student in train mode
with BatchNorm* normalises with the batch's mean and variance, so every logit depends
on every image: the summed backward then adds cross-sample terms through those
statistics (25-40% of the gradient's norm for VGG-4 at batch 8-128, not shrinking
with the batch).

So in train mode lakt holds the batch statistics fixed for the input gradient
(``batch_statistics="fixed"``, the default): the gradient pass sees each BatchNorm as
the per-channel affine map y = a*x + b with a = gamma / sqrt(var + eps) and
b = beta - mean*a, where mean and var are this batch's statistics, detached. Each
sample's gradient is then its own, except for its 1/B share in the statistics it was
normalised with (``tests/test_jacobian.py`` pins the distance to the exact diagonal
block). The training loss itself still comes from the ordinary train-mode forward
(:class:`lakt.core.objective.Objective` runs both), so the parameters get BatchNorm's
usual gradients from CE and activation matching, and the running statistics are
updated once per step. ``batch_statistics="coupled"`` reproduces the single summed
backward through the statistics that runs before this fix were trained with.

Max-pooling windows whose entries tie exactly (the flat background of the digits
images: 11-13% of the first layer's windows) sit on a boundary between linear
regions; autograd then routes the gradient to one of the tied entries, so such an
input gradient is one valid choice among several (chapter 1 shows it; a 1e-3 jitter
removes every tie).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .errors import require

BATCH_STATISTICS = ("fixed", "coupled")
OUTPUT_SELECTIONS = ("label", "top")


def _affine_batch_norm(bn: _BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm with this batch's statistics held fixed: y = a*x + b, a and b per channel.

    mean and var are the batch's (as train mode uses them) but detached, and the running
    statistics are left alone; gamma and beta keep their gradients. Two elementwise ops,
    so the double backward of the Jacobian terms stays short.
    """
    dims = [d for d in range(x.dim()) if d != 1]
    with torch.no_grad():
        var, mean = torch.var_mean(x, dim=dims, unbiased=False)
    scale = torch.rsqrt(var + bn.eps)
    shape = [1, -1] + [1] * (x.dim() - 2)
    if bn.affine:
        a = bn.weight * scale
        b = bn.bias - mean * a
    else:
        a, b = scale, -mean * scale
    return x * a.view(shape) + b.view(shape)


@contextmanager
def forwards_replaced(modules, forward):
    """Within the block each of ``modules`` runs ``forward(module, x)`` instead of its own
    forward (an instance attribute, so hooks still run); afterwards its class's forward again."""
    modules = list(modules)
    for m in modules:
        m.forward = (lambda module: (lambda x: forward(module, x)))(m)
    try:
        yield
    finally:
        for m in modules:
            del m.forward


@contextmanager
def batch_statistics_held_fixed(model: nn.Module):
    """Within the block, every train-mode BatchNorm of ``model`` normalises with this
    batch's statistics detached and updates no running statistics (eval-mode ones and
    other layers are untouched). Works on any module tree, not only lakt's VGGs."""
    with forwards_replaced((m for m in model.modules() if isinstance(m, _BatchNorm) and m.training),
                           _affine_batch_norm):
        yield model


def _forward(model: nn.Module, x: torch.Tensor, batch_statistics: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x as a leaf that requires grad, the model's logits at it), train-mode BatchNorm as asked."""
    require(batch_statistics in BATCH_STATISTICS,
            f"unknown batch_statistics {batch_statistics!r}; choose one of {BATCH_STATISTICS}")
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        if batch_statistics == "fixed":
            with batch_statistics_held_fixed(model):
                return x, model(x)
        return x, model(x)


def _as_index(index, batch: int, device) -> torch.Tensor:
    if isinstance(index, int):
        return torch.full((batch,), index, dtype=torch.long, device=device)
    index = torch.as_tensor(index, device=device)
    require(not index.is_floating_point(), f"output index must be integers, got dtype {index.dtype}")
    index = index.long().view(-1)
    require(index.numel() == batch, f"one output index per sample needed: {index.numel()} for a batch of {batch}")
    return index


def logits_and_gradient(model: nn.Module, x: torch.Tensor, index, create_graph: bool = False,
                        batch_statistics: str = "fixed") -> tuple[torch.Tensor, torch.Tensor]:
    """Logits f(x) and, per sample b, the gradient of f_{index_b}(x_b) w.r.t. x_b.

    One forward, one backward; ``index`` is a tensor of one output per sample or an int
    (the same output for all). With ``create_graph=True`` the gradient is itself
    differentiable (double backprop), as the Jacobian-matching losses need. For a
    model in train mode the forward runs with BatchNorm's batch statistics held fixed
    (module docstring), so these logits equal the ordinary train-mode logits in value
    but do not carry the statistics' gradients and leave the running statistics alone:
    train on logits from an ordinary forward. ``batch_statistics="coupled"``: the
    summed backward through the statistics (runs trained before the per-sample fix).
    """
    x, logits = _forward(model, x, batch_statistics)
    with torch.enable_grad():
        index = _as_index(index, len(x), logits.device)
        selected = logits.gather(1, index.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(selected, x, create_graph=create_graph)
    return logits, grad


def output_gradient(model: nn.Module, x: torch.Tensor, index, create_graph: bool = False,
                    batch_statistics: str = "fixed") -> torch.Tensor:
    """Gradient of output ``index[b]`` (or of output ``index`` if an int) w.r.t. input ``x[b]``; shaped like ``x``.

    Per sample in eval mode exactly, and in train mode with BatchNorm's batch statistics
    held fixed (module docstring)."""
    return logits_and_gradient(model, x, index, create_graph, batch_statistics)[1]


def select_outputs(how: str, labels: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Which output's gradient to match: the ground-truth label or the teacher's top logit."""
    require(how in OUTPUT_SELECTIONS, f"unknown output selection {how!r}; choose one of {OUTPUT_SELECTIONS}")
    if how == "label":
        return labels
    require(teacher_logits is not None, "output selection 'top' needs the teacher's logits")
    return teacher_logits.argmax(dim=1)


def full_jacobian(model: nn.Module, x: torch.Tensor, create_graph: bool = False,
                  batch_statistics: str = "fixed") -> torch.Tensor:
    """All k rows: a tensor [B, k, *x.shape[1:]], one backward per output.

    Meant for small models and the theory chapter; the paper avoids it because it
    costs k backward passes (Section 4). Train-mode BatchNorm as in :func:`logits_and_gradient`.
    """
    x, logits = _forward(model, x, batch_statistics)
    with torch.enable_grad():
        rows = []
        for i in range(logits.shape[1]):
            (g,) = torch.autograd.grad(logits[:, i].sum(), x, retain_graph=True, create_graph=create_graph)
            rows.append(g)
    return torch.stack(rows, dim=1)


def input_vjp(outputs: torch.Tensor, x: torch.Tensor, directions: torch.Tensor,
              create_graph: bool = False) -> torch.Tensor:
    """v_b^T J(x_b) for per-sample directions v_b in output space (graph kept for reuse).

    ``outputs`` must come from a forward in which sample b's outputs depend on x_b only
    (eval mode, or train mode inside :func:`batch_statistics_held_fixed`). With
    v ~ N(0, I_k), E ||v^T (J_T - J_S)||^2 = ||J_T - J_S||_F^2: one backward gives an
    unbiased estimate of the *plain* full-Jacobian sum of Propositions 1 and 2,
    sum_i ||grad T^i - grad S^i||^2. It does not estimate the normalised form's sum over
    rows, sum_i ||grad T^i/||grad T^i|| - grad S^i/||grad S^i||||^2: normalising the
    projected gradient v^T J is a different quantity, of the size of one row's term.
    """
    (grad,) = torch.autograd.grad((outputs * directions).sum(), x, retain_graph=True, create_graph=create_graph)
    return grad
