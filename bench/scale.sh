#!/usr/bin/env bash
# The scale figures of issue 18, on a real datacenter: three servers on
# NET.11-13 (Raft on disk) and two clients on NET.21-22 (NET: 127.0.0), default
# ports. For each catalog size (default 1000 and 10000 nodes, each with 5
# services of 2 checks; the first 1000 nodes hold service "big") it
#   registers the catalog through /v1/catalog/register (meridian-bench fill),
#   reads each server's RSS and the leader's Go heap after a GC
#     (/debug/pprof/heap?gc=1) before and after: bytes per service instance,
#   times /v1/health/service/big?passing at 64 connections on the leader
#     (meridian-bench get), plain, gzip-compressed and inflated (as
#     consul/api asks and reads it) and gzip-compressed read as sent (what
#     the agent serves, without the reader's inflating), each with the same
#     tool against a static server of the same bytes (the floor set by
#     copying them through loopback) and the tool's own CPU per request,
#     and big.service.consul over UDP (truncated, dnsperf) and TCP (all
#     1000, dig's own query time and the wall time of a dig),
#   parks N blocking queries on the health of one small service, spread
#     over all five agents, flips its check, and times the last answer with
#     the servers' CPU seconds (meridian-bench herd, N from HERD_NS), and
#     the same watchers against the herd's floor (herd -floor: a process
#     of the tool's that parks them and answers bytes of the same length
#     encoded once, the fastest Go's HTTP server wakes them here, with its
#     CPU seconds; HERD_FLOOR=0 skips it),
#   parks N on one client agent alone, which answers them from its streaming
#     view (use_streaming_backend), and reports the servers' CPU per flip,
#   takes the catalog's snapshot (meridian snapshot save: its size and
#     time) and restarts a SIGKILLed follower, timing its start to serving
#     ?stale reads at the datacenter's index again,
#   runs 200 simulated agents' full syncs of 50 unchanged services, as an
#     agent does (read, then register what differs) and blind (register all
#     again), counting the Raft entries the leader applied (meridian-bench sync),
# then prints one table, with the 10k/1k ratio of each figure.
# Usage, from the repository root: bench/scale.sh [sizes...]   (default: 1000 10000)
# Env: HERD_NS (default "1000 10000 10000stale 10000h2c 100000h2c": N, with
# "stale" for ?stale watchers that each server answers itself and "h2c" for
# watchers sharing HTTP/2 connections, 200 streams each, rather than one
# HTTP/1.1 connection each), HERD_ROUNDS (3), READ_SECS (10), NET (127.0.0:
# the first three octets of the agents' addresses, so runs beside others
# do not collide), CLIENT_HERD_NS (default "10 10000": N watchers on one
# client agent, answered from its streaming view; "" to skip), READ_ROUNDS
# (1: each read figure is the median of this many runs), PHASES (default
# "read dns herd snapshot sync": which measurements follow the fill and the memory
# figures), BIN and BENCH (the meridian and meridian-bench binaries, built
# from this tree unless BUILD=0, so another build can be measured with the
# same script and load tool). The soft open-files limit is raised to the
# hard one.
# Needs curl and dnsperf; about 5 minutes on two loaded cores.
set -u
SIZES=${*:-1000 10000}
HERD_NS=${HERD_NS:-1000 10000 10000stale 10000h2c 100000h2c}
NET=${NET:-127.0.0}
ulimit -n "$(ulimit -Hn)"
HERD_ROUNDS=${HERD_ROUNDS:-3}
HERD_FLOOR=${HERD_FLOOR:-1}
CLIENT_HERD_NS=${CLIENT_HERD_NS-10 10000}
READ_SECS=${READ_SECS:-10}
READ_ROUNDS=${READ_ROUNDS:-1}
PHASES=" ${PHASES:-read dns herd snapshot sync} "
BIN=${BIN:-/tmp/meridian-scale}
BENCH=${BENCH:-/tmp/meridian-scale-bench}
if [ "${BUILD:-1}" != 0 ]; then
  go build -o "$BIN" ./cmd/meridian || exit 1
  go build -o "$BENCH" ./cmd/meridian-bench || exit 1
fi
phase() { case "$PHASES" in *" $1 "*) return 0;; esac; return 1; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }
WORK=$(mktemp -d /tmp/meridian-scale.XXXXXX)
PIDS=()
stop_all() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; wait 2>/dev/null; PIDS=(); }
trap 'stop_all; rm -rf "$WORK"' EXIT

