#!/usr/bin/env bash
# Runs the same load generator (examples/bench), with the same parameters, against our
# `broker` example and against RabbitMQ Web-STOMP, alternating (ours, rabbitmq, ours,
# rabbitmq, ...), then prints a table of both with ratios and draws latency percentiles.
#
#   scripts/bench-compare.sh [--restart-rabbitmq] [--scenarios "1 2 3 4 5"]
#
# Scenarios (see BENCHMARKS.md):
#   1   1 publisher -> 100 subscribers, 128 B, WebSocket, max rate: delivered msgs/s
#   1t  the same over raw TCP (ours :61623, RabbitMQ's STOMP plugin :61613)
#   2   1,000 subscribers at an offered 200 msg/s (200k deliveries/s), WS: loss and p99
#   3   10 publishers -> 10 subscribers, 1 KiB, WS, max rate: throughput
#   4   idle WS sessions with one subscription each: server RSS per session
#   5   /app handler round trip vs plain publish (ours only, in-process server)
#   6   scenario 1 through the relay: two `broker --relay` nodes on the local RabbitMQ, the
#       publisher on one, the subscribers split over both; next to ours alone (simple
#       broker) and RabbitMQ Web-STOMP alone (labels relay, simple, rabbitmq); the broker
#       connections each node holds go to relay-connections.txt
#
# Environment: DURATION (10s), IDLE_SESSIONS (10000), ROUNDS (1: each scenario runs
# ours then rabbitmq ROUNDS times), OUT (target/bench-compare/<time>), RABBIT_NOFILE
# (65536, capped at this shell's hard limit: RabbitMQ's descriptor limit after
# --restart-rabbitmq, which restarts the node only if its limit is lower).
#
# Loopback only; every run is bounded in time. Needs: cargo, RabbitMQ 3.x installed and
# running (rabbitmqctl), root or a hard descriptor limit of at least 2 x IDLE_SESSIONS.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-10s}
IDLE_SESSIONS=${IDLE_SESSIONS:-10000}
ROUNDS=${ROUNDS:-1}
RABBIT_NOFILE=${RABBIT_NOFILE:-65536}
OUT=${OUT:-target/bench-compare/$(date +%Y%m%d-%H%M%S)}
SCENARIOS="1 1t 2 3 4 5 6"
RESTART_RABBITMQ=0

while [[ $# -gt 0 ]]; do
    case $1 in
        --restart-rabbitmq) RESTART_RABBITMQ=1 ;;
        --scenarios) SCENARIOS=$2; shift ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# Ours listens beside RabbitMQ, whose STOMP plugin takes 61613.
OURS_WS=127.0.0.1:61624
OURS_TCP=127.0.0.1:61623
# Scenario 6's two relaying nodes.
NODE_A_WS=127.0.0.1:61644
NODE_A_TCP=127.0.0.1:61643
NODE_B_WS=127.0.0.1:61654
NODE_B_TCP=127.0.0.1:61653
RABBIT_WS=ws://127.0.0.1:15674/ws
RABBIT_TCP=tcp://127.0.0.1:61613
# RabbitMQ's STOMP adapter reads `host` as the virtual host; `/` is the default vhost.
RABBIT_AUTH=(--login guest --passcode guest --vhost /)

mkdir -p "$OUT/bin"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
log() { echo "== $*" >&2; }

# --- build -------------------------------------------------------------------------------
log "building release binaries"
cargo build --release --quiet -p broker -p bench
# Private copies: a rebuild elsewhere in the tree must not swap binaries mid-run.
cp target/release/broker target/release/bench "$OUT/bin/"
BENCH=$OUT/bin/bench
BROKER=$OUT/bin/broker

# --- descriptor limits -------------------------------------------------------------------
# Each idle session costs one descriptor in the generator and one in the server; they are
# separate processes, children of this shell, each needing IDLE_SESSIONS and some spare.
need=$((IDLE_SESSIONS + 4096))
if [[ $(ulimit -Hn) != unlimited && $(ulimit -Hn) -lt $need ]]; then
    ulimit -Hn "$need" 2>/dev/null ||
        log "cannot raise the hard descriptor limit to $need (it stays $(ulimit -Hn))"
fi
ulimit -n "$(ulimit -Hn)"
log "descriptor limit for ours and the generator: $(ulimit -n)"

# --- RabbitMQ ----------------------------------------------------------------------------
rabbit_pid() { rabbitmqctl status 2>/dev/null | awk '/^OS PID:/ {print $3}'; }

