"""Tiny image-folder trees (ROOT/{train,test}/<class>/*.png) for the data and CLI tests."""
from pathlib import Path

import numpy as np
from PIL import Image


def image_folder(root: Path, train: dict, test: dict) -> str:
    """ROOT/{train,test}/<class>/ with the given number of random 32x32 images per class."""
    rng = np.random.default_rng(0)
    for split, counts in (("train", train), ("test", test)):
        for name, count in counts.items():
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / split / name / f"{i}.png")
    return str(root)
