# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv if missing and installs the pinned versions from constraints.txt.
# `make demo` installs only what the demo imports (DEMO_EXTRAS); `make test` installs a
# superset (TEST_EXTRAS), so after it the demo stamp holds too, while `make test` after
# `make demo` still installs the test extras (its own stamp is missing).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pip compiles every module it installs, one at a time, tests of the dependencies included;
# --no-compile and then compileall on every core, without those tests, does the same for
# what is imported in under half the time (and the modules then load as fast).
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -q --no-compile \
	-c constraints.txt
COMPILE := $(BIN)/python -m compileall -q -j 0 -x '/tests?/' \
	$(VENV)/lib/python*/site-packages
DEMO_EXTRAS := cli,evaluation
TEST_EXTRAS := $(DEMO_EXTRAS),dev,docs
# pmsampsize (the reports' sample-size section) pins its dependencies too tightly: installed
# without them; the evaluation extra brings what it imports.
PMSAMPSIZE_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --no-compile \
	--ignore-requires-python pmsampsize==0.1.0

.PHONY: demo test lint docs notebooks bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.demo-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e ".[$(DEMO_EXTRAS)]"
	$(PMSAMPSIZE_INSTALL)
	$(COMPILE)
	touch $@

$(VENV)/.test-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e ".[$(TEST_EXTRAS)]"
	$(PMSAMPSIZE_INSTALL)
	$(COMPILE)
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/spinerisk demo

lint: $(VENV)/.test-installed
	$(BIN)/ruff check spinerisk tests docs benchmarks
	$(BIN)/ruff format --check spinerisk tests
	$(BIN)/lint-imports
	$(BIN)/mypy

docs: $(VENV)/.test-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/site

notebooks: $(VENV)/.test-installed
	$(BIN)/python -m pytest --nbmake notebooks -q -p no:cacheprovider -n auto

# The notebooks run in the same pytest session as the tests, so the two workers share them
# out with the test files (slowest first: tests/conftest.py) instead of a second session.
test: lint $(VENV)/.test-installed
	MPLBACKEND=Agg $(BIN)/python -m pytest tests spinerisk notebooks --doctest-modules --nbmake \
		-q -n auto --dist loadfile --no-loadscope-reorder
	$(MAKE) docs

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
$(VENV)/.bench-installed: $(VENV)/.test-installed
	$(PIP_INSTALL) -e ".[$(TEST_EXTRAS),bench]"
	$(COMPILE)
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/bench_cohort.py
	$(BIN)/python benchmarks/bench_models.py
	$(BIN)/python benchmarks/bench_explain.py
	$(BIN)/python benchmarks/bench_latency.py
	$(BIN)/python benchmarks/bench_api.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_default.py
	$(BIN)/python benchmarks/bench_warnings.py
	$(BIN)/python benchmarks/bench_scaling.py
	$(BIN)/python benchmarks/bench_bootstrap.py --before-commit 00503c2^ --json benchmarks/results/bootstrap.json
	$(BIN)/python benchmarks/bench_intervals.py
	$(BIN)/python benchmarks/bench_summary.py
