"""Runs, presets and the results cache.

A run is one frozen :class:`RunConfig`. Its results live in
``RESULTS/<kind>/<key>/`` where ``key`` hashes the configuration, so a sweep that is
started again skips every run that has finished:

* ``config.json``  -- the configuration (written first);
* ``metrics.json`` -- test accuracy, history, noise curve...; written last, atomically,
  so its presence means "done";
* ``model.pt``     -- weights (teachers and robustness nets; students on request);
* ``progress.pt``  -- per-epoch checkpoint while running (resume after a kill);
* ``.claim``       -- held by the process running it (two sweeps never run it twice).

Kinds: ``teacher`` (VGG-9, CE, whole training set), ``student`` (VGG-4 on a per-class
subset with a method, distilled from its teacher run) and ``robust`` (VGG-9 with the
Jacobian-norm penalty, then accuracy under input noise: Table 3).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import data as data_lib
from .errors import require
from .methods import METHODS, PAPER_METHODS, Objective, TeacherCache, get_method
from .models import build
from .robustness import PAPER_SIGMAS, check_sigmas, noise_robustness
from .storage import append_line, atomic_write_json, claimed, load_tensors, read_json, remove_temporaries
from .train import default_device, evaluate, fit, load_checkpoint, save_checkpoint

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
    jacobian_form: str = "plain"    # "normalized" is the paper's CIFAR-10 form
    output: str = "label"           # which Jacobian row to match: "label" or "top"
    noise_sigma: float = 0.1        # for the noisy-input methods
    penalty: float = 0.0            # Jacobian-norm strength (robust runs)
    jac_weight: float = 1.0         # gamma, the Match-Jacobians weight (the paper's is 1)
    sigmas: tuple = PAPER_SIGMAS    # noise levels evaluated (robust runs)
    noise_trials: int = 10
    teacher: "RunConfig | None" = None
    save_model: bool = False
    precision: str = "fp32"         # "bf16": autocast the networks' passes (GPU speed option)
    channels_last: bool = False     # NHWC memory layout (GPU speed option)

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
        get_method(self.method, jac_weight=self.jac_weight)  # > 0, and only where there is a Jacobian term
        object.__setattr__(self, "sigmas", check_sigmas(self.sigmas))
        require(self.kind != "student" or self.teacher is not None, "a student run needs a teacher config")
        require(self.precision in ("fp32", "bf16"), f"unknown precision {self.precision!r}; choose fp32 or bf16")

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
        """A short hash of the configuration: the run's folder name.

        Fields added after results were first published (``_LATER_FIELDS``) count only
        when they differ from their default, so older run caches stay valid.
        """
        blob = json.dumps(_key_dict(self.to_dict()), sort_keys=True, separators=(",", ":"))
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
        parts.append(f"s{self.seed}")
        return "/".join(parts)

    def folder(self, results: Path) -> Path:
        return Path(results) / self.kind / self.key


_LATER_FIELDS = {"precision": "fp32", "channels_last": False, "jac_weight": 1.0}


def _key_dict(d: dict) -> dict:
    d = {k: v for k, v in d.items() if not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])}
    if d.get("teacher") is not None:
        d["teacher"] = _key_dict(d["teacher"])
    return d


# ---------------------------------------------------------------- presets

SIZES = {  # examples per class of the low-data sweeps (the paper's columns; digits has ~130 per class)
    "digits": (1, 5, 10, 50, 100),
    "cifar10": (5, 10, 50, 100, 500, 1000, 5000),
    "folder": (5, 10, 50, 100, 500, 1000, 5000),
    "cifar100": (1, 5, 10, 50, 100, 500),
}
JACOBIAN_FORM = {"cifar100": "plain"}  # the supplementary: plain for CIFAR-100, normalised otherwise


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
                         self.batch_size, save_model=True)

    def student_epochs_for(self, dataset: str, n_per_class: int, classes: int) -> int:
        from .train import epochs_for_steps
        if self.student_steps is None:
            return self.student_epochs
        return epochs_for_steps(n_per_class * classes, self.batch_size, self.student_steps, self.student_epochs)

    def transfer(self, dataset: str | None = None) -> list[RunConfig]:
        """The teacher and every student run of Table 1 (or 2) for ``dataset``."""
        dataset = dataset or self.datasets[0]
        teacher = self.teacher(dataset)
        classes = 100 if dataset == "cifar100" else 10
        sizes = self.sizes or SIZES[dataset]
        students = [RunConfig("student", dataset, "vgg4", self.width, m, n, s,
                              self.student_epochs_for(dataset, n, classes), self.batch_size,
                              jacobian_form=JACOBIAN_FORM.get(dataset, "normalized"), teacher=teacher,
                              noise_sigma=self.noise_sigma, jac_weight=g)
                    for n in sizes for m in self.methods
                    for g in (self.jac_weights if METHODS[m].jac > 0 else (1.0,)) for s in self.seeds]
        return [teacher, *students]

    def robustness(self, dataset: str | None = None) -> list[RunConfig]:
        """The VGG-9 runs of Table 3: one per penalty strength and seed.

        Seed-major, so a sweep stopped half-way has whole noise curves for the first seed.
        """
        dataset = dataset or self.robust_dataset or self.datasets[0]
        return [RunConfig("robust", dataset, "vgg9", self.width, "ce+jacnorm", None, s, self.robust_epochs,
                          self.batch_size, penalty=p, noise_trials=self.noise_trials, save_model=True)
                for s in self.robust_seeds for p in self.penalties]

    def runs(self, dataset: str | None = None) -> list[RunConfig]:
        """Every run of the preset (teachers first), for one dataset or the preset's own."""
        if dataset is not None:
            return self.transfer(dataset) + self.robustness(dataset)
        runs = [r for d in self.datasets for r in self.transfer(d)]
        return runs + self.robustness()


