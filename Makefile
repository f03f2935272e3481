# The two commands that matter: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-intake bench-cases bench-dashboard bench-received bench-ingest bench-exchanges bench-soak install clean tools screenshots translations catalogues

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

# Chart.js for the exchange's status charts, from the npm registry at install time: served by the app itself
# (console/static/vendor/, git-ignored), never committed and never loaded from a CDN.
CHARTJS_VERSION := 4.6.1
CHARTJS := console/static/vendor/chart.umd.min.js

$(CHARTJS):
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	CI=true npm install --prefix var/npm --no-save --no-package-lock --no-audit --no-fund --ignore-scripts \
		chart.js@$(CHARTJS_VERSION) </dev/null >/dev/null
	mkdir -p $(dir $@)
	cp var/npm/node_modules/chart.js/dist/chart.umd.min.js $@

install: $(STAMP) $(CHARTJS)

# The public pages' compiled catalogues (*.mo, not in git); services also compile stale ones at start-up.
catalogues: $(STAMP)
	@$(BIN)/pybabel -q compile -d node/translations

demo: $(STAMP) $(CHARTJS) catalogues
	$(BIN)/hotline-demo

# The 15 slowest tests are listed at the end: the suite must stay under 20 minutes on 2 cores.
test: $(STAMP) $(CHARTJS) tools catalogues
	$(BIN)/python -m pytest -q --durations=15

# The screenshots in docs/ (and the README's), from the browser tests' pages with realistic data.
screenshots: $(STAMP) $(CHARTJS) tools
	HOTLINE_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser/test_screenshots.py

# The public pages' catalogues (node/translations): collect the strings of the pages, add the new ones to
# every language's .po file (translators fill them in), compile. Services also compile stale catalogues at
# start-up, so this is only needed after changing a page's text.
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o node/translations/messages.pot --no-location --omit-header --sort-output -k _l .
	$(BIN)/pybabel update -i node/translations/messages.pot -d node/translations --no-location --omit-header --width 120
	$(BIN)/pybabel compile -d node/translations --statistics

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/targets.py --reset
	$(BIN)/python bench/throughput.py --e2e-batch 500 --e2e-reports 10000
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/cases.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/received.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/exchanges.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/targets.py

bench-intake: $(STAMP)
	$(BIN)/python bench/intake.py

# The analyst's pages at 100,000 cases and the exchange's prefix lookup at 10 million fingerprints.
bench-cases: $(STAMP)
	$(BIN)/python bench/cases.py

# The secretariat's dashboard and status API at 1 million cases and 10 million fingerprints, SQLite and PostgreSQL.
bench-dashboard: $(STAMP)
	$(BIN)/python bench/dashboard.py

# A node's received cases at 1,000 to 1 million: the removal-check query, the received list, the open counts.
bench-received: $(STAMP)
	$(BIN)/python bench/received.py

# The exchange's CPU per report and per receipt from an empty store to 10 million cases, SQLite and PostgreSQL.
bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py

# One exchange process against two on one PostgreSQL, end to end, checked for nothing lost or doubled.
bench-exchanges: $(STAMP)
	$(BIN)/python bench/exchanges.py

# Ten minutes at 80 % of the measured maximum with members killed and restarted: memory, latency, losses.
bench-soak: $(STAMP)
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) var build *.egg-info
