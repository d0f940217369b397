# Two commands for a newcomer: `make demo` (install + the CPU demo study) and `make test`.
# Everything installs into .venv; torch is pinned and installed first so that no CUDA build is pulled.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STUDY ?= configs/demo.yaml
export MLFLOW_DISABLE_TELEMETRY ?= true
export RAY_USAGE_STATS_ENABLED ?= 0
export DS_BUILD_OPS ?= 0
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.cache/torch_extensions

CHECKOV_VENV ?= .venv-checkov
export CHECKOV_BIN ?= $(CURDIR)/$(CHECKOV_VENV)/bin/checkov

.PHONY: install demo rehearsal test test-fast report ui clean

install: $(VENV)/.installed

# torch through pip (it finds the CPU build on this kind of machine's disk; uv would not look there),
# the rest through uv, as the Dockerfile does: measured on the 2 cores under the same load, uv took
# 42 CPU-s and 132 s for what pip took 152 CPU-s and 555 s.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0 uv==0.13.10
	$(BIN)/uv pip install -q --python $(BIN)/python -e ".[dev]"
	touch $@

demo: install
	$(BIN)/weam study run $(STUDY)

# The dress rehearsal of the real study on CPU (configs/studies/rehearsal.yaml, the template with its sizes
# shrunk): inputs in the real formats (benchmarks/rehearsal_inputs.py), fetch, clean, every stage, the report.
rehearsal: install
	$(BIN)/python benchmarks/rehearsal_inputs.py
	$(BIN)/weam data fetch --config configs/fetch/rehearsal.yaml
	$(BIN)/weam data clean --config configs/clean/rehearsal.yaml
	$(BIN)/weam study run configs/studies/rehearsal.yaml

# Both cores: tests are spread over two workers, those sharing a Ray head or one study's copy kept
# on one (tests/conftest.py); the tiny study all whole-study tests share is built once, in the
# background from the end of collection.
test: install $(CHECKOV_VENV)/.installed
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# The local loop, on both cores: every test that needs no whole study, no second process, no
# server, no external tool and no GPU (markers in pyproject.toml); `make test` runs everything.
FAST := not e2e and not multiprocess and not server and not tool and not gpu
test-fast: install
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "$(FAST)" -q

# The security-policy checker, kept apart because its pins conflict with the project's.
$(CHECKOV_VENV)/.installed: $(VENV)/.installed
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(BIN)/uv pip install -q --python $(CHECKOV_VENV)/bin/python checkov==3.3.30
	touch $@

ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/runs/demo/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf runs .cache .pytest_cache mlruns
