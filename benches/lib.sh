# What the benchmarks share; each `benches/*.sh` sources it first.
#
# Two sizes. By default a benchmark runs at full size on the release build: the figures
# of the README's Performance section. With SMALL=1 it runs in seconds on the debug
# binary the tests already build, and its data generator in the dev profile, so that CI
# (`benches/small.sh`) can run every benchmark on each change: the figures mean nothing
# then, but a schema change that breaks a generator, a script that no longer runs or an
# invariant that breaks fails the run. Every variable a script reads can still be set by
# hand in either size.
#
# Cleanup on exit: the processes a script started (`bench_track PID`) are stopped, and
# the databases it made (`bench_database NAME`) dropped, whatever the outcome.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PG_SERVER="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
# Drops of databases that are not there are not worth a NOTICE.
export PGOPTIONS="${PGOPTIONS:--c client_min_messages=warning}"
PGBENCH="${PGBENCH:-$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)}"

say() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

bench_small() { [ -n "${SMALL:-}" ] && [ "${SMALL}" != 0 ]; }

# sized NAME FULL SMALL: NAME keeps its value if set, else takes the value of the size.
sized() {
  local name=$1 full=$2 small=$3
  if [ -z "${!name:-}" ]; then
    if bench_small; then printf -v "$name" '%s' "$small"; else printf -v "$name" '%s' "$full"; fi
  fi
}

BENCH_PIDS=()
BENCH_DATABASES=()
bench_track() { BENCH_PIDS+=("$1"); }
bench_cleanup() {
  local pid db
  for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BENCH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for db in "${BENCH_DATABASES[@]}"; do
    psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
  done
}
trap bench_cleanup EXIT

# bench_database NAME [TEMPLATE]: a new empty database (or a copy of TEMPLATE), dropped
# at exit.
bench_database() {
  BENCH_DATABASES+=("$1")
  psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" \
    -c "CREATE DATABASE $1${2:+ TEMPLATE $2}"
}

# A database kept between full-size runs to save its slow preparation (see reconcile.sh
# and issuance.sh); in the small size it is made afresh and dropped at exit.
bench_template_is_missing() {
  if bench_small; then
    BENCH_DATABASES+=("$1")
    return 0
  fi
  [ -n "${REBUILD:-}" ] ||
    [ "$(psql -Atq "$PG_SERVER/postgres" -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 0 ]
}

need_postgres() {
  pg_isready -q -h 127.0.0.1 && return
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && return; sleep 1; done
  fail "PostgreSQL is not up"
}

need_wrk() {
  command -v wrk >/dev/null && return
  say "installing wrk"
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
}

# An SMTP server that accepts everything: aiosmtpd in a virtual environment of its own
# (the system Python may refuse packages). Sets SMTP_PYTHON.
need_smtp_sink() {
  local venv=target/bench-venv
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    say "installing aiosmtpd"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check aiosmtpd==1.4.6
  fi
  SMTP_PYTHON="$venv/bin/python"
}

# start_smtp_sink PORT LOG
start_smtp_sink() {
  need_smtp_sink
  "$SMTP_PYTHON" -m aiosmtpd -n -l "127.0.0.1:$1" -c aiosmtpd.handlers.Sink > "$2" 2>&1 &
  bench_track $!
}

# build_rinnovo [GENERATOR...]: builds the service binary (BIN) and the named data
# generators (`[[bench]]` targets with `harness = false`, run as plain programs):
# release for the full size, the dev profile for the small one. Sets BIN, and one
# variable per generator, named in capitals (lookup_data: LOOKUP_DATA).
build_rinnovo() {
  local profile_flag=(--release) cargo_cmd=bench dir=release generator out path
  if bench_small; then
    profile_flag=()
    cargo_cmd=test
    dir=debug
  fi
  say "building ($dir)"
  cargo build --locked --quiet "${profile_flag[@]}" --bin rinnovo
  BIN="target/$dir/rinnovo"
  for generator in "$@"; do
    # Cargo names the executable it built ("Executable benches/x.rs (target/.../x-hash)").
    out=$(cargo "$cargo_cmd" --locked --no-run --bench "$generator" 2>&1) ||
      { echo "$out" >&2; fail "cannot build the generator $generator"; }
    path=$(echo "$out" | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n1)
    [ -x "$path" ] || { echo "$out" >&2; fail "no executable for the generator $generator"; }
    printf -v "${generator^^}" '%s' "$path"
  done
}

# pgbench_reference DATABASE CLIENTS THREADS SECONDS [pgbench options...]: sets TPS to
# the TPS of pgbench (TPC-B-like by default, `-S` for select-only) on the same server,
# the reference a benchmark's figure is divided by. The small size uses scale 1.
pgbench_reference() {
  local db=$1 clients=$2 threads=$3 seconds=$4 out scale
  shift 4
  scale=$(bench_small && echo 1 || echo 10)
  bench_database "$db" >/dev/null
  "$PGBENCH" -q -i -s "$scale" "$PG_SERVER/$db" >/dev/null 2>&1 || fail "pgbench -i"
  out=$("$PGBENCH" "$@" -c "$clients" -j "$threads" -T "$seconds" "$PG_SERVER/$db" 2>&1) ||
    { echo "$out" >&2; fail "pgbench"; }
  echo "$out" >&2
  TPS=$(echo "$out" | awk '/^tps/ {print $3; exit}')
}

# start_serve PORT LOG: `rinnovo serve` with the environment as exported, workers on as
# in production unless the caller said otherwise; waits until it is ready. Sets
# SERVER_PID.
start_serve() {
  local port=$1 log=$2
  RINNOVO_BIND="127.0.0.1:$port" "$BIN" serve > "$log" 2>&1 &
  SERVER_PID=$!
  bench_track "$SERVER_PID"
  for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && return
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  cat "$log" >&2
  fail "rinnovo serve did not become ready on port $port"
}

stop_serve() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# add_user BRAND EMAIL NAME ROLE: a confirmed user with the benchmarks' password.
BENCH_PASSWORD="benchmark password 2026"
add_user() {
  echo "$BENCH_PASSWORD" | "$BIN" user add --brand "$1" --email "$2" --name "$3" --role "$4" >/dev/null
}

# login BASE BRAND EMAIL: an access token.
login() {
  curl -sf "$1/auth/login" -H 'content-type: application/json' \
    -d "{\"brand\":\"$2\",\"email\":\"$3\",\"password\":\"$BENCH_PASSWORD\"}" | json '["access_token"]'
}

# check WHAT CONDITION...: prints the invariant and whether it holds; records a failure
# so that `invariants_hold` (the script's last command) exits non-zero.
BENCH_BROKEN=0
check() {
  local what=$1
  shift
  if "$@"; then
    echo "invariant holds: $what"
  else
    echo "INVARIANT BROKEN: $what"
    BENCH_BROKEN=$((BENCH_BROKEN + 1))
  fi
}
invariants_hold() {
  [ "$BENCH_BROKEN" = 0 ] || fail "$BENCH_BROKEN invariant(s) broken"
}

# wrk_figures OUTPUT: "req/s p50 p99 non-2xx" from wrk's output.
wrk_figures() {
  local rps p50 p99 bad
  rps=$(echo "$1" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$1" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$1" | awk '$1 == "99%" {print $2}')
  bad=$(echo "$1" | awk '/Non-2xx/ {print $5}')
  echo "$rps $p50 $p99 ${bad:-0}"
}