PRESETS = {
    "smoke": Preset("smoke", "seconds: every code path once, on digits at width 1/8", ("digits",),
                    width=0.125, teacher_epochs=2, student_epochs=3, robust_epochs=2, batch_size=32,
                    sizes=(5,), penalties=(0.0, 0.1), noise_trials=2),
    "cpu": Preset("cpu", "minutes on 2 CPU cores: Tables 1 and 3 in miniature on digits, width 1/4, 3 seeds",
                  ("digits",), width=0.25, teacher_epochs=15, student_epochs=5, robust_epochs=10,
                  student_steps=100, seeds=(0, 1, 2), robust_seeds=(0, 1), noise_trials=5),
    # Issue #4, sized from benchmarks/results/step_cost_cpu.csv (2 cores): teacher ~15 min
    # (30 epochs x ~31 s), 120 students ~70 min (600 steps each), 10 penalised VGG-9s ~3.4 h
    # (15 epochs x ~80 s) -- about 5 of the 6 budgeted hours. Run it in parts; the cache resumes.
    "cifar10-cpu": Preset("cifar10-cpu", "CIFAR-10 (JPEG) at CPU scale: width 1/4, 3 seeds, about 5 h on 2 cores",
                          ("folder",), width=0.25, teacher_epochs=30, student_epochs=8, robust_epochs=15,
                          student_steps=600, sizes=(5, 10, 50, 100, 500),
                          methods=PAPER_METHODS + ("noisy-act", "act+fulljac"), seeds=(0, 1, 2),
                          robust_seeds=(0, 1), noise_trials=10, noise_sigma=0.3),
    "paper": Preset("paper", "the paper's protocol on CIFAR-10/100: full width, 500 epochs (a GPU job)",
                    ("cifar10", "cifar100"), width=1.0, teacher_epochs=500, student_epochs=500,
                    robust_epochs=500, batch_size=128, robust_dataset="cifar100"),
}


# Follow-up to cifar10-cpu's answer (b): there Act+Jac trains as Act, because with all
# constants 1 the summed squared logit error (hundreds) swamps the normalised Jacobian term
# (at most 4). Does Act+Jac beat Act once gamma gives the Jacobian term weight? Derived from
# cifar10-cpu, so teacher, subsets, seeds and budget are the same and its Act and gamma = 1
# rows are cifar10-cpu's own runs (same cache keys); 36 new students, ~16 min on 2 cores.
PRESETS["cifar10-cpu-gamma"] = dataclasses.replace(
    PRESETS["cifar10-cpu"], name="cifar10-cpu-gamma",
    description="follow-up to cifar10-cpu: Act against Act+Jac with gamma 1, 10, 100, 1000, "
                "at 5-100 per class, about 20 min on 2 cores",
    sizes=(5, 10, 50, 100), methods=("act", "act+jac"), jac_weights=(1.0, 10.0, 100.0, 1000.0),
    penalties=(), robust_seeds=())


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


# ---------------------------------------------------------------- running

@functools.lru_cache(maxsize=4)
def _dataset(name: str, root: str | None, download: bool) -> data_lib.Dataset:
    return data_lib.load(name, root, download)


def load_result(config: RunConfig, results: Path) -> dict | None:
    """The finished run's metrics, or None if it has not finished or left a corrupt file.

    A run whose weights other runs or the user need (teachers, students saved on
    request) counts as finished only if ``model.pt`` loads too. A robustness run's
    result is its noise curve in ``metrics.json``; its weights are kept for
    re-evaluation but not required, so a results folder committed without them
    (``results/``) still reads as finished.
    """
    folder = config.folder(results)
    metrics = read_json(folder / "metrics.json")
    if metrics is None or metrics.get("key") != config.key:
        return None
    if _needs_model(config) and load_tensors(folder / "model.pt") is None:
        return None
    return metrics


def _keeps_model(config: RunConfig) -> bool:
    return config.save_model or config.kind in ("teacher", "robust")


def _needs_model(config: RunConfig) -> bool:
    return _keeps_model(config) and config.kind != "robust"


def load_model(config: RunConfig, results: Path, num_classes: int, in_channels: int, device=None):
    """The trained network of a finished run (teachers and robustness nets keep theirs)."""
    model = build(config.model, num_classes, width=config.width, in_channels=in_channels)
    load_checkpoint(model, config.folder(results) / "model.pt")
    return model.to(device or default_device()).eval()


class Busy(Exception):
    """Another process holds this run's claim."""


def run(config: RunConfig, results: Path, *, data_root=None, download: bool = False, device=None,
        progress: bool = True, wait: bool = True, poll: float = 2.0) -> dict:
    """Run ``config`` unless its results exist; return its metrics.

    A student's teacher run is done first if missing. If another process is running
    the same config, wait for it (``wait=True``) or raise :class:`Busy`.
    """
    results = Path(results)
    done = load_result(config, results)
    if done is not None:
        return done
    ds = _dataset(config.dataset, None if data_root is None else str(data_root), download)
    if config.n_per_class is not None:  # fail before anything is written
        data_lib.per_class_subset(ds.train.y, config.n_per_class, config.seed)
    folder = config.folder(results)
    while True:
        with claimed(folder) as claim:
            if claim is not None:
                done = load_result(config, results)  # finished while we waited for the claim
                return done if done is not None else _execute(config, results, folder, claim, ds, data_root,
                                                              download, device, progress)
        if not wait:
            raise Busy(config.name)
        time.sleep(poll)
        done = load_result(config, results)
        if done is not None:
            return done


