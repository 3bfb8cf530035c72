#!/usr/bin/env bash
# Builds wsgate's optional C module, python/wsgate/_speedups.c, for one
# interpreter (the venv's, given as $1): python/wsgate/_speedups<EXT_SUFFIX>,
# which `go build` then embeds with the rest of the runtime and which only
# that interpreter's import machinery loads (docs/architecture.md, "The C
# speedups"). Never fails: when the module cannot be built it says why and
# the runtime stays pure Python.
set -uo pipefail
cd "$(dirname "$0")/.."
src=python/wsgate/_speedups.c
python="${1:-python3}"

skip() {
	echo "speedups: not built ($*); wsgate runs its pure-Python HTTP/1.1 parser" >&2
	rm -f python/wsgate/_speedups.*.so
	exit 0
}

command -v "$python" >/dev/null 2>&1 || skip "no interpreter $python"
read -r include suffix < <("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"], sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null) ||
	skip "$python cannot tell its include directory"
[ -n "$suffix" ] || skip "$python has no EXT_SUFFIX"
# The module relies on the GIL (its static state, the caches it reads): a free-threaded build runs Python.
[ "$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("Py_GIL_DISABLED") or 0)' 2>/dev/null)" = 0 ] ||
	skip "$python is a free-threaded build"
out=python/wsgate/_speedups$suffix
# A module built for another interpreter would be embedded too, and loaded by that interpreter.
for old in python/wsgate/_speedups.*.so; do
	[ -e "$old" ] && [ "$old" != "$out" ] && rm -f "$old"
done
[ "$out" -nt "$src" ] && [ "$out" -nt "$0" ] && exit 0
# (skip removes a module older than its source: it must not outlive the code it mirrors.)
if [ ! -f "$include/Python.h" ]; then
	# Debian splits the headers of its python3 off into python3-dev.
	real=$(readlink -f "$(command -v "$python")")
	base=$("$python" -c 'import sys; print(sys.base_prefix)' 2>/dev/null)
	if [ "$base" = /usr ] && [ "${real#/usr/bin/python3}" != "$real" ]; then
		./scripts/system-deps.sh python3-dev >&2 || true
	fi
	[ -f "$include/Python.h" ] || skip "no $include/Python.h: install the headers of $python (Debian: python3-dev)"
fi
cc="${CC:-gcc}"
command -v "$cc" >/dev/null 2>&1 || skip "no C compiler ($cc)"
if ! log=$("$cc" -O2 -Wall -Wno-unused-parameter -Wno-missing-field-initializers -shared -fPIC \
	-I"$include" -o "$out.tmp" "$src" 2>&1); then
	rm -f "$out.tmp"
	printf '%s\n' "$log" >&2
	skip "$cc failed on $src"
fi
mv "$out.tmp" "$out"
echo "speedups: built $out"
