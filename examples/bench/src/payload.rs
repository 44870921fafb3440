//! Message bodies that carry their send time, so a receiver in the same process can
//! compute end-to-end latency.
//!
//! Layout (ASCII, so WebSocket frames stay text as browsers send them):
//! `<send ns, 20 digits> <publisher> <sequence> xxxx...` padded with `x` to the asked size.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Digits of the timestamp field.
const STAMP_DIGITS: usize = 20;

/// The process-wide clock origin all stamps count from.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Nanoseconds since the clock origin.
pub fn now_ns() -> u64 {
    u64::try_from(origin().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A body of at least `size` bytes stamped with the current time.
pub fn stamped(size: usize, publisher: usize, seq: u64) -> Bytes {
    let mut body = format!(
        "{:0width$} {publisher} {seq} ",
        now_ns(),
        width = STAMP_DIGITS
    )
    .into_bytes();
    if body.len() < size {
        body.resize(size, b'x');
    }
    Bytes::from(body)
}

/// The time since `body` was stamped, or `None` if it carries no stamp.
pub fn age(body: &[u8]) -> Option<Duration> {
    let sent = stamp_of(body)?;
    Some(Duration::from_nanos(now_ns().saturating_sub(sent)))
}

/// The stamp of `body`, in nanoseconds since the clock origin.
pub fn stamp_of(body: &[u8]) -> Option<u64> {
    let digits = body.get(..STAMP_DIGITS)?;
    digits.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.wrapping_mul(10).wrapping_add(u64::from(b - b'0')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_pad() {
        let before = now_ns();
        let body = stamped(128, 3, 42);
        assert_eq!(body.len(), 128);
        let stamp = stamp_of(&body).unwrap();
        assert!(stamp >= before && stamp <= now_ns());
        assert!(body.ends_with(b"xxx"));
        assert!(std::str::from_utf8(&body).unwrap().contains(" 3 42 "));
        // A size below the stamp's own length keeps the whole stamp.
        assert!(stamped(4, 0, 0).len() > 4);
        assert_eq!(stamp_of(b"hello"), None);
        assert_eq!(stamp_of(b"0000000000000000000x and more"), None);
        assert!(age(&body).is_some());
    }
}
