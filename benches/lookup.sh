#!/usr/bin/env bash
# Lookup load benchmark (issue: foundation).
#
#   benches/lookup.sh            # PostgreSQL, then SQLite
#   BACKENDS=postgres benches/lookup.sh
#
# Loads HOLDERS holders with CERTIFICATES certificates, runs `pgbench -S` on the same
# PostgreSQL server with the same duration and concurrency as the reference, then drives
# GET /api/v1/holders/{cf}/devices with wrk over random known codici fiscali and prints
# requests/s, p50/p99 latency and the ratio to pgbench's TPS.
# Target: lookup req/s >= 0.35 x pgbench -S TPS at 64 connections.
set -euo pipefail
cd "$(dirname "$0")/.."

HOLDERS="${HOLDERS:-400000}"
CERTIFICATES="${CERTIFICATES:-1000000}"
CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-30}"
THREADS="${THREADS:-2}"
BACKENDS="${BACKENDS:-postgres sqlite}"
PG_SERVER="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
PGBENCH="${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}"
PORT="${PORT:-18181}"
WORK="target/bench/lookup"
BENCH_DB=rinnovo_bench_lookup
PGBENCH_DB=rinnovo_bench_pgbench

say() { printf '==> %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
  say "installing wrk"
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  sleep 2
fi

say "building (release)"
cargo build --release --quiet --bin rinnovo
BIN=target/release/rinnovo

mkdir -p "$WORK"
DATA_VERSION="v2/$HOLDERS/$CERTIFICATES"
if [ ! -f "$WORK/certificates.csv" ] || [ "$(cat "$WORK/size" 2>/dev/null)" != "$DATA_VERSION" ]; then
  say "generating $HOLDERS holders / $CERTIFICATES certificates"
  cargo bench --quiet --bench lookup_data -- "$WORK" "$HOLDERS" "$CERTIFICATES"
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

# Prints "rps p50 p99 non2xx" from wrk's output.
run_wrk() {
  local out
  out=$(CODES_FILE="$WORK/codici.txt" TOKEN="$TOKEN" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
    --latency -s "$WORK/lookup.lua" "http://127.0.0.1:$PORT")
  echo "$out" >&2
  local rps p50 p99 bad
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  bad=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  echo "$rps $p50 $p99 ${bad:-0}"
}

start_server() {
  env RINNOVO_DATABASE_URL="$1" RINNOVO_BIND="127.0.0.1:$PORT" RINNOVO_LOG=warn \
    RINNOVO_DATA_DIR="$WORK/data" ${POOL_SIZE:+RINNOVO_DB_POOL_SIZE="$POOL_SIZE"} \
    RINNOVO_LOOKUPS_CUSTOMER_PER_HOUR=1000000 RINNOVO_LOOKUPS_CUSTOMER_PER_DAY=1000000 \
    RINNOVO_LOOKUPS_OFFICER_PER_HOUR=1000000 RINNOVO_LOOKUPS_OFFICER_PER_DAY=1000000 \
    RINNOVO_LOOKUPS_ADDRESS_PER_HOUR=1000000 RINNOVO_LOOKUPS_ADDRESS_PER_DAY=1000000 \
    "$BIN" serve > "$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break
    sleep 0.2
  done
  curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null || { cat "$WORK/server.log"; exit 1; }
  # The lookup needs a signed-in user: a Visura customer made for the run.
  local email="bench-$RANDOM$RANDOM@example.it" password="benchmark password 2026"
  echo "$password" | env RINNOVO_DATABASE_URL="$1" RINNOVO_DATA_DIR="$WORK/data" RINNOVO_LOG=warn \
    "$BIN" user add --brand visura --email "$email" --name Bench --role customer >/dev/null
  TOKEN=$(curl -sf "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"brand\":\"visura\",\"email\":\"$email\",\"password\":\"$password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
  # Every lookup must answer 200 with devices before we measure it.
  local cf
  cf=$(head -n1 "$WORK/codici.txt")
  curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/holders/$cf/devices" |
    grep -q '"certificates":\[{' || { echo "lookup returned no certificates" >&2; exit 1; }
}

stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
trap stop_server EXIT

say "pgbench -S reference: -c $CONNECTIONS -j $THREADS -T $DURATION"
psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $PGBENCH_DB" -c "CREATE DATABASE $PGBENCH_DB"
"$PGBENCH" -q -i -s 10 "$PG_SERVER/$PGBENCH_DB" >/dev/null 2>&1
PGBENCH_OUT=$("$PGBENCH" -S -c "$CONNECTIONS" -j "$THREADS" -T "$DURATION" "$PG_SERVER/$PGBENCH_DB" 2>&1)
echo "$PGBENCH_OUT" >&2
TPS=$(echo "$PGBENCH_OUT" | awk '/^tps/ {print $3; exit}')

RESULTS=()
for backend in $BACKENDS; do
  case "$backend" in
    postgres)
      URL="$PG_SERVER/$BENCH_DB"
      say "loading PostgreSQL ($BENCH_DB)"
      psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB"
      RINNOVO_DATABASE_URL="$URL" RINNOVO_DATA_DIR="$WORK/data" "$BIN" seed >/dev/null
      psql -q "$URL" \
        -c "\\copy holders FROM '$WORK/holders.csv' CSV" \
        -c "\\copy devices FROM '$WORK/devices.csv' CSV" \
        -c "\\copy certificates FROM '$WORK/certificates.csv' CSV" \
        -c "ANALYZE"
      ;;
    sqlite)
      DB_FILE="$WORK/bench.sqlite3"
      URL="sqlite://$DB_FILE"
      say "loading SQLite ($DB_FILE)"
      rm -f "$DB_FILE" "$DB_FILE"-*
      RINNOVO_DATABASE_URL="$URL" RINNOVO_DATA_DIR="$WORK/data" "$BIN" seed >/dev/null
      sqlite3 "$DB_FILE" <<SQL
.mode csv
.import $WORK/holders.csv holders
.import $WORK/devices.csv devices
.import $WORK/certificates.csv certificates
ANALYZE;
SQL
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  start_server "$URL"
  say "warming up ($backend)"
  DURATION=5 run_wrk >/dev/null 2>&1
  say "wrk $backend: -t $THREADS -c $CONNECTIONS -d ${DURATION}s"
  read -r RPS P50 P99 BAD < <(run_wrk)
  stop_server
  RESULTS+=("$backend $RPS $P50 $P99 $BAD")
done

echo
echo "Lookup benchmark: $HOLDERS holders, $CERTIFICATES certificates, $CONNECTIONS connections, ${DURATION}s, $(nproc) cores"
printf '%-22s %12s %10s %10s %8s %14s\n' "run" "req/s (tps)" "p50" "p99" "non-2xx" "ratio to -S"
printf '%-22s %12s %10s %10s %8s %14s\n' "pgbench -S (reference)" "$TPS" "-" "-" "-" "1.00"
for row in "${RESULTS[@]}"; do
  read -r backend rps p50 p99 bad <<< "$row"
  ratio=$(awk -v a="$rps" -v b="$TPS" 'BEGIN { printf "%.2f", a / b }')
  printf '%-22s %12s %10s %10s %8s %14s\n' "lookup on $backend" "$rps" "$p50" "$p99" "$bad" "$ratio"
done
