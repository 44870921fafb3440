//! Limits and timings, in one place with documented defaults.

use std::time::Duration;

/// Every limit the server enforces on a peer. Defaults follow Spring's where Spring has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame, head and body together: 64 KiB, Spring's default message size limit.
    pub max_frame_size: usize,
    /// Most headers in one frame.
    pub max_headers: usize,
    /// Longest header line (name, colon and value), in bytes.
    pub max_header_line: usize,
    /// Most subscriptions one session may hold.
    pub max_subscriptions: usize,
    /// Most frames a session may hold in open transactions, awaiting COMMIT.
    pub max_pending_frames: usize,
    /// Bytes queued for one session's socket before it counts as a slow consumer:
    /// 512 KiB, Spring's default send buffer size limit.
    pub max_outbound_bytes: usize,
    /// Most segments in a subscription's destination pattern (`/topic/a.*` has three).
    pub max_pattern_segments: usize,
    /// Most `*` and `**` segments in a subscription's destination pattern.
    pub max_pattern_wildcards: usize,
    /// Longest a frame may take to arrive once its first byte has: a peer trickling a frame
    /// is dropped whatever its heart-beats say. 30 s carries a 64 KiB frame at 2.2 KB/s.
    pub frame_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 64 * 1024,
            max_headers: 64,
            max_header_line: 8 * 1024,
            max_subscriptions: 1024,
            max_pending_frames: 1024,
            max_outbound_bytes: 512 * 1024,
            max_pattern_segments: 32,
            max_pattern_wildcards: 8,
            frame_timeout: Duration::from_secs(30),
        }
    }
}

/// What happens to a session whose outbound queue exceeds [`Limits::max_outbound_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SlowConsumerPolicy {
    /// Send an ERROR frame and close the connection (the default).
    #[default]
    Disconnect,
    /// Drop the message that does not fit and keep the session.
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
