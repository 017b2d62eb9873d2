# Fresh machine: `make demo` (venv + install + the main job) and `make test` (install + the whole suite).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint lock clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/conceptchess demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	cd benchmarks && for b in engine_throughput move_matching training_throughput positions_throughput \
	    concepts_throughput extraction_throughput probe_sweep puzzle_verify history_throughput engine_labels search_throughput leace_fit discovery_solve; do \
	  echo "== $$b"; ../$(PY) $$b.py || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check conceptchess tests benchmarks

# the exact versions of the current virtualenv, for make test / make demo / CI (torch without its +cpu tag)
lock: $(STAMP)
	{ sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --exclude-editable | sed 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/'; } > constraints.txt.part
	mv constraints.txt.part constraints.txt

clean:
	rm -rf $(VENV) build *.egg-info
