#!/usr/bin/env bash
# Issuance benchmark (issue: renewal through the desktop agent, point 9).
#
#   benches/issuance.sh                 # 10,000 renewals, PostgreSQL
#   COUNT=2000 benches/issuance.sh
#
# Queues COUNT renewals with RSA-2048 CSRs through the service's own request code (every
# check a desktop agent's request goes through), then times `rinnovo issue-batch`: claim,
# revocation re-check, signing by the embedded CA on every core, storing. Prints
# certificates/s and the reference: `openssl speed rsa2048` signatures/s on one core
# times the cores the batch used. Target: >= 0.5 of the reference.
#
# The queue is prepared once into a template database and copied for each run
# (CREATE DATABASE ... TEMPLATE), so a rerun only pays for the batch; REBUILD=1 redoes it.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-10000}"
KEYS="${KEYS:-64}"
PG_SERVER="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
WORK="target/bench/issuance"
TEMPLATE="rinnovo_bench_issuance_${COUNT}"
DB=rinnovo_bench_issuance
URL="$PG_SERVER/$DB"

say() { printf '==> %s\n' "$*" >&2; }
q() { psql -Atq "$URL" -c "$1"; }

pg_isready -q -h 127.0.0.1 || { pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start; sleep 2; }

say "building (release)"
cargo build --release --quiet --bin rinnovo --bench issuance_data
BIN=target/release/rinnovo
DATA=$(ls -t target/release/deps/issuance_data-* | grep -v '\.d$' | head -n1)
mkdir -p "$WORK/keys"

# The data directory holds the CA and the coupon key the template's coupons are hashed
# with: it belongs with the template.
export RINNOVO_DATA_DIR="$WORK/data-$COUNT" RINNOVO_LOG="${RINNOVO_LOG:-warn}"

exists=$(psql -Atq "$PG_SERVER/postgres" -c "SELECT count(*) FROM pg_database WHERE datname = '$TEMPLATE'")
if [ "$exists" = 0 ] || [ -n "${REBUILD:-}" ] || [ ! -d "$RINNOVO_DATA_DIR" ]; then
  say "$KEYS RSA-2048 device keys (openssl genpkey)"
  for n in $(seq 1 "$KEYS"); do
    [ -f "$WORK/keys/$n.pem" ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/keys/$n.pem" 2>/dev/null
  done
  say "template database $TEMPLATE: $COUNT queued renewals"
  rm -rf "$RINNOVO_DATA_DIR"
  psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $TEMPLATE WITH (FORCE)" -c "CREATE DATABASE $TEMPLATE"
  export RINNOVO_DATABASE_URL="$PG_SERVER/$TEMPLATE"
  "$BIN" migrate >/dev/null
  "$BIN" seed --demo >/dev/null
  echo "benchmark password 2026" | "$BIN" user add --brand visura --email officer@bench.example \
    --name "Ufficio RAO" --role registration_officer >/dev/null
  "$DATA" queue "$RINNOVO_DATABASE_URL" "$RINNOVO_DATA_DIR" "$WORK/keys" "$COUNT"
  # Statistics as autovacuum would have them by the time a worker runs.
  psql -q "$RINNOVO_DATABASE_URL" -c "VACUUM ANALYZE"
fi

say "database $DB from $TEMPLATE"
psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB TEMPLATE $TEMPLATE"
export RINNOVO_DATABASE_URL="$URL"
queued=$(q "SELECT count(*) FROM renewals WHERE status = 'queued'")
[ "$queued" = "$COUNT" ] || { echo "expected $COUNT queued renewals, found $queued" >&2; exit 1; }

CORES=$(nproc)
say "issue-batch: $COUNT renewals, $CORES cores"
start=$(date +%s.%N)
REPORT=$("$BIN" issue-batch)
end=$(date +%s.%N)
echo "$REPORT" >&2

issued=$(q "SELECT count(*) FROM renewals WHERE status = 'issued'")
serials=$(q "SELECT count(DISTINCT issued_serial_number) FROM renewals WHERE status = 'issued'")
[ "$issued" = "$COUNT" ] && [ "$serials" = "$COUNT" ] || { echo "issued $issued, distinct serials $serials, expected $COUNT" >&2; exit 1; }

say "reference: openssl speed rsa2048 (one core)"
SIGN_PER_CORE=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print $(NF-1) }')

python3 - "$COUNT" "$start" "$end" "$SIGN_PER_CORE" "$CORES" <<'PY'
import sys
count, start, end, per_core, cores = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
seconds = end - start
rate = count / seconds
reference = per_core * cores
print(f"issued {count} certificates in {seconds:.2f} s: {rate:,.0f} certificates/s")
print(f"reference: openssl rsa2048 {per_core:,.0f} signs/s per core x {cores} cores = {reference:,.0f}/s")
print(f"ratio: {rate / reference:.2f} (target >= 0.5)")
PY
