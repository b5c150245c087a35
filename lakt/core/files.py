"""Files that are never half-written.

Every file lakt writes (metrics, configs, checkpoints, data caches) goes to a
temporary name in the same folder, is flushed to disk and then renamed over the
target: readers see the old file or the new one, never a torn one. Files left
corrupt by an older crash (or another tool) are detected on read and reported in
one line; callers then redo the work instead of trusting them.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(obj, path: Path) -> None:
    """Write ``obj`` as pretty JSON, atomically."""
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    _atomic_write(Path(path), lambda fh: fh.write(data))


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` to ``path``, atomically."""
    _atomic_write(Path(path), lambda fh: torch.save(obj, fh))


_warned: set[str] = set()


def warn(message: str) -> None:
    """One line on stderr (no traceback), for problems lakt recovers from; each said once."""
    if message not in _warned:
        _warned.add(message)
        print(f"lakt: {message}", file=sys.stderr)


def read_json(path: Path):
    """Parsed JSON, or None (with a one-line warning) if the file is missing-in-part or corrupt."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        warn(f"ignoring corrupt file {path} ({type(err).__name__}); the run will be redone")
        return None


def load_tensors(path: Path, map_location="cpu"):
    """``torch.load(weights_only=True)``, or None (with a warning) for a corrupt file."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        return None
    except Exception as err:  # truncated zip, bad pickle, ...: torch raises several types
        warn(f"ignoring corrupt file {path} ({type(err).__name__}); it will be recomputed")
        return None


def append_line(path: Path, line: str) -> None:
    """Append one line with a single O_APPEND write (whole lines even with several writers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode())
    finally:
        os.close(fd)
