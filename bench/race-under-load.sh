#!/usr/bin/env bash
# Issue 12's flake hunt: every test COUNT times in a row (default 10) under
# the race detector, with CPU burners beside it (BURNERS busy loops, default
# twice the cores), the way a busy CI host loads a machine. Prints each
# package's result, then every failed test with how often it failed.
# Usage, from the repository root:
#   bench/race-under-load.sh [count] [packages...]   (default 10 ./...)
#   BURNERS=8 bench/race-under-load.sh 3 ./server/ ./agent/
# The whole repository 10 times takes hours on two cores; give it packages
# to look at one part.
set -u
COUNT=${1:-10}
shift $(( $# > 0 ? 1 : 0 ))
PKGS=("$@")
(( ${#PKGS[@]} )) || PKGS=(./...)
BURNERS=${BURNERS:-$(( 2 * $(nproc) ))}
LOG=$(mktemp /tmp/meridian-race-under-load.XXXXXX)
BURN=()
cleanup() { for p in "${BURN[@]:-}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
for _ in $(seq "$BURNERS"); do
  ( while :; do :; done ) & BURN+=($!)
done
echo "go test -race -count=$COUNT ${PKGS[*]} beside $BURNERS CPU burners on $(nproc) cores; full log in $LOG"
start=$SECONDS
go test -race -count="$COUNT" -timeout 180m "${PKGS[@]}" >"$LOG" 2>&1
status=$?
cleanup
BURN=()
grep -E '^(ok|FAIL|---|panic:)' "$LOG" | grep -vE '^--- (PASS|SKIP)' | grep -E '^(ok|FAIL)\s' || true
echo "failed tests (count of failed runs):"
grep -E '^\s*--- FAIL: ' "$LOG" | sed -E 's/^\s*--- FAIL: (\S+).*/\1/' | sort | uniq -c | sort -rn || true
grep -q -- '--- FAIL' "$LOG" || echo "  none"
echo "took $(( SECONDS - start ))s, exit $status"
exit "$status"
