"""Integration: `lakt sweep --executor slurm` against a real one-node SLURM cluster (.ci/slurm-up).

Faults are injected on events, never after sleeps: a ``progress.pt`` appearing (an epoch
is saved) before ``scancel``, a ``requeue`` line in ``runs.log`` before the time limit is
raised. A run long enough to be cancelled mid-run is sized from the smoke teacher's
measured epoch time on this machine; the time-limit test's run has more epochs than any
machine trains before the limit, so neither depends on this machine's speed.
"""
import dataclasses
import math
import os
import shutil
import subprocess
import sys
import time

import pytest

from lakt import runs
from lakt.runs import executors

from test_reliability import SMOKE, log_lines as events, results_of

pytestmark = pytest.mark.slow  # a SLURM cluster

HOWTO = "no SLURM here: run `sudo .ci/slurm-up` (Debian: installs slurm-wlm and munge), then pytest tests/runs/test_slurm.py"
if shutil.which("sbatch") is None or subprocess.run(["sinfo"], capture_output=True).returncode != 0:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but no SLURM cluster answers: .ci/run must call .ci/slurm-up ({HOWTO})",
                    pytrace=False)
    pytest.skip(HOWTO, allow_module_level=True)

ENV = dict(os.environ, OMP_NUM_THREADS="1")  # the same thread count as the inline reference
LAKT = [sys.executable, "-m", "lakt.runs.cli"]



def _stored_epochs(epochs: int) -> list[int]:
    """The epochs a finished run's metrics.json keeps (histories are thinned, first and last kept)."""
    from lakt.runs.cache import thin_history

    return [row["epoch"] for row in thin_history([{"epoch": e} for e in range(1, epochs + 1)])]

def lakt(*argv, **kw):
    return subprocess.run(LAKT + list(argv), capture_output=True, text=True, env=ENV, **kw)


