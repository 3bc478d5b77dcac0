#!/usr/bin/env bash
# The streaming figure of issue 18: what N watchers of one service on ONE
# client agent cost the servers, with use_streaming_backend on (the agent
# answers them from one view kept by one subscription) and off (it relays
# blocking queries, coalesced). A real datacenter: three servers on
# 127.0.0.11-13 (Raft on disk) and one client on 127.0.0.21, default ports.
# For each backend and each N of STREAM_NS it parks N blocking queries on
# the client (meridian-bench herd), flips the service's check HERD_ROUNDS
# times and reports, per flip, the servers' CPU seconds over the 3s after
# it (the three summed; the same window for every N, since idle servers
# spend some CPU too), the time until the last watcher had its answer, and
# the RPCs the servers answered and the events they sent (from their
# metrics); then one table, with the CPU ratio of the largest N to the
# smallest.
# Usage, from the repository root: bench/stream.sh
# Env: STREAM_NS (default "10 10000"), HERD_ROUNDS (5), BACKENDS ("on off").
set -u
STREAM_NS=${STREAM_NS:-10 10000}
HERD_ROUNDS=${HERD_ROUNDS:-5}
BACKENDS=${BACKENDS:-on off}
BIN=/tmp/meridian-stream
BENCH=/tmp/meridian-stream-bench
go build -o "$BIN" ./cmd/meridian || exit 1
go build -o "$BENCH" ./cmd/meridian-bench || exit 1
WORK=$(mktemp -d /tmp/meridian-stream.XXXXXX)
PIDS=()
stop_all() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; wait 2>/dev/null; PIDS=(); }
trap 'stop_all; rm -rf "$WORK"' EXIT

start_agent() { # name ip server(0/1) config-file
  local name=$1 ip=$2 srv=$3 args=()
  if [ "$srv" = 1 ]; then args=(-server -bootstrap-expect 3); fi
  "$BIN" agent -node "$name" -bind "$ip" -client "$ip" -data-dir "$WORK/$name" -config-file "$4" \
    -retry-join 127.0.0.11 -retry-join 127.0.0.12 -retry-join 127.0.0.13 -retry-interval 1s \
    "${args[@]}" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
}
leader_of() { curl -s -m 2 "http://$1:8500/v1/status/leader" 2>/dev/null | tr -d '"'; }

declare -A FIG
for backend in $BACKENDS; do
  stop_all
  rm -rf "$WORK"/s? "$WORK"/c?
  streaming=true; [ "$backend" = off ] && streaming=false
  cat >"$WORK/$backend.json" <<EOF
{"enable_debug": true, "limits": {"http_max_conns_per_client": 0}, "use_streaming_backend": $streaming}
EOF
  start_agent s1 127.0.0.11 1 "$WORK/$backend.json"; start_agent s2 127.0.0.12 1 "$WORK/$backend.json"
  start_agent s3 127.0.0.13 1 "$WORK/$backend.json"; start_agent c1 127.0.0.21 0 "$WORK/$backend.json"
  for ip in 127.0.0.11 127.0.0.12 127.0.0.13 127.0.0.21; do until [ -n "$(leader_of $ip)" ]; do sleep 0.2; done; done
  LEADER=$(leader_of 127.0.0.11); LEADER=${LEADER%:*}
  sleep 3 # the leader's first reconcile
  expect=(); [ "$backend" = on ] && expect=(-backend streaming)
  for n in $STREAM_NS; do
    echo "== streaming $backend, N=$n on one client; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    "$BENCH" herd -addrs 127.0.0.21:8500 -write-addr "$LEADER:8500" -n "$n" -rounds "$HERD_ROUNDS" -timeout 120s \
      "${expect[@]}" -cpu-window 3s \
      -servers 127.0.0.11:8500,127.0.0.12:8500,127.0.0.13:8500 -pids "$PID_s1,$PID_s2,$PID_s3" >"$WORK/herd.out" 2>&1
    grep '^herd round' "$WORK/herd.out" | sed 's/^/   /'
    grep -q 'errors=0' "$WORK/herd.out" || tail -3 "$WORK/herd.out"
    FIG[$backend,$n,cpu]=$(grep '^herd round' "$WORK/herd.out" | awk '
      { t = 0; s = $0; while (match(s, /_cpu_s=[0-9.]+/)) { v = substr(s, RSTART + 7, RLENGTH - 7); t += v; s = substr(s, RSTART + RLENGTH) } sum += t; k++ }
      END { if (k) printf "%.3f", sum/k }')
    FIG[$backend,$n,last]=$(grep '^herd round' "$WORK/herd.out" | sed -n 's/.*last_ms=\([^ ]*\).*/\1/p' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    FIG[$backend,$n,events]=$(grep '^herd round' "$WORK/herd.out" | sed -n 's/.*server_events=\([0-9]*\).*/\1/p' | awk '{s += $1; k++} END {if (k) printf "%.1f", s/k}')
    FIG[$backend,$n,calls]=$(grep '^herd round' "$WORK/herd.out" | sed -n 's/.*server_rpcs=\([0-9]*\).*/\1/p' | awk '{s += $1; k++} END {if (k) printf "%.1f", s/k}')
  done
done
stop_all

set -- $STREAM_NS
first=$1; last=${!#}
printf '\n%-14s %-8s %20s %14s %22s %16s\n' "streaming" "N" "server CPU s/flip" "last ms" "events sent/flip" "server RPCs/flip"
for backend in $BACKENDS; do
  for n in $STREAM_NS; do
    printf '%-14s %-8s %20s %14s %22s %16s\n' "$backend" "$n" "${FIG[$backend,$n,cpu]}" "${FIG[$backend,$n,last]}" "${FIG[$backend,$n,events]}" "${FIG[$backend,$n,calls]}"
  done
  awk -v a="${FIG[$backend,$first,cpu]}" -v b="${FIG[$backend,$last,cpu]}" -v be="$backend" -v f="$first" -v l="$last" \
    'BEGIN { if (a > 0) printf "%-14s CPU ratio N=%s/N=%s: %.2f\n", be, l, f, b/a }'
done
