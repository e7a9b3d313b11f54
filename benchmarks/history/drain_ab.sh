#!/bin/sh
# The engine drain at the defaults on the unpartitioned run records (BEFORE, default 7a7b961, the
# last commit before migration 0016) and on this checkout's, alternated A B A B.
# Usage: sh benchmarks/history/drain_ab.sh [BEFORE]   (DATABASE server: 127.0.0.1:5432, user postgres)
set -eu
BEFORE="${1:-7a7b961}"
HERE="$(cd "$(dirname "$0")/../.." && pwd)"
OLD="$(mktemp -d)/before"
git -C "$HERE" worktree add --detach "$OLD" "$BEFORE" >/dev/null
trap 'git -C "$HERE" worktree remove --force "$OLD"' EXIT
PY="$HERE/.venv/bin/python"
URL="postgresql://postgres@127.0.0.1:5432"
for i in 1 2; do
  echo "== before $i"
  (cd "$OLD" && PYTHONPATH="$OLD/automate:$OLD" "$PY" -m automate_core.cli.main bench outbox -n 50000 -w 2 -c 32 \
      -b 100 --modes engine -r 1 --no-chart --database-url "$URL/automate_bench_before") | grep "engine run 1:"
  echo "== partitioned $i"
  (cd "$HERE" && "$PY" -m automate_core.cli.main bench outbox -n 50000 -w 2 -c 32 \
      -b 100 --modes engine -r 1 --no-chart --database-url "$URL/automate_bench_partitioned") | grep "engine run 1:"
done
