"""The loss of one training step: a weighted sum of terms, read from one gathered batch.

The supplementary's loss is alpha*CE + beta*MatchAct + gamma*MatchJac; lakt adds
the Jacobian-norm penalty (Prop 2, Eq 3), activations matched at noisy inputs (Prop 1's
left side), Hinton KD and attention transfer. Each term is a row of :data:`TERMS`: its
name, its weight in a :class:`~lakt.core.methods.Method`, what it reads, and its value.
:class:`Objective` gathers what the weighted terms read once per step -- one student
forward at x, one teacher lookup, the Jacobians from the method's one estimator -- and
sums them. A new term is one more row.

The Jacobian estimators (``Method.estimator``) give the student's and the teacher's
Jacobian as stacks [P, B, ...] that every Jacobian term reads alike:

* ``exact``: the selected output's input gradient, per sample, by one backward of the
  student with BatchNorm's batch statistics held fixed (:mod:`lakt.core.jacobian`), P = 1;
* ``projection``: v^T J for P directions v ~ N(0, I_k) shared by student and teacher --
  in the plain form an unbiased estimate of the full-Jacobian sum of Prop 1;
* ``finite-difference``: (S(x + h v) - S(x)) / h = J v + O(h) for v ~ N(0, I_D), on the
  first ``fd_fraction`` of the batch, which joins the batch in the one student forward
  (so BatchNorm normalises x and x + h v with the same statistics). No input gradient is
  taken; E_v ||(J_S - J_T) v||^2 = ||J_S - J_T||_F^2, the plain form's full sum, so this
  estimator refuses the normalised form and bfloat16 (:func:`refusal`).
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from . import attention, losses
from .checks import check_inputs, output_checks
from .errors import require
from .jacobian import differentiable_input, differentiated, held_fixed, input_vjp, select_outputs
from .methods import JACOBIAN_FORMS, PRECISIONS, Method
from .teacher import TeacherCache, freeze, teacher_targets

TEACHER_AT_MOVED = "lakt: teacher at x + h v"  # profiler label: the finite-difference estimator's teacher forward


@dataclass
class Batch:
    """What the terms of one step read; a field stays None unless a weighted term needs it."""

    x: torch.Tensor
    y: torch.Tensor
    s_logits: torch.Tensor | None = None
    t_logits: torch.Tensor | None = None
    s_jac: torch.Tensor | None = None  # [P, B', ...]: the student's Jacobian estimate (graph kept)
    t_jac: torch.Tensor | None = None  # the teacher's, detached
    s_maps: list = field(default_factory=list)
    t_maps: list = field(default_factory=list)
    s_noisy: torch.Tensor | None = None  # logits at x + N(0, sigma^2 I)
    t_noisy: torch.Tensor | None = None
    t_input: torch.Tensor | None = None  # projection estimator: the teacher's input leaf, and
    t_graph: torch.Tensor | None = None  # its logits with their graph, for v^T J_T


@dataclass(frozen=True)
class Term:
    name: str                              # its key in the terms an Objective returns
    weight: Callable[[Method], float]
    reads: frozenset                       # of "teacher", "jacobians", "maps", "noisy"
    value: Callable[["Objective", Batch], torch.Tensor]


def _each(pairs, fn) -> torch.Tensor:
    return torch.stack([fn(*p) for p in pairs]).mean()


TERMS = (
    Term("ce", lambda m: m.ce, frozenset(), lambda o, b: losses.cross_entropy(b.s_logits, b.y)),
    Term("act", lambda m: m.act * (m.noise_sigma == 0), frozenset({"teacher"}),
         lambda o, b: losses.match_activations(b.s_logits, b.t_logits)),
    Term("noisy_act", lambda m: m.act * (m.noise_sigma > 0), frozenset({"noisy"}),
         lambda o, b: losses.match_activations(b.s_noisy, b.t_noisy)),
    Term("jac", lambda m: m.jac, frozenset({"teacher", "jacobians"}),
         lambda o, b: _each(zip(b.s_jac, b.t_jac), o.match_jacobians)),
    Term("jacnorm", lambda m: m.jacnorm, frozenset({"jacobians"}),
         lambda o, b: _each(zip(b.s_jac), losses.jacobian_norm_penalty)),
    Term("kd", lambda m: m.kd_alpha, frozenset({"teacher"}),
         lambda o, b: losses.hinton_kd(b.s_logits, b.t_logits, o.method.kd_temperature)),
    Term("at", lambda m: m.at, frozenset({"teacher", "maps"}),
         lambda o, b: losses.attention_transfer(b.s_maps, b.t_maps)),
)


def refusal(method: Method, jacobian_form: str, precision: str) -> str | None:
    """Why this method cannot be computed in this form and precision (None: it can)."""
    if method.estimator == "finite-difference" and method.jac > 0 and jacobian_form != "plain":
        return ("the finite-difference estimator matches J v over the k outputs, the plain full-Jacobian "
                "term; it has no normalised form: use jacobian_form='plain'")
    if method.estimator == "finite-difference" and precision != "fp32":
        return "the finite-difference estimator needs float32 (bf16 rounding exceeds S(x + h v) - S(x) at small h)"
    return None


class Objective:
    """The loss of one training step for a :class:`Method`; ``objective(student, x, y)`` returns (total, terms).

    ``terms`` holds each weighted term's value, detached (the training history records
    them), and ``terms["logits"]``, the student's logits *with* their graph, so your own
    loop can add a term without a second forward. ``jacobian_form``: ``"plain"``,
    ||grad T - grad S||^2 as Prop 1 derives it (the paper's CIFAR-100 form), or
    ``"normalized"``, unit-norm gradients (the supplementary's CIFAR-10 form, in [0, 4]).
    ``output``: the Jacobian row of the label or of the teacher's top logit. ``cache`` /
    ``attention_cache``: the teacher's targets per training image, looked up by the
    ``positions`` the loader yields. ``precision="bf16"``: the student's passes under
    bfloat16 autocast, every loss computed in float32. If ``x`` requires grad, the total
    is differentiable with respect to it.
    """

    def __init__(self, method: Method, teacher: nn.Module | None = None, *, jacobian_form: str = "plain",
                 output: str = "label", cache: TeacherCache | None = None, precision: str = "fp32",
                 attention_cache: "attention.AttentionCache | None" = None):
        require(jacobian_form in JACOBIAN_FORMS, f"unknown Jacobian form {jacobian_form!r}; choose one of {JACOBIAN_FORMS}")
        require(precision in PRECISIONS, f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
        require(not method.needs_teacher or teacher is not None, "this method needs a teacher model")
        reason = refusal(method, jacobian_form, precision)
        require(reason is None, str(reason))
        self.method, self.jacobian_form, self.output = method, jacobian_form, output
        self.autocast_dtype = PRECISIONS[precision]
        self.teacher = freeze(teacher) if teacher is not None else None
        self.cache = cache if method.teacher_targets_cacheable else None
        self.attention_cache = attention_cache if method.teacher_targets_cacheable else None
        self.terms = [(t, float(t.weight(method))) for t in TERMS if t.weight(method) > 0]
        self.reads = frozenset().union(*(t.reads for t, _ in self.terms))

    def match_jacobians(self, s_jac: torch.Tensor, t_jac: torch.Tensor) -> torch.Tensor:
        if self.jacobian_form == "normalized":
            return losses.match_jacobians_normalized(s_jac, t_jac)
        return losses.match_jacobians(s_jac, t_jac)

    def __call__(self, student: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 positions: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted loss of ``x`` [B, C, H, W] with labels ``y`` [B] and its terms; one student forward.

        Inputs that do not fit the networks raise :class:`~lakt.core.errors.LaktError`
        saying what to change (:mod:`lakt.core.checks`, once per step).
        """
        y = check_inputs(student, self.teacher, x, y)
        k = self.cache.logits.shape[1] if self.cache is not None else None
        with output_checks(student, self.teacher, k, y):
            b = self._gather(student, x, y, positions)
            values = {t.name: w * t.value(self, b) for t, w in self.terms}
        total = sum(values.values())
        return total, {k: v.detach() for k, v in values.items()} | {"logits": b.s_logits}

    def _autocast(self, x):
        return nullcontext() if self.autocast_dtype is None else torch.autocast(x.device.type, self.autocast_dtype)

    def _f32(self, t: torch.Tensor) -> torch.Tensor:
        """Autocast outputs back to float32 for the loss arithmetic; otherwise unchanged."""
        return t.float() if self.autocast_dtype is not None else t

    def _gather(self, student, x, y, positions) -> Batch:
        m, b = self.method, Batch(x, y)
        jacobians, maps = "jacobians" in self.reads, "maps" in self.reads
        index = self._teacher(b, positions, jacobians, maps) if "teacher" in self.reads else y
        xs = differentiable_input(x) if jacobians and m.estimator != "finite-difference" else x
        moved = None
        if jacobians and m.estimator == "finite-difference":
            n = max(1, round(m.fd_fraction * len(x)))
            moved = x[:n] + m.fd_step * torch.randn_like(x[:n])
            xs = torch.cat([x, moved])
        per_sample = jacobians and m.estimator != "finite-difference"  # an input gradient will be taken
        with torch.enable_grad(), self._autocast(x), held_fixed(student) if per_sample else nullcontext(), \
                attention.recording(student) if maps else nullcontext([]) as s_maps:
            logits = student(xs)
        b.s_maps = [s[:len(x)] for s in s_maps]
        b.s_logits = self._f32(logits[:len(x)])
        if jacobians:
            b.s_jac = self._student_jacobian(logits, xs, index, moved, b)
        if "noisy" in self.reads:
            noisy = x + m.noise_sigma * torch.randn_like(x)
            with torch.no_grad():
                b.t_noisy = self.teacher(noisy)
            with self._autocast(x):
                b.s_noisy = self._f32(student(noisy))
        return b

    def _teacher(self, b: Batch, positions, jacobians: bool, maps: bool) -> torch.Tensor:
        """Fill the teacher's logits, Jacobian and maps at x; return the selected outputs' index."""
        m, x, y = self.method, b.x, b.y
        if self.cache is not None and positions is not None:
            b.t_logits, t_grad, index = self.cache[positions]
            b.t_jac = t_grad[None] if jacobians and m.jac and m.estimator == "exact" else None
        elif jacobians and m.jac and m.estimator == "exact":
            b.t_logits, t_grad, index = teacher_targets(self.teacher, x, y, self.output, m.jacobian_of)
            b.t_jac = t_grad[None]
        elif jacobians and m.jac and m.estimator == "projection":
            b.t_input = x.detach().requires_grad_(True)
            with torch.enable_grad():
                b.t_graph = self.teacher(b.t_input)
            b.t_logits = b.t_graph.detach()
            index = y
        else:
            with torch.no_grad():
                b.t_logits = self.teacher(x)
            index = select_outputs(self.output, y, b.t_logits)
        if maps:
            if self.attention_cache is not None and positions is not None:
                b.t_maps = self.attention_cache[positions]
            else:
                with torch.no_grad(), attention.recording(self.teacher) as t_maps:
                    self.teacher(x)
                b.t_maps = list(t_maps)
        return index

    def _student_jacobian(self, logits, xs, index, moved, b: Batch) -> torch.Tensor:
        """The student's Jacobian estimate [P, B', ...] (and, where the teacher's depends on
        random directions, the teacher's into ``b.t_jac``)."""
        m, x = self.method, b.x
        if m.estimator == "finite-difference":
            n = len(moved)
            out = differentiated(logits, m.jacobian_of)
            if m.jac:
                with torch.no_grad(), torch.profiler.record_function(TEACHER_AT_MOVED):
                    t_out = differentiated(torch.cat([b.t_logits[:n], self.teacher(moved)]), m.jacobian_of)
                b.t_jac = ((t_out[n:] - t_out[:n]) / m.fd_step)[None]
            return ((out[len(x):] - out[:n]) / m.fd_step)[None]
        out = differentiated(logits, m.jacobian_of)
        if m.estimator == "exact":
            directions = [torch.zeros_like(out).scatter_(1, index.view(-1, 1), 1.0)]
        else:
            directions = [torch.randn_like(out) for _ in range(m.projections)]
            if m.jac:
                t_out = differentiated(b.t_graph, m.jacobian_of)
                b.t_jac = torch.stack([input_vjp(t_out, b.t_input, v.to(t_out.dtype)) for v in directions]).detach()
        with self._autocast(x):
            s_jac = torch.stack([input_vjp(out, xs, v, create_graph=True) for v in directions])
        return self._f32(s_jac)
