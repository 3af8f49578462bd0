# Two commands on a fresh clone: `make demo` and `make test`. Each creates .venv when missing.
# TORCH_SPEC pins the version; the index decides the build (this machine's serves the CPU wheel;
# TORCH_INDEX=https://download.pytorch.org/whl/cpu asks for it anywhere). GPU users install their
# CUDA torch into .venv first (see README) and the install step then keeps it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.alignsweep-installed
RESULTS ?= results
export HF_HUB_OFFLINE ?= 1
export RAY_USAGE_STATS_ENABLED ?= 0

.PHONY: install demo test test-fast bench models clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

models: install
	$(BIN)/alignsweep models build

demo: install
	$(BIN)/alignsweep run sweeps/demo.yaml --results $(RESULTS)
	$(BIN)/alignsweep report $(RESULTS)/demo --out $(RESULTS)/demo/report

# Everything: Ray, sweeps, training, model builds (the README's test command).
test: install
	$(BIN)/python -m pytest -q

# The fast tier: no Ray, no sweep, no training, no model built beyond the cached tiny llama
# (built once on first use). Under 3 minutes on 2 cores.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(RESULTS) .pytest_cache
