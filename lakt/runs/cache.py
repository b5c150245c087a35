"""Running configs through the results cache.

A run's results live in ``RESULTS/<kind>/<key>/`` (:meth:`RunConfig.folder`); a sweep
started again skips every run that has finished and resumes a killed one from its
``progress.pt``:

* ``config.json``  -- the configuration (written first);
* ``metrics.json`` -- test accuracy, history, noise curve...; written last, atomically,
  so its presence means "done". The history keeps at most :data:`HISTORY_ROWS` epochs
  (evenly spaced, first and last always), so a 600-epoch student is not 150 KB of a
  committed results folder;
* ``model.pt``     -- weights (teachers and robustness nets; students on request; git-ignored);
* ``weights-fp16.pt`` -- a robustness net's weights in float16, small enough to commit, so its
  noise curve can be measured again without training (:func:`load_model` falls back to it);
* ``progress.pt``  -- per-epoch checkpoint while running (resume after a kill);
* ``.claim``       -- held by the process running it (two sweeps never run it twice).

Keys include the data's fingerprint (``RunConfig.data``); :func:`resolve` fills it in
from the loaded dataset before any lookup, and checks a fingerprint a config already
names (a preset's) against the data actually given.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
import time
from pathlib import Path

import torch

from ..core import data as data_lib
from ..core.errors import LaktError, require
from ..core.models import build
from ..core.attention import AttentionCache
from ..core.objective import Objective
from ..core.teacher import TeacherCache
from ..core.robustness import noise_robustness
from ..core.train import TrainSpec, default_device, evaluate, fit, load_checkpoint, save_checkpoint
from .config import RunConfig
from ..core.files import (StorageError, append_line, atomic_save, atomic_write_json, load_tensors, make_folder, read_json,
                          unwritable)
from .claims import claimed, remove_temporaries

HISTORY_ROWS = 60
_LOADED: dict[str, set[str]] = {}  # dataset kind -> fingerprints of the data this process has loaded


@functools.lru_cache(maxsize=4)
def _dataset(name: str, root: str | None, download: bool) -> data_lib.Dataset:
    ds = data_lib.load(name, root, download)
    _LOADED.setdefault(name, set()).add(ds.fingerprint)
    return ds


def _root(data_root) -> str | None:
    return None if data_root is None or str(data_root) == "" else str(Path(data_root).expanduser())


def resolve(config: RunConfig, data_root=None, download: bool = False) -> RunConfig:
    """``config`` (and its teacher) with ``data`` set to the fingerprint of its data.

    Resolved from the dataset under ``data_root`` (loaded once per process); without a
    root, from the one dataset of that kind this process has loaded (a chapter that
    swept first and reads its runs after). A config that already names a fingerprint
    (a preset pinned to the CIFAR-10 (JPEG) copy) is checked against ``data_root`` when
    one is given: other data is an error, never a silent lookup of someone else's runs.
    """
    if config.data is not None and data_root is None:
        return config
    if data_root is not None or config.dataset == "digits":
        fingerprint = _dataset(config.dataset, _root(data_root), download).fingerprint
    else:
        loaded = _LOADED.get(config.dataset, set())
        require(len(loaded) == 1, f"run {config.name} does not know its data: pass data_root= (the folder "
                                  f"it trains on) to lakt.runs.finished / load_result / load_model")
        (fingerprint,) = loaded
    if config.data is not None:
        require(config.data == fingerprint,
                f"run {config.name} is defined on data {config.data} but {_root(data_root)!r} holds "
                f"{fingerprint}; point --data-root at the data the preset was run on "
                "(the cifar10-cpu presets: cifar10-jpeg.tar.gz extracted), or use another preset")
        return config
    teacher = dataclasses.replace(config.teacher, data=fingerprint) if config.teacher is not None else None
    return dataclasses.replace(config, data=fingerprint, teacher=teacher)


def check_results(results) -> Path:
    """``results`` with ``~`` expanded, refused in one line if it cannot be a writable folder.

    Called before a run trains, so a bad ``--results`` costs no training and writes nothing.
    """
    results = Path(results).expanduser()
    require(not results.exists() or results.is_dir(),
            f"--results {str(results)!r} is a file, not a folder; choose a folder path")
    make_folder(results)
    if not os.access(results, os.W_OK | os.X_OK):
        import errno
        raise unwritable(results, OSError(errno.EROFS if _read_only(results) else errno.EACCES, "not writable"))
    return results


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def load_result(config: RunConfig, results: Path, data_root=None) -> dict | None:
    """The finished run's metrics, or None if it has not finished or left a corrupt file.

    ``config`` is first resolved to its data (:func:`resolve`, with ``data_root``).

    A run whose weights other runs or the user need (teachers, students saved on
    request) counts as finished only if ``model.pt`` loads too. A robustness run's
    result is its noise curve in ``metrics.json``; its weights are kept for
    re-evaluation but not required, so a results folder committed without them
    (``results/``) still reads as finished.
    """
    config = resolve(config, data_root)
    folder = config.folder(Path(results).expanduser())
    metrics = read_json(folder / "metrics.json")
    if metrics is None or metrics.get("key") != config.key:
        return None
    if _needs_model(config) and load_tensors(folder / "model.pt") is None:
        return None
    return metrics


FP16_WEIGHTS = "weights-fp16.pt"


def _keeps_model(config: RunConfig) -> bool:
    return config.save_model or config.kind in ("teacher", "robust")


def _needs_model(config: RunConfig) -> bool:
    return _keeps_model(config) and config.kind != "robust"


def load_model(config: RunConfig, results: Path, num_classes: int, in_channels: int, device=None, data_root=None):
    """The trained network of a finished run (teachers and robustness nets keep theirs; a robustness
    net whose model.pt is absent, as in a fresh clone, loads its committed float16 weights)."""
    model = build(config.model, num_classes, width=config.width, in_channels=in_channels)
    folder = resolve(config, data_root).folder(Path(results).expanduser())
    weights = folder / "model.pt"
    if not weights.exists() and (folder / FP16_WEIGHTS).exists():
        weights = folder / FP16_WEIGHTS
    load_checkpoint(model, weights)
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
    longest run of a protocol: ``lakt student`` trains one only when asked; executor
    tasks, whose teacher was a task of its own, never train it a second time). If
    another process is running the same config, wait for it (``wait=True``) or raise
    :class:`Busy`.
    """
    results = Path(results).expanduser()
    if config.data is None or data_root is not None:
        _dataset(config.dataset, _root(data_root), download)  # the data's own errors first (no root, ...)
    config = resolve(config, data_root, download)
    done = load_result(config, results)
    if done is not None:
        _tidy(config.folder(results))
        return done
    ds = _dataset(config.dataset, _root(data_root), download)
    training_split(config, ds)  # an impossible validation or subset size fails before anything is written
    if config.teacher is not None and not train_teacher and load_result(config.teacher, results) is None:
        raise TeacherMissing(config.teacher, results)
    results = check_results(results)
    return _run(config, results, ds, data_root, download, device, progress, wait, poll, train_teacher)


