"""Named errors for the inputs of one loss step (:class:`lakt.core.objective.Objective`).

Someone using the losses in their own loop hands over two networks, a batch and its
labels; when these do not fit together, PyTorch fails deep inside a convolution or a
``gather`` ("Input type (float) and bias type (double) should be the same", "'tuple'
object has no attribute 'gather'"), or -- worse -- does not fail: a Jacobian term
compares input gradients, which have the input's shape whatever the output count, so
a 10-class student trains against a 12-class teacher without a word. These checks say
what does not fit and how to fix it, as :class:`~lakt.core.errors.LaktError`.

They cost no extra forward pass: the batch is checked before the step, and each
network's output by a forward hook during the passes the step makes anyway.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from .errors import LaktError, require


def _first_param(model: nn.Module | None):
    if model is None:
        return None
    return next((p for p in model.parameters() if p.is_floating_point()), None)


def check_inputs(student: nn.Module, teacher: nn.Module | None, x, y) -> torch.Tensor:
    """Check a batch against the networks; return the labels as int64 (any integer dtype is accepted)."""
    require(isinstance(x, torch.Tensor), f"inputs must be a tensor [B, C, H, W], got {type(x).__name__}")
    require(x.is_floating_point(), f"inputs are {x.dtype}; convert them to float and normalise them as the "
                                   "networks expect (e.g. x.float() / 255, then per-channel mean/std)")
    require(isinstance(y, torch.Tensor), f"labels must be a tensor of class indices, got {type(y).__name__}")
    require(not y.is_floating_point() and not y.is_complex() and y.dtype != torch.bool,
            f"labels are {y.dtype}; pass class indices as an integer tensor (e.g. y.long()), not one-hot or scores")
    require(y.dim() == 1 and len(y) == len(x),
            f"labels have shape {tuple(y.shape)} for {len(x)} inputs; pass one class index per input, shape [B]")
    require(y.device == x.device, f"labels are on {y.device} but inputs on {x.device}; move both to one device")
    for role, model in (("student", student), ("teacher", teacher)):
        p = _first_param(model)
        if p is None:
            continue
        require(p.device == x.device, f"the {role} is on {p.device} but the inputs are on {x.device}; "
                                      f"move both to one device ({role}.to(x.device))")
        require(p.dtype == x.dtype, f"the {role}'s parameters are {p.dtype} but the inputs are {x.dtype}; "
                                    f"use one dtype for both ({role}.to(x.dtype), or x.to({p.dtype}))")
    return y.long()


@contextmanager
def output_checks(student: nn.Module, teacher: nn.Module | None, teacher_outputs: int | None = None):
    """Within the block, every forward of ``student`` / ``teacher`` must return logits [B, k]
    with the same k for both (``teacher_outputs``: k of cached teacher targets)."""
    outputs = {"teacher": teacher_outputs}

    def hook(role):
        def check(module, args, out):
            if not isinstance(out, torch.Tensor):
                raise LaktError(f"the {role} returned a {type(out).__name__}, not a tensor of logits [B, k]; "
                                "wrap it in an nn.Module whose forward returns only the logits")
            require(out.dim() == 2, f"the {role} returned shape {tuple(out.shape)}; expected logits [B, k]")
            outputs[role] = out.shape[1]
            if outputs.get("student") is not None and outputs.get("teacher") is not None:
                require(outputs["student"] == outputs["teacher"],
                        f"the student has {outputs['student']} outputs but the teacher {outputs['teacher']}; "
                        "give both networks the same classes, in the same order")
        return check

    handles = [student.register_forward_hook(hook("student"))]
    if teacher is not None:
        handles.append(teacher.register_forward_hook(hook("teacher")))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
