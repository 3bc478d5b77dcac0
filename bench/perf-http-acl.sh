#!/bin/bash
# ../shared/bench/perf-http with ACLs on: the same dev agent, 20 passing
# web instances and wrk load (GET /v1/health/service/web?passing, 64
# connections), but with acl { enabled, default_policy = "deny" } and every
# request carrying a token whose policy has 20 rules. In the same rounds,
# the same load against a second dev agent with ACLs off (the same 20
# instances) and against the reference server: the ratio ACL on / ACL off
# is what checking tokens costs (goal >= 0.95, issue 13), the ratio to the
# reference compares with perf-http's. perf-http takes no config, hence
# this variant.
# Usage, from the repository root: bench/perf-http-acl.sh (PERF_S=8 seconds
# per run). Needs curl and wrk.
source "${SHARED_BENCH:-../shared/bench}/common.sh"
command -v wrk >/dev/null || short "wrk not installed (apt-get install wrk)"
build_meridian
(cd "$BENCH_DIR/ref" && go build -o /tmp/bench-ref .) >"$WORKDIR/ref.log" 2>&1 || short "ref build failed"
MGMT=8c5e2f1a-0b3d-4e6f-9a7b-1c2d3e4f5a6b
mkdir -p "$WORKDIR/conf"
cat >"$WORKDIR/conf/acl.yaml" <<YAML
acl:
  enabled: true
  default_policy: deny
  tokens:
    initial_management: $MGMT
    agent: $MGMT
YAML
start dev "$BIN" agent -dev -node bar-perf -bind 127.0.0.83 -client 127.0.0.83 -config-dir "$WORKDIR/conf"
start off "$BIN" agent -dev -node bar-perf-off -bind 127.0.0.85 -client 127.0.0.85
wait_leader 127.0.0.83:8500 20 || short "dev agent had no leader within 20 s"
wait_leader 127.0.0.85:8500 20 || short "the ACL-off dev agent had no leader within 20 s"
H="X-Consul-Token: $MGMT"
t0=$SECONDS
until curl -sf -H "$H" http://127.0.0.83:8500/v1/acl/token/self >/dev/null; do
  (( SECONDS - t0 > 15 )) && short "the initial management token did not work within 15 s"
  sleep 0.3
done
for i in $(seq 1 20); do
  for addr in 127.0.0.83 127.0.0.85; do
    curl -s -H "$H" -X PUT -d "{\"ID\":\"web-$i\",\"Name\":\"web\",\"Address\":\"127.0.1.$i\",\"Port\":80,\"Tags\":[\"v1\"]}" http://$addr:8500/v1/agent/service/register >/dev/null
  done
done
# A 20-rule policy: the rules that let the reads through among 18 others.
{
  echo 'service "web" { policy = "read" }'
  echo 'node_prefix "" { policy = "read" }'
  for i in $(seq 1 9); do
    echo "key_prefix \"app$i/\" { policy = \"write\" }"
    echo "service_prefix \"api$i\" { policy = \"read\" }"
  done
} >"$WORKDIR/bench.hcl"
export MERIDIAN_HTTP_ADDR=127.0.0.83:8500 MERIDIAN_HTTP_TOKEN=$MGMT
"$BIN" acl policy create -name bench -rules @"$WORKDIR/bench.hcl" >"$WORKDIR/policy.log" 2>&1 || short "policy create failed: $(tail -1 "$WORKDIR/policy.log")"
secret=$("$BIN" acl token create -description bench -policy-name bench 2>&1 | awk '/SecretID/ {print $2}')
[ -n "$secret" ] || short "token create failed"
URL=/v1/health/service/web?passing
t0=$SECONDS
until [ "$(curl -s -H "X-Consul-Token: $secret" "http://127.0.0.83:8500$URL" | grep -o '"ServiceName"\|"Service":{' | wc -l)" -ge 20 ] &&
  [ "$(curl -s "http://127.0.0.85:8500$URL" | grep -o '"ServiceName"\|"Service":{' | wc -l)" -ge 20 ]; do
  (( SECONDS - t0 > 15 )) && short "health/service/web did not list 20 passing instances on both agents within 15 s"
  sleep 0.3
done
curl -s -H "X-Consul-Token: $secret" "http://127.0.0.83:8500$URL" >"$WORKDIR/body.json"
start ref /tmp/bench-ref -http 127.0.0.84:8500 -body "$WORKDIR/body.json"
sleep 1
rps() { wrk -t2 -c64 -d${PERF_S:-8}s -H "X-Consul-Token: $secret" "http://$1$URL" 2>/dev/null | awk '/Requests\/sec/ {print int($2)}'; }
a=(); o=(); r=()
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for i in 1 2 3; do a+=($(rps 127.0.0.83:8500)); o+=($(rps 127.0.0.85:8500)); r+=($(rps 127.0.0.84:8500)); done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
ma=$(med "${a[@]}"); mo=$(med "${o[@]}"); mr=$(med "${r[@]}")
ratio=$(awk -v a="$ma" -v r="$mr" 'BEGIN {printf "%.2f", a/r}')
onoff=$(awk -v a="$ma" -v o="$mo" 'BEGIN {printf "%.2f", a/o}')
echo "HTTP health req/s with ACLs (20-rule policy) agent ${ma} vs reference ${mr} (runs: ${a[*]} / ${r[*]}), body $(wc -c <"$WORKDIR/body.json") B: ratio $ratio"
echo "HTTP health req/s with ACLs ${ma} vs ACLs off ${mo} (runs: ${o[*]}), load ${load0} -> ${load1}: ratio $onoff (goal >= 0.95)"
awk -v x="$onoff" 'BEGIN {exit !(x >= 0.95)}'
