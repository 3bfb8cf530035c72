#!/usr/bin/env bash
# Where wsgate's time goes on the hello-world case (or the cases given with --cases):
# a Go CPU profile of the master (WSGATE_PPROF), perf's CPU split between processes and syscall counts per
# request, and a cProfile of a worker. Extra options go to bench/run.py --profile (see docs/bench.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export WSGATE_BIN="${WSGATE_BIN:-bin/wsgate}"
exec .venv/bin/python bench/run.py --profile "$@"
