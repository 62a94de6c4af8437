#!/usr/bin/env bash
# Every benchmark at its small size (SMALL=1, see benches/lib.sh): seconds each, on the
# debug build the tests use, with its invariant checks. What CI runs, so that a schema
# change that breaks a data generator, a script that no longer runs or a broken invariant
# fails the build rather than waiting for the next full-size measurement. The figures
# printed mean nothing at this size.
#
#   benches/small.sh               # all of them
#   benches/small.sh lookup issuance
set -uo pipefail
cd "$(dirname "$0")/.."

BENCHES=("$@")
[ ${#BENCHES[@]} -gt 0 ] || BENCHES=(lookup checkout reconcile issuance card_notifications)

failed=()
for bench in "${BENCHES[@]}"; do
  printf '\n==> benches/%s.sh (small)\n' "$bench"
  started=$SECONDS
  if SMALL=1 bash "benches/$bench.sh"; then
    printf '==> %s: passed in %d s\n' "$bench" $((SECONDS - started))
  else
    printf '==> %s: FAILED after %d s\n' "$bench" $((SECONDS - started))
    failed+=("$bench")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  printf '\nsmall benchmarks failed: %s\n' "${failed[*]}"
  exit 1
fi
printf '\nall small benchmarks passed\n'
