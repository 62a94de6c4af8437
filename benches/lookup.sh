#!/usr/bin/env bash
# Lookup load benchmark (issue: foundation).
#
#   benches/lookup.sh            # PostgreSQL, then SQLite
#   BACKENDS=postgres benches/lookup.sh
#   SMALL=1 benches/lookup.sh    # seconds, debug build: does it still run? (CI)
#
# Loads HOLDERS holders with CERTIFICATES certificates, runs `pgbench -S` on the same
# PostgreSQL server with the same duration and concurrency as the reference, then drives
# GET /api/v1/holders/{cf}/devices with wrk over random known codici fiscali and prints
# requests/s, p50/p99 latency and the ratio to pgbench's TPS.
# The service runs as `serve` runs in production, with its workers: the reminder worker
# goes through the freshly loaded registry while the lookups are measured (one holder in
# ten has an email address), and the figure is the one with them.
# Target: lookup req/s >= 0.35 x pgbench -S TPS at 64 connections.
# Invariants (a broken one fails the run): every lookup answers 200, and no reminder is
# queued for a holder without an email address.
source "$(dirname "$0")/lib.sh"

sized HOLDERS 400000 2000
sized CERTIFICATES 1000000 5000
sized CONNECTIONS 64 8
sized DURATION 30 3
sized WARMUP 5 1
THREADS="${THREADS:-2}"
BACKENDS="${BACKENDS:-postgres sqlite}"
PORT="${PORT:-18181}"
WORK="target/bench/lookup$(bench_small && echo -small || true)"
BENCH_DB=rinnovo_bench_lookup
PGBENCH_DB=rinnovo_bench_pgbench

need_wrk
need_postgres
build_rinnovo lookup_data

mkdir -p "$WORK"
DATA_VERSION="v3/$HOLDERS/$CERTIFICATES"
if [ ! -f "$WORK/certificates.csv" ] || [ "$(cat "$WORK/size" 2>/dev/null)" != "$DATA_VERSION" ]; then
  say "generating $HOLDERS holders / $CERTIFICATES certificates"
  "$LOOKUP_DATA" "$WORK" "$HOLDERS" "$CERTIFICATES"
  echo "$DATA_VERSION" > "$WORK/size"
fi

