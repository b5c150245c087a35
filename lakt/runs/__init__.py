"""The runs layer: configs and presets, the results cache, claims, and the command line.

``from lakt import runs``: :func:`preset` lists a protocol's :class:`RunConfig` s,
:func:`sweep` runs them through the cache in ``RESULTS/<kind>/<key>/``, and
:func:`finished` / :func:`collect` read what has finished without training anything.
"""
from .cache import Busy, TeacherMissing, collect, finished, load_model, load_result, resolve, run, sweep
from .config import KINDS, RunConfig
from .presets import JACOBIAN_FORM, PRESETS, SIZES, Preset, get_preset, preset, with_speed

__all__ = ["Busy", "TeacherMissing", "collect", "finished", "load_model", "load_result", "resolve", "run",
           "sweep",
           "KINDS", "RunConfig", "JACOBIAN_FORM", "PRESETS", "SIZES", "Preset", "get_preset", "preset",
           "with_speed"]
