#!/usr/bin/env bash
# Measures the cross-datacenter figures of issues 6 and 17 with the real
# binary, one server per DC, Raft on disk, QUIC links. Each mode runs in a
# network namespace of its own (unshare -n, where permitted), so that its
# loopback addresses and ports are not shared with anything else running.
#
#   bench/fed-figures.sh [http] [runs]    (issue 6) two DCs, WAN-joined, 4
#     passing web instances in each: health reads per second through dc1,
#     ?dc=dc2 vs local, default reads (forwarded every time) and ?stale
#     reads (dc2's answer kept in a view on dc1's server), 32 connections;
#     p50 latency of one connection, ?dc=dc2 vs local.
#   bench/fed-figures.sh dns-relay [runs] (issue 17) a hub dc1 and spokes dc2
#     and dc3 with `federation: {links: [dc1]}`, so that dc2 has no link to
#     dc3: dnsperf (64 clients) against dc2's DNS, web.service.dc3.consul
#     (relayed dc2 -> dc1 -> dc3) vs web.service.dc1.consul (direct), both
#     answered from dc2's local view; the two take turns within each run;
#     goal: median ratio >= 0.95.
#   bench/fed-figures.sh rss [sizes]      (issue 17) rings of N DCs (default
#     "10 25 50"), each linked to its two neighbours only
#     (federation.links): once every DC lists every other in
#     /v1/catalog/datacenters, each server's VmRSS (median, max) and the
#     growth per DC between sizes.
# Options: SECS=5 (seconds per wrk/dnsperf run). Needs curl; wrk for http,
# dnsperf and dig for dns-relay. The relayed ?dc= read's latency per hop is
# measured by package federation's TestRelayAddsOneHop (tc netem is not
# available here to delay one hop of the real binary).
set -u
MODE=http
case ${1:-} in
http | dns-relay | rss) MODE=$1; shift ;;
'' | [0-9]*) ;;
*) echo "usage: $0 [http|dns-relay|rss] [runs | sizes]"; exit 2 ;;
esac
SECS=${SECS:-5}
if [ -z "${FED_FIGURES_BIN:-}" ]; then
  export FED_FIGURES_BIN=/tmp/meridian-fed-figures.$$
  go build -o "$FED_FIGURES_BIN" ./cmd/meridian || exit 1
  trap 'rm -f "$FED_FIGURES_BIN"' EXIT
  if unshare -n true 2>/dev/null; then
    unshare -n bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$MODE" "$@"
  else
    "$0" "$MODE" "$@"
  fi
  exit
