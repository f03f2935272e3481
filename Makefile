# The two commands that matter: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean tools screenshots

# The tests drive curl and openssl against the real servers, and Debian's Chromium (through Playwright,
# which is told where it is: its own browser download cannot work here); install what a fresh machine lacks.
tools:
	@command -v curl >/dev/null && command -v openssl >/dev/null && command -v chromium >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl openssl chromium >/dev/null; }

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint,postgres]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hotline-demo

test: $(STAMP) tools
	$(BIN)/python -m pytest -q

# The screenshots in docs/ (and the README's), from the browser tests' pages with realistic data.
screenshots: $(STAMP) tools
	HOTLINE_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser/test_screenshots.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) var build *.egg-info
