"""One exception type for mistakes a user can make.

Anything raised as :class:`LaktError` is shown by the CLI (and by the notebooks'
parameter checks) as a single line that names the fix, with exit code 2 and no
traceback. Bugs in lakt stay ordinary exceptions so they keep their traceback.
"""


class LaktError(ValueError):
    """A user-caused error whose message is one line saying what to change."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`LaktError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise LaktError(message)
