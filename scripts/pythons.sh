#!/usr/bin/env bash
# Lists the CPython interpreters this machine has that the runtime supports
# (3.9 and newer), one per minor version, oldest first: "3.9 /path/to/python".
# Looked for on PATH (python3, python3.9 … python3.19) and in the folders of
# the usual version managers: pyenv ($PYENV_ROOT/versions), uv
# (~/.local/share/uv/python), asdf ($ASDF_DATA_DIR/installs/python) and
# /usr/local/bin. Each candidate is asked its version, so pyenv shims that
# point nowhere, virtualenvs and other implementations are left out.
#
#   --require   also exit 1 unless both 3.9 and a 3.12 or newer are found
#               (`make test` uses it: the oldest supported and a current one).
set -uo pipefail

candidates=()
for name in python3 python3.{9..19}; do
	while IFS= read -r p; do candidates+=("$p"); done < <(type -ap "$name")
done
for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/python3 \
	"${XDG_DATA_HOME:-$HOME/.local/share}"/uv/python/*/bin/python3 \
	"${ASDF_DATA_DIR:-$HOME/.asdf}"/installs/python/*/bin/python3 \
	/usr/local/bin/python3.* /opt/python*/bin/python3; do
	[ -x "$p" ] && candidates+=("$p")
done

probe='import sys
if sys.implementation.name == "cpython" and sys.prefix == sys.base_prefix and sys.version_info >= (3, 9):
    print("%d.%d" % sys.version_info[:2], sys.executable)'

declare -A found
for c in "${candidates[@]}"; do
	line=$("$c" -c "$probe" 2>/dev/null) || continue
	[ -n "$line" ] || continue
	version=${line%% *}
	[ -n "${found[$version]:-}" ] || found[$version]=${line#* }
done

for version in "${!found[@]}"; do echo "$version ${found[$version]}"; done | sort -t. -k1,1n -k2,2n

if [ "${1:-}" = "--require" ]; then
	newest=0
	for version in "${!found[@]}"; do [ "${version#3.}" -gt "$newest" ] && newest=${version#3.}; done
	if [ -z "${found[3.9]:-}" ] || [ "$newest" -lt 12 ]; then
		echo "pythons: the runtime is tested on CPython 3.9 and on 3.12 or newer; found: ${!found[*]}" >&2
		echo "pythons: install the missing one (e.g. \`pyenv install 3.9\`), see docs/testing.md" >&2
		exit 1
	fi
fi
exit 0
