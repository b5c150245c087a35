#!/usr/bin/env python3
"""The project's two entry points, runnable with nothing but Python 3.11.

    python3 tasks.py book [--preset cpu]   set up .venv, run every chapter with papermill
                                           into book/, then `jupyter-book build book/`
    python3 tasks.py test                  set up .venv, run the unit tests and `pytest --nbval`
    python3 tasks.py store [--chapter N]   re-execute chapters (smoke) and store their outputs,
                                           which nbval compares against (developers)

The virtual environment lives in .venv and is reused; it is reinstalled only when
pyproject.toml changes.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
# glibc keeps freed blocks for reuse instead of mapping and unmapping every large tensor
# each training step (up to 50% faster small CPU steps; benchmarks/step_cost.py explains).
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2 ** 20), "MALLOC_TRIM_THRESHOLD_": str(128 * 2 ** 20)}
CHAPTERS = [  # executed in this order; book/_toc.yml lists the same files
    "01_affine_approximation",
    "02_propositions",
    "03_transfer_cifar10",
    "04_transfer_cifar100",
    "05_noise_robustness",
    "06_cost_of_jacobians",
]


def sh(*cmd, **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)


def ensure_venv() -> None:
    """Create .venv and install lakt with its test and book extras (pinned in pyproject.toml)."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"tasks.py: Python 3.11 is required (this is {sys.version.split()[0]}); run it with python3.11")
    stamp = VENV / ".lakt-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want and PY.exists():
        return
    if not PY.exists():
        venv.create(VENV, with_pip=True)
    sh(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    sh(PY, "-m", "pip", "install", "--quiet", "-e", ".[test]")
    sh(PY, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3")
    stamp.write_text(want)


def _env() -> dict:
    """Fixed hash seed and allocator thresholds: the same outputs and timings in every task."""
    return dict(os.environ, PYTHONHASHSEED="0", **STEADY_MALLOC)


def _execute_chapter(name: str, out, *params: str) -> None:
    sh(PY, "-m", "papermill", f"notebooks/{name}.ipynb", out, *params, "--cwd", "notebooks",
       "--no-progress-bar", env=_env())


def book(preset: str, chapters: list[str]) -> None:
    """Execute the chapters headless with papermill into book/, then build the HTML."""
    for name in chapters:
        began = time.perf_counter()
        _execute_chapter(name, f"book/{name}.ipynb", "-p", "preset", preset)
        print(f"  {name}: {time.perf_counter() - began:.0f} s", flush=True)
    sh(VENV / "bin" / "jupyter-book", "build", "book/", env=_env())
    print(f"book: {ROOT / 'book/_build/html/index.html'}")


_STRIP = """
import sys, nbformat
nb = nbformat.read(sys.argv[1], as_version=4)
nb.metadata.pop("papermill", None)
for cell in nb.cells:
    for key in ("papermill", "execution"):
        cell.metadata.pop(key, None)
nbformat.write(nb, sys.argv[2])
"""


def store(chapters: list[str]) -> None:
    """Re-execute chapters with their default (smoke) parameters and store the outputs in notebooks/.

    What nbval compares against: run after changing a chapter, or the committed
    results/ it reads, then commit the notebooks.
    """
    for name in chapters:
        executed = ROOT / "book" / f".{name}.stored.ipynb"
        _execute_chapter(name, executed)
        sh(PY, "-c", _STRIP, executed, f"notebooks/{name}.ipynb")
        executed.unlink()


def test(extra: list[str]) -> None:
    env = _env()
    sh(PY, "-m", "pytest", "tests", *extra, env=env)
    sh(PY, "-m", "pytest", "--nbval", "notebooks", "--nbval-sanitize-with", "notebooks/sanitize.cfg", *extra, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="task", required=True)
    b = sub.add_parser("book", help="run the chapters and build the Jupyter Book")
    b.add_argument("--preset", default="cpu", help="smoke (seconds), cpu (minutes, default) or paper (GPU)")
    b.add_argument("--chapter", action="append", choices=CHAPTERS, help="only these chapters (repeatable)")
    s = sub.add_parser("store", help="re-execute chapters (smoke) and store their outputs for nbval")
    s.add_argument("--chapter", action="append", choices=CHAPTERS, help="only these chapters (repeatable)")
    t = sub.add_parser("test", help="unit tests and pytest --nbval")
    t.add_argument("pytest_args", nargs="*", help="passed to pytest")
    args = parser.parse_args()
    began = time.perf_counter()
    ensure_venv()
    if args.task == "book":
        book(args.preset, args.chapter or CHAPTERS)
    elif args.task == "store":
        store(args.chapter or CHAPTERS)
    else:
        test(args.pytest_args)
    print(f"tasks.py {args.task}: done in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
