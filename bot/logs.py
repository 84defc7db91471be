"""Logging set-up: every line names its job (from a ContextVar) and no secret is printed.

Two formats (``LOG_FORMAT``): ``text``, for people (``time LEVEL logger job=N: message``),
and ``json``, for log shippers: one object per line with ``time`` (UTC, ISO 8601), ``level``,
``logger``, ``message``, ``job``, ``platform``, ``chat`` and ``user`` (ids, null when the
line is about no job or chat) and, after a failure, ``exception``."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Literal

LogFormat = Literal["text", "json"]

current_job: ContextVar[int | None] = ContextVar("current_job", default=None)
# Where the job (or the request being handled) comes from: platform, chat id, user id.
Origin = tuple[str | None, str | None, str | None]
current_origin: ContextVar[Origin | None] = ContextVar("current_origin", default=None)


@contextlib.contextmanager
def job_context(
    job_id: int, *, platform: str | None = None, chat: str | None = None, user: str | None = None
) -> Iterator[None]:
    token = current_job.set(job_id)
    where = (platform, chat, user)
    origin = current_origin.set(where) if any(where) else None
    try:
        yield
    finally:
        if origin is not None:
            current_origin.reset(origin)
        current_job.reset(token)


class JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        job = current_job.get()
        record.job = f" job={job}" if job is not None else ""
        record.acejam_job = job
        record.acejam_origin = current_origin.get()
        return True


class RedactSecrets(logging.Filter):
    """Last line of defence: replace any configured secret that reaches a log line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self._secrets:
            redacted = redacted.replace(secret, "[redacted]")
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self._secrets:
                text = text.replace(secret, "[redacted]")
            record.exc_text, record.exc_info = text, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (newlines in a message or a traceback are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        origin = getattr(record, "acejam_origin", None)
        platform, chat, user = origin if origin else (None, None, None)
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "job": getattr(record, "acejam_job", None),
            "platform": platform,
            "chat": chat,
            "user": user,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def log_handler(
    fmt: LogFormat, secrets: Iterable[str], stream: IO[str] | None = None
) -> logging.Handler:
    """A handler writing ``fmt`` lines to ``stream`` (stderr), job ids added, secrets out."""
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s%(job)s: %(message)s")
        )
    handler.addFilter(JobIdFilter())
    handler.addFilter(RedactSecrets(secrets))
    return handler


def setup_logging(level: str, secrets: Iterable[str], fmt: LogFormat = "text") -> None:
    root = logging.getLogger()
    root.handlers[:] = [log_handler(fmt, secrets)]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; URLs can carry signed query strings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic's INFO is plugin set-up and dialect notes; storage says one line per migration.
    logging.getLogger("alembic").setLevel(logging.WARNING)
