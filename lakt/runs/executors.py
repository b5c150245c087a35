"""Where a sweep's runs train: inline, as N local processes, or as a SLURM job array (submitit).

* ``inline`` -- :func:`lakt.runs.cache.sweep` in this process, one run after another;
* ``local``  -- ``workers`` runs at once on this machine, each a submitit ``LocalExecutor``
  job (with GPUs present, the workers share them round-robin: several small students
  fill one GPU). The command stays in the foreground and schedules them;
* ``slurm``  -- one SLURM job array per stage, **one array task per run**: each run then
  has its own time limit, log, requeue and ``scancel``, and ``--array-parallelism``
  bounds how many train at once. Runs that need nothing (teachers, Table 3's nets) form
  the first array; students form the second, which starts after its teachers' tasks
  (``--dependency=afterany``), so every teacher trains once, before its students.

Every task is the same :class:`RunTask`, a submitit ``Checkpointable``: on a time limit
or preemption SLURM signals it, submitit requeues it, and the restarted task resumes the
run from its ``progress.pt`` (runs checkpoint every epoch). The results folder stays the
one source of truth: tasks go through :func:`lakt.runs.cache.run` (claims keep two
tasks from training one run, writes are atomic, finished runs are skipped), a run that
fails leaves a ``fail`` line in ``runs.log`` and the other tasks go on.

Thread counts: torch's CPU kernels sum in an order that depends on the number of
threads, so a run reproduces bit for bit only with the same ``OMP_NUM_THREADS``. A task
uses ``OMP_NUM_THREADS`` when set, else the CPUs SLURM gave it, else (local) the
machine's cores divided among the workers.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from submitit.helpers import Checkpointable, DelayedSubmission

from ..core.errors import LaktError, require
from ..core.files import StorageError
from .cache import _log, load_result, run
from .config import RunConfig

EXECUTORS = ("inline", "local", "slurm")


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    """What each array task asks SLURM for (``lakt sweep --executor slurm`` options)."""

    partition: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int = 1
    mem_gb: float | None = None
    timeout_min: int = 24 * 60
    array_parallelism: int = 256
    signal_delay_s: int | None = None  # USR2 this long before the time limit (default: 90 s, at most half of it)
    max_requeues: int = 3          # time-outs a task may be requeued after (preemptions are not counted)
    sbatch: tuple = ()             # other sbatch options, ("KEY", "VALUE") pairs (--sbatch KEY=VALUE)


class RunTask(Checkpointable):
    """One run as a submitit job; picklable, so SLURM or a local process can run it.

    Calling it trains the run through the cache (or returns it if finished). On a time
    limit or preemption submitit calls :meth:`checkpoint`, which re-submits this same
    task; the cache then resumes the run from ``progress.pt``.
    """

    def __init__(self, config: RunConfig, results: Path, data_root=None, download=False, device=None,
                 threads: int | None = None):
        self.config = config.to_dict()
        self.results = str(Path(results).absolute())
        self.data_root = None if data_root is None else str(Path(data_root).expanduser().absolute())
        self.download, self.device, self.threads = download, None if device is None else str(device), threads

    def __call__(self) -> dict:
        import torch
        if os.environ.get("OMP_NUM_THREADS") is None:
            cpus = os.environ.get("SLURM_CPUS_PER_TASK") or self.threads
            if cpus:
                torch.set_num_threads(int(cpus))
        config = RunConfig.from_dict(self.config)
        try:
            metrics = run(config, Path(self.results), data_root=self.data_root, download=self.download,
                          device=self.device, progress=False, train_teacher=False)
        except StorageError:
            raise  # the results folder takes no writes: not even a fail line
        except Exception as err:  # recorded for `lakt status` (the task's log has the traceback), then raised
            _log(Path(self.results), "fail", config, f"{type(err).__name__}: {err}")
            raise
        return {"key": config.key, "name": config.name, "test_acc": metrics["test_acc"]}

    def checkpoint(self, *args, **kwargs) -> DelayedSubmission:
        """Called by submitit when SLURM's time-limit (or preemption) signal arrives."""
        _log(Path(self.results), "requeue", RunConfig.from_dict(self.config), "time limit or preemption")
        return DelayedSubmission(self, *args, **kwargs)


