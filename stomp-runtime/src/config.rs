//! Limits and timings, in one place with documented defaults.

use std::time::Duration;

/// Every limit the server enforces on a peer, and on all peers together. Defaults follow
/// Spring's where Spring has one. Each limit, when hit, gets the peer an ERROR frame saying
/// which (or, for a refused connection, an ERROR before the close) and the server a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame, head and body together: 64 KiB, Spring's default message size limit.
    /// Over WebSocket, a message may be 1 KiB larger (heart-beats beside a frame); the limit
    /// applies as each WebSocket frame header arrives, before its payload is buffered.
    pub max_frame_size: usize,
    /// Most headers in one frame: 64.
    pub max_headers: usize,
    /// Longest header line (name, colon and value), in bytes: 8 KiB.
    pub max_header_line: usize,
    /// Most bytes in one frame's head (command and header lines together): 32 KiB.
    pub max_head_size: usize,
    /// Most subscriptions one session may hold: 1,024.
    pub max_subscriptions: usize,
    /// Most unacknowledged messages one `client` or `client-individual` subscription may
    /// hold, its prefetch window: 1,024. A SUBSCRIBE `prefetch-count` header (RabbitMQ's)
    /// asks for a smaller window. A queue keeps further messages until ACKs open the window;
    /// a topic subscriber at its window gets an ERROR and is disconnected.
    pub max_unacked: usize,
    /// Most transactions one session may have open at once: 16.
    pub max_transactions: usize,
    /// Most frames a session may hold in its open transactions together, awaiting COMMIT:
    /// 1,024 (so no one transaction holds more).
    pub max_pending_frames: usize,
    /// Most bytes (bodies and headers) a session may hold in its open transactions
    /// together: 4 MiB.
    pub max_pending_bytes: usize,
    /// Bytes queued for one session's socket above which it is behind: 512 KiB, Spring's
    /// default send buffer size limit. A session that stays behind for
    /// [`Limits::slow_consumer_grace`] is a slow consumer (see [`SlowConsumerPolicy`]); one
    /// that met a burst and catches up is not.
    pub max_outbound_bytes: usize,
    /// Bytes one session's socket queue may hold at all, however briefly (a burst): 4 MiB.
    /// Past it, the slow-consumer policy applies at once.
    pub max_outbound_burst: usize,
    /// How long a session's queue may stay above [`Limits::max_outbound_bytes`]: 10 s,
    /// Spring's default send time limit.
    pub slow_consumer_grace: Duration,
    /// Most segments in a subscription's destination pattern (`/topic/a.*` has three): 32.
    pub max_pattern_segments: usize,
    /// Most `*` and `**` segments in a subscription's destination pattern: 8.
    pub max_pattern_wildcards: usize,
    /// Longest a frame may take to arrive once its first byte has: a peer trickling a frame
    /// is dropped whatever its heart-beats say. 30 s carries a 64 KiB frame at 2.2 KB/s.
    pub frame_timeout: Duration,
    /// Messages one queue keeps while no consumer takes them: 10,000.
    pub max_queue_backlog: usize,
    /// Queues holding a backlog at once: 10,000. A SEND that would start another is refused.
    pub max_queues: usize,
    /// Bytes held in all queue backlogs together: 256 MiB. A SEND over it is refused with an
    /// ERROR, never dropped.
    pub max_backlog_bytes: usize,
    /// Connections served at once, all transports together: 100,000.
    pub max_connections: usize,
    /// Connections from one remote address at once: 1,000.
    pub max_connections_per_address: usize,
    /// New connections (each brings its CONNECT) one remote address may open per second:
    /// 200.
    pub max_connects_per_second: usize,
    /// Bytes of client-created state (queued for sockets, unacknowledged, in open
    /// transactions, subscriptions, queue backlogs) the whole server may hold: 1 GiB.
    /// Past it, new work is refused with an ERROR.
    pub memory_budget: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 64 * 1024,
            max_headers: 64,
            max_header_line: 8 * 1024,
            max_head_size: 32 * 1024,
            max_subscriptions: 1024,
            max_unacked: 1024,
            max_transactions: 16,
            max_pending_frames: 1024,
            max_pending_bytes: 4 * 1024 * 1024,
            max_outbound_bytes: 512 * 1024,
            max_outbound_burst: 4 * 1024 * 1024,
            slow_consumer_grace: Duration::from_secs(10),
            max_pattern_segments: 32,
            max_pattern_wildcards: 8,
            frame_timeout: Duration::from_secs(30),
            max_queue_backlog: 10_000,
            max_queues: 10_000,
            max_backlog_bytes: 256 * 1024 * 1024,
            max_connections: 100_000,
            max_connections_per_address: 1_000,
            max_connects_per_second: 200,
            memory_budget: crate::budget::DEFAULT_MEMORY_BUDGET,
        }
    }
}

/// What happens to a slow consumer: a session whose outbound queue stays above
/// [`Limits::max_outbound_bytes`] for [`Limits::slow_consumer_grace`], or would pass
/// [`Limits::max_outbound_burst`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SlowConsumerPolicy {
    /// Send an ERROR frame and close the connection (the default).
    #[default]
    Disconnect,
    /// Drop each message that would take the queue past [`Limits::max_outbound_bytes`] and
    /// keep the session.
    DropMessage,
}

/// Heart-beat intervals the server offers, in the CONNECTED `heart-beat` header's terms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeartBeat {
    /// Smallest interval at which the server can send beats (0: never).
    pub send: Duration,
    /// Interval at which the server wants to receive beats (0: never).
    pub receive: Duration,
    /// Extra silence tolerated before a peer counts as dead, as a multiple of the interval.
    pub grace: f64,
}

impl Default for HeartBeat {
    fn default() -> Self {
        Self {
            send: Duration::from_secs(10),
            receive: Duration::from_secs(10),
            grace: 1.5,
        }
    }
}

/// Negotiates one direction of heart-beating (STOMP 1.2 "Heart-beating"): zero when either
/// side says zero, else the larger of the two.
pub fn negotiate_interval(sender_can: u64, receiver_wants: u64) -> u64 {
    if sender_can == 0 || receiver_wants == 0 {
        0
    } else {
        sender_can.max(receiver_wants)
    }
}

/// Parses a `heart-beat` header value `cx,cy`.
pub fn parse_heartbeat(value: &str) -> Option<(u64, u64)> {
    let (x, y) = value.split_once(',')?;
    Some((x.trim().parse().ok()?, y.trim().parse().ok()?))
}
