#!/usr/bin/env bash
# Runs the cashier measurements of BENCHMARKS.md ("Cashier end to end") on
# one database and writes every run's output to OUT/*.txt (and -json to
# OUT/*.json):
#
#   scripts/bench-suite.sh sqlite|sqlite-normal|postgres OUT [cashier binary]
#
# 1. saturation: closed loop, 32 concurrent deposits, 30 s;
# 2. latency at half the saturation rate, open loop, 30 s;
# 3. the target rate of 200 deposits/s, open loop, 20 s;
# 4. a mix of 80 % deposits and 20 % withdrawals, closed loop, 30 s;
# 5. /oauth2/onetime/generate at 1,000/s from 16 cTrader addresses, 20 s;
# then, with 10× and 100× more history seeded into the database (1× being
# 1,000 accounts and 10,000 deposits), runs 1 and 5 again.
#
# Each run records the load average before it starts; memory (VmRSS, VmHWM)
# is read from /proc for the cashier process. Set SCALES="" to skip the
# seeded runs. Environment variables CASHIER_* reach the server (see
# scripts/bench-cashier.sh).
set -euo pipefail
db=${1:?sqlite, sqlite-normal or postgres}
out=${2:?output folder}
bin=${3:-}
scales=${SCALES-"1 10 100"}
mkdir -p "$out"
out=$(readlink -f "$out")
env_dir=$out/env
if [ -z "$bin" ]; then
  bin=$out/cashier
  (cd "$(dirname "$0")/.." && go build -o "$bin" ./cmd/cashier)
fi
here=$(dirname "$(readlink -f "$0")")
"$here/bench-cashier.sh" start "$db" "$env_dir" "$bin"
trap '"$here/bench-cashier.sh" stop "$env_dir"' EXIT
pid=$(cat "$env_dir/cashier.pid")
bench() {
  local name=$1
  shift
  echo "== $name: cashier bench $*" | tee "$out/$name.txt"
  "$bin" bench -manifest "$env_dir/manifest.json" -users-file "$out/users.json" -users 400 -pid "$pid" \
    -json "$out/$name.json" "$@" 2>>"$out/$name.err" | tee -a "$out/$name.txt"
}
rate_of() { # successful operations per second in a -json result
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['result']; print(sum(s['OK'] for s in r['Scenarios'].values())/(r['Elapsed']/1e9))" "$1"
}

bench setup -c 8 -n 16 -mix deposit=1,withdraw=1
bench saturation -c 32 -d 30s
half=$(python3 -c "print(round($(rate_of "$out/saturation.json")/2))")
bench half-rate -rate "$half" -c 400 -d 30s
bench rate-200 -rate 200 -c 400 -d 20s -timeout 30s
bench mix -c 32 -d 30s -mix deposit=80,withdraw=20
bench token-1000 -scenario token -rate 1000 -c 200 -d 20s -ctrader-addrs 16

seeded_accounts=0
seeded_deposits=0
for scale in $scales; do
  accounts=$((1000 * scale - seeded_accounts))
  deposits=$((10000 * scale - seeded_deposits))
  bench "seed-x$scale" -seed-accounts "$accounts" -seed-deposits "$deposits" -c 32 -d 20s
  seeded_accounts=$((seeded_accounts + accounts))
  seeded_deposits=$((seeded_deposits + deposits))
  bench "token-1000-x$scale" -scenario token -rate 1000 -c 200 -d 20s -ctrader-addrs 16
done
echo "results in $out"
