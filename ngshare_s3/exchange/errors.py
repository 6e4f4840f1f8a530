"""The domain's failures. The HTTP layer turns each into the JSON envelope with its status."""


class ExchangeError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(ExchangeError):
    status = 400


class Forbidden(ExchangeError):
    status = 403


class NotFound(ExchangeError):
    status = 404


class Conflict(ExchangeError):
    status = 409


class Unavailable(ExchangeError):
    """A store or the Hub cannot be reached: the client may retry."""

    status = 503