cat > "$WORK/lookup.lua" <<'LUA'
local codes = {}
for line in io.lines(os.getenv("CODES_FILE")) do codes[#codes + 1] = line end
local headers = { ["Authorization"] = "Bearer " .. os.getenv("TOKEN") }
local counter = 0
function setup(thread) counter = counter + 1; thread:set("seed", counter) end
function init() math.randomseed(os.time() + seed * 7919) end
function request()
  return wrk.format("GET", "/api/v1/holders/" .. codes[math.random(#codes)] .. "/devices", headers)
end
LUA

# Prints "rps p50 p99 non2xx".
run_wrk() {
  local out
  out=$(CODES_FILE="$WORK/codici.txt" TOKEN="$TOKEN" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${1}s" \
    --latency -s "$WORK/lookup.lua" "http://127.0.0.1:$PORT")
  echo "$out" >&2
  wrk_figures "$out"
}

# One answer on the backend being measured.
query() {
  case "$URL" in
    sqlite://*) sqlite3 "${URL#sqlite://}" "$1" ;;
    *) psql -Atq "$URL" -c "$1" ;;
  esac
}

# The CSV files name their columns: the rows are copied by name, so a column a later
# migration adds (with a default, or NULL) needs no change here.
load_postgres() {
  local table cols
  for table in holders devices certificates; do
    cols=$(head -n1 "$WORK/$table.csv")
    psql -q "$URL" -c "\\copy $table ($cols) FROM '$WORK/$table.csv' CSV HEADER"
  done
  psql -q "$URL" -c "ANALYZE"
}

load_sqlite() {
  local table cols nullable
  for table in holders devices certificates; do
    cols=$(head -n1 "$WORK/$table.csv")
    # An empty field is NULL, as PostgreSQL's CSV COPY reads it.
    nullable=$(echo "$cols" | sed -E 's/([a-z_0-9]+)/NULLIF(\1, '"''"')/g')
    sqlite3 -bail "${URL#sqlite://}" <<SQL
.import --csv $WORK/$table.csv staged_$table
INSERT INTO $table ($cols) SELECT $nullable FROM staged_$table;
DROP TABLE staged_$table;
SQL
  done
  sqlite3 "${URL#sqlite://}" "ANALYZE"
}

sign_in() {
  # The lookup needs a signed-in user: a Visura customer made for the run.
  local email="bench-$RANDOM$RANDOM@example.it" cf
  add_user visura "$email" Bench customer
  TOKEN=$(login "http://127.0.0.1:$PORT/api/v1" visura "$email")
  # Every lookup must answer 200 with devices before we measure it.
  cf=$(head -n1 "$WORK/codici.txt")
  curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/holders/$cf/devices" |
    grep -q '"certificates":\[{' || fail "lookup returned no certificates"
}

say "pgbench -S reference: -c $CONNECTIONS -j $THREADS -T $DURATION"
pgbench_reference "$PGBENCH_DB" "$CONNECTIONS" "$THREADS" "$DURATION" -S

export RINNOVO_DATA_DIR="$WORK/data" RINNOVO_LOG=warn ${POOL_SIZE:+RINNOVO_DB_POOL_SIZE="$POOL_SIZE"} \
  RINNOVO_LOOKUPS_CUSTOMER_PER_HOUR=1000000 RINNOVO_LOOKUPS_CUSTOMER_PER_DAY=1000000 \
  RINNOVO_LOOKUPS_OFFICER_PER_HOUR=1000000 RINNOVO_LOOKUPS_OFFICER_PER_DAY=1000000 \
  RINNOVO_LOOKUPS_ADDRESS_PER_HOUR=1000000 RINNOVO_LOOKUPS_ADDRESS_PER_DAY=1000000
RESULTS=()
for backend in $BACKENDS; do
  rm -rf "$WORK/data"
  case "$backend" in
    postgres)
      URL="$PG_SERVER/$BENCH_DB"
      say "loading PostgreSQL ($BENCH_DB)"
      bench_database "$BENCH_DB"
      RINNOVO_DATABASE_URL="$URL" "$BIN" seed >/dev/null
      load_postgres
      ;;
    sqlite)
      URL="sqlite://$WORK/bench.sqlite3"
      say "loading SQLite (${URL#sqlite://})"
      rm -f "${URL#sqlite://}" "${URL#sqlite://}"-*
      RINNOVO_DATABASE_URL="$URL" "$BIN" seed >/dev/null
      load_sqlite
      ;;
    *) fail "unknown backend $backend" ;;
  esac
  export RINNOVO_DATABASE_URL="$URL"
  start_serve "$PORT" "$WORK/server-$backend.log"
  sign_in
  say "warming up ($backend)"
  run_wrk "$WARMUP" >/dev/null 2>&1
  say "wrk $backend: -t $THREADS -c $CONNECTIONS -d ${DURATION}s, workers on"
  read -r RPS P50 P99 BAD < <(run_wrk "$DURATION")
  stop_serve
  REMINDERS=$(query "SELECT count(*) FROM emails WHERE kind = 'renewal_reminder'")
  NO_ADDRESS=$(query "SELECT count(*) FROM emails e JOIN devices d ON d.serial_number = e.reference
    JOIN holders h ON h.id = d.holder_id WHERE e.kind = 'renewal_reminder' AND coalesce(h.email, '') = ''")
  RESULTS+=("$backend $RPS $P50 $P99 $BAD $REMINDERS $NO_ADDRESS")
done

echo
echo "Lookup benchmark: $HOLDERS holders, $CERTIFICATES certificates, $CONNECTIONS connections, ${DURATION}s, $(nproc) cores$(bench_small && echo ', SMALL (debug build: the figures mean nothing)' || true)"
echo "rinnovo serve with its workers on (reminders, issuance, email dispatcher, expiry, SdI)"
printf '%-22s %12s %10s %10s %8s %14s %10s\n' "run" "req/s (tps)" "p50" "p99" "non-2xx" "ratio to -S" "reminders"
printf '%-22s %12s %10s %10s %8s %14s %10s\n' "pgbench -S (reference)" "$TPS" "-" "-" "-" "1.00" "-"
for row in "${RESULTS[@]}"; do
  read -r backend rps p50 p99 bad reminders no_address <<< "$row"
  ratio=$(awk -v a="$rps" -v b="$TPS" 'BEGIN { printf "%.2f", a / b }')
  printf '%-22s %12s %10s %10s %8s %14s %10s\n' "lookup on $backend" "$rps" "$p50" "$p99" "$bad" "$ratio" "$reminders"
done
echo
for row in "${RESULTS[@]}"; do
  read -r backend rps p50 p99 bad reminders no_address <<< "$row"
  check "$backend: every lookup answered 200 ($bad others)" [ "$bad" = 0 ]
  check "$backend: no reminder queued for a holder without an email address ($no_address)" [ "$no_address" = 0 ]
done
invariants_hold
