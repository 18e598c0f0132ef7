# Each target creates .venv when missing and installs what it needs once (a stamp file per extra
# records the install; editing pyproject.toml makes it run again).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: train test lint format clean bench-dist bench bench-quick notebook

train: $(VENV)/.installed-base
	$(VENV)/bin/bpgpu train

# The whole suite on two processes (pytest-xdist, from the test extra).
test: $(VENV)/.installed-test
	$(PY) -m pytest -n 2

# The benchmark harness (benchmarks/run.py) with everything it compares against (the bench extra:
# JAX, and PyTorch's CPU build from PyTorch's own index, since PyPI's Linux wheel is the multi-GB
# CUDA one); the table lands in benchmarks/results/local/ (ignored by git), rewritten after every
# figure. `make bench-quick`: W1 and W2, one round, one thread.
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu

bench: $(VENV)/.installed-bench
	$(PY) -m benchmarks.run

bench-quick: $(VENV)/.installed-bench
	$(PY) -m benchmarks.run --quick

# PyTorch's CPU build, unless a torch is installed already; one try, and one line when its index
# cannot be reached (pip would otherwise retry and warn for minutes).
$(VENV)/.installed-bench: pyproject.toml | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet --retries 0 --timeout 30 \
		torch --index-url $(TORCH_CPU_INDEX) >/dev/null 2>&1 || \
		{ echo "make bench: could not install PyTorch's CPU build from $(TORCH_CPU_INDEX) (offline?); install torch yourself, then run make bench again" >&2; exit 1; }
	$(PY) -m pip install --quiet -e ".[bench]"
	touch $@

# Jupyter on examples/chapter2.ipynb, the four equations of chapter 2 run step by step.
notebook: $(VENV)/.installed-notebook
	$(VENV)/bin/jupyter notebook $(if $(filter 0,$(shell id -u)),--allow-root) examples/chapter2.ipynb

$(VENV)/.installed-notebook: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[notebook]"
	touch $@

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The base install has matplotlib too, so that every README command (--plot) works after make train.
$(VENV)/.installed-base: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[plot]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# Data-parallel training over MPI on this machine: 1 rank x 2 threads vs 2 ranks x 1 thread, and the
# all-reduce time per step (writes benchmarks/results/local/dist-<machine>-<date>.md).
bench-dist: $(VENV)/.installed-mpi
	$(PY) -m benchmarks.dist

$(VENV)/.installed-mpi: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[mpi]"
	touch $@

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
