"""Presets: the protocols a sweep runs (widths, run lengths, subset sizes, seeds).

``smoke`` checks every code path in seconds, ``cpu`` is the book's default on digits,
``cifar10-cpu*`` the CIFAR-10 (JPEG) sweeps at CPU scale, ``paper`` the paper's protocol.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ..core import data as data_lib
from ..core.errors import require
from ..core.methods import METHODS, PAPER_METHODS
from .config import RunConfig

SIZES = {  # examples per class of the low-data sweeps (the paper's columns; digits has ~130 per class)
    "digits": (5, 10, 50, 100),  # Table 1's columns up to 100 (1 per class, CIFAR-100's only, cost 8% of the book)
    "cifar10": (5, 10, 50, 100, 500, 1000, 5000),
    "folder": (5, 10, 50, 100, 500, 1000, 5000),
    "cifar100": (1, 5, 10, 50, 100, 500),
}
JACOBIAN_FORM = {"cifar100": "plain"}  # the supplementary: plain for CIFAR-100, normalised otherwise

# The data fingerprint (lakt.core.data.Dataset.fingerprint) of the CIFAR-10 (JPEG) copy,
# cifar10-jpeg.tar.gz extracted: a digest of its 60,000 files' class, name and bytes.
# The committed results/ were trained on it, so the cifar10-cpu presets name it and
# chapters 3 and 5 find their runs without the data.
CIFAR10_JPEG = "folder:9331aba37042b53e"


@dataclass(frozen=True)
class Preset:
    """A protocol: network widths, run lengths, subset sizes and seeds.

    Student runs last ``student_epochs`` epochs, or -- when ``student_steps`` is set --
    enough epochs for about that many optimiser steps (a 5-per-class subset is one
    batch per epoch). ``sizes``: None means the paper's columns for the dataset.
    """

    name: str
    description: str
    datasets: tuple
    width: float
    teacher_epochs: int
    student_epochs: int
    robust_epochs: int
    batch_size: int = 64
    student_steps: int | None = None
    sizes: tuple | None = None
    methods: tuple = PAPER_METHODS
    seeds: tuple = (0,)
    robust_dataset: str | None = None
    penalties: tuple = (0.0, 0.01, 0.1, 0.5, 1.0)
    robust_seeds: tuple = (0,)
    noise_trials: int = 10
    noise_sigma: float = 0.1  # sigma of the noisy-input distillation rows
    jac_weights: tuple = (1.0,)  # gamma of every method with a Jacobian term (one student per value)
    jac_weight_methods: tuple | None = None  # the methods jac_weights apply to (None: every Jacobian method)
    noise_sigmas: tuple = ()          # sigma of the noisy-input methods, one student per value (): (noise_sigma,)
    kd_temperatures: tuple = (4.0,)   # T of Hinton KD
    kd_alphas: tuple = (0.9,)         # alpha of Hinton KD
    at_weights: tuple = (1000.0,)     # beta of attention transfer
    validation: int = 0               # training images held out of every run (stratified, fixed seed)
    teacher_augment: bool = False     # crop + flip for the teacher
    robust_augment: bool = False      # crop + flip for the penalised nets (one choice for every strength)
    teacher_batch_size: int | None = None  # None: batch_size
    seed_major: bool = False          # order: teachers, then everything of seed 0, then seed 1, ...
    fd_fraction: float = 0.25         # share of each batch moved by the finite-difference (*fdjac*) methods
    teacher_options: tuple = ()       # (field, value) pairs of the teacher's RunConfig, e.g. its optimiser
    data: tuple = ()  # (dataset, fingerprint) pairs: the data its runs are defined on, if fixed
    robust_method: str = "ce+jacnorm"  # the penalised nets' method: the logit penalty or Eq 3's (ce+logjacnorm)
    parts: tuple = ()  # other presets whose runs this one is made of (in order); its own fields then unused

    def data_of(self, dataset: str) -> str | None:
        """The fingerprint this preset's runs on ``dataset`` use (None: the runner fills it in)."""
        return dict(self.data).get(dataset)

    def with_seeds(self, seeds=None) -> "Preset":
        """This preset with its training seeds (students and robust nets) replaced by ``seeds``.

        The teacher stays seed 0, so another seed list reuses the cached teacher.
        ``seeds`` may be None (unchanged), an int, a list, or text such as ``"0,1"`` /
        ``"[0, 1]"`` (what ``papermill -p seeds ...`` passes).
        """
        if seeds is None:
            return self
        if isinstance(seeds, str):
            require(re.fullmatch(r"[\s\[\]()0-9,]*", seeds) is not None,
                    f"seeds must be whole numbers such as '0,1', got {seeds!r}")
            seeds = re.findall(r"\d+", seeds)
        seeds = tuple(int(s) for s in ([seeds] if isinstance(seeds, int) else seeds))
        require(len(seeds) >= 1, "seeds must be None (the preset's) or a non-empty list, e.g. -y 'seeds: [0, 1]'")
        return dataclasses.replace(self, seeds=seeds, robust_seeds=seeds)

    def teacher(self, dataset: str) -> RunConfig:
        return RunConfig("teacher", dataset, "vgg9", self.width, "ce", None, 0, self.teacher_epochs,
                         self.teacher_batch_size or self.batch_size, save_model=True,
                         augment=self.teacher_augment, validation=self.validation,
                         data=self.data_of(dataset), **dict(self.teacher_options))

    def grid(self, method: str) -> list[dict]:
        """The hyper-parameter values one student per (size, seed) is trained at, for ``method``.

        gamma for Jacobian methods (those in ``jac_weight_methods``), sigma for noisy-input
        methods, T x alpha for KD, beta for attention transfer; every other knob stays at
        its default, so it does not enter the run's key.
        """
        m = METHODS[method]
        if m.jac > 0 and (self.jac_weight_methods is None or method in self.jac_weight_methods):
            return [{"jac_weight": g} for g in self.jac_weights]
        if m.noise_sigma > 0:
            return [{"noise_sigma": s} for s in (self.noise_sigmas or (self.noise_sigma,))]
        if m.kd_alpha > 0:
            return [{"kd_temperature": t, "kd_alpha": a} for t in self.kd_temperatures for a in self.kd_alphas]
        if m.at > 0:
            return [{"at_weight": b} for b in self.at_weights]
        return [{}]

    def student_epochs_for(self, dataset: str, n_per_class: int, classes: int) -> int:
        from ..core.train import epochs_for_steps
        if self.student_steps is None:
            return self.student_epochs
        return epochs_for_steps(n_per_class * classes, self.batch_size, self.student_steps, self.student_epochs)

    def _of_parts(self, kind: str, dataset: str | None) -> list[RunConfig]:
        """The ``kind`` runs (``transfer`` or ``robustness``) of every part, each once, at this preset's seeds."""
        seeds = self.seeds if kind == "transfer" else self.robust_seeds
        every = dict.fromkeys(r for part in self.parts for r in getattr(get_preset(part), kind)(dataset))
        return [r for r in every if r.kind == "teacher" or r.seed in seeds]

    def transfer(self, dataset: str | None = None) -> list[RunConfig]:
        """The teacher and every student run of Table 1 (or 2) for ``dataset``."""
        if self.parts:
            return self._of_parts("transfer", dataset)
        dataset = dataset or self.datasets[0]
        teacher = self.teacher(dataset)
        classes = 100 if dataset == "cifar100" else 10
        sizes = self.sizes or SIZES[dataset]
        students = [RunConfig("student", dataset, "vgg4", self.width, m, n, s,
                              self.student_epochs_for(dataset, n, classes), self.batch_size,
                              jacobian_form=JACOBIAN_FORM.get(dataset, "normalized"), teacher=teacher,
                              **{"noise_sigma": self.noise_sigma, **knobs}, validation=self.validation,
                              data=self.data_of(dataset), fd_fraction=self.fd_fraction)
                    for n in sizes for m in self.methods for knobs in self.grid(m) for s in self.seeds]
        if self.seed_major:  # stable: within a seed, the size-method order above
            students.sort(key=lambda c: self.seeds.index(c.seed))
        return [teacher, *students]

    def robustness(self, dataset: str | None = None) -> list[RunConfig]:
        """The VGG-9 runs of Table 3: one per penalty strength and seed.

        Seed-major, so a sweep stopped half-way has whole noise curves for the first seed.
        """
        if self.parts:
            return self._of_parts("robustness", dataset)
        dataset = dataset or self.robust_dataset or self.datasets[0]
        return [RunConfig("robust", dataset, "vgg9", self.width, self.robust_method, None, s, self.robust_epochs,
                          self.batch_size, penalty=p, noise_trials=self.noise_trials, save_model=True,
                          augment=self.robust_augment, validation=self.validation, data=self.data_of(dataset))
                for s in self.robust_seeds for p in self.penalties]

    def runs(self, dataset: str | None = None) -> list[RunConfig]:
        """Every run of the preset (teachers first), for one dataset or the preset's own.

        ``seed_major``: after the teachers, every run of the first seed (students, then
        penalised nets), then the next seed's -- a sweep stopped part-way has whole tables
        for its first seeds. A preset made of ``parts``: their runs in order, each once.
        """
        if self.parts:
            return list(dict.fromkeys(r for part in self.parts for r in get_preset(part).runs(dataset)))
        transfer = self.transfer(dataset) if dataset is not None else [
            r for d in self.datasets for r in self.transfer(d)]
        robust = self.robustness(dataset)
        if not self.seed_major:
            return transfer + robust
        teachers = [r for r in transfer if r.kind == "teacher"]
        rest = [r for r in transfer if r.kind != "teacher"] + robust
        seeds = sorted({r.seed for r in rest})
        return teachers + sorted(rest, key=lambda r: seeds.index(r.seed))


