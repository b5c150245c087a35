#!/usr/bin/env python3
"""The project's two entry points, runnable with nothing but Python 3.11.

    python3 tasks.py book [--preset cpu]   set up .venv, run every chapter with papermill
                                           into book/, then `jupyter-book build book/`
                                           ([--out DIR]: build a copy of the book in DIR instead)
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
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
# glibc keeps freed blocks for reuse instead of mapping and unmapping every large tensor
# each training step (up to 50% faster small CPU steps; benchmarks/step_cost.py explains).
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2 ** 20), "MALLOC_TRIM_THRESHOLD_": str(128 * 2 ** 20)}
CHAPTERS = [  # executed in this order; book/_toc.yml lists the same files (the verdict page first)
    "01_affine_approximation",
    "02_propositions",
    "03_transfer_cifar10",
    "04_transfer_cifar100",
    "05_noise_robustness",
    "06_cost_of_jacobians",
    "07_results_at_a_glance",   # reads the runs chapters 3 and 5 made, so it runs last
    "08_how_this_changed",      # appendix: the earlier attempts, read from results/
]
BOOK_SOURCES = ["_toc.yml", "intro.md", "_static", "_ext", "_generated"]
WIDGETS_NPM = "@jupyter-widgets/html-manager@1.0.15"
"""The ipywidgets embed script the built book serves itself (_build/html/_static/html-manager/), so
the stored widget states render offline; the npm registry's package, unpacked by :func:`widget_assets`
(cached in book/_widgets/) and copied in after the build."""


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


def book(preset: str, chapters: list[str], out: Path | None = None) -> None:
    """Execute the chapters headless with papermill into book/ (or a copy in ``out``), then build the HTML."""
    where = ROOT / "book"
    if out is not None:
        where = Path(out).resolve()
        where.mkdir(parents=True, exist_ok=True)
        for name in BOOK_SOURCES:
            source = ROOT / "book" / name
            if not source.exists():
                continue
            (shutil.copytree(source, where / name, dirs_exist_ok=True) if source.is_dir()
             else shutil.copy(source, where / name))
        shutil.copy((ROOT / "book" / "_config.yml").resolve(), where / "_config.yml")
    for name in chapters:
        began = time.perf_counter()
        _execute_chapter(name, where / f"{name}.ipynb", "-p", "preset", preset)
        sh(PY, "-c", _PRESENT, where / f"{name}.ipynb")
        print(f"  {name}: {time.perf_counter() - began:.0f} s", flush=True)
    verdict_include(where)
    sh(VENV / "bin" / "jupyter-book", "build", where, env=_env())
    widget_assets(where / "_build" / "html" / "_static" / "html-manager")
    print(f"book: {where / '_build/html/index.html'}")


_PRESENT = """
import sys, nbformat
nb = nbformat.read(sys.argv[1], as_version=4)
for cell in nb.cells:
    if cell.cell_type != "code":
        continue
    tags = cell.metadata.setdefault("tags", [])
    if "injected-parameters" in tags:
        tags[:] = list(dict.fromkeys(tags + ["remove-cell"]))
    elif "parameters" in tags:
        tags.append("remove-cell")   # the chapter's parameters: in its "Reproduce this chapter" block
    elif not {"remove-cell", "remove-input", "hide-input", "hide-cell"} & set(tags):
        tags.append("hide-input")
nbformat.write(nb, sys.argv[1])
"""
"""How a chapter reads in the book: papermill's injected parameters removed, every code cell
folded (hide-input: a reader unfolds it with one click); the parameters cell removed (each chapter
lists its parameters in the "Reproduce this chapter" block at its end); the notebooks in notebooks/,
and so JupyterLab, keep showing all code. Cells tagged remove-cell (nbval's checks) stay out."""


VERDICT_PAGE = "07_results_at_a_glance"
VERDICT_INCLUDE = Path("_generated") / "verdicts.md"


def verdict_include(where: Path) -> None:
    """Write the verdict table that chapter 7 computed (its cell tagged ``verdict-table``) where the
    landing page includes it (book/_generated/verdicts.md), so the landing page opens with it."""
    import json

    executed = where / f"{VERDICT_PAGE}.ipynb"
    html = ""
    if executed.is_file():
        for cell in json.loads(executed.read_text())["cells"]:
            if "verdict-table" in cell.get("metadata", {}).get("tags", []):
                html = "".join(next((o["data"]["text/html"] for o in cell.get("outputs", [])
                                     if "text/html" in o.get("data", {})), ""))
    target = where / VERDICT_INCLUDE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html.replace("\n", " ") + "\n" if html else
                      f"*The verdict table appears here once [Results at a glance]({VERDICT_PAGE}) has run.*\n")


def widget_assets(dest: Path) -> None:
    """Copy the ipywidgets embed script (:data:`WIDGETS_NPM`, unpacked once with npm) into ``dest``."""
    cache = ROOT / "book" / "_widgets" / WIDGETS_NPM.rsplit("@", 1)[1]
    if not (cache / "embed.js").is_file():
        npm = shutil.which("npm")
        if npm is None:
            sys.exit("tasks.py: npm is needed once to fetch the ipywidgets embed script for the book "
                     "(Debian: apt-get install -y npm)")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([npm, "pack", WIDGETS_NPM, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
            with tarfile.open(next(Path(tmp).glob("*.tgz"))) as tar:
                tar.extractall(tmp, filter="data")
            cache.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(Path(tmp) / "package" / "dist", cache, dirs_exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    for f in cache.iterdir():   # embed.js and the fonts it loads; not the require.js (AMD) variants
        if "amd" not in f.name:
            shutil.copy(f, dest / f.name)


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
    b.add_argument("--out", type=Path, help="build a copy of the book in this folder instead of book/")
    s = sub.add_parser("store", help="re-execute chapters (smoke) and store their outputs for nbval")
    s.add_argument("--chapter", action="append", choices=CHAPTERS, help="only these chapters (repeatable)")
    t = sub.add_parser("test", help="unit tests and pytest --nbval")
    t.add_argument("pytest_args", nargs="*", help="passed to pytest")
    args = parser.parse_args()
    began = time.perf_counter()
    ensure_venv()
    if args.task == "book":
        book(args.preset, args.chapter or CHAPTERS, args.out)
    elif args.task == "store":
        store(args.chapter or CHAPTERS)
    else:
        test(args.pytest_args)
    print(f"tasks.py {args.task}: done in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
