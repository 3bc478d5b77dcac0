#!/bin/bash
# ../shared/bench/perf-dns with ACLs on, against the same with ACLs off in
# the same run: two dev agents, each with the 4 passing web instances of
# perf-dns, one without ACLs and one with acl { enabled, default_policy =
# "deny" } whose default token (acl.tokens.default, what DNS answers with)
# holds a 20-rule policy that lets service "web" and every node be read.
# dnsperf (64 clients, EDNS, A web.service.consul) alternates between them,
# three runs each, and the ratio of the medians (ACL on / ACL off) is what
# checking the token costs DNS. Goal: >= 0.95 (issue 13). The bare
# reference server of perf-dns is measured in the same rounds, for scale.
# Usage, from the repository root: bench/perf-dns-acl.sh (PERF_S=8
# seconds per run). Needs curl, dig and dnsperf.
source "${SHARED_BENCH:-../shared/bench}/common.sh"
command -v dnsperf >/dev/null || short "dnsperf not installed (apt-get install dnsperf)"
command -v dig >/dev/null || short "dig not installed (apt-get install dnsutils)"
build_meridian
(cd "$BENCH_DIR/ref" && go build -o /tmp/bench-ref .) >"$WORKDIR/ref.log" 2>&1 || short "ref build failed"
OFF=127.0.0.121 ON=127.0.0.122 REF=127.0.0.123
MGMT=3d1f6b2e-8a4c-4f5d-9e0b-7c6a5b4d3e21
mkdir -p "$WORKDIR/conf"
cat >"$WORKDIR/conf/acl.yaml" <<YAML
acl:
  enabled: true
  default_policy: deny
  tokens:
    initial_management: $MGMT
    agent: $MGMT
YAML
start off "$BIN" agent -dev -node bar-dns-off -bind $OFF -client $OFF
start on "$BIN" agent -dev -node bar-dns-on -bind $ON -client $ON -config-dir "$WORKDIR/conf"
wait_leader $OFF:8500 20 || short "the ACL-off dev agent had no leader within 20 s"
wait_leader $ON:8500 20 || short "the ACL-on dev agent had no leader within 20 s"
H="X-Consul-Token: $MGMT"
t0=$SECONDS
until curl -sf -H "$H" http://$ON:8500/v1/acl/token/self >/dev/null; do
  (( SECONDS - t0 > 15 )) && short "the initial management token did not work within 15 s"
  sleep 0.3
done
for addr in $OFF $ON; do
  for i in 1 2 3 4; do
    curl -s -H "$H" -X PUT -d "{\"ID\":\"web-$i\",\"Name\":\"web\",\"Address\":\"127.0.1.$i\",\"Port\":80}" http://$addr:8500/v1/agent/service/register >/dev/null
  done
done
# A 20-rule policy: the two rules DNS needs among 18 others.
{
  echo 'service "web" { policy = "read" }'
  echo 'node_prefix "" { policy = "read" }'
  for i in $(seq 1 9); do
    echo "key_prefix \"app$i/\" { policy = \"write\" }"
    echo "service_prefix \"api$i\" { policy = \"read\" }"
  done
} >"$WORKDIR/dns.hcl"
export MERIDIAN_HTTP_ADDR=$ON:8500 MERIDIAN_HTTP_TOKEN=$MGMT
"$BIN" acl policy create -name dns -rules @"$WORKDIR/dns.hcl" >"$WORKDIR/policy.log" 2>&1 || short "policy create failed: $(tail -1 "$WORKDIR/policy.log")"
secret=$("$BIN" acl token create -description dns -policy-name dns 2>&1 | awk '/SecretID/ {print $2}')
[ -n "$secret" ] || short "token create failed"
"$BIN" acl set-agent-token default "$secret" >"$WORKDIR/set.log" 2>&1 || short "set-agent-token default failed: $(tail -1 "$WORKDIR/set.log")"
# Checks the bench relies on: both agents answer 4 records; with ACLs on,
# a service the default token may not read is refused.
for addr in $OFF $ON; do
  t0=$SECONDS
  until [ "$(dig +short @$addr -p 8600 web.service.consul A | wc -l)" = 4 ]; do
    (( SECONDS - t0 > 15 )) && short "$addr: web.service.consul did not answer 4 A records within 15 s"
    sleep 0.3
  done
done
curl -s -H "$H" -X PUT -d '{"ID":"db-1","Name":"db","Address":"127.0.2.1","Port":5432}' http://$ON:8500/v1/agent/service/register >/dev/null
n=$(dig +short @$ON -p 8600 db.service.consul A | wc -l)
[ "$n" = 0 ] || short "with ACLs on, db.service.consul answered $n A records to the default token, want 0"
start ref /tmp/bench-ref -dns $REF:8600
sleep 1
echo "web.service.consul A" >"$WORKDIR/q"
qps() { dnsperf -e -s "$1" -p 8600 -d "$WORKDIR/q" -c 64 -q 64 -l ${PERF_S:-8} 2>/dev/null | awk '/Queries per second/ {print int($4)}'; }
off=(); on=(); ref=()
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for i in 1 2 3; do off+=($(qps $OFF)); on+=($(qps $ON)); ref+=($(qps $REF)); done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
moff=$(med "${off[@]}"); mon=$(med "${on[@]}"); mref=$(med "${ref[@]}")
ratio=$(awk -v a="$mon" -v b="$moff" 'BEGIN {printf "%.2f", a/b}')
echo "DNS qps with ACLs (default token, 20-rule policy) ${mon} vs ACLs off ${moff} (runs: ${on[*]} / ${off[*]}), reference ${mref} (${ref[*]}), load ${load0} -> ${load1}: ratio $ratio (goal >= 0.95)"
awk -v x="$ratio" 'BEGIN {exit !(x >= 0.95)}'
