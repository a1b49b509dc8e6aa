#!/usr/bin/env bash
# `make serve-demo`: serves an exported digits model on a free port, asks it for its status,
# its signatures and the classes of three images, then stops it with SIGTERM.
#   scripts/serve-demo.sh build/tdl build/digits.tdlm
set -euo pipefail
TDL=${1:-build/tdl}
MODEL=${2:-build/digits.tdlm}
LOG=$(mktemp)
"$TDL" serve "$MODEL" --name digits --port 0 >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 100); do grep -q "http://" "$LOG" && break; sleep 0.1; done
cat "$LOG"
URL=$(grep -o "http://[0-9.:]*" "$LOG" | head -1)
echo "\$ curl $URL/v1/models/digits"
curl -s "$URL/v1/models/digits"; echo
# Three images of the data set, pixels scaled to 0..1 as in training.
BODY=$(python3 -c '
import csv, gzip, json
rows = list(csv.reader(gzip.open("examples/data/digits.csv.gz", "rt")))[:3]
print(json.dumps({"instances": [[float(v) / 16 for v in r[:64]] for r in rows]}))
labels = [int(float(r[64])) for r in rows]
import sys; print("labels of the three images:", labels, file=sys.stderr)')
echo "\$ curl -d '{\"instances\": [[0.0, 0.0, 0.3125, ...], ...]}' $URL/v1/models/digits:predict"
curl -s -d "$BODY" "$URL/v1/models/digits:predict" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["predictions"]:
    print("class", p["classes"], "with probability", round(max(p["probs"]), 4))'
kill -TERM $PID
wait $PID || true
trap - EXIT
tail -2 "$LOG"
rm -f "$LOG"
