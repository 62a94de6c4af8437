#!/usr/bin/env bash
# Issuance benchmark (issue: renewal through the desktop agent, point 9).
#
#   benches/issuance.sh                 # 10,000 renewals, PostgreSQL, a P-384 CA then an RSA one
#   COUNT=2000 CA_KEYS=p384 benches/issuance.sh
#   SMALL=1 benches/issuance.sh         # seconds, debug build: does it still run? (CI)
#
# Queues COUNT renewals with RSA-2048 CSRs through the service's own request code (every
# check a desktop agent's request goes through), then times `rinnovo issue-batch`: claim,
# revocation re-check, signing by the embedded CA on every core, storing. Prints
# certificates/s and the reference: the signatures per second `openssl speed` makes with
# the issuing CA's own key type (ecdsap384 for the P-384 key the embedded CA makes,
# rsa2048 for an RSA-2048 one) on one core, times the cores the batch used.
# Target: >= 0.5 of the reference.
#
# CA_KEYS says which CAs to measure: `p384`, the embedded CA as it makes itself, and
# `rsa2048`, the same CA given an RSA-2048 root and issuing CA made here with openssl
# (what a deployment whose CA signs with RSA has), since a CA's signing rate depends on
# its key type.
#
# The queue is prepared once into a template database per CA and copied for each run
# (CREATE DATABASE ... TEMPLATE), so a rerun only pays for the batch; REBUILD=1 redoes it.
source "$(dirname "$0")/lib.sh"

sized COUNT 10000 50
sized KEYS 64 4
sized SPEED_SECONDS 3 1
CA_KEYS="${CA_KEYS:-p384 rsa2048}"
WORK="target/bench/issuance$(bench_small && echo -small || true)"
DB=rinnovo_bench_issuance
URL="$PG_SERVER/$DB"
export RINNOVO_LOG="${RINNOVO_LOG:-warn}"

q() { psql -Atq "$URL" -c "$1"; }

# rsa_ca DIR: an RSA-2048 root and an issuing CA signed by it, in the embedded CA's files.
rsa_ca() {
  local dir=$1
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/root.key.pem" -out "$dir/root.pem" \
    -days 7300 -subj "/CN=Bench RSA Root CA/O=rinnovo bench" \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/issuing.key.pem" -out "$dir/issuing.csr" \
    -subj "/CN=Bench RSA Issuing CA/O=rinnovo bench" 2>/dev/null
  printf '%s\n' basicConstraints=critical,CA:true,pathlen:0 keyUsage=critical,keyCertSign,cRLSign \
    subjectKeyIdentifier=hash authorityKeyIdentifier=keyid > "$dir/issuing.ext"
  openssl x509 -req -in "$dir/issuing.csr" -CA "$dir/root.pem" -CAkey "$dir/root.key.pem" \
    -CAcreateserial -days 3650 -extfile "$dir/issuing.ext" -out "$dir/issuing.pem" 2>/dev/null
  rm -f "$dir/issuing.csr" "$dir/issuing.ext" "$dir/root.srl"
}

# speed_reference ISSUING_PEM: "ALGORITHM SIGNS_PER_SECOND" of `openssl speed` on one core
# for the key type of the CA certificate.
speed_reference() {
  local text algorithm pattern
  text=$(openssl x509 -in "$1" -noout -text)
  if grep -q 'NIST CURVE: P-384' <<< "$text"; then
    algorithm=ecdsap384 pattern='ecdsa [(]nistp384[)]'
  elif grep -q 'rsaEncryption' <<< "$text" && grep -q 'Public-Key: (2048 bit)' <<< "$text"; then
    algorithm=rsa2048 pattern='^rsa 2048 bits'
  else
    fail "no openssl speed reference for the key of $1"
  fi
  echo "$algorithm $(openssl speed -seconds "$SPEED_SECONDS" "$algorithm" 2>/dev/null |
    awk -v pattern="$pattern" '$0 ~ pattern { print $(NF-1) }')"
}

