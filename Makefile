# wsgate: the two commands a newcomer needs are `make demo` and `make test`.
# Everything they need on a fresh machine is installed from here: Debian
# packages (scripts/system-deps.sh), Python packages into .venv
# (requirements.txt), Go modules (go.mod). `make dist` builds what pip
# installs (docs/install.md).

GO      ?= go
PYTHON  ?= python3
VENV    := .venv
VPY     := $(abspath $(VENV))/bin/python
BIN     := $(abspath bin/wsgate)
# The one version of a build (git describe, as PEP 440 spells it): stamped into
# the binary and written into python/wsgate/_version.py, which the binary
# embeds and the wheel ships.
VERSION := $(shell ./scripts/version.sh --write)
LDFLAGS := -X github.com/wsgate/wsgate/internal/version.stamped=$(VERSION)

# Debian packages: `python3 -m venv` needs python3-venv (Debian splits it off
# CPython); the tests drive real clients (git for hg/trac fixtures, chromium
# for the browser test, ab from apache2-utils, systemd-socket-activate from
# systemd) and gcc for the C speedups test-python requires; the benchmark
# needs wrk, and nginx for the static-file case.
VENV_DEBS  := python3-venv
TEST_DEBS  := git chromium curl apache2-utils systemd gcc
BENCH_DEBS := wrk nginx
# The demo mounts git http-backend (the git package) behind Django's login.
DEMO_DEBS  := git

# Under `make test` every skip fails unless test/skips-allowed.txt allows its
# reason (internal/testutil.Skip, test/strictskips.py): CI cannot pass by skipping.
STRICT := WSGATE_TEST_STRICT=1

export WSGATE_TEST_PYTHON := $(VPY)

.PHONY: build speedups venv venv-dj42 venv-dist system-venv dist test test-go test-master-path test-no-speedups test-python test-pythons test-django42 test-dist lint mutants demo bench clean FORCE

build: $(BIN)

# The optional C module (python/wsgate/_speedups.c) for the venv's interpreter
# (else $(PYTHON)), before go build embeds the runtime: scripts/speedups.sh says
# why when it cannot build it and never fails the build (docs/install.md).
SPEEDUPS_PY = $(if $(wildcard $(VPY)),$(VPY),$(PYTHON))

speedups:
	@./scripts/speedups.sh $(SPEEDUPS_PY)

$(BIN): speedups FORCE
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/wsgate

# What `$(PYTHON) -m venv` needs, before the first venv is made: nothing when
# the interpreter has venv and ensurepip (pyenv's do), python3-venv on Debian.
system-venv:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || ./scripts/system-deps.sh $(VENV_DEBS)

