#!/usr/bin/env bash
# Issue 12's flake hunt: every test COUNT times in a row (default 10) under
# the race detector, with CPU burners beside it (BURNERS busy loops, default
# twice the cores), the way a busy CI host loads a machine. Packages run one
# after another, each its own `go test -race -count=COUNT -v`, and each
# result is recorded as it ends, so an interrupted run resumes where it
# stopped. At the end it prints one line per package: its status, how many
# runs of its top-level tests passed, failed and were skipped, the time, and
# the tests that failed with how often.
#
# Usage, from the repository root:
#   bench/race-under-load.sh [-count N] [-resume] [packages...]   (default 10 ./...)
#   bench/race-under-load.sh -count 10 ./dns ./internal/wait
#   BURNERS=8 bench/race-under-load.sh -count 3 ./server/ ./agent/
#   bench/race-under-load.sh -resume ./...    # after an interrupt: skips the packages already passed
#   RUN='Leader|Restart|Partition' bench/race-under-load.sh -count 3 ./server/
# A bare number as the first argument is the count, as before.
#
# Environment: BURNERS (busy loops beside the tests), TIMEOUT (go test
# -timeout per package, default 60m), RUN (go test -run, to look at some
# tests of a package; default all), STATE (the results file, default one
# per commit and count under $TMPDIR), LOGDIR (each package's full log,
# default beside STATE).
#
# The whole repository 10 times takes hours on two cores; give it packages
# to look at one part.
set -u

COUNT=10
RESUME=0
PKGS=()
while (( $# )); do
  case $1 in
    -count) COUNT=${2:?-count needs a number}; shift 2 ;;
    -count=*) COUNT=${1#-count=}; shift ;;
    -resume) RESUME=1; shift ;;
    -h|-help|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "race-under-load: unknown flag $1 (want -count N, -resume, packages)" >&2; exit 2 ;;
    *)
      if (( ${#PKGS[@]} == 0 )) && [[ $1 =~ ^[0-9]+$ ]] && [[ ! -d $1 ]]; then
        COUNT=$1
      else
        PKGS+=("$1")
      fi
      shift ;;
  esac
done
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || { echo "race-under-load: count $COUNT is not a positive number" >&2; exit 2; }
(( ${#PKGS[@]} )) || PKGS=(./...)
BURNERS=${BURNERS:-$(( 2 * $(nproc) ))}
TIMEOUT=${TIMEOUT:-60m}
RUN=${RUN:-}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo nocommit)
STATE=${STATE:-${TMPDIR:-/tmp}/meridian-race-under-load-$commit-c$COUNT.tsv}
LOGDIR=${LOGDIR:-${STATE%.tsv}.logs}

# Packages with tests, in go list's order.
mapfile -t LIST < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' "${PKGS[@]}")
(( ${#LIST[@]} )) || { echo "race-under-load: no package with tests in ${PKGS[*]}" >&2; exit 2; }

mkdir -p "$LOGDIR"
if (( ! RESUME )); then
  : >"$STATE"
fi
touch "$STATE"

BURN=()
stop_burners() { for p in "${BURN[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null; done; wait 2>/dev/null; BURN=(); }
trap stop_burners EXIT
trap 'echo; echo "interrupted: the packages that ended are in $STATE; run again with -resume to go on"; exit 130' INT TERM

# done_ok tells whether pkg passed in an earlier run recorded in STATE.
done_ok() { awk -F'\t' -v p="$1" '$1 == p && $2 == "ok" { found = 1 } END { exit !found }' "$STATE"; }

todo=()
for p in "${LIST[@]}"; do
  if (( RESUME )) && done_ok "$p"; then continue; fi
  todo+=("$p")
done

echo "go test -race -count=$COUNT${RUN:+ -run '$RUN'}, ${#todo[@]} of ${#LIST[@]} packages to run (commit $commit), beside $BURNERS CPU burners on $(nproc) cores"
echo "results: $STATE; logs: $LOGDIR"
start=$SECONDS
if (( ${#todo[@]} )); then
  for _ in $(seq "$BURNERS"); do
    ( while :; do :; done ) & BURN+=($!)
  done
fi
for p in "${todo[@]}"; do
  log=$LOGDIR/$(echo "$p" | tr '/' '_').log
  t0=$SECONDS
  printf '%s ... ' "$p"
  go test -race -count="$COUNT" -timeout "$TIMEOUT" ${RUN:+-run "$RUN"} -v "$p" >"$log" 2>&1
  rc=$?
  secs=$(( SECONDS - t0 ))
  # Top-level test results only: subtests are indented.
  pass=$(grep -cE '^--- PASS: ' "$log")
  fail=$(grep -cE '^--- FAIL: ' "$log")
  skip=$(grep -cE '^--- SKIP: ' "$log")
  failed=$(grep -E '^\s*--- FAIL: ' "$log" | sed -E 's/^\s*--- FAIL: (\S+).*/\1/' | sort | uniq -c | sort -rn | awk '{printf "%s%s(%d)", sep, $2, $1; sep=" "}')
  if (( rc == 0 )); then status=ok
  elif grep -q '^panic: test timed out' "$log"; then status=timeout
  elif grep -qE '^(panic:|fatal error:)' "$log"; then status=panic
  elif grep -qE '^WARNING: DATA RACE' "$log"; then status=race
  elif grep -qE '\[(build failed|setup failed)\]' "$log"; then status=build
  else status=FAIL
  fi
  # A later result for the same package replaces an earlier one.
  awk -F'\t' -v p="$p" '$1 != p' "$STATE" >"$STATE.tmp" && mv "$STATE.tmp" "$STATE"
  printf '%s\t%s\t%d\t%d\t%d\t%d\t%s\n' "$p" "$status" "$pass" "$fail" "$skip" "$secs" "$failed" >>"$STATE"
  echo "$status (${secs}s)"
done
stop_burners

echo
printf '%-48s %-8s %5s %7s %6s %7s %7s  %s\n' package status tests passed failed skipped seconds "failed tests (failed runs)"
bad=0
for p in "${LIST[@]}"; do
  line=$(awk -F'\t' -v p="$p" '$1 == p' "$STATE")
  if [[ -z $line ]]; then
    printf '%-48s %-8s\n' "$p" "not run"
    bad=1
    continue
  fi
  IFS=$'\t' read -r _ status pass fail skip secs failed <<<"$line"
  [[ $status == ok ]] || bad=1
  printf '%-48s %-8s %5s %7s %6s %7s %7s  %s\n' "$p" "$status" $(( (pass + fail + skip) / COUNT )) "$pass" "$fail" "$skip" "$secs" "${failed:-}"
done
echo "tests: top-level tests; passed, failed, skipped: their runs (each test $COUNT times); this run took $(( SECONDS - start ))s"
exit "$bad"
