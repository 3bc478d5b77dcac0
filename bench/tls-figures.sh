#!/usr/bin/env bash
# Issue 19's figures: perf-kv (durable KV PUTs through the leader of three
# servers: Raft over port 8300) and perf-fed (dc1's DNS answering
# web.service.dc2.consul: the WAN link) with and without TLS, in the same
# run, alternating ROUNDS times (default 2). TLS on means every agent gets
# one server certificate for server.dc1.consul and server.dc2.consul (made
# here with `meridian tls`), verify_incoming, verify_outgoing and
# verify_server_hostname, through the agent's MERIDIAN_TLS_* environment.
# Usage, from the repository root (needs ../shared/bench, dnsperf and wrk):
#   bench/tls-figures.sh [rounds]
set -eu
ROUNDS=${1:-2}
BENCH=${BENCH:-../shared/bench}
BIN=$(mktemp /tmp/meridian-tls-figures.XXXXXX)
CERTS=$(mktemp -d /tmp/meridian-tls-certs.XXXXXX)
trap 'rm -rf "$BIN" "$CERTS"' EXIT
go build -o "$BIN" ./cmd/meridian
(cd "$CERTS" && "$BIN" tls ca create >/dev/null &&
  "$BIN" tls cert create -server -dc dc1 -additional-dnsname server.dc2.consul >/dev/null)
tls_env=(
  MERIDIAN_TLS_DEFAULTS_CA_FILE="$CERTS/consul-agent-ca.pem"
  MERIDIAN_TLS_DEFAULTS_CERT_FILE="$CERTS/dc1-server-consul-0.pem"
  MERIDIAN_TLS_DEFAULTS_KEY_FILE="$CERTS/dc1-server-consul-0-key.pem"
  MERIDIAN_TLS_DEFAULTS_VERIFY_INCOMING=true
  MERIDIAN_TLS_DEFAULTS_VERIFY_OUTGOING=true
  MERIDIAN_TLS_INTERNAL_RPC_VERIFY_SERVER_HOSTNAME=true
)
for round in $(seq "$ROUNDS"); do
  for bench in perf-kv perf-fed; do
    plain=$(AGENT_BIN=$BIN "$BENCH/$bench" 2>&1 | tail -n 1)
    tls=$(env "${tls_env[@]}" AGENT_BIN="$BIN" "$BENCH/$bench" 2>&1 | tail -n 1)
    echo "round $round $bench plain: $plain"
    echo "round $round $bench tls:   $tls"
  done
done
