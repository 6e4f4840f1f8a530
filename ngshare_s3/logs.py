"""Log output: readable lines for a terminal, or one JSON object per line for a log collector
(Kubernetes, Loki, Elasticsearch), chosen with --log-format."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "[%(levelname)1.1s %(asctime)s %(name)s] %(message)s"
# Set on the record by the access log (`extra={"fields": {...}}`); emitted as top-level keys.
FIELDS = "fields"


class JsonFormatter(logging.Formatter):
    """Time, level, logger and message, plus the record's structured fields and traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, FIELDS, {}),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(log_format: str, debug: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler], force=True)
