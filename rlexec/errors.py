"""Errors a user can act on. Each message names the file, row or field at fault."""

from __future__ import annotations


class RlexecError(Exception):
    """Base class: the CLI prints these as one line instead of a traceback."""


class DataFileError(RlexecError, ValueError):
    """Bad input data.

    ``source`` is the file (or table) name; ``line`` is the 1-based line of a text file (a header,
    where there is one, is line 1), ``row`` the 1-based data row of a parquet file or in-memory table.
    """

    def __init__(
        self,
        source: str,
        message: str,
        *,
        line: int | None = None,
        row: int | None = None,
        field: str | None = None,
    ):
        self.source, self.line, self.row, self.field = source, line, row, field
        where = source
        if line is not None:
            where += f", line {line}"
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class BarDataError(DataFileError):
    """Bad minute-bar input (see :mod:`rlexec.data.validation`)."""


class OrderError(RlexecError, ValueError):
    """An order that cannot be executed as given (bad size, side, window or too large for the market).

    With a ``source`` (the order file), ``line`` is the 1-based line of a CSV file (the header is
    line 1) and ``row`` the 1-based row of a parquet file; without one, ``row`` is the order's 1-based
    position in the list given. ``message`` is the text without that location.
    """

    def __init__(self, message: str, *, source: str | None = None, row: int | None = None,
                 line: int | None = None):
        self.message, self.source, self.row, self.line = message, source, row, line
        where = ""
        if source is not None:
            where = (f"{source}" + (f", line {line}" if line is not None else "")
                     + (f", row {row}" if row is not None else "") + ": ")
        elif row is not None:
            where = f"order {row}: "
        super().__init__(where + message)


class ConfigError(RlexecError, ValueError):
    """An invalid configuration value; the message names the field."""