def until(condition, what, timeout=600):
    """Poll ``condition`` (an event: a file appearing, a log line) until true."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def queued(job):
    return bool(executors.slurm_running([job]))


@pytest.fixture(scope="module")
def inline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inline")
    done = lakt("sweep", "--preset", "smoke", "--quiet", "--results", str(folder))
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="module")
def long_teacher(inline):
    """A teacher that trains for more than a minute here: long enough to be cancelled mid-run.

    Sized from the *fastest* epoch of the inline smoke run on this machine, so a run that
    happens to go faster under SLURM still lasts that long.
    """
    teacher = runs.preset("smoke")[0]
    per_epoch = min(row["seconds"] for row in runs.load_result(teacher, inline)["history"])
    return dataclasses.replace(teacher, epochs=max(teacher.epochs, math.ceil(75 / per_epoch)))


def test_smoke_sweep_on_slurm_gives_the_inline_results(inline, tmp_path):
    began = time.perf_counter()
    done = lakt("sweep", "--preset", "smoke", "--quiet", "--results", str(tmp_path), "--executor", "slurm", "--wait")
    assert done.returncode == 0, done.stderr
    assert "submitted SLURM job array" in done.stdout and "lakt status" in done.stdout
    assert results_of(tmp_path, SMOKE) == results_of(inline, SMOKE)
    log = events(tmp_path)
    starts = [e[4] for e in log if e[3] == "start"]
    assert sorted(starts) == sorted(set(starts)) == sorted(results_of(inline, SMOKE))  # each run trained once
    teacher_done = next(i for i, e in enumerate(log) if e[3] == "finish" and e[5].startswith("teacher"))
    assert all(i > teacher_done for i, e in enumerate(log) if e[3] == "start" and e[5].startswith("student"))
    again = lakt("sweep", "--preset", "smoke", "--quiet", "--results", str(tmp_path), "--executor", "slurm")
    assert again.returncode == 0 and "nothing to submit" in again.stdout
    print(f"smoke preset on SLURM: {time.perf_counter() - began:.0f} s")


def test_cancelled_task_resubmitted_resumes_and_finishes(long_teacher, tmp_path):
    options = executors.SlurmOptions()
    job, = executors.submit_slurm([long_teacher], tmp_path, options).ids
    progress = long_teacher.folder(tmp_path) / "progress.pt"
    until(progress.exists, "the first epoch's progress.pt")
    subprocess.run(["scancel", job], check=True)
    until(lambda: not queued(job), f"job {job} to leave the queue")
    assert runs.load_result(long_teacher, tmp_path) is None and progress.exists()  # really interrupted
    job, = executors.submit_slurm([long_teacher], tmp_path, options).ids
    left = executors.wait([long_teacher], tmp_path, lambda: queued(job), poll=0.5, progress=False)
    assert left == []
    log = [e[3] for e in events(tmp_path) if e[4] == long_teacher.key]
    assert log == ["start", "resume", "finish"]
    history = runs.load_result(long_teacher, tmp_path)["history"]
    assert [row["epoch"] for row in history] == _stored_epochs(long_teacher.epochs)  # each epoch once, in order


def test_task_hitting_its_time_limit_is_requeued_and_resumes(tmp_path):
    """A 1-minute limit with a 10-second warning: SLURM signals the task (USR2), submitit
    requeues it, and the restarted task resumes from its last saved epoch.

    slurmctld checks time limits every 30 s and sends the warning at the first check inside
    its window, so with a 10-second warning it comes 20-50 s after the start (measured on this
    cluster: 36 s) -- after submitit has installed its handler, a few seconds in. (A 30-second
    warning on a 1-minute limit can come at the first check, before the handler exists, when
    USR2's default action kills the task and nothing is requeued.) The run is given far more
    epochs than any machine trains in a minute, so it cannot finish before the signal; once
    the requeue is logged the test raises the time limit, waits for the resumed task to save
    two epochs past the last one saved before the requeue, and cancels it. Whether a resumed
    run then finishes is the cancel test's check above.
    """
    from lakt.core.files import load_tensors

    endless = dataclasses.replace(runs.preset("smoke")[0], epochs=100_000)
    job, = executors.submit_slurm([endless], tmp_path, executors.SlurmOptions(timeout_min=1, signal_delay_s=10)).ids
    progress, saved = endless.folder(tmp_path) / "progress.pt", []

    def logged(event):
        state = load_tensors(progress) if progress.exists() else None
        if state is not None and (not saved or saved[-1] != state["epoch"]):
            saved.append(int(state["epoch"]))
        log = [e[3] for e in events(tmp_path)] if (tmp_path / "runs.log").exists() else []
        assert "finish" not in log and "fail" not in log and queued(job), f"the task stopped: {log}"
        return event in log

    until(lambda: logged("requeue"), "the task's requeue line")
    subprocess.run(["scontrol", "update", f"JobId={job}", "TimeLimit=30"], check=True)
    before = saved[-1]
    until(lambda: logged("resume") and saved[-1] >= before + 2, "the resumed task's next epochs")
    subprocess.run(["scancel", job], check=True)
    until(lambda: not queued(job), f"job {job} to leave the queue")
    log = [e[3] for e in events(tmp_path) if e[4] == endless.key]
    assert log[:3] == ["start", "requeue", "resume"]
    err = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*_log.err"))
    assert "this job is timed-out" in err  # submitit saw a time limit, not a preemption
    assert saved == sorted(saved), f"the saved epoch went back: {saved}"  # resumed, not restarted
    history = load_tensors(progress)["history"]
    assert [row["epoch"] for row in history] == list(range(1, len(history) + 1))  # each epoch once, in order


def partitions():
    return [p.rstrip("*") for p, _ in executors._sinfo("%P %G")]


BAD = [
    (["--slurm-partition", "no-such-partition"], {}, "unknown SLURM partition"),
    (["--gpus-per-task", "1"], {}, "has no GPUs"),
    (["--executor", "local", "--workers", "0"], {}, "--workers"),
    ([], {"PATH": "/nonexistent"}, "sbatch"),
]


@pytest.mark.parametrize("argv,env,expect", BAD, ids=[" ".join(a) or "no sbatch on PATH" for a, _, _ in BAD])
def test_bad_executor_input_is_one_line_exit_2_and_writes_nothing(argv, env, expect, tmp_path):
    results = tmp_path / "results"
    argv = ["sweep", "--preset", "smoke", "--quiet", "--results", str(results), "--executor", "slurm", *argv]
    done = subprocess.run(LAKT + argv, capture_output=True, text=True, env=dict(ENV, **env))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("lakt: error:") and expect in lines[0], \
        done.stderr
    assert not results.exists()
    assert "gpu" not in " ".join(g for _, g in executors._sinfo("%P %G"))  # the premise of the GPU case
