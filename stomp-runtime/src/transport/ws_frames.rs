//! Watches WebSocket frame headers (RFC 6455, section 5.2) as the upgraded connection's
//! bytes stream in, before any WebSocket decoder buffers them.
//!
//! actix-http's decoder checks a frame's size only once the whole frame has arrived, so a
//! header announcing 2^62 bytes would be buffered as fast as the peer sends. This guard
//! reads each header as it goes by and stops the stream at the first frame that would take
//! a message past the limit (fragments summed), or a control frame longer than 125 bytes,
//! before a byte of its payload is passed on. It keeps a few bytes of an oversized frame's
//! payload (unmasked) so that the session can answer the STOMP frame's `receipt`.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;

/// Payload bytes of an oversized frame kept to find its STOMP head.
const CAPTURE: usize = 16 * 1024;
/// RFC 6455, section 5.5: control frames carry at most 125 bytes.
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// Why the guard stopped the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tripped {
    /// A data message would exceed the limit.
    TooLarge {
        /// Bytes announced for the message so far (fragments summed).
        size: u64,
        /// The limit.
        max: usize,
        /// The start of the offending frame's payload, unmasked.
        head: Vec<u8>,
    },
    /// A control frame longer than 125 bytes.
    ControlTooLong(u64),
}

/// What the guard has seen; shared with the transport that reads the decoded stream.
#[derive(Debug, Default)]
pub(crate) struct FrameWatch {
    tripped: Option<Tripped>,
    /// Whether a frame or a fragmented message has started and not finished.
    in_progress: bool,
}

impl FrameWatch {
    /// Takes the reason the stream stopped, if the guard stopped it.
    pub(crate) fn take_tripped(&mut self) -> Option<Tripped> {
        self.tripped.take()
    }

    /// Whether bytes of an unfinished WebSocket frame, or fragments of an unfinished
    /// message, have arrived.
    pub(crate) fn in_progress(&self) -> bool {
        self.in_progress
    }
}

struct Capture {
    mask: Option<[u8; 4]>,
    size: u64,
    /// Payload bytes the frame announced that may still be captured.
    left: u64,
    head: Vec<u8>,
}

/// The payload stream, checked frame by frame.
pub(crate) struct GuardedPayload {
    inner: Payload,
    watch: Rc<RefCell<FrameWatch>>,
    max_message: usize,
    /// The header of the frame being read.
    header: [u8; 14],
    header_len: usize,
    /// Payload bytes of the current frame still to pass.
    remaining: u64,
    /// Bytes announced for the current data message, fragments summed.
    message: u64,
    /// A data message has started and its last fragment has not.
    fragmented: bool,
    capture: Option<Capture>,
    /// Bytes before the offending frame were just passed on.
    passed_before_trip: bool,
    done: bool,
}

impl GuardedPayload {
    pub(crate) fn new(inner: Payload, max_message: usize) -> (Self, Rc<RefCell<FrameWatch>>) {
        let watch = Rc::new(RefCell::new(FrameWatch::default()));
        (
            Self {
                inner,
                watch: watch.clone(),
                max_message,
                header: [0; 14],
                header_len: 0,
                remaining: 0,
                message: 0,
                fragmented: false,
                capture: None,
                passed_before_trip: false,
                done: false,
            },
            watch,
        )
    }

    /// The header's full length once its first two bytes are known.
    fn header_size(&self) -> Option<usize> {
        if self.header_len < 2 {
            return None;
        }
        let ext = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        Some(2 + ext + mask)
    }

