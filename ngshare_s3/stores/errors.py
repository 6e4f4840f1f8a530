"""Errors every store backend raises, whatever its driver.

An error raised because the driver failed keeps the driver's exception as its `__cause__`, so
the log of the answer it becomes says what really happened."""


class StoreConfigError(Exception):
    """The configured location cannot be used (unwritable folder, bad URL); stops start-up."""


class StoreUnavailable(Exception):
    """The backing server cannot be reached; the request may be retried later."""

    store = "file storage"  # what a user is told is unavailable


class DatabaseUnavailable(StoreUnavailable):
    """The metadata store cannot be reached."""

    store = "database"


class StoreRefused(StoreUnavailable):
    """The server answers but refuses the service: credentials wrong, expired or lacking a
    permission, or a request signed with a clock too far off. Retrying does not help; an
    administrator must fix the configuration. `reason` is the server's name for it."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class DatabaseRefused(StoreRefused, DatabaseUnavailable):
    """The metadata store refuses the service's credentials."""


class DuplicateKey(Exception):
    """A unique key already exists: the loser of a race, or a plain conflict."""


class ObjectNotFound(Exception):
    """No object has that key."""


class ChecksumMismatch(Exception):
    """The body that arrived does not have the MD5 it was sent with; nothing was stored."""
