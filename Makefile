# Two entry points for newcomers: `make run` and `make test`. Both install what they need
# into .venv first (Python >= 3.11 with venv, from the system).
VENV ?= .venv
PYTHON ?= python3

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

.PHONY: install run doctor test lint
install: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/acejam run

doctor: $(VENV)/.installed
	$(VENV)/bin/acejam doctor

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q
