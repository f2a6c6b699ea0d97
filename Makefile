# Two commands a newcomer needs: `make train` (main job on the shapes world) and `make test`.
# The venv installs torch==2.13.0 first so pip takes the local CPU wheel instead of a CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test lint clean

$(STAMP): pyproject.toml Makefile  # Makefile too: a change of the extras installed reinstalls
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,sweep]"  # sweep: CI runs the joblib and Optuna sweeps
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/vlmalign-train $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check vlmalign tests benchmarks

clean:
	rm -rf $(VENV) outputs .cache
