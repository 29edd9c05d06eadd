# Quick start:   make demo    (venv, install, run on the built-in example)
#                make test    (dev dependencies, the test suite)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch pinned (an unpinned one may pull another multi-GB build). From PyPI on Linux this is the CUDA build;
# a machine without a GPU can take the CPU-only one: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: install dev demo test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e .
	touch $@

dev: $(VENV)/.dev-installed

$(VENV)/.dev-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(VENV)/bin/wsi-deblur demo -o out/demo

test: dev
	$(PY) -m ruff check wsi_deblur
	$(PY) -m pytest -q -rs   # -rs: says why a test was skipped (no Chromium, no ../shared/data, no GPU)

bench: dev
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/stages.py
	$(PY) benchmarks/memory.py
	$(PY) benchmarks/writers.py
	$(PY) benchmarks/classifier.py   # needs out/data/blur-128.npz (python -m pipelines.blur_data)
	$(PY) benchmarks/restorers.py
	$(PY) benchmarks/restore_command.py
	$(PY) benchmarks/cpu_paths.py
	$(PY) benchmarks/report.py   # needs Chromium
	$(PY) benchmarks/gpu.py   # says so and measures nothing without CUDA
	$(PY) benchmarks/png_encode.py
	$(PY) benchmarks/working_scale.py   # needs ../shared/data
	$(PY) benchmarks/defocus_model.py   # needs ../shared/data
	$(PY) benchmarks/mixed_routes.py   # needs out/data/restore-128.npz (python -m pipelines.restore_data)

clean:
	rm -rf out .pytest_cache
