#!/usr/bin/env bash
# Card notifications benchmark: how many `checkout.session.completed` notifications
# rinnovo applies per second on PostgreSQL (each fulfils an order: coupons, emails,
# invoice), and how fast it acknowledges the same ones delivered again.
#
#   benches/card_notifications.sh                 # 2,000 orders, 16 connections
#   ORDERS=500 CONNECTIONS=8 benches/card_notifications.sh
#
# The provider is the local stand-in of the tests (tests/support/fake_card_provider.py);
# the notifications are signed here with Stripe's scheme and posted straight to the
# service. A pgbench TPC-B run at the same concurrency on the same server is printed as
# the reference.
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS="${ORDERS:-2000}"
CONNECTIONS="${CONNECTIONS:-16}"
ACCOUNTS="${ACCOUNTS:-10}"
PG_SERVER="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
PGBENCH="${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}"
PORT="${PORT:-18183}"
PROVIDER_PORT="${PROVIDER_PORT:-18184}"
WORK="target/bench/card"
DB=rinnovo_bench_card
PGBENCH_DB=rinnovo_bench_tpcb
URL="$PG_SERVER/$DB"
BASE="http://127.0.0.1:$PORT/api/v1"
SECRET="whsec_bench_$(openssl rand -hex 8)"

say() { printf '==> %s\n' "$*" >&2; }
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

pg_isready -q -h 127.0.0.1 || { pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start; sleep 2; }

say "building (release)"
cargo build --release --quiet --bin rinnovo
BIN=target/release/rinnovo
rm -rf "$WORK" && mkdir -p "$WORK"

cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "${PROVIDER_PID:-}" ] && kill "$PROVIDER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

say "pgbench TPC-B reference: -c $CONNECTIONS -T 15"
psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $PGBENCH_DB" -c "CREATE DATABASE $PGBENCH_DB"
"$PGBENCH" -q -i -s 10 "$PG_SERVER/$PGBENCH_DB" >/dev/null 2>&1
TPS=$("$PGBENCH" -c "$CONNECTIONS" -j 2 -T 15 "$PG_SERVER/$PGBENCH_DB" 2>&1 | awk '/^tps/ {print $3; exit}')

psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
python3 tests/support/fake_card_provider.py --port "$PROVIDER_PORT" --secret "$SECRET" > "$WORK/provider.log" 2>&1 &
PROVIDER_PID=$!
export RINNOVO_DATABASE_URL="$URL" RINNOVO_DATA_DIR="$WORK/data" RINNOVO_LOG=warn \
  RINNOVO_BIND="127.0.0.1:$PORT" RINNOVO_JWT_SECRET="card-benchmark-secret-card-benchmark-secret" \
  RINNOVO_STRIPE_SECRET_KEY=sk_test_bench RINNOVO_STRIPE_WEBHOOK_SECRETS="$SECRET" \
  RINNOVO_STRIPE_API_BASE="http://127.0.0.1:$PROVIDER_PORT"
"$BIN" serve > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.2; done

PASSWORD="benchmark password 2026"
: > "$WORK/tokens.txt"
for i in $(seq 1 "$ACCOUNTS"); do
  email="card$i@bench.example"
  echo "$PASSWORD" | "$BIN" user add --brand visura --email "$email" --name "Buyer $i" --role customer >/dev/null
  token=$(curl -sf "$BASE/auth/login" -H 'content-type: application/json' \
    -d "{\"brand\":\"visura\",\"email\":\"$email\",\"password\":\"$PASSWORD\"}" | json '["access_token"]')
  curl -sf -X PUT "$BASE/me/billing" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"kind":"person","nome":"Maria","cognome":"Rossi","codice_fiscale":"RSSMRA80A01H501U","indirizzo":"Via Roma 1","cap":"00184","comune":"Roma","provincia":"RM"}' >/dev/null
  echo "$token" >> "$WORK/tokens.txt"
done

python3 benches/card_notifications.py --base "http://127.0.0.1:$PORT" \
  --provider "http://127.0.0.1:$PROVIDER_PORT" --secret "$SECRET" --tokens "$WORK/tokens.txt" \
  --orders "$ORDERS" --connections "$CONNECTIONS" --db "$URL"
echo "pgbench TPC-B (reference, $CONNECTIONS connections): $TPS tps; $(nproc) cores"