need_postgres
build_rinnovo issuance_data
mkdir -p "$WORK/keys"
CORES=$(nproc)
RESULTS=()
for ca in $CA_KEYS; do
  case "$ca" in p384 | rsa2048) ;; *) fail "CA_KEYS: $ca is neither p384 nor rsa2048" ;; esac
  TEMPLATE="rinnovo_bench_issuance_${ca}_${COUNT}"
  # The data directory holds the CA and the coupon key the template's coupons are hashed
  # with: it belongs with the template.
  export RINNOVO_DATA_DIR="$WORK/data-$ca-$COUNT"
  if bench_template_is_missing "$TEMPLATE" || [ ! -d "$RINNOVO_DATA_DIR" ]; then
    say "$KEYS RSA-2048 device keys (openssl genpkey)"
    for n in $(seq 1 "$KEYS"); do
      [ -f "$WORK/keys/$n.pem" ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/keys/$n.pem" 2>/dev/null
    done
    say "template database $TEMPLATE: $COUNT queued renewals, $ca CA"
    rm -rf "$RINNOVO_DATA_DIR"
    # Without files the embedded CA makes its own P-384 keys at its first start.
    [ "$ca" = rsa2048 ] && rsa_ca "$RINNOVO_DATA_DIR/ca"
    psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $TEMPLATE WITH (FORCE)" -c "CREATE DATABASE $TEMPLATE"
    export RINNOVO_DATABASE_URL="$PG_SERVER/$TEMPLATE"
    "$BIN" migrate >/dev/null
    "$BIN" seed --demo >/dev/null
    add_user visura officer@bench.example "Ufficio RAO" registration_officer
    "$ISSUANCE_DATA" queue "$RINNOVO_DATABASE_URL" "$RINNOVO_DATA_DIR" "$WORK/keys" "$COUNT"
    # Statistics as autovacuum would have them by the time a worker runs.
    psql -q "$RINNOVO_DATABASE_URL" -c "VACUUM ANALYZE"
  fi

  say "database $DB from $TEMPLATE"
  bench_database "$DB" "$TEMPLATE"
  export RINNOVO_DATABASE_URL="$URL"
  queued=$(q "SELECT count(*) FROM renewals WHERE status = 'queued'")
  [ "$queued" = "$COUNT" ] || fail "expected $COUNT queued renewals, found $queued"

  say "issue-batch: $COUNT renewals, $CORES cores, $ca CA"
  start=$(date +%s.%N)
  REPORT=$("$BIN" issue-batch)
  end=$(date +%s.%N)
  echo "$REPORT" >&2

  issued=$(q "SELECT count(*) FROM renewals WHERE status = 'issued'")
  serials=$(q "SELECT count(DISTINCT issued_serial_number) FROM renewals WHERE status = 'issued'")
  check "$ca CA: every renewal issued once ($issued of $COUNT)" [ "$issued" = "$COUNT" ]
  check "$ca CA: a distinct serial number each ($serials)" [ "$serials" = "$COUNT" ]
  q "SELECT certificate_pem FROM renewals WHERE status = 'issued' ORDER BY id LIMIT 1" > "$WORK/sample.pem"
  check "$ca CA: a certificate issued verifies against the CA's chain" \
    openssl verify -CAfile "$RINNOVO_DATA_DIR/ca/root.pem" -untrusted "$RINNOVO_DATA_DIR/ca/issuing.pem" "$WORK/sample.pem"

  say "reference: openssl speed for the issuing CA's key (one core)"
  read -r ALGORITHM SIGN_PER_CORE < <(speed_reference "$RINNOVO_DATA_DIR/ca/issuing.pem")
  [ -n "$SIGN_PER_CORE" ] || fail "openssl speed $ALGORITHM printed no figure"
  RESULTS+=("$ca $start $end $ALGORITHM $SIGN_PER_CORE")
done

echo
echo "Issuance benchmark: $COUNT renewals with RSA-2048 CSRs, $CORES cores, PostgreSQL$(bench_small && echo ', SMALL (debug build: the figures mean nothing)' || true)"
for row in "${RESULTS[@]}"; do
  python3 - "$COUNT" "$CORES" $row <<'PY'
import sys
count, cores = int(sys.argv[1]), int(sys.argv[2])
ca, start, end, algorithm, per_core = sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), sys.argv[6], float(sys.argv[7])
seconds = end - start
rate = count / seconds
reference = per_core * cores
print(f"{ca} CA: issued {count} certificates in {seconds:.2f} s: {rate:,.0f} certificates/s; "
      f"reference: openssl {algorithm} {per_core:,.0f} signs/s per core x {cores} cores = {reference:,.0f}/s; "
      f"ratio {rate / reference:.2f} (target >= 0.5)")
PY
done
invariants_hold
