# The two set-up commands: `make demo` and `make test`. Everything installs into .venv from
# pyproject.toml; nothing needs to be installed by hand.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
SAMPLES := tests/fixtures/photos

.PHONY: demo test lint typecheck pytest fuzz bench bench-search clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[cli,local]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	touch $@ $(VENV)/.installed-demo

demo: $(VENV)/.installed-demo
	$(BIN)/lookalike demo --out demo-output

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/pytest -q

test: lint typecheck pytest

# The decode + hash fuzzing properties of the test suite, run for much longer.
fuzz: $(VENV)/.installed-test
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-5000} $(BIN)/pytest -q tests/test_fuzz_decode.py -p no:warnings

# Speed and fast-vs-exact accuracy against the peers, on the photos in ../shared/photos.
$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test,bench]'
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/fast_vs_exact.py

# Search benchmark against NumPy brute force and FAISS (SCALE=1 is the full 10M-hash run).
bench-search: $(VENV)/.installed-test
	$(PIP) install -e '.[test,faiss]'
	$(BIN)/python bench/search.py --scale $${SCALE:-0.1}

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
