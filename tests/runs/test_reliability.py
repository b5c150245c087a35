"""Fault injection: sweeps killed with SIGKILL resume to the same results; two sweeps share a folder.

Kills land on events, never after sleeps: ``fault_driver.py`` runs the ``lakt`` command
and stops it (SIGSTOP) the moment a chosen event happens -- a run's line in
``runs.log``, a checkpoint or a metrics file being renamed into place. The test then
checks, from the files alone, that the frozen sweep is really in the middle of that
work, and kills it with SIGKILL. So every kill interrupts the same work on a fast idle
machine and on a loaded one, and every assertion is deterministic.
"""
import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import lakt
from lakt import runs

pytestmark = pytest.mark.slow  # kills and resumes real sweeps

ARGS = ["sweep", "--preset", "smoke", "--quiet", "--results"]
PART = ["part"]  # fault_driver.py: every 4th smoke run -- a teacher, a student and a robustness run
LAKT = [sys.executable, "-m", "lakt.runs.cli"]
DRIVER = [sys.executable, str(Path(__file__).with_name("fault_driver.py"))]
ROOT = str(Path(lakt.__file__).resolve().parents[1])  # children import this lakt, whatever their cwd
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
TIMING = {"seconds", "provenance"}  # when and where a run ran, not what it computed
SMOKE = runs.preset("smoke")
TEACHER, STUDENT, ROBUST = SMOKE[0::4]
assert (TEACHER.kind, STUDENT.kind, ROBUST.kind) == ("teacher", "student", "robust")


def sweep(results: Path, *extra: str, **kwargs):
    return subprocess.run(LAKT + ARGS + [str(results), *extra], capture_output=True, text=True, env=ENV, **kwargs)


def sweep_part(results: Path, **kwargs):
    """PART, uninterrupted."""
    return subprocess.run(DRIVER + ["none", "--", *PART, str(results)], capture_output=True, text=True, env=ENV,
                          **kwargs)


def comparable(metrics: dict) -> dict:
    """A run's metrics without wall-clock fields."""
    out = {k: v for k, v in metrics.items() if k not in TIMING}
    out["history"] = [{k: v for k, v in row.items() if k not in TIMING} for row in metrics["history"]]
    return out


def results_of(folder: Path, configs=(TEACHER, STUDENT, ROBUST)) -> dict:
    out = {}
    for config in configs:
        metrics = runs.load_result(config, folder)
        assert metrics is not None, f"{config.name} did not finish in {folder}"
        out[config.key] = comparable(metrics)
    return out


def log_lines(folder: Path) -> list[list[str]]:
    """Every line of runs.log, split: time host pid event key name [reason...]."""
    return [line.split() for line in (folder / "runs.log").read_text().splitlines()]


def events(folder: Path) -> list[tuple[int, str, str]]:
    """(pid, event, key) of every line of runs.log."""
    return [(int(pid), event, key) for _, _, pid, event, key, *_ in log_lines(folder)]


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.fixture(scope="module")
def reference_folder(tmp_path_factory):
    """The uninterrupted sweep of PART (never modified: tests copy it)."""
    folder = tmp_path_factory.mktemp("reference")
    done = sweep_part(folder)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="module")
def reference(reference_folder):
    return results_of(reference_folder)


