"""Log output: readable lines for a terminal, or one JSON object per line for a log collector
(Kubernetes, Loki, Elasticsearch), chosen with --log-format."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

from aiohttp.http_exceptions import HttpProcessingError

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "[%(levelname)1.1s %(asctime)s %(name)s] %(message)s"
# Set on the record by the access log (`extra={"fields": {...}}`); emitted as top-level keys.
FIELDS = "fields"
QUOTED = re.compile(r"b?'(?:[^'\\]|\\.)*'|b?\"(?:[^\"\\]|\\.)*\"")  # a repr() of text or bytes


class UnparsedRequestLog(logging.LoggerAdapter):
    """aiohttp's server log, for its HTTP protocol. The parser's error quotes the request line
    or header it choked on, which may hold a token or a cookie: a request it cannot parse is
    logged as one warning line with the reason alone, quoted parts replaced."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})

    def log(self, level: int, msg: object, *args: object, exc_info: object = None, **kwargs) -> None:
        if isinstance(exc_info, HttpProcessingError):
            reason = QUOTED.sub("…", exc_info.message.partition("\n")[0]).rstrip(": ")
            msg, args = f"{msg}: %d %s", (*args, exc_info.code, reason)
            level, exc_info = min(level, logging.WARNING), None
        super().log(level, msg, *args, exc_info=exc_info, **kwargs)


class JsonFormatter(logging.Formatter):
    """Time, level, logger and message, plus the record's structured fields and traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # tells the lines of worker processes apart
            **getattr(record, FIELDS, {}),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(log_format: str, debug: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler], force=True)
