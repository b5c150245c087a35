"""Put the data fingerprint into the keys of a results folder made before keys had one.

Until issue 12, a run's key did not include its data, so ``results/`` (the cifar10-cpu
sweeps) sits under keys without it. This script

1. loads the data folder the runs were trained on and computes its fingerprint;
2. checks that it *is* their data: every run records ``dataset_name`` and
   ``train_size``, and the committed teacher must score exactly its recorded test
   accuracy on this test set (normalised with this train set's statistics) -- a
   different copy, split or decoding would not;
3. for each run: checks that its folder and ``metrics.json`` carry the old key of its
   ``config.json``, writes ``data`` into both files (and into the teacher config of a
   student), and moves the folder to the new key (``git mv`` inside a git checkout),
   appending a ``migrate`` line per run to ``runs.log``.

Usage: ``python tools/migrate_data_key.py results ~/data/cifar10-jpeg [--dry-run]``.
A folder already migrated is left as it is, so running it twice is harmless.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from lakt.core.data import load
from lakt.core.files import append_line, atomic_write_json
from lakt.core.models import build
from lakt.core.train import evaluate, load_checkpoint
from lakt.runs.config import RunConfig, _key_dict


def legacy_key(config: RunConfig) -> str:
    """The key as lakt computed it before ``data`` existed."""
    def strip(d):
        d = {k: v for k, v in d.items() if k != "data"}
        if d.get("teacher") is not None:
            d["teacher"] = strip(d["teacher"])
        return d
    blob = json.dumps(strip(_key_dict(config.to_dict())), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("data_root", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    results = args.results.expanduser()
    ds = load("folder", args.data_root.expanduser())
    print(f"data {args.data_root}: {ds.name}, {len(ds.train)} train / {len(ds.test)} test, "
          f"fingerprint {ds.fingerprint}")
    todo = []
    for path in sorted(results.glob("*/*/config.json")):
        old = RunConfig.from_dict(json.loads(path.read_text()))
        if old.data is not None:
            assert old.data == ds.fingerprint, f"{path}: already migrated to other data {old.data}"
            continue
        metrics = json.loads((path.parent / "metrics.json").read_text())
        key = legacy_key(old)
        assert path.parent.name == key == metrics["key"], f"{path}: folder/metrics key is not the config's"
        assert metrics["dataset_name"] == ds.name, f"{path}: trained on {metrics['dataset_name']}, not {ds.name}"
        teacher = dataclasses.replace(old.teacher, data=ds.fingerprint) if old.teacher is not None else None
        todo.append((path.parent, dataclasses.replace(old, data=ds.fingerprint, teacher=teacher), metrics))
    for folder, config, metrics in todo:
        if config.kind == "teacher":
            assert metrics["train_size"] == len(ds.train), f"{folder}: train_size {metrics['train_size']}"
            model = build(config.model, ds.num_classes, width=config.width, in_channels=ds.in_channels)
            load_checkpoint(model, folder / "model.pt")
            acc = evaluate(model, ds.test)
            print(f"{config.name}: test accuracy on this data {acc:.2f}%, recorded {metrics['test_acc']:.2f}%")
            assert abs(acc - metrics["test_acc"]) < 1e-9, "the teacher was not trained on this data"
    print(f"{len(todo)} runs to migrate" + (" (dry run)" if args.dry_run else ""))
    if args.dry_run:
        return 0
    in_git = subprocess.run(["git", "-C", str(results), "rev-parse"], capture_output=True).returncode == 0
    for folder, config, metrics in todo:
        atomic_write_json(config.to_dict(), folder / "config.json")
        atomic_write_json({**metrics, "key": config.key, "config": config.to_dict()}, folder / "metrics.json")
        target = folder.parent / config.key
        if in_git:
            subprocess.run(["git", "-C", str(results), "mv", str(folder.resolve()), str(target.resolve())], check=True)
        else:
            os.rename(folder, target)
        append_line(results / "runs.log", f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {socket.gethostname()} "
                                          f"{os.getpid()} migrate {config.key} {config.name} (was {folder.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
