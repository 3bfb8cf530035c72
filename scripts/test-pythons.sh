#!/usr/bin/env bash
# `make test-pythons`: the runtime's tests that need no Django (the protocol,
# the worker loop, the resolver, the loader, the HTTP/1.1 parser) on every
# CPython from 3.9 up that scripts/pythons.sh finds, each in .venv-pythons/<version>, a virtualenv with
# requirements-pythons.txt only (created on first use, re-created when that
# file or the interpreter changes). Fails when no 3.9 or no 3.12+ is found.
# The Go test TestGatewayPythons serves the e2e validator app through the real
# binary with the same interpreters, bare.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
tests=(tests/test_protocol.py tests/test_worker.py tests/test_resolve.py tests/test_loader.py tests/test_http11.py tests/test_lend.py)
req=requirements-pythons.txt

pythons=$(scripts/pythons.sh --require)
status=0
while read -r version python; do
	venv=.venv-pythons/$version
	stamp=$(printf '%s\n' "$python"; cat "$req")
	if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
		echo "test-pythons: creating $venv from $python"
		rm -rf "$venv"
		"$python" -m venv "$venv"
		"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
		printf '%s\n' "$stamp" >"$venv/.stamp"
	fi
	echo "test-pythons: CPython $version ($python)"
	(cd python && "$root/$venv/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}") || status=1
done <<<"$pythons"
exit $status
