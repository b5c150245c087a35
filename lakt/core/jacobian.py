"""Input gradients of chosen outputs, per sample (the paper's "Jacobians").

The paper matches one row of the Jacobian per image (Section 4, "Approximating the
Full Jacobian"): the row of the ground-truth class, or of the teacher's largest
logit -- grad_x S^i(x), a derivative of one sample's output with respect to that
sample's input. :func:`logits_and_gradient` gets that row for every image of a batch
with *one* backward pass of the summed selected outputs.

When is one backward per sample? d/dx_b of sum_j f_{index_j}(x_j) equals the
per-sample row d f_{index_b}(x_b) / dx_b only if sample b's output does not depend on
the other samples. That holds for any model in eval mode (BatchNorm then uses its
running statistics) -- the teacher is always evaluated so. A *student in train mode
with BatchNorm* normalises with the batch's mean and variance, so every logit depends
on every image: a plain summed backward adds cross-sample terms through those
statistics (25-40% of the gradient's norm for VGG-4 at batch 8-128, not shrinking
with the batch).

So the input gradient is taken with the batch statistics *held fixed*: its pass sees
each train-mode BatchNorm as the per-channel affine map y = a*x + b, a = gamma /
sqrt(var + eps), b = beta - mean*a, with this batch's mean and var treated as
constants. Each sample's gradient is then its own, except for its 1/B share in the
statistics it was normalised with (``tests/`` pins the distance to the exact diagonal
block). The loss, though, needs ordinary train-mode BatchNorm: its gradient through
the statistics and one running-statistics update per step. One forward serves both:
inside :func:`held_fixed` each train-mode BatchNorm runs its native kernel in
:class:`_BatchNorm2Way` and each convolution in :class:`_Conv2d`, autograd Functions whose
backward depends on which pass runs it --

* inside the input-gradient pass (:func:`_input_gradient_pass`, around one
  ``torch.autograd.grad`` with ``create_graph=True``) BatchNorm's backward is the
  affine map's, grad_x = g*a: per sample, two elementwise ops, itself differentiable,
  so the Jacobian term's double backward stays short; a convolution's is
  :class:`_ConvInputGradient`, whose own backward takes the weight's share from
  ``convolution_backward``'s weight kernel (autograd's built-in double backward computes
  it as a generic convolution of two gradient tensors, 10-15% slower on the CPU);
* everywhere else (the loss's backward) both are the ordinary native backward.

The switch is a module-level flag set around one ``torch.autograd.grad`` call (the
autograd engine may run a backward on a device thread, so it cannot be thread-local);
do not take input gradients from several threads at once.

Max-pooling windows whose entries tie exactly (the flat background of the digits
images: 11-13% of the first layer's windows) sit on a boundary between linear
regions; autograd then routes the gradient to one of the tied entries, so such an
input gradient is one valid choice among several (chapter 1 shows it).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from . import checks
from .errors import require

OUTPUT_SELECTIONS = ("label", "top")
DIFFERENTIATED = ("logit", "log_softmax")  # what the gradient is of: S_i(x), or log softmax(S(x))_i

_INPUT_GRADIENT_PASS = [False]  # True while an input-gradient pass runs: per-sample backwards


@contextmanager
def _input_gradient_pass():
    _INPUT_GRADIENT_PASS[0] = True
    try:
        yield
    finally:
        _INPUT_GRADIENT_PASS[0] = False


class _BatchNorm2Way(torch.autograd.Function):
    """Train-mode BatchNorm (native kernels); backward per sample (statistics fixed) or through them."""

    @staticmethod
    def forward(ctx, x, weight, bias, bn, update_running_stats):
        momentum, running_mean, running_var = bn.momentum, None, None
        if update_running_stats and bn.track_running_stats:
            running_mean, running_var = bn.running_mean, bn.running_var
            bn.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative average, as nn.BatchNorm
                momentum = 1.0 / float(bn.num_batches_tracked)
        out, mean, invstd = torch.native_batch_norm(x, weight, bias, running_mean, running_var, True,
                                                    momentum or 0.0, bn.eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = bn.eps
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight, mean, invstd = ctx.saved_tensors
        if _INPUT_GRADIENT_PASS[0]:  # y = a*x + b, a = gamma*invstd: differentiable, recorded under create_graph
            shape = [1, -1] + [1] * (x.dim() - 2)
            a = invstd if weight is None else weight * invstd
            return g * a.to(g.dtype).view(shape), None, None, None, None
        grads = torch.ops.aten.native_batch_norm_backward(
            g, x, weight, None, None, mean, invstd, True, ctx.eps,
            [True, weight is not None and ctx.needs_input_grad[1], weight is not None and ctx.needs_input_grad[2]])
        return grads[0], grads[1], grads[2], None, None


class _ConvInputGradient(torch.autograd.Function):
    """grad_x = conv_transpose(g, W): a convolution's input gradient, with a direct double backward."""

    @staticmethod
    def forward(ctx, g, weight, x, args):
        stride, padding, dilation, groups = args
        ctx.save_for_backward(g, weight, x)
        ctx.args = args
        return torch.ops.aten.convolution_backward(g, x, weight, None, stride, padding, dilation, False, [0, 0],
                                                   groups, [True, False, False])[0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gg):
        g, weight, x = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.args
        gg = gg.to(g.dtype)
        grad_g = F.conv2d(gg, weight, None, stride, padding, dilation, groups) if ctx.needs_input_grad[0] else None
        grad_w = (torch.ops.aten.convolution_backward(g, gg, weight, None, stride, padding, dilation, False, [0, 0],
                                                      groups, [False, True, False])[1]
                  if ctx.needs_input_grad[1] else None)
        return grad_g, grad_w, None, None