PRESETS = {
    "smoke": Preset("smoke", "seconds: every code path once, on digits at width 1/8", ("digits",),
                    width=0.125, teacher_epochs=2, student_epochs=3, robust_epochs=2, batch_size=32,
                    sizes=(5,), penalties=(0.0, 0.1), noise_trials=2),
    "cpu": Preset("cpu", "minutes on 2 CPU cores: Tables 1 and 3 in miniature on digits, width 1/4, 3 seeds",
                  ("digits",), width=0.25, teacher_epochs=15, student_epochs=5, robust_epochs=8,
                  student_steps=85, seeds=(0, 1, 2), robust_seeds=(0, 1), noise_trials=5),
    "paper": Preset("paper", "the paper's protocol on CIFAR-10/100: full width, 500 epochs (a GPU job)",
                    ("cifar10", "cifar100"), width=1.0, teacher_epochs=500, student_epochs=500,
                    robust_epochs=500, batch_size=128, robust_dataset="cifar100"),
}


# The paper's Table 1 protocol at full width on one GPU, in minutes:
# a full-width VGG-9 teacher with crop + flip on all 50,000 training images (no tuning, so
# no validation split), batch 128, PAPER_GPU_TEACHER_EPOCHS epochs; full-width VGG-4 students
# at 5-100 per class for 500 epochs, the six methods, seed 0. benchmarks/paper_gpu.sh runs
# it with several runs sharing the GPU (lakt sweep --executor local --workers N).
PAPER_GPU_TEACHER_EPOCHS = 50
PRESETS["paper-gpu"] = Preset(
    "paper-gpu", "paper scale on one GPU: full-width augmented VGG-9 teacher, VGG-4 students at 5-100 "
                 "per class, 500 epochs, the six methods, seed 0 (benchmarks/paper_gpu.sh)",
    ("folder",), width=1.0, teacher_epochs=PAPER_GPU_TEACHER_EPOCHS, student_epochs=500, robust_epochs=1,
    batch_size=128, sizes=(5, 10, 50, 100), penalties=(), robust_seeds=(), teacher_augment=True,
    data=(("folder", CIFAR10_JPEG),))

