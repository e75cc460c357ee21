#!/usr/bin/env bash
# Measures the cost of one completed deposit, as BENCHMARKS.md reports it
# ("Second round: less work per deposit"): starts the system of
# scripts/bench-cashier.sh, warms it up with 40 users, then drives N deposits
# (default 300) at 8 in flight, waits until the job queue is idle, and
# prints per deposit: the cashier's CPU time and, on PostgreSQL, the
# statements (pg_stat_statements), the commits and PostgreSQL's CPU time.
#
#   scripts/bench-cost.sh sqlite|postgres OUT [cashier binary] [bench binary] [N]
#
# The bench binary drives the load (default: the cashier binary); give the
# same one when comparing two builds of the server.
set -euo pipefail
db=${1:?sqlite or postgres}
out=${2:?output folder}
bin=${3:-}
mkdir -p "$out"
out=$(readlink -f "$out")
if [ -z "$bin" ]; then
  bin=$out/cashier
  (cd "$(dirname "$0")/.." && go build -o "$bin" ./cmd/cashier)
fi
client=${4:-$bin}
n=${5:-300}
here=$(dirname "$(readlink -f "$0")")
env_dir=$out/env
rm -rf "$env_dir" "$out/users.json" # users live in the database made below
BENCH_PG_STATS=1 CASHIER_JOB_WORKERS=${CASHIER_JOB_WORKERS:-16} "$here/bench-cashier.sh" start "$db" "$env_dir" "$bin" >"$out/start.log"
trap '"$here/bench-cashier.sh" stop "$env_dir" >/dev/null 2>&1' EXIT
pid=$(cat "$env_dir/cashier.pid")
bench() { "$client" bench -manifest "$env_dir/manifest.json" -users 40 -users-file "$out/users.json" "$@"; }
run_as=(); [ "$(id -u)" = 0 ] && run_as=(runuser -u postgres --)
pgbin=$(dirname "$(readlink -f "$(command -v initdb || echo /usr/lib/postgresql/15/bin/initdb)")")
sql() { "${run_as[@]}" "$pgbin/psql" -qAt -h "$env_dir/pg" -U postgres cashier -c "$1"; }
ticks() { # utime+stime of the cashier, and of every PostgreSQL process
  local p=0 f
  if [ "$db" = postgres ]; then
    for f in $(pgrep -u postgres); do p=$((p + $(awk '{print $14+$15}' "/proc/$f/stat" 2>/dev/null || echo 0))); done
  fi
  echo "$(awk '{print $14+$15}' "/proc/$pid/stat") $p"
}

bench -c 4 -n 40 >"$out/warm.txt" 2>&1
bench -c 1 -n 1 -check=false >/dev/null 2>&1 # waits for the warm-up's jobs
if [ "$db" = postgres ]; then
  sql "select pg_stat_statements_reset()" >/dev/null
  sql "select pg_stat_reset()" >/dev/null
fi
read -r c0 p0 < <(ticks)
bench -c 8 -n "$n" -quiet-start 0 -check=false >"$out/run.txt" 2>&1
bench -c 1 -n 1 -check=false >/dev/null 2>&1 # waits until the run's jobs are done (one more deposit)
read -r c1 p1 < <(ticks)
deposits=$((n + 1))
hz=$(getconf CLK_TCK)
line="deposits $deposits: cashier CPU $(python3 -c "print(f'{($c1-$c0)/$hz/$deposits*1000:.1f}')") ms"
if [ "$db" = postgres ]; then
  # The bench's own queries (job backlog, velocity rule) are left out.
  stm=$(sql "select sum(calls) from pg_stat_statements where query not ilike '%pg_stat%' and query not ilike '%OR (state = %' and query not ilike '%compliance_rules%'")
  com=$(sql "select xact_commit from pg_stat_database where datname = 'cashier'")
  line="$line, PostgreSQL CPU $(python3 -c "print(f'{($p1-$p0)/$hz/$deposits*1000:.1f}')") ms, $(python3 -c "print(f'{$stm/$deposits:.1f}')") statements, $(python3 -c "print(f'{$com/$deposits:.1f}')") commits"
  sql "select calls, left(regexp_replace(query, '\s+', ' ', 'g'), 120) from pg_stat_statements order by calls desc limit 40" >"$out/statements.txt"
fi
echo "$line per deposit" | tee "$out/cost.txt"
grep -E "deposit |throughput" "$out/run.txt"
