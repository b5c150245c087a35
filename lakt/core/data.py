"""Datasets as tensors, per-class low-data subsets, and an on-device loader.

Every dataset is returned as a :class:`Split` pair of normalised image tensors
[N, C, 32, 32] with integer labels. Sources:

* ``cifar10`` / ``cifar100`` through torchvision (``download=`` passed through);
* ``folder``: an ImageFolder layout ``ROOT/{train,test}/<class>/*.jpg``, e.g. the
  CIFAR-10 (JPEG) copy; decoded once and cached as a tensor file;
* ``digits``: scikit-learn's 8x8 handwritten digits, the offline default. They are
  upsampled (bilinear) to 32x32 so the paper's architectures apply unchanged
  (five 2x2 poolings need 32 pixels); one grey channel.

Normalisation is the paper's per-channel mean/std, measured on the training split
and applied to both splits.

Every loaded dataset carries a :attr:`Dataset.fingerprint`, ``"<kind>:<digest>"``: a
digest of exactly the data a run trains and is tested on. The run cache puts it in
every run's key (``lakt.runs.config``), so a results folder can never hand back a run
that was trained on other data.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_split
from .errors import LaktError, require
from .files import warn

DATASETS = ("digits", "cifar10", "cifar100", "folder")


@dataclass
class Split:
    """Normalised images [N, C, H, W] (float32) and labels [N] (int64)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, indices: torch.Tensor) -> "Split":
        return Split(self.x[indices], self.y[indices])

    def to(self, device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Dataset:
    """A train/test pair with the facts models need."""

    name: str
    train: Split
    test: Split
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fingerprint: str = ""  # "<kind>:<digest>" of the data as loaded (see the module docstring)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.train.x.shape[1]


def normalise(train_u8: torch.Tensor, test_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    """Scale uint8/float images [N, C, H, W] to [0, 1] and standardise per channel with train statistics."""
    train = train_u8.float() / (255.0 if train_u8.dtype == torch.uint8 else 1.0)
    test = test_u8.float() / (255.0 if test_u8.dtype == torch.uint8 else 1.0)
    mean = train.mean(dim=(0, 2, 3))
    std = train.std(dim=(0, 2, 3))
    shape = (1, -1, 1, 1)
    train = (train - mean.view(shape)) / std.view(shape)
    test = (test - mean.view(shape)) / std.view(shape)
    return train, test, tuple(mean.tolist()), tuple(std.tolist())


def digest(*parts) -> str:
    """A short sha256 of arrays/tensors (dtype, shape and bytes) and strings, in order."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            h.update(b"s" + part.encode() + b"\0")
            continue
        array = np.ascontiguousarray(part.cpu().numpy() if isinstance(part, torch.Tensor) else np.asarray(part))
        h.update(f"a{array.dtype.str}{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()[:16]


def _build(name, x_train, y_train, x_test, y_test, classes, fingerprint) -> Dataset:
    train, test, mean, std = normalise(x_train, x_test)
    return Dataset(name, Split(train.contiguous(), torch.as_tensor(y_train, dtype=torch.long)),
                   Split(test.contiguous(), torch.as_tensor(y_test, dtype=torch.long)), list(classes), mean, std,
                   fingerprint)


def as_split(data, what: str = "data") -> Split:
    """A :class:`Split` from a Split, an ``(x, y)`` pair of tensors, or a torch ``Dataset`` of (x, y).

    Lets :func:`lakt.fit` and :func:`lakt.noise_robustness` take the data a PyTorch user
    already has; images must already be float tensors [N, C, H, W] (normalised as the
    model expects), labels integers. The values are checked too (:func:`lakt.core.checks.check_split`):
    an empty split or a NaN image would otherwise train on nothing or score 0.0 +- 0.0.
    """
    if isinstance(data, Split):
        x, y = data.x, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
    elif isinstance(data, torch.utils.data.Dataset):
        require(len(data) > 0, f"{what} is an empty Dataset")
        pairs = [data[i] for i in range(len(data))]
        require(all(isinstance(p, (tuple, list)) and len(p) >= 2 for p in pairs),
                f"{what}: each item of the Dataset must be an (image, label) pair")
        x = torch.stack([torch.as_tensor(p[0]) for p in pairs])
        y = torch.as_tensor([int(p[1]) for p in pairs])
    else:
        raise LaktError(f"{what} must be a lakt Split, an (x, y) pair of tensors or a torch Dataset, "
                        f"got {type(data).__name__}")
    require(x.dim() >= 2 and len(x) == len(y), f"{what}: {len(x)} images but {len(y)} labels")
    require(x.is_floating_point(), f"{what}: images are {x.dtype}; convert them to float "
                                   "(e.g. x.float() / 255, then normalise)")
    require(not y.is_floating_point() and not y.is_complex() and y.dtype != torch.bool and y.dim() == 1,
            f"{what}: labels must be a 1-D integer tensor of class indices, got {y.dtype} {tuple(y.shape)}")
    check_split(x, y, what)
    return data if isinstance(data, Split) and y.dtype == torch.long else Split(x, y.long())


def load_digits(test_fraction: float = 0.25, split_seed: int = 0) -> Dataset:
    """scikit-learn's digits (1,797 images, 10 classes), upsampled to 1x32x32.

    A fixed stratified train/test split (``split_seed``) so every run sees the same test set.
    """
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    idx = np.arange(len(bunch.target))
    train_idx, test_idx = train_test_split(idx, test_size=test_fraction, random_state=split_seed,
                                           stratify=bunch.target)
    # The source pixels (integers 0-16), labels and split, before the deterministic upsampling.
    fingerprint = "digits:" + digest(bunch.images.astype(np.uint8), bunch.target, train_idx, test_idx)
    return _build("digits", images[train_idx], bunch.target[train_idx], images[test_idx],
                  bunch.target[test_idx], [str(c) for c in range(10)], fingerprint)


@functools.cache
def digits_fingerprint() -> str:
    """The digits data's fingerprint (offline, so any digits run config can carry it)."""
    return load_digits().fingerprint


def load_cifar(name: str, root: str | os.PathLike, download: bool = False) -> Dataset:
    """CIFAR-10 or CIFAR-100 through torchvision; ``download`` is passed through."""
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    try:
        train = cls(root=str(root), train=True, download=download)
        test = cls(root=str(root), train=False, download=download)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted. You can use download=True ..."
        raise LaktError(f"{name} not found under {root!r}; pass download=True (CLI: --download) "
                        f"or point the data root at a folder holding {cls.base_folder}/") from err

    def to_tensor(ds):
        return torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).contiguous(), np.asarray(ds.targets)

    (xtr, ytr), (xte, yte) = to_tensor(train), to_tensor(test)
    fingerprint = f"{name}:" + digest(xtr, ytr, xte, yte, *train.classes)
    return _build(name, xtr, ytr, xte, yte, train.classes, fingerprint)


def _cache_dir() -> Path:
    return Path(os.environ.get("LAKT_CACHE", Path.home() / ".cache" / "lakt"))


def _files(split_root: Path, name: str) -> list[Path]:
    return sorted(p for p in (split_root / name).iterdir() if p.is_file() and not p.name.startswith("."))


def _decode_folder(root: Path, split: str, classes: list[str], h) -> tuple[torch.Tensor, np.ndarray]:
    """Decode ``root/split/<class>/*`` to uint8 [N, 3, 32, 32]; feed each file's path and bytes to ``h``."""
    from PIL import Image, UnidentifiedImageError

    images, labels = [], []
    for label, name in enumerate(classes):
        for path in _files(root / split, name):
            raw = path.read_bytes()
            h.update(f"{split}/{name}/{path.name}\0{len(raw)}\0".encode())
            h.update(raw)
            try:
                with Image.open(io.BytesIO(raw)) as im:
                    img = np.asarray(im.convert("RGB"))
            except (UnidentifiedImageError, OSError) as err:
                raise LaktError(f"cannot read image {path} ({err}); remove it or fix the folder") from None
            require(img.shape[:2] == (32, 32), f"{path} is {img.shape[1]}x{img.shape[0]}, expected 32x32 images")
            images.append(img)
            labels.append(label)
    require(images, f"no images under {root / split}; expected {root / split}/<class>/*.jpg")
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), np.asarray(labels)


