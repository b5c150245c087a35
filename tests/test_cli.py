"""The lakt command: help for every subcommand, one-line errors with exit code 2.

Every bad input is tried against a results folder that already holds finished runs,
which must come out byte-for-byte unchanged.
"""
import shutil
import subprocess
import sys

import pytest

from lakt import runs
from lakt.runs.cli import build_parser, main

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


# lakt student names its teacher, trains one only when asked, saves its weights on request;
# lakt sweep ends with a table; --help shows the defaults.

SMOKE_TEACHER = ["--width", "0.125", "--teacher-epochs", "2", "--batch-size", "32"]  # the smoke preset's teacher
SMOKE_STUDENT = SMOKE_TEACHER + ["--epochs", "1", "--n-per-class", "5", "--method", "ce", "--quiet"]


def run_cli(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def config_of(argv):
    from lakt.runs.cli import _config
    return _config(build_parser().parse_args(argv))


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_help_shows_every_default(sub, capsys):
    parser = build_parser()
    code, out, _ = run_cli([sub, "--help"], capsys)
    text = " ".join(out.split())  # undo the line wrapping
    subparser = next(a for a in parser._actions if a.dest == "command").choices[sub]
    defaults = [a for a in subparser._actions if a.option_strings and a.default not in (None, False, "==SUPPRESS==")]
    assert code == 0 and (defaults or sub == "presets")
    for action in defaults:
        assert f"(default: {action.default})" in text, action.dest
    assert "(default: None)" not in text and "(default: False)" not in text


def test_student_names_its_teacher_and_keeps_its_weights_on_request(finished, tmp_path, capsys):
    from lakt.core.models import vgg4
    from lakt.core.train import load_checkpoint

    results = tmp_path / "results"
    shutil.copytree(finished, results)
    teacher = runs.preset("smoke")[0]
    teacher_files = snapshot(teacher.folder(results))
    argv = ["student", *SMOKE_STUDENT, "--save-model", "--results", str(results)]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    known = runs.load_result(teacher, results)
    assert out.splitlines()[0] == f"teacher: {teacher.name} (key {teacher.key}), test accuracy {known['test_acc']:.2f}%"
    assert snapshot(teacher.folder(results)) == teacher_files  # used, not retrained
    student = config_of(argv)
    assert student.teacher == teacher and student.save_model
    metrics = runs.load_result(student, results)
    assert f"test accuracy {metrics['test_acc']:.2f}%" in out
    load_checkpoint(vgg4(num_classes=10, width=0.125, in_channels=1), student.folder(results) / "model.pt")


def test_student_without_its_teacher_names_the_command_and_writes_nothing(finished, tmp_path, capsys):
    import shlex

    results = tmp_path / "results"
    shutil.copytree(finished, results)
    before = snapshot(results)
    argv = ["student", *SMOKE_STUDENT, "--teacher-epochs", "3", "--results", str(results)]  # no 3-epoch teacher
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    line, = err.strip().splitlines()
    wanted = config_of(argv).teacher
    assert line.startswith(f"lakt: error: no finished teacher run {wanted.name} (3 epochs, key {wanted.key})")
    assert line.endswith(", or add --train-teacher")
    assert snapshot(results) == before
    command = shlex.split(line.split("train it with '")[1].split("'")[0])
    assert command[:2] == ["lakt", "teacher"]
    assert config_of(command[1:]) == wanted  # the named command trains exactly that teacher


def test_train_teacher_trains_the_missing_teacher_first(tmp_path, capsys):
    argv = ["student", *SMOKE_STUDENT, "--teacher-epochs", "1", "--train-teacher", "--results", str(tmp_path)]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    teacher = config_of(argv).teacher
    known = runs.load_result(teacher, tmp_path)
    assert known is not None and known["config"]["epochs"] == 1
    lines = out.splitlines()
    assert lines[0] == f"teacher: {teacher.name} (key {teacher.key}) is not in {tmp_path}; training it first"
    assert lines[1] == f"teacher: {teacher.name} (key {teacher.key}), test accuracy {known['test_acc']:.2f}%"


def test_sweep_ends_with_a_table_of_what_it_finished(finished, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(finished, results)
    smoke = runs.preset("smoke")
    mine = smoke[1::4]  # shard 2/4: the student already in `finished`, then ones to train
    cached = {c.key for c, _ in runs.finished(smoke, finished)}
    assert mine[0].key in cached and any(c.key not in cached for c in mine)
    code, out, err = run_cli(["sweep", "--preset", "smoke", "--results", str(results), "--shard", "2/4", "--quiet"],
                             capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{len(mine)} runs finished") and lines[1].split() == ["run", "test", "acc", "%",
                                                                                   "seconds", "trained"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert len(lines) == 2 + len(mine)
    for config in mine:
        metrics = runs.load_result(config, results)
        assert rows[config.name] == [f"{metrics['test_acc']:.2f}", f"{metrics['seconds']:.1f}",
                                     "earlier" if config.key in cached else "now"]
