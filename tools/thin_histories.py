"""Thin the per-epoch histories of a results folder to what lakt now stores.

Runs finished before ``lakt.runs.cache.HISTORY_ROWS`` existed store every epoch: a
600-epoch student's ``metrics.json`` is 150 KB, and the committed ``results/`` would
outgrow what a repository should hold. This rewrites each ``metrics.json`` with
:func:`lakt.runs.cache.thin_history` -- the same rows a run finished today keeps (first
and last epoch always, which is all the chapters read) -- and leaves every other field,
the key and the folder as they are. A file already thin is not touched, so running it
twice is harmless.

Usage: ``python tools/thin_histories.py results [--dry-run]``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lakt.core.files import atomic_write_json
from lakt.runs.cache import HISTORY_ROWS, thin_history


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    before = after = changed = 0
    for path in sorted(args.results.expanduser().glob("*/*/metrics.json")):
        before += path.stat().st_size
        metrics = json.loads(path.read_text())
        if len(metrics.get("history", [])) > HISTORY_ROWS:
            thin = thin_history(metrics["history"])
            assert thin[0] == metrics["history"][0] and thin[-1] == metrics["history"][-1]
            metrics["history"] = thin
            changed += 1
            if not args.dry_run:
                atomic_write_json(metrics, path)
        after += path.stat().st_size
    print(f"{changed} histories thinned to <= {HISTORY_ROWS} rows; metrics {before / 2**20:.1f} MB -> "
          f"{after / 2**20:.1f} MB" + (" (dry run)" if args.dry_run else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
