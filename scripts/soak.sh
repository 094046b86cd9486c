#!/usr/bin/env bash
# The chaos soak (tests/soak.rs) on its own, for as long as asked:
#   scripts/soak.sh --minutes N      (N >= 2; default 2)
# Loopback only: the simulator, Mosquitto, VictoriaMetrics and two daemons
# run on ephemeral ports in temporary directories, all removed when it ends,
# however it ends. The last line is the tally:
#   soak: faults=F lost=L duplicates=D ledger_diff_wh=W
# and the exit status is non-zero unless nothing was lost and the ledger is
# within one counter step of the clean run's.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=2
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="${2:?--minutes needs a number}"; shift 2 ;;
    --minutes=*) minutes="${1#*=}"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (use --minutes N)" >&2; exit 2 ;;
  esac
done
case "$minutes" in
  ''|*[!0-9]*) echo "soak.sh: --minutes takes a whole number, not '$minutes'" >&2; exit 2 ;;
esac
if [ "$minutes" -lt 2 ]; then
  echo "soak.sh: --minutes must be at least 2" >&2
  exit 2
fi

log=$(mktemp -t bessmon-soak.XXXXXX)
trap 'rm -f "$log"' EXIT
# The test's own deadline is the soak plus its drain; this bounds a hang.
limit=$(( minutes * 60 + 600 ))
set +e
SOAK_MINUTES="$minutes" timeout --kill-after=30 "$limit" \
  cargo test --release --locked --test soak -- --nocapture --test-threads=1 >"$log" 2>&1
status=$?
set -e
grep -E '^soak: [0-9]+ min' "$log" || true
if [ "$status" -ne 0 ]; then
  grep -E 'panicked|assertion|left:|right:' "$log" | head -20 >&2 || true
fi
line=$(grep -E '^soak: faults=' "$log" | tail -1)
if [ -z "$line" ]; then
  echo "soak.sh: the soak ended (status $status) before its tally; log follows" >&2
  tail -40 "$log" >&2
  echo "soak: faults=0 lost=unknown duplicates=unknown ledger_diff_wh=unknown"
  exit 1
fi
echo "$line"
exit "$status"