SERVERS="$NET.11 $NET.12 $NET.13"
CLIENTS="$NET.21 $NET.22"
cat >"$WORK/extra.json" <<'EOF'
{"enable_debug": true, "limits": {"http_max_conns_per_client": 0}}
EOF

start_agent() { # name ip server(0/1)
  local name=$1 ip=$2 srv=$3 args=()
  if [ "$srv" = 1 ]; then args=(-server -bootstrap-expect 3); fi
  "$BIN" agent -node "$name" -bind "$ip" -client "$ip" -data-dir "$WORK/$name" -config-file "$WORK/extra.json" \
    -retry-join $NET.11 -retry-join $NET.12 -retry-join $NET.13 -retry-interval 1s \
    "${args[@]}" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
}
leader_of() { curl -s -m 2 "http://$1:8500/v1/status/leader" 2>/dev/null | tr -d '"'; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
cpu_s() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat"; }
heap_after_gc() { # ip: HeapAlloc after a GC, bytes
  curl -s -m 30 "http://$1:8500/debug/pprof/heap?gc=1&debug=1" | awk '/^# HeapAlloc = / {print $4}'
}
metric() { # ip name
  curl -s -m 10 "http://$1:8500/v1/agent/metrics?format=prometheus" | awk -v n="$2" '$1 == n {printf "%.0f", $2}'
}
result() { grep '^RESULT' | tail -1; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; } # RESULT field
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b != "") printf "%.2f", b/a; else printf "-" }'; }

declare -A FIG
ORDER=()
put() { # size key value
  FIG[$1,$2]=$3
  case " ${ORDER[*]:-} " in *" $2 "*) ;; *) ORDER+=("$2");; esac
}

