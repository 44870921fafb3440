#!/usr/bin/env bash
# The dispatch load: the dispatch server (release build) with DEVICES simulated devices
# reporting once a second over TCP and BOARDS operator boards over WebSocket, for SECONDS
# measured seconds after a warm-up. Prints the simulator's summary (fault-alert latency,
# offline-alert delay, command round trip, the server's CPU and memory) and its JSON line.
#
#   scripts/bench-dispatch.sh                   # 5,000 devices, 20 boards, 60 s
#   DEVICES=500 BOARDS=2 SECONDS_=20 scripts/bench-dispatch.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEVICES=${DEVICES:-5000}
BOARDS=${BOARDS:-20}
SECONDS_=${SECONDS_:-60}
FAULTS=${FAULTS:-0.001}       # per device per report: 5 faults/s at 5,000 devices
SILENCES=${SILENCES:-0.0002}  # 1 device/s hangs at 5,000 devices
COMMANDS=${COMMANDS:-10}      # gate commands per second from the first board
HTTP=127.0.0.1:18081
TCP=127.0.0.1:16626

cargo build --release -p dispatch
# Each device and board holds a socket on both sides.
ulimit -n "$(ulimit -Hn)"

./target/release/dispatch --http "$HTTP" --tcp "$TCP" --fleet "$DEVICES" >/tmp/dispatch-bench-server.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
# Wait for the port rather than a fixed time.
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/${TCP%:*}/${TCP#*:}") 2>/dev/null && break
    sleep 0.1
done

./target/release/dispatch simulate --tcp "$TCP" --ws "ws://$HTTP/ws" \
    --devices "$DEVICES" --boards "$BOARDS" --faults "$FAULTS" --silences "$SILENCES" \
    --calls 0.001 --payments 0.001 --commands "$COMMANDS" \
    --duration "$SECONDS_" --warmup 10 --server-pid "$server"