def _execute(config, results, folder, claim, ds, data_root, download, device, progress) -> dict:
    device = torch.device(device) if device is not None else default_device()
    remove_temporaries(folder)
    atomic_write_json(config.to_dict(), folder / "config.json")
    resumed = (folder / "progress.pt").exists()
    _log(results, "resume" if resumed else "start", config)
    began = time.perf_counter()
    train = ds.train
    if config.n_per_class is not None:
        train = train.subset(data_lib.per_class_subset(train.y, config.n_per_class, config.seed))
    teacher = teacher_acc = None
    if config.kind == "student":
        teacher_metrics = run(config.teacher, results, data_root=data_root, download=download,
                              device=device, progress=progress)
        teacher_acc = teacher_metrics["test_acc"]
        teacher = load_model(config.teacher, results, ds.num_classes, ds.in_channels, device)
    torch.manual_seed(config.seed)
    model = build(config.model, ds.num_classes, width=config.width, in_channels=ds.in_channels).to(device)
    method = get_method(config.method, noise_sigma=config.noise_sigma, penalty=config.penalty,
                        jac_weight=config.jac_weight)
    cache = None
    if teacher is not None and method.teacher_targets_cacheable:
        cache = TeacherCache.build(teacher, train.x.to(device), train.y.to(device), config.output)
    objective = Objective(method, teacher, jacobian_form=config.jacobian_form, output=config.output, cache=cache,
                          precision=config.precision)
    history = fit(model, train, objective, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                  final_lr=config.final_lr, seed=config.seed, device=device, test=ds.test, progress=progress,
                  checkpoint=folder / "progress.pt", describe={"name": config.name, **config.to_dict()},
                  on_epoch=lambda row: claim.heartbeat(), channels_last=config.channels_last)
    metrics = {"key": config.key, "name": config.name, "config": config.to_dict(),
               "test_acc": history[-1]["test_acc"], "train_size": len(train), "history": history,
               "seconds": time.perf_counter() - began, "device": _device_name(device),
               "torch": torch.__version__, "dataset_name": ds.name, "teacher_acc": teacher_acc}
    if config.kind == "robust":
        curve = noise_robustness(model, ds.test, config.sigmas, config.noise_trials, seed=config.seed)
        metrics["noise"] = curve.to_dict(orient="records")
    if _keeps_model(config):
        save_checkpoint(model, folder / "model.pt", config=json.dumps(config.to_dict()))
    atomic_write_json(metrics, folder / "metrics.json")
    (folder / "progress.pt").unlink(missing_ok=True)
    _log(results, "finish", config)
    return metrics


def _log(results: Path, event: str, config: RunConfig) -> None:
    """One line per run event in RESULTS/runs.log: an audit trail of who ran what, when."""
    import os
    import socket
    append_line(Path(results) / "runs.log", f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {socket.gethostname()} "
                                             f"{os.getpid()} {event} {config.key} {config.name}")


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def parse_shard(text: str | None) -> tuple[int, int]:
    """'I/N' -> (I, N), 1-based; None -> (1, 1)."""
    if text is None:
        return 1, 1
    try:
        i, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        i = n = 0
    require(n >= 1 and 1 <= i <= n, f"--shard must look like I/N with 1 <= I <= N, got {text!r}; e.g. --shard 1/2")
    return i, n


def sweep(configs: list[RunConfig], results: Path, *, shard: str | None = None, data_root=None,
          download: bool = False, device=None, progress: bool = True) -> list[dict]:
    """Run every N-th config starting at I (``shard='I/N'``), skipping finished ones.

    Runs claimed by another process are deferred and waited for at the end, so N
    processes sharing ``results`` split the work and never run a config twice at once.
    """
    i, n = parse_shard(shard)
    mine = configs[i - 1::n]
    finished, deferred = [], []
    for config in mine:
        try:
            finished.append(run(config, results, data_root=data_root, download=download, device=device,
                                progress=progress, wait=False))
        except Busy:
            deferred.append(config)
    for config in deferred:
        finished.append(run(config, results, data_root=data_root, download=download, device=device,
                            progress=progress, wait=True))
    return finished


def finished(configs: list[RunConfig], results: Path) -> list[tuple[RunConfig, dict]]:
    """The runs among ``configs`` already finished in ``results``, with their metrics.

    Reads only: nothing is trained, so a chapter can show a committed results
    folder (``results/``) without the data or the hours that made it.
    """
    return [(c, m) for c in configs if (m := load_result(c, Path(results))) is not None]


def collect(configs: list[RunConfig], results: Path):
    """A DataFrame of the finished runs among ``configs`` (one row per run)."""
    import pandas as pd

    rows = []
    for c, m in finished(configs, results):
        row = {"kind": c.kind, "dataset": c.dataset, "model": c.model, "width": c.width, "method": c.method,
               "n_per_class": c.n_per_class, "seed": c.seed, "epochs": c.epochs, "penalty": c.penalty,
               "test_acc": m["test_acc"], "seconds": m["seconds"], "device": m["device"], "key": c.key}
        rows.append(row)
    return pd.DataFrame(rows)
