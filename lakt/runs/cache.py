"""Running configs through the results cache.

A run's results live in ``RESULTS/<kind>/<key>/`` (:meth:`RunConfig.folder`); a sweep
started again skips every run that has finished and resumes a killed one from its
``progress.pt``:

* ``config.json``  -- the configuration (written first);
* ``metrics.json`` -- test accuracy, history, noise curve...; written last, atomically,
  so its presence means "done";
* ``model.pt``     -- weights (teachers and robustness nets; students on request);
* ``progress.pt``  -- per-epoch checkpoint while running (resume after a kill);
* ``.claim``       -- held by the process running it (two sweeps never run it twice).
"""
from __future__ import annotations

import functools
import json
import platform
import time
from pathlib import Path

import torch

from ..core import data as data_lib
from ..core.errors import LaktError, require
from ..core.methods import get_method
from ..core.models import build
from ..core.objective import Objective, TeacherCache
from ..core.robustness import noise_robustness
from ..core.train import default_device, fit, load_checkpoint, save_checkpoint
from .config import RunConfig
from ..core.files import append_line, atomic_write_json, load_tensors, read_json
from .claims import claimed, remove_temporaries

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


class TeacherMissing(LaktError):
    """A student's teacher run has not finished and training it was not asked for."""

    def __init__(self, teacher: RunConfig, results: Path):
        super().__init__(f"no finished teacher run {teacher.name} ({teacher.epochs} epochs, key {teacher.key}) "
                         f"in {results}")
        self.teacher = teacher


def run(config: RunConfig, results: Path, *, data_root=None, download: bool = False, device=None,
        progress: bool = True, wait: bool = True, poll: float = 2.0, train_teacher: bool = True) -> dict:
    """Run ``config`` unless its results exist; return its metrics.

    A student's teacher run is done first if missing, or, with ``train_teacher=False``,
    :class:`TeacherMissing` is raised before anything is written (a teacher is the
    longest run of a protocol: ``lakt student`` trains one only when asked). If
    another process is running the same config, wait for it (``wait=True``) or raise
    :class:`Busy`.
    """
    results = Path(results)
    done = load_result(config, results)
    if done is not None:
        _tidy(config.folder(results))
        return done
    ds = _dataset(config.dataset, None if data_root is None else str(data_root), download)
    if config.n_per_class is not None:  # fail before anything is written
        data_lib.per_class_subset(ds.train.y, config.n_per_class, config.seed)
    if config.teacher is not None and not train_teacher and load_result(config.teacher, results) is None:
        raise TeacherMissing(config.teacher, results)
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


def _tidy(folder: Path) -> None:
    """Remove what a process killed just after finishing a run left in its folder.

    ``metrics.json`` marks a run done, so it is written before ``progress.pt`` is
    removed and the claim released; a kill in between leaves both behind. The run
    is finished, so its checkpoint goes, and its claim too once the holder is dead
    (a live holder keeps its claim: taking it fails).
    """
    if (folder / "progress.pt").exists():  # checked first: a finished run's folder may be read-only
        (folder / "progress.pt").unlink(missing_ok=True)
    if (folder / ".claim").exists():
        with claimed(folder):
            pass


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