fi
BIN=$FED_FIGURES_BIN
WORK=$(mktemp -d /tmp/meridian-fed.XXXXXX)
PIDS=()
stop_all() { { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p"; done; wait; } 2>/dev/null; PIDS=(); }
trap 'stop_all; rm -rf "$WORK"' EXIT

# agent NAME DC IP [ARGS...]: starts a one-server DC on IP.
agent() {
  local name=$1 dc=$2 ip=$3; shift 3
  "$BIN" agent -server -bootstrap-expect 1 -datacenter "$dc" -node "$name" -bind "$ip" -client "$ip" \
    -data-dir "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}
wait_leader() {
  local t0=$SECONDS
  until [[ $(curl -s -m 1 "http://$1:8500/v1/status/leader") == \"*:*\" ]]; do
    (( SECONDS - t0 > ${2:-30} )) && { echo "no leader at $1 within ${2:-30}s"; exit 1; }
    sleep 0.2
  done
}
register_web() {
  local ip=$1 i
  for i in 1 2 3 4; do
    curl -s -X PUT -d "{\"ID\":\"web-$i\",\"Name\":\"web\",\"Address\":\"10.0.${ip##*.}.$i\",\"Port\":80}" \
      "http://$ip:8500/v1/agent/service/register" >/dev/null
  done
}
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

http_figures() {
  local RUNS=${1:-3}
  command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
  agent f1 dc1 127.0.0.101
  agent f2 dc2 127.0.0.102 -retry-join-wan 127.0.0.101 -retry-interval-wan 1s
  for h in 101 102; do wait_leader 127.0.0.$h; register_web 127.0.0.$h; done
  local base=http://127.0.0.101:8500/v1/health/service/web?passing t0=$SECONDS
  until [ "$(curl -s "$base&dc=dc2" | grep -o '"ServiceName"' | wc -l)" = 4 ]; do
    (( SECONDS - t0 > 30 )) && { echo "dc2's web not readable from dc1"; exit 1; }; sleep 0.5
  done
  rps() { wrk -t2 -c32 -d"${SECS}s" "$1" | awk '/Requests\/sec/ {print int($2)}'; }
  p50() { wrk -t1 -c1 -d"${SECS}s" --latency "$1" | awk '/^ +50%/ {print $2}'; }
  ms() { case $1 in *us) echo "${1%us}" | awk '{print $1/1000}';; *ms) echo "${1%ms}";; *s) echo "${1%s}" | awk '{print $1*1000}';; esac; }
  local L=() R=() LS=() RS=() PL=() PR=() run
  for run in $(seq "$RUNS"); do
    L+=($(rps "$base")); R+=($(rps "$base&dc=dc2"))
    LS+=($(rps "$base&stale")); RS+=($(rps "$base&stale&dc=dc2"))
    PL+=($(ms "$(p50 "$base")")); PR+=($(ms "$(p50 "$base&dc=dc2")"))
  done
  echo "default reads: ?dc=dc2 $(med "${R[@]}") req/s vs local $(med "${L[@]}") (runs ${R[*]} / ${L[*]}): ratio $(ratio "$(med "${R[@]}")" "$(med "${L[@]}")")"
  echo "stale reads:   ?dc=dc2 $(med "${RS[@]}") req/s vs local $(med "${LS[@]}") (runs ${RS[*]} / ${LS[*]}): ratio $(ratio "$(med "${RS[@]}")" "$(med "${LS[@]}")")"
  echo "p50 one connection: ?dc=dc2 $(med "${PR[@]}") ms vs local $(med "${PL[@]}") ms (runs ${PR[*]} / ${PL[*]})"
  echo "load average at the end: $(load)"
}

dns_relay_figures() {
  local RUNS=${1:-3}
  command -v dnsperf >/dev/null || { echo "dnsperf not installed (apt-get install dnsperf)"; exit 1; }
  printf 'federation:\n  links: [dc1]\n' >"$WORK/spoke.yaml"
  agent f1 dc1 127.0.0.101
  agent f2 dc2 127.0.0.102 -config-file "$WORK/spoke.yaml" -retry-join-wan 127.0.0.101 -retry-interval-wan 1s
  agent f3 dc3 127.0.0.103 -config-file "$WORK/spoke.yaml" -retry-join-wan 127.0.0.101 -retry-interval-wan 1s
  local h dc t0
  for h in 101 102 103; do wait_leader 127.0.0.$h; register_web 127.0.0.$h; done
  for dc in dc1 dc3; do
    t0=$SECONDS
    until [ "$(dig +short @127.0.0.102 -p 8600 web.service.$dc.consul A | wc -l)" = 4 ]; do
      (( SECONDS - t0 > 30 )) && { echo "web.service.$dc.consul did not answer 4 records from dc2 within 30s"; exit 1; }
      sleep 0.5
    done
  done
  # dc2 must reach dc3 through dc1, not directly.
  local route
  route=$(curl -s http://127.0.0.102:8500/v1/operator/federation/routes | tr -d ' \n' | grep -o '"Datacenter":"dc3"[^}]*')
  [[ $route == *'"NextHop":"dc1"'* ]] || { echo "dc2's route to dc3 is not through dc1: $route"; exit 1; }
  echo "dc2's route to dc3: $route"
  qps() { echo "$1" >"$WORK/q"; dnsperf -e -s 127.0.0.102 -p 8600 -d "$WORK/q" -c 64 -q 64 -l "$SECS" 2>/dev/null | awk '/Queries per second/ {print int($4)}'; }
  # Each run measures both, back to back, in turns of order, so that the
  # machine's load drifting between runs moves both alike: the figure is
  # the median of the runs' ratios.
  local D=() X=() Q=() run d x
  for run in $(seq "$RUNS"); do
    if (( run % 2 )); then
      d=$(qps "web.service.dc1.consul A"); x=$(qps "web.service.dc3.consul A")
    else
      x=$(qps "web.service.dc3.consul A"); d=$(qps "web.service.dc1.consul A")
    fi
    D+=("$d"); X+=("$x"); Q+=($(ratio "$x" "$d"))
  done
  echo "relayed DNS (dc2 -> dc1 -> dc3) $(med "${X[@]}") qps vs direct (dc2 -> dc1) $(med "${D[@]}") qps (runs ${X[*]} / ${D[*]}): ratio per run ${Q[*]}, median $(med "${Q[@]}") (goal >= 0.95; load $(load))"
}

rss_figures() {
  local sizes=${*:-10 25 50} n prev_n=0 prev_sum=0
  for n in $sizes; do
    local i ip dc links
    for i in $(seq 0 $((n - 1))); do
      ip=127.0.10.$((i + 1)); dc=$(printf 'dc%02d' $((i + 1)))
      links="[$(printf 'dc%02d' $(((i + n - 1) % n + 1))), $(printf 'dc%02d' $(((i + 1) % n + 1)))]"
      printf 'federation:\n  links: %s\n' "$links" >"$WORK/ring-$n-$i.yaml"
      agent "r$n-$i" "$dc" "$ip" -config-file "$WORK/ring-$n-$i.yaml" \
        -retry-join-wan 127.0.10.$(((i + 1) % n + 1)) -retry-interval-wan 1s
    done
    for i in $(seq 1 "$n"); do wait_leader 127.0.10.$i 120; done
    local t0=$SECONDS want=$n
    for i in $(seq 1 "$n"); do
      until [ "$(curl -s -m 2 http://127.0.10.$i:8500/v1/catalog/datacenters | grep -o '"dc' | wc -l)" = "$want" ]; do
        (( SECONDS - t0 > 120 )) && { echo "$n DCs: 127.0.10.$i does not list $want datacenters within 120s"; exit 1; }
        sleep 0.5
      done
    done
    local converged=$((SECONDS - t0))
    sleep 10 # a few refresh intervals of the route exchange
    local rss=() p sum=0
    for p in "${PIDS[@]}"; do
      rss+=($(awk '/^VmRSS:/ {print int($2/1024)}' /proc/"$p"/status))
    done
    for p in "${rss[@]}"; do sum=$((sum + p)); done
    local max
    max=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
    echo "$n DCs on a ring: all routed ${converged}s after every leader; RSS per server median $(med "${rss[@]}") MB, max $max MB, mean $((sum / n)) MB (load $(load))"
    if (( prev_n > 0 )); then
      awk -v a="$prev_sum" -v an="$prev_n" -v b="$sum" -v bn="$n" \
        'BEGIN {printf "  mean RSS per server grew %.2f MB per added DC from %d to %d DCs\n", (b/bn - a/an)/(bn-an), an, bn}'
    fi
    prev_n=$n; prev_sum=$sum
    stop_all
  done
}

case $MODE in
http) http_figures "$@" ;;
dns-relay) dns_relay_figures "$@" ;;
rss) rss_figures "$@" ;;
esac