def stages(configs: list[RunConfig], results: Path) -> tuple[list[RunConfig], list[RunConfig]]:
    """The unfinished runs, split into those that need nothing and the students."""
    pending = [c for c in configs if load_result(c, results) is None]
    return [c for c in pending if c.teacher is None], [c for c in pending if c.teacher is not None]


# --- checks: every mistake is one line before anything is written ---------------------------------

def check_workers(workers: int) -> int:
    require(isinstance(workers, int) and workers >= 1, f"--workers must be >= 1, got {workers!r}; e.g. --workers 4")
    return workers


def check_slurm(options: SlurmOptions) -> None:
    """sbatch present, partition known, GPUs there if asked for."""
    require(shutil.which("sbatch") is not None and shutil.which("sinfo") is not None,
            "--executor slurm needs SLURM's sbatch and sinfo on PATH; run on a login node of the cluster, "
            "or use --executor local (try SLURM on this machine: sudo .ci/slurm-up)")
    for name in ("gpus_per_task", "cpus_per_task", "array_parallelism", "timeout_min"):
        floor = 0 if name == "gpus_per_task" else 1
        value = getattr(options, name)
        require(isinstance(value, int) and value >= floor,
                f"--{name.replace('_', '-')} must be an integer >= {floor}, got {value!r}")
    require(options.mem_gb is None or options.mem_gb > 0, f"--mem-gb must be > 0, got {options.mem_gb!r}")
    rows = _sinfo("%P %G")
    partitions = {p.rstrip("*"): p.endswith("*") for p, _ in rows}
    require(len(partitions) > 0, "sinfo lists no partitions: is slurmctld running? (sinfo, scontrol ping)")
    if options.partition is not None:
        require(options.partition in partitions, f"unknown SLURM partition {options.partition!r}; "
                f"choose one of {', '.join(sorted(partitions))} (sinfo), e.g. --slurm-partition "
                f"{next(iter(sorted(partitions)))}")
    part = options.partition or next((p for p, default in partitions.items() if default), None)
    if options.gpus_per_task > 0:
        gres = " ".join(g for p, g in rows if p.rstrip("*") == part)
        require("gpu" in gres, f"--gpus-per-task {options.gpus_per_task} but partition {part!r} has no GPUs "
                f"(sinfo -o '%P %G' shows {gres or 'none'}); choose a GPU partition with --slurm-partition "
                "or drop --gpus-per-task")


def _sinfo(fmt: str) -> list[tuple[str, str]]:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", fmt], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        raise LaktError(f"cannot ask SLURM for its partitions (sinfo: {err}); is the cluster up?") from None
    require(out.returncode == 0, f"sinfo failed: {' '.join(out.stderr.split())[:200]}; is slurmctld up (scontrol ping)?")
    return [tuple((line.split(None, 1) + [""])[:2]) for line in out.stdout.splitlines() if line.strip()]


def parse_sbatch(items: list[str] | None) -> tuple:
    """``["qos=high", "constraint=a100"]`` -> (("qos", "high"), ("constraint", "a100"))."""
    pairs = []
    for item in items or []:
        key, sep, value = item.partition("=")
        require(bool(sep) and bool(key.strip()), f"--sbatch takes KEY=VALUE (an sbatch option without its --), "
                                                 f"got {item!r}; e.g. --sbatch qos=high")
        pairs.append((key.strip().lstrip("-"), value))
    return tuple(pairs)


# --- slurm ------------------------------------------------------------------------------------

@dataclasses.dataclass
class Submission:
    """What a submission started: SLURM job ids (one per stage), the log folder, task counts."""

    jobs: list                 # [(array job id, number of tasks, what)]
    logs: Path

    @property
    def ids(self) -> list[str]:
        return [job for job, _, _ in self.jobs]


