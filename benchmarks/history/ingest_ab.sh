#!/bin/sh
# Webhook ingest on the unpartitioned events (BEFORE, default a48aa7e, the last commit before
# migration 0017) and on this checkout's partitioned ones, alternated A B A B; each round runs the
# one-statement bare baseline beside the platform (benchmarks/ingest/run.py, 64 connections).
# Usage: sh benchmarks/history/ingest_ab.sh [BEFORE] [ROUNDS] [TAG]   (needs wrk; PostgreSQL 127.0.0.1:5432)
# TAG prefixes the result files (benchmarks/history/results/<TAG>ingest-*.json).
set -eu
BEFORE="${1:-a48aa7e}"
ROUNDS="${2:-2}"
TAG="${3:-}"
HERE="$(cd "$(dirname "$0")/../.." && pwd)"
OLD="$(mktemp -d)/before"
git -C "$HERE" worktree add --detach "$OLD" "$BEFORE" >/dev/null
trap 'git -C "$HERE" worktree remove --force "$OLD"' EXIT
# this checkout's harness (it puts the worktree's own code first on the servers' path)
cp "$HERE/benchmarks/ingest/run.py" "$OLD/benchmarks/ingest/run.py"
PY="$HERE/.venv/bin/python"
URL="postgresql://postgres@127.0.0.1:5432"
OUT="$HERE/benchmarks/history/results"
for db in automate_bench_ingest_before automate_bench_ingest_partitioned; do
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done
i=1
while [ "$i" -le "$ROUNDS" ]; do
  echo "== before $i"
  (cd "$OLD" && PYTHONPATH="$OLD/automate:$OLD" "$PY" benchmarks/ingest/run.py --runs 1 --duration 10 \
      --database-url "$URL/automate_bench_ingest_before" --json "$OUT/${TAG}ingest-before-$i.json") | grep -E "^\| (bare1|group):|x \(pairs|note:"
  echo "== partitioned $i"
  (cd "$HERE" && "$PY" benchmarks/ingest/run.py --runs 1 --duration 10 \
      --database-url "$URL/automate_bench_ingest_partitioned" --json "$OUT/${TAG}ingest-partitioned-$i.json") | grep -E "^\| (bare1|group):|x \(pairs|note:"
  i=$((i + 1))
done
