#!/bin/sh
# The engine drain at the defaults on an earlier commit (BEFORE, default 7a7b961, the last commit
# before migration 0016: the unpartitioned run records) and on this checkout, alternated A B A B,
# ROUNDS pairs (default 2). Each side runs its own code on its own database. DAYS (default 0) adds
# that many day partitions to both databases first (benchmarks/history/days.py), so that both plan
# like a deployment that retains DAYS days of history.
# Usage: sh benchmarks/history/drain_ab.sh [BEFORE] [ROUNDS] [DAYS]   (127.0.0.1:5432, user postgres)
set -u
BEFORE="${1:-7a7b961}"
ROUNDS="${2:-2}"
DAYS="${3:-0}"
HERE="$(cd "$(dirname "$0")/../.." && pwd)"
OLD="$(mktemp -d)/before"
git -C "$HERE" worktree add --detach "$OLD" "$BEFORE" >/dev/null
trap 'git -C "$HERE" worktree remove --force "$OLD"' EXIT
PY="$HERE/.venv/bin/python"
URL="postgresql://postgres@127.0.0.1:5432"
if [ "$DAYS" -gt 0 ]; then  # each side makes its database once (its own migrations), then the days
  (cd "$OLD" && PYTHONPATH="$OLD/automate:$OLD" "$PY" -m automate_core.cli.main bench outbox -n 1000 -w 1 \
      --modes engine -r 1 --no-chart --database-url "$URL/automate_bench_before" >/dev/null 2>&1)
  (cd "$HERE" && "$PY" -m automate_core.cli.main bench outbox -n 1000 -w 1 \
      --modes engine -r 1 --no-chart --database-url "$URL/automate_bench_partitioned" >/dev/null 2>&1)
  for db in automate_bench_before automate_bench_partitioned; do
    (cd "$HERE" && "$PY" -m benchmarks.history.days "$URL/$db" "$DAYS")
  done
fi
for i in $(seq 1 "$ROUNDS"); do
  echo "== before ($BEFORE) $i"
  (cd "$OLD" && PYTHONPATH="$OLD/automate:$OLD" "$PY" -m automate_core.cli.main bench outbox -n 50000 -w 2 -c 32 \
      -b 100 --modes engine -r 1 --no-chart --database-url "$URL/automate_bench_before" 2>&1) | tr '\r' '\n' | grep "engine run 1:"
  echo "== this checkout $i"
  (cd "$HERE" && "$PY" -m automate_core.cli.main bench outbox -n 50000 -w 2 -c 32 \
      -b 100 --modes engine -r 1 --no-chart --database-url "$URL/automate_bench_partitioned" 2>&1) | tr '\r' '\n' | grep "engine run 1:"
done
