#!/usr/bin/env bash
# Starts and stops the system `cashier bench` measures, as BENCHMARKS.md
# describes: `cashier serve` on SQLite or on a throwaway PostgreSQL cluster,
# beside a separate `cashier sim` (the cTrader simulator), configured as the
# demo is (sandbox provider, SSO, new demo accounts funded with 10000 USD,
# automatic approval of withdrawals up to 500 USD). It writes DIR/manifest.json
# in the demo's manifest format, so `cashier bench -manifest DIR/manifest.json`
# finds the URLs, the crmApiToken password and the database, and DIR/cashier.pid
# for `cashier bench -pid`. E-mails go to a sink on 127.0.0.1:18092
# (BENCH_MAIL_PORT) that accepts and drops them.
#
#   scripts/bench-cashier.sh start sqlite|sqlite-normal|postgres DIR [cashier binary]
#   scripts/bench-cashier.sh stop DIR
#
# sqlite runs with the product's durability (synchronous=FULL: every commit
# waits for the disk); sqlite-normal adds ?_pragma=synchronous(NORMAL) to the
# database URL (WAL: a commit survives a crash of the process but may be lost
# with the machine's power). PostgreSQL runs with its default durability
# (fsync on, synchronous_commit on). Extra CASHIER_* variables in the caller's
# environment (CASHIER_JOB_WORKERS, for one) reach `cashier serve`.
# BENCH_PG_STATS=1 loads pg_stat_statements into the PostgreSQL cluster
# (see the statements that cost the most time: psql -h DIR/pg -U postgres cashier).
set -euo pipefail
cmd=${1:?start or stop}
dir=${3:-${2:?DIR}}
if [ "$cmd" = stop ]; then
  dir=$2
  for p in cashier sim mail; do
    [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
  done
  sleep 2
  if [ -d "$dir/pg/data" ]; then
    run_as=(); [ "$(id -u)" = 0 ] && run_as=(runuser -u postgres --)
    pgbin=$(dirname "$(readlink -f "$(command -v pg_ctl || echo /usr/lib/postgresql/15/bin/pg_ctl)")")
    "${run_as[@]}" "$pgbin/pg_ctl" -D "$dir/pg/data" -m fast stop >/dev/null || true
  fi
  exit 0
fi
db=$2
bin=${4:-}
mkdir -p "$dir"
dir=$(readlink -f "$dir")
if [ -z "$bin" ]; then
  bin=$dir/cashier
  (cd "$(dirname "$0")/.." && go build -o "$bin" ./cmd/cashier)
fi
port_cashier=${BENCH_CASHIER_PORT:-18090}
port_sim=${BENCH_SIM_PORT:-18091}
port_mail=${BENCH_MAIL_PORT:-18092}
password=bench-crm-password

case "$db" in
sqlite) url="sqlite:$dir/cashier.db" ;;
sqlite-normal) url="sqlite:$dir/cashier.db?_pragma=synchronous(NORMAL)" ;;
postgres)
  pgbin=$(dirname "$(readlink -f "$(command -v initdb || echo /usr/lib/postgresql/15/bin/initdb)")")
  mkdir -p "$dir/pg"
  run_as=()
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir/pg"; run_as=(runuser -u postgres --); fi
  "${run_as[@]}" "$pgbin/initdb" -D "$dir/pg/data" -U postgres -A trust -E UTF8 >/dev/null
  stats=()
  [ -n "${BENCH_PG_STATS:-}" ] && stats=(-c shared_preload_libraries=pg_stat_statements)
  "${run_as[@]}" "$pgbin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w \
    -o "-k $dir/pg -c listen_addresses= -c max_connections=200 -c shared_buffers=256MB ${stats[*]}" start >/dev/null
  "${run_as[@]}" "$pgbin/createdb" -h "$dir/pg" -U postgres cashier
  if [ -n "${BENCH_PG_STATS:-}" ]; then
    "${run_as[@]}" "$pgbin/psql" -q -h "$dir/pg" -U postgres -d cashier -c 'CREATE EXTENSION pg_stat_statements'
  fi
  url="postgres://postgres@/cashier?host=$dir/pg&sslmode=disable"
  ;;
*) echo "database must be sqlite, sqlite-normal or postgres" >&2; exit 2 ;;
esac

# A mail sink: the cashier e-mails traders (deposit credited, withdrawal
# paid); without a mail server each e-mail job would be retried for days and
# its retries counted in the figures. It accepts every message and keeps none.
python3 - "$port_mail" >"$dir/mail.log" 2>&1 <<'PY' &
import socketserver, sys
class Sink(socketserver.StreamRequestHandler):
    def handle(self):
        w = lambda s: self.wfile.write(s.encode() + b"\r\n")
        w("220 bench mail sink")
        data = False
        for line in self.rfile:
            if data:
                if line.rstrip(b"\r\n") == b".":
                    data = False
                    w("250 kept nowhere")
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                w("250 sink")
            elif verb == b"DATA":
                data = True
                w("354 go on")
            elif verb == b"QUIT":
                w("221 bye")
                return
            else:
                w("250 ok")
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
Server(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
echo $! >"$dir/mail.pid"

"$bin" sim -listen "127.0.0.1:$port_sim" -broker-url "http://127.0.0.1:$port_cashier" -crm-password "$password" \
  >"$dir/sim.log" 2>&1 &
echo $! >"$dir/sim.pid"

env CASHIER_ADDR="127.0.0.1:$port_cashier" CASHIER_DATABASE_URL="$url" \
  CASHIER_CTRADER_URL="http://127.0.0.1:$port_sim" CASHIER_CTRADER_MANAGER_LOGIN=1001 \
  CASHIER_CTRADER_MANAGER_PASSWORD=manager-password CASHIER_CTRADER_BROKER_CRM_NAME=demo_crm \
  CASHIER_CTRADER_BROKER_NAME=demo_broker CASHIER_CTRADER_DEMO_BALANCE=10000 \
  CASHIER_CTRADER_CRM_PASSWORDS="$password" CASHIER_PUSH_LOOKUP=auto CASHIER_SANDBOX=true \
  CASHIER_SUCCESS_URL="http://127.0.0.1:$port_sim/app/success" \
  CASHIER_FRAME_ANCESTORS="'self' http://127.0.0.1:$port_sim" CASHIER_DEFAULT_KYC_LEVEL=2 \
  CASHIER_SMTP_HOST=127.0.0.1 CASHIER_SMTP_PORT="$port_mail" CASHIER_SMTP_REQUIRE_TLS=false \
  CASHIER_SMTP_FROM=cashier@bench.example \
  CASHIER_WITHDRAWAL_AUTO_APPROVE="USD:500.00" CASHIER_LOG_LEVEL="${CASHIER_LOG_LEVEL:-warn}" \
  CASHIER_SESSION_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  "$bin" serve >"$dir/cashier.log" 2>&1 &
echo $! >"$dir/cashier.pid"

for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port_cashier/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
cat >"$dir/manifest.json" <<JSON
{"cashierURL": "http://127.0.0.1:$port_cashier", "simulatorURL": "http://127.0.0.1:$port_sim",
 "crmApiPassword": "$password", "databaseURL": "$url", "dataDir": "$dir"}
JSON
echo "cashier serve ($db) pid $(cat "$dir/cashier.pid") on 127.0.0.1:$port_cashier, cashier sim on 127.0.0.1:$port_sim"
echo "manifest: $dir/manifest.json"
