"""The ``rlexec`` command line."""

from rich.console import Console


def make_console() -> Console:
    """Rich console; when output is not a terminal (logs, CI) it is 120 columns wide so tables do not wrap."""
    return Console(width=None if Console().is_terminal else 120)
