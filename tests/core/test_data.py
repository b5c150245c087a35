"""Datasets, the per-class subset sampler and the on-device loader."""
import hashlib
import pickle

import numpy as np
import pytest
import torch
from torchvision import datasets
from PIL import Image

from lakt.core import data
from lakt.core.errors import LaktError


# ---------------------------------------------------------------- per-class subsets

LABELS = torch.tensor([0] * 20 + [1] * 12 + [2] * 15)


def test_subset_counts_and_stratification():
    idx = data.per_class_subset(LABELS, 5, seed=0)
    assert len(idx) == 15 and len(set(idx.tolist())) == 15
    assert torch.bincount(LABELS[idx]).tolist() == [5, 5, 5]


def test_subset_is_nested_and_deterministic():
    small, large = data.per_class_subset(LABELS, 5, seed=3), data.per_class_subset(LABELS, 10, seed=3)
    assert set(small.tolist()) <= set(large.tolist())
    assert torch.equal(small, data.per_class_subset(LABELS, 5, seed=3))
    assert not torch.equal(small, data.per_class_subset(LABELS, 5, seed=4))


def test_subset_refuses_impossible_sizes_with_the_fix():
    with pytest.raises(LaktError, match=r"class 1 has only 12 examples; choose n_per_class <= 12"):
        data.per_class_subset(LABELS, 13, seed=0)
    with pytest.raises(LaktError):
        data.per_class_subset(LABELS, 0, seed=0)


# ---------------------------------------------------------------- digits

def test_digits_are_32x32_normalised_and_split():
    ds = data.load("digits")
    assert ds.train.x.shape[1:] == (1, 32, 32) and ds.num_classes == 10 and ds.in_channels == 1
    assert len(ds.train) + len(ds.test) == 1797
    assert abs(ds.train.x.mean().item()) < 1e-4 and abs(ds.train.x.std().item() - 1) < 1e-3
    assert torch.bincount(ds.test.y).min() >= 40  # stratified test split


def test_unknown_dataset_and_missing_root_are_user_errors():
    with pytest.raises(LaktError, match="unknown dataset"):
        data.load("mnist")
    with pytest.raises(LaktError, match="--data-root"):
        data.load("cifar10", None)


# ---------------------------------------------------------------- torchvision CIFAR, offline

def _write_batch(path, images, labels, label_key):
    with open(path, "wb") as fh:
        pickle.dump({"data": images.reshape(len(images), -1), label_key: labels.tolist()}, fh)
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_cifar(root, monkeypatch, name="cifar10", per_file=6):
    """A tiny archive in torchvision's own format; md5 lists patched to the new files."""
    rng = np.random.default_rng(0)
    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    k = 10 if name == "cifar10" else 100
    label_key = "labels" if name == "cifar10" else "fine_labels"
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    lists = {}
    for attr in ("train_list", "test_list"):
        entries = []
        for fname, _ in getattr(cls, attr):
            imgs = rng.integers(0, 256, (per_file, 3, 32, 32), dtype=np.uint8)
            labels = rng.integers(0, k, per_file)
            entries.append([fname, _write_batch(folder / fname, imgs, labels, label_key)])
        lists[attr] = entries
    meta_key = cls.meta["key"]
    with open(folder / cls.meta["filename"], "wb") as fh:
        pickle.dump({meta_key: [f"class{i}" for i in range(k)]}, fh)
    meta_md5 = hashlib.md5((folder / cls.meta["filename"]).read_bytes()).hexdigest()
    for attr, entries in lists.items():
        monkeypatch.setattr(cls, attr, entries)
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": meta_md5})
    return cls


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_through_torchvision(tmp_path, monkeypatch, name):
    cls = make_cifar(tmp_path, monkeypatch, name)
    ds = data.load(name, tmp_path)
    n_train = 6 * len(cls.train_list)
    assert ds.train.x.shape == (n_train, 3, 32, 32) and len(ds.test) == 6
    assert ds.num_classes == (10 if name == "cifar10" else 100)
    raw = datasets.CIFAR10(str(tmp_path), train=True) if name == "cifar10" else None
    if raw is not None:  # normalisation is per channel with train statistics
        x = torch.from_numpy(raw.data).permute(0, 3, 1, 2).float() / 255
        mean = x.mean(dim=(0, 2, 3))
        assert ds.mean == pytest.approx(mean.tolist(), abs=1e-6)


