# Two commands do all set-up on a fresh machine:
#   make demo   # creates .venv if missing, then trains on the built-in digits data
#   make test   # creates .venv if missing, then runs the test suite
# make lint checks style (ruff); CI runs it before the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.imgcls-installed
# pytest-xdist workers; each holds its own TensorFlow (about 1.5 GB). worksteal: a worker that runs out of
# tests takes queued ones from the other, so one long test at the end does not leave a core idle.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

.PHONY: demo test test-fast lint format install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/imgcls-train experiment=demo

test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

# ruff: lint (pyflakes, pycodestyle, bugbear, pyupgrade), import order, and formatting, as CI checks them
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks conf
	$(BIN)/ruff format --check src tests benchmarks conf

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks conf
	$(BIN)/ruff format src tests benchmarks conf

clean:
	rm -rf $(VENV) build dist src/*.egg-info
