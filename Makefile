# `make test` and `make demo` do all their own set-up: a virtual environment,
# the project and its test extras, and fresh Twisted plugin caches.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: all install test demo bench clean

all: test

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# compat mode puts this folder on sys.path, so twisted/plugins and probes/
	# are found from the source tree the way an installed copy would be.
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	@touch $@

install: $(STAMP)
	$(PY) -m rais.plugincache

test: install
	$(PY) -m pytest -q

demo: install
	$(PY) -m rais.demo

# BENCH= names benchmark modules in bench/ (default: all of them).
bench: install
	$(PY) -m bench $(BENCH)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
	find . -name dropin.cache -delete
