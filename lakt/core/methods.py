"""Training objectives: alpha*CE + beta*MatchAct + gamma*MatchJac and their presets.

The supplementary's general loss is

    l(S, T) = alpha * CE + beta * (Match Activations) + gamma * (Match Jacobians)

with every constant 0 or 1. Tables 1-2 compare six settings of (alpha, beta, gamma);
they are the first six entries of :data:`METHODS`. Beyond the paper:

* ``noisy-act``: match activations at x + xi, xi ~ N(0, sigma^2 I) -- the *left* side
  of Prop 1 used directly as a training method (Monte-Carlo, one draw per step);
* ``act+fulljac``: all k Jacobian rows instead of the paper's single-output heuristic,
  through one random projection v ~ N(0, I_k) per step shared by student and teacher,
  matching v^T J_S(x) to v^T J_T(x). In the *plain* form this is an unbiased estimate of
  Prop 1's sum over rows, sum_i ||grad S^i - grad T^i||^2. In the *normalised* form
  (CIFAR-10's, which the cifar10-cpu preset used) it matches the direction of the
  projected gradient, || u_S/||u_S|| - u_T/||u_T|| ||^2 with u = v^T J: a loss of the
  size of one row's term (in [0, 4]), *not* an estimate of the normalised sum over the
  k rows, which would be about k times larger;
* ``ce+jacnorm``: cross-entropy plus the Jacobian-norm penalty of Prop 2, lambda ||grad S_y||^2
  on the label's *logit* (Table 3 as the squared-error derivation has it);
* ``ce+logjacnorm``: cross-entropy plus Eq 3's penalty, lambda ||grad log softmax(S)_y||^2 =
  lambda ||grad S_y||^2 / S_y^2 of the softmax output -- the form the paper's CE-trained
  Table 3 nets follow from; it vanishes on confidently right examples;
* ``kd``: Hinton et al.'s knowledge distillation, alpha T^2 KL(softmax(t/T) || softmax(s/T))
  + (1 - alpha) CE -- the cross-entropy distillation the paper says squared error beats.
  lakt's alpha weighs the KL term; torchdistill's ``KDLoss(alpha=...)`` weighs the CE term
  (its beta = 1 - alpha the KL), so lakt's alpha = 0.9 is torchdistill's alpha = 0.1;
* ``at+ce``: Zagoruyko & Komodakis's attention transfer plus CE, the other "Jacobian as
  attention" approach the paper cites (:mod:`lakt.core.attention`): CE + beta * sum over
  stage pairs of the mean squared map distance, as their ``cifar.py`` computes it
  (``beta * sum(at_losses)``), so lakt's beta is theirs (published: 1000).
* ``act+fdjac`` (and ``+ce``): the full-Jacobian term of Prop 1 estimated by finite
  differences along random input directions, (S(x+hv) - S(x))/h against
  (T(x+hv) - T(x))/h with v ~ N(0, I_D): E_v ||(J_S - J_T) v||^2 = ||J_S - J_T||_F^2,
  so for piecewise-linear nets it is unbiased as h -> 0 -- and needs no double backward.

The teacher is never trained: it is put in eval mode, its parameters are frozen and
every quantity taken from it is detached.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .errors import require

JACOBIAN_FORMS = ("plain", "normalized")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


ESTIMATORS = ("exact", "projection", "finite-difference")


@dataclass(frozen=True)
class Method:
    """Weights of each loss term, and how the Jacobian terms are estimated.

    The Jacobian terms (``jac``, ``jacnorm``) read the student's Jacobian from one
    *estimator* (:mod:`lakt.core.objective`): ``exact`` -- the selected row by a per-sample
    backward (the paper's); ``projection`` -- v^T J for v ~ N(0, I_k), ``projections`` of them;
    ``finite-difference`` -- (S(x + h v) - S(x)) / h for v ~ N(0, I_D), no double backward.
    ``jacobian_of`` says what is differentiated: the logits (Props 1-2) or their
    log-softmax (Eq 3: grad S_y / S_y of the softmax output).
    """

    ce: float = 0.0          # alpha: cross-entropy with labels
    act: float = 0.0         # beta: Match Activations (at x + N(0, noise_sigma^2 I) when noise_sigma > 0)
    jac: float = 0.0         # gamma: Match Jacobians
    jacnorm: float = 0.0     # lambda: the norm penalty on the student's own Jacobian (Prop 2 / Eq 3)
    kd_alpha: float = 0.0    # weight of Hinton's T^2 KL term; CE gets 1 - alpha (torchdistill's alpha is CE's)
    at: float = 0.0          # beta of attention transfer: beta * sum over stages (Zagoruyko & Komodakis' code)
    noise_sigma: float = 0.0  # > 0: activations are matched at x + N(0, sigma^2 I)
    kd_temperature: float = 1.0  # T of the softened softmaxes
    jacobian_of: str = "logit"   # "logit" or "log_softmax": the output whose input gradient the terms use
    projections: int = 0     # > 0: the projection estimator, with this many directions per step
    fd_step: float = 0.0     # h > 0: the finite-difference estimator
    fd_fraction: float = 0.25  # the share of each batch it moves

    @property
    def estimator(self) -> str:
        """Where the Jacobian terms read the Jacobian from (:data:`ESTIMATORS`)."""
        if self.fd_step > 0:
            return "finite-difference"
        return "projection" if self.projections > 0 else "exact"

    @property
    def needs_teacher(self) -> bool:
        return self.act > 0 or self.jac > 0 or self.kd_alpha > 0 or self.at > 0

    @property
    def needs_student_jacobian(self) -> bool:
        return self.jac > 0 or self.jacnorm > 0

    @property
    def teacher_targets_cacheable(self) -> bool:
        """Per-image teacher targets are the same every epoch: no noisy inputs, no random projections."""
        return self.noise_sigma == 0 and self.projections == 0


METHODS: dict[str, Method] = {
    # The six rows of Tables 1 and 2, in the paper's order.
    "ce": Method(ce=1),
    "act+ce": Method(ce=1, act=1),
    "jac+ce": Method(ce=1, jac=1),
    "act+jac+ce": Method(ce=1, act=1, jac=1),
    "act": Method(act=1),
    "act+jac": Method(act=1, jac=1),
    # Beyond the paper.
    "noisy-act": Method(act=1, noise_sigma=0.1),
    "noisy-act+ce": Method(ce=1, act=1, noise_sigma=0.1),
    "act+fulljac": Method(act=1, jac=1, projections=1),
    "act+fulljac+ce": Method(ce=1, act=1, jac=1, projections=1),
    "ce+jacnorm": Method(ce=1, jacnorm=1),
    "ce+logjacnorm": Method(ce=1, jacnorm=1, jacobian_of="log_softmax"),
    # Baselines the paper argues against; Hinton's T = 4, alpha = 0.9 and Zagoruyko &
    # Komodakis's beta = 1000 as defaults, tuned on a validation split.
    "kd": Method(ce=0.1, kd_alpha=0.9, kd_temperature=4.0),
    "at+ce": Method(ce=1, at=1000.0),
    "act+fdjac": Method(act=1, jac=1, fd_step=0.01),
    "act+fdjac+ce": Method(ce=1, act=1, jac=1, fd_step=0.01),
}
PAPER_METHODS = ("ce", "act+ce", "jac+ce", "act+jac+ce", "act", "act+jac")


def get_method(name: str, *, noise_sigma: float | None = None, penalty: float | None = None,
               jac_weight: float | None = None, kd_temperature: float | None = None,
               kd_alpha: float | None = None, at_weight: float | None = None, fd_step: float | None = None,
               fd_fraction: float | None = None) -> Method:
    """A preset by name, with its sigma (noisy methods), penalty strength, Jacobian weight, KD or AT
    knobs, or finite-difference step and perturbed fraction (``*fdjac*`` methods) overridden.

    ``jac_weight`` is gamma of the supplementary's loss, alpha CE + beta Act + gamma Jac
    (the paper sets every constant to 1); it applies to methods with a Jacobian term.
    ``kd_temperature`` / ``kd_alpha`` set T and alpha of ``kd`` (alpha weighs T^2 KL, 1 - alpha CE:
    the reverse of torchdistill's alpha);
    ``at_weight`` sets beta of ``at+ce``. Each applies only to methods with that term.
    """
    require(name in METHODS, f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    method = METHODS[name]
    if method.kd_alpha > 0:
        if kd_temperature is not None:
            require(kd_temperature > 0, f"KD temperature must be > 0, got {kd_temperature}; e.g. kd_temperature=4")
            method = replace(method, kd_temperature=float(kd_temperature))
        if kd_alpha is not None:
            require(0 < kd_alpha <= 1, f"KD alpha must be in (0, 1], got {kd_alpha}; e.g. kd_alpha=0.9")
            method = replace(method, kd_alpha=float(kd_alpha), ce=1.0 - float(kd_alpha))
    if at_weight is not None and method.at > 0:
        require(at_weight > 0, f"attention-transfer weight must be > 0, got {at_weight}; e.g. at_weight=1000")
        method = replace(method, at=float(at_weight))
    if jac_weight is not None:
        require(jac_weight > 0, f"Jacobian weight must be > 0, got {jac_weight}; e.g. jac_weight=10")
        require(jac_weight == 1 or method.jac > 0,
                f"method {name!r} has no Jacobian term to weight; use a method with 'jac' in its name")
        method = replace(method, jac=method.jac * float(jac_weight))
    if noise_sigma is not None and method.noise_sigma > 0:
        require(noise_sigma > 0, f"noise sigma must be > 0 for {name!r}, got {noise_sigma}")
        method = replace(method, noise_sigma=float(noise_sigma))
    if fd_step is not None and method.estimator == "finite-difference":
        require(fd_step > 0, f"finite-difference step must be > 0, got {fd_step}; e.g. fd_step=0.01")
        method = replace(method, fd_step=float(fd_step))
    if fd_fraction is not None and method.estimator == "finite-difference":
        require(0 < fd_fraction <= 1, f"perturbed fraction must be in (0, 1], got {fd_fraction}; e.g. fd_fraction=0.25")
        method = replace(method, fd_fraction=float(fd_fraction))
    if penalty is not None:
        require(penalty >= 0, f"penalty strength must be >= 0, got {penalty}")
        method = replace(method, jacnorm=float(penalty)) if method.jacnorm > 0 else method
    return method
