# `make test` and `make demo` each create .venv if it is missing and install
# metanas (editable, with its test extras) into it. The tests run in two
# processes (pytest-xdist): servers and workers wait much of the time, so
# two processes roughly halve the suite's time on two cores.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.metanas-installed
export TF_CPP_MIN_LOG_LEVEL := 2
export TF_ENABLE_ONEDNN_OPTS := 0

.PHONY: install test demo clean constraints

install: $(STAMP)

# constraints.txt holds the versions CI tested on Python 3.11, so a fresh
# install does not pick up a release made since; setup.py's ranges are what
# users' pip accepts. Other Pythons resolve those ranges (numpy 2.4, scipy 1.17
# and pandas 3 of the pins need 3.11 or later).
$(STAMP): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	PINS=$$($(PY) -c 'import sys; print("-c constraints.txt" * (sys.version_info[:2] == (3, 11)))'); \
	$(PY) -m pip install --quiet --upgrade $$PINS pip setuptools wheel && \
	$(PY) -m pip install --quiet $$PINS -e ".[test]"
	touch $(STAMP)

# Resolves setup.py's ranges afresh (the newest versions they allow) in a
# scratch venv and writes what it installed to constraints.txt.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	.venv-constraints/bin/python -m pip install --quiet ".[test]"
	head -n 5 constraints.txt > constraints.new
	.venv-constraints/bin/python -m pip freeze --all | grep -v '^metanas' >> constraints.new
	mv constraints.new constraints.txt
	rm -rf .venv-constraints build

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist worksteal tests

demo: $(STAMP)
	$(VENV)/bin/metanas demo

clean:
	rm -rf $(VENV) .venv-constraints build *.egg-info .pytest_cache demo_runs
