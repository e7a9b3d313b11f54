#!/bin/sh
# The engine drain of an earlier commit (BEFORE) beside this checkout's and pgqueuer's no-op drain,
# on one database, alternated: each round runs BEFORE's engine, then this checkout's engine and
# pgqueuer (automate bench outbox --compare-peer pgqueuer, which alternates those two). FLAGS go
# to every drain (default: the worker's defaults; e.g. "-c 512 -b 512" for the tuned figure).
# Each round's JSON goes to /tmp/ab-this (this checkout and pgqueuer, the ratio too) and
# the BEFORE line is printed. The two commits must share the schema (no migration between them).
# Usage: sh benchmarks/outbox/ab.sh BEFORE [ROUNDS] [FLAGS...]   (127.0.0.1:5432, user postgres)
set -u
BEFORE="$1"
ROUNDS="${2:-2}"
shift; [ $# -gt 0 ] && shift
HERE="$(cd "$(dirname "$0")/../.." && pwd)"
OLD="$(mktemp -d)/before"
git -C "$HERE" worktree add --detach "$OLD" "$BEFORE" >/dev/null
trap 'git -C "$HERE" worktree remove --force "$OLD"' EXIT
PY="$HERE/.venv/bin/python"
URL="postgresql://postgres@127.0.0.1:5432/automate_bench_partitioned"
for i in $(seq 1 "$ROUNDS"); do
  echo "== before ($BEFORE) $i"
  (cd "$OLD" && PYTHONPATH="$OLD/automate:$OLD" "$PY" -m automate_core.cli.main bench outbox -n 100000 -w 2 \
      --modes engine -r 1 --no-chart --out /tmp/ab-before "$@" --database-url "$URL" 2>&1) \
      | tr '\r' '\n' | grep "engine run 1:"
  echo "== this checkout and pgqueuer $i"
  (cd "$HERE" && "$PY" -m automate_core.cli.main bench outbox -n 100000 -w 2 --modes engine \
      --compare-peer pgqueuer -r 1 --no-chart --out /tmp/ab-this "$@" \
      --database-url "$URL" 2>&1) | tr '\r' '\n' | grep -E "run 1:|engine/pgqueuer"
done
