# `make test` and `make demo` do all their own set-up: a virtual environment,
# the project and its test extras, and fresh Twisted plugin caches.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: all install lint test demo bench wheel clean

all: test

# setuptools' default editable install (compat mode is deprecated) maps the
# rais and probes packages only, but twistd finds its dropins by scanning
# sys.path for twisted/plugins folders. So this folder itself goes on sys.path
# with a plain .pth file (Python's site module): edits and new modules under
# rais/, probes/ and twisted/plugins/ take effect without reinstalling.
$(STAMP): setup.cfg pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,demo]'
	echo '$(CURDIR)' > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/rais-source.pth"
	@touch $@

install: $(STAMP)
	$(PY) -m rais.plugincache

# ruff (pycodestyle, pyflakes, import order, bugbear) and mypy; settings in pyproject.toml.
# etc/probes.d holds the sample drop-in probe operators copy: it is held to the same standard.
lint: install
	$(PY) -m ruff check rais probes tests bench twisted etc/probes.d
	$(PY) -m mypy

# The tests without real processes spread over every core (pytest-xdist); the integration
# tests, whose timings are the point, then run one at a time on an otherwise idle machine.
test: install lint
	$(PY) -m pytest -q -m 'not integration' -n auto
	$(PY) -m pytest -q -m integration

demo: install
	$(PY) -m rais.demo

# The bench's own extra (matplotlib, for plots) goes in only here, so `make test` never needs it.
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,demo,bench]'
	@touch $@

# BENCH= names benchmark modules in bench/ (default: all of them). bench.vip also needs
# keepalived, nginx, arping and curl (Debian packages; it says which are missing) and root.
bench: install $(BENCH_STAMP)
	$(PY) -m bench $(BENCH)

# The package for real hosts (README "Deploying on real hosts"): dist/rais-VERSION-py3-none-any.whl.
wheel: install
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w dist .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
	find . -name dropin.cache -delete
