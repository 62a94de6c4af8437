#!/usr/bin/env bash
# Browser end-to-end tests: the real `rinnovo serve --demo` binary, a local SMTP sink and
# Debian's Chromium driven by Playwright (Python). Installs everything it needs, so CI can
# run it on a clean clone; extra arguments go to pytest (e.g. -k prepaid).
#
# Screenshots land in target/browser-screenshots/ (CI keeps target/ as artefacts).
# With TEST_DATABASE_URL=postgres://... each server gets a fresh database on that server.
set -euo pipefail
cd "$(dirname "$0")/../.."

CHROMIUM="${RINNOVO_BROWSER_CHROMIUM:-/usr/bin/chromium}"
VENV="target/browser-venv"

if [[ ! -x "$CHROMIUM" ]]; then
  echo "installing chromium (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

source tests/support/venv.sh
python_venv "$VENV" tests/browser/requirements.txt

cargo build --locked --bin rinnovo

# Only this run's pictures (and server logs), so CI's artefacts cannot mislead.
rm -rf target/browser-screenshots
mkdir -p target/browser-screenshots
# Playwright must never fetch a browser of its own: the tests launch $CHROMIUM.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export RINNOVO_BROWSER_CHROMIUM="$CHROMIUM"
# Leave the work tree as it was: no .pytest_cache, no __pycache__.
export PYTHONDONTWRITEBYTECODE=1
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/browser "$@"