def _run(config, results, ds, data_root, download, device, progress, wait, poll, train_teacher) -> dict:
    if config.kind == "student" and not train_teacher and load_result(config.teacher, results) is None:
        raise LaktError(f"its teacher {config.teacher.name} ({config.teacher.key}) has not finished; "
                        f"see lakt status --results {results}")
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


def training_split(config: RunConfig, ds: data_lib.Dataset):
    """(images the run trains on, validation images or None): the preset's validation images are
    held out first (the same for every run), then a student's per-class subset is drawn from the rest."""
    train, validation = data_lib.split_validation(ds.train, config.validation)
    if config.n_per_class is not None:
        train = train.subset(data_lib.per_class_subset(train.y, config.n_per_class, config.seed))
    return train, validation


def _execute(config, results, folder, claim, ds, data_root, download, device, progress) -> dict:
    device = torch.device(device) if device is not None else default_device()
    remove_temporaries(folder)
    _check_space(config, folder, ds)
    atomic_write_json(config.to_dict(), folder / "config.json")
    resumed = (folder / "progress.pt").exists()
    _log(results, "resume" if resumed else "start", config)
    began = time.perf_counter()
    train, validation = training_split(config, ds)
    teacher = teacher_acc = None
    if config.kind == "student":
        teacher_metrics = run(config.teacher, results, data_root=data_root, download=download,
                              device=device, progress=progress)
        teacher_acc = teacher_metrics["test_acc"]
        teacher = load_model(config.teacher, results, ds.num_classes, ds.in_channels, device)
    torch.manual_seed(config.seed)
    model = build(config.model, ds.num_classes, width=config.width, in_channels=ds.in_channels).to(device)
    method = config.method_spec
    cache = attention_cache = None
    if teacher is not None and method.teacher_targets_cacheable and not config.augment:
        cache = TeacherCache.build(teacher, train.x.to(device), train.y.to(device), config.output,
                                   of=method.jacobian_of)
        if method.at > 0:
            attention_cache = AttentionCache.build(teacher, train.x.to(device))
    objective = Objective(method, teacher, jacobian_form=config.jacobian_form, output=config.output, cache=cache,
                          precision=config.precision, attention_cache=attention_cache)
    spec = TrainSpec(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, final_lr=config.final_lr,
                     optimizer=config.optimizer, weight_decay=config.weight_decay, seed=config.seed, device=device,
                     augment=config.augment, channels_last=config.channels_last, name=config.name)
    splits = {"test": ds.test} | ({"val": validation} if validation is not None else {})
    history = fit(model, train, objective, spec, evaluate_on=splits, checkpoint=folder / "progress.pt",
                  on_epoch=lambda row: claim.heartbeat(), progress=progress)
    metrics = {"key": config.key, "name": config.name, "config": config.to_dict(),
               "test_acc": history[-1]["test_acc"], "train_size": len(train), "history": thin_history(history),
               "seconds": time.perf_counter() - began, "device": _device_name(device),
               "torch": torch.__version__, "dataset_name": ds.name, "teacher_acc": teacher_acc,
               "provenance": provenance(device)}
    if validation is not None:
        metrics["val_acc"], metrics["val_size"] = history[-1]["val_acc"], len(validation)
    if config.kind == "robust":
        metrics["noise"] = noise_robustness(model, ds.test, config.sigmas, config.noise_trials, seed=config.seed)
        # eval mode on the un-augmented training images: beside test_acc, it tells over-fitting
        # apart from what augmentation and BatchNorm's train/eval switch do to the training figure
        metrics["train_eval_acc"] = evaluate(model, train)
        half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
        atomic_save({"model": half, "config": json.dumps(config.to_dict())}, folder / FP16_WEIGHTS)
    if _keeps_model(config):
        save_checkpoint(model, folder / "model.pt", config=json.dumps(config.to_dict()))
    atomic_write_json(metrics, folder / "metrics.json")
    (folder / "progress.pt").unlink(missing_ok=True)
    _log(results, "finish", config)
    return metrics


