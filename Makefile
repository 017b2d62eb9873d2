# Fresh machine: `make demo` (venv + install + the main job) and `make test` (install + the whole suite).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/conceptchess demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/engine_throughput.py
	$(PY) benchmarks/move_matching.py

lint: $(STAMP)
	$(VENV)/bin/ruff check conceptchess tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