wait_port() { # wait_port HOST:PORT SECONDS
    local host=${1%:*} port=${1##*:} i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

if ! rabbitmqctl status >/dev/null 2>&1; then
    echo "RabbitMQ is not running (start it with: rabbitmq-server -detached)" >&2
    exit 1
fi
if [[ $RESTART_RABBITMQ == 1 ]]; then
    limit=$(awk '/^Max open files/ {print $4}' "/proc/$(rabbit_pid)/limits")
    want=$RABBIT_NOFILE
    [[ $(ulimit -Hn) != unlimited && $(ulimit -Hn) -lt $want ]] && want=$(ulimit -Hn)
    if [[ $limit -lt $want ]]; then
        log "restarting RabbitMQ with a descriptor limit of $want (was $limit)"
        rabbitmqctl stop >/dev/null
        # Debian's /usr/sbin/rabbitmq-server switches user with `su`, whose pam_limits
        # resets the soft limit (to 1024 here); setpriv switches without PAM, so the
        # limit set here is the one the node gets.
        if [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] && command -v setpriv >/dev/null; then
            (cd /var/lib/rabbitmq && ulimit -n "$want" &&
                HOME=/var/lib/rabbitmq USER=rabbitmq LOGNAME=rabbitmq \
                setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
                /usr/lib/rabbitmq/bin/rabbitmq-server -detached) ||
                rabbitmq-server -detached
        else
            (ulimit -n "$want"; rabbitmq-server -detached)
        fi
        rabbitmqctl await_startup --timeout 120 >/dev/null
    fi
fi
# Idempotent; takes effect at once on a running node.
rabbitmq-plugins enable rabbitmq_stomp rabbitmq_web_stomp >/dev/null
wait_port 127.0.0.1:15674 30 || { echo "RabbitMQ Web-STOMP is not listening on 15674" >&2; exit 1; }
wait_port 127.0.0.1:61613 30 || { echo "RabbitMQ STOMP is not listening on 61613" >&2; exit 1; }
RPID=$(rabbit_pid)
rabbit_limit=$(awk '/^Max open files/ {print $4}' "/proc/$RPID/limits")
log "RabbitMQ pid $RPID, descriptor limit $rabbit_limit"
if [[ $rabbit_limit -lt $((IDLE_SESSIONS + 2000)) ]]; then
    log "WARNING: RabbitMQ's descriptor limit ($rabbit_limit) is below what scenarios 2 and 4 need;"
    log "         RabbitMQ refuses connections past ~90% of it. Re-run with --restart-rabbitmq,"
    log "         or raise it for good: 'rabbitmq - nofile $RABBIT_NOFILE' in"
    log "         /etc/security/limits.d/rabbitmq.conf (su's pam_limits), LimitNOFILE= under systemd."
fi

# --- our broker --------------------------------------------------------------------------
OURS_PID=
start_ours() {
    stop_ours
    # Every load-generator connection comes from 127.0.0.1: lift the per-address limits.
    RUST_LOG=warn "$BROKER" --ws "$OURS_WS" --tcp "$OURS_TCP" \
        --max-connections-per-address 1000000 --max-connects-per-second 1000000 \
        >>"$OUT/broker.log" 2>&1 &
    OURS_PID=$!
    wait_port "$OURS_WS" 10 && wait_port "$OURS_TCP" 10 || { echo "broker did not start" >&2; exit 1; }
}
stop_ours() {
    if [[ -n $OURS_PID ]]; then
        kill "$OURS_PID" 2>/dev/null || true
        wait "$OURS_PID" 2>/dev/null || true
        OURS_PID=
    fi
}
# Scenario 6: two nodes relaying to the local RabbitMQ.
NODE_PIDS=()
start_nodes() {
    local ws tcp
    for pair in "$NODE_A_WS $NODE_A_TCP" "$NODE_B_WS $NODE_B_TCP"; do
        read -r ws tcp <<<"$pair"
        RUST_LOG=warn "$BROKER" --ws "$ws" --tcp "$tcp" --relay stomp://127.0.0.1:61613 \
            >>"$OUT/relay-nodes.log" 2>&1 &
        NODE_PIDS+=($!)
        wait_port "$ws" 10 && wait_port "$tcp" 10 || { echo "relay node did not start" >&2; exit 1; }
    done
}
stop_nodes() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    NODE_PIDS=()
}
# Established connections from each node to RabbitMQ's STOMP port, sampled mid-run.
count_relay_connections() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do
        echo "node pid $pid: $(ss -Htnp state established '( dport = :61613 )' | grep -c "pid=$pid,") broker connections"
    done >>"$OUT/relay-connections.txt"
}
trap 'stop_ours; stop_nodes' EXIT

