"""Who bears a song that ended without reaching the chat: the operator's bill, the user's quota.

Two separate questions, answered once here and by the worker's one failure path:

- **Was it billed?** The upstream charges for every song it finished (WaveSpeed refunds the
  ones that failed). Once it reported a song done, the job keeps its cost, whatever happens
  after — a refused download, a flagged track, a chat that is gone — so monthly budgets
  count what the operator actually pays. A submit that may have reached the upstream
  (``submit_uncertain``) keeps its cost too: it may be running there, and a budget must not
  be passed on a guess that it wasn't.
- **Does the user get the quota back?** Yes when they got nothing through no doing of
  theirs: the upstream or the bot failed. No when the song was made and their own chat
  turned it away (held back as not safe for the chat, the bot blocked, the chat gone):
  otherwise such a song could be asked for again and again for free.

The user's quota follows the error code alone, so any process can tell the user which
(:func:`bot.messages.failure_message`).
"""

from __future__ import annotations

# The song was made; the chat it was asked from refused it.
CHAT_REFUSALS = frozenset({"nsfw", "bot_blocked", "chat_gone"})


def refunds_quota(error_code: str | None) -> bool:
    """Whether a job that failed with ``error_code`` gives its reserved seconds back."""
    return error_code not in CHAT_REFUSALS