class _Conv2d(torch.autograd.Function):
    """A convolution whose backward, in the input-gradient pass, is :class:`_ConvInputGradient`."""

    @staticmethod
    def forward(ctx, x, weight, bias, args):
        stride, padding, dilation, groups = args
        out = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
        # what the kernel used: autocast may have run it in a lower precision than the parameters
        ctx.save_for_backward(x.to(out.dtype), weight)
        ctx.args, ctx.has_bias = args, bias is not None
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.args
        w = weight.to(g.dtype)
        if _INPUT_GRADIENT_PASS[0]:  # differentiable: recorded when the input gradient is taken with create_graph
            return _ConvInputGradient.apply(g, w, x.to(g.dtype), ctx.args), None, None, None
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.convolution_backward(g, x.to(g.dtype), w, [weight.shape[0]] if ctx.has_bias
                                                         else None, stride, padding, dilation, False, [0, 0],
                                                         groups, mask)
        return gx, gw.to(weight.dtype) if gw is not None else None, gb, None


@contextmanager
def _forwards_replaced(modules, forward):
    """Within the block each of ``modules`` runs ``forward(module, x)`` instead of its own
    (an instance attribute, so hooks still run); afterwards its class's forward again."""
    modules = list(modules)
    for m in modules:
        m.forward = (lambda module: (lambda x: forward(module, x)))(m)
    try:
        yield
    finally:
        for m in modules:
            del m.forward


@contextmanager
def held_fixed(model: nn.Module, update_running_stats: bool = True):
    """Forwards inside the block can serve both the loss and a per-sample input gradient.

    Train-mode BatchNorms run as :class:`_BatchNorm2Way` (updating their running statistics
    only if ``update_running_stats``), zero-padded convolutions as :class:`_Conv2d`; other
    layers, eval-mode BatchNorms and any module tree that is not lakt's work unchanged.
    """
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training]
    convs = [m for m in model.modules() if type(m) is nn.Conv2d and m.padding_mode == "zeros"
             and isinstance(m.padding, tuple)]

    def batch_norm(bn, x):
        return _BatchNorm2Way.apply(x, bn.weight, bn.bias, bn, update_running_stats)

    def conv(c, x):
        return _Conv2d.apply(x, c.weight, c.bias, (c.stride, c.padding, c.dilation, c.groups))

    with _forwards_replaced(norms, batch_norm), _forwards_replaced(convs, conv):
        yield model


