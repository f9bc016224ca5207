# Two commands: `make lab` opens the tutorial, `make test` runs every test (notebooks included).
# Both create the virtual environment in .venv on demand and install only what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Threads per process: 2 pytest workers x 1 thread each fits the 2-core budget.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
PYTEST_WORKERS ?= 2
LAB_PORT ?= 8888

.PHONY: lab test test-fast browser-deps assets verify speed check learner-edition clean help

help:
	@echo "make lab     - install what is missing, open JupyterLab on notebooks/00_start_here.ipynb"
	@echo "make test    - install what is missing, run every test (library, notebooks, browser)"
	@echo "make assets  - rebuild every file in data/ from scratch (needs Fashion-MNIST: Debian or internet)"
	@echo "make verify  - check data/ against data/MANIFEST.json"
	@echo "make check   - the day-before install check: versions, assets, a 10-second map, widgets, browser; ends READY or what to fix"
	@echo "make learner-edition - write learner/: the notebooks without solutions and outputs (OVERWRITE=1 to replace)"
	@echo "make speed   - time OISE and RISE per model (benchmarks/speed.py; writes benchmarks/results/speed.*)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Chromium for the one real-browser test. Installed from Debian when we are root; otherwise the
# browser test is skipped with a message (and fails under CI=true, where it must run).
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's chromium for the browser test..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "Could not install chromium; the browser test will say so."; \
	  else echo "chromium not found and not root: the browser test will be skipped (apt-get install chromium)."; fi; \
	fi

lab: $(STAMP)
	$(PY) -m saliency_lib assets verify
	@echo "Opening JupyterLab; with no display it prints the URL and keeps serving (Ctrl+C to stop)."
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --port=$(LAB_PORT) $(if $(DISPLAY),,--no-browser) $(if $(filter 0,$(shell id -u)),--allow-root) \
	  --LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb

test: $(STAMP) browser-deps
	$(PY) -m saliency_lib assets verify
	SALIENCY_FAST=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --nbval-lax \
	  --nbval-current-env -p no:cacheprovider --durations=15 tests notebooks

test-fast: $(STAMP)
	SALIENCY_FAST=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not browser" tests

assets: $(STAMP)
	$(PY) -m saliency_lib assets build

verify: $(STAMP)
	$(PY) -m saliency_lib assets verify

check: $(STAMP)
	$(PY) -m saliency_lib.install_check

learner-edition: $(STAMP)
	$(PY) -m saliency_lib.learner_edition learner $(if $(OVERWRITE),--overwrite)

speed: $(STAMP)
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
