"""Input gradients of chosen outputs, per sample (the paper's "Jacobians").

The paper matches one row of the Jacobian per image (Section 4, "Approximating the
Full Jacobian"): the row of the ground-truth class, or of the teacher's largest
logit. :func:`output_gradient` gets that row for every image of a batch with *one*
backward pass of the summed selected logits.

When is one backward exact? d/dx_b of sum_j f_{index_j}(x_j) equals the per-sample
row d f_{index_b}(x_b) / dx_b only if sample b's output does not depend on the other
samples. That holds for any model in eval mode (BatchNorm then uses its running
statistics) -- the teacher is always evaluated so. A *student in train mode with
BatchNorm* normalises with the batch's mean and variance, so every logit depends on
every image and the summed backward adds cross-sample terms through those
statistics. lakt keeps the single backward there on purpose: it is the gradient of
the function that is actually being trained (the same thing the paper's framework
computes with one gradient call), and the exact diagonal blocks would cost one
backward per image. ``tests/test_jacobian.py`` measures the difference.

Max-pooling windows whose entries tie exactly (the flat background of the digits
images: 11-13% of the first layer's windows) sit on a boundary between linear
regions; autograd then routes the gradient to one of the tied entries, so such an
input gradient is one valid choice among several (chapter 1 shows it; a 1e-3 jitter
removes every tie).
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import require

OUTPUT_SELECTIONS = ("label", "top")


def as_index(index, x: torch.Tensor) -> torch.Tensor:
    """Per-sample output indices [B]: a tensor as given, or one int for every sample."""
    if isinstance(index, torch.Tensor):
        return index
    require(isinstance(index, int) and not isinstance(index, bool),
            f"index must be an int or a tensor of per-sample output indices, got {type(index).__name__}")
    return torch.full((len(x),), index, dtype=torch.long, device=x.device)


def logits_and_gradient(model: nn.Module, x: torch.Tensor, index: torch.Tensor | int,
                        create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits f(x) and, per sample b, the gradient of f_{index_b}(x_b) w.r.t. x_b.

    One forward, one backward. With ``create_graph=True`` the gradient is itself
    differentiable (double backprop), as the Jacobian-matching losses need. ``index``:
    a tensor [B] of output indices, or one int for the same output of every sample.
    """
    index = as_index(index, x)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        selected = logits.gather(1, index.view(-1, 1).to(logits.device)).sum()
        (grad,) = torch.autograd.grad(selected, x, create_graph=create_graph)
    return logits, grad


def output_gradient(model: nn.Module, x: torch.Tensor, index: torch.Tensor | int,
                    create_graph: bool = False) -> torch.Tensor:
    """Gradient of output ``index[b]`` (or of output ``index`` if an int) w.r.t. input ``x[b]``;
    a tensor shaped like ``x``."""
    return logits_and_gradient(model, x, index, create_graph)[1]


def select_outputs(how: str, labels: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Which output's gradient to match: the ground-truth label or the teacher's top logit."""
    require(how in OUTPUT_SELECTIONS, f"unknown output selection {how!r}; choose one of {OUTPUT_SELECTIONS}")
    if how == "label":
        return labels
    require(teacher_logits is not None, "output selection 'top' needs the teacher's logits")
    return teacher_logits.argmax(dim=1)


def full_jacobian(model: nn.Module, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """All k rows: a tensor [B, k, *x.shape[1:]], one backward per output.

    Meant for small models and the theory chapter; the paper avoids it because it
    costs k backward passes (Section 4).
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        rows = []
        for i in range(logits.shape[1]):
            (g,) = torch.autograd.grad(logits[:, i].sum(), x, retain_graph=True, create_graph=create_graph)
            rows.append(g)
    return torch.stack(rows, dim=1)


def input_vjp(outputs: torch.Tensor, x: torch.Tensor, directions: torch.Tensor,
              create_graph: bool = False) -> torch.Tensor:
    """v_b^T J(x_b) for per-sample directions v_b in output space (graph kept for reuse).

    With v ~ N(0, I_k), E ||v^T (J_T - J_S)||^2 = ||J_T - J_S||_F^2: one backward gives
    an unbiased estimate of the full-Jacobian sums of Propositions 1 and 2.
    """
    (grad,) = torch.autograd.grad((outputs * directions).sum(), x, retain_graph=True, create_graph=create_graph)
    return grad
