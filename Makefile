# Two commands do everything on a fresh machine: `make demo` and `make test`.
# The venv lives in .venv/ and is (re)built when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test model lint clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

# Builds the embedded default model once (seconds) into the cache directory.
model: $(INSTALLED)
	$(PY) -m conveyor_sgl.runtime.default_model

demo: model
	$(PY) -m programs.code_solver

test: model
	$(PY) -m pytest -q

lint: $(INSTALLED)
	$(VENV)/bin/ruff check conveyor_sgl programs eval tests

clean:
	rm -rf $(VENV) .pytest_cache
