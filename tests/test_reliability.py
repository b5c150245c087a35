"""Fault injection: sweeps killed with SIGKILL resume to the same results; two sweeps share a folder."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakt import runs

SWEEP = [sys.executable, "-m", "lakt.runs.cli", "sweep", "--preset", "smoke", "--quiet", "--results"]
TIMING = {"seconds"}


def comparable(metrics: dict) -> dict:
    """A run's metrics without wall-clock fields."""
    out = {k: v for k, v in metrics.items() if k not in TIMING}
    out["history"] = [{k: v for k, v in row.items() if k not in TIMING} for row in metrics["history"]]
    return out


def results_of(folder: Path) -> dict:
    out = {}
    for config in runs.preset("smoke"):
        metrics = runs.load_result(config, folder)
        assert metrics is not None, f"{config.name} did not finish in {folder}"
        out[config.key] = comparable(metrics)
    return out


def events(folder: Path) -> list[list[str]]:
    return [line.split() for line in (folder / "runs.log").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    subprocess.run(SWEEP + [str(folder)], check=True, capture_output=True)
    return results_of(folder)


def test_sweep_killed_at_random_points_resumes_to_identical_results(tmp_path, reference):
    rng = random.Random(2024)
    kills = 0
    for attempt in range(5):
        proc = subprocess.Popen(SWEEP + [str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(1.5, 7.0))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 3  # the kills really interrupted work
    done = subprocess.run(SWEEP + [str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert results_of(tmp_path) == reference
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(".claim"))
    assert not list(tmp_path.rglob("progress.pt"))
    finishes = [e for e in events(tmp_path) if e[3] == "finish"]
    assert sorted(e[4] for e in finishes) == sorted(reference)  # every run finished exactly once


def test_two_sweeps_at_once_never_run_a_config_twice(tmp_path, reference):
    procs = [subprocess.Popen(SWEEP + [str(tmp_path)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in (1, 2)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert results_of(tmp_path) == reference
    starts = [e[4] for e in events(tmp_path) if e[3] in ("start", "resume")]
    assert sorted(starts) == sorted(set(starts)) == sorted(reference)
    assert len({e[2] for e in events(tmp_path)}) == 2  # both processes did work


def test_truncated_model_file_is_detected_and_the_run_redone(tmp_path, reference):
    subprocess.run(SWEEP + [str(tmp_path)], check=True, capture_output=True)
    teacher = runs.preset("smoke")[0]
    model = teacher.folder(tmp_path) / "model.pt"
    model.write_bytes(model.read_bytes()[:100])
    student = runs.preset("smoke")[1]
    (student.folder(tmp_path) / "metrics.json").unlink()
    done = subprocess.run(SWEEP + [str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    warning, = done.stderr.strip().splitlines()  # reported in one line...
    assert "corrupt" in warning and "model.pt" in warning
    assert results_of(tmp_path) == reference  # ...and the teacher redone, not read
    redone = [e[5] for e in events(tmp_path)[-4:] if e[3] == "finish"]
    assert redone == [teacher.name, student.name]
