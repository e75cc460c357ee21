#!/usr/bin/env bash
# Reproduces the ledger figures in BENCHMARKS.md: PostgreSQL's own pgbench
# (TPC-B, 8 clients) and the ledger's go benchmarks, on one throwaway
# PostgreSQL cluster with the server's default durability (fsync on,
# synchronous_commit on), and the ledger benchmarks on SQLite.
#
#   scripts/bench-ledger.sh [seconds-per-pgbench-run] [go -benchtime]
set -euo pipefail
secs=${1:-30}
benchtime=${2:-3s}
bin=$(dirname "$(readlink -f "$(command -v initdb || echo /usr/lib/postgresql/15/bin/initdb)")")
dir=$(mktemp -d /tmp/cashier-bench.XXXXXX)
run_as=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; run_as=(runuser -u postgres --); fi
"${run_as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 >/dev/null
"${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-k $dir -c listen_addresses= -c max_connections=100 -c shared_buffers=256MB" start >/dev/null
trap '"${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null; rm -rf "$dir"' EXIT

echo "== machine"; nproc; grep 'model name' /proc/cpuinfo | head -1; "$bin/postgres" --version
echo "== pgbench TPC-B, scale 10, 8 clients, 2 threads, ${secs}s"
"${run_as[@]}" "$bin/pgbench" -h "$dir" -U postgres -i -s 10 -q postgres 2>&1 | tail -1
"${run_as[@]}" "$bin/pgbench" -h "$dir" -U postgres -c 8 -j 2 -T "$secs" postgres | grep -E 'tps|latency average'

echo "== ledger benchmarks (PostgreSQL on the same cluster, then SQLite)"
CASHIER_TEST_POSTGRES="postgres://postgres@/postgres?host=$dir&sslmode=disable" \
  go test -run '^$' -bench 'Transfer|Batch|Deposit' -benchtime "$benchtime" ./internal/ledger/ | grep -E '^Benchmark'