for size in $SIZES; do
  stop_all
  rm -rf "$WORK"/s? "$WORK"/c?
  start_agent s1 $NET.11 1; start_agent s2 $NET.12 1; start_agent s3 $NET.13 1
  start_agent c1 $NET.21 0; start_agent c2 $NET.22 0
  for ip in $SERVERS; do until [ -n "$(leader_of $ip)" ]; do sleep 0.2; done; done
  for ip in $CLIENTS; do until [ -n "$(leader_of $ip)" ]; do sleep 0.2; done; done
  LEADER=$(leader_of $NET.11); LEADER=${LEADER%:*}
  sleep 3 # the leader's first reconcile
  SPIDS="$PID_s1,$PID_s2,$PID_s3"
  heap0=$(heap_after_gc "$LEADER")
  echo "== $size nodes: leader $LEADER; load average $(cut -d' ' -f1-3 /proc/loadavg)"

  t0=$(date +%s.%N)
  "$BENCH" fill -addr "$LEADER:8500" -nodes "$size" -services 5 -checks 2 -big 1000 -c 64 >"$WORK/fill.out" 2>&1 || { cat "$WORK/fill.out"; exit 1; }
  fill_s=$(echo "$(date +%s.%N) - $t0" | bc -l)
  instances=$((size * 5))
  # Every server has applied the fill.
  for ip in $SERVERS; do
    until [ "$(metric "$ip" consul_state_nodes)" -ge "$size" ] 2>/dev/null; do sleep 0.5; done
  done
  put "$size" "fill: registrations/s" "$(result <"$WORK/fill.out" | field rps)"
  sleep 2
  heap1=$(heap_after_gc "$LEADER")
  put "$size" "leader heap after GC, MiB" "$(awk -v h="$heap1" 'BEGIN {printf "%.1f", h/1048576}')"
  put "$size" "heap per instance, bytes" "$(awk -v a="$heap0" -v b="$heap1" -v n="$instances" 'BEGIN {printf "%.0f", (b-a)/n}')"
  rss=""; for p in $PID_s1 $PID_s2 $PID_s3; do rss="$rss$(rss_mb $p)/"; done
  put "$size" "server RSS, MiB (s1/s2/s3)" "${rss%/}"

  # Reads of the 1000-instance service at 64 connections.
  # Each read figure with its floor: the same load against a static server
  # of the same bytes in the load tool (copying them through loopback).
  # "gzip" inflates every answer as consul/api does; "gzip raw" reads the
  # compressed bytes as sent: the agent's own cost without the reader's.
  # tool CPU is the load tool's own per request (the floor's: its static
  # server's too), agent CPU the leader's per request, less what it spends
  # idle (Raft, gossip): beside the floor's tool CPU less the agent run's,
  # what the static server spent.
  if phase read; then
  LPID=""; for n in s1 s2 s3; do ip=$NET.1${n#s}; [ "$ip" = "$LEADER" ] && eval "LPID=\$PID_$n"; done
  for enc in plain gzip "gzip raw"; do
    gz=(); [ "$enc" = gzip ] && gz=(-gzip); [ "$enc" = "gzip raw" ] && gz=(-gzip -raw)
    declare -A R=()
    for _ in $(seq "$READ_ROUNDS"); do
      "$BENCH" get -addr "$LEADER:8500" -path '/v1/health/service/big?passing' -c 64 -duration "${READ_SECS}s" "${gz[@]}" -floor -pid "${LPID:-0}" >"$WORK/get.out" 2>&1
      r=$(grep '^RESULT mode=get ' "$WORK/get.out"); fl=$(grep '^RESULT mode=get-floor' "$WORK/get.out")
      for f in rps p50_ms p99_ms bytes tool_cpu_us agent_cpu_us; do
        R[$f]="${R[$f]:-} $(echo "$r" | field $f)"; R[floor_$f]="${R[floor_$f]:-} $(echo "$fl" | field $f)"
      done
    done
    m() { echo "${R[$1]}" | median; }
    put "$size" "health big?passing c64 $enc: rps (floor)" "$(m rps) ($(m floor_rps))"
    put "$size" "health big?passing c64 $enc: p50 ms (floor)" "$(m p50_ms) ($(m floor_p50_ms))"
    put "$size" "health big?passing c64 $enc: p99 ms (floor)" "$(m p99_ms) ($(m floor_p99_ms))"
    put "$size" "health big?passing c64 $enc: bytes, tool CPU us/req (floor)" "$(m bytes), $(m tool_cpu_us) ($(m floor_tool_cpu_us))"
    put "$size" "health big?passing c64 $enc: agent CPU us/req (static's)" "$(m agent_cpu_us) ($(awk -v a="$(m floor_tool_cpu_us)" -v b="$(m tool_cpu_us)" 'BEGIN {printf "%.0f", a-b}'))"
    unset R
  done
  put "$size" "load average after the reads" "$(cut -d' ' -f1 /proc/loadavg)"
  fi
  if phase dns; then
  echo "big.service.consul A" >"$WORK/dns.q"
  answers=$(dig +tries=1 +time=5 +notcp +ignore @"$LEADER" -p 8600 big.service.consul A | grep -c 'IN[[:space:]]A[[:space:]]')
  # dnsperf keeps 100 queries outstanding: its average latency is about
  # 100 / qps (queueing), not the time of one query.
  dnsperf -s "$LEADER" -p 8600 -m udp -d "$WORK/dns.q" -c 4 -l 5 >"$WORK/dns.udp" 2>&1
  lat=$(awk '/Average Latency/ {printf "%.2f", $4*1000; exit}' "$WORK/dns.udp")
  qps=$(awk '/Queries per second/ {printf "%.0f", $4}' "$WORK/dns.udp")
  put "$size" "DNS udp (truncated): answers, qps, avg ms (100 outstanding)" "$answers, $qps, $lat"
  dnsperf -s "$LEADER" -p 8600 -m udp -d "$WORK/dns.q" -c 1 -q 1 -l 3 >"$WORK/dns.udp1" 2>&1
  put "$size" "DNS udp (truncated): avg ms, one query at a time" "$(awk '/Average Latency/ {printf "%.3f", $4*1000; exit}' "$WORK/dns.udp1")"
  # TCP: dnsperf loses every query whose answer is this large, so 20 digs
  # one after another: the wall time of each (starting dig included) and
  # the median of dig's own query time (connect, query, answer; 1 ms
  # resolution).
  answers=$(dig +tries=1 +time=5 +tcp @"$LEADER" -p 8600 big.service.consul A | grep -c 'IN[[:space:]]A[[:space:]]')
  t0=$(date +%s.%N)
  qt=$(for _ in $(seq 20); do dig +tries=1 +time=5 +tcp @"$LEADER" -p 8600 big.service.consul A | awk '/Query time:/ {print $4}'; done | median)
  put "$size" "DNS tcp (full): answers, avg ms per dig, dig query time ms" "$answers, $(echo "($(date +%s.%N) - $t0) * 50" | bc -l | xargs printf '%.1f'), $qt"
  fi

  # The herd, spread over the five agents.
  if phase herd; then
  for herd in $HERD_NS; do
    n=${herd%stale}; stale=()
    [ "$n" != "$herd" ] && stale=(-stale)
    n2=${n%h2c}
    [ "$n2" != "$n" ] && stale=(-h2c) && n=$n2
    echo "   herd N=$herd:"
    g0=0; for ip in $SERVERS $CLIENTS; do g0=$((g0 + $(metric "$ip" go_goroutines))); done
    floor=(); [ "$HERD_FLOOR" != 0 ] && floor=(-floor)
    "$BENCH" herd -addrs $NET.11:8500,$NET.12:8500,$NET.13:8500,$NET.21:8500,$NET.22:8500 \
      -write-addr "$LEADER:8500" -n "$n" "${stale[@]}" "${floor[@]}" -rounds "$HERD_ROUNDS" -timeout 120s -pids "$SPIDS,$PID_c1,$PID_c2" >"$WORK/herd.out" 2>&1
    grep '^herd\(-floor\)\{0,1\} round' "$WORK/herd.out" | sed 's/^/   /'
    r=$(grep '^RESULT mode=herd ' "$WORK/herd.out" | tail -1)
    if [ "$(echo "$r" | field errors)" != 0 ]; then tail -3 "$WORK/herd.out"; fi
    last=$(grep '^herd round' "$WORK/herd.out" | sed -n 's/.*last_ms=\([^ ]*\).*/\1/p' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    # Servers' CPU per flip: the rounds' CPU columns of the three servers.
    cpu=$(grep '^herd round' "$WORK/herd.out" | awk -v s="$PID_s1 $PID_s2 $PID_s3" '
      BEGIN { split(s, p, " ") }
      { t = 0; for (i in p) { if (match($0, "pid" p[i] "_cpu_s=[0-9.]+")) { v = substr($0, RSTART, RLENGTH); sub(/.*=/, "", v); t += v } } sum += t; k++ }
      END { if (k) printf "%.2f", sum/k }')
    put "$size" "herd N=$herd: last answer ms (median of rounds)" "$last"
    put "$size" "herd N=$herd: server CPU s per flip" "$cpu"
    if [ "$HERD_FLOOR" != 0 ]; then
      put "$size" "herd N=$herd: floor's last answer ms (median of rounds)" \
        "$(grep '^herd-floor round' "$WORK/herd.out" | sed -n 's/.*last_ms=\([^ ]*\).*/\1/p' | median)"
      put "$size" "herd N=$herd: floor's CPU s per flip" \
        "$(grep '^herd-floor round' "$WORK/herd.out" | sed -n 's/.* pid[0-9]*_cpu_s=\([^ ]*\).*/\1/p' | median)"
    fi
    g1=$(grep -m1 '^herd round' "$WORK/herd.out" | grep -o 'goroutines_[^ ]*=[0-9]*' | awk -F= '{t += $2} END {print t+0}')
    put "$size" "herd N=$herd: goroutines per 10000 parked (5 agents)" "$(awk -v a="$g0" -v b="$g1" -v n="$n" 'BEGIN {printf "%.0f", (b-a)*10000/n}')"
    put "$size" "herd N=$herd: 5xx retried (leader silent)" "$(grep '^herd round' "$WORK/herd.out" | sed -n 's/.*retried_5xx=\([0-9]*\).*/\1/p' | paste -sd+ | bc)"
  done

  # The herd on one client agent, answered from its streaming view
  # (use_streaming_backend): the servers serve it one subscription.
  for n in $CLIENT_HERD_NS; do
    echo "   one-client streaming herd N=$n:"
    "$BENCH" herd -addrs $NET.21:8500 -write-addr "$LEADER:8500" -n "$n" -backend streaming \
      -rounds "$HERD_ROUNDS" -timeout 120s -pids "$SPIDS" >"$WORK/herd.out" 2>&1
    grep '^herd round' "$WORK/herd.out" | sed 's/^/   /'
    r=$(result <"$WORK/herd.out")
    if [ "$(echo "$r" | field errors)" != 0 ]; then tail -3 "$WORK/herd.out"; fi
    cpu=$(grep '^herd round' "$WORK/herd.out" | awk '
      { t = 0; s = $0; while (match(s, /pid[0-9]+_cpu_s=[0-9.]+/)) { v = substr(s, RSTART, RLENGTH); sub(/.*=/, "", v); t += v; s = substr(s, RSTART + RLENGTH) } sum += t; k++ }
      END { if (k) printf "%.3f", sum/k }')
    put "$size" "one-client streaming herd N=$n: server CPU s per flip" "$cpu"
  done
  fi

  # The catalog's snapshot (meridian snapshot save from the leader: its
  # state as a Raft snapshot holds it, streamed and checksummed), then a
  # follower SIGKILLed and started again on its data dir: the time from its
  # start until it answers a ?stale read of big from its own state at the
  # index the datacenter had (its Raft snapshot restored and log replayed).
  if phase snapshot; then
  t0=$(date +%s.%N)
  "$BIN" snapshot save -http-addr "$LEADER:8500" "$WORK/catalog.snap" >"$WORK/snap.out" 2>&1 || cat "$WORK/snap.out"
  put "$size" "snapshot save: MiB, s" "$(awk -v b="$(stat -c %s "$WORK/catalog.snap" 2>/dev/null || echo 0)" 'BEGIN {printf "%.1f", b/1048576}'), $(echo "$(date +%s.%N) - $t0" | bc -l | xargs printf '%.2f')"
  rm -f "$WORK/catalog.snap"
  index_of() { curl -s -m 2 -o /dev/null -D - "http://$1:8500/v1/health/service/big?passing&stale" 2>/dev/null | awk 'tolower($1) == "x-consul-index:" {print $2+0}'; }
  want=$(index_of "$LEADER")
  for n in s1 s2 s3; do ip=$NET.1${n#s}; [ "$ip" != "$LEADER" ] && { F=$n; FIP=$ip; }; done
  eval "kill -9 \$PID_$F"; eval "wait \$PID_$F" 2>/dev/null
  t0=$(date +%s.%N)
  start_agent "$F" "$FIP" 1
  until [ "$(index_of "$FIP")" -ge "$want" ] 2>/dev/null; do
    (( $(echo "$(date +%s.%N) - $t0 > 120" | bc) )) && { echo "   $F did not serve index $want within 120 s"; break; }
    sleep 0.05
  done
  put "$size" "follower restart (SIGKILL) to serving reads, s" "$(echo "$(date +%s.%N) - $t0" | bc -l | xargs printf '%.2f')"
  SPIDS="$PID_s1,$PID_s2,$PID_s3"
  fi

  # Anti-entropy of 200 agents with 50 unchanged services each.
  if phase sync; then
  "$BENCH" sync -addr $NET.21:8500 -metrics-addr "$LEADER:8500" -agents 200 -services 50 -rounds 2 -c 32 >"$WORK/sync.out" 2>&1
  put "$size" "AE diff sync: Raft entries / 400 syncs" "$(sed -n 's/.*sent, \([0-9]*\) Raft entries.*/\1/p' "$WORK/sync.out")"
  "$BENCH" sync -addr $NET.21:8500 -metrics-addr "$LEADER:8500" -agents 200 -services 50 -rounds 1 -c 32 -blind >"$WORK/sync.out" 2>&1
  put "$size" "AE blind sync: Raft entries / 10000 re-registrations" "$(sed -n 's/.*sent, \([0-9]*\) Raft entries.*/\1/p' "$WORK/sync.out")"
  fi

  rss=""; for p in $PID_s1 $PID_s2 $PID_s3; do rss="$rss$(rss_mb $p)/"; done
  put "$size" "server RSS at the end, MiB (s1/s2/s3)" "${rss%/}"
  put "$size" "load average at the end" "$(cut -d' ' -f1 /proc/loadavg)"
done
stop_all

# The table.
set -- $SIZES
first=$1; last=${!#}
printf '\n%-52s' "figure"; for size in $SIZES; do printf ' %18s' "$size nodes"; done
[ "$first" != "$last" ] && printf ' %8s' "ratio"
printf '\n'
for key in "${ORDER[@]}"; do
  printf '%-52s' "$key"
  for size in $SIZES; do printf ' %18s' "${FIG[$size,$key]:-}"; done
  [ "$first" != "$last" ] && printf ' %8s' "$(ratio "${FIG[$first,$key]:-}" "${FIG[$last,$key]:-}")"
  printf '\n'
done