@contextmanager
def frozen_at(results: Path, event: str):
    """The sweep of PART on ``results``, stopped at ``event`` (see fault_driver.py); SIGKILLed on leaving."""
    proc = subprocess.Popen(DRIVER + [event, "--", *PART, str(results)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        proc.returncode = os.waitstatus_to_exitcode(status)
        pytest.fail(f"the sweep ended (exit {proc.returncode}) before {event}: {proc.stderr.read()}")
    try:
        yield proc
    finally:  # a failed check must not leave a stopped process behind
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def test_sweep_killed_at_events_resumes_to_identical_results(tmp_path, reference):
    """Six kills, each in the middle of a different kind of work, then one sweep to the end."""
    student, robust = STUDENT, ROBUST
    teacher_dir, student_dir, robust_dir = (c.folder(tmp_path) for c in (TEACHER, student, robust))

    # 1. At the teacher's start line: it has started, nothing of it is written but its config and claim.
    with frozen_at(tmp_path, f"log:start:{TEACHER.key}") as proc:
        assert events(tmp_path) == [(proc.pid, "start", TEACHER.key)]
        assert files(teacher_dir) == {"config.json", ".claim"}

    # 2. Just after the teacher's first epoch checkpoint (the first one is always written).
    with frozen_at(tmp_path, f"after:{TEACHER.key}/progress.pt") as proc:
        assert events(tmp_path)[-1] == (proc.pid, "start", TEACHER.key)  # no checkpoint yet: started afresh
        assert torch.load(teacher_dir / "progress.pt", weights_only=True)["epoch"] == 1 < TEACHER.epochs
        assert "metrics.json" not in files(teacher_dir)

    # 3. Half-way through writing a student's first checkpoint: its temporary file is complete, not renamed.
    with frozen_at(tmp_path, f"before:{student.key}/progress.pt") as proc:
        log = events(tmp_path)
        assert (proc.pid, "resume", TEACHER.key) in log  # the teacher went on from its epoch-1 checkpoint
        assert (proc.pid, "finish", TEACHER.key) in log and log[-1] == (proc.pid, "start", student.key)
        assert [n for n in files(student_dir) if n.endswith(".tmp")] and "progress.pt" not in files(student_dir)

    # 4. Just after that student's metrics.json is in place, before its progress.pt is removed and its finish
    #    logged. It started afresh: no checkpoint had landed.
    with frozen_at(tmp_path, f"after:{student.key}/metrics.json") as proc:
        assert events(tmp_path)[-1] == (proc.pid, "start", student.key)
        assert {"metrics.json", "progress.pt", ".claim"} <= files(student_dir)

    # 5. Half-way through writing a robustness run's metrics.json: weights saved, result not.
    with frozen_at(tmp_path, f"before:{robust.key}/metrics.json") as proc:
        assert events(tmp_path)[-1] == (proc.pid, "start", robust.key)
        assert {"model.pt", "progress.pt"} <= files(robust_dir) and "metrics.json" not in files(robust_dir)

    # 6. Right after that run's resume line: it goes on from its checkpoint, not from scratch.
    with frozen_at(tmp_path, f"log:resume:{robust.key}") as proc:
        assert events(tmp_path)[-1] == (proc.pid, "resume", robust.key)

    done = sweep_part(tmp_path)
    assert done.returncode == 0, done.stderr
    assert results_of(tmp_path) == reference
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(".claim"))
    assert not list(tmp_path.rglob("progress.pt"))  # the student's, left by kill 4, is tidied too
    log = events(tmp_path)
    assert [e for _, e, k in log if k == TEACHER.key] == ["start", "start", "resume", "finish"]
    # The student finished without a finish line: kill 4 came after its metrics.json, before that line.
    assert [e for _, e, k in log if k == student.key] == ["start", "start"]
    assert [e for _, e, k in log if k == robust.key] == ["start", "resume", "resume", "finish"]


def test_two_sweeps_at_once_never_run_a_config_twice(tmp_path, reference):
    """Both sweeps claim runs from one folder; whether the second finds work left depends on how
    fast the first is, so what is asserted is what must hold either way: each run trained once."""
    procs = [subprocess.Popen(LAKT + ARGS + [str(tmp_path)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=ENV) for _ in (1, 2)]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read()
        proc.stderr.close()
    finished = results_of(tmp_path, SMOKE)  # every run of the preset...
    assert {key: finished[key] for key in reference} == reference  # ...the same as one process's
    starts = [key for _, event, key in events(tmp_path) if event in ("start", "resume")]
    assert sorted(starts) == sorted(set(starts)) == sorted(c.key for c in SMOKE)


def test_truncated_model_file_is_detected_and_the_run_redone(tmp_path, reference_folder, reference):
    results = tmp_path / "results"
    shutil.copytree(reference_folder, results)
    model = TEACHER.folder(results) / "model.pt"
    model.write_bytes(model.read_bytes()[:100])
    student = STUDENT
    (student.folder(results) / "metrics.json").unlink()
    done = sweep_part(results)
    assert done.returncode == 0, done.stderr
    warning, = done.stderr.strip().splitlines()  # reported in one line...
    assert "corrupt" in warning and "model.pt" in warning
    assert results_of(results) == reference  # ...and the teacher redone, not read
    redone = [key for _, event, key in events(results)[-4:] if event == "finish"]
    assert redone == [TEACHER.key, student.key]
