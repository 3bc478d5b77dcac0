#!/usr/bin/env bash
# Measures the failover figures of issue 7 with the real binary: two DCs of
# one server each (dc1 on 127.0.0.101, dc2 on 127.0.0.102, WAN-joined), a
# "web" service in both and an "api" service only in dc2; dc1's agent fails
# over to its nearest other DC for any service it has no healthy instance of.
#   DNS qps (dnsperf -c 64) of api.service.consul (failed over to dc2, served
#   from dc1's view of dc2) vs web.service.consul (local);
#   HTTP latency of one client (meridian-bench get -c 1): api?passing
#   (failed over) vs web?passing (local) vs web?dc=dc2 (one forward).
# Usage, from the repository root: bench/failover-figures.sh [runs] (default 3;
# SECS=5 per run). Needs curl, dig and dnsperf (apt-get install dnsutils dnsperf).
set -u
RUNS=${1:-3}
SECS=${SECS:-5}
command -v dnsperf >/dev/null || { echo "dnsperf not installed (apt-get install dnsperf)"; exit 1; }
BIN=/tmp/meridian-failover-figures
go build -o "$BIN" ./cmd/meridian || exit 1
go build -o "$BIN-bench" ./cmd/meridian-bench || exit 1
WORK=$(mktemp -d /tmp/meridian-failover.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

printf 'failover:\n  "*": {nearest: 1}\n' >"$WORK/failover.yaml"
"$BIN" agent -server -bootstrap-expect 1 -datacenter dc1 -node f1 -bind 127.0.0.101 -client 127.0.0.101 \
  -data-dir "$WORK/a1" -config-file "$WORK/failover.yaml" >"$WORK/a1.log" 2>&1 & PIDS+=($!)
"$BIN" agent -server -bootstrap-expect 1 -datacenter dc2 -node f2 -bind 127.0.0.102 -client 127.0.0.102 \
  -data-dir "$WORK/b1" -retry-join-wan 127.0.0.101 -retry-interval-wan 1s >"$WORK/b1.log" 2>&1 & PIDS+=($!)
register() { curl -s -X PUT -d "{\"ID\":\"$2\",\"Name\":\"$2\",\"Address\":\"$3\",\"Port\":80}" "http://$1:8500/v1/agent/service/register" >/dev/null; }
for h in 101 102; do
  t0=$SECONDS
  until [[ $(curl -s -m 1 "http://127.0.0.$h:8500/v1/status/leader") == \"*:*\" ]]; do
    (( SECONDS - t0 > 30 )) && { echo "no leader at 127.0.0.$h"; exit 1; }; sleep 0.2
  done
  register 127.0.0.$h web 127.0.$h.1
done
register 127.0.0.102 api 127.0.102.2
t0=$SECONDS
until [ "$(dig +short @127.0.0.101 -p 8600 api.service.consul A)" = 127.0.102.2 ]; do
  (( SECONDS - t0 > 30 )) && { echo "api.service.consul did not fail over to dc2 within 30 s"; exit 1; }; sleep 0.5
done

qps() { echo "$1" >"$WORK/q"; dnsperf -e -s 127.0.0.101 -p 8600 -d "$WORK/q" -c 64 -q 64 -l "$SECS" 2>/dev/null | awk '/Queries per second/ {print int($4)}'; }
lat() { "$BIN-bench" get -addr 127.0.0.101:8500 -path "$1" -c 1 -duration "${SECS}s" 2>&1 | awk '/^RESULT/ {print $4, $6}'; }
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
L=(); F=()
for run in $(seq "$RUNS"); do L+=($(qps "web.service.consul A")); F+=($(qps "api.service.consul A")); done
echo "DNS: failed-over api.service.consul $(med "${F[@]}") qps vs local web.service.consul $(med "${L[@]}") (runs ${F[*]} / ${L[*]}): ratio $(awk -v a="$(med "${F[@]}")" -v b="$(med "${L[@]}")" 'BEGIN {printf "%.2f", a/b}')"
for run in $(seq "$RUNS"); do
  echo "HTTP run $run: local web?passing: $(lat '/v1/health/service/web?passing')"
  echo "HTTP run $run: forwarded web?dc=dc2&passing: $(lat '/v1/health/service/web?dc=dc2&passing')"
  echo "HTTP run $run: failed-over api?passing: $(lat '/v1/health/service/api?passing')"
done
