#!/usr/bin/env bash
# `make demo` (after `make venv build`): prepares the demo site on first run
# (the SQLite database, the superuser, the Mercurial repository and the Trac
# environment, all under examples/demo/var/) and serves it with wsgate.
#
# Overrides, for tests and the curious:
#   WSGATE_BIN        the wsgate binary          (default: bin/wsgate)
#   WSGATE_PYTHON     the Python interpreter     (default: .venv/bin/python)
#   WSGATE_DEMO_DIR   the demo project           (default: examples/demo)
#   WSGATE_DEMO_BIND  where to listen            (default: development.ini's [server:main], 127.0.0.1:8000)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
wsgate="${WSGATE_BIN:-$root/bin/wsgate}"
export WSGATE_PYTHON="${WSGATE_PYTHON:-$root/.venv/bin/python}"
demo_dir="${WSGATE_DEMO_DIR:-$root/examples/demo}"
bind=()
[ -z "${WSGATE_DEMO_BIND:-}" ] || bind=(--bind "$WSGATE_DEMO_BIND")

for need in "$wsgate" "$WSGATE_PYTHON"; do
	if [ ! -x "$need" ]; then
		echo "demo: $need is missing: run \`make demo\` (it builds wsgate and .venv first)" >&2
		exit 1
	fi
done

cd "$demo_dir"
# Both are idempotent: the first run creates, later runs find everything done.
"$wsgate" manage development.ini migrate --noinput
"$wsgate" manage development.ini demo_setup

# The superuser's name and password, as development.ini's [DEFAULT] gives them.
ini_default() {
	awk -v key="$1" '
		/^\[/ { in_default = ($0 ~ /^\[DEFAULT\]/) }
		in_default && $0 ~ "^" key "[ \t]*[=:]" { sub(/^[^=:]*[=:][ \t]*/, ""); print; exit }
	' development.ini
}
admin_user="$(ini_default demo_admin_user)"
admin_password="$(ini_default demo_admin_password)"

# Serve, echoing wsgate's log, and say where to go once every worker is ready.
"$wsgate" serve "${bind[@]}" development.ini 2>&1 | {
	url=""
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case "$line" in
		"wsgate: listening on http"*)
			[ -n "$url" ] || url="${line#wsgate: listening on }"
			;;
		*"address already in use"*)
			echo "demo: that address is taken; serve elsewhere with e.g. WSGATE_DEMO_BIND=127.0.0.1:8080 make demo" >&2
			;;
		"wsgate: ready"*)
			echo "demo: ready at $url/ — log in as $admin_user / $admin_password" \
				"(admin: $url/admin/, Trac: $url/trac/, hg clone $url/hg/demo, git clone $url/git/demo.git); Ctrl-C stops"
			;;
		esac
	done
}
