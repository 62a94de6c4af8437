#!/usr/bin/env bash
# Reconciliation benchmark (issue: pay by transfer with an RF code, statement import).
#
#   benches/reconcile.sh                  # 100,000 open orders, one statement, PostgreSQL
#   ORDERS=20000 benches/reconcile.sh
#   SMALL=1 benches/reconcile.sh          # seconds, debug build: does it still run? (CI)
#
# Places ORDERS transfer orders (RF code each) through the service's own order code, writes
# one camt.053 with one booked credit per order (85% exact, 5% short, 3% over, 3% paid
# twice, 4% with an unknown RF code instead), then uploads it to the running service with
# POST /api/v1/backoffice/statements and times the import+match end to end. Prints
# entries/s, the time the parser alone needs for the same file (the reference), and checks
# the report's counts and the invariants (one coupon per fulfilled order, invoice numbers
# without gaps or repeats, balances = ledger sums, every entry stored once).
# Target on PostgreSQL: >= 5,000 entries/s end to end. Also prints a pgbench TPC-B
# reference measured in the same run (two clients, as the import's two lanes) with the
# ratio entries/s ÷ tps, and the service's peak resident memory (VmHWM) and its resident
# memory a few seconds after the import.
#
# The orders are placed once into a template database and copied for each run
# (CREATE DATABASE ... TEMPLATE), so a rerun only pays for the import; REBUILD=1 redoes them.
source "$(dirname "$0")/lib.sh"

sized ORDERS 100000 300
PORT="${PORT:-18183}"
WORK="target/bench/reconcile$(bench_small && echo -small || true)"
TEMPLATE="rinnovo_bench_reconcile_${ORDERS}"
DB=rinnovo_bench_reconcile
URL="$PG_SERVER/$DB"
BASE="http://127.0.0.1:$PORT/api/v1"
CUSTOMER=buyer@bench.example

q() { psql -Atq "$URL" -c "$1"; }

need_postgres
build_rinnovo reconcile_data
DATA="$RECONCILE_DATA"
mkdir -p "$WORK"

export RINNOVO_DATA_DIR="$WORK/data" RINNOVO_LOG=warn \
  RINNOVO_JWT_SECRET="reconcile-benchmark-secret-reconcile-benchmark"

if bench_template_is_missing "$TEMPLATE"; then
  say "template database $TEMPLATE: $ORDERS transfer orders"
  psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $TEMPLATE WITH (FORCE)" -c "CREATE DATABASE $TEMPLATE"
  export RINNOVO_DATABASE_URL="$PG_SERVER/$TEMPLATE"
  "$BIN" migrate >/dev/null
  "$BIN" seed >/dev/null
  add_user visura "$CUSTOMER" "Studio Rossi" customer
  add_user visura office@bench.example Office back_office
  "$DATA" orders "$PG_SERVER/$TEMPLATE" "$CUSTOMER" "$ORDERS"
  # The instructions emails are not what is measured: mark them sent.
  psql -Atq "$PG_SERVER/$TEMPLATE" -c "UPDATE emails SET status = 'sent', sent_at = now()" >/dev/null
fi

say "database $DB from $TEMPLATE"
bench_database "$DB" "$TEMPLATE"
export RINNOVO_DATABASE_URL="$URL"

say "writing the statement"
EXPECTED=$("$DATA" statement "$URL" "$WORK/statement.xml" "$ORDERS")
say "expected: $EXPECTED"
say "parser alone (best of 3)"
read -r PARSE_SECONDS PARSED < <("$DATA" parse "$WORK/statement.xml")

PGBENCH_SECONDS=$(bench_small && echo 3 || echo 20)
say "pgbench TPC-B reference: -c 2 -j 2 -T $PGBENCH_SECONDS"
pgbench_reference rinnovo_bench_reconcile_tpcb 2 2 "$PGBENCH_SECONDS"