$(VENV)/.stamp: requirements.txt | system-venv
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(VPY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(VENV)/.stamp

# Django 4.2 LTS: the Django tests again, in .venv-dj42 (requirements-django42.txt).
VENV_DJ42 := .venv-dj42
VPY_DJ42  := $(abspath $(VENV_DJ42))/bin/python

$(VENV_DJ42)/.stamp: requirements-django42.txt | system-venv
	$(PYTHON) -m venv $(VENV_DJ42)
	$(VPY_DJ42) -m pip install -q --disable-pip-version-check --upgrade pip
	$(VPY_DJ42) -m pip install -q --disable-pip-version-check -r requirements-django42.txt
	touch $@

venv-dj42: $(VENV_DJ42)/.stamp

# `make dist`: the sdist and a wheel per Linux architecture (static binary +
# the wsgate package) in dist/, built by the pinned tools of
# requirements-dist.txt in .venv-dist, without build isolation so that those
# pins are what builds. The amd64 wheel is built from the sdist, which proves
# the sdist builds; arm64 is cross-compiled from the tree.
VENV_DIST := .venv-dist
VPY_DIST  := $(abspath $(VENV_DIST))/bin/python

$(VENV_DIST)/.stamp: requirements-dist.txt | system-venv
	$(PYTHON) -m venv $(VENV_DIST)
	$(VPY_DIST) -m pip install -q --disable-pip-version-check -r requirements-dist.txt
	touch $@

venv-dist: $(VENV_DIST)/.stamp

dist: venv-dist
	rm -f dist/wsgate-*
	WSGATE_GOARCH=amd64 $(VPY_DIST) -m build --no-isolation --outdir dist .
	WSGATE_GOARCH=arm64 $(VPY_DIST) -m build --no-isolation --wheel --outdir dist .

# The wheels' tags and files, then the x86_64 one installed into a fresh
# virtualenv with no Go on PATH (test/dist/test_wheel.py).
test-dist: venv dist
	$(STRICT) WSGATE_DIST_DIR=$(abspath dist) $(VPY) -m pytest -q test/dist

test-django42: venv-dj42
	cd python && $(STRICT) $(VPY_DJ42) -m pytest -q tests/test_django_*.py

lint:
	@out=$$(gofmt -l cmd internal python test bench 2>/dev/null); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: venv venv-dj42 build lint
	./scripts/system-deps.sh $(TEST_DEBS)
	$(MAKE) build
	$(MAKE) -k test-go test-master-path test-no-speedups test-python test-pythons test-django42 test-dist

test-go:
	$(STRICT) WSGATE_BIN=$(BIN) $(GO) test -count=1 -timeout 25m ./...

# The gateway's end-to-end tests once more with lent connections off: the
# master's path then serves every request, as it does on sites with Go
# components, over TLS and HTTP/2, and for a connection's first request.
test-master-path:
	$(STRICT) WSGATE_BIN=$(BIN) WSGATE_LEND=false $(GO) test -count=1 -timeout 15m ./test/e2e \
		-run 'TestGateway|TestHTTP11|TestMaxWorker|TestStatusShows|TestJSONLog|TestServeZero|TestTimeoutLogs'

# The worker's HTTP/1.1 code again without the C speedups (WSGATE_NO_SPEEDUPS=1):
# the pure-Python parser and response writer every other interpreter runs, in
# process and held to the master (python/tests/test_speedups.py holds the C
# module to them; test-python requires it: WSGATE_TEST_SPEEDUPS=1).
test-no-speedups:
	cd python && $(STRICT) WSGATE_NO_SPEEDUPS=1 $(VPY) -m pytest -q tests/test_http11.py tests/test_lend.py tests/test_worker.py
	$(STRICT) WSGATE_BIN=$(BIN) WSGATE_NO_SPEEDUPS=1 $(GO) test -count=1 -timeout 15m ./test/e2e -run 'Lend|HTTP11|Differential'

test-python:
	cd python && $(STRICT) WSGATE_BIN=$(BIN) WSGATE_TEST_SPEEDUPS=1 $(VPY) -m pytest -q tests
	$(STRICT) $(VPY) -m pytest -q bench/test_wrkparse.py bench/test_run.py bench/test_djadmin.py

# The runtime's Django-free tests on every CPython 3.9+ the machine has, each in
# .venv-pythons/<version> (requirements-pythons.txt); fails without 3.9 or 3.12+.
test-pythons: system-venv
	$(STRICT) ./scripts/test-pythons.sh

# Break each mechanism the docs promise, in a scratch copy, and check that
# its tests fail (test/mutants/breaks.toml; docs/testing.md). Not part of
# `make test`: 20–30 minutes on 2 busy cores. Needs the .venv
# (`make venv`) and Python 3.11+ as $(PYTHON).
mutants:
	$(PYTHON) test/mutants/run.py $(MUTANTS_ARGS)

demo: venv build
	./scripts/system-deps.sh $(DEMO_DEBS)
	./scripts/demo.sh

bench: venv build
	./scripts/system-deps.sh $(BENCH_DEBS)
	WSGATE_BIN=$(BIN) $(VPY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf bin dist
