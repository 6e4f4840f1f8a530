"""Errors every store backend raises, whatever its driver."""


class StoreConfigError(Exception):
    """The configured location cannot be used (unwritable folder, bad URL); stops start-up."""


class StoreUnavailable(Exception):
    """The backing server cannot be reached; the request may be retried later."""

    store = "file storage"  # what a user is told is unavailable


class DatabaseUnavailable(StoreUnavailable):
    """The metadata store cannot be reached."""

    store = "database"


class DuplicateKey(Exception):
    """A unique key already exists: the loser of a race, or a plain conflict."""


class ObjectNotFound(Exception):
    """No object has that key."""


class ChecksumMismatch(Exception):
    """The body that arrived does not have the MD5 it was sent with; nothing was stored."""
