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


def run(config: RunConfig, results: Path, *, data_root=None, download: bool = False, device=None,
        progress: bool = True, wait: bool = True, poll: float = 2.0, train_teacher: bool = True) -> dict:
    """Run ``config`` unless its results exist; return its metrics.

    A student's teacher run is done first if missing -- or, with ``train_teacher=False``
    (executor tasks, whose teacher was a task of its own), the student fails instead, so
    a teacher that failed is never trained a second time. If another process is running
    the same config, wait for it (``wait=True``) or raise :class:`Busy`. A run that
    raises leaves a ``fail`` line with the reason in ``runs.log`` (``lakt status``).
    """
    results = Path(results)
    done = load_result(config, results)
    if done is not None:
        return done
    try:
        return _run(config, results, data_root, download, device, progress, wait, poll, train_teacher)
    except Busy:
        raise
    except Exception as err:  # recorded for `lakt status`, then raised as before
        _log(results, "fail", config, f"{type(err).__name__}: {err}")
        raise


def _run(config, results, data_root, download, device, progress, wait, poll, train_teacher) -> dict:
    if config.kind == "student" and not train_teacher and load_result(config.teacher, results) is None:
        raise LaktError(f"its teacher {config.teacher.name} ({config.teacher.key}) has not finished; "
                        f"see lakt status --results {results}")
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


def _log(results: Path, event: str, config: RunConfig, reason: str = "") -> None:
    """One line per run event in RESULTS/runs.log: an audit trail of who ran what, when.

    ``time host pid event key name [reason]``; events are start, resume, finish, fail
    (with a one-line reason) and requeue (an executor task stopped by a time limit or
    preemption, to resume later).
    """
    import os
    import socket
    reason = " ".join(str(reason).split())[:300]
    append_line(Path(results) / "runs.log", f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {socket.gethostname()} "
                                             f"{os.getpid()} {event} {config.key} {config.name}"
                                             + (f" {reason}" if reason else ""))


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def sweep(configs: list[RunConfig], results: Path, *, data_root=None, download: bool = False, device=None,
          progress: bool = True) -> list[dict]:
    """Run every config in order (teachers first), skipping finished ones.

    Runs claimed by another process are deferred and waited for at the end, so several
    processes sharing ``results`` (``lakt sweep`` on several machines, or the executors
    of :mod:`lakt.runs.executors`) split the work and never run a config twice at once.
    """
    finished, deferred = [], []
    for config in configs:
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
