# The two commands: `make demo` runs the whole job end to end; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime install: the package with its serving, data (DuckDB profiling) and report extras.
# pip 25.1 or newer reads the dependency groups of pyproject.toml.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[serve,data,report]"
	touch $@

# Development install: every extra (text, vision, mlflow and gradio too), plus the test and lint groups.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	# The text and vision extras need torch: the CPU build 2.13.0 (never a newer one).
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[all,text,vision,notes,mlflow,gradio]" --group test --group lint
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/shipyard demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Two workers, each taking whole files (module fixtures are built once): about half the time on
# two cores. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
pytest: $(VENV)/.installed-dev
	$(BIN)/pytest --numprocesses=$(PYTEST_WORKERS) --dist=loadfile

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .shipyard .mypy_cache .ruff_cache .pytest_cache
