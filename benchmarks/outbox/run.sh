#!/bin/sh
# The outbox figures of docs/benchmarks.md, in one command: ./benchmarks/outbox/run.sh
#
# Every comparison is measured side by side in one invocation: the contenders alternate (A B,
# then B A) and each ratio printed is the median of the per-repeat pair ratios. Needs
# DATABASE_URL; uses the databases <name>_bench and <name>_bench_history next to it (created on
# first use; the history of 10 million completed jobs is built once, ~3 minutes). The peer needs
# the bench extra (pip install -e '.[bench]'). Results (JSON, PNG) go to $OUT.
set -eu
cd "$(dirname "$0")/../.."
: "${DATABASE_URL:?set DATABASE_URL}"
OUT=${OUT:-benchmarks/outbox/results/$(date -u +%Y%m%dT%H%M%SZ)}
AUTOMATE=${AUTOMATE:-.venv/bin/automate}
N=${N:-100000}
REPEAT=${REPEAT:-5}

# 1. Drain a backlog of N jobs with 2 worker processes at the defaults (32 x batch 100), the engine
#    and the worker without it, against pgqueuer's no-op drain (5 x 100) on the same database.
"$AUTOMATE" bench outbox -n "$N" -w 2 -c 32 -b 100 --modes engine,noop --compare-peer pgqueuer \
    --repeat "$REPEAT" --out "$OUT/peer-defaults"

# 2. The same, tuned (512 x batch 512).
"$AUTOMATE" bench outbox -n "$N" -w 2 -c 512 -b 512 --modes engine,noop --compare-peer pgqueuer \
    --repeat "$REPEAT" --out "$OUT/peer-tuned"

# 3. Against raw SQL on the same database (the ceiling of our own statements).
"$AUTOMATE" bench outbox -n "$N" -w 2 -c 512 -b 512 --modes engine,noop,sql \
    --repeat 3 --out "$OUT/sql"

# 4. Every mode on an empty table and, next to it, on one holding 10 million completed jobs:
#    claim speed must not depend on history.
"$AUTOMATE" bench outbox -n "$N" -w 2 -c 512 -b 512 --modes engine,sql \
    --repeat 3 --history 10000000 --compare-history --out "$OUT/history"

echo "results in $OUT"
# End to end and ingest (their own commands; see docs/benchmarks.md):
#   .venv/bin/automate bench e2e --rate 500 --duration 60
#   .venv/bin/automate bench e2e --rate 2000 --duration 60
#   .venv/bin/python benchmarks/ingest/run.py --runs 5
#   .venv/bin/python benchmarks/ingest/run.py --connections 1 --runs 5
