//! Feeds arbitrary bytes, cut into arbitrary pieces, to the STOMP frame parser.
//!
//! Input layout (so seeds stay readable): byte 0 picks the version (bits 0-1: 1.0, 1.1,
//! 1.2, 1.2) and the limits (bit 2: small ones, so every limit is reachable); byte 1 is a
//! count `k` (mod 33) of piece lengths that follow, one byte each; the rest is the stream,
//! fed in pieces of those lengths and then whatever remains.
//!
//! Checked: no panic; the pieces give the same frames and heart-beats as the whole stream,
//! and an error exactly when it does (only the limit tripped may differ, since limits are
//! checked as bytes arrive); every escaped 1.2 frame re-encodes to itself.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use stomp_runtime::config::Limits;
use stomp_runtime::frame::{FrameError, Parsed, Parser, Version};

struct Outcome {
    items: Vec<Parsed>,
    error: Option<FrameError>,
    rest: BytesMut,
}

fn feed<'a>(version: Version, limits: &Limits, pieces: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut parser = Parser::new(limits);
    parser.set_version(version);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        items,
                        error: Some(error),
                        rest: buf,
                    };
                }
            }
        }
    }
    Outcome {
        items,
        error: None,
        rest: buf,
    }
}

fn is_limit(e: &FrameError) -> bool {
    matches!(
        e,
        FrameError::FrameTooLarge { .. }
            | FrameError::HeaderLineTooLong { .. }
            | FrameError::TooManyHeaders { .. }
    )
}

fuzz_target!(|data: &[u8]| {
    let [control, count, rest @ ..] = data else {
        return;
    };
    let version =
        [Version::V1_0, Version::V1_1, Version::V1_2, Version::V1_2][usize::from(control & 0b11)];
    let limits = if control & 0b100 != 0 {
        Limits {
            max_frame_size: 96,
            max_headers: 4,
            max_header_line: 24,
            ..Limits::default()
        }
    } else {
        Limits::default()
    };
    let k = usize::from(*count % 33).min(rest.len());
    let (lengths, stream) = rest.split_at(k);

    let mut pieces = Vec::with_capacity(k + 1);
    let mut start = 0;
    for &len in lengths {
        let end = (start + usize::from(len)).min(stream.len());
        pieces.push(&stream[start..end]);
        start = end;
    }
    pieces.push(&stream[start..]);

    let whole = feed(version, &limits, std::iter::once(stream));
    let chunked = feed(version, &limits, pieces.into_iter());

    assert_eq!(chunked.items, whole.items);
    match (&whole.error, &chunked.error) {
        (None, None) => assert_eq!(chunked.rest, whole.rest),
        (Some(w), Some(c)) => {
            if !is_limit(c) {
                assert_eq!(c, w);
            }
            if is_limit(w) {
                assert!(is_limit(c), "{w:?} whole, {c:?} chunked");
            }
        }
        (w, c) => panic!("whole: {w:?}, chunked: {c:?}"),
    }

    if version == Version::V1_2 {
        for item in &whole.items {
            let Parsed::Frame(frame) = item else { continue };
            if !frame.command.escapes_headers() {
                continue;
            }
            let mut expected = frame.clone();
            if !frame.body.is_empty() && !frame.headers.contains("content-length") {
                expected
                    .headers
                    .push("content-length", frame.body.len().to_string());
            }
            let wire = frame.encode(Version::V1_2);
            // No limits: escaping and the added `content-length` may grow the frame.
            let unlimited = Limits {
                max_frame_size: usize::MAX,
                max_headers: usize::MAX,
                max_header_line: usize::MAX,
                ..Limits::default()
            };
            let again = feed(Version::V1_2, &unlimited, std::iter::once(&wire[..]));
            assert_eq!(again.error, None);
            assert_eq!(again.items, [Parsed::Frame(expected)]);
            assert!(again.rest.is_empty());
        }
    }
});
