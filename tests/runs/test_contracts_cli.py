"""The ``lakt`` command's contract, tested over generated argument lists.

Each generated command line is a valid, tiny one (digits, width 1/16, one epoch) with
one thing made wrong: a number out of range or not a number, a name that is not a
choice, a device this machine lacks, a file where a folder belongs or the reverse, a
file that is not a checkpoint, an image folder torchvision would refuse, an option the
command does not have. Whatever the mix, the command must end with exit code 2 and
exactly one line ``lakt: error: ...`` on stderr -- no traceback, no warning before it --
and must write nothing.
"""
from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import pytest
from folders import image_folder
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakt.core import models
from lakt.core.methods import METHODS
from lakt.runs.cli import main
from lakt.runs.presets import PRESETS

TRAINING = ("teacher", "student", "robust")
DEVICES = ("teacher", "student", "robust", "sweep")
DATA = ("teacher", "student", "robust", "noise")

# flag -> (commands that have it, values that are wrong for it)
NUMBERS = {
    "--epochs": (TRAINING, ["0", "-1", "1.5", "x", ""]),
    "--batch-size": (TRAINING, ["0", "1", "-2", "x"]),
    "--width": (TRAINING + ("noise",), ["0", "-0.5", "nan", "inf", "x"]),
    "--validation": (TRAINING, ["-1", "7", "2.5", "x"]),
    "--seed": (TRAINING + ("noise",), ["x", "1.5"]),
    "--n-per-class": (("student",), ["0", "-1", "1000", "x"]),
    "--noise-sigma": (("student",), ["0", "-1", "nan"]),
    "--jac-weight": (("student",), ["0", "-1", "x"]),
    "--kd-alpha": (("student",), ["0", "1.5", "-0.2", "x"]),
    "--fd-fraction": (("student",), ["0", "1.5", "x"]),
    "--fd-step": (("student",), ["0", "-1"]),
    "--teacher-epochs": (("student",), ["0", "x"]),
    "--at-weight": (("student",), ["0", "-3"]),
    "--penalty": (("robust",), ["-1", "inf", "x"]),
    "--sigmas": (("robust", "noise"), ["-0.1", "x", "inf"]),
    "--trials": (("robust", "noise"), ["0", "-1", "x"]),
}
CHOICES = {
    "--method": (("student",), list(METHODS)),
    "--dataset": (DATA + ("sweep", "status"), ["digits", "cifar10", "cifar100", "folder"]),
    "--precision": (DEVICES, ["fp32", "bf16"]),
    "--jacobian-form": (("student",), ["plain", "normalized"]),
    "--output": (("student",), ["label", "top"]),
    "--model": (("noise",), ["vgg9", "vgg4"]),
    "--preset": (("sweep", "status"), list(PRESETS)),
}
ABSENT_DEVICES = ["cuda", "cuda:3", "mps", "tpu", "gpu0", "cuda:-1"] if not torch.cuda.is_available() else [
    "tpu", "gpu0", f"cuda:{torch.cuda.device_count()}"]


pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """Files and folders the faults point at, made once; decoded images cached in the module's folder."""
    root = tmp_path_factory.mktemp("cli-contract")
    (root / "a-file").write_text("not a folder, not a checkpoint\n")
    (root / "a-folder").mkdir()
    torch.save({"weights": torch.zeros(3)}, root / "tensors.pt")
    checkpoint = root / "model.pt"
    torch.save({"model": models.vgg9(10, width=1 / 16, in_channels=1).state_dict()}, checkpoint)
    folders = {
        "an empty class": image_folder(root / "f1", {"cat": 2, "dog": 0}, {"cat": 2, "dog": 2}),
        "a class without test images": image_folder(root / "f2", {"cat": 2, "dog": 2}, {"cat": 2, "dog": 0}),
        "a class only in train": image_folder(root / "f3", {"cat": 2, "dog": 2, "cow": 2}, {"cat": 2, "dog": 2}),
        "one class": image_folder(root / "f4", {"cat": 2}, {"cat": 2}),
        "no test split": image_folder(root / "f5", {"cat": 2, "dog": 2}, {}),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAKT_CACHE", str(root / "cache"))
        yield Place({"root": root, "file": str(root / "a-file"), "folder": str(root / "a-folder"),
               "nowhere": str(root / "nowhere"), "tensors": str(root / "tensors.pt"), "checkpoint": str(checkpoint),
               "image folders": folders})


class Place(dict):
    """The fixture's paths, shown in a failing case as one short line."""

    def __repr__(self):
        return f"Place({str(self['root'])!r})"


def base(command: str, results: str, place: dict) -> list[str]:
    """A valid, tiny command line (digits, width 1/16, one epoch)."""
    tiny = ["--width", "0.0625", "--quiet", "--results", results]
    return {
        "teacher": ["teacher", "--epochs", "1", *tiny],
        "student": ["student", "--epochs", "1", "--teacher-epochs", "1", "--n-per-class", "2", *tiny],
        "robust": ["robust", "--epochs", "1", "--trials", "1", "--sigmas", "0", *tiny],
        "noise": ["noise", place["checkpoint"], "--width", "0.0625", "--trials", "1", "--sigmas", "0"],
        "sweep": ["sweep", "--preset", "smoke", "--results", results, "--quiet"],
        "status": ["status", "--results", results, "--preset", "smoke"],
    }[command]


@st.composite
def faults(draw):
    """(command, what to do to its valid command line): exactly one thing made wrong."""
    kind = draw(st.sampled_from(["number", "choice", "device", "results", "data root", "image folder",
                                 "checkpoint", "unknown option", "unweighted term"]))
    if kind == "number":
        flag = draw(st.sampled_from(sorted(NUMBERS)))
        commands, values = NUMBERS[flag]
        return draw(st.sampled_from(commands)), ("append", [flag, draw(st.sampled_from(values))])
    if kind == "choice":
        flag = draw(st.sampled_from(sorted(CHOICES)))
        commands, choices = CHOICES[flag]
        value = draw(st.text("abcdefgilmnoprstuv0123456789-+:.", min_size=1, max_size=8).filter(
            lambda v: v not in choices))
        return draw(st.sampled_from(commands)), ("append", [f"{flag}={value}"])
    if kind == "device":
        return draw(st.sampled_from(DEVICES)), ("append", ["--device", draw(st.sampled_from(ABSENT_DEVICES))])
    if kind == "results":
        command = draw(st.sampled_from(TRAINING + ("sweep", "status")))
        return command, ("results", draw(st.sampled_from(["file"] + (["nowhere"] if command == "status" else []))))
    if kind == "data root":
        return (draw(st.sampled_from(DATA)),
                ("append", ["--dataset", draw(st.sampled_from(["folder", "cifar10"])), "--data-root",
                            draw(st.sampled_from(["{file}", "{nowhere}"]))]))
    if kind == "image folder":
        which = draw(st.sampled_from(["an empty class", "a class without test images", "a class only in train",
                                      "one class", "no test split"]))
        return draw(st.sampled_from(TRAINING)), ("image folder", which)
    if kind == "checkpoint":
        return "noise", ("checkpoint", draw(st.sampled_from(["file", "folder", "nowhere", "tensors", "architecture"])))
    if kind == "unweighted term":  # a Jacobian weight for a method without a Jacobian term
        method = draw(st.sampled_from([m for m in METHODS if "jac" not in m]))
        return "student", ("append", ["--method", method, "--jac-weight", "2"])
    return draw(st.sampled_from(sorted({"teacher", "student", "robust", "noise", "sweep", "status"}))), (
        "append", [draw(st.sampled_from(["--frobnicate", "--epoch-count=3", "-z"]))])


def apply(argv: list[str], fault, place: dict) -> list[str]:
    action, what = fault
    if action == "append":
        return argv + [w.format(**{k: v for k, v in place.items() if isinstance(v, str)}) for w in what]
    if action == "results":
        return [place[what] if a == argv[argv.index("--results") + 1] else a for a in argv]
    if action == "image folder":
        return argv + ["--dataset", "folder", "--data-root", place["image folders"][what]]
    if what == "architecture":  # a real checkpoint, read as another width
        return argv + ["--width", "0.125"]
    return [argv[0], place[what], *argv[2:]]


def snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "cache" not in p.parts}


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(fault=faults())
def test_every_wrong_command_line_is_one_error_line_exit_2_and_writes_nothing(place, fault):
    command, change = fault
    results = Path(tempfile.mkdtemp(dir=place["root"])) / "results"
    argv = apply(base(command, str(results), place), change, place)
    before = snapshot(place["root"])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    lines = err.getvalue().strip().splitlines()
    assert code == 2, (argv, code, out.getvalue(), err.getvalue())
    assert len(lines) == 1 and lines[0].startswith("lakt: error: "), (argv, err.getvalue())
    assert "Traceback" not in out.getvalue() + err.getvalue()
    assert not results.exists() or not any(results.iterdir()), (argv, sorted(results.rglob("*")))
    assert snapshot(place["root"]) == before, argv
    shutil.rmtree(results.parent)
