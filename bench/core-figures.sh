#!/usr/bin/env bash
# Measures the single-datacenter figures of issue 2 with the real binary and
# its default timings: three servers on 127.0.0.11-13 plus a client on
# 127.0.0.21, default ports, Raft on disk.
#   time to a leader after the third server starts,
#   time until a SIGKILLed follower is marked failed,
#   time until a new leader after the leader is SIGKILLed,
#   idle RSS of a server and a client, and the stripped binary's size.
# Usage, from the repository root: bench/core-figures.sh [runs]   (default 5)
# Prints each run and the medians. Needs curl.
set -u
RUNS=${1:-5}
BIN=/tmp/meridian-figures
go build -ldflags="-s -w" -o "$BIN" ./cmd/meridian || exit 1
WORK=$(mktemp -d /tmp/meridian-figures.XXXXXX)
PIDS=()
stop_all() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done; PIDS=(); wait 2>/dev/null; }
trap 'stop_all; rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.2f'; }
leader_of() { curl -s -m 1 "http://$1:8500/v1/status/leader" 2>/dev/null | tr -d '"'; }

start_agent() { # name ip server(0/1)
  local name=$1 ip=$2 srv=$3 args=()
  if [ "$srv" = 1 ]; then args=(-server -bootstrap-expect 3); fi
  "$BIN" agent -node "$name" -bind "$ip" -client "$ip" -data-dir "$WORK/$name" \
    -retry-join 127.0.0.11 -retry-join 127.0.0.12 -retry-join 127.0.0.13 -retry-interval 1s \
    "${args[@]}" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
}
member_status() { # agent-ip node: the node's status number as that agent sees it
  curl -s "http://$1:8500/v1/agent/members" | sed 's/{"Name"/\n{"Name"/g' | grep "\"Name\":\"$2\"" | grep -o '"Status":[0-9]' | cut -d: -f2
}
wait_http() { until curl -s -m 1 "http://$1:8500/v1/agent/self" >/dev/null 2>&1; do sleep 0.02; done; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

: >"$WORK/leader" ; : >"$WORK/failed" ; : >"$WORK/newleader"; : >"$WORK/rss_server"; : >"$WORK/rss_client"
for run in $(seq "$RUNS"); do
  rm -rf "$WORK"/s1 "$WORK"/s2 "$WORK"/s3 "$WORK"/c1
  start_agent s1 127.0.0.11 1; start_agent s2 127.0.0.12 1
  wait_http 127.0.0.11; wait_http 127.0.0.12
  t0=$(now); start_agent s3 127.0.0.13 1
  until [ -n "$(leader_of 127.0.0.11)" ] && [ -n "$(leader_of 127.0.0.12)" ] && [ -n "$(leader_of 127.0.0.13)" ]; do sleep 0.02; done
  t_leader=$(since "$t0"); echo "$t_leader" >>"$WORK/leader"
  start_agent c1 127.0.0.21 0; wait_http 127.0.0.21
  until [ "$(curl -s http://127.0.0.21:8500/v1/agent/members | grep -o '"Status":1' | wc -l)" = 4 ]; do sleep 0.05; done
  sleep 5 # idle, for the RSS reading
  grep VmRSS /proc/$PID_s1/status | awk '{print $2/1024}' >>"$WORK/rss_server"
  grep VmRSS /proc/$PID_c1/status | awk '{print $2/1024}' >>"$WORK/rss_client"

  leader=$(leader_of 127.0.0.11); lip=${leader%:*}
  case $lip in 127.0.0.11) fpid=$PID_s2; fname=s2; other=127.0.0.13;; *) fpid=$PID_s1; fname=s1; other=$lip;; esac
  t0=$(now); kill -9 "$fpid"
  until [ "$(member_status "$other" "$fname")" = 4 ]; do sleep 0.05; done
  t_failed=$(since "$t0"); echo "$t_failed" >>"$WORK/failed"

  # Restart the follower so that killing the leader leaves a quorum.
  start_agent "$fname" "127.0.0.1${fname#s}" 1
  eval "ip_f=127.0.0.1${fname#s}"
  until [ "$(member_status "$other" "$fname")" = 1 ]; do sleep 0.05; done
  until [ "$(curl -s "http://$ip_f:8500/v1/status/leader" 2>/dev/null | tr -d '"')" = "$leader" ]; do sleep 0.05; done
  case $lip in 127.0.0.11) lpid=$PID_s1;; 127.0.0.12) lpid=$PID_s2;; *) lpid=$PID_s3;; esac
  survivor=127.0.0.21
  t0=$(now); kill -9 "$lpid"
  until l=$(leader_of $survivor); [ -n "$l" ] && [ "$l" != "$leader" ]; do sleep 0.02; done
  t_new=$(since "$t0"); echo "$t_new" >>"$WORK/newleader"
  echo "run $run: leader ${t_leader}s, follower failed ${t_failed}s, new leader ${t_new}s, RSS server $(tail -1 "$WORK/rss_server") MiB client $(tail -1 "$WORK/rss_client") MiB"
  stop_all
done
echo "medians of $RUNS runs: leader $(median <"$WORK/leader")s, failed $(median <"$WORK/failed")s, new leader $(median <"$WORK/newleader")s, idle RSS server $(median <"$WORK/rss_server") MiB, client $(median <"$WORK/rss_client") MiB; stripped binary $(( $(stat -c %s "$BIN") / 1048576 )) MiB"
