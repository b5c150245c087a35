"""A run's key includes the data it trained on.

The same results folder used with two data roots must keep their runs apart; the
fingerprint is a digest of the data itself (not of where it lies), stable across loads
and the decoded-image cache; a config that does not know its data refuses to name a key.
"""
import dataclasses
import os
import shutil
import stat

import numpy as np
import pytest
from PIL import Image

from lakt import LaktError, runs
from lakt.core import data
from lakt.core.files import atomic_save, atomic_write_json


def image_folder(root, seed=0, classes=("cat", "dog"), per_class=3):
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / split / c / f"{i}.jpg")
    return root


def test_fingerprints_name_the_data_not_its_place(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKT_CACHE", str(tmp_path / "cache"))
    a = data.load("folder", image_folder(tmp_path / "a"))
    moved = shutil.copytree(tmp_path / "a", tmp_path / "elsewhere" / "a")
    again = data.load("folder", moved)  # another path: a cache miss, decoded again
    cached = data.load("folder", tmp_path / "a")  # a cache hit
    other = data.load("folder", image_folder(tmp_path / "b", seed=1))
    assert a.fingerprint.startswith("folder:") and a.fingerprint == again.fingerprint == cached.fingerprint
    assert other.fingerprint != a.fingerprint
    img = next((tmp_path / "a" / "test" / "dog").iterdir())  # one test image changed: other data
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    assert data.load("folder", tmp_path / "a").fingerprint != a.fingerprint
    assert data.load_digits().fingerprint == data.digits_fingerprint() != a.fingerprint


def test_an_unwritable_cache_is_skipped_with_one_warning(tmp_path, monkeypatch, capsys):
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("LAKT_CACHE", str(tmp_path / "afile" / "cache"))  # cannot be created, even by root
    root = image_folder(tmp_path / "a")
    first = data.load("folder", root)
    second = data.load("folder", root)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not caching the decoded images" in err[0] and "LAKT_CACHE" in err[0]
    assert first.fingerprint == second.fingerprint and len(first.train) == 6


def test_the_key_includes_the_data():
    teacher = runs.RunConfig("teacher", "folder", data="folder:0000000000000000")
    other = dataclasses.replace(teacher, data="folder:1111111111111111")
    assert teacher.key != other.key
    assert runs.RunConfig("teacher").data == data.digits_fingerprint()  # digits: known when built
    with pytest.raises(LaktError, match="does not know its data"):
        runs.RunConfig("teacher", "folder").key
    with pytest.raises(LaktError, match="not one of dataset"):
        runs.RunConfig("teacher", "folder", data="digits:0000000000000000")


def test_one_results_folder_two_data_roots_never_mix(tmp_path, monkeypatch):
    """The issue's case: the same --results with another data root used to return the other's runs."""
    monkeypatch.setenv("LAKT_CACHE", str(tmp_path / "cache"))
    a, b = image_folder(tmp_path / "a"), image_folder(tmp_path / "b", seed=1)
    teacher = runs.RunConfig("teacher", "folder", "vgg9", 0.125, epochs=1, batch_size=4, save_model=True)
    results = tmp_path / "runs"
    ran_a = runs.run(teacher, results, data_root=a, progress=False)
    assert runs.load_result(teacher, results, data_root=b) is None
    ran_b = runs.run(teacher, results, data_root=b, progress=False)
    assert ran_a["key"] != ran_b["key"] and len(list((results / "teacher").iterdir())) == 2
    assert ran_a["config"]["data"] == data.load("folder", a).fingerprint
    assert runs.run(teacher, results, data_root=a, progress=False) == ran_a  # each finds its own


def test_a_preset_pinned_to_its_data_refuses_other_data(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKT_CACHE", str(tmp_path / "cache"))
    pinned = runs.get_preset("cifar10-cpu-v3").teacher("folder")
    assert pinned.data == "folder:9331aba37042b53e"  # the migrated results/ are keyed by it
    with pytest.raises(LaktError, match="is defined on data folder:9331aba37042b53e"):
        runs.run(pinned, tmp_path / "runs", data_root=image_folder(tmp_path / "a"), progress=False)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_follow_the_umask_and_stay_atomic(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_json({"a": 1}, tmp_path / "m.json")
        atomic_save({"x": 1}, tmp_path / "m.pt")
    finally:
        os.umask(old)
    for name in ("m.json", "m.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.pt"]  # no temporaries left
