# The README's two commands: `make run` (the product) and `make test` (the whole suite).
# Both set everything up on a fresh machine: venv, Python deps, the labextension build,
# and (for tests) Debian's chromium for the browser tests and Debian's postgresql for the
# PostgreSQL store tests (they start a private cluster with its initdb and pg_ctl), and
# configurable-http-proxy from npm (into .hub-deps/) for the JupyterHub tests.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
PORT ?= 8888
# `make run` serves a working copy of notebooks/ (made once, never overwritten), so the demo
# never edits tracked files. The folder ignores itself for git.
WORKSPACE ?= workspace

.PHONY: install run workspace test lint bench browser-deps postgres-deps curl-deps hub-deps clean

$(STAMP): pyproject.toml $(wildcard labextension/package.json labextension/src/*)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -rf jupyter_secrets/labextension  # rebuilt below from labextension/ (skipped if present)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Install Debian's chromium (sudo apt-get install chromium) for the browser tests" >&2; exit 1; fi; \
	fi

# tests/test_other_kernels.py runs curl the way an R, Julia or JavaScript kernel calls the proxy.
curl-deps:
	@if ! command -v curl >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; \
	  else echo "Install curl (sudo apt-get install curl) for the other-kernels test" >&2; exit 1; fi; \
	fi

postgres-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "Install Debian's postgresql (sudo apt-get install postgresql) for the PostgreSQL store tests" >&2; exit 1; fi; \
	fi

# JupyterHub's proxy for tests/test_hub.py (jupyterhub itself is in the test extra): a
# pinned major version, into an ignored folder of the checkout, no global npm install.
HUB_DEPS := .hub-deps
CHP := $(HUB_DEPS)/node_modules/.bin/configurable-http-proxy

$(CHP):
	npm install --prefix $(HUB_DEPS) --no-save --no-audit --no-fund --loglevel=error \
	  configurable-http-proxy@5

hub-deps: $(CHP)

workspace:
	@mkdir -p $(WORKSPACE)
	@test -f $(WORKSPACE)/.gitignore || printf '# a working copy for make run\n*\n' > $(WORKSPACE)/.gitignore
	@for nb in notebooks/*.ipynb; do \
	  test -e "$(WORKSPACE)/$${nb##*/}" || { cp "$$nb" "$(WORKSPACE)/" && echo "copied $$nb to $(WORKSPACE)/"; }; \
	done

run: install workspace
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) \
	  --ServerApp.root_dir=$(WORKSPACE) --LabApp.default_url=/lab/tree/quickstart.ipynb $(ALLOW_ROOT)

test: install browser-deps postgres-deps curl-deps hub-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Every benchmarks/*.py (helpers start with _), one after the other; each prints its own
# baseline, ratios and targets. The bench extra adds jupyter-server-proxy and py-spy;
# store.py also runs on a private PostgreSQL cluster, hence postgres-deps.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) postgres-deps
	@set -e; for script in benchmarks/[!_]*.py; do \
	  echo "== $$script"; $(BIN)/python $$script; echo; \
	done

clean:
	rm -rf $(VENV) labextension/node_modules jupyter_secrets/labextension test-artifacts \
	  $(HUB_DEPS)
