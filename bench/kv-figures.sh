#!/usr/bin/env bash
# Measures the KV figures of issue 4 besides perf-kv's throughput ratio, with
# the real binary and its default Raft timings: three servers on
# 127.0.0.51-53 with their data dirs on this machine's disk.
#   sequential single-client PUT latency against the leader
#   (meridian-bench kv-put -c 1, 100-byte values, unique keys);
#   PUTs per second against the leader as writers grow from 1 to 128
#   (wrk with ../shared/bench/kvput.lua), once: shared fsyncs make it grow;
#   ?stale GETs per second of one key on a follower at 16 clients
#   (wrk -t2 -c16), and in the same runs those of the cheapest Go HTTP
#   server answering the same bytes (../shared/bench/ref on 127.0.0.54),
#   since the absolute figure moves with the machine's load.
# ../shared/bench/perf-kv gives the throughput at 32 clients against the disk.
# Usage, from the repository root: bench/kv-figures.sh [runs] (default 3;
# SECS=5 per run). Prints each run and the medians. Needs curl and wrk.
set -u
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
RUNS=${1:-3}
SECS=${SECS:-5}
BIN=/tmp/meridian-kv-figures
go build -o "$BIN" ./cmd/meridian || exit 1
go build -o "$BIN-bench" ./cmd/meridian-bench || exit 1
(cd ../shared/bench/ref && go build -o "$BIN-ref" .) || exit 1
WORK=$(mktemp -d /tmp/meridian-kv-figures.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

for i in 1 2 3; do
  "$BIN" agent -server -bootstrap-expect 3 -node kv$i -bind 127.0.0.5$i -client 127.0.0.5$i -data-dir "$WORK/s$i" \
    -retry-join 127.0.0.51 -retry-join 127.0.0.52 -retry-join 127.0.0.53 -retry-interval 1s >"$WORK/s$i.log" 2>&1 &
  PIDS+=($!)
done
t0=$SECONDS
until [[ $(curl -s -m 1 http://127.0.0.51:8500/v1/status/leader) == \"*:*\" ]]; do
  (( SECONDS - t0 > 40 )) && { echo "no leader within 40 s"; exit 1; }; sleep 0.2
done
leader=$(curl -s http://127.0.0.51:8500/v1/status/leader | tr -d '"' | cut -d: -f1)
follower=127.0.0.51; [ "$leader" = 127.0.0.51 ] && follower=127.0.0.52
echo "leader $leader, follower $follower"
curl -s -X PUT -d "$(head -c 100 /dev/zero | tr '\0' x)" "http://$leader:8500/v1/kv/bench/k" >/dev/null
until curl -sf "http://$follower:8500/v1/kv/bench/k?stale" >"$WORK/body.json"; do sleep 0.1; done
"$BIN-ref" -http 127.0.0.54:8500 -body "$WORK/body.json" >"$WORK/ref.log" 2>&1 &
PIDS+=($!)
until curl -sf http://127.0.0.54:8500/ >/dev/null; do sleep 0.1; done

result() { awk -v f="$1" '/^RESULT/ {for (i = 1; i <= NF; i++) if (index($i, f "=") == 1) print substr($i, length(f) + 2)}'; }
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
gets() { wrk -t2 -c16 -d"${SECS}s" "$1" 2>/dev/null | awk '/Requests\/sec/ {print int($2)}'; }
P=(); G=(); R=()
for run in $(seq "$RUNS"); do
  p=$("$BIN-bench" kv-put -addr "$leader:8500" -c 1 -duration "${SECS}s" -prefix "seq$run/" 2>&1 | result p50_ms)
  g=$(gets "http://$follower:8500/v1/kv/bench/k?stale")
  r=$(gets "http://127.0.0.54:8500/v1/kv/bench/k?stale")
  echo "run $run: sequential PUT p50 $p ms; stale GET on a follower at 16 clients $g /s, reference $r /s"
  P+=("$p"); G+=("$g"); R+=("$r")
done
for c in 1 8 32 128; do
  echo "PUTs at $c connections: $(wrk -t$(( c < 2 ? 1 : 2 )) -c$c -d"${SECS}s" -s ../shared/bench/kvput.lua "http://$leader:8500" 2>/dev/null | awk '/Requests\/sec/ {print int($2)}') /s"
done
echo "medians: sequential PUT p50 $(med "${P[@]}") ms (Consul 2.8 ms)"
echo "stale GET $(med "${G[@]}") /s vs reference $(med "${R[@]}") /s: ratio $(awk -v a="$(med "${G[@]}")" -v b="$(med "${R[@]}")" 'BEGIN {printf "%.2f", a/b}') (goal 1.5 x Consul's 27,000 = 40,500 /s on the day Consul was measured)"
