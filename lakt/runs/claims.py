"""Claims that keep two processes from training one run.

A run folder is claimed with ``<folder>/.claim`` made with O_EXCL and kept fresh by
a heartbeat; a claim whose process died is taken over. The results folder is the
only shared state, so N processes (or N array tasks) sharing it split a sweep.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ..core.files import make_folder, unwritable, write_all


def remove_temporaries(folder: Path) -> None:
    """Delete temporary files a killed writer left in ``folder`` (never read as results)."""
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


class Claim:
    """An exclusive claim on a run folder: ``<folder>/.claim`` made with O_EXCL.

    While held, a daemon thread touches the file every ``stale_after / 10`` seconds
    (and :meth:`heartbeat` does so at once), however long an epoch takes. A claim is
    stale, and may be taken over, when its process is gone (same host) or it has not
    been touched for ``stale_after`` seconds (another host that died).
    """

    def __init__(self, folder: Path, stale_after: float = 600.0):
        self.path = Path(folder) / ".claim"
        self.stale_after = stale_after
        self.held = False
        self._stop = threading.Event()

    def _read(self) -> str | None:
        try:
            return self.path.read_text()
        except FileNotFoundError:
            return None

    def _is_stale(self) -> bool:
        try:
            info = json.loads(self.path.read_text())
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        except (json.JSONDecodeError, OSError):
            # A claim being written right now is briefly empty: only old garbage is stale.
            try:
                return time.time() - self.path.stat().st_mtime > 5.0
            except FileNotFoundError:
                return True
        if info.get("host") == socket.gethostname():
            try:
                os.kill(int(info["pid"]), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, KeyError, ValueError):
                pass
        return age > self.stale_after

    def acquire(self) -> bool:
        """Take the claim if free (or stale); False if another live process holds it."""
        make_folder(self.path.parent)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                judged = self._read()
                if not self._is_stale():
                    return False
                stale = self.path.with_name(f".claim.stale.{os.getpid()}")
                try:
                    os.replace(self.path, stale)
                except FileNotFoundError:
                    continue
                if Path(stale).read_text() != judged:
                    # Another process replaced the stale claim meanwhile: put its claim back.
                    try:
                        os.link(stale, self.path)
                    except FileExistsError:
                        pass
                    os.unlink(stale)
                    return False
                os.unlink(stale)
                continue
            except OSError as err:  # read-only or full filesystem, no permission
                raise unwritable(self.path, err) from None
            try:
                try:
                    write_all(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                              "since": time.time()}).encode())
                finally:
                    os.close(fd)
            except OSError as err:  # a full disk: leave no empty claim behind
                os.unlink(self.path)
                raise unwritable(self.path, err) from None
            self.held = True
            threading.Thread(target=self._beat, daemon=True).start()
            return True
        return False

    def _beat(self) -> None:
        while not self._stop.wait(self.stale_after / 10):
            self.heartbeat()

    def heartbeat(self) -> None:
        if self.held:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                pass

    def release(self) -> None:
        self._stop.set()
        if self.held:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.held = False


@contextmanager
def claimed(folder: Path, stale_after: float = 600.0):
    """``with claimed(dir) as ok:`` -- ok is False when another process holds the run."""
    claim = Claim(folder, stale_after)
    ok = claim.acquire()
    try:
        yield claim if ok else None
    finally:
        claim.release()
