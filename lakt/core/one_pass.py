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

Convolutions run as :class:`_Conv2d` in the same way: their ordinary backward outside the
input-gradient pass, and inside it :class:`_ConvInputGradient`, whose own backward (the
Jacobian term's double backward) takes the weight's share from ``convolution_backward``'s
weight kernel -- autograd's built-in double backward computes it as a generic convolution
of the two gradient tensors, which made full-width steps 10-15% slower on the CPU.

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

from .jacobian import forwards_replaced

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


def _conv_args(conv: nn.Conv2d) -> tuple:
    return conv.stride, conv.padding, conv.dilation, conv.groups


class _ConvInputGradient(torch.autograd.Function):
    """grad_x = conv_transpose(g, W): a convolution's input gradient, with a direct double backward.

    Autograd's own double backward of a convolution finds the weight's share by a generic
    convolution of the two gradient tensors; here it is ``convolution_backward``'s weight
    kernel (the one every ordinary backward uses), and g's share one forward convolution.
    """

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
        grad_g = (torch.nn.functional.conv2d(gg, weight, None, stride, padding, dilation, groups)
                  if ctx.needs_input_grad[0] else None)
        grad_w = (torch.ops.aten.convolution_backward(g, gg, weight, None, stride, padding, dilation, False, [0, 0],
                                                      groups, [False, True, False])[1]
                  if ctx.needs_input_grad[1] else None)
        return grad_g, grad_w, None, None


class _Conv2d(torch.autograd.Function):
    """A convolution whose backward, in the input-gradient pass, is :class:`_ConvInputGradient`."""

    @staticmethod
    def forward(ctx, x, weight, bias, args):
        stride, padding, dilation, groups = args
        out = torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups)
        # what the kernel used: autocast may have run it in a lower precision than the parameters
        ctx.save_for_backward(x.to(out.dtype), weight)
        ctx.args, ctx.has_bias = args, bias is not None
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.args
        w = weight.to(g.dtype)
        if _FIXED[0]:  # differentiable: recorded when the input gradient is taken with create_graph
            return _ConvInputGradient.apply(g, w, x.to(g.dtype), ctx.args), None, None, None
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.convolution_backward(g, x.to(g.dtype), w, [weight.shape[0]] if ctx.has_bias
                                                         else None, stride, padding, dilation, False, [0, 0],
                                                         groups, mask)
        return gx, gw.to(weight.dtype) if gw is not None else None, gb, None


def _conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return _Conv2d.apply(x, conv.weight, conv.bias, _conv_args(conv))


def _batch_norm(bn: _BatchNorm, x: torch.Tensor) -> torch.Tensor:
    return _AffineBatchNorm.apply(x, bn.weight, bn.bias, bn)


@contextmanager
def one_pass(model: nn.Module):
    """Within the block, the model's train-mode BatchNorms run as :class:`_AffineBatchNorm` and its
    convolutions as :class:`_Conv2d`."""
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training]
    convs = [m for m in model.modules() if type(m) is nn.Conv2d and m.padding_mode == "zeros"
             and isinstance(m.padding, tuple)]
    with forwards_replaced(norms, _batch_norm), forwards_replaced(convs, _conv):
        yield model


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
