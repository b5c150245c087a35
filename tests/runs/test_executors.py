"""Executors without a cluster: the local executor reproduces the inline sweep; status; failures; bad input.

Both sweeps run in subprocesses with OMP_NUM_THREADS=1: torch's CPU kernels sum in an order
that depends on the thread count, so identical results need identical thread counts.
"""
import os
import subprocess
import sys

import pytest

from lakt import runs
from lakt.runs.cli import main
from lakt.runs.status import status

from test_reliability import SMOKE, comparable, log_lines as events, results_of

pytestmark = pytest.mark.slow  # sweeps in subprocesses

ENV = dict(os.environ, OMP_NUM_THREADS="1")
LAKT = [sys.executable, "-m", "lakt.runs.cli"]


def sweep(results, *extra):
    return subprocess.run(LAKT + ["sweep", "--preset", "smoke", "--quiet", "--results", str(results), *extra],
                          capture_output=True, text=True, env=ENV)


@pytest.fixture(scope="module")
def inline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inline")
    done = sweep(folder)
    assert done.returncode == 0, done.stderr
    return folder


def test_local_executor_with_two_workers_gives_the_inline_results(inline, tmp_path):
    done = sweep(tmp_path, "--executor", "local", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert results_of(tmp_path, SMOKE) == results_of(inline, SMOKE)
    log = events(tmp_path)
    starts = [e[4] for e in log if e[3] == "start"]
    assert sorted(starts) == sorted(set(starts)) == sorted(results_of(inline, SMOKE))  # each run trained once
    teacher = runs.preset("smoke")[0]
    first_student = min(i for i, e in enumerate(log) if e[3] == "start" and e[5].startswith("student"))
    assert log.index(next(e for e in log if e[3] == "finish" and e[4] == teacher.key)) < first_student
    assert len({e[2] for e in log if e[3] == "start"}) == len(starts)  # one process per run...
    assert (tmp_path / "logs").is_dir()                                 # ...each with its submitit log
    table = status(tmp_path, runs.preset("smoke"))
    assert set(table["state"]) == {"finished"}


def test_a_failing_run_is_recorded_and_the_others_finish(inline, tmp_path):
    """A teacher whose images are missing fails; its student fails with that reason; a run needing neither finishes."""
    import dataclasses
    from lakt.runs import executors
    smoke = runs.preset("smoke")
    teacher = dataclasses.replace(smoke[0], dataset="folder", data="folder:" + "0" * 16)  # images never found
    student = dataclasses.replace(smoke[1], dataset="folder", data=teacher.data, teacher=teacher)
    robust = smoke[-1]
    empty = tmp_path / "no-images"  # a folder dataset's root without train/ and test/ (digits ignore it)
    empty.mkdir()
    failed = executors.run_local([teacher, student, robust], tmp_path, 2, data_root=empty,
                                 progress=False)
    assert [c.key for c in failed] == [teacher.key, student.key]
    assert comparable(runs.load_result(robust, tmp_path)) == comparable(runs.load_result(robust, inline))
    table = status(tmp_path, [teacher, student, robust]).set_index("key")
    assert table.loc[teacher.key, "state"] == "failed" and "has no train/ folder" in table.loc[teacher.key, "detail"]
    assert table.loc[student.key, "state"] == "failed"
    assert "has no train/ folder" in table.loc[student.key, "detail"]  # the data is checked first, then the teacher
    assert table.loc[robust.key, "state"] == "finished"
    fails = [e[4] for e in events(tmp_path) if e[3] == "fail"]
    assert sorted(fails) == sorted([teacher.key, student.key])   # each failed once: the teacher never retried
    out = subprocess.run(LAKT + ["status", "--results", str(tmp_path), "--preset", "smoke"], capture_output=True,
                         text=True, env=ENV)
    assert out.returncode == 0, out.stderr
    assert "9 runs: 1 finished, 0 running, 0 failed, 8 pending" in out.stdout  # the preset's own runs
    out = subprocess.run(LAKT + ["status", "--results", str(tmp_path)], capture_output=True, text=True, env=ENV)
    assert "1 finished, 0 running, 0 failed" in out.stdout  # without --preset: runs that have a folder


def test_status_shows_a_live_claim_as_running_with_its_holder(tmp_path):
    from lakt.runs.claims import Claim
    config = runs.preset("smoke")[0]
    claim = Claim(config.folder(tmp_path))
    assert claim.acquire()
    try:
        row = status(tmp_path, [config]).iloc[0]
        assert row["state"] == "running" and f"pid {os.getpid()}" in row["detail"] and "heartbeat" in row["detail"]
    finally:
        claim.release()
    assert status(tmp_path, [config]).iloc[0]["state"] == "pending"


def snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else None


BAD = [
    (["--executor", "local", "--workers", "0"], {}, "--workers"),
    (["--executor", "slurm"], {"PATH": "/nonexistent"}, "sbatch"),
    (["--shard", "1/2"], {}, "--shard was removed"),
    (["--executor", "slurm", "--sbatch", "qos"], {}, "KEY=VALUE"),
]


@pytest.mark.parametrize("argv,env,expect", BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_executor_input_is_one_line_exit_2_and_writes_nothing(argv, env, expect, tmp_path, monkeypatch, capsys):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    results = tmp_path / "results"
    try:
        code = main(["sweep", "--preset", "smoke", "--quiet", "--results", str(results), *argv])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("lakt: error:") and expect in err[0], err
    assert not results.exists()
