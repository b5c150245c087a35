"""The validation layer's own promises: what each message says is what is true.

The contract tests (test_contracts*.py) check that every bad input ends in one
LaktError line; these check the words -- the example, class folder, file or parameter
named -- and the parts that generated inputs do not reach: image folders, who trained a
sweep's runs, the chapters' parameters and results folders.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from folders import image_folder
import torch

from lakt import LaktError
from lakt.analysis import parameters
from lakt.core import checks, data, models
from lakt.runs import cli, status



def test_a_non_finite_input_is_named_by_its_example(tiny_vgg):
    x = torch.randn(5, 3, 32, 32, dtype=torch.float64)
    x[3, 1, 4, 4] = float("inf")
    with pytest.raises(LaktError, match=r"example 3 \(of 5\) holds an infinity"):
        checks.check_inputs(tiny_vgg, None, x, torch.zeros(5, dtype=torch.long))
    x[1, 0, 0, 0] = float("nan")
    with pytest.raises(LaktError, match=r"example 1 \(of 5\) holds a NaN"):
        checks.check_inputs(tiny_vgg, None, x, torch.zeros(5, dtype=torch.long))


def test_huge_finite_inputs_are_not_called_non_finite(tiny_vgg):
    x = torch.full((2, 3, 32, 32), 1e306, dtype=torch.float64)  # their sum overflows; no value does
    checks.check_inputs(tiny_vgg, None, x, torch.zeros(2, dtype=torch.long))


def test_labels_are_checked_against_the_output_count_by_the_forward_the_step_makes(tiny_vgg):
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    y = checks.check_inputs(tiny_vgg, None, x, torch.tensor([1, 10]))
    with pytest.raises(LaktError, match="label 10 is out of range for the student's 10 outputs"):
        with checks.output_checks(tiny_vgg, None, None, y):
            tiny_vgg(x)
    y = checks.check_inputs(tiny_vgg, None, x, torch.tensor([1, 9]))
    with checks.output_checks(tiny_vgg, None, None, y):
        tiny_vgg(x)
    with pytest.raises(LaktError, match="label 12 is out of range for the teacher's 10 outputs"):
        with checks.output_checks(tiny_vgg, None, 10, torch.tensor([12])):  # cached teacher logits give k
            pass


def test_a_split_is_refused_by_the_index_of_its_bad_image():
    x = torch.zeros(6, 1, 32, 32)
    x[4, 0, 0, 0] = float("nan")
    with pytest.raises(LaktError, match=r"train: image 4 \(of 6\) holds a NaN"):
        data.as_split((x, torch.zeros(6, dtype=torch.long)), "train")
    with pytest.raises(LaktError, match="test is empty"):
        data.as_split(data.Split(x[:0], torch.zeros(0, dtype=torch.long)), "test")


@pytest.mark.parametrize("train,test,named", [
    ({"cat": 2, "dog": 0}, {"cat": 2, "dog": 2}, "train/dog"),
    ({"cat": 2, "dog": 2}, {"cat": 0, "dog": 2}, "test/cat"),
    ({"cat": 0, "dog": 2}, {"cat": 2, "dog": 0}, "train/cat, test/dog"),
])
def test_an_image_folder_with_an_empty_class_is_refused_by_name(tmp_path, train, test, named):
    root = image_folder(tmp_path / "images", train, test)
    with pytest.raises(LaktError, match=f"empty class folders? under .*: {named};"):
        data.load_folder(root)


def test_a_class_in_one_split_only_is_named_with_the_split(tmp_path):
    root = image_folder(tmp_path / "images", {"cat": 2, "dog": 2, "cow": 1}, {"cat": 2, "dog": 2, "emu": 1})
    with pytest.raises(LaktError, match=r"only in train/: cow; only in test/: emu"):
        data.load_folder(root)


def test_a_complete_image_folder_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKT_CACHE", str(tmp_path / "cache"))
    ds = data.load_folder(image_folder(tmp_path / "images", {"cat": 2, "dog": 3}, {"cat": 1, "dog": 1}))
    assert ds.classes == ["cat", "dog"] and len(ds.train) == 5 and len(ds.test) == 2


def test_a_file_where_a_folder_belongs_is_called_a_file(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(LaktError, match="is a file, not a folder"):
        status.status(a_file)
    with pytest.raises(LaktError, match="is a file, not a folder"):
        data.load_folder(a_file)


@pytest.mark.parametrize("make,says", [
    (lambda p: p.write_text("hello"), "it is not a checkpoint"),
    (lambda p: p.mkdir(), "it is a folder, not a file"),
    (lambda p: None, "it does not exist"),
    (lambda p: torch.save({"weights": torch.zeros(1)}, p), "holds no model weights"),
])
def test_a_user_named_checkpoint_is_said_to_be_what_it_is(tmp_path, capsys, make, says):
    path = tmp_path / "named.pt"
    make(path)
    with pytest.raises(LaktError, match=says) as err:
        checks.check_checkpoint_file(path)
    assert "recomputed" not in str(err.value) and "recomputed" not in capsys.readouterr().err


def test_a_sweep_summary_tells_this_process_from_another(tmp_path):
    me, pid = socket.gethostname(), os.getpid()
    (tmp_path / "runs.log").write_text(
        f"2026-01-01T00:00:00 {me} {pid} start k1 one\n"
        f"2026-01-01T00:00:01 {me} {pid} finish k1 one\n"
        f"2026-01-01T00:00:02 {me} {pid + 1} finish k2 two\n"
        f"2026-01-01T00:00:03 other-host {pid} finish k3 three\n")
    done = [{"key": k} for k in ("k0", "k1", "k2", "k3")]
    assert cli._trained_by(done, {"k0"}, tmp_path) == ["earlier", "now", "other", "other"]


def test_chapter_parameters_are_checked_like_flags():
    parameters.check_parameters(preset="smoke", dataset="digits", seed=0, seeds=[0, 1], device="cpu",
                                data_root=None, results="../runs", samples=None)
    for bad, says in [({"seed": "zero"}, "parameter seed must be a whole number"),
                      ({"seeds": [0, "1"]}, "parameter seeds must be a list"),
                      ({"preset": "smok"}, "parameter preset: unknown preset 'smok'"),
                      ({"real_preset": 3}, "parameter real_preset: unknown preset 3"),
                      ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
                      ({"device": "tpu"}, "unknown device 'tpu'"),
                      ({"data_root": "/nowhere/at/all"}, "does not exist"),
                      ({"results": None}, "parameter results must be a path")]:
        with pytest.raises(LaktError, match=says) as err:
            parameters.check_parameters(**bad)
        assert "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_an_absent_device_is_refused_with_the_chapters_spelling():
    with pytest.raises(LaktError, match="0 CUDA device.*use -p device cpu"):
        parameters.check_parameters(device="cuda")


def test_results_are_found_from_any_working_directory(tmp_path, monkeypatch):
    if parameters.REPOSITORY is None:
        pytest.skip("lakt is installed outside its repository")
    monkeypatch.chdir(tmp_path)
    assert parameters.find_results() == parameters.REPOSITORY / "results"
    assert parameters.find_results("../results") == parameters.REPOSITORY / "results"
    assert parameters.results_folder("../runs") == parameters.REPOSITORY / "runs"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LaktError, match=f"results folder '{empty}' holds no finished run.*set real_results"):
        parameters.find_results(empty)
    with pytest.raises(LaktError, match=f"'{tmp_path / 'none'}' does not exist; set real_results"):
        parameters.find_results(tmp_path / "none")
    (tmp_path / "f").write_text("x")
    with pytest.raises(LaktError, match="is a file, not a folder"):
        parameters.results_folder(tmp_path / "f")