# The same command path in seconds on a CPU (tests/runs/test_experiments.py runs paper_gpu.sh with it).
PRESETS["gpu-smoke"] = dataclasses.replace(
    PRESETS["paper-gpu"], name="gpu-smoke", description="seconds: paper-gpu's command path on digits, width 1/16",
    datasets=("digits",), width=0.0625, teacher_epochs=1, student_epochs=1, batch_size=32, sizes=(2,),
    methods=("ce", "act+jac"))


def with_speed(config: RunConfig, precision: str = "fp32", channels_last: bool = False) -> RunConfig:
    """The same run (and its teacher) with the GPU speed options set."""
    teacher = with_speed(config.teacher, precision, channels_last) if config.teacher is not None else None
    return dataclasses.replace(config, precision=precision, channels_last=channels_last, teacher=teacher)


def get_preset(name: str) -> Preset:
    require(name in PRESETS, f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def preset(name: str, dataset: str | None = None) -> list[RunConfig]:
    """All runs of preset ``name`` (optionally re-targeted at another dataset)."""
    if dataset is not None:
        require(dataset in data_lib.DATASETS,
                f"unknown dataset {dataset!r}; choose one of {', '.join(data_lib.DATASETS)}")
    return get_preset(name).runs(dataset)



# CIFAR-10 (JPEG) at CPU scale. 5,000 stratified training images are held out of every
# run and every tuned knob is chosen on them (lakt.analysis). The teacher: VGG-9 x1/4, crop +
# flip on the other 45,000, batch 128, SGD (Nesterov 0.9, lr 0.05 cosine to 0, weight decay
# 5e-4), 150 epochs -- the best of four recipes on validation (the teacher-only presets
# below). Students: VGG-4 x1/4, un-augmented, the same 600-step budget for every method
# (a proxy for the paper's 500 epochs), per-size subsets nested inside the 45,000. Penalised
# VGG-9s (Table 3): augmented at every strength, 15 epochs, 2 seeds.
# Order: teacher, then all of seed 0 (students, then penalised nets), then seeds 1, 2.
_SGD150 = (("optimizer", "sgd"), ("lr", 0.05), ("final_lr", 0.0), ("weight_decay", 5e-4))
PRESETS["cifar10-cpu-v3"] = Preset(
    "cifar10-cpu-v3", "CIFAR-10 (JPEG), width 1/4, 5,000 validation images, SGD teacher (150 epochs), "
                      "600-step students with tuned gamma/sigma/KD/AT grids, 3 seeds (hours: run it in parts)",
    ("folder",), width=0.25, teacher_epochs=150, student_epochs=8, robust_epochs=15, batch_size=64,
    student_steps=600, sizes=(5, 10, 50, 100, 500), methods=PAPER_METHODS + ("noisy-act", "kd", "at+ce"),
    seeds=(0, 1, 2), robust_seeds=(0, 1), noise_trials=10, noise_sigma=0.1,
    jac_weights=(1.0, 10.0, 100.0, 1000.0), jac_weight_methods=("act+jac", "act+jac+ce"),
    noise_sigmas=(0.03, 0.1, 0.3), kd_temperatures=(1.0, 4.0, 8.0), kd_alphas=(0.5, 0.9),
    at_weights=(50.0, 500.0, 5000.0), validation=5000, teacher_augment=True, robust_augment=True,
    teacher_batch_size=128, seed_major=True, teacher_options=_SGD150, data=(("folder", CIFAR10_JPEG),))

# The teacher recipes the SGD one was chosen from on validation (teacher runs only):
# the paper's Adam for 50 or 120 epochs, and the SGD recipe for 50.
TEACHER_RECIPES = {
    "adam50": {"teacher_epochs": 50, "teacher_options": ()},
    "adam120": {"teacher_epochs": 120, "teacher_options": ()},
    "sgd50": {"teacher_epochs": 50},
}
PRESETS.update({
    f"cifar10-cpu-teacher-{recipe}": dataclasses.replace(
        PRESETS["cifar10-cpu-v3"], name=f"cifar10-cpu-teacher-{recipe}", methods=(), robust_seeds=(),
        description=f"cifar10-cpu-v3's teacher trained with recipe {recipe} instead (the teacher only)", **changes)
    for recipe, changes in TEACHER_RECIPES.items()})

# Prop 1 as a cheap estimator: Act + the full-Jacobian term by finite differences (h = 0.01,
# an eighth of each batch moved: within 1.3x a CE step in benchmarks/step_cost.py), on v3's
# teacher, subsets, seeds and budget, so each run pairs by seed with v3's Act and Act+Jac.
# Its term is the *plain* squared error summed over all ten rows, not Act+Jac's normalised
# single row in [0, 4], so gamma gets its own grid, chosen on validation; it brackets the
# term's size (the teacher's ||J_T||_F^2 is about 270 on training images, the activation
# term starts near 415).
PRESETS["cifar10-cpu-v3-fdjac"] = dataclasses.replace(
    PRESETS["cifar10-cpu-v3"], name="cifar10-cpu-v3-fdjac",
    description="Act + finite-difference Jacobian matching on cifar10-cpu-v3's teacher, "
                "gamma on a grid chosen on validation, 5-100 per class, 3 seeds",
    sizes=(5, 10, 50, 100), methods=("act+fdjac",), jac_weight_methods=("act+fdjac",),
    jac_weights=(0.1, 1.0, 10.0, 100.0), penalties=(), robust_seeds=(), fd_fraction=0.125)

# v4: the answers under the paper's own budget and conventions, added to v3's runs (v3's
# teacher; nothing of v3 retrained). Its parts, in the order they run:
# - main: the comparisons of (a), (b), (d) at 5-100 per class for 500 epochs at every size,
#   as the paper trains (500, 1,000, 4,000, 8,000 steps of 64; the drop at 80%), seeds 0-2:
#   the six methods, Act+Jac(+CE) at gamma 100 and 1000, KD, AT+CE and noisy-input distillation at
#   the values chosen on validation at v3's 600-step proxy -- AT's beta at both 500 (v3's grid's
#   choice) and 250 (the choice once the grid gained its edges), chosen between at 500 epochs,
#   as gamma is among 1, 100 (v3's choice) and 1000 (added when gamma's neighbours were checked
#   at 100 per class, and trained at every size so that its choice pools 5-100 like the others);
# - table3: the logit penalty at lambda 1e-5..1e-3 (beside v3's 0.01..1) and Eq 3's
#   log-softmax penalty at the paper's 0.01..1 and a decade below (its 0.01 already costs more than
#   2 clean points), 2 seeds, v3's Table 3 protocol;
# - readings: Act+Jac(+CE) at the gammas that the paper's unstated reductions amount to and v3's
#   grid {1, 10, 100, 1000} lacks (READING_GAMMAS; lakt.core.losses' table), at v3's protocol;
# - rung: 2,400 steps at 100 per class (CE, Act, Act+Jac at gamma 1 and 100, KD), for
#   accuracy against steps (600 from v3, 2,400, 8,000 from main);
# - grids: the grid edges at v3's proxy -- AT beta 250, 1000, 2000 (500 is v3's), sigma 0.01,
#   FDJac gamma 0.01 -- and gamma's lower neighbour 10 at 100 per class, 500 epochs (its upper, 1000,
#   is main's).
_V3 = PRESETS["cifar10-cpu-v3"]
READING_GAMMAS = (3e-4, 3e-3)   # Jac as a mean over D = 3,072 (1/D), and both terms as means (k/D)
_V4_MAIN = ("ce", "act+ce", "jac+ce", "act+jac+ce", "act", "act+jac", "noisy-act", "kd", "at+ce")
PRESETS["cifar10-cpu-v4-main"] = dataclasses.replace(
    _V3, name="cifar10-cpu-v4-main", description="v4 main table: v3's comparisons for 500 epochs at 5-100 per class",
    student_steps=None, student_epochs=500, sizes=(5, 10, 50, 100), methods=_V4_MAIN,
    jac_weights=(1.0, 100.0, 1000.0), noise_sigmas=(0.03,), kd_temperatures=(4.0,), kd_alphas=(0.5,),
    at_weights=(250.0, 500.0), penalties=(), robust_seeds=())
PRESETS["cifar10-cpu-v4-table3"] = dataclasses.replace(
    _V3, name="cifar10-cpu-v4-table3", description="v4 Table 3: the logit penalty at 1e-5..1e-3",
    methods=(), penalties=(1e-5, 1e-4, 1e-3))
PRESETS["cifar10-cpu-v4-table3-eq3"] = dataclasses.replace(
    _V3, name="cifar10-cpu-v4-table3-eq3", description="v4 Table 3: Eq 3's log-softmax penalty at the paper's strengths and 1e-3",
    methods=(), penalties=(0.001, 0.01, 0.1, 0.5, 1.0), robust_method="ce+logjacnorm")
PRESETS["cifar10-cpu-v4-readings"] = dataclasses.replace(
    _V3, name="cifar10-cpu-v4-readings", description="v4: the paper's unstated reductions as gamma, on v3's grid",
    sizes=(5, 10, 50, 100), methods=("act+jac", "act+jac+ce"), jac_weights=READING_GAMMAS, penalties=(),
    robust_seeds=())
PRESETS["cifar10-cpu-v4-rung"] = dataclasses.replace(
    _V3, name="cifar10-cpu-v4-rung", description="v4: 2,400 steps at 100 per class",
    student_steps=2400, sizes=(100,), methods=("ce", "act", "act+jac", "kd"), jac_weights=(1.0, 100.0),
    jac_weight_methods=("act+jac",), kd_temperatures=(4.0,), kd_alphas=(0.5,), penalties=(), robust_seeds=())
PRESETS["cifar10-cpu-v4-edges"] = dataclasses.replace(
    _V3, name="cifar10-cpu-v4-edges", description="v4: the grids' lower edges at v3's 600-step proxy",
    sizes=(5, 10, 50, 100), methods=("noisy-act", "at+ce"), noise_sigmas=(0.01,),
    at_weights=(250.0, 1000.0, 2000.0), penalties=(), robust_seeds=())
PRESETS["cifar10-cpu-v4-fdjac-edge"] = dataclasses.replace(
    PRESETS["cifar10-cpu-v3-fdjac"], name="cifar10-cpu-v4-fdjac-edge", description="v4: FDJac gamma 0.01",
    jac_weights=(0.01,))
PRESETS["cifar10-cpu-v4-neighbours"] = dataclasses.replace(
    PRESETS["cifar10-cpu-v4-main"], name="cifar10-cpu-v4-neighbours",
    description="v4: gamma 10 at 100 per class, 500 epochs (1000 is main's)", sizes=(100,),
    methods=("act+jac", "act+jac+ce"), jac_weights=(10.0,))
_V4_PARTS = ("cifar10-cpu-v4-main", "cifar10-cpu-v4-table3", "cifar10-cpu-v4-table3-eq3", "cifar10-cpu-v4-readings",
             "cifar10-cpu-v4-rung",
             "cifar10-cpu-v4-edges", "cifar10-cpu-v4-fdjac-edge", "cifar10-cpu-v4-neighbours")
PRESETS["cifar10-cpu-v4"] = dataclasses.replace(
    _V3, name="cifar10-cpu-v4", parts=_V4_PARTS,
    description="v3's questions at the paper's 500-epoch budget and conventions (parts: "
                + ", ".join(p.removeprefix("cifar10-cpu-v4-") for p in _V4_PARTS) + "; hours: run it in parts)")

# Table 3 on CIFAR-10 (JPEG) as chapter 5 shows it: v3's penalised nets (the unpenalised ones, and
# the logit penalty at 0.01..1) beside v4's (the logit penalty at 1e-5..1e-3, Eq 3's at 1e-3..1) --
# one protocol, so every net pairs by seed with the same unpenalised one. Nothing here is new to run.
PRESETS["cifar10-cpu-v3-table3"] = dataclasses.replace(
    _V3, name="cifar10-cpu-v3-table3", description="cifar10-cpu-v3's penalised nets only", methods=())
PRESETS["cifar10-cpu-table3"] = dataclasses.replace(
    _V3, name="cifar10-cpu-table3", methods=(),
    parts=("cifar10-cpu-v3-table3", "cifar10-cpu-v4-table3", "cifar10-cpu-v4-table3-eq3"),
    description="Table 3 on CIFAR-10 (JPEG): both penalty forms, v3's and v4's strengths, 2 seeds (v3 + v4's table3 parts)")

# The knobs' grids with v4's lower edges added, at v3's 600-step proxy (where the knobs are chosen):
# what chapters 3 and 8 choose on and flag when a choice still sits on an edge. Nothing new to run.
PRESETS["cifar10-cpu-v3-edges"] = dataclasses.replace(
    _V3, name="cifar10-cpu-v3-edges", parts=("cifar10-cpu-v3", "cifar10-cpu-v4-edges"),
    description="cifar10-cpu-v3's students with the grids' lower edges (sigma 0.01; AT beta 250, 1000, 2000) added")
PRESETS["cifar10-cpu-fdjac"] = dataclasses.replace(
    PRESETS["cifar10-cpu-v3-fdjac"], name="cifar10-cpu-fdjac", parts=("cifar10-cpu-v3-fdjac", "cifar10-cpu-v4-fdjac-edge"),
    description="Act + finite-difference Jacobian matching, gamma 0.01-100 (cifar10-cpu-v3-fdjac and v4's edge)")
PRESETS["cifar10-cpu-v4-gamma"] = dataclasses.replace(
    PRESETS["cifar10-cpu-v4-main"], name="cifar10-cpu-v4-gamma", parts=("cifar10-cpu-v4-main", "cifar10-cpu-v4-neighbours"),
    description="v4's students with gamma's neighbours 10 (at 100 per class) and 1000 (gamma re-checked on validation)")
