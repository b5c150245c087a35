"""The paper's loss terms as plain functions of tensors.

Conventions, used everywhere in lakt: a squared error is summed over its vector
(k logits, or the D input dimensions of a gradient) and averaged over the batch, so
each term is the per-example quantity of Propositions 1 and 2, batch-averaged.
Gradients are those of :mod:`lakt.core.jacobian`, shaped like the input.

The paper does not state its reductions. Adam is invariant to scaling the whole loss,
so without CE only the ratio of the terms matters and each reading is one of lakt's
weights (k = 10 outputs, D = 3,072 input elements for CIFAR):

==============================  ==========================  ====================
the paper's term read as        in lakt's units             paper's 1 becomes
==============================  ==========================  ====================
Act: mean over k                Act / k                     gamma = k = 10
Jac: mean over D                Jac / D                     gamma = 1/D = 3.3e-4
Act and Jac: both means         (Act / k, Jac / D)          gamma = k/D = 3.3e-3
penalty: mean over D            ||grad S_y||^2 / D          lambda = lambda_p / D
penalty on log softmax (Eq 3)   ``ce+logjacnorm``           another method
==============================  ==========================  ====================

With CE in the loss the readings also move CE's weight against the others; chapter 3
shows the accuracy at each reading.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """'CE': cross-entropy with the ground-truth labels (supplementary, Loss function)."""
    return F.cross_entropy(logits, labels)


def match_activations(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """'Match Activations': sum_i (S^i(x) - T^i(x))^2 over pre-softmax activations (Prop 1)."""
    return (student_logits - teacher_logits.detach()).pow(2).sum(dim=1).mean()


def match_jacobians(student_grad: torch.Tensor, teacher_grad: torch.Tensor) -> torch.Tensor:
    """'Match Jacobians', CIFAR-100 form: ||grad T^i(x) - grad S^i(x)||_2^2."""
    diff = student_grad - teacher_grad.detach()
    return diff.flatten(1).pow(2).sum(dim=1).mean()


def match_finite_differences(student_moved: torch.Tensor, student_clean: torch.Tensor,
                             teacher_moved: torch.Tensor, teacher_clean: torch.Tensor, step: float) -> torch.Tensor:
    """'Match Jacobians' by finite differences: || (dS - dT) / h ||_2^2 over the k outputs.

    With x' = x + h v, v ~ N(0, I_D): dS = S(x') - S(x) = h J_S(x) v + O(h^2), so the value is
    ||(J_S - J_T) v||^2 + O(h), whose expectation over v is ||J_S - J_T||_F^2 -- the plain
    full-Jacobian term, :func:`match_jacobians` of all k rows (``full_jacobian``) summed
    over outputs. For piecewise-linear nets the O(h) vanishes once x' stays in x's linear
    region, which it does for small enough h (chapter 1: crossings make larger h biased).
    """
    diff = (student_moved - student_clean) - (teacher_moved - teacher_clean).detach()
    return (diff / step).pow(2).sum(dim=1).mean()


def match_jacobians_normalized(student_grad: torch.Tensor, teacher_grad: torch.Tensor,
                               eps: float = 1e-12) -> torch.Tensor:
    """'Match Jacobians', CIFAR-10 form: || grad T/||grad T|| - grad S/||grad S|| ||_2^2.

    Each gradient is scaled to unit norm first, so only directions are matched; the
    value lies in [0, 4]. ``eps`` guards an all-zero gradient.
    """
    s = F.normalize(student_grad.flatten(1), dim=1, eps=eps)
    t = F.normalize(teacher_grad.detach().flatten(1), dim=1, eps=eps)
    return (s - t).pow(2).sum(dim=1).mean()


def jacobian_norm_penalty(grad: torch.Tensor) -> torch.Tensor:
    """Prop 2's regulariser: ||grad S^i(x)||_2^2 (the Jacobian-norm / Tikhonov term)."""
    return grad.flatten(1).pow(2).sum(dim=1).mean()


def hinton_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s distillation term: T^2 KL(softmax(t/T) || softmax(s/T)), averaged over the batch.

    The T^2 keeps its gradients on the scale of the CE term as T changes (Hinton, Vinyals &
    Dean 2015, Sec. 2); the ``kd`` method adds (1 - alpha) CE and weights this by alpha.
    """
    t = temperature
    log_s = F.log_softmax(student_logits / t, dim=1)
    log_t = F.log_softmax(teacher_logits.detach() / t, dim=1)
    return t * t * F.kl_div(log_s, log_t, reduction="batchmean", log_target=True)


def attention_transfer(student_maps: list[torch.Tensor], teacher_maps: list[torch.Tensor]) -> torch.Tensor:
    """Attention-transfer distance, summed over the paired blocks (Zagoruyko & Komodakis 2017, Eq. 2).

    Each entry is an already L2-normalised, flattened attention map [B, H*W]
    (:func:`lakt.core.attention.attention_map`). Per pair: the squared distance averaged
    over batch and positions -- the form of the authors' reference code
    (``(at(x) - at(y)).pow(2).mean()``); the ``at+ce`` method multiplies the sum by beta,
    as their ``cifar.py`` does (``beta * sum(loss_groups)``), so their published beta = 1000 holds.
    """
    return sum((s - t.detach()).pow(2).mean() for s, t in zip(student_maps, teacher_maps, strict=True))
