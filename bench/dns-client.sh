#!/usr/bin/env bash
# Issue 5's client-agent figure: dnsperf A queries for web.service.consul (4
# passing instances) against a CLIENT agent (which answers from its local
# view, no RPC per query), divided by the same run against the bare
# reference server of ../shared/bench/ref. Three alternating runs, medians.
# Usage from the repository root: bench/dns-client.sh   (PERF_S=8 seconds a run)
# Needs dnsperf and dig (apt-get install -y dnsperf dnsutils).
set -u
BIN=/tmp/meridian-dnsclient
go build -o "$BIN" ./cmd/meridian || exit 1
(cd ../shared/bench/ref && go build -o /tmp/bench-ref .) || exit 1
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; cp "$WORK"/*.log /tmp/ 2>/dev/null; rm -rf "$WORK"' EXIT
"$BIN" agent -dev -node srv -bind 127.0.0.86 -client 127.0.0.86 >"$WORK/srv.log" 2>&1 & PIDS+=($!)
"$BIN" agent -node cli -bind 127.0.0.87 -client 127.0.0.87 -data-dir "$WORK/cli" -retry-join 127.0.0.86 -retry-interval 200ms >"$WORK/cli.log" 2>&1 & PIDS+=($!)
/tmp/bench-ref -dns 127.0.0.88:8600 >/dev/null 2>&1 & PIDS+=($!)
until curl -s -m1 http://127.0.0.87:8500/v1/status/leader | grep -q :; do sleep 0.2; done
for i in 1 2 3 4; do
  curl -s -X PUT -d "{\"ID\":\"web-$i\",\"Name\":\"web\",\"Address\":\"127.0.1.$i\",\"Port\":80}" http://127.0.0.86:8500/v1/agent/service/register >/dev/null
done
until [ "$(dig +short @127.0.0.87 -p 8600 web.service.consul A | wc -l)" = 4 ]; do sleep 0.2; done
echo "web.service.consul A" >"$WORK/q"
qps() { dnsperf -e -s "$1" -p 8600 -d "$WORK/q" -c 64 -q 64 -l "${PERF_S:-8}" 2>/dev/null | awk '/Queries per second/ {print int($4)}'; }
a=(); r=()
for i in 1 2 3; do a+=($(qps 127.0.0.87)); r+=($(qps 127.0.0.88)); done
med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
ma=$(med "${a[@]}"); mr=$(med "${r[@]}")
echo "DNS qps client agent ${ma} vs reference ${mr} (runs: ${a[*]} / ${r[*]}): ratio $(awk -v a="$ma" -v r="$mr" 'BEGIN {printf "%.2f", a/r}') (goal >= 0.85)"
