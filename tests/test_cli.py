"""The lakt command: help for every subcommand, one-line errors with exit code 2.

Every bad input is tried against a results folder that already holds finished runs,
which must come out byte-for-byte unchanged.
"""
import shutil
import subprocess
import sys

import pytest

from lakt import runs
from lakt.runs.cli import main

SUBCOMMANDS = ["teacher", "student", "robust", "noise", "sweep", "presets"]


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_help(sub, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([sub, "--help"])
    assert exit_.value.code == 0 and "usage: lakt" in capsys.readouterr().out


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A results folder with the smoke preset's teacher, a student and a robust net."""
    results = tmp_path_factory.mktemp("finished")
    smoke = runs.preset("smoke")
    runs.sweep([smoke[1], smoke[-1]], results, progress=False)
    return results


def snapshot(folder):
    return {p.relative_to(folder): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def checkpoint_of(finished, kind):
    config = next(c for c in runs.preset("smoke") if c.kind == kind)
    return str(config.folder(finished) / "model.pt")


BAD = [
    (["student", "--method", "magic"], "invalid choice"),
    (["student", "--n-per-class", "500"], "choose n_per_class <="),
    (["student", "--n-per-class", "0"], "positive integer"),
    (["teacher", "--width", "0"], "number > 0"),
    (["teacher", "--width", "wide"], "expected a number"),
    (["robust", "--sigmas", "-0.1"], "non-negative"),
    (["robust", "--sigmas", "abc"], "non-negative"),
    (["teacher", "--dataset", "mnist"], "invalid choice"),
    (["teacher", "--dataset", "cifar10"], "--data-root"),
    (["sweep", "--preset", "huge", "--results", "r"], "invalid choice"),
    (["sweep", "--preset", "smoke", "--results", "r", "--shard", "3/2"], "--shard"),
    (["sweep", "--preset", "paper", "--results", "r"], "--data-root"),
    (["noise", "missing.pt"], "cannot read a lakt checkpoint"),
    (["noise", "TEACHER", "--model", "vgg4", "--width", "0.125"], "different architecture"),
    (["noise", "TEACHER", "--width", "0.125", "--sigmas", "-1"], "non-negative"),
    (["teacher", "--dataset", "folder", "--data-root", "NOWHERE"], "does not exist"),
    (["teacher", "--dataset", "folder", "--data-root", "EMPTY"], "no train/ folder"),
    (["teacher", "--dataset", "cifar100", "--data-root", "EMPTY"], "--download"),
    (["student", "--precision", "fp8"], "invalid choice"),
    (["student", "--method", "act", "--jac-weight", "10"], "has no Jacobian term to weight"),
    (["student", "--jac-weight", "0"], "number > 0"),
    (["sweep", "--preset", "smoke", "--results", "RESULTS", "--device", "tpu"], "unknown device"),
    (["teacher", "--validation", "7"], "multiple of the 10 classes"),
    (["student", "--method", "kd", "--kd-alpha", "1.5"], "number in (0, 1]"),
    (["student", "--method", "at+ce", "--at-weight", "-1"], "number > 0"),
    (["sweep", "--preset", "smoke", "--results", "RESULTS", "--parallel", "2", "--shard", "1/2"], "drop --shard"),
]


@pytest.mark.parametrize("argv,expect", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_touches_no_results(argv, expect, finished, tmp_path, monkeypatch,
                                                              capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").mkdir()
    results = tmp_path / "RESULTS"
    shutil.copytree(finished, results)
    before = snapshot(results)
    words = {"TEACHER": checkpoint_of(results, "teacher"), "NOWHERE": str(tmp_path / "nowhere"),
             "EMPTY": str(tmp_path / "EMPTY"), "RESULTS": str(results)}
    argv = [words.get(a, a) for a in argv]
    if argv[0] in ("student", "teacher", "robust"):
        argv += ["--quiet", "--results", str(results)]
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lakt: error:") and expect in lines[0], err
    assert snapshot(results) == before


def test_no_traceback_from_a_real_process(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lakt.runs.cli", "teacher", "--dataset", "folder", "--data-root",
                           str(tmp_path / "nowhere"), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert "does not exist" in done.stderr
