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

.PHONY: install test demo clean

install: $(STAMP)

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist worksteal tests

demo: $(STAMP)
	$(VENV)/bin/metanas demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo_runs
