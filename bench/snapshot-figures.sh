#!/usr/bin/env bash
# Measures the snapshot figures of issue 14 with the real binary: a
# three-server DC on loopback (127.0.0.111-113, default ports), 1,000,000 KV
# entries of 100 bytes written through /v1/txn in batches of 64, then
# `snapshot save`, `snapshot inspect` and `snapshot restore` against the
# leader. Reports the archive's size, the save and restore times and the
# leader's peak RSS (VmHWM) against the data's size.
# Goals: save < 5 s, restore < 15 s, peak RSS < 2x the data.
# The leader's peak RSS is reset (/proc/PID/clear_refs) before the save and
# again before the restore, so each phase reports its own peak. Then the
# archive is restored again into a new, empty DC: its time, the leader's
# peak RSS without the old state beside the new, and when every server
# serves the restored keys.
# Usage, from the repository root: bench/snapshot-figures.sh [keys]
# (default 1000000). Needs curl and python3. Heavy: run it alone.
# PROFILE=DIR also saves CPU profiles of the leader during the save and the
# restore (DIR/save.pprof, DIR/restore.pprof; the agents run -enable-debug).
set -u
KEYS=${1:-1000000}
PROFILE=${PROFILE:-}
DEBUG=()
[[ -n $PROFILE ]] && { mkdir -p "$PROFILE" || exit 1; DEBUG=(-enable-debug); }
BIN=/tmp/meridian-snapshot-figures
go build -o "$BIN" ./cmd/meridian || exit 1
WORK=$(mktemp -d /tmp/meridian-snapshot.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# start_dc DIR starts a three-server DC with its data under DIR and waits
# for its leader: LIP, LPID and HTTP are the leader's address, process and
# HTTP address.
start_dc() {
  PIDS=()
  for i in 1 2 3; do
    ip=127.0.0.11$i
    "$BIN" agent -server -bootstrap-expect 3 -datacenter dc1 -node s$i -bind $ip -client $ip \
      -data-dir "$1/s$i" "${DEBUG[@]}" -retry-join 127.0.0.111 -retry-join 127.0.0.112 -retry-join 127.0.0.113 \
      >"$1/s$i.log" 2>&1 & PIDS+=($!)
  done
  local t0=$SECONDS
  until leader=$(curl -s -m 1 http://127.0.0.111:8500/v1/status/leader) && [[ $leader == \"*:*\" ]]; do
    (( SECONDS - t0 > 60 )) && { echo "no leader within 60 s"; exit 1; }; sleep 0.2
  done
  LIP=${leader#\"}; LIP=${LIP%%:*}
  LPID=${PIDS[$(( ${LIP##*.} - 111 ))]}
  HTTP=$LIP:8500
  echo "leader $LIP (pid $LPID)"
}
stop_dc() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  PIDS=()
}
mkdir "$WORK/first" "$WORK/fresh"
start_dc "$WORK/first"

# Writes with keep-alive connections, 4 in parallel.
t0=$(date +%s.%N)
python3 - "$HTTP" "$KEYS" <<'PY' || exit 1
import base64, http.client, json, sys, threading, time
host, keys = sys.argv[1], int(sys.argv[2])
val = base64.b64encode(b"v" * 100).decode()
batches = [range(i, min(i + 64, keys)) for i in range(0, keys, 64)]
errs = []
def work(part):
    # A batch that meets a leader election (503) is sent again, up to
    # 20 times: the writes are idempotent sets.
    c = http.client.HTTPConnection(host, timeout=60)
    for b in part:
        body = json.dumps([{"KV": {"Verb": "set", "Key": "bench/%08d" % k, "Value": val}} for k in b])
        for attempt in range(20):
            c.request("PUT", "/v1/txn", body, {"Content-Type": "application/json"})
            r = c.getresponse(); data = r.read()
            if r.status < 500:
                break
            time.sleep(0.5)
        if r.status != 200:
            errs.append("%d %s" % (r.status, data[:200])); return
ts = [threading.Thread(target=work, args=(batches[i::4],)) for i in range(4)]
for t in ts: t.start()
for t in ts: t.join()
if errs:
    print("write failed:", errs[0]); sys.exit(1)
PY
t1=$(date +%s.%N)
echo "wrote $KEYS keys of 100 bytes in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b-a}') s"

DATA=$(( KEYS * (100 + 13) ))  # value plus key bytes
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b-a}'; }
hwm() { awk '/VmHWM/ {print $2}' /proc/$LPID/status; }
# cpu: the leader's CPU seconds so far (user + system), which the machine's
# load does not change the way it changes wall times.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' /proc/$LPID/stat; }
# profile NAME: a CPU profile of the leader for the next 60 s, in the
# background (stopped by the EXIT trap if the phase ends first).
PROF=""
profile() {
  [[ -z $PROFILE ]] && return
  curl -s -o "$PROFILE/$1.pprof" "http://$HTTP/debug/pprof/profile?seconds=${PROFILE_SECONDS:-40}" & PROF=$!
}
RSS0=$(awk '/VmRSS/ {print $2}' /proc/$LPID/status)
echo 5 >/proc/$LPID/clear_refs
profile save
c0=$(cpu)
t0=$(date +%s.%N)
"$BIN" snapshot save -http-addr "$HTTP" "$WORK/backup.snap" >"$WORK/save.out" 2>&1 || { cat "$WORK/save.out"; exit 1; }
t1=$(date +%s.%N)
SAVE=$(ms "$t0" "$t1")
SAVECPU=$(ms "$c0" "$(cpu)")
SAVEHWM=$(hwm)
[[ -n $PROF ]] && wait $PROF
SIZE=$(stat -c %s "$WORK/backup.snap")
"$BIN" snapshot inspect "$WORK/backup.snap" || exit 1
RSS1=$(awk '/VmRSS/ {print $2}' /proc/$LPID/status)
echo 5 >/proc/$LPID/clear_refs
profile restore
c0=$(cpu)
t0=$(date +%s.%N)
"$BIN" snapshot restore -http-addr "$HTTP" "$WORK/backup.snap" || exit 1
t1=$(date +%s.%N)
RESTORE=$(ms "$t0" "$t1")
RESTORECPU=$(ms "$c0" "$(cpu)")
n=$(curl -s "http://$HTTP/v1/kv/bench/?keys" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
HWM=$(hwm)
[[ -n $PROF ]] && wait $PROF

# The same archive restored into a new, empty DC: the restore's own peak
# without the old state beside it, and the time until both followers
# serve the restored keys (stale reads of the last key).
LOGLINE=$(grep -h "restored snapshot" "$WORK"/first/s*.log | tail -1)
stop_dc
start_dc "$WORK/fresh"
FPID=$LPID
echo 5 >/proc/$LPID/clear_refs
c0=$(cpu)
LAST=$(printf 'bench/%08d' $(( KEYS - 1 )))
t0=$(date +%s.%N)
"$BIN" snapshot restore -http-addr "$HTTP" "$WORK/backup.snap" >/dev/null || exit 1
t1=$(date +%s.%N)
FRESH=$(ms "$t0" "$t1")
FRESHCPU=$(ms "$c0" "$(cpu)")
FHWM=$(hwm)
for ip in 127.0.0.111 127.0.0.112 127.0.0.113; do
  until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$ip:8500/v1/kv/$LAST?stale") == 200 ]]; do
    (( $(date +%s) - ${t0%.*} > 300 )) && { echo "$ip has not got the restored state in 300 s"; exit 1; }; sleep 0.1
  done
done
t2=$(date +%s.%N)
FOLLOW=$(ms "$t0" "$t2")
FRSS=$(awk '/VmRSS/ {print $2}' /proc/$LPID/status)
FLOGLINE=$(grep -h "restored snapshot" "$WORK"/fresh/s*.log | tail -1)
ratio() { awk -v h="$1" -v d="$DATA" 'BEGIN {printf "%.2f", h*1024/d}'; }
echo "RESULT keys=$KEYS after-restore=$n archive=$SIZE bytes ($(( SIZE / 1048576 )) MiB) save=${SAVE}s (leader CPU ${SAVECPU}s) restore=${RESTORE}s (leader CPU ${RESTORECPU}s) data=$(( DATA / 1024 )) kB"
echo "leader's log of the restore: $LOGLINE"
echo "leader's log of the fresh restore: $FLOGLINE"
echo "RESULT fresh DC: restore=${FRESH}s (leader CPU ${FRESHCPU}s), every server serves it after ${FOLLOW}s, leader peak during restore=${FHWM} kB ($(ratio "$FHWM")x), RSS after=${FRSS} kB ($(ratio "$FRSS")x)"
echo "RESULT leader RSS before save=${RSS0} kB, peak during save=${SAVEHWM} kB ($(ratio "$SAVEHWM")x), RSS before restore=${RSS1} kB, peak during restore=${HWM} kB ($(ratio "$HWM")x); load $(cut -d' ' -f1-3 /proc/loadavg)"
