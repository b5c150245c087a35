"""The lakt command: help for every subcommand, one-line errors with exit code 2.

Every bad input is tried against a results folder that already holds finished runs,
which must come out byte-for-byte unchanged.
"""
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lakt import runs
from lakt.runs.cli import build_parser, main

pytestmark = pytest.mark.slow  # real processes, real file systems

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
    # every one of these would otherwise be a traceback (or silence)
    (["sweep", "--preset", "smoke", "--results", "AFILE"], "is a file, not a folder"),
    (["sweep", "--preset", "smoke", "--results", "/proc/lakt-results"], "cannot be created there"),
    (["teacher", "--epochs", "1", "--seed", "7", "READ_ONLY"], "read-only"),
    (["teacher", "--epochs", "1", "--seed", "7", "DISK_FULL"], "the disk is full"),
    (["teacher", "--dataset", "folder", "--data-root", "MISMATCH"], "class folders of test/ and train/ differ"),
    (["teacher", "--dataset", "folder", "--data-root", "ONECLASS"], "at least 2 classes"),
    (["sweep", "--preset", "smoke", "--results", "RESULTS", "--device", "mps"], "MPS (Apple GPU) is not available"),
    (["teacher", "--device", "cuda:3"], "CUDA device(s); use --device cpu"),
    (["sweep", "--preset", "smoke", "--results", "RESULTS", "--data-root", "NOWHERE"], "does not exist"),
    (["noise", "TEACHER", "--width", "0.125", "--data-root", "NOWHERE"], "does not exist"),
    (["sweep", "--preset", "cifar10-cpu-v3", "--results", "RESULTS", "--data-root", "CATSDOGS"],
     "is defined on data folder:"),
]


def image_folder(root, classes=("cat", "dog"), test_classes=None, per_class=2):
    """ROOT/{train,test}/<class>/*.jpg of random 32x32 images."""
    rng = np.random.default_rng(0)
    for split, names in (("train", classes), ("test", test_classes or classes)):
        for c in names:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / split / c / f"{i}.jpg")
    return root


def _under(fd_or_path, folder) -> bool:
    path = os.readlink(f"/proc/self/fd/{fd_or_path}") if isinstance(fd_or_path, int) else os.fspath(fd_or_path)
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def simulate_full_disk(monkeypatch, folder):
    """Every write into ``folder`` fails as on a full disk (ENOSPC); see also test_real_full_and_read_only_filesystems."""
    write = os.write

    def full(fd, data):
        if _under(fd, folder):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(fd, data)
    monkeypatch.setattr(os, "write", full)


def simulate_read_only(monkeypatch, folder):
    """``folder`` reads as on a filesystem mounted read-only (what access(2) and statvfs(2) report there)."""
    access, statvfs = os.access, os.statvfs
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: (not (mode & os.W_OK) if _under(p, folder)
                                                              else access(p, mode, **kw)))
    monkeypatch.setattr(os, "statvfs", lambda p: (os.statvfs_result((4096, 4096, 0, 0, 0, 0, 0, 0, os.ST_RDONLY,
                                                                     255)) if _under(p, folder) else statvfs(p)))


