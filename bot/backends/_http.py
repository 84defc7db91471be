"""HTTP-to-error classification shared by the backends.

The one rule that matters most: a submit that failed *before anything was sent* (connection
refused, connect timeout, no pool slot) is safe to retry, while one that failed *after* sending
(read timeout, broken connection, 5xx, unreadable answer) may have created a billed task.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot.errors import (
    BackendError,
    PermanentBackendError,
    SubmitUncertain,
    TransientBackendError,
)

# Exceptions httpx raises when the request never left this machine.
NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)
_DETAIL_MAX = 300


def json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def error_text(payload: Any, response: httpx.Response) -> str:
    """The upstream's reason: ``message``, else ``error``, else ``detail``, else the raw body.

    Whole, not cut: :func:`scrub` it, then :func:`status_error` cuts it. Cut first, a key
    straddling the cut would leave its prefix, which no later scrub recognises."""
    if isinstance(payload, dict):
        for key in ("message", "error", "detail"):
            value = payload.get(key)
            if value:
                return str(value)
    return response.text or response.reason_phrase


def retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def envelope_data(
    response: httpx.Response, *, service: str, secret: str | None, unclear: type[BackendError]
) -> Any:
    """``data`` of a successful ``{"code", "data", ...}`` envelope (both backends answer in one),
    else the error this answer means. An error may hide in a 200's envelope: its ``code`` wins."""
    payload = json_or_none(response)
    status = response.status_code
    if 200 <= status < 300 and isinstance(payload, dict):
        code = payload.get("code", 200)
        if isinstance(code, int) and not isinstance(code, bool) and code >= 300:
            status = code
    if 200 <= status < 300:
        if not isinstance(payload, dict) or "data" not in payload:
            raise unclear(f"{service} sent an unreadable answer (HTTP {response.status_code})")
        return payload["data"]
    detail = scrub(error_text(payload, response), secret)
    raise status_error(service, status, detail, unclear=unclear, wait=retry_after(response))


def scrub(text: str, secret: str | None) -> str:
    """Remove a secret an upstream may have echoed back into its error text."""
    return text.replace(secret, "***") if secret else text


def status_error(
    service: str,
    status: int,
    detail: str,
    *,
    unclear: type[BackendError],
    wait: float | None = None,
) -> BackendError:
    """The exception for a non-2xx answer. ``unclear`` is raised for 5xx: on a submit that is
    :class:`SubmitUncertain` (the task may exist), on a poll :class:`TransientBackendError`.
    ``detail`` comes scrubbed (see :func:`error_text`); it is cut to a readable length here."""
    text = f"{service} answered {status}: {detail[:_DETAIL_MAX]}"
    if status in (408, 429):
        return TransientBackendError(text, code="rate_limited", retry_after=wait)
    if status == 401:
        return PermanentBackendError(text, code="auth_failed")
    if status == 403:
        return PermanentBackendError(text, code="forbidden")
    if status in (400, 413, 415, 422):
        return PermanentBackendError(text, code="invalid_request")
    if status >= 500:
        return unclear(text, retry_after=wait)
    return PermanentBackendError(text, code="upstream_rejected")


def transport_error(service: str, exc: Exception, *, submitting: bool) -> BackendError:
    """The exception for a request that got no HTTP answer at all."""
    kind = type(exc).__name__
    if isinstance(exc, NOT_SENT):
        return TransientBackendError(f"could not reach {service}: {kind}")
    if submitting:
        return SubmitUncertain(f"{service} did not answer the submit: {kind}")
    return TransientBackendError(f"{service} did not answer: {kind}")