# run NAME LABEL ARGS...: one generator run; its JSON summary goes to results.jsonl.
run() {
    local name=$1 label=$2
    shift 2
    log "scenario $name: $label"
    local out="$OUT/$name-$label.txt"
    if "$BENCH" "$@" --label "$label" --scenario "$name" >"$out" 2>"$OUT/$name-$label.err"; then
        tail -n 1 "$out" >>"$RESULTS"
        grep -v '^{' "$out" >&2 || true
    else
        log "scenario $name ($label) failed: $(tail -n 3 "$OUT/$name-$label.err")"
    fi
    sleep 2
}

pair() { # pair NAME MODE OURS_URL RABBIT_URL ARGS...
    local name=$1 mode=$2 ours=$3 rabbit=$4
    shift 4
    local r
    for ((r = 0; r < ROUNDS; r++)); do
        run "$name" ours "$mode" --url "$ours" "$@"
        run "$name" rabbitmq "$mode" --url "$rabbit" "${RABBIT_AUTH[@]}" "$@"
    done
}

{
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "memory: $(awk '/^MemTotal/ {print $2, $3}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "rabbitmq: $(rabbitmqctl version 2>/dev/null)"
    echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"

start_ours
for s in $SCENARIOS; do
    case $s in
        1) pair 1-fanout-1x100-ws fanout "ws://$OURS_WS/ws" "$RABBIT_WS" \
               -n 100 -p 1 -s 128 -d "$DURATION" ;;
        1t) pair 1t-fanout-1x100-tcp fanout "tcp://$OURS_TCP" "$RABBIT_TCP" \
               -n 100 -p 1 -s 128 -d "$DURATION" ;;
        2) pair 2-fanout-1000subs-200mps fanout "ws://$OURS_WS/ws" "$RABBIT_WS" \
               -n 1000 -p 1 -s 128 -r 200 -d "$DURATION" --connect-concurrency 100 ;;
        3) pair 3-fanout-10x10-1KiB fanout "ws://$OURS_WS/ws" "$RABBIT_WS" \
               -n 10 -p 10 -s 1024 -d "$DURATION" ;;
        4)
            # A fresh server process, so its RSS before is a baseline, not leftovers.
            start_ours
            for ((r = 0; r < ROUNDS; r++)); do
                run 4-idle-ws-sessions ours connections --url "ws://$OURS_WS/ws" \
                    -n "$IDLE_SESSIONS" --server-pid "$OURS_PID" --connect-concurrency 256
                run 4-idle-ws-sessions rabbitmq connections --url "$RABBIT_WS" "${RABBIT_AUTH[@]}" \
                    -n "$IDLE_SESSIONS" --server-pid "$RPID" --connect-concurrency 256
            done
            ;;
        5) run 5-handler-round-trip ours handler --transport ws -d "$DURATION" ;;
        6)
            start_nodes
            for ((r = 0; r < ROUNDS; r++)); do
                run 6-relay-fanout-1x100-ws simple fanout --url "ws://$OURS_WS/ws" \
                    -n 100 -p 1 -s 128 -d "$DURATION"
                (sleep 5; count_relay_connections) &
                run 6-relay-fanout-1x100-ws relay fanout --url "ws://$NODE_A_WS/ws" \
                    --subscribe-url "ws://$NODE_B_WS/ws" -n 100 -p 1 -s 128 -d "$DURATION"
                run 6-relay-fanout-1x100-ws rabbitmq fanout --url "$RABBIT_WS" "${RABBIT_AUTH[@]}" \
                    -n 100 -p 1 -s 128 -d "$DURATION"
            done
            stop_nodes
            ;;
        *) log "unknown scenario $s" ;;
    esac
done
stop_ours

log "results in $OUT"
"$BENCH" report "$RESULTS" --plot "$OUT/latency.png" | tee "$OUT/report.md"
if grep -q '"label":"relay"' "$RESULTS"; then
    for other in simple rabbitmq; do
        "$BENCH" report "$RESULTS" --ours relay --other "$other" | tee -a "$OUT/report.md"
    done
    cat "$OUT/relay-connections.txt"
fi
