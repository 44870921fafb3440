#!/usr/bin/env bash
# SockJS next to native WebSocket on the `broker` example (which serves both on /ws):
# fan-out delivered/s (1 -> 100, 128 B, max rate, 10 s) and server RSS per idle session
# (5,000 sessions, one subscription each, a fresh broker per transport). Appends the bench's
# JSON summaries to examples/bench/results/sockjs.jsonl (or $OUT).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-examples/bench/results/sockjs.jsonl}
SESSIONS=${SESSIONS:-5000}
ulimit -n "$(ulimit -Hn)"
cargo build --release -p broker -p bench
B=./target/release/broker
G=./target/release/bench
BPID=
start() {
    # Every load-generator connection comes from 127.0.0.1: lift the per-address limits.
    $B --ws 127.0.0.1:61624 --tcp 127.0.0.1:61623 \
        --max-connections-per-address 1000000 --max-connects-per-second 1000000 >/dev/null 2>&1 &
    BPID=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null http://127.0.0.1:61624/ws/info && return
        sleep 0.1
    done
    echo "broker did not start" >&2
    exit 1
}
stop() {
    kill "$BPID"
    wait "$BPID" 2>/dev/null || true
}
trap '[[ -n $BPID ]] && kill "$BPID" 2>/dev/null || true' EXIT
start
for url in ws://127.0.0.1:61624/ws http://127.0.0.1:61624/ws; do
    $G fanout --url "$url" -n 100 -p 1 -s 128 -d 10s --label ours --scenario "fanout $url" | tail -1 >>"$OUT"
done
stop
for url in ws://127.0.0.1:61624/ws http://127.0.0.1:61624/ws; do
    start
    $G connections --url "$url" -n "$SESSIONS" --server-pid "$BPID" --connect-concurrency 256 \
        --label ours --scenario "idle $url" | tail -1 >>"$OUT"
    stop
done
