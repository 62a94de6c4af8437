#!/usr/bin/env bash
# Checkout benchmark (issue: catalog, orders, prepaid checkout, coupons, email).
#
#   benches/checkout.sh               # 30 s, 64 connections, PostgreSQL
#   DURATION=10 benches/checkout.sh
#
# Runs pgbench's default TPC-B-like script with the same concurrency and duration on the
# same PostgreSQL server as the reference, then drives POST /api/v1/orders (one coupon,
# prepaid, a fresh Idempotency-Key each) with wrk from 10 customers' accounts, with a real
# SMTP server (aiosmtpd) accepting the emails. Afterwards it checks the invariants
# (balances = ledger sums, invoice numbers without gaps or repeats, one coupon per order,
# every email sent once) and prints orders/s, p50/p99, the ratio to pgbench, and the time
# from order commit to the SMTP server accepting the email.
# Targets: orders/s >= 0.3 x pgbench TPC-B TPS; email p99 < 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-30}"
THREADS="${THREADS:-2}"
ACCOUNTS="${ACCOUNTS:-10}"
PG_SERVER="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
PGBENCH="${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}"
PORT="${PORT:-18182}"
SMTP_PORT="${SMTP_PORT:-18025}"
WORK="target/bench/checkout"
DB=rinnovo_bench_checkout
PGBENCH_DB=rinnovo_bench_tpcb
URL="$PG_SERVER/$DB"
BASE="http://127.0.0.1:$PORT/api/v1"

say() { printf '==> %s\n' "$*" >&2; }
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

command -v wrk >/dev/null || { say "installing wrk"; (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null; }
python3 -c 'import aiosmtpd' 2>/dev/null || { say "installing aiosmtpd"; pip install -q aiosmtpd >/dev/null; }
pg_isready -q -h 127.0.0.1 || { pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start; sleep 2; }

say "building (release)"
cargo build --release --quiet --bin rinnovo
BIN=target/release/rinnovo
rm -rf "$WORK" && mkdir -p "$WORK"

cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "${SMTP_PID:-}" ] && kill "$SMTP_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

say "pgbench TPC-B reference: -c $CONNECTIONS -j $THREADS -T $DURATION"
psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $PGBENCH_DB" -c "CREATE DATABASE $PGBENCH_DB"
"$PGBENCH" -q -i -s 10 "$PG_SERVER/$PGBENCH_DB" >/dev/null 2>&1
PGBENCH_OUT=$("$PGBENCH" -c "$CONNECTIONS" -j "$THREADS" -T "$DURATION" "$PG_SERVER/$PGBENCH_DB" 2>&1)
echo "$PGBENCH_OUT" >&2
TPS=$(echo "$PGBENCH_OUT" | awk '/^tps/ {print $3; exit}')

say "database $DB, SMTP server on $SMTP_PORT"
psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Sink > "$WORK/smtp.log" 2>&1 &
SMTP_PID=$!
export RINNOVO_DATABASE_URL="$URL" RINNOVO_DATA_DIR="$WORK/data" RINNOVO_LOG=warn \
  RINNOVO_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" RINNOVO_BIND="127.0.0.1:$PORT" \
  RINNOVO_JWT_SECRET="checkout-benchmark-secret-checkout-benchmark"
"$BIN" serve > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.2; done

PASSWORD="benchmark password 2026"
echo "$PASSWORD" | "$BIN" user add --brand visura --email office@bench.example --name Office --role back_office >/dev/null
OFFICE=$(curl -sf "$BASE/auth/login" -H 'content-type: application/json' \
  -d "{\"brand\":\"visura\",\"email\":\"office@bench.example\",\"password\":\"$PASSWORD\"}" | json '["access_token"]')
: > "$WORK/tokens.txt"
for i in $(seq 1 "$ACCOUNTS"); do
  email="buyer$i@bench.example"
  echo "$PASSWORD" | "$BIN" user add --brand visura --email "$email" --name "Buyer $i" --role customer >/dev/null
  account=$(curl -sf "$BASE/backoffice/prepaid?email=$email" -H "authorization: Bearer $OFFICE" | json '["accounts"][0]["account_id"]')
  curl -sf "$BASE/backoffice/prepaid/$account/adjustments" -H "authorization: Bearer $OFFICE" \
    -H 'content-type: application/json' -d '{"direction":"credit","amount":"1000000.00","reason":"benchmark"}' >/dev/null
  token=$(curl -sf "$BASE/auth/login" -H 'content-type: application/json' \
    -d "{\"brand\":\"visura\",\"email\":\"$email\",\"password\":\"$PASSWORD\"}" | json '["access_token"]')
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
RPS=$(echo "$OUT" | awk '/Requests\/sec/ {print $2}')
P50=$(echo "$OUT" | awk '$1 == "50%" {print $2}')
P99=$(echo "$OUT" | awk '$1 == "99%" {print $2}')
BAD=$(echo "$OUT" | awk '/Non-2xx/ {print $5}')

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
echo "Checkout benchmark: $ACCOUNTS accounts, one-coupon prepaid orders, $CONNECTIONS connections, ${DURATION}s, $(nproc) cores, PostgreSQL"
echo "pgbench TPC-B (reference): $TPS tps"
echo "orders: $RPS orders/s, p50 $P50, p99 $P99, non-2xx ${BAD:-0}, ratio to TPC-B $RATIO"
echo "email, order commit -> SMTP accepted: p50 / p99 = $LATENCY"
echo "invariants: $ORDERS orders; balances = ledger sums: $([ "$BALANCE_MISMATCH" = 0 ] && echo yes || echo "NO ($BALANCE_MISMATCH accounts)")"
echo "            invoices: $INVOICES: $([ "$INVOICE_OK" = t ] && echo 'no gaps, no repeats' || echo BROKEN)"
echo "            one coupon per order: $([ "$COUPON_MISMATCH" = 0 ] && echo yes || echo "NO ($COUPON_MISMATCH)")"
echo "            $EMAILS: $([ "$EMAILS_OK" = t ] && echo 'two per order, all sent' || echo 'NOT ALL SENT')"
[ "$BALANCE_MISMATCH" = 0 ] && [ "$INVOICE_OK" = t ] && [ "$COUPON_MISMATCH" = 0 ] && [ "$EMAILS_OK" = t ]
