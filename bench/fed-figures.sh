#!/usr/bin/env bash
# Measures the cross-datacenter HTTP figures of issue 6 with the real binary:
# two DCs of one server each (dc1 on 127.0.0.101, dc2 on 127.0.0.102,
# WAN-joined, QUIC links, Raft on disk), 4 passing web instances in each.
#   health reads per second through dc1's agent, ?dc=dc2 vs local, for
#   default reads (forwarded to dc2 every time) and ?stale reads (dc2's
#   answer kept in a view on dc1's server), at 32 connections;
#   p50 latency of one connection, ?dc=dc2 vs local (what a forward adds).
# Usage, from the repository root: bench/fed-figures.sh [runs] (default 3;
# SECS=5 seconds per wrk run). Needs curl and wrk (apt-get install wrk).
# The DNS figure is ../shared/bench/perf-fed.
set -u
RUNS=${1:-3}
SECS=${SECS:-5}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
BIN=/tmp/meridian-fed-figures
go build -o "$BIN" ./cmd/meridian || exit 1
WORK=$(mktemp -d /tmp/meridian-fed.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

"$BIN" agent -server -bootstrap-expect 1 -datacenter dc1 -node f1 -bind 127.0.0.101 -client 127.0.0.101 \
  -data-dir "$WORK/a1" >"$WORK/a1.log" 2>&1 & PIDS+=($!)
"$BIN" agent -server -bootstrap-expect 1 -datacenter dc2 -node f2 -bind 127.0.0.102 -client 127.0.0.102 \
  -data-dir "$WORK/b1" -retry-join-wan 127.0.0.101 -retry-interval-wan 1s >"$WORK/b1.log" 2>&1 & PIDS+=($!)
for h in 101 102; do
  t0=$SECONDS
  until [[ $(curl -s -m 1 "http://127.0.0.$h:8500/v1/status/leader") == \"*:*\" ]]; do
    (( SECONDS - t0 > 30 )) && { echo "no leader at 127.0.0.$h"; exit 1; }; sleep 0.2
  done
  for i in 1 2 3 4; do
    curl -s -X PUT -d "{\"ID\":\"web-$i\",\"Name\":\"web\",\"Address\":\"127.0.$h.$i\",\"Port\":80}" \
      "http://127.0.0.$h:8500/v1/agent/service/register" >/dev/null
  done
done
base=http://127.0.0.101:8500/v1/health/service/web?passing
t0=$SECONDS
until [ "$(curl -s "$base&dc=dc2" | grep -o '"ServiceName"' | wc -l)" = 4 ]; do
  (( SECONDS - t0 > 30 )) && { echo "dc2's web not readable from dc1"; exit 1; }; sleep 0.5
done

rps() { wrk -t2 -c32 -d"${SECS}s" "$1" | awk '/Requests\/sec/ {print int($2)}'; }
p50() { wrk -t1 -c1 -d"${SECS}s" --latency "$1" | awk '/^ +50%/ {print $2}'; }
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { case $1 in *us) echo "${1%us}" | awk '{print $1/1000}';; *ms) echo "${1%ms}";; *s) echo "${1%s}" | awk '{print $1*1000}';; esac; }

L=(); R=(); LS=(); RS=(); PL=(); PR=()
for run in $(seq "$RUNS"); do
  L+=($(rps "$base")); R+=($(rps "$base&dc=dc2"))
  LS+=($(rps "$base&stale")); RS+=($(rps "$base&stale&dc=dc2"))
  PL+=($(ms "$(p50 "$base")")); PR+=($(ms "$(p50 "$base&dc=dc2")"))
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
echo "default reads: ?dc=dc2 $(med "${R[@]}") req/s vs local $(med "${L[@]}") (runs ${R[*]} / ${L[*]}): ratio $(ratio "$(med "${R[@]}")" "$(med "${L[@]}")")"
echo "stale reads:   ?dc=dc2 $(med "${RS[@]}") req/s vs local $(med "${LS[@]}") (runs ${RS[*]} / ${LS[*]}): ratio $(ratio "$(med "${RS[@]}")" "$(med "${LS[@]}")")"
echo "p50 one connection: ?dc=dc2 $(med "${PR[@]}") ms vs local $(med "${PL[@]}") ms (runs ${PR[*]} / ${PL[*]})"
