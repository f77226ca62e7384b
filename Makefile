# Thin wrappers. `make demo` and `make test` each create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export MUJOCO_GL ?= egl
export PYTHONUNBUFFERED := 1

.PHONY: setup demo test test-all bench clean-runs lint

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

demo: setup           ## robot data -> tokenizer -> world model -> RLVR -> eval (tiny, CPU, fixed step budgets)
	bash scripts/demo.sh

test: setup           ## default suite (skips @slow)
	$(PY) -m pytest -q

test-all: setup       ## everything, including slow end-to-end runs
	$(PY) -m pytest -q -m "not gpu"

bench: setup
	$(VENV)/bin/wm bench kernels --out runs/bench

lint: setup
	$(VENV)/bin/ruff check .
