"""Errors the core classifies once and then only branches on.

    AceJamError
    ├── ConfigError               a setting is missing or invalid (stops start-up)
    ├── StoreUnavailable          the database is locked or away for a moment (a store
    │                             raises it for its driver's errors): wait, then retry
    ├── DeliveryUnavailable       the chat adapter can't post right now (stopping, offline):
    │                             the job waits for the next delivery, no attempt counted
    ├── DeliveryRefused           the chat will never take the track (the user blocked the
    │                             bot, the chat is gone): not retried; ``code`` says which
    └── BackendError              anything that went wrong talking to a generation backend
        ├── TransientBackendError   try again later (429, 5xx, network, timeout on a poll)
        ├── PermanentBackendError   the same request will fail again (4xx, auth, bad input)
        ├── SubmitUncertain         the submit may have reached upstream: never resend it
        └── AudioError              the output can't be fetched or isn't usable audio

Users never see ``str(exc)``: :attr:`BackendError.user_message` is the sentence for them,
and ``code`` the stable tag we store on the job.
"""

from __future__ import annotations


class AceJamError(Exception):
    pass


class ConfigError(AceJamError):
    pass


class StoreUnavailable(AceJamError):
    """Raised by a store (``storage/``) when the database can't answer right now: locked,
    a connection cut, the server restarting. The core waits these out and never sees the
    driver's own exceptions; ``kind`` names the driver's error, for logs."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class DeliveryUnavailable(AceJamError):
    pass


class DeliveryRefused(AceJamError):
    """Raised by an adapter when the platform says the chat is closed to the bot for good.

    ``code`` is ``bot_blocked`` (the user blocked the bot) or ``chat_gone`` (the chat was
    deleted, or the bot removed from it or barred from posting there)."""

    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class BackendError(AceJamError):
    code = "backend_error"
    user_message = "The music engine had a problem with this song."

    def __init__(self, detail: str, *, code: str | None = None, retry_after: float | None = None):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.retry_after = retry_after


class TransientBackendError(BackendError):
    code = "upstream_unavailable"
    user_message = "The music engine is busy or unreachable right now."


class PermanentBackendError(BackendError):
    code = "upstream_rejected"
    user_message = "The music engine refused this request."


class SubmitUncertain(BackendError):
    code = "submit_uncertain"
    user_message = (
        "The music engine did not confirm it got the request, so to avoid paying twice "
        "I did not send it again."
    )


class AudioError(BackendError):
    code = "bad_audio"
    user_message = "The finished song could not be downloaded or isn't playable audio."
