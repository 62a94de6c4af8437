#!/usr/bin/env bash
# API contract test: schemathesis (from PyPI) against the real `rinnovo serve --demo` and
# the document it serves at /api/openapi.json, once per role (anonymous, customer,
# registration officer, back-office, desktop agent). Fails on any 5xx and on any response
# that does not conform to the document (status, content type, headers, body schema).
# Installs what it needs, so CI can run it on a clean clone; extra arguments go to each
# `schemathesis run` (e.g. --include-path-regex /agent/ or -n 5).
#
# With TEST_DATABASE_URL=postgres://... the server gets a fresh database on that server.
# Reports (JUnit, and the server log) land in target/contract/.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="target/contract-venv"
source tests/support/venv.sh
python_venv "$VENV" tests/contract/requirements.txt

cargo build --locked --bin rinnovo

export PYTHONDONTWRITEBYTECODE=1
exec "$VENV/bin/python" tests/contract/contract.py "$@"
