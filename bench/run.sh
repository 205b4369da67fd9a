#!/bin/sh
# make bench: run the relay benchmark and rewrite docs/benchmarks.md.
# Needs `make build` first (the Makefile does it). Overrides:
#   BENCH_AGENTS (default 19000), BENCH_PROCS (default 4), GO (default go);
# extra arguments go to `patchbay-loadgen bench` (see its --help).
# Cached relay data and identities live in bench/.cache (delete to start over).
set -eu
cd "$(dirname "$0")/.."
exec bin/patchbay-loadgen bench \
	--out docs/benchmarks.md \
	--server-bin bin/patchbay-server \
	--agents "${BENCH_AGENTS:-19000}" \
	--procs "${BENCH_PROCS:-4}" \
	--go "${GO:-go}" \
	"$@"
