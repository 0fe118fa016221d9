# The exchange's one entry point. Every target installs what it needs, so that
# on a fresh Debian machine `make run` and `make test` work with nothing done by hand.
SHELL := /bin/bash
PY := .venv/bin/python
VENV_STAMP := .venv/.installed
PROTO_STAMP := exchange/.generated
PROTOS := $(shell find proto -name '*.proto')
# prometheus: its promtool checks and unit-tests the alert rules (tests/monitoring).
# gcc, python3-dev: mypyc compiles the engine core to C (engine_svc/native.py).
APT_PACKAGES := postgresql redis-server chromium prometheus gcc python3-dev
# The web UI (web/): `npm ci` when the lockfile changes, a build when a source does.
WEB_DEPS_STAMP := web/node_modules/.installed
WEB_STAMP := web/dist/.built
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) \
	web/index.html web/package.json web/tsconfig.json web/vite.config.ts

.PHONY: run test check bench chaos proto deps native web timescaledb clean

run: deps web
	$(PY) -m launcher

test: deps web
	$(PY) -m pytest

check: deps
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy
	$(MAKE) test

bench: deps
	$(PY) -m bench.suite

# The whole-stack fault suite (chaos/): load through the gateway while services are killed
# and frozen; report in reports/chaos-report.json, the services' output next to it.
CHAOS_SECONDS ?= 180
CHAOS_SEED ?= 1
chaos: deps
	$(PY) -m chaos --seconds $(CHAOS_SECONDS) --seed $(CHAOS_SEED) --report reports/chaos-report.json

proto: $(PROTO_STAMP)

web: $(WEB_STAMP)

$(WEB_DEPS_STAMP): web/package-lock.json
	@command -v npm >/dev/null || scripts/apt-ensure.sh nodejs npm
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_STAMP): $(WEB_DEPS_STAMP) $(WEB_SOURCES)
	cd web && npm run --silent build
	touch $@

deps: $(VENV_STAMP) $(PROTO_STAMP) native timescaledb

# TimescaleDB for the ledger's Timescale track (README: TimescaleDB): the machine's if
# installed, else built once from the vendored source (VENDOR_DIR, beside the checkout)
# into TIMESCALE_CACHE; .timescaledb then names the server programs that load it.
TIMESCALE_VERSION := 2.28.3
VENDOR_DIR ?= ../shared/vendor
TIMESCALE_CACHE ?= .cache/timescaledb
timescaledb:
	@scripts/timescaledb.sh $(TIMESCALE_VERSION) $(VENDOR_DIR)/timescaledb-$(TIMESCALE_VERSION).tar.gz \
		$(TIMESCALE_CACHE) .timescaledb

# The engine core compiled with mypyc, again whenever a source's hash differs from the one it
# was compiled from (a no-op otherwise); until then an edited core runs as Python.
native: $(VENV_STAMP)
	$(PY) -m engine_svc.compile_core --if-stale

$(VENV_STAMP): pyproject.toml
	@scripts/apt-ensure.sh $(APT_PACKAGES)
	test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -e '.[dev]'
	touch $@

# Generated code is made here, never committed: one importable package `exchange`
# with .pyi stubs for mypy.
$(PROTO_STAMP): $(VENV_STAMP) $(PROTOS)
	rm -rf exchange
	$(PY) -m grpc_tools.protoc -I proto \
		--python_out=. --grpc_python_out=. \
		--plugin=protoc-gen-mypy=.venv/bin/protoc-gen-mypy --mypy_out=. \
		--plugin=protoc-gen-mypy_grpc=.venv/bin/protoc-gen-mypy_grpc --mypy_grpc_out=. \
		$(PROTOS)
	find exchange -type d -exec touch {}/__init__.py \;
	touch $@

clean:
	rm -rf .venv exchange engine_svc/core/_native .run .timescaledb .mypy_cache .ruff_cache .pytest_cache web/node_modules web/dist