    /// Reads a complete header: the payload length, the mask, and whether the frame is
    /// over a limit (then the capture starts, or the guard trips).
    fn header_done(&mut self, size: usize) -> Result<(), Tripped> {
        let h = &self.header[..size];
        let opcode = h[0] & 0x0f;
        let (len, at) = match h[1] & 0x7f {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&h[2..10]);
                (u64::from_be_bytes(b), 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = (h[1] & 0x80 != 0).then(|| [h[at], h[at + 1], h[at + 2], h[at + 3]]);
        self.header_len = 0;
        if opcode & 0x08 != 0 {
            if len > MAX_CONTROL_PAYLOAD {
                return Err(Tripped::ControlTooLong(len));
            }
        } else {
            self.fragmented = h[0] & 0x80 == 0;
            // Text and binary start a message; continuation (0) adds to it.
            self.message = if opcode == 0 {
                self.message.saturating_add(len)
            } else {
                len
            };
            if self.message > self.max_message as u64 {
                self.capture = Some(Capture {
                    mask,
                    size: self.message,
                    left: len.min(CAPTURE as u64),
                    head: Vec::new(),
                });
                return Ok(());
            }
        }
        self.remaining = len;
        Ok(())
    }

    /// Scans `chunk`; returns how many leading bytes may pass on, and whether the guard
    /// tripped after them.
    fn scan(&mut self, chunk: &[u8]) -> (usize, Option<Tripped>) {
        let mut pos = 0;
        let mut frame_start = 0;
        while pos < chunk.len() {
            if let Some(c) = &mut self.capture {
                let take = (chunk.len() - pos).min(c.left as usize);
                for &b in &chunk[pos..pos + take] {
                    let i = c.head.len();
                    c.head.push(b ^ c.mask.map_or(0, |m| m[i % 4]));
                }
                c.left -= take as u64;
                pos += take;
                let head_done = c.head.windows(2).any(|w| w == b"\n\n")
                    || c.head.windows(3).any(|w| w == b"\n\r\n");
                if c.left == 0 || head_done {
                    let c = self.capture.take().expect("capture is active");
                    return (
                        frame_start,
                        Some(Tripped::TooLarge {
                            size: c.size,
                            max: self.max_message,
                            head: c.head,
                        }),
                    );
                }
                continue;
            }
            if self.remaining > 0 {
                let take = (self.remaining.min((chunk.len() - pos) as u64)) as usize;
                self.remaining -= take as u64;
                pos += take;
                continue;
            }
            if self.header_len == 0 {
                frame_start = pos;
            }
            self.header[self.header_len] = chunk[pos];
            self.header_len += 1;
            pos += 1;
            if let Some(size) = self.header_size()
                && self.header_len == size
                && let Err(t) = self.header_done(size)
            {
                return (frame_start, Some(t));
            }
        }
        let passing = if self.capture.is_some() {
            frame_start
        } else {
            chunk.len()
        };
        (passing, None)
    }
}

impl Stream for GuardedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.watch.borrow().tripped.is_some() {
                if this.passed_before_trip {
                    // Once, so the decoder handles the frames before the offending one
                    // (it stops reading at `Pending`) before it meets the error.
                    this.passed_before_trip = false;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                this.done = true;
                return Poll::Ready(Some(Err(PayloadError::Overflow)));
            }
            let chunk = match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(c))) => c,
                Poll::Ready(None) if this.capture.is_some() => {
                    // The peer stopped mid-payload of an oversized frame: report it with
                    // what arrived.
                    let c = this.capture.take().expect("capture is active");
                    this.watch.borrow_mut().tripped = Some(Tripped::TooLarge {
                        size: c.size,
                        max: this.max_message,
                        head: c.head,
                    });
                    continue;
                }
                other => return other,
            };
            let (passing, tripped) = this.scan(&chunk);
            let tripped_now = tripped.is_some();
            {
                let mut watch = this.watch.borrow_mut();
                watch.in_progress = this.header_len > 0
                    || this.remaining > 0
                    || this.capture.is_some()
                    || this.fragmented;
                if tripped.is_some() {
                    watch.tripped = tripped;
                }
            }
            if passing > 0 {
                this.passed_before_trip = tripped_now;
                return Poll::Ready(Some(Ok(chunk.slice(..passing))));
            }
            // Nothing to pass (a capture in progress, or a trip at the chunk's start):
            // read on, or report the trip.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// A masked client frame header.
    fn header(opcode: u8, fin: bool, len: u64) -> Vec<u8> {
        let mut h = vec![opcode | if fin { 0x80 } else { 0 }];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=65535 => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    fn masked(payload: &[u8]) -> Vec<u8> {
        let m = [1u8, 2, 3, 4];
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ m[i % 4])
            .collect()
    }

    fn payload_of(chunks: Vec<Vec<u8>>) -> Payload {
        let stream = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, PayloadError>(Bytes::from(c))),
        );
        Payload::Stream {
            payload: Box::pin(stream),
        }
    }

    async fn run(chunks: Vec<Vec<u8>>, max: usize) -> (Vec<u8>, bool, Option<Tripped>) {
        let (mut guarded, watch) = GuardedPayload::new(payload_of(chunks), max);
        let mut passed = Vec::new();
        let mut failed = false;
        while let Some(item) = guarded.next().await {
            match item {
                Ok(b) => passed.extend_from_slice(&b),
                Err(_) => failed = true,
            }
        }
        let tripped = watch.borrow_mut().take_tripped();
        (passed, failed, tripped)
    }

    #[tokio::test]
    async fn frames_within_the_limit_pass_untouched_however_split() {
        let mut wire = header(0x1, true, 5);
        wire.extend(masked(b"hello"));
        wire.extend(header(0x9, true, 0));
        wire.extend(header(0x2, false, 3));
        wire.extend(masked(b"abc"));
        wire.extend(header(0x0, true, 4));
        wire.extend(masked(b"defg"));
        for cut in 0..wire.len() {
            let (passed, failed, tripped) =
                run(vec![wire[..cut].to_vec(), wire[cut..].to_vec()], 7).await;
            assert_eq!(passed, wire, "cut at {cut}");
            assert!(!failed && tripped.is_none());
        }
    }

    #[tokio::test]
    async fn a_huge_announced_frame_stops_the_stream_before_its_payload() {
        let mut first = header(0x1, true, 2);
        first.extend(masked(b"ok"));
        let mut wire = first.clone();
        wire.extend(header(0x1, true, 1 << 62));
        wire.extend(masked(b"SEND\nreceipt:r7\n\nxxxx"));
        let (passed, failed, tripped) = run(vec![wire], 1024).await;
        assert_eq!(passed, first, "only the frame before passes");
        assert!(failed);
        let Some(Tripped::TooLarge { size, max, head }) = tripped else {
            panic!("{tripped:?}")
        };
        assert_eq!((size, max), (1 << 62, 1024));
        assert!(head.starts_with(b"SEND\nreceipt:r7\n\n"), "{head:?}");
    }

    #[tokio::test]
    async fn fragments_are_summed_and_long_control_frames_refused() {
        let mut wire = header(0x2, false, 600);
        wire.extend(masked(&[b'a'; 600]));
        wire.extend(header(0x0, true, 600));
        let (passed, failed, tripped) = run(vec![wire.clone()], 1000).await;
        assert_eq!(passed.len(), 2 + 2 + 4 + 600);
        assert!(failed);
        assert!(matches!(
            tripped,
            Some(Tripped::TooLarge { size: 1200, .. })
        ));

        let (_, failed, tripped) = run(vec![header(0x9, true, 126)], 1000).await;
        assert!(failed);
        assert_eq!(tripped, Some(Tripped::ControlTooLong(126)));
    }

    #[tokio::test]
    async fn an_unfinished_frame_counts_as_in_progress() {
        let mut wire = header(0x1, true, 10);
        wire.extend(masked(b"abc"));
        let (mut guarded, watch) = GuardedPayload::new(payload_of(vec![wire]), 100);
        assert!(guarded.next().await.is_some());
        assert!(watch.borrow().in_progress());
    }
}
