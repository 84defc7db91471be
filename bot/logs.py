"""Logging set-up: every line names its job (from a ContextVar) and no secret is printed."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

current_job: ContextVar[int | None] = ContextVar("current_job", default=None)


@contextlib.contextmanager
def job_context(job_id: int) -> Iterator[None]:
    token = current_job.set(job_id)
    try:
        yield
    finally:
        current_job.reset(token)


class JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        job = current_job.get()
        record.job = f" job={job}" if job is not None else ""
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


def setup_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s%(job)s: %(message)s")
    )
    handler.addFilter(JobIdFilter())
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; URLs can carry signed query strings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic's INFO is plugin set-up and dialect notes; storage says one line per migration.
    logging.getLogger("alembic").setLevel(logging.WARNING)
