# santebus-edge - every target bootstraps what it needs (.venv, mosquitto) on Debian 12.
PY      ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PACKAGES := edge drivers calibration simulators tests benchmarks

.PHONY: all demo test chaos bootstrap system-deps lint format typecheck imports pytest bench clean \
        install uninstall

all: test

bootstrap: system-deps $(STAMP)

system-deps:
	@bash .ci/system-deps.sh

$(BIN)/python:
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "santebus-edge needs Python 3.11 (Debian 12); found " + sys.version.split()[0])'
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

demo: bootstrap
	$(BIN)/python -m simulators.demo

test: bootstrap lint typecheck imports pytest

lint: bootstrap
	$(BIN)/ruff check $(PACKAGES)
	$(BIN)/ruff format --check $(PACKAGES)

format: bootstrap
	$(BIN)/ruff format $(PACKAGES)
	$(BIN)/ruff check --fix $(PACKAGES)

typecheck: bootstrap
	$(BIN)/mypy

imports: bootstrap
	$(BIN)/lint-imports

pytest: bootstrap
	$(BIN)/pytest

# the long variants of the chaos tests (200 daemon kills)
chaos: bootstrap
	SANTEBUS_CHAOS_KILLS=200 $(BIN)/pytest tests/chaos

bench: bootstrap
	$(BIN)/python -m benchmarks.codec_throughput
	$(BIN)/python -m benchmarks.drain
	$(BIN)/python -m benchmarks.latency
	$(BIN)/python -m benchmarks.footprint
	$(BIN)/python -m benchmarks.fleet
	$(BIN)/python -m benchmarks.signal_accuracy
	$(BIN)/python -m benchmarks.signal_speed
	$(BIN)/python -m benchmarks.signal_robustness

clean:
	rm -rf $(VENV) .demo .mypy_cache .ruff_cache .pytest_cache .hypothesis

# As root: the service into $(ROOT)/opt/santebus, /etc, /var/lib (ROOT= empty: this system).
# uninstall keeps /etc/santebus and /var/lib/santebus (the outbox) unless PURGE=1. docs/install.md
install:
	@ROOT="$(ROOT)" PY="$(PY)" bash systemd/install.sh

uninstall:
	@ROOT="$(ROOT)" PURGE="$(PURGE)" bash systemd/uninstall.sh