def submit_slurm(configs: list[RunConfig], results: Path, options: SlurmOptions, *, data_root=None,
                 download=False, device=None, name="lakt") -> Submission:
    """Submit the unfinished runs of ``configs`` as (at most) two SLURM job arrays; return at once."""
    import submitit

    check_slurm(options)
    results = Path(results)
    first, students = stages(configs, results)
    logs = results / "logs"
    submission = Submission([], logs)
    if not first and not students:
        return submission
    executor = submitit.SlurmExecutor(folder=logs / "%j", max_num_timeout=options.max_requeues)
    params = dict(job_name=name, time=options.timeout_min, cpus_per_task=options.cpus_per_task,
                  array_parallelism=options.array_parallelism,
                  signal_delay_s=options.signal_delay_s or min(90, 30 * options.timeout_min),
                  additional_parameters=dict(options.sbatch))
    if options.partition:
        params["partition"] = options.partition
    if options.gpus_per_task:
        params["gpus_per_task"] = options.gpus_per_task
    if options.mem_gb:
        params["mem"] = f"{int(options.mem_gb * 1024)}MB"
    executor.update_parameters(**params)
    teacher_job = {}
    for stage, what in ((first, "teachers and other runs that need none"), (students, "students")):
        if not stage:
            continue
        needs = sorted({teacher_job[c.teacher.key] for c in stage if c.teacher.key in teacher_job}) if stage is students else []
        executor.update_parameters(dependency=f"afterany:{':'.join(needs)}" if needs else None)
        try:
            with executor.batch():
                jobs = [executor.submit(RunTask(c, results, data_root, download, device)) for c in stage]
        except Exception as err:  # sbatch refused (memory, account, ...): its own words, one line
            raise LaktError(f"sbatch refused the job array: {' '.join(str(err).split())[-300:]}") from None
        teacher_job.update({c.key: j.job_id for c, j in zip(stage, jobs)})
        submission.jobs.append((jobs[0].job_id.split("_")[0], len(jobs), what))
    return submission


def slurm_running(job_ids: list[str]) -> list[str]:
    """The tasks of these jobs that SLURM still holds (pending, running, requeued)."""
    out = subprocess.run(["squeue", "-h", "-o", "%F %i %T"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise LaktError(f"squeue failed: {' '.join(out.stderr.split())[:200]}")
    return [f"{task} {state}" for array, task, state in (line.split() for line in out.stdout.splitlines())
            if array in job_ids]


def wait(configs: list[RunConfig], results: Path, alive, *, poll: float = 2.0, progress: bool = True) -> list:
    """Show one progress bar over finished runs until ``alive()`` is false; return unfinished configs."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(configs), unit="run", disable=not progress, file=sys.stderr)
    while True:
        done = sum(load_result(c, results) is not None for c in configs)
        bar.update(done - bar.n)
        if done == len(configs) or not alive():
            break
        time.sleep(poll)
    bar.close()
    return [c for c in configs if load_result(c, results) is None]


# --- local ------------------------------------------------------------------------------------

def local_devices(device) -> list[str]:
    """GPUs the local workers share round-robin: this process's visible CUDA devices ([] for CPU)."""
    import torch
    if (device is not None and str(device).startswith("cpu")) or not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]


def run_local(configs: list[RunConfig], results: Path, workers: int, *, data_root=None, download=False,
              device=None, poll: float = 0.5, progress: bool = True) -> list[RunConfig]:
    """Train the unfinished runs ``workers`` at a time, teachers before their students.

    Each run is a submitit ``LocalExecutor`` job (its log in ``RESULTS/logs/<pid>/``). A
    student starts once its teacher's job has ended; if the teacher failed the student
    fails at once with that reason, as on SLURM. Returns the runs that did not finish.
    """
    import submitit.local.local as local
    from tqdm.auto import tqdm

    check_workers(workers)
    results = Path(results)
    first, students = stages(configs, results)
    queue = first + students
    gpus = local_devices(device)
    threads = max(1, (os.cpu_count() or 1) // workers)
    running = {}   # job -> config
    bar = tqdm(total=len(configs), initial=len(configs) - len(queue), unit="run", disable=not progress,
               file=sys.stderr)
    started = 0
    while queue or running:
        busy = {c.key for c in queue} | {c.key for c in running.values()}
        for config in [c for c in queue if c.teacher is None or c.teacher.key not in busy]:
            if len(running) >= workers:
                break
            executor = local.LocalExecutor(folder=results / "logs" / "%j")
            params = dict(timeout_min=10 ** 6)
            if gpus:  # several runs share a GPU: worker i gets GPU i mod n
                params["setup"] = [f"export CUDA_VISIBLE_DEVICES={gpus[started % len(gpus)]}"]
            executor.update_parameters(**params)
            running[executor.submit(RunTask(config, results, data_root, download, device, threads))] = config
            queue.remove(config)
            started += 1
        ended = [job for job in running if job.done()]
        for job in ended:
            running.pop(job)
        bar.update(sum(load_result(c, results) is not None for c in configs) - bar.n)
        if not ended:
            time.sleep(poll)
    bar.close()
    return [c for c in configs if load_result(c, results) is None]