def thin_history(history: list[dict], rows: int = HISTORY_ROWS) -> list[dict]:
    """At most ``rows`` of ``history``, evenly spaced by index, the first and the last always kept."""
    if len(history) <= rows:
        return list(history)
    picks = sorted({round(i * (len(history) - 1) / (rows - 1)) for i in range(rows)})
    return [history[i] for i in picks]


def _check_space(config: RunConfig, folder: Path, ds) -> None:
    """Refuse before training when the disk cannot hold the run's checkpoints.

    A run writes ``progress.pt`` (weights and Adam's two moments: 3 copies of the
    parameters) next to ``model.pt`` while it renames a new one into place; ask for
    twice that, so hours of training never end in a full disk.
    """
    params = sum(p.numel() for p in build(config.model, ds.num_classes, width=config.width,
                                            in_channels=ds.in_channels).parameters())
    needed = 2 * 4 * params * 4 + 2 ** 20
    try:
        stat = os.statvfs(folder)
    except OSError:
        return
    free = stat.f_bavail * stat.f_frsize
    if free < needed:
        raise StorageError(f"cannot write {str(folder)!r}: the disk is full ({free / 2 ** 20:.1f} MB free, "
                            f"the run needs about {needed / 2 ** 20:.0f} MB); free some space or write to another "
                            "folder (e.g. --results DIR)")


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


def _code_state() -> dict:
    """The git commit of this checkout and whether the package's own files differ from it (a sweep's
    results and log always do, so they do not count); None for each where git cannot say."""
    import subprocess

    repo = Path(__file__).resolve().parents[2]

    def git(*args) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", "lakt") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


_CODE = _code_state()
"""Read once, when lakt is imported: a sweep runs for hours on the code it imported, whatever is
committed or edited meanwhile, so its runs name that code, not the checkout's state when each ends."""


def provenance(device: torch.device) -> dict:
    """Who computed a run, recorded when it finishes: the code this process imported (:data:`_CODE`:
    git commit, and whether the package's files had uncommitted changes), the UTC date, the host, its
    CPU and the device, and the lakt and torch versions. Not part of the key: it describes, it does
    not define."""
    import datetime
    import socket

    from .. import __version__

    return {**_CODE, "utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "host": socket.gethostname(), "cpu": platform.processor() or platform.machine(),
            "device": _device_name(device), "lakt": __version__, "torch": torch.__version__}


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
    results = Path(results).expanduser()
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


def finished(configs: list[RunConfig], results: Path, data_root=None) -> list[tuple[RunConfig, dict]]:
    """The runs among ``configs`` already finished in ``results``, with their metrics.

    Reads only: nothing is trained, so a chapter can show a committed results
    folder (``results/``) without the data or the hours that made it.
    """
    resolved = [resolve(c, data_root) for c in configs]
    return [(c, m) for c in resolved if (m := load_result(c, Path(results))) is not None]


def collect(configs: list[RunConfig], results: Path, data_root=None):
    """A DataFrame of the finished runs among ``configs`` (one row per run)."""
    import pandas as pd

    rows = []
    for c, m in finished(configs, results, data_root):
        row = {"kind": c.kind, "dataset": c.dataset, "model": c.model, "width": c.width, "method": c.method,
               "n_per_class": c.n_per_class, "seed": c.seed, "epochs": c.epochs, "penalty": c.penalty,
               "test_acc": m["test_acc"], "seconds": m["seconds"], "device": m["device"], "key": c.key,
               "val_acc": m.get("val_acc"), **c.knobs}
        rows.append(row)
    return pd.DataFrame(rows)
