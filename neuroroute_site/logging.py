"""JSON-lines log formatting that never lets a credential through."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import orjson

# Bearer tokens, our client tokens, OpenAI/Anthropic-style keys.
_SECRET_PATTERNS = re.compile(r"(Bearer\s+)\S+|\bnr_[A-Za-z0-9_\-]{8,}|\bsk-[A-Za-z0-9_\-]{8,}", re.IGNORECASE)
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    return _SECRET_PATTERNS.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()
