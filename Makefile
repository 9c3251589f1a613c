# The front door: `make demo` and `make test` each set up everything they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TS_PEERS := tests/interop/peers/ts
TS_STAMP := $(TS_PEERS)/node_modules/.installed
CONF := tests/conformance
CONF_STAMP := $(CONF)/node_modules/.installed
BRIDGE_PEERS := tests/bridge/peers
BRIDGE_STAMP := $(BRIDGE_PEERS)/node_modules/.installed
AS_DIR := tests/auth/as
AS_STAMP := $(AS_DIR)/node_modules/.installed
BROWSER := tests/browser
BROWSER_STAMP := $(BROWSER)/node_modules/.installed

.PHONY: install demo test lint typecheck unit conformance bench bench-quick fuzz clean docs

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "anyport needs Python >= 3.11"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -e ".[cli,fast,http,redis,auth,metrics,otel,docs,test]"
	@scripts/ensure-redis
	@scripts/ensure-nginx
	@touch $@

$(TS_STAMP): $(TS_PEERS)/package.json $(TS_PEERS)/package-lock.json
	@scripts/ensure-node
	npm ci --prefix $(TS_PEERS) --no-audit --no-fund --loglevel=error
	@touch $@

$(CONF_STAMP): $(CONF)/package.json $(CONF)/package-lock.json
	@scripts/ensure-node
	npm ci --prefix $(CONF) --no-audit --no-fund --loglevel=error
	@touch $@

$(BRIDGE_STAMP): $(BRIDGE_PEERS)/package.json $(BRIDGE_PEERS)/package-lock.json
	@scripts/ensure-node
	npm ci --prefix $(BRIDGE_PEERS) --no-audit --no-fund --loglevel=error
	@touch $@

# esbuild and the official TypeScript SDK client: the page of the browser CORS test.
$(BROWSER_STAMP): $(BROWSER)/package.json $(BROWSER)/package-lock.json
	@scripts/ensure-node
	npm ci --prefix $(BROWSER) --no-audit --no-fund --loglevel=error
	@touch $@

# node-oidc-provider: the real authorization server of tests/auth.
$(AS_STAMP): $(AS_DIR)/package.json $(AS_DIR)/package-lock.json
	@scripts/ensure-node
	npm ci --prefix $(AS_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

demo: install
	$(PY) examples/demo.py

lint: install
	$(VENV)/bin/ruff check src tests examples bench fuzz deploy

typecheck: install
	$(VENV)/bin/mypy

unit: install $(TS_STAMP) $(CONF_STAMP) $(BRIDGE_STAMP) $(AS_STAMP) $(BROWSER_STAMP)
	@scripts/ensure-redis
	@scripts/ensure-nginx
	@scripts/ensure-chromium
	$(VENV)/bin/pytest -q

test: install $(TS_STAMP) $(CONF_STAMP) $(BRIDGE_STAMP) $(AS_STAMP) $(BROWSER_STAMP) lint typecheck
	@scripts/ensure-redis
	@scripts/ensure-nginx
	@scripts/ensure-chromium
	$(VENV)/bin/pytest -q

# The docs site (mkdocs.yml), built strictly into site/.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

conformance: install $(CONF_STAMP)
	$(PY) tests/conformance/run.py

# Loopback only; the first run also creates bench/.peers-venv (FastMCP, the official SDK, matplotlib).
bench: install $(TS_STAMP)
	$(PY) bench/stdio.py
	$(PY) bench/http.py --plot
	$(PY) bench/defaults.py
	$(PY) bench/observe_cost.py
	@# What authentication costs, in instructions per request (needs valgrind; issue 13's 1.15x bound).
	@if command -v valgrind >/dev/null; then for a in none jwt api-key; do $(PY) bench/callgrind.py --only http --auth $$a; done; \
	else echo "valgrind is not installed: bench/callgrind.py (authentication costs) skipped"; fi

# A smoke run of the same harness (about 2 minutes): checks that every row runs, measures nothing.
bench-quick: install $(TS_STAMP)
	$(PY) bench/stdio.py --quick
	$(PY) bench/http.py --quick --plot

# The long fuzzing run (30-40 min on 2 cores): the property tests of tests/fuzz with many randomised
# examples, >= 1,000,000 generated stdio + HTTP inputs against real servers, and the atheris harness
# (fuzz/atheris_core.py) when atheris installs; without it that phase is skipped and the summary says so.
# Then the long soak: 3 rounds of 500 clients on the three HTTP transports connecting within 5 s and
# dropping mid-stream, /healthz p95 < 100 ms and max < 250 ms throughout (bench/README.md).
# `make test` runs the same suite short and seeded (ANYPORT_FUZZ_EXAMPLES scales it).
fuzz: install
	@$(PY) -m pip install -q --disable-pip-version-check atheris 2>/dev/null \
		|| echo "fuzz: atheris did not install (no wheel or no build); its coverage-guided phase will be skipped"
	$(PY) fuzz/run.py
	$(PY) bench/soak.py --rounds 3 --ramp 5

clean:
	rm -rf $(VENV) $(TS_PEERS)/node_modules $(CONF)/node_modules $(BRIDGE_PEERS)/node_modules .pytest_cache .mypy_cache .ruff_cache
