# wsgate: the two commands a newcomer needs are `make demo` and `make test`.
# Everything they need on a fresh machine is installed from here: Debian
# packages (scripts/system-deps.sh), Python packages into .venv
# (requirements.txt), Go modules (go.mod).

GO      ?= go
PYTHON  ?= python3
VENV    := .venv
VPY     := $(abspath $(VENV))/bin/python
BIN     := $(abspath bin/wsgate)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Debian packages: the tests drive real clients (git for hg/trac fixtures,
# chromium for the browser test); the benchmark needs wrk.
TEST_DEBS  := git chromium curl
BENCH_DEBS := wrk

export WSGATE_TEST_PYTHON := $(VPY)

.PHONY: build venv venv-dj42 test test-go test-python test-django42 lint mutants demo bench clean FORCE

build: $(BIN)

$(BIN): FORCE
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/wsgate

$(VENV)/.stamp: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(VPY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(VENV)/.stamp

# Django 4.2 LTS: the Django tests again, in .venv-dj42 (requirements-django42.txt).
VENV_DJ42 := .venv-dj42
VPY_DJ42  := $(abspath $(VENV_DJ42))/bin/python

$(VENV_DJ42)/.stamp: requirements-django42.txt
	$(PYTHON) -m venv $(VENV_DJ42)
	$(VPY_DJ42) -m pip install -q --disable-pip-version-check --upgrade pip
	$(VPY_DJ42) -m pip install -q --disable-pip-version-check -r requirements-django42.txt
	touch $@

venv-dj42: $(VENV_DJ42)/.stamp

test-django42: venv-dj42
	cd python && $(VPY_DJ42) -m pytest -q tests/test_django_*.py

lint:
	@out=$$(gofmt -l cmd internal python test bench 2>/dev/null); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: venv venv-dj42 build lint
	./scripts/system-deps.sh $(TEST_DEBS)
	$(MAKE) -k test-go test-python test-django42

test-go:
	WSGATE_TEST_STRICT=1 WSGATE_BIN=$(BIN) $(GO) test -count=1 -timeout 25m ./...

test-python:
	cd python && WSGATE_BIN=$(BIN) $(VPY) -m pytest -q tests
	$(VPY) -m pytest -q bench/test_wrkparse.py

# Break each mechanism the docs promise, in a scratch copy, and check that
# its tests fail (test/mutants/breaks.toml; docs/testing.md). Not part of
# `make test`: 20–30 minutes on 2 busy cores. Needs the .venv
# (`make venv`) and Python 3.11+ as $(PYTHON).
mutants:
	$(PYTHON) test/mutants/run.py $(MUTANTS_ARGS)

demo: venv build
	./scripts/demo.sh

bench: venv build
	./scripts/system-deps.sh $(BENCH_DEBS)
	WSGATE_BIN=$(BIN) $(VPY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf bin
