"""A run: one frozen :class:`RunConfig`, and the cache key that names its results folder.

Kinds: ``teacher`` (VGG-9, CE, whole training set), ``student`` (VGG-4 on a per-class
subset with a method, distilled from its teacher run) and ``robust`` (VGG-9 with the
Jacobian-norm penalty, then accuracy under input noise: Table 3).

The key is a hash of every field. Fields a run's method does not read are set to their
defaults when the config is made (:meth:`RunConfig.__post_init__`), so two configs that
compute the same thing have one key whichever preset made them.

The key includes ``data``, the fingerprint of the data the run trains and is tested on
(:attr:`lakt.core.data.Dataset.fingerprint`), so the same results folder used with
two data roots keeps their runs apart. Digits configs get it when they are built
(the data is offline); for the others the runner fills it in from the loaded data
(:func:`lakt.runs.cache.resolve`) before any lookup, and a config that still has none
refuses to name a key rather than guess one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..core import data as data_lib
from ..core.errors import require
from ..core.methods import METHODS, get_method
from ..core.robustness import PAPER_SIGMAS, check_sigmas
from ..core.train import OPTIMIZERS

KINDS = ("teacher", "student", "robust")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's result (and so its cache key)."""

    kind: str
    dataset: str = "digits"
    model: str = "vgg9"
    width: float = 1.0
    method: str = "ce"
    n_per_class: int | None = None  # None: the whole training set
    seed: int = 0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    final_lr: float = 1e-4
    optimizer: str = "adam"         # the paper's; "sgd": Nesterov momentum, cosine lr -> final_lr (lakt.core.train)
    weight_decay: float = 0.0       # L2 coefficient of the optimiser
    jacobian_form: str = "plain"    # "normalized" is the paper's CIFAR-10 form
    output: str = "label"           # which Jacobian row to match: "label" or "top"
    noise_sigma: float = 0.1        # for the noisy-input methods
    penalty: float = 0.0            # Jacobian-norm strength (robust runs)
    jac_weight: float = 1.0         # gamma, the Match-Jacobians weight (the paper's is 1)
    fd_step: float = 0.01           # h of the finite-difference Jacobian term (*fdjac* methods)
    fd_fraction: float = 0.25       # share of each batch perturbed for it (*fdjac* methods)
    sigmas: tuple = PAPER_SIGMAS    # noise levels evaluated (robust runs)
    noise_trials: int = 10
    teacher: "RunConfig | None" = None
    save_model: bool = False
    precision: str = "fp32"         # "bf16": autocast the networks' passes (GPU speed option)
    channels_last: bool = False     # NHWC memory layout (GPU speed option)
    augment: bool = False           # random crop (4-px zero pad) + flip per batch; teacher and robust runs only
    validation: int = 0             # training images held out (stratified, fixed seed) and scored as val_acc
    kd_temperature: float = 4.0     # T of Hinton KD (method "kd")
    kd_alpha: float = 0.9           # alpha of Hinton KD: alpha T^2 KL + (1 - alpha) CE (torchdistill: 1 - alpha)
    at_weight: float = 1000.0       # beta of attention transfer (method "at+ce"): beta * sum of stage distances
    data: str | None = None         # fingerprint of the data ("<kind>:<digest>"); None: not resolved yet

    def __post_init__(self):
        require(self.kind in KINDS, f"unknown run kind {self.kind!r}; choose one of {KINDS}")
        require(self.dataset in data_lib.DATASETS,
                f"unknown dataset {self.dataset!r}; choose one of {', '.join(data_lib.DATASETS)}")
        require(self.method in METHODS, f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        require(isinstance(self.width, (int, float)) and self.width > 0,
                f"width must be > 0, got {self.width!r}; e.g. --width 0.25")
        require(self.n_per_class is None or (isinstance(self.n_per_class, int) and self.n_per_class >= 1),
                f"n_per_class must be a positive integer, got {self.n_per_class!r}")
        require(isinstance(self.epochs, int) and self.epochs >= 1, f"epochs must be >= 1, got {self.epochs!r}")
        require(isinstance(self.batch_size, int) and self.batch_size >= 2,
                f"batch size must be >= 2, got {self.batch_size!r}")
        require(self.noise_sigma > 0, f"noise sigma must be > 0, got {self.noise_sigma!r}")
        require(self.penalty >= 0, f"penalty must be >= 0, got {self.penalty!r}")
        require(self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        require(self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay!r}")
        self.method_spec  # jac_weight > 0 and only where there is a Jacobian term; KD / AT knobs in range
        require(isinstance(self.validation, int) and self.validation >= 0,
                f"validation must be a whole number >= 0, got {self.validation!r}; e.g. --validation 5000")
        require(not (self.augment and self.kind == "student"),
                "augmentation is for teacher and robust runs; students stay un-augmented "
                "so their cached teacher targets stay valid")
        require(self.kind != "student" or self.teacher is None or self.teacher.validation == self.validation,
                f"a student must hold out the same validation images as its teacher "
                f"({self.validation} vs {self.teacher.validation if self.teacher else 0})")
        require(self.fd_step > 0 and 0 < self.fd_fraction <= 1,
                f"fd_step must be > 0 and fd_fraction in (0, 1], got {self.fd_step!r} and {self.fd_fraction!r}")
        require(self.method_spec.estimator != "finite-difference" or self.precision == "fp32",
                f"method {self.method!r} needs float32 (its finite differences are below bf16's rounding); "
                "use --precision fp32")
        object.__setattr__(self, "sigmas", check_sigmas(self.sigmas))
        require(self.kind != "student" or self.teacher is not None, "a student run needs a teacher config")
        require(self.precision in ("fp32", "bf16"), f"unknown precision {self.precision!r}; choose fp32 or bf16")
        for name, value in _unread_fields(self).items():  # one canonical value for what the run never reads
            object.__setattr__(self, name, value)
        if self.data is None and self.dataset == "digits":
            object.__setattr__(self, "data", data_lib.digits_fingerprint())
        require(self.data is None or (isinstance(self.data, str) and self.data.startswith(f"{self.dataset}:")),
                f"data fingerprint {self.data!r} is not one of dataset {self.dataset!r}; "
                "leave data=None and let the runner fill it in")
        require(self.teacher is None or self.teacher.data == self.data,
                "a student and its teacher must use the same data; give them the same data= (or leave both None)")

    @property
    def method_spec(self):
        """The :class:`~lakt.core.methods.Method` this run trains with, every knob applied."""
        return get_method(self.method, noise_sigma=self.noise_sigma, penalty=self.penalty,
                          jac_weight=self.jac_weight, kd_temperature=self.kd_temperature,
                          kd_alpha=self.kd_alpha, at_weight=self.at_weight,
                          fd_step=self.fd_step, fd_fraction=self.fd_fraction)

    @property
    def knobs(self) -> dict:
        """The hyper-parameters the validation split tunes, those that apply to this method (else None)."""
        m = METHODS[self.method]
        return {"jac_weight": self.jac_weight if m.jac > 0 else None,
                "noise_sigma": self.noise_sigma if m.noise_sigma > 0 else None,
                "kd_temperature": self.kd_temperature if m.kd_alpha > 0 else None,
                "kd_alpha": self.kd_alpha if m.kd_alpha > 0 else None,
                "at_weight": self.at_weight if m.at > 0 else None}

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["sigmas"] = list(self.sigmas)
        if self.teacher is not None:
            out["teacher"] = self.teacher.to_dict()  # lists, as JSON reads them back
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        if d.get("teacher") is not None:
            d["teacher"] = cls.from_dict(d["teacher"])
        d["sigmas"] = tuple(d.get("sigmas", PAPER_SIGMAS))
        return cls(**d)

    @property
    def key(self) -> str:
        """A short hash of every field: the run's folder name. ``data`` must be set (it has no
        default a key could stand for)."""
        require(self.data is not None,
                f"run {self.name} does not know its data yet; pass data_root= to lakt.runs.run/sweep/finished "
                "(or RunConfig(data=dataset.fingerprint)) so its key can include the data")
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        parts = [self.kind, self.dataset, f"{self.model}x{self.width:g}", self.method]
        if self.n_per_class is not None:
            parts.append(f"n{self.n_per_class}")
        if self.kind == "robust":
            parts.append(f"pen{self.penalty:g}")
        if self.jac_weight != 1:
            parts.append(f"gamma{self.jac_weight:g}")
        if METHODS[self.method].noise_sigma > 0:
            parts.append(f"sigma{self.noise_sigma:g}")
        if METHODS[self.method].kd_alpha > 0:
            parts.append(f"T{self.kd_temperature:g}a{self.kd_alpha:g}")
        if METHODS[self.method].at > 0:
            parts.append(f"beta{self.at_weight:g}")
        if METHODS[self.method].estimator == "finite-difference" and (self.fd_step, self.fd_fraction) != (0.01, 0.25):
            parts.append(f"h{self.fd_step:g}-frac{self.fd_fraction:g}")
        parts.append(f"s{self.seed}")
        return "/".join(parts)

    def folder(self, results: Path) -> Path:
        return Path(results) / self.kind / self.key


def _unread_fields(config: RunConfig) -> dict:
    """The fields ``config``'s kind and method never read, with their defaults."""
    m, defaults = METHODS[config.method], {f.name: f.default for f in dataclasses.fields(RunConfig)}
    unread = []
    if m.noise_sigma == 0:
        unread.append("noise_sigma")
    if m.kd_alpha == 0:
        unread += ["kd_temperature", "kd_alpha"]
    if m.at == 0:
        unread.append("at_weight")
    if m.estimator != "finite-difference":
        unread += ["fd_step", "fd_fraction"]
    if m.jac == 0 or m.estimator == "finite-difference":  # the estimator has the plain form only
        unread.append("jacobian_form")
    if m.jac == 0 and m.jacnorm == 0:
        unread.append("output")
    if m.jacnorm == 0:
        unread.append("penalty")
    if config.kind != "robust":
        unread += ["sigmas", "noise_trials"]
    return {name: defaults[name] for name in unread}