def differentiable_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` itself when the caller differentiates with respect to it (their graph is kept), else a
    detached leaf that requires grad."""
    return x if x.requires_grad else x.detach().requires_grad_(True)


def input_vjp(outputs: torch.Tensor, x: torch.Tensor, directions: torch.Tensor,
              create_graph: bool = False) -> torch.Tensor:
    """v_b^T J(x_b) for per-sample output directions v_b: one per-sample backward.

    ``outputs`` come from a forward of ``x`` inside :func:`held_fixed` (or of a model
    without train-mode BatchNorm). With v ~ N(0, I_k), E ||v^T (J_T - J_S)||^2 =
    ||J_T - J_S||_F^2: one backward estimates the plain full-Jacobian sum of Props 1-2.
    ``directions`` one-hot at the selected outputs give the paper's single rows.
    """
    with torch.enable_grad(), _input_gradient_pass():
        (grad,) = torch.autograd.grad((outputs * directions).sum(), x, retain_graph=True, create_graph=create_graph)
    return grad


def differentiated(logits: torch.Tensor, of: str = "logit") -> torch.Tensor:
    """The outputs whose input gradient is taken: the logits, or their log-softmax (Eq 3's
    grad S_y / S_y = grad log softmax(S)_y)."""
    require(of in DIFFERENTIATED, f"unknown output to differentiate {of!r}; choose one of {DIFFERENTIATED}")
    return F.log_softmax(logits, dim=1) if of == "log_softmax" else logits


def _as_index(index, batch: int, device) -> torch.Tensor:
    if isinstance(index, int):
        return torch.full((batch,), index, dtype=torch.long, device=device)
    index = torch.as_tensor(index, device=device)
    require(not index.is_floating_point(), f"output index must be integers, got dtype {index.dtype}")
    index = index.long().view(-1)
    require(index.numel() == batch, f"one output index per sample needed: {index.numel()} for a batch of {batch}")
    return index


def logits_and_gradient(model: nn.Module, x: torch.Tensor, index, *, create_graph: bool = False,
                        of: str = "logit", update_running_stats: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits f(x) and, per sample b, the gradient of output ``index[b]`` at x_b w.r.t. x_b.

    One forward, one backward; ``index`` is a tensor of one output per sample or an int
    (the same output for all); ``of="log_softmax"`` differentiates log softmax(f(x)) instead.
    With ``create_graph=True`` the gradient is itself differentiable (double backprop, as
    the Jacobian terms need). In train mode the gradient holds BatchNorm's batch statistics
    fixed while the logits keep BatchNorm's ordinary gradient (module docstring); the
    running statistics are updated only if ``update_running_stats`` (a training forward).
    If ``x`` requires grad, both stay differentiable with respect to it.
    """
    checks.check_model_input(model, x)
    if isinstance(index, torch.Tensor):
        index = checks.check_labels(index, len(x))
    x = differentiable_input(x)
    with torch.enable_grad(), held_fixed(model, update_running_stats):
        logits = model(x)
    outputs = differentiated(logits, of)
    index = _as_index(index, len(x), logits.device)
    checks.check_gradient_values(x, index, logits.shape[1])
    onehot = torch.zeros_like(outputs).scatter_(1, index.view(-1, 1), 1.0)
    return logits, input_vjp(outputs, x, onehot, create_graph=create_graph)


def output_gradient(model: nn.Module, x: torch.Tensor, index, create_graph: bool = False,
                    of: str = "logit") -> torch.Tensor:
    """Gradient of output ``index[b]`` (or of output ``index`` if an int) w.r.t. input ``x[b]``; shaped like ``x``.

    Per sample in eval mode exactly, and in train mode with BatchNorm's batch statistics
    held fixed (module docstring); the model's running statistics are left alone."""
    return logits_and_gradient(model, x, index, create_graph=create_graph, of=of)[1]


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
    costs k backward passes (Section 4). Train-mode BatchNorm as in :func:`logits_and_gradient`.
    """
    checks.check_model_input(model, x)
    x = differentiable_input(x)
    with torch.enable_grad(), held_fixed(model, update_running_stats=False):
        logits = model(x)
    checks.check_gradient_values(x, None, logits.shape[1])
    eye = torch.eye(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return torch.stack([input_vjp(logits, x, eye[i].expand_as(logits), create_graph) for i in range(len(eye))], 1)
