"""Errors the `parity` command reports as one line, without a traceback."""


class ParityError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


class DataError(ParityError):
    """Data that is missing, unreachable, corrupt or of the wrong shape."""


class WorkerError(ParityError):
    """A framework worker process failed."""
