# Two commands on a fresh machine with Python 3.11 and git:  make run  /  make test
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export OMP_WAIT_POLICY := PASSIVE
DEMO_DIR := data/demo

.PHONY: install run test test-all lint demo clean-outputs

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

demo: install
	@if [ -z "$$(ls -d data/raw/*/ 2>/dev/null)" ]; then \
	  labelcycle demo --out $(DEMO_DIR) && \
	  labelcycle ingest --annotations $(DEMO_DIR)/annotations.csv --items $(DEMO_DIR)/items.csv --gold $(DEMO_DIR)/gold.csv; \
	else echo "data/raw already holds batches: not adding the demo"; fi

run: demo
	dvc repro
	@echo
	@echo "Done. Results:"
	@echo "  metrics        reports/metrics.json   (dvc metrics show)"
	@echo "  plots          reports/plots/"
	@echo "  curated data   data/curated/dataset.parquet"
	@echo "  quarantine     data/interim/quarantine.parquet"
	@echo "  model          models/quality/ (registered in MLflow as labelcycle-quality)"
	@echo "MLflow UI:  $(VENV)/bin/labelcycle ui   (prints the URL of the project's runs table)"

test: install
	$(BIN)/python -m pytest -q -m "not slow"

test-all: install
	$(BIN)/python -m pytest -q

LINT_PATHS := src stages tests benchmarks scripts

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
