"""The job loop (loop.py) and its phases: submit, poll, finish, deliver.

The names the rest of the code uses are re-exported here; the modules:

- loop.py: `Worker`, the one loop: claim, adopt, lease rounds, and `_settle`, which acts
  on each phase's outcome.
- submit.py, poll.py, finish.py, deliver.py: the phases; each returns an outcome.
  phases.py wires them once, with the retry policy they share.
- outcomes.py: what a phase can end in; owned.py: the in-flight record and `Phase`.
- failure.py: the one failure path; forecast.py: poll plans and ready times;
  positions.py: queue positions told to the chat; retention.py: the sweep;
  config.py: `WorkerConfig` and lease owner ids.
- Back-off and step budgets live in bot/retry.py, one policy for every step.
"""

from bot.retry import DB_ERRORS, outage
from bot.worker.config import WorkerConfig, new_owner_id, owner_is_dead_here
from bot.worker.loop import Worker
from bot.worker.owned import Phase

__all__ = [
    "DB_ERRORS",
    "Phase",
    "Worker",
    "WorkerConfig",
    "new_owner_id",
    "outage",
    "owner_is_dead_here",
]
