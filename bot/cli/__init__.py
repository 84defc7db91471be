"""`acejam` command line: run, generate, doctor, jobs, admin, db upgrade. Thin: it parses
and prints.

One module per group of commands (`run`, `doctor`, `jobs`, `admin`); importing them here puts
their commands on :data:`app`, the ``acejam`` entry point (also ``python -m bot``)."""

from bot.cli import admin, doctor, jobs, run
from bot.cli.common import app

__all__ = ["admin", "app", "doctor", "jobs", "run"]
