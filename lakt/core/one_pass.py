"""One student forward for both the loss and the per-sample input gradient (train-mode BatchNorm).

:mod:`lakt.core.jacobian` defines the student's input gradient in train mode with BatchNorm's
batch statistics held fixed: each BatchNorm is the per-channel affine map y = a*x + b,
a = gamma / sqrt(var + eps), b = beta - mean*a, with this batch's mean and var detached.
The loss terms, though, need the ordinary train-mode BatchNorm: its gradient through the
statistics and its running-statistics update. Taking them from two forward passes (one
ordinary, one with the statistics held fixed) costs a whole extra forward per step.

Here one forward serves both. Each train-mode BatchNorm runs its ordinary native kernel
(the output, which equals a*x + b in value, and the running-statistics update) inside
:class:`_AffineBatchNorm`, an autograd Function whose backward depends on which pass runs it:

* inside :func:`statistics_held_fixed_backward` -- the input-gradient pass, which
  :class:`~lakt.core.objective.Objective` takes with ``create_graph=True`` -- the backward is
  the affine map's, grad_x = g*a: per sample, two elementwise ops, and itself
  differentiable, so the Jacobian term's double backward stays short (the graph
  recorded is exactly the one the fixed-statistics pass of :mod:`lakt.core.jacobian` records);
* everywhere else (the loss's backward) it is BatchNorm's own native backward through
  the batch statistics: the gradients CE and activation matching get from an ordinary
  train-mode forward.

The switch is a module-level flag that the input-gradient pass sets around one
``torch.autograd.grad`` call (the autograd engine may run the backward on a device
thread, so it is not thread-local); it must not be used from several threads at once.
``tests/test_one_pass.py`` checks values, input gradients and every parameter gradient
against the two-pass computation.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

_FIXED = [False]  # True while the input-gradient pass runs: BatchNorm backward with statistics fixed


class _AffineBatchNorm(torch.autograd.Function):
    """Train-mode BatchNorm (native kernels); backward per sample (statistics fixed) or through them."""

    @staticmethod
    def forward(ctx, x, weight, bias, bn):
        momentum = bn.momentum
        if bn.track_running_stats:
            bn.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative average, as nn.BatchNorm
                momentum = 1.0 / float(bn.num_batches_tracked)
        out, mean, invstd = torch.native_batch_norm(x, weight, bias, bn.running_mean, bn.running_var, True,
                                                    momentum or 0.0, bn.eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = bn.eps
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight, mean, invstd = ctx.saved_tensors
        if _FIXED[0]:  # y = a*x + b with a = gamma*invstd: differentiable, recorded under create_graph
            shape = [1, -1] + [1] * (x.dim() - 2)
            a = invstd if weight is None else weight * invstd
            return g * a.to(g.dtype).view(shape), None, None, None
        grads = torch.ops.aten.native_batch_norm_backward(
            g, x, weight, None, None, mean, invstd, True, ctx.eps,
            [True, weight is not None and ctx.needs_input_grad[1], weight is not None and ctx.needs_input_grad[2]])
        return grads[0], grads[1], grads[2], None


def _batch_norm(bn: _BatchNorm, x: torch.Tensor) -> torch.Tensor:
    return _AffineBatchNorm.apply(x, bn.weight, bn.bias, bn)


@contextmanager
def one_pass(model: nn.Module):
    """Within the block, the model's train-mode BatchNorms run as :class:`_AffineBatchNorm`."""
    patched = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training]
    for m in patched:
        m.forward = (lambda bn: (lambda x: _batch_norm(bn, x)))(m)
    try:
        yield model
    finally:
        for m in patched:
            del m.forward


@contextmanager
def statistics_held_fixed_backward():
    """Backward passes run inside the block see one-pass BatchNorms with their statistics fixed."""
    _FIXED[0] = True
    try:
        yield
    finally:
        _FIXED[0] = False


def logits_and_gradient(model: nn.Module, x: torch.Tensor, index: torch.Tensor):
    """Train-mode logits (for the loss) and each sample's gradient of its selected output, graph kept.

    Equal to an ordinary forward plus :func:`lakt.core.jacobian.logits_and_gradient` with
    ``batch_statistics="fixed"``, in one forward.
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        with one_pass(model):
            logits = model(x)
        selected = logits.gather(1, index.view(-1, 1).to(logits.device)).sum()
        with statistics_held_fixed_backward():
            (grad,) = torch.autograd.grad(selected, x, create_graph=True)
    return logits, grad
