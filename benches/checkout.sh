#!/usr/bin/env bash
# Checkout benchmark (issue: catalog, orders, prepaid checkout, coupons, email).
#
#   benches/checkout.sh               # 30 s, 64 connections, PostgreSQL
#   DURATION=10 benches/checkout.sh
#   SMALL=1 benches/checkout.sh      # seconds, debug build: does it still run? (CI)
#
# Runs pgbench's default TPC-B-like script with the same concurrency and duration on the
# same PostgreSQL server as the reference, then drives POST /api/v1/orders (one coupon,
# prepaid, a fresh Idempotency-Key each) with wrk from 10 customers' accounts, with a real
# SMTP server (aiosmtpd) accepting the emails. Afterwards it checks the invariants
# (balances = ledger sums, invoice numbers without gaps or repeats, one coupon per order,
# every email sent once) and prints orders/s, p50/p99, the ratio to pgbench, and the time
# from order commit to the SMTP server accepting the email.
# Targets: orders/s >= 0.3 x pgbench TPC-B TPS; email p99 < 2 s.
source "$(dirname "$0")/lib.sh"

sized CONNECTIONS 64 8
sized DURATION 30 3
sized ACCOUNTS 10 3
THREADS="${THREADS:-2}"
PORT="${PORT:-18182}"
SMTP_PORT="${SMTP_PORT:-18025}"
WORK="target/bench/checkout$(bench_small && echo -small || true)"
DB=rinnovo_bench_checkout
PGBENCH_DB=rinnovo_bench_tpcb
URL="$PG_SERVER/$DB"
BASE="http://127.0.0.1:$PORT/api/v1"

need_wrk
need_postgres
build_rinnovo
rm -rf "$WORK" && mkdir -p "$WORK"

say "pgbench TPC-B reference: -c $CONNECTIONS -j $THREADS -T $DURATION"
pgbench_reference "$PGBENCH_DB" "$CONNECTIONS" "$THREADS" "$DURATION"

say "database $DB, SMTP server on $SMTP_PORT"
bench_database "$DB"
start_smtp_sink "$SMTP_PORT" "$WORK/smtp.log"
export RINNOVO_DATABASE_URL="$URL" RINNOVO_DATA_DIR="$WORK/data" RINNOVO_LOG=warn \
  RINNOVO_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" \
  RINNOVO_JWT_SECRET="checkout-benchmark-secret-checkout-benchmark"
start_serve "$PORT" "$WORK/server.log"

add_user visura office@bench.example Office back_office
OFFICE=$(login "$BASE" visura office@bench.example)
: > "$WORK/tokens.txt"
for i in $(seq 1 "$ACCOUNTS"); do
  email="buyer$i@bench.example"
  add_user visura "$email" "Buyer $i" customer
  account=$(curl -sf "$BASE/backoffice/prepaid?email=$email" -H "authorization: Bearer $OFFICE" | json '["accounts"][0]["account_id"]')
  curl -sf "$BASE/backoffice/prepaid/$account/adjustments" -H "authorization: Bearer $OFFICE" \
    -H 'content-type: application/json' -d '{"direction":"credit","amount":"1000000.00","reason":"benchmark"}' >/dev/null
  token=$(login "$BASE" visura "$email")
  # Every order is invoiced: the buyer's billing data first.
  curl -sf -X PUT "$BASE/me/billing" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"kind":"person","nome":"Maria","cognome":"Rossi","codice_fiscale":"RSSMRA80A01H501U","indirizzo":"Via Roma 1","cap":"00184","comune":"Roma","provincia":"RM"}' >/dev/null
  echo "$token" >> "$WORK/tokens.txt"
done

cat > "$WORK/orders.lua" <<'LUA'
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
local body = '{"lines":[{"product":"RIN-FIRMA","quantity":1}],"payment_method":"prepaid"}'
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
local counter = 0
function request()
  counter = counter + 1
  return wrk.format("POST", "/api/v1/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1],
    ["Idempotency-Key"] = "bench-" .. tid .. "-" .. counter,
  }, body)
end
LUA

say "wrk: -t $THREADS -c $CONNECTIONS -d ${DURATION}s"
OUT=$(TOKENS_FILE="$WORK/tokens.txt" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
  -s "$WORK/orders.lua" "http://127.0.0.1:$PORT")
echo "$OUT" >&2
read -r RPS P50 P99 BAD < <(wrk_figures "$OUT")
[ -n "$RPS" ] || fail "wrk measured nothing"

say "waiting for the outbox to drain"
for _ in $(seq 1 240); do
  pending=$(psql -Atq "$URL" -c "SELECT count(*) FROM emails WHERE status <> 'sent'")
  [ "$pending" = 0 ] && break
  sleep 0.5
done

q() { psql -Atq "$URL" -c "$1"; }
ORDERS=$(q "SELECT count(*) FROM orders")
BALANCE_MISMATCH=$(q "SELECT count(*) FROM prepaid_accounts a WHERE a.balance_cents <> (SELECT coalesce(sum(amount_cents), 0) FROM prepaid_entries e WHERE e.account_id = a.id)")
INVOICES=$(q "SELECT count(*) || ' numbers, ' || count(DISTINCT invoice_seq) || ' distinct, max ' || max(invoice_seq) FROM orders")
INVOICE_OK=$(q "SELECT count(*) = count(DISTINCT invoice_seq) AND count(*) = max(invoice_seq) FROM orders")
COUPON_MISMATCH=$(q "SELECT count(*) FROM orders o WHERE (SELECT count(*) FROM coupons c WHERE c.order_id = o.id) <> 1")
EMAILS=$(q "SELECT count(*) || ' emails, ' || count(*) FILTER (WHERE status = 'sent') || ' sent' FROM emails")
EMAILS_OK=$(q "SELECT count(*) = 2 * (SELECT count(*) FROM orders) AND bool_and(status = 'sent') FROM emails")
LATENCY=$(q "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at))::numeric, 3) || ' s / ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at))::numeric, 3) || ' s' FROM emails")

RATIO=$(awk -v a="$RPS" -v b="$TPS" 'BEGIN { printf "%.2f", a / b }')
echo
echo "Checkout benchmark: $ACCOUNTS accounts, one-coupon prepaid orders, $CONNECTIONS connections, ${DURATION}s, $(nproc) cores, PostgreSQL$(bench_small && echo ', SMALL (debug build: the figures mean nothing)' || true)"
echo "pgbench TPC-B (reference): $TPS tps"
echo "orders: $RPS orders/s, p50 $P50, p99 $P99, non-2xx $BAD, ratio to TPC-B $RATIO"
echo "email, order commit -> SMTP accepted: p50 / p99 = $LATENCY"
echo "$ORDERS orders; invoices: $INVOICES; $EMAILS"
check "every order answered 201 ($BAD others)" [ "$BAD" = 0 ]
check "some orders were placed ($ORDERS)" [ "$ORDERS" -gt 0 ]
check "balances = ledger sums ($BALANCE_MISMATCH accounts differ)" [ "$BALANCE_MISMATCH" = 0 ]
check "invoice numbers without gaps or repeats" [ "$INVOICE_OK" = t ]
check "one coupon per order ($COUPON_MISMATCH orders differ)" [ "$COUPON_MISMATCH" = 0 ]
check "two emails per order, all sent" [ "$EMAILS_OK" = t ]
invariants_hold
