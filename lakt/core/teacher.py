"""The frozen teacher's targets: its logits and the input gradient of the selected output.

:class:`TeacherCache` holds them per training image so a run computes them once, not
every epoch (valid while the inputs are neither augmented nor perturbed).
"""
from __future__ import annotations

import torch
from torch import nn

from . import checks
from .errors import require
from .jacobian import differentiated, input_vjp, select_outputs


def freeze(teacher: nn.Module) -> nn.Module:
    """Eval mode and no parameter gradients: the teacher only gives targets."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def teacher_targets(teacher: nn.Module, x: torch.Tensor, labels: torch.Tensor, output: str = "label",
                    of: str = "logit") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, input gradient of the selected output, that output's index), all detached.

    One forward and one backward of the frozen teacher, exact per sample (eval mode).
    ``output``: the label's row or the teacher's top logit; ``of``: the gradient of the
    logit or of its log-softmax (:func:`lakt.core.jacobian.differentiated`).
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = teacher(x)
        index = select_outputs(output, labels, logits.detach())
        outputs = differentiated(logits, of)
        onehot = torch.zeros_like(outputs).scatter_(1, index.view(-1, 1), 1.0)
        grad = input_vjp(outputs, x, onehot)
    return logits.detach(), grad.detach(), index


class TeacherCache:
    """Teacher logits and selected input gradients, computed once per training image.

    Valid when the inputs are not augmented or perturbed: the targets of image n are
    then the same in every epoch, so recomputing them per step (a teacher forward and
    backward) is wasted work. Indexed by the dataset positions the loader yields.

    Where the targets live (``where``): on the training device when they fit (the
    default, ``"auto"``, allows half of the free GPU memory), else in host memory,
    or memory-mapped from a file (``"disk"``, for sets larger than RAM); only the
    rows of each batch are then copied to the device.
    """

    def __init__(self, logits: torch.Tensor, grads: torch.Tensor, index: torch.Tensor, device=None):
        self.logits, self.grads, self.index = logits, grads, index
        self.device = torch.device(device) if device is not None else grads.device

    @classmethod
    def build(cls, teacher: nn.Module, x: torch.Tensor, labels: torch.Tensor, output: str = "label",
              batch_size: int = 256, where: str = "auto", path=None, of: str = "logit") -> "TeacherCache":
        require(where in ("auto", "device", "host", "disk"), f"unknown cache place {where!r}")
        labels, label_max = checks.check_batch(teacher, x, labels, "teacher")
        device = x.device
        if where == "auto":
            where = "device" if _fits_on(device, x.numel() * x.element_size()) else "host"
        logits, grads, index = [], [], []
        with checks.labels_fit_outputs(teacher, label_max, "teacher"):
            for start in range(0, len(x), batch_size):
                lo, g, i = teacher_targets(teacher, x[start:start + batch_size], labels[start:start + batch_size],
                                           output, of)
                logits.append(lo)
                grads.append(g if where == "device" else g.cpu())
                index.append(i)
        grads_t = torch.cat(grads)
        if where == "disk":
            import numpy as np
            require(path is not None, "a disk cache needs a file path")
            np.save(path, grads_t.numpy())
            grads_t = torch.from_numpy(np.load(path, mmap_mode="c"))  # copy-on-write: never alters the file
        return cls(torch.cat(logits), grads_t, torch.cat(index), device)

    def __getitem__(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        grads = self.grads[positions.to(self.grads.device)].to(self.device, non_blocking=True)
        return self.logits[positions], grads, self.index[positions]


def _fits_on(device: torch.device, nbytes: int) -> bool:
    if device.type != "cuda":
        return True  # host memory is where it would go anyway
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < free // 2
