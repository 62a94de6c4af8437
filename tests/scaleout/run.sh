#!/usr/bin/env bash
# Scale-out test: three `rinnovo serve` and two `rinnovo worker` processes on one fresh
# PostgreSQL database, driven through all of them (sign-ups, prepaid checkouts retried
# across processes, transfer orders, one statement imported twice on two servers, six
# devices renewed through the agent API with each step on another server); then every
# invariant of DESIGN.md is checked in the database, every email must have reached the
# SMTP sink once, every renewal must be issued once, every fulfilled order must have one
# invoice whose file reached the PEC sink (the SdI's channel) exactly once. Installs what
# it needs (aiosmtpd in a venv), so CI can run it on a clean clone.
set -euo pipefail
cd "$(dirname "$0")/../.."

PG_SERVER="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
VENV="target/scaleout-venv"

pg_isready -q -h 127.0.0.1 || { pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start; sleep 2; }
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check aiosmtpd==1.4.6
fi
cargo build --locked --bin rinnovo
PYTHONDONTWRITEBYTECODE=1 exec "$VENV/bin/python" tests/scaleout/scaleout.py --binary target/debug/rinnovo --pg "$PG_SERVER"
