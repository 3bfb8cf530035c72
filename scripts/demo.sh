#!/usr/bin/env bash
# `make demo`: filled in by the Django demo.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: not built yet" >&2
exit 1
