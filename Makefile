# The two commands: `make run` serves the appliance on SQLite; `make test` runs every test
# (`make test-pg`: the same suite on PostgreSQL).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export DEBIAN_FRONTEND := noninteractive

.PHONY: run run-deps test test-pg install install-test assets system-deps lint bench clean \
	screenshots

run: install run-deps
	$(BIN)/appliance serve --host $(HOST) --port $(PORT)

# The XMPP service the appliance runs as its child (APPLIANCE_XMPP_SUPERVISE=0: not here).
run-deps:
	@dpkg -s prosody >/dev/null 2>&1 || { echo "installing: prosody"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq prosody >/dev/null; }

# The tests start many Python processes (xdist workers, appliances, CLI runs): they share
# compiled bytecode, kept in the venv, even where the environment turns writing it off.
# Their temporary files (databases, servers' data) go to memory where the machine has
# /dev/shm: commits and servers' writes then cost no disk I/O.
TEST_TMP := $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo $${TMPDIR:-/tmp})
TEST_ENV := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(abspath $(VENV))/pycache \
	  TMPDIR=$(TEST_TMP)

test: install-test system-deps
	$(BIN)/ruff check .
	$(TEST_ENV) $(BIN)/pytest

# The same tests on PostgreSQL: each test process starts a throwaway cluster of its own
# (tests/postgres_server.py) and every app the tests build gets a database on it.
test-pg: install-test system-deps
	$(TEST_ENV) APPLIANCE_TEST_DATABASE=postgresql $(BIN)/pytest

install: $(VENV)/.installed assets

install-test: $(VENV)/.installed-test assets

# python-ldap builds against Debian's libldap and libsasl headers.
$(VENV)/.installed: pyproject.toml
	@dpkg -s libldap2-dev libsasl2-dev >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq libldap2-dev libsasl2-dev >/dev/null; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml Makefile
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test,postgres]'
	# Compile the installed packages once, where the test processes look for bytecode.
	env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(abspath $(VENV))/pycache \
	  $(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true
	touch $@

# Front-end files come from the npm registry (pinned with a lockfile): htmx is served by the
# appliance (and built into the wheel, see setup.py); axe-core is for the browser tests only,
# which inject it into the pages they check (never served).
assets: appliance/static/vendor/htmx.min.js appliance/static/vendor/uPlot.iife.min.js \
	appliance/static/vendor/uPlot.min.css tests/e2e/vendor/axe.min.js

node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq npm; }
	npm ci --no-audit --no-fund --loglevel=error

appliance/static/vendor/htmx.min.js: node_modules/.package-lock.json
	mkdir -p $(@D)
	cp node_modules/htmx.org/dist/htmx.min.js $@

# uPlot draws the home page's charts (static/charts.js), over numbers the page shows anyway.
appliance/static/vendor/uPlot.iife.min.js appliance/static/vendor/uPlot.min.css: \
		node_modules/.package-lock.json
	mkdir -p $(@D)
	cp node_modules/uplot/dist/$(@F) $@

tests/e2e/vendor/axe.min.js: node_modules/.package-lock.json
	mkdir -p $(@D)
	cp node_modules/axe-core/axe.min.js $@

# Real servers the tests start: OpenLDAP, Prosody, ejabberd, nginx (TLS in front of
# appliances), PostgreSQL (initdb and pg_ctl; the tests never use the cluster it may start),
# Chromium, and go-sendxmpp (an XMPP client of another make than slixmpp) from Debian.
system-deps:
	@missing=""; for p in slapd ldap-utils prosody ejabberd nginx-light postgresql chromium \
	  go-sendxmpp; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi

lint:
	$(BIN)/ruff check .

# docs/screenshots/: every tab at 1280 and 390 px wide (tools/screenshots.py); the README
# shows the home page. The tests never write there.
screenshots: install-test system-deps
	$(TEST_ENV) $(BIN)/python tools/screenshots.py

bench: install-test system-deps
	$(BIN)/python bench/directory_page.py
	$(BIN)/python bench/processes.py
	$(BIN)/python bench/peer_import.py
	$(BIN)/python bench/ldap_sync.py
	$(BIN)/python bench/bulk_import.py

clean:
	rm -rf $(VENV) node_modules appliance/static/vendor tests/e2e/vendor
