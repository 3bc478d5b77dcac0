#!/usr/bin/env bash
# Issue 12's memory soak: a server (127.0.0.71) and a client agent
# (127.0.0.72) from the built binary under mixed load through the client for
# MINUTES (default 30): register/deregister churn of 50 nodes, KV writes and
# stale reads, blocking queries woken by writes, and DNS lookups. Every
# minute it prints the RSS and goroutines of both agents; after warm-up
# (the first few minutes) both should stay flat. At the end it prints the
# first and last sample and the growth.
# Usage, from the repository root: bench/soak.sh [minutes]
# Needs curl; DNS load needs python3 (skipped, and said so, without it).
set -u
MINUTES=${1:-30}
BIN=/tmp/meridian-soak
go build -o "$BIN" ./cmd/meridian || exit 1
go build -o "$BIN-bench" ./cmd/meridian-bench || exit 1
WORK=$(mktemp -d /tmp/meridian-soak.XXXXXX)
PIDS=()
LOAD=()
cleanup() {
  for p in "${LOAD[@]:-}" "${PIDS[@]:-}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" agent -server -bootstrap-expect 1 -node soak-server -bind 127.0.0.71 -client 127.0.0.71 \
  -data-dir "$WORK/server" >"$WORK/server.log" 2>&1 & PIDS+=($!)
"$BIN" agent -node soak-client -bind 127.0.0.72 -client 127.0.0.72 -data-dir "$WORK/client" \
  -retry-join 127.0.0.71 -retry-interval 200ms >"$WORK/client.log" 2>&1 & PIDS+=($!)
SERVER_PID=${PIDS[0]} CLIENT_PID=${PIDS[1]}
C=127.0.0.72:8500
t0=$SECONDS
until curl -s -m1 "http://$C/v1/status/leader" | grep -q :; do
  (( SECONDS - t0 > 60 )) && { echo "no leader seen by the client within 60 s"; tail -5 "$WORK"/*.log; exit 1; }
  sleep 0.2
done
curl -s -X PUT -d '{"ID":"web-1","Name":"web","Port":80}' "http://$C/v1/agent/service/register" >/dev/null

END=$(( SECONDS + MINUTES * 60 ))
# Churn: register 50 nodes with a service each, then deregister them.
( while (( SECONDS < END )); do
    "$BIN-bench" register -addr "$C" -service churn -instances 50 >/dev/null 2>&1
    "$BIN-bench" register -addr "$C" -instances 50 -deregister >/dev/null 2>&1
  done ) & LOAD+=($!)
# KV: writers to a rotating set of keys, so the store does not only grow.
( while (( SECONDS < END )); do
    "$BIN-bench" kv-put -addr "$C" -c 4 -duration 20s -size 200 -prefix "soak/$(( (SECONDS / 60) % 5 ))/" >/dev/null 2>&1
    curl -s -X DELETE "http://$C/v1/kv/soak/$(( (SECONDS / 60 + 1) % 5 ))/?recurse" >/dev/null
  done ) & LOAD+=($!)
( while (( SECONDS < END )); do
    "$BIN-bench" get -addr "$C" -path '/v1/kv/soak/?recurse&keys&stale' -c 2 -duration 20s >/dev/null 2>&1
  done ) & LOAD+=($!)
# Blocking queries woken by writes (KV and catalog).
( while (( SECONDS < END )); do
    "$BIN-bench" blocking -addr "$C" -n 50 -duration 30s >/dev/null 2>&1
    "$BIN-bench" blocking -kind catalog -addr "$C" -n 20 -duration 30s >/dev/null 2>&1
  done ) & LOAD+=($!)
# Parked blocking queries that time out (wait=5s) on a service that churns.
( while (( SECONDS < END )); do
    idx=$(curl -s -D - -o /dev/null "http://$C/v1/health/service/churn" | awk -F': ' 'tolower($1) == "x-consul-index" {print $2+0}')
    for _ in 1 2 3 4 5 6 7 8; do curl -s -m 10 -o /dev/null "http://$C/v1/health/service/churn?index=${idx:-1}&wait=5s" & done
    wait
  done ) & LOAD+=($!)
# DNS: A and SRV lookups of web.service.consul and churning names.
if command -v python3 >/dev/null; then
  python3 - "$(( MINUTES * 60 ))" <<'PY' & LOAD+=($!)
import random, socket, struct, sys, time
deadline = time.monotonic() + int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
names = ["web.service.consul", "churn.service.consul", "soak-server.node.consul", "nope.service.consul"]
while time.monotonic() < deadline:
    name = random.choice(names)
    qtype = random.choice([1, 33])
    q = struct.pack(">HHHHHH", random.getrandbits(16), 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", qtype, 1)
    try:
        s.sendto(q, ("127.0.0.72", 8600))
        s.recv(4096)
    except OSError:
        pass
PY
else
  echo "python3 not found: no DNS load in this soak"
fi

rss() { awk '/^VmRSS/ {printf "%d", $2/1024}' "/proc/$1/status" 2>/dev/null; }
goroutines() { curl -s -m 5 "http://$1/v1/agent/metrics?format=prometheus" | awk '$1 == "go_goroutines" {print $2}'; }
sample() {
  printf '%3d min  server rss %4s MB goroutines %5s   client rss %4s MB goroutines %5s\n' "$1" \
    "$(rss "$SERVER_PID")" "$(goroutines 127.0.0.71:8500)" "$(rss "$CLIENT_PID")" "$(goroutines "$C")"
}
echo "soak of $MINUTES min; one line a minute"
FIRST=$(sample 0); echo "$FIRST"
LAST=$FIRST
for m in $(seq "$MINUTES"); do
  sleep 60
  kill -0 "$SERVER_PID" 2>/dev/null && kill -0 "$CLIENT_PID" 2>/dev/null || { echo "an agent died:"; tail -20 "$WORK"/*.log; exit 1; }
  LAST=$(sample "$m"); echo "$LAST"
done
echo "first: $FIRST"
echo "last:  $LAST"