def _folder_classes(root: Path) -> list[str]:
    """The class folders, checked: the same in train/ and test/, at least two, none empty.

    As torchvision's ``ImageFolder`` does, a class folder without images is refused by
    name rather than given an output no image ever trains (a "two-class" folder with one
    class empty would train a one-class model); and a class that has images in one split
    but not the other is named with the split it is missing from.
    """
    found = {}
    for split in ("train", "test"):
        require((root / split).is_dir(), f"{str(root)!r} has no {split}/ folder; expected ROOT/{split}/<class>/*.jpg")
        found[split] = sorted(p.name for p in (root / split).iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = found["train"]
    require(classes, f"{str(root / 'train')!r} has no class folders; expected ROOT/train/<class>/*.jpg")
    require(len(classes) >= 2, f"{str(root / 'train')!r} has one class folder ({classes[0]}); a classifier needs "
                               "at least 2 classes, one folder each")
    missing, extra = sorted(set(classes) - set(found["test"])), sorted(set(found["test"]) - set(classes))
    require(not missing and not extra,
            f"the class folders of test/ and train/ differ under {str(root)!r} (only in train/: "
            f"{', '.join(missing) or 'none'}; only in test/: {', '.join(extra) or 'none'}); "
            "give both splits the same class folders")
    empty = [f"{split}/{name}" for split in ("train", "test") for name in classes if not _files(root / split, name)]
    require(not empty, f"empty class folder{'s' if len(empty) > 1 else ''} under {str(root)!r}: {', '.join(empty)}; "
                       "every class needs images in both train/ and test/ -- add images, or remove the class "
                       "folder from both splits")
    return classes


def _listing_key(root: Path, classes: list[str]) -> str:
    """Names, sizes and modification times of every image: a changed file misses the decode cache."""
    h = hashlib.sha256(str(root.resolve()).encode())
    for split in ("train", "test"):
        for name in classes:
            for path in _files(root / split, name):
                st = path.stat()
                h.update(f"{split}/{name}/{path.name}:{st.st_size}:{st.st_mtime_ns}|".encode())
    return h.hexdigest()[:16]


def load_folder(root: str | os.PathLike) -> Dataset:
    """Images in ImageFolder layout ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*``.

    Decoding 60,000 JPEGs takes a while, so the decoded uint8 tensors are cached in
    ``$LAKT_CACHE`` (default ``~/.cache/lakt``), keyed by the folder's path and its
    files' names, sizes and times; a cache that cannot be written is skipped with one
    warning. The fingerprint digests every file's class, name and bytes (not the decoded
    pixels, so it does not depend on the JPEG decoder) and is cached with the tensors.
    """
    from .files import atomic_save, load_tensors

    root = Path(root).expanduser()
    require(root.is_dir(), f"data folder {str(root)!r} " + ("is a file, not a folder" if root.exists() else "does not exist")
            + "; pass --data-root pointing at a folder with train/ and test/")
    classes = _folder_classes(root)
    cache = _cache_dir() / f"folder-{_listing_key(root, classes)}.pt"
    try:
        tensors = load_tensors(cache) if cache.is_file() else None
    except OSError:  # an unreadable cache folder: decode instead
        tensors = None
    if tensors is None or "fingerprint" not in tensors:
        h = hashlib.sha256()
        xtr, ytr = _decode_folder(root, "train", classes, h)
        xte, yte = _decode_folder(root, "test", classes, h)
        tensors = {"xtr": xtr, "ytr": torch.as_tensor(ytr), "xte": xte, "yte": torch.as_tensor(yte),
                   "fingerprint": "folder:" + h.hexdigest()[:16]}
        try:
            atomic_save(tensors, cache)
        except (OSError, LaktError) as err:
            warn(f"not caching the decoded images: {err}; set LAKT_CACHE to a writable folder "
                 "to skip decoding next time")
    return _build(f"folder:{root.name}", tensors["xtr"], tensors["ytr"].numpy(), tensors["xte"],
                  tensors["yte"].numpy(), classes, tensors["fingerprint"])


def check_root(root, download: bool = False) -> Path | None:
    """``root`` with ``~`` expanded; an explicitly given root that does not exist is an error.

    With ``download`` (CIFAR) torchvision creates it, so a new folder is fine there.
    """
    if root is None or str(root) == "":
        return None
    path = Path(root).expanduser()
    require(path.is_dir() or (download and not path.exists()),
            f"data root {str(root)!r} " + ("is not a folder" if path.exists() else "does not exist")
            + "; pass --data-root pointing at an existing folder (or leave it out for digits)")
    return path


def load(name: str, root: str | os.PathLike | None = None, download: bool = False) -> Dataset:
    """Load a dataset by name: digits (offline default), cifar10, cifar100 or folder."""
    require(name in DATASETS, f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    root = check_root(root, download)
    if name == "digits":
        return load_digits()
    require(root is not None, f"dataset {name!r} needs a data root; pass --data-root DIR")
    if name == "folder":
        return load_folder(root)
    return load_cifar(name, root, download)


def per_class_subset(labels, n_per_class: int, seed: int) -> torch.Tensor:
    """Indices of ``n_per_class`` examples of every class: stratified, seeded and nested.

    Each class's examples are put in a seeded random order that does not depend on
    ``n_per_class``, and the first n are taken; so for one seed the 5-per-class subset
    lies inside the 10-per-class one, as in the paper's low-data sweeps.
    """
    labels = torch.as_tensor(labels).cpu()
    require(isinstance(n_per_class, int) and n_per_class >= 1,
            f"n_per_class must be a positive integer, got {n_per_class!r}")
    classes, counts = torch.unique(labels, return_counts=True)
    smallest = int(counts.min())
    require(n_per_class <= smallest,
            f"n_per_class={n_per_class} but class {int(classes[counts.argmin()])} has only {smallest} "
            f"examples; choose n_per_class <= {smallest}")
    generator = torch.Generator().manual_seed(int(seed))
    chosen = []
    for c in classes.tolist():
        members = torch.nonzero(labels == c).flatten()
        order = torch.randperm(len(members), generator=generator)
        chosen.append(members[order[:n_per_class]])
    return torch.sort(torch.cat(chosen)).values


VALIDATION_SEED = 20_240_613  # fixed: the held-out images do not depend on any run's seed


def validation_split(labels, n: int, seed: int = VALIDATION_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held_out) indices: ``n`` training images held out for validation, n / classes per class.

    Stratified (equal per class, as CIFAR's classes are balanced) and drawn with a fixed
    ``seed`` independent of run seeds, so every run of a preset -- teacher, students,
    robustness nets -- trains on the same ``kept`` images and never sees ``held_out``
    (hyper-parameters are chosen on ``held_out``, never on the test set).
    Students' per-class subsets are then drawn from ``kept`` with :func:`per_class_subset`.
    """
    labels = torch.as_tensor(labels).cpu()
    classes, counts = torch.unique(labels, return_counts=True)
    k = len(classes)
    require(isinstance(n, int) and n >= 0 and n % k == 0,
            f"validation size must be a multiple of the {k} classes, got {n!r}; e.g. validation={10 * k}")
    per_class = n // k
    require(per_class < int(counts.min()),
            f"validation takes {per_class} images per class but class {int(classes[counts.argmin()])} has only "
            f"{int(counts.min())}; choose a smaller validation size")
    generator = torch.Generator().manual_seed(int(seed))
    held = []
    for c in classes.tolist():
        members = torch.nonzero(labels == c).flatten()
        held.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    held_out = torch.sort(torch.cat(held)).values
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[held_out] = False
    return torch.nonzero(mask).flatten(), held_out


def split_validation(train: Split, n: int) -> tuple[Split, Split | None]:
    """The training split without its ``n`` validation images, and those images (None when n = 0)."""
    if n == 0:
        return train, None
    kept, held_out = validation_split(train.y, n)
    return train.subset(kept), train.subset(held_out)


class DeviceLoader:
    """Batches of (positions, x, y) from tensors already on the device, shuffled there.

    No workers, no per-image Python work and no host-to-device copies per step: the
    whole (small) training set lives on the device, as in airbench. ``positions``
    are indices into the split, used to look up cached teacher targets. A trailing
    remainder of one image is dropped, since BatchNorm's statistics of one image are
    degenerate; with ``batch_size=1`` every batch is one image, asked for, and kept.
    """

    def __init__(self, split: Split, batch_size: int, *, shuffle: bool = True, seed: int = 0, device=None,
                 channels_last: bool = False):
        require(isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1,
                f"batch size must be a positive integer, got {batch_size!r}")
        self.device = torch.device(device) if device is not None else split.x.device
        self.x, self.y = split.x.to(self.device), split.y.to(self.device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))

    def __len__(self) -> int:
        full, rest = divmod(len(self.y), self.batch_size)
        return full + (1 if rest > 1 else 0)

    def __iter__(self):
        n = len(self.y)
        order = (torch.randperm(n, device=self.device, generator=self.generator) if self.shuffle
                 else torch.arange(n, device=self.device))
        for start in range(0, n, self.batch_size):
            pos = order[start:start + self.batch_size]
            if len(pos) < 2 < self.batch_size and n > 1:  # a trailing remainder of one, not batch_size=1
                break
            yield pos, self.x[pos].contiguous(memory_format=self.memory_format), self.y[pos]
