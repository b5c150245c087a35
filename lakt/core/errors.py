"""One exception type for mistakes a user can make.

Anything raised as :class:`LaktError` is shown by the CLI as a single line that names
the fix, with exit code 2 and no traceback; in a notebook (IPython, papermill) it is
likewise rendered as that one line. Bugs in lakt stay ordinary exceptions so they
keep their traceback.
"""


class LaktError(ValueError):
    """A user-caused error whose message is one line saying what to change."""

    def _render_traceback_(self):  # IPython's hook: show the message, not the stack
        return [f"{type(self).__name__}: {self}"]


def require(condition: bool, message: str) -> None:
    """Raise :class:`LaktError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise LaktError(message)
