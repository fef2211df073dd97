# One entry point for people and CI. `make run` and `make test` each set up the
# virtual environment first (only when pyproject.toml changed since the last time).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-all lint app package screenshots bench double clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/civdesk

# The everyday suite: everything but the slow and packaging checks.
test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "not slow and not packaging" $(PYTEST_ARGS)

# What CI runs: the whole suite, lint and the layering contract.
test-all: $(STAMP) lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

app: $(STAMP)
	$(BIN)/pyinstaller --noconfirm --clean build.spec

# The Debian/Ubuntu package of the frozen app: dist/civdesk_<version>_<arch>.deb (Linux).
package: app
	$(BIN)/python scripts/build_deb.py --app dist/civdesk --out dist

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python scripts/screenshots.py docs/screenshots

# The Civitai double with its sample catalogue, to try civdesk by hand (prints how).
double: $(STAMP)
	$(BIN)/python -m tests.double --library /tmp/civdesk-demo-library

bench: $(STAMP)
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist .pytest_cache
