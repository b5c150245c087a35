"""The loss of one training step, for a :class:`~lakt.core.methods.Method`.

:class:`Objective` turns a method's weights into alpha*CE + beta*MatchAct +
gamma*MatchJac for one batch; :class:`TeacherCache` holds the frozen teacher's
targets per training image so they are computed once, not every epoch.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from . import attention, losses, one_pass
from .checks import check_inputs, output_checks
from .errors import require
from .jacobian import BATCH_STATISTICS, input_vjp, logits_and_gradient, select_outputs
from .methods import JACOBIAN_FORMS, PRECISIONS, Method

TEACHER_AT_MOVED = "lakt: teacher at x + h v"  # profiler label: the finite-difference term's teacher forward


def freeze(teacher: nn.Module) -> nn.Module:
    """Eval mode and no parameter gradients: the teacher only gives targets."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def teacher_targets(teacher: nn.Module, x: torch.Tensor, labels: torch.Tensor,
                    output: str = "label") -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher logits and the input gradient of the selected output, both detached.

    One forward and one backward of the frozen teacher (exact per sample: eval mode).
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = teacher(x)
        index = select_outputs(output, labels, logits.detach())
        (grad,) = torch.autograd.grad(logits.gather(1, index.view(-1, 1)).sum(), x)
    return logits.detach(), grad.detach()


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
              batch_size: int = 256, where: str = "auto", path=None) -> "TeacherCache":
        require(where in ("auto", "device", "host", "disk"), f"unknown cache place {where!r}")
        device = x.device
        if where == "auto":
            where = "device" if _fits_on(device, x.numel() * x.element_size()) else "host"
        logits, grads = [], []
        for start in range(0, len(x), batch_size):
            lo, g = teacher_targets(teacher, x[start:start + batch_size], labels[start:start + batch_size], output)
            logits.append(lo)
            grads.append(g if where == "device" else g.cpu())
        logits_t = torch.cat(logits)
        index = select_outputs(output, labels, logits_t)
        grads_t = torch.cat(grads)
        if where == "disk":
            import numpy as np
            require(path is not None, "a disk cache needs a file path")
            np.save(path, grads_t.numpy())
            grads_t = torch.from_numpy(np.load(path, mmap_mode="c"))  # copy-on-write: never alters the file
        return cls(logits_t, grads_t, index, device)

    def __getitem__(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        grads = self.grads[positions.to(self.grads.device)].to(self.device, non_blocking=True)
        return self.logits[positions], grads, self.index[positions]


def _fits_on(device: torch.device, nbytes: int) -> bool:
    if device.type != "cuda":
        return True  # host memory is where it would go anyway
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < free // 2


class Objective:
    """The loss of one training step for a :class:`Method`; returns (total, terms).

    ``terms`` holds each weighted term's value as a detached tensor, so the
    training history can record CE, Act and Jac separately, and ``terms["logits"]``,
    the student's logits *with* their graph, so a user's own loop can add terms of its
    own (a KD term, a penalty) without a second student forward.

    ``jacobian_form`` defaults to ``"plain"``, ||grad T - grad S||^2: the Match-Jacobians
    term exactly as Proposition 1 derives it and as the paper uses it for CIFAR-100, and
    the default of :class:`lakt.runs.RunConfig`, so a config and an Objective built
    without the argument agree. The paper trains CIFAR-10 with ``"normalized"``
    (supplementary, "Loss function": only the gradients' directions are matched, a value
    in [0, 4]); the CLI and the CIFAR-10 presets pass it, and so should you for CIFAR-10.

    ``precision="bf16"``: the student's passes run under bfloat16 autocast (a GPU
    speed option); its logits and input gradients are cast to float32 before any loss
    arithmetic, so the normalisation and squared differences of the Jacobian term --
    small differences of small numbers -- are computed in float32, and the teacher's
    targets always are.
    """

    def __init__(self, method: Method, teacher: nn.Module | None = None, *, jacobian_form: str = "plain",
                 output: str = "label", cache: TeacherCache | None = None, precision: str = "fp32",
                 batch_statistics: str = "fixed",
                 attention_cache: "attention.AttentionCache | None" = None):
        require(jacobian_form in JACOBIAN_FORMS,
                f"unknown Jacobian form {jacobian_form!r}; choose one of {JACOBIAN_FORMS}")
        require(precision in PRECISIONS, f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
        self.autocast_dtype = PRECISIONS[precision]
        require(not method.finite_difference or precision == "fp32",
                "the finite-difference Jacobian term needs float32 (a bf16 logit's rounding exceeds the difference "
                "at small h); use --precision fp32 with the *fdjac* methods")
        require(batch_statistics in BATCH_STATISTICS,
                f"unknown batch_statistics {batch_statistics!r}; choose one of {BATCH_STATISTICS}")
        self.batch_statistics = batch_statistics
        require(not method.needs_teacher or teacher is not None, "this method needs a teacher model")
        self.method, self.jacobian_form, self.output = method, jacobian_form, output
        self.teacher = freeze(teacher) if teacher is not None else None
        self.cache = cache if method.teacher_targets_cacheable else None
        self.attention_cache = attention_cache if method.teacher_targets_cacheable else None
        require(not method.at or not (method.needs_student_gradient or method.noise_sigma or method.projections),
                "attention transfer combines only with CE, Match Activations and KD")

    def _autocast(self, x: torch.Tensor):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=x.device.type, dtype=self.autocast_dtype)

    def _loss_dtype(self, t: torch.Tensor) -> torch.Tensor:
        """Autocast outputs back to float32 for the loss arithmetic; otherwise unchanged."""
        return t.float() if self.autocast_dtype is not None else t

    def _match_jac(self, s_grad: torch.Tensor, t_grad: torch.Tensor) -> torch.Tensor:
        if self.jacobian_form == "normalized":
            return losses.match_jacobians_normalized(s_grad, t_grad)
        return losses.match_jacobians(s_grad, t_grad)

    def __call__(self, student: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 positions: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted loss of one batch and its terms, with one forward of the student.

        ``student``: the network being trained (train or eval mode; it returns logits
        [B, k]). ``x``: float inputs [B, C, H, W] on the student's device and dtype.
        ``y``: class indices [B] (any integer dtype). ``positions``: the batch's indices
        into the training set, to look up a :class:`TeacherCache`'s targets.

        Returns ``(total, terms)``: ``total`` to call ``backward()`` on, and ``terms`` --
        ``"ce"``, ``"act"``, ``"jac"``, ``"jacnorm"`` (those the method weights, each
        weighted and detached) and ``"logits"`` (the student's, with their graph).
        Inputs that do not fit the networks raise :class:`~lakt.core.errors.LaktError`
        saying which and how to fix it (:mod:`lakt.core.checks`).
        """
        y = check_inputs(student, self.teacher, x, y)
        teacher_outputs = self.cache.logits.shape[1] if self.cache is not None else None
        with output_checks(student, self.teacher, teacher_outputs):
            return self._loss(student, x, y, positions)

    def _loss(self, student, x, y, positions):
        m = self.method
        terms: dict[str, torch.Tensor] = {}
        if m.projections > 0:
            return self._projected(student, x, y)
        if m.at > 0:
            return self._attention_transfer(student, x, y, positions)
        t_logits = t_grad = index = None
        if m.needs_clean_teacher_targets:
            if self.cache is not None and positions is not None:
                t_logits, t_grad, index = self.cache[positions]
            elif m.needs_teacher_gradient:
                t_logits, t_grad = teacher_targets(self.teacher, x, y, self.output)
                index = select_outputs(self.output, y, t_logits)
            else:  # logits alone: no teacher backward
                with torch.no_grad():
                    t_logits = self.teacher(x)
                index = select_outputs(self.output, y, t_logits)
        else:
            index = y
        if m.finite_difference:
            return self._finite_difference(student, x, y, t_logits)
        with self._autocast(x):
            if m.needs_student_gradient:
                s_logits, s_grad = self._student_logits_and_gradient(student, x, index)
                s_grad = self._loss_dtype(s_grad)
            else:
                s_logits, s_grad = student(x), None
        s_logits = self._loss_dtype(s_logits)
        if m.ce:
            terms["ce"] = m.ce * losses.cross_entropy(s_logits, y)
        if m.act:
            if m.noise_sigma > 0:
                noisy = x + m.noise_sigma * torch.randn_like(x)
                with torch.no_grad():
                    t_noisy = self.teacher(noisy)
                with self._autocast(x):
                    s_noisy = student(noisy)
                terms["act"] = m.act * losses.match_activations(self._loss_dtype(s_noisy), t_noisy)
            else:
                terms["act"] = m.act * losses.match_activations(s_logits, t_logits)
        if m.jac:
            terms["jac"] = m.jac * self._match_jac(s_grad, t_grad)
        if m.jacnorm:
            terms["jacnorm"] = m.jacnorm * losses.jacobian_norm_penalty(s_grad)
        if m.kd_alpha:
            terms["kd"] = m.kd_alpha * losses.hinton_kd(s_logits, t_logits, m.kd_temperature)
        return self._finish(terms, s_logits)

    def _attention_transfer(self, student, x, y, positions):
        """CE (+ Act, KD) + beta/2 * attention transfer: student maps by forward hooks on its stage ends."""
        m = self.method
        terms: dict[str, torch.Tensor] = {}
        with attention.recording(student) as s_maps, self._autocast(x):
            s_logits = student(x)
        s_logits = self._loss_dtype(s_logits)
        if self.attention_cache is not None and positions is not None:
            t_maps = self.attention_cache[positions]
            t_logits = self.cache[positions][0] if (m.act or m.kd_alpha) and self.cache is not None else None
        else:
            with torch.no_grad(), attention.recording(self.teacher) as t_maps:
                t_logits = self.teacher(x)
        if (m.act or m.kd_alpha) and t_logits is None:
            with torch.no_grad():
                t_logits = self.teacher(x)
        if m.ce:
            terms["ce"] = m.ce * losses.cross_entropy(s_logits, y)
        if m.act:
            terms["act"] = m.act * losses.match_activations(s_logits, t_logits)
        if m.kd_alpha:
            terms["kd"] = m.kd_alpha * losses.hinton_kd(s_logits, t_logits, m.kd_temperature)
        terms["at"] = m.at / 2 * losses.attention_transfer(list(s_maps), list(t_maps))
        return self._finish(terms, s_logits)

    def _projected(self, student, x, y):
        """Full-Jacobian terms by random projections v ~ N(0, I_k), shared by S and T.

        Plain form: an unbiased estimate of sum_i ||grad S^i - grad T^i||^2 (Prop 1). Normalised
        form: the projected gradients' directions matched, not the normalised sum over rows
        (:mod:`lakt.core.methods`, ``act+fulljac``).
        """
        m = self.method
        terms: dict[str, torch.Tensor] = {}
        xs = x.detach().requires_grad_(True)
        with self._autocast(x):
            if self._two_passes(student):  # train-mode BatchNorm: one forward serves the loss and, with
                with one_pass.one_pass(student):  # the statistics held fixed, the projected gradients
                    s_logits = student(xs)
                fixed = one_pass.statistics_held_fixed_backward
            else:
                s_logits = student(xs)
                fixed = nullcontext
        if self.teacher is not None:
            xt = x.detach().requires_grad_(True)
            with torch.enable_grad():
                t_logits = self.teacher(xt)
        estimates = []
        for _ in range(m.projections):
            v = torch.randn_like(s_logits)
            with self._autocast(x):
                with fixed():
                    s_grad = self._loss_dtype(input_vjp(s_logits, xs, v, create_graph=True))
            if self.teacher is not None:
                estimates.append(self._match_jac(s_grad, input_vjp(t_logits, xt, v).detach()))
            else:
                estimates.append(losses.jacobian_norm_penalty(s_grad))
        estimate = torch.stack(estimates).mean()
        s_logits = self._loss_dtype(s_logits)
        if m.ce:
            terms["ce"] = m.ce * losses.cross_entropy(s_logits, y)
        if m.act:
            terms["act"] = m.act * losses.match_activations(s_logits, t_logits.detach())
        if m.jac:
            terms["jac"] = m.jac * estimate
        if m.jacnorm:
            terms["jacnorm"] = m.jacnorm * estimate
        return self._finish(terms, s_logits)

    def _finite_difference(self, student, x, y, t_logits):
        """Act (+ CE) and the full-Jacobian term by finite differences (Prop 1 as an estimator).

        The first ``fd_fraction`` of the batch (the loader has shuffled it) is moved to
        x + h v, v ~ N(0, I_D), and joins the batch in one student forward: in train mode
        BatchNorm then normalises each clean point and its moved copy with the same batch
        statistics, so S(x + h v) - S(x) is a difference of one function -- the student with
        the batch statistics held fixed, whose per-sample Jacobian the term estimates (CE and
        Act see the statistics of the B + n images). The teacher at x comes from the cache,
        at x + h v from one no-grad eval-mode forward; no input gradient is taken.
        """
        m = self.method
        n = max(1, round(m.fd_fraction * len(x)))
        moved = x[:n] + m.fd_step * torch.randn_like(x[:n])
        outputs = student(torch.cat([x, moved]))
        s_logits, s_moved = outputs[:len(x)], outputs[len(x):]
        with torch.no_grad(), torch.profiler.record_function(TEACHER_AT_MOVED):
            t_moved = self.teacher(moved)
        terms: dict[str, torch.Tensor] = {}
        if m.ce:
            terms["ce"] = m.ce * losses.cross_entropy(s_logits, y)
        if m.act:
            terms["act"] = m.act * losses.match_activations(s_logits, t_logits)
        terms["jac"] = m.jac * losses.match_finite_differences(s_moved, s_logits[:n], t_moved, t_logits[:n], m.fd_step)
        return self._finish(terms, s_logits)

    def _two_passes(self, student: nn.Module) -> bool:
        """Whether the student's input gradient needs its own forward: per-sample gradients
        of a train-mode BatchNorm net come from a pass with the batch statistics held fixed
        (:mod:`lakt.core.jacobian`), while the loss is taken on the ordinary forward."""
        return self.batch_statistics == "fixed" and any(
            isinstance(mod, _BatchNorm) and mod.training for mod in student.modules())

    def _student_logits_and_gradient(self, student: nn.Module, x: torch.Tensor, index: torch.Tensor):
        """Logits for the loss terms and each sample's gradient of its selected output, graph kept."""
        if not self._two_passes(student):  # one pass gives both (eval mode, no BatchNorm, or "coupled")
            return logits_and_gradient(student, x, index, create_graph=True, batch_statistics="coupled")
        # One forward for both: BatchNorm's usual gradients and running stats for the loss, the
        # statistics held fixed for the input gradient (lakt.core.one_pass; equal to an ordinary
        # forward plus logits_and_gradient(..., batch_statistics="fixed"), one forward cheaper).
        return one_pass.logits_and_gradient(student, x, index)

    @staticmethod
    def _finish(terms, s_logits):
        total = sum(terms.values())
        return total, {k: v.detach() for k, v in terms.items()} | {"logits": s_logits}
