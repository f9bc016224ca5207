# Two commands: `make lab` opens the tutorial, `make test` runs every test (notebooks included).
# Both create the virtual environment in .venv on demand and install only what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Threads: the tests run 2 pytest workers x 1 thread each (the 2-core budget); `make lab` and `make present` leave
# the count to PyTorch (every core), which saliency_lib.method.threads shares between the model and the mask work.
test test-fast: export OMP_NUM_THREADS ?= 1
test test-fast: export MKL_NUM_THREADS ?= 1
PYTEST_WORKERS ?= 2
LAB_PORT ?= 8888

.PHONY: lab test test-fast lint browser-deps assets verify speed check learner-edition docs clean help

help:
	@echo "make lab     - install what is missing, copy notebooks/ to work/ (yours, git-ignored), open JupyterLab there"
	@echo "               (CPU=1: install PyTorch's CPU-only build, for laptops)"
	@echo "make test    - install what is missing, lint (ruff), run every test (library, notebooks, browser)"
	@echo "make lint    - ruff check and ruff format --check on everything, lint-imports on the import contracts"
	@echo "make test-fast - the unit tests and one run of each notebook (under 3 minutes); leaves out the tests marked"
	@echo "               slow, each with its reason: browser, wheel, fresh environments, reruns, other CPU kernels"
	@echo "make assets  - rebuild every file in data/ from scratch (needs Fashion-MNIST: Debian or internet)"
	@echo "make verify  - check data/ against data/MANIFEST.json"
	@echo "make check   - the day-before install check: versions, assets, a 10-second map, widgets, browser; ends READY or what to fix"
	@echo "make learner-edition - write learner/: the notebooks without solutions and outputs (OVERWRITE=1 to replace)"
	@echo "make docs    - rewrite the numbers the README, docs/ and notebook 04 quote from benchmarks/results (cog),"
	@echo "               and the notebooks' index; make test fails while one is stale"
	@echo "make speed   - time OISE and RISE per model (saliency_research/bench/speed.py; writes benchmarks/results/speed.*)"
	@echo "make present - notebook 06 as a page without code (Voila) at http://127.0.0.1:8866/, for a projector"
	@echo "               (fast mode, ready in about half a minute; FAST=0: run the notebook's full budgets first)"

# CPU=1 (make lab CPU=1): PyTorch's CPU-only build (about 1 GB less to download than Linux's default CUDA build).
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
# The install also puts the Jupyter settings of jupyter-config/ into .venv/etc/jupyter (pyproject.toml's data-files,
# as for every pip install of the package): the upload limit and no news pop-up for .venv's jupyter lab and voila.
$(STAMP): pyproject.toml setup.py $(wildcard jupyter-config/*.json jupyter-config/*/*/*.json)
	@test -x $(PY) || { echo "Creating the virtual environment $(VENV) ..."; $(PYTHON) -m venv $(VENV); }
	@echo "Installing the tutorial's packages into $(VENV) (the first time takes a few minutes: PyTorch is large)..."
	$(PY) -m pip install --progress-bar on --upgrade pip
	$(if $(filter 1,$(CPU)),$(PY) -m pip install --progress-bar on --index-url $(TORCH_CPU_INDEX) \
	  $$(grep -oE '"torch(vision)?==[^"]+"' pyproject.toml | tr -d '"'))
	$(PY) -m pip install --progress-bar on -e '.[test]'
	@echo "Installed: $(VENV) is ready."
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

# Learners work in a git-ignored copy (work/), so autosave never changes the committed notebooks/.
WORK ?= work
lab: $(STAMP)
	$(PY) -m saliency_lib assets verify
	$(PY) -m saliency_lib.course.tutorial working-copy $(WORK)
	@echo "Opening JupyterLab on $(WORK)/00_start_here.ipynb; with no display it prints the URL and keeps serving (Ctrl+C to stop)."
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --port=$(LAB_PORT) $(if $(DISPLAY),,--no-browser) $(if $(filter 0,$(shell id -u)),--allow-root) \
	  --LabApp.default_url=/lab/tree/$(WORK)/00_start_here.ipynb

# ruff reads the library, tests, benchmarks and notebooks (.ipynb); lint-imports checks the import contracts
# (import-linter: the research bench above the library, the library's layers, no cycles); settings in pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/ruff format --no-cache --check .
	$(VENV)/bin/lint-imports --no-cache

test: $(STAMP) browser-deps lint
	$(PY) -m saliency_lib assets verify
	SALIENCY_FAST=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope --nbval-lax \
	  --nbval-current-env -p no:cacheprovider --durations=15 tests notebooks

test-fast: $(STAMP)
	SALIENCY_FAST=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope --nbval-lax \
	  --nbval-current-env -p no:cacheprovider -m "not slow" --durations=10 tests notebooks

assets: $(STAMP)
	$(PY) -m saliency_lib assets build

verify: $(STAMP)
	$(PY) -m saliency_lib assets verify

check: $(STAMP)
	$(PY) -m saliency_lib.course.install_check

learner-edition: $(STAMP)
	$(PY) -m saliency_lib.course.learner_edition learner $(if $(OVERWRITE),--overwrite)

speed: $(STAMP)
	$(PY) -m saliency_research.bench.speed

# The blocks between cog's markers (`<!-- [[[cog from saliency_research.bench import sync_docs; sync_docs.block('NAME')]]] -->` ...
# `<!-- [[[end]]] -->`), written by saliency_research/bench/sync_docs.py from benchmarks/results/; tests/test_sync_docs.py runs
# the same cog with --check. Then notebooks/README.md, the index, from saliency_lib/course/tutorial.py.
docs: $(STAMP)
	$(PY) -m cogapp -n utf-8 -r --verbosity=1 README.md docs/*.md notebooks/*.md notebooks/*.ipynb
	$(PY) -m saliency_lib.course.tutorial index

# Notebook 06 as a standalone page (Voila: widgets and outputs, no code) for a projector, or a learner who should
# not see code: http://127.0.0.1:$(PRESENT_PORT)/ . Fast mode by default, so the page is ready in about half a
# minute (set the budget in the panel); `make present FAST=0` (what the page says) runs the notebook's full budgets
# first. PRESENT_FAST=0, the earlier name, still works; FAST wins when both are given.
PRESENT_PORT ?= 8866
PRESENT_FAST ?= 1
FAST ?= $(PRESENT_FAST)
.PHONY: present
# Voila is started through Python with Ctrl+C's default handler set: a process started in the background by a
# shell without job control (a script's `make present &`, some IDE terminals) inherits SIGINT as ignored, and Voila
# then stops only on SIGTERM; a shell cannot undo an ignored signal (`trap` cannot), Python can.
VOILA = $(PY) -c 'import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); \
  from voila.app import main; sys.exit(main())'
present: $(STAMP)
	$(PY) -m saliency_lib assets verify
	@echo "Serving notebooks/06_your_own_model.ipynb at http://127.0.0.1:$(PRESENT_PORT)/ (Ctrl+C to stop)."
	SALIENCY_FAST=$(FAST) $(VOILA) notebooks/06_your_own_model.ipynb --no-browser \
	  --port=$(PRESENT_PORT) --Voila.ip=127.0.0.1 --VoilaConfiguration.progressive_rendering=True

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
