#!/bin/sh
# The figures of docs/benchmarks/outbox.md, in one command: ./benchmarks/outbox/run.sh
#
# Medians of 3 runs per mode, the modes interleaved within each repeat so that machine noise hits
# them alike. Needs DATABASE_URL; uses the databases <name>_bench and <name>_bench_history next to
# it (created on first use; the history of 10 million completed jobs is built once, ~3 minutes).
# About 20 minutes on the 2-core machine. Results (JSON, PNG) go to $OUT.
set -eu
cd "$(dirname "$0")/../.."
: "${DATABASE_URL:?set DATABASE_URL}"
OUT=${OUT:-benchmarks/outbox/results/$(date -u +%Y%m%dT%H%M%SZ)}
AUTOMATE=${AUTOMATE:-.venv/bin/automate}
N=${N:-100000}
REPEAT=${REPEAT:-3}

# 1. Drain a backlog of N jobs with 2 worker processes: the engine, the worker machinery without
#    the engine, and raw SQL (the ceiling); then the engine at the default concurrency.
"$AUTOMATE" bench outbox -n "$N" -w 2 -c 512 -b 512 --modes engine,noop,sql \
    --repeat "$REPEAT" --out "$OUT/drain"
"$AUTOMATE" bench outbox -n "$N" -w 2 -c 32 -b 100 --modes engine --repeat "$REPEAT" --out "$OUT/drain-c32"

# 2. Every mode on an empty table and, right after, on one holding 10 million completed jobs
#    (side by side, so the ratio is not machine drift): claim speed must not depend on history.
"$AUTOMATE" bench outbox -n "$N" -w 2 -c 512 -b 512 --modes engine,noop,sql \
    --repeat "$REPEAT" --history 10000000 --compare-history --out "$OUT/history"

# 3. End-to-end latency at a steady 500 events/s (below capacity: latency is then not queueing).
"$AUTOMATE" bench outbox -n 30000 --rate 500 -w 2 -c 512 -b 512 --modes engine \
    --repeat "$REPEAT" --out "$OUT/rate"

echo "results in $OUT"
