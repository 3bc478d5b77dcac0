#!/usr/bin/env bash
# Measures the snapshot figures of issue 14 with the real binary: a
# three-server DC on loopback (127.0.0.111-113, default ports), 1,000,000 KV
# entries of 100 bytes written through /v1/txn in batches of 64, then
# `snapshot save`, `snapshot inspect` and `snapshot restore` against the
# leader. Reports the archive's size, the save and restore times and the
# leader's peak RSS (VmHWM) against the data's size.
# Goals: save < 5 s, restore < 15 s, peak RSS < 2x the data.
# Usage, from the repository root: bench/snapshot-figures.sh [keys]
# (default 1000000). Needs curl and python3. Heavy: run it alone.
set -u
KEYS=${1:-1000000}
BIN=/tmp/meridian-snapshot-figures
go build -o "$BIN" ./cmd/meridian || exit 1
WORK=$(mktemp -d /tmp/meridian-snapshot.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

for i in 1 2 3; do
  ip=127.0.0.11$i
  "$BIN" agent -server -bootstrap-expect 3 -datacenter dc1 -node s$i -bind $ip -client $ip \
    -data-dir "$WORK/s$i" -retry-join 127.0.0.111 -retry-join 127.0.0.112 -retry-join 127.0.0.113 \
    >"$WORK/s$i.log" 2>&1 & PIDS+=($!)
done
t0=$SECONDS
until leader=$(curl -s -m 1 http://127.0.0.111:8500/v1/status/leader) && [[ $leader == \"*:*\" ]]; do
  (( SECONDS - t0 > 60 )) && { echo "no leader within 60 s"; exit 1; }; sleep 0.2
done
LIP=${leader#\"}; LIP=${LIP%%:*}
LPID=${PIDS[$(( ${LIP##*.} - 111 ))]}
HTTP=$LIP:8500
echo "leader $LIP (pid $LPID)"

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
t0=$(date +%s.%N)
"$BIN" snapshot save -http-addr "$HTTP" "$WORK/backup.snap" >"$WORK/save.out" 2>&1 || { cat "$WORK/save.out"; exit 1; }
t1=$(date +%s.%N)
SAVE=$(ms "$t0" "$t1")
SIZE=$(stat -c %s "$WORK/backup.snap")
"$BIN" snapshot inspect "$WORK/backup.snap" || exit 1
t0=$(date +%s.%N)
"$BIN" snapshot restore -http-addr "$HTTP" "$WORK/backup.snap" || exit 1
t1=$(date +%s.%N)
RESTORE=$(ms "$t0" "$t1")
n=$(curl -s "http://$HTTP/v1/kv/bench/?keys" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
HWM=$(awk '/VmHWM/ {print $2}' /proc/$LPID/status)
echo "RESULT keys=$KEYS after-restore=$n archive=$SIZE bytes ($(( SIZE / 1048576 )) MiB) save=${SAVE}s restore=${RESTORE}s leader VmHWM=${HWM} kB data=$(( DATA / 1024 )) kB ratio=$(awk -v h="$HWM" -v d="$DATA" 'BEGIN {printf "%.2f", h*1024/d}')x"
