#!/usr/bin/env bash
# Card notifications benchmark: how many `checkout.session.completed` notifications
# rinnovo applies per second on PostgreSQL (each fulfils an order: coupons, emails,
# invoice), and how fast it acknowledges the same ones delivered again.
#
#   benches/card_notifications.sh                 # 2,000 orders, 16 connections
#   ORDERS=500 CONNECTIONS=8 benches/card_notifications.sh
#   SMALL=1 benches/card_notifications.sh         # seconds, debug build: does it still run? (CI)
#
# The provider is the local stand-in of the tests (tests/support/fake_card_provider.py);
# the notifications are signed here with Stripe's scheme and posted straight to the
# service. A pgbench TPC-B run at the same concurrency on the same server is printed as
# the reference.
source "$(dirname "$0")/lib.sh"

sized ORDERS 2000 40
sized CONNECTIONS 16 4
sized ACCOUNTS 10 2
sized REFERENCE_SECONDS 15 2
PORT="${PORT:-18183}"
PROVIDER_PORT="${PROVIDER_PORT:-18184}"
WORK="target/bench/card$(bench_small && echo -small || true)"
DB=rinnovo_bench_card
PGBENCH_DB=rinnovo_bench_tpcb
URL="$PG_SERVER/$DB"
BASE="http://127.0.0.1:$PORT/api/v1"
SECRET="whsec_bench_$(openssl rand -hex 8)"

need_postgres
build_rinnovo
rm -rf "$WORK" && mkdir -p "$WORK"

say "pgbench TPC-B reference: -c $CONNECTIONS -T $REFERENCE_SECONDS"
pgbench_reference "$PGBENCH_DB" "$CONNECTIONS" 2 "$REFERENCE_SECONDS"

bench_database "$DB"
python3 tests/support/fake_card_provider.py --port "$PROVIDER_PORT" --secret "$SECRET" > "$WORK/provider.log" 2>&1 &
bench_track $!
export RINNOVO_DATABASE_URL="$URL" RINNOVO_DATA_DIR="$WORK/data" RINNOVO_LOG=warn \
  RINNOVO_JWT_SECRET="card-benchmark-secret-card-benchmark-secret" \
  RINNOVO_STRIPE_SECRET_KEY=sk_test_bench RINNOVO_STRIPE_WEBHOOK_SECRETS="$SECRET" \
  RINNOVO_STRIPE_API_BASE="http://127.0.0.1:$PROVIDER_PORT"
start_serve "$PORT" "$WORK/server.log"

: > "$WORK/tokens.txt"
for i in $(seq 1 "$ACCOUNTS"); do
  email="card$i@bench.example"
  add_user visura "$email" "Buyer $i" customer
  token=$(login "$BASE" visura "$email")
  curl -sf -X PUT "$BASE/me/billing" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"kind":"person","nome":"Maria","cognome":"Rossi","codice_fiscale":"RSSMRA80A01H501U","indirizzo":"Via Roma 1","cap":"00184","comune":"Roma","provincia":"RM"}' >/dev/null
  echo "$token" >> "$WORK/tokens.txt"
done

python3 benches/card_notifications.py --base "http://127.0.0.1:$PORT" \
  --provider "http://127.0.0.1:$PROVIDER_PORT" --secret "$SECRET" --tokens "$WORK/tokens.txt" \
  --orders "$ORDERS" --connections "$CONNECTIONS" --db "$URL"
echo "pgbench TPC-B (reference, $CONNECTIONS connections): $TPS tps; $(nproc) cores"
