"""The chapters' papermill parameters, checked as the CLI checks its flags.

A chapter run with ``papermill -p seed zero`` or ``-p device cuda`` on a CPU machine
would otherwise fail several cells in, with a raw exception from wherever the value is
first used; the command line says the same things in one line before any work.
:func:`check_parameters` does that for a chapter's parameter cell: one
:class:`~lakt.core.errors.LaktError` line naming the parameter and the fix.

Results folders are resolved the same way from any working directory
(:func:`results_folder`, :func:`find_results`): a relative path is taken relative to the
chapters' folder, where the book runs them, so ``../results`` is the repository's
committed results and ``../runs`` its scratch folder whether papermill was started in
``notebooks/``, in the repository root or anywhere else -- a chapter never writes outside
the repository or the folder it was given.
"""
from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path

from ..core.checks import check_device
from ..core.errors import LaktError, require

_PACKAGE = Path(__file__).resolve().parents[1]  # .../lakt
REPOSITORY = _PACKAGE.parent if (_PACKAGE.parent / "notebooks").is_dir() else None
CHAPTERS = REPOSITORY / "notebooks" if REPOSITORY is not None else None


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _fix(name: str, example) -> str:
    return f"(papermill: -p {name} {example})"


def _check_one(name: str, value) -> None:
    from ..core.data import DATASETS
    from ..runs.presets import PRESETS

    if name == "preset" or name.endswith("_preset"):
        require(isinstance(value, str) and value in PRESETS,
                f"parameter {name}: unknown preset {value!r}; choose one of {', '.join(PRESETS)} "
                + _fix(name, "smoke"))
    elif name == "dataset":
        require(isinstance(value, str) and value in DATASETS,
                f"parameter dataset: unknown dataset {value!r}; choose one of {', '.join(DATASETS)} "
                + _fix(name, "digits"))
    elif name in ("seed", "samples", "epochs"):
        low = 0 if name == "seed" else 1
        require((value is None and name != "seed") or (_is_int(value) and value >= low),
                f"parameter {name} must be a whole number >= {low}, got {value!r} " + _fix(name, max(low, 1)))
    elif name == "seeds":
        ok = value is None or _is_int(value) or (
            isinstance(value, (list, tuple)) and value and all(_is_int(v) for v in value))
        require(ok and all(v >= 0 for v in ([] if value is None else [value] if _is_int(value) else value)),
                f"parameter seeds must be a list of whole numbers >= 0 (or None for the preset's), got {value!r} "
                "(papermill: -y 'seeds: [0, 1, 2]')")
    elif name == "device":
        if value is not None:
            require(isinstance(value, str), f"parameter device must be a device name such as cpu or cuda, "
                                            f"got {value!r} " + _fix(name, "cpu"))
            check_device(value, "-p device")
    elif name == "data_root":
        if value is not None:
            require(isinstance(value, (str, os.PathLike)), f"parameter data_root must be a folder path, got "
                                                            f"{value!r} " + _fix(name, "~/data/cifar10"))
            path = Path(value).expanduser()
            require(path.is_dir(), f"parameter data_root: {str(path)!r} "
                    + ("is a file, not a folder" if path.exists() else "does not exist")
                    + "; point it at the dataset's folder " + _fix(name, "~/data/cifar10"))
    elif name == "results" or name.endswith("_results") or name == "step_cost":
        require(isinstance(value, (str, os.PathLike)) and str(value) != "",
                f"parameter {name} must be a path, got {value!r} " + _fix(name, "../results"))


def check_parameters(**parameters) -> None:
    """Check a chapter's papermill parameters; the first bad one raises one LaktError line.

    Known by name: ``preset`` and ``*_preset`` (a preset of :data:`lakt.runs.PRESETS`),
    ``dataset``, ``seed`` / ``samples`` / ``epochs`` (whole numbers), ``seeds`` (None or a
    list of them), ``device`` (None, or a device this machine has), ``data_root`` (None
    or an existing folder), ``results``, ``*_results`` and ``step_cost`` (paths). Other
    names are not checked. Usage in a chapter's cell after the parameters::

        check_parameters(preset=preset, dataset=dataset, seed=seed, device=device, ...)
    """
    for name, value in parameters.items():
        _check_one(name, value)


def chapter_path(path) -> Path:
    """``path`` with ``~`` expanded; relative to the chapters' folder when lakt runs from its repository
    (where the book executes the chapters), else to the working directory."""
    path = Path(path).expanduser()
    if path.is_absolute() or CHAPTERS is None:
        return path.resolve()
    return (CHAPTERS / path).resolve()


def results_folder(results, parameter: str = "results") -> Path:
    """The folder a chapter writes its runs to (created if need be): :func:`chapter_path` of
    ``results``, refused in one line when it is a file."""
    require(isinstance(results, (str, os.PathLike)) and str(results) != "",
            f"parameter {parameter} must be a folder path, got {results!r} {_fix(parameter, '../runs')}")
    folder = chapter_path(results)
    require(not folder.exists() or folder.is_dir(), f"parameter {parameter}: {str(folder)!r} is a file, not a "
                                                    f"folder; set it to a results folder {_fix(parameter, '../runs')}")
    return folder


def _holds_runs(folder: Path) -> bool:
    from ..runs.config import KINDS

    return any(next((folder / kind).glob("*/metrics.json"), None) is not None for kind in KINDS)


def find_results(results=None, parameter: str = "real_results") -> Path:
    """A results folder that holds finished runs, found from any working directory.

    ``results``: an explicit path (relative ones per :func:`chapter_path`); None: the
    repository's committed ``results/``. A folder that is missing, a file or holds no
    finished run is one LaktError line naming the folder looked in and ``parameter``,
    the chapter parameter to set.
    """
    if results is None:
        require(REPOSITORY is not None,
                f"no results folder given and lakt is not running from its repository (it is at {str(_PACKAGE)!r}); "
                f"set {parameter} to a results folder {_fix(parameter, '/path/to/lakt/results')}")
        folder = REPOSITORY / "results"
    else:
        require(isinstance(results, (str, os.PathLike)) and str(results) != "",
                f"parameter {parameter} must be a folder path, got {results!r} {_fix(parameter, '../results')}")
        folder = chapter_path(results)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise LaktError(f"results folder {str(folder)!r} {what}; set {parameter} to the folder holding the finished "
                        f"runs {_fix(parameter, '../results')}")
    require(_holds_runs(folder), f"results folder {str(folder)!r} holds no finished run (no <kind>/<key>/metrics.json); "
                                 f"set {parameter} to the folder holding them {_fix(parameter, '../results')}")
    return folder
