"""The lakt command: help for every subcommand, one-line errors with exit code 2."""
import subprocess
import sys

import pytest

from lakt.cli import main

SUBCOMMANDS = ["teacher", "student", "robust", "noise", "sweep", "presets"]


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_help(sub, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([sub, "--help"])
    assert exit_.value.code == 0 and "usage: lakt" in capsys.readouterr().out


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
]


@pytest.mark.parametrize("argv,expect", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(argv, expect, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv + ["--quiet"] if argv[0] in ("student", "teacher", "robust") else argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lakt: error:") and expect in lines[0], err
    assert not any(p.name == "runs" and any(p.iterdir()) for p in tmp_path.iterdir() if p.is_dir())


def test_no_traceback_from_a_real_process(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lakt.cli", "teacher", "--dataset", "folder", "--data-root",
                           str(tmp_path / "nowhere"), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert "does not exist" in done.stderr
