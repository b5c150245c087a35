"""Run the ``lakt`` command and freeze it (SIGSTOP) the moment an event happens.

    python tests/fault_driver.py EVENT -- ARGS...     (ARGS: what ``lakt`` would get)
    python tests/fault_driver.py EVENT -- part RESULTS (a sweep of every 4th smoke run:
                                                        a teacher, a student, a robustness run)

EVENT is ``none`` (run to the end) or one of

* ``log:<event>:<key>`` -- just after the run ``<key>`` wrote its ``<event>`` line
  (start, resume, finish) to ``RESULTS/runs.log``;
* ``before:<path>`` -- just before a completed temporary file is renamed onto a
  results file whose path ends with ``<path>`` (e.g. ``<key>/progress.pt``): the
  write is under way, the target not yet replaced;
* ``after:<path>`` -- just after that rename.

``tests/runs/test_reliability.py`` waits for the stop (``waitpid`` with ``WUNTRACED``),
checks the results folder as the kill finds it and then sends SIGKILL. The process
stops itself at the event, so where the kill lands never depends on how fast the
machine is; an external watcher polling the files could see a smoke run's start line
only after the run had finished. The hooks only watch: the command runs unchanged.
"""
import os
import signal
import sys


def _freeze():
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGSTOP)
    raise SystemExit("fault_driver: continued after SIGSTOP; the test should have killed this process")


def _watch_log(event: str, key: str) -> None:
    from lakt.runs import cache

    real_log = cache._log

    def log(results, name, config, *reason):
        real_log(results, name, config, *reason)
        if name == event and config.key == key:
            _freeze()

    cache._log = log


def _watch_renames(when: str, suffix: str) -> None:
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        hit = str(dst).endswith(suffix)
        if hit and when == "before":
            _freeze()
        real_replace(src, dst, *args, **kwargs)
        if hit and when == "after":
            _freeze()

    os.replace = replace


def main(argv: list[str]) -> int:
    event, dashes, *args = argv
    assert dashes == "--", __doc__
    kind, _, what = event.partition(":")
    if kind == "none":
        pass
    elif kind == "log":
        _watch_log(*what.split(":"))
    elif kind in ("before", "after"):
        _watch_renames(kind, what)
    else:
        raise SystemExit(f"fault_driver: unknown event {event!r}")
    if args[:1] == ["part"]:
        from lakt import runs
        runs.sweep(runs.preset("smoke")[0::4], args[1], progress=False)
        return 0
    from lakt.runs.cli import main as lakt
    return lakt(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
