# Two commands do everything on a fresh machine: `make demo` and `make test`.
# The venv lives in .venv/ and is (re)built when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test test-serial unit model lint typecheck clean benchmark

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

# Builds the embedded default model once (seconds) into the cache directory.
model: $(INSTALLED)
	$(PY) -m conveyor_sgl.runtime.embedded.default_model

# On one embedded server (tiny model): the code program with its timeline, then the
# benchmark's test preset (2 items per workload, one agent, one early abort), and one table of
# what partial execution saved; its results go to .demo-results/ (ignored), not eval/results/.
demo: model
	$(PY) -m eval.demo --out-dir .demo-results

# The evaluation on public benchmarks, both models (82 min here), then its figures:
# eval/results/benchmark/{eval,fast}-latest.json and eval/results/benchmark/plots/.
benchmark: model
	$(PY) -m eval.benchmark --model eval --preset full-eval
	$(PY) -m eval.benchmark --model fast --preset full
	$(PY) -m eval.bench_plots

# Two pytest-xdist workers (6 min here; one process, `make test-serial`: 10.6 min): each
# session server's tests run on one worker, in the order tests/conftest.py gives the groups
# (the servers' first); a test marked timing is rerun once if it fails.
test: model
	$(PY) -m pytest -q -n 2 --dist loadgroup --no-loadscope-reorder

test-serial: model
	$(PY) -m pytest -q

# The fast tests: no SGLang server, no model build (so not after `model`).
unit: $(INSTALLED)
	$(PY) -m pytest -q -m "not server and not model"

lint: $(INSTALLED)
	$(VENV)/bin/ruff check conveyor_sgl programs eval tests
	$(VENV)/bin/ruff format --check conveyor_sgl programs eval tests

# Configured in pyproject.toml ([tool.mypy]: conveyor_sgl/).
typecheck: $(INSTALLED)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache
