# One entry point for people and CI (`make help` lists the targets). `make run` installs
# only what the app needs; `make test` adds the test and build tools. Each sets up the
# virtual environment first, and again only when pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APP_STAMP := $(VENV)/.installed-app
DEV_STAMP := $(VENV)/.installed

.PHONY: help run test test-all lint app package screenshots bench double clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(APP_STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(APP_STAMP)

$(DEV_STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(APP_STAMP) $(DEV_STAMP)

run: $(APP_STAMP)  ## Set up and start the app
	$(BIN)/civdesk

test: $(DEV_STAMP)  ## Set up and run the everyday tests (FILE=tests/x.py, K=expression)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "not slow and not packaging" $(PYTEST_ARGS) $(FILE) $(if $(K),-k "$(K)")

test-all: $(DEV_STAMP) lint  ## What CI runs: lint, then every test (slow and packaging too)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)  ## ruff, the import contracts (core never imports Qt), mypy
	$(BIN)/ruff check src tests bench scripts/build_deb.py scripts/screenshots.py
	$(BIN)/lint-imports
	$(BIN)/mypy

app: $(DEV_STAMP)  ## Freeze the app with PyInstaller into dist/
	$(BIN)/pyinstaller --noconfirm --clean build.spec

package: app  ## The Debian/Ubuntu package: dist/civdesk_<version>_<arch>.deb
	$(BIN)/python scripts/build_deb.py --app dist/civdesk --out dist

screenshots: $(DEV_STAMP)  ## Render every page offscreen into docs/screenshots/
	QT_QPA_PLATFORM=offscreen $(BIN)/python scripts/screenshots.py docs/screenshots

double: $(DEV_STAMP)  ## Try civdesk against the Civitai double (new folders each run)
	$(BIN)/python -m tests.double

bench: $(DEV_STAMP)  ## Speed figures against reference tools (openssl, curl)
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:  ## Remove the virtual environment and build output
	rm -rf $(VENV) build dist .pytest_cache