def test_cifar_missing_without_download_names_the_fix(tmp_path):
    with pytest.raises(LaktError, match="--download"):
        data.load("cifar10", tmp_path)


def test_download_flag_is_passed_through(tmp_path, monkeypatch):
    calls = []

    def fake_download(self):  # what torchvision would fetch, made locally
        calls.append(self.root)
        if not (tmp_path / datasets.CIFAR10.base_folder).exists():
            make_cifar(tmp_path, monkeypatch)

    monkeypatch.setattr(datasets.CIFAR10, "download", fake_download)
    data.load("cifar10", tmp_path, download=True)
    assert calls and calls[0] == str(tmp_path)


# ---------------------------------------------------------------- image folders

def make_folder(root, per_class=(3, 2)):
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for c in ("cat", "dog"):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / split / c / f"{i}.jpg")
    return root


def test_image_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKT_CACHE", str(tmp_path / "cache"))
    root = make_folder(tmp_path / "imgs")
    ds = data.load("folder", root)
    assert ds.classes == ["cat", "dog"] and ds.train.x.shape == (6, 3, 32, 32) and len(ds.test) == 4
    assert ds.train.y.tolist() == [0, 0, 0, 1, 1, 1]
    cached = list((tmp_path / "cache").glob("folder-*.pt"))
    assert len(cached) == 1
    again = data.load("folder", root)  # from the cache, identical
    assert torch.equal(again.train.x, ds.train.x)


def test_image_folder_errors(tmp_path):
    with pytest.raises(LaktError, match="does not exist"):
        data.load("folder", tmp_path / "nowhere")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "test").mkdir()
    with pytest.raises(LaktError, match="no class folders"):
        data.load("folder", tmp_path / "empty")


# ---------------------------------------------------------------- loader

def test_device_loader_covers_every_example_once_per_epoch():
    split = data.Split(torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10))
    loader = data.DeviceLoader(split, batch_size=4, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 3
    seen = torch.cat([pos for pos, _, _ in batches])
    assert sorted(seen.tolist()) == list(range(10))
    for pos, x, y in batches:
        assert torch.equal(y, pos) and torch.equal(x.flatten(), pos.float())
    assert not torch.equal(seen, torch.cat([p for p, _, _ in loader]))  # reshuffled each epoch


def test_device_loader_drops_a_lone_last_image():
    split = data.Split(torch.zeros(9, 1, 1, 1), torch.zeros(9, dtype=torch.long))
    assert [len(y) for _, _, y in data.DeviceLoader(split, batch_size=4)] == [4, 4]


# ---------------------------------------------------------------- the validation split

def test_validation_split_is_stratified_disjoint_and_fixed():
    labels = torch.arange(10).repeat_interleave(60)[torch.randperm(600)]
    kept, held = data.validation_split(labels, 50)
    assert len(held) == 50 and len(kept) == 550
    assert set(kept.tolist()).isdisjoint(held.tolist()) and set(kept.tolist()) | set(held.tolist()) == set(range(600))
    assert torch.bincount(labels[held], minlength=10).tolist() == [5] * 10
    again, _ = data.validation_split(labels, 50)
    assert torch.equal(kept, again)  # a fixed split seed: the same for every run
    assert not torch.equal(held, data.validation_split(labels, 50, seed=1)[1])


def test_student_subsets_nest_inside_the_kept_images():
    labels = torch.arange(10).repeat_interleave(60)
    train = data.Split(torch.arange(600.0).view(600, 1, 1, 1), labels)
    kept, held = data.split_validation(train, 100)
    held_ids = set(held.x.flatten().tolist())
    small = kept.subset(data.per_class_subset(kept.y, 5, seed=2))
    large = kept.subset(data.per_class_subset(kept.y, 10, seed=2))
    assert set(small.x.flatten().tolist()) <= set(large.x.flatten().tolist())
    assert held_ids.isdisjoint(large.x.flatten().tolist())
    assert data.split_validation(train, 0) == (train, None)


def test_impossible_validation_sizes_name_the_fix():
    with pytest.raises(LaktError, match="multiple of the 3 classes"):
        data.validation_split(LABELS, 10)
    with pytest.raises(LaktError, match="choose a smaller validation size"):
        data.validation_split(LABELS, 36)