start_serve "$PORT" "$WORK/server.log"
memory_mb() { awk -v field="$1:" '$1 == field { printf "%d", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
IDLE_MB=$(memory_mb VmRSS)
OFFICE=$(login "$BASE" visura office@bench.example)

say "uploading $(du -h "$WORK/statement.xml" | cut -f1) to POST /backoffice/statements"
STATUS_AND_TIME=$(curl -s -o "$WORK/report.json" -w '%{http_code} %{time_total}' \
  "$BASE/backoffice/statements?file_name=statement.xml" -H "authorization: Bearer $OFFICE" \
  -H 'content-type: application/xml' --data-binary @"$WORK/statement.xml")
read -r STATUS IMPORT_SECONDS <<< "$STATUS_AND_TIME"
PEAK_MB=$(memory_mb VmHWM)
sleep 3
AFTER_MB=$(memory_mb VmRSS)
[ "$STATUS" = 201 ] || [ "$STATUS" = 200 ] || { cat "$WORK/report.json" >&2; fail "import: HTTP $STATUS"; }
REPORT=$(python3 - "$WORK/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["outcomes"]
print(" ".join(f"{k}={c.get(k, {}).get('count', 0)}" for k in ("matched", "partial", "overpaid", "duplicate", "unmatched")))
PY
)

ENTRIES=$(q "SELECT count(*) FROM payments")
BALANCE_MISMATCH=$(q "SELECT count(*) FROM prepaid_accounts a WHERE a.balance_cents <> (SELECT coalesce(sum(amount_cents), 0) FROM prepaid_entries e WHERE e.account_id = a.id)")
COUPON_MISMATCH=$(q "SELECT count(*) FROM orders o WHERE o.status = 'fulfilled' AND (SELECT count(*) FROM coupons c WHERE c.order_id = o.id) <> 1")
FULFILLED=$(q "SELECT count(*) FROM orders WHERE status = 'fulfilled'")
INVOICE_OK=$(q "SELECT count(invoice_seq) = count(DISTINCT invoice_seq) AND count(invoice_seq) = coalesce(max(invoice_seq), 0) AND count(invoice_seq) = count(*) FILTER (WHERE status = 'fulfilled') FROM orders")
RATE=$(awk -v n="$ORDERS" -v s="$IMPORT_SECONDS" 'BEGIN { printf "%.0f", n / s }')
PARSE_RATE=$(awk -v n="$PARSED" -v s="$PARSE_SECONDS" 'BEGIN { printf "%.0f", n / s }')

echo
echo "Reconciliation benchmark: $ORDERS open transfer orders, one camt.053 of $ORDERS credits, $(nproc) cores, PostgreSQL$(bench_small && echo ', SMALL (debug build: the figures mean nothing)' || true)"
echo "import + match (HTTP upload to report): ${IMPORT_SECONDS} s, $RATE entries/s"
echo "parse alone: ${PARSE_SECONDS} s, $PARSE_RATE entries/s"
echo "pgbench TPC-B (reference): $TPS tps; ratio entries/s ÷ tps $(awk -v a="$RATE" -v b="$TPS" 'BEGIN { printf "%.2f", a / b }')"
echo "service memory: idle $IDLE_MB MB, peak (VmHWM) $PEAK_MB MB, $AFTER_MB MB 3 s after the import"
echo "report:   $REPORT"
echo "expected: $EXPECTED"
echo "$ENTRIES entries stored, $FULFILLED orders fulfilled"
check "the report counts each outcome as the statement was written" [ "$REPORT" = "$EXPECTED" ]
check "every entry stored once" [ "$ENTRIES" = "$ORDERS" ]
check "one coupon per fulfilled order ($COUPON_MISMATCH orders differ)" [ "$COUPON_MISMATCH" = 0 ]
check "invoice numbers 1..$FULFILLED, no gaps, no repeats" [ "$INVOICE_OK" = t ]
check "balances = ledger sums ($BALANCE_MISMATCH accounts differ)" [ "$BALANCE_MISMATCH" = 0 ]
invariants_hold