@pytest.mark.parametrize("argv,expect", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_touches_no_results(argv, expect, finished, tmp_path, monkeypatch,
                                                              capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAKT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "AFILE").write_text("not a folder\n")
    results = tmp_path / "RESULTS"
    shutil.copytree(finished, results)
    before = snapshot(results)
    words = {"TEACHER": checkpoint_of(results, "teacher"), "NOWHERE": str(tmp_path / "nowhere"),
             "EMPTY": str(tmp_path / "EMPTY"), "RESULTS": str(results), "AFILE": str(tmp_path / "AFILE")}
    if "MISMATCH" in argv:
        words["MISMATCH"] = str(image_folder(tmp_path / "MISMATCH", test_classes=("cat", "cow")))
    if "ONECLASS" in argv:
        words["ONECLASS"] = str(image_folder(tmp_path / "ONECLASS", classes=("cat",)))
    if "CATSDOGS" in argv:
        words["CATSDOGS"] = str(image_folder(tmp_path / "CATSDOGS"))
    if "READ_ONLY" in argv:
        simulate_read_only(monkeypatch, results)
    if "DISK_FULL" in argv:
        simulate_full_disk(monkeypatch, results)
    argv = [words.get(a, a) for a in argv if a not in ("READ_ONLY", "DISK_FULL")]
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
    assert not (tmp_path / "AFILE").is_dir() and not list(tmp_path.glob("~*"))


def test_no_traceback_from_a_real_process(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lakt.runs.cli", "teacher", "--dataset", "folder", "--data-root",
                           str(tmp_path / "nowhere"), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert "does not exist" in done.stderr


def test_tilde_is_expanded_in_results_and_data_root(finished, tmp_path, monkeypatch, capsys):
    """`--results '~/r'` (quoted, so no shell expands it) means $HOME/r, not a folder named '~'."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(finished, tmp_path / "home" / "r")
    before = snapshot(tmp_path / "home" / "r")
    teacher = runs.preset("smoke")[0]
    code = main(["teacher", "--width", "0.125", "--epochs", str(teacher.epochs), "--batch-size",
                 str(teacher.batch_size), "--results", "~/r", "--quiet"])  # the finished teacher, found
    assert code == 0 and str(teacher.folder(tmp_path / "home" / "r")) in capsys.readouterr().out
    assert not (tmp_path / "~").exists() and snapshot(tmp_path / "home" / "r") == before
    assert main(["noise", "~/r/" + str(Path(checkpoint_of(tmp_path / "home" / "r", "teacher")).relative_to(
        tmp_path / "home" / "r")), "--width", "0.125", "--trials", "1", "--sigmas", "0"]) == 0


def test_an_unwritable_decoded_image_cache_is_one_warning_not_an_error(tmp_path):
    (tmp_path / "afile").write_text("")
    root = image_folder(tmp_path / "imgs")
    env = {**os.environ, "LAKT_CACHE": str(tmp_path / "afile" / "cache")}
    done = subprocess.run([sys.executable, "-m", "lakt.runs.cli", "teacher", "--dataset", "folder", "--data-root",
                           str(root), "--epochs", "1", "--width", "0.125", "--batch-size", "2", "--quiet",
                           "--results", str(tmp_path / "r")], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lakt: not caching the decoded images"), done.stderr


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs user namespaces (unshare -rm) to mount a tmpfs; "
                                                 "the simulated cases of the bad-input table still run")
@pytest.mark.parametrize("case", ["full", "read-only"])
def test_real_full_and_read_only_filesystems(case, tmp_path):
    """A real 300 kB tmpfs, and a real read-only one, in a private mount namespace."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    cli = f"{sys.executable} -m lakt.runs.cli teacher --epochs 1 --width 0.125 --quiet --results {mount}/r"
    setup = (f"mount -t tmpfs -o size=300k tmpfs {mount}" if case == "full" else
             f"mount -t tmpfs tmpfs {mount} && mkdir {mount}/r && mount -o remount,ro {mount}")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", f"{setup} && {cli}; echo rc=$?; find {mount} -type f"],
                          capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lakt: error: cannot write"), done.stderr
    assert ("the disk is full" if case == "full" else "read-only") in lines[0]
    assert done.stdout.split() == ["rc=2"]  # and no file written


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
    cached = {c.key for c, _ in runs.finished(smoke, finished)}
    assert cached and any(c.key not in cached for c in smoke)  # some runs from earlier, some to train
    code, out, err = run_cli(["sweep", "--preset", "smoke", "--results", str(results), "--quiet"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{len(smoke)} runs finished") and lines[1].split() == ["run", "test", "acc", "%",
                                                                                    "seconds", "trained"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert len(lines) == 2 + len(smoke)
    for config in smoke:
        metrics = runs.load_result(config, results)
        assert rows[config.name] == [f"{metrics['test_acc']:.2f}", f"{metrics['seconds']:.1f}",
                                     "earlier" if config.key in cached else "now"]
