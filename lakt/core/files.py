"""Files that are never half-written.

Every file lakt writes (metrics, configs, checkpoints, data caches) goes to a
temporary name in the same folder, is flushed to disk and then renamed over the
target: readers see the old file or the new one, never a torn one. Files left
corrupt by an older crash (or another tool) are detected on read and reported in
one line; callers then redo the work instead of trusting them.

A write that the system refuses (a full disk, a read-only filesystem, no permission,
a path through a regular file) raises :class:`~lakt.core.errors.LaktError` in one line
that names the path and the fix, with the temporary file removed, so nothing torn is
left. Files get the mode ``open()`` would give them (0666 less the umask), not
``mkstemp``'s 0600, so a results folder can be shared with a group.
"""
from __future__ import annotations

import errno
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from .errors import LaktError

_FIXES = {
    errno.ENOSPC: "the disk is full; free some space or write to another folder (e.g. results=DIR)",
    errno.EDQUOT: "the disk quota is exhausted; free some space or write to another folder (e.g. results=DIR)",
    errno.EROFS: "the filesystem is read-only; write to a writable folder (e.g. results=DIR)",
    errno.EACCES: "permission denied; write to a folder you own (e.g. results=DIR)",
    errno.EPERM: "permission denied; write to a folder you own (e.g. results=DIR)",
    errno.ENOTDIR: "a part of the path is a regular file, not a folder; choose a folder path",
    errno.EEXIST: "a part of the path is a regular file, not a folder; choose a folder path",
    errno.ENOENT: "the folder cannot be created there; choose a writable folder (e.g. results=DIR)",
}


class StorageError(LaktError):
    """The results folder (or another file lakt writes) cannot take the write: nothing more
    is written about it, not even a ``fail`` line in ``runs.log``."""


def unwritable(path, err: OSError) -> StorageError:
    """A one-line :class:`StorageError` for an ``OSError`` met while writing ``path``."""
    fix = _FIXES.get(err.errno, f"{err.strerror or err}; write to another folder (e.g. results=DIR)")
    return StorageError(f"cannot write {str(path)!r}: {fix}")


def make_folder(path) -> Path:
    """``mkdir -p`` that fails in one line (a file in the way, /proc, read-only, full)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:  # a regular file where the folder should be
        raise unwritable(path, err) from None
    except OSError as err:
        raise unwritable(path, err) from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_all(fd: int, data) -> None:
    """``os.write`` until every byte is written (errors surface as ``OSError`` with their errno)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _atomic_write(path: Path, data) -> None:
    path = Path(path)
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise unwritable(path, err) from None
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask())
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(err, OSError):
            raise unwritable(path, err) from None
        raise


def atomic_write_json(obj, path: Path) -> None:
    """Write ``obj`` as pretty JSON, atomically."""
    _atomic_write(Path(path), (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` to ``path``, atomically.

    Serialised in memory first and written with ``os.write``: a full disk is then an
    ``OSError`` (ENOSPC) with its errno, not torch's "enforce fail at inline_container.cc".
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _atomic_write(Path(path), buffer.getbuffer())


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
    except (FileNotFoundError, NotADirectoryError):  # missing, or a path through a regular file
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        warn(f"ignoring corrupt file {path} ({type(err).__name__}); the run will be redone")
        return None


def load_tensors(path: Path, map_location="cpu"):
    """``torch.load(weights_only=True)``, or None (with a warning) for a corrupt file."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except Exception as err:  # truncated zip, bad pickle, ...: torch raises several types
        warn(f"ignoring corrupt file {path} ({type(err).__name__}); it will be recomputed")
        return None


def append_line(path: Path, line: str) -> None:
    """Append one line with a single O_APPEND write (whole lines even with several writers)."""
    path = Path(path)
    make_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, (line.rstrip("\n") + "\n").encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise unwritable(path, err) from None
