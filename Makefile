# govheal: the two commands a new user needs are `make run` and `make test`.
# Every install step lives here, so a fresh Debian machine (root or sudo) or a Mac with Homebrew works.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= examples/govheal.yaml
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
UNAME  := $(shell uname -s)

export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test bench chaos lint fmt venv tools browser bench-tools clean help

help:
	@echo "make run    - install what is missing, start the demo fleet and the whole stack"
	@echo "make test   - install what is missing, lint, run every test"
	@echo "make bench  - run the benchmarks (docs/benchmarks.md)"
	@echo "make chaos  - 300 faults against the full stack in <= 15 min (SCALE=1: the N-node fleet curve)"
	@echo "make lint   - ruff"

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11+"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: govheal needs Python >= 3.11 ($(PYTHON) is older); run: make PYTHON=python3.11 ..."; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  if command -v apt-get >/dev/null; then \
	    echo "installing python3-venv (Debian ships venv separately)"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv; \
	  else echo "error: $(PYTHON) has no venv/ensurepip module; install it (e.g. python3-venv)"; exit 1; fi; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

venv: $(STAMP)

# Prometheus 2.42+ and Alertmanager 0.25+: Debian's packages on Linux, Homebrew on macOS.
tools:
	@missing=""; \
	for b in prometheus promtool amtool; do command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || missing="$$missing alertmanager"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$(UNAME)" = Darwin ]; then brew install prometheus alertmanager; \
	  elif command -v apt-get >/dev/null; then \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager; \
	  else echo "error: install Prometheus >= 2.42 and Alertmanager >= 0.25 with your package manager"; exit 1; fi; \
	fi

# Chromium and its WebDriver for the governance page's browser test (tests/test_governance_browser.py).
# Debian: the chromium and chromium-driver packages. Elsewhere (macOS) the test says why it skips and the
# page is still tested through Flask's client.
browser:
	@if [ "$(UNAME)" != Darwin ] && command -v apt-get >/dev/null; then \
	  command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	    echo "installing: chromium chromium-driver (the governance page's browser test)"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium chromium-driver; }; \
	fi

# The peers the benchmarks compare against, and wrk (the governance benchmark's HTTP load generator: C,
# so 20 clients measure the server, not a Python client's GIL). (On a host with systemd, installing
# supervisor and monit also starts Debian's own services; the benchmarks never use them: they run their
# own instances with config and state in a temporary directory.)
bench-tools:
	@if [ "$(UNAME)" != Darwin ]; then \
	  command -v prometheus-process-exporter >/dev/null && command -v prometheus-blackbox-exporter >/dev/null \
	    && command -v supervisord >/dev/null && command -v monit >/dev/null && command -v wrk >/dev/null || { \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus-process-exporter prometheus-blackbox-exporter supervisor monit wrk; }; \
	else command -v wrk >/dev/null || brew install wrk; \
	fi

run: venv tools
	$(BIN)/govheal up --config $(CONFIG)

lint: venv
	$(BIN)/ruff check .

test: venv tools browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv tools bench-tools
	$(BIN)/python -m bench $(BENCH_ARGS)

# Not part of `make test`: ~15 minutes of faults against `govheal up` (docs/benchmarks.md, "Chaos").
# As root the state dir is a tmpfs of its own (the disk-full fault); CHAOS_ARGS="--faults 40 --minutes 3".
chaos: venv tools
	$(BIN)/python -m bench.chaos $(if $(SCALE),--scale) $(CHAOS_ARGS)

fmt: venv
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) examples/.govheal .pytest_cache .ruff_cache
