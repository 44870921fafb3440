//! Frame parser and encoder throughput: typical ~200-byte SEND/MESSAGE frames and frames
//! with 64 KiB bodies.
//!
//! `cargo bench -p stomp-runtime --bench frame`. Throughput is reported in bytes; frames/s
//! is the inverse of the time per frame (each iteration handles one frame, or a batch whose
//! size is in the benchmark name).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use stomp_runtime::broker::BrokerMessage;
use stomp_runtime::config::Limits;
use stomp_runtime::frame::{Command, Frame, Parsed, Parser, Version};

/// Frames parsed per iteration in the batch benchmark: a read that brings many small
/// frames at once, as under load.
const BATCH: usize = 100;

/// A SEND frame as a browser client sends it: about 200 bytes on the wire.
fn typical_send() -> Frame {
    Frame::new(Command::Send)
        .header("destination", "/topic/rooms.lobby")
        .header("content-type", "application/json")
        .header("receipt", "rcpt-42")
        .body(Bytes::from(
            r#"{"user":"alice","text":"hello everyone, the meeting moved to room 4","room":"lobby","sent":1718000000000,"id":42}"#,
        ))
}

/// A frame with a 64 KiB body (a document, an image thumbnail).
fn large_send() -> Frame {
    Frame::new(Command::Send)
        .header("destination", "/queue/uploads")
        .header("content-type", "application/octet-stream")
        .body(Bytes::from(vec![b'a'; 64 * 1024]))
}

/// Limits that admit the 64 KiB body (the default caps the whole frame at 64 KiB).
fn limits() -> Limits {
    Limits {
        max_frame_size: 1024 * 1024,
        ..Limits::default()
    }
}

fn parse_all(mut buf: BytesMut, expect: usize) {
    let mut parser = Parser::new(&limits());
    parser.set_version(Version::V1_2);
    let mut n = 0;
    while let Some(parsed) = parser.parse(&mut buf).expect("valid frames") {
        if let Parsed::Frame(f) = parsed {
            black_box(f);
            n += 1;
        }
    }
    assert_eq!(n, expect);
}

fn parser(c: &mut Criterion) {
    let small = typical_send().encode(Version::V1_2);
    let large = large_send().encode(Version::V1_2);
    let batch: Bytes = std::iter::repeat_n(&small[..], BATCH)
        .flatten()
        .copied()
        .collect::<Vec<u8>>()
        .into();
    let mut g = c.benchmark_group("parse");
    for (name, wire, frames) in [
        (format!("send_{}B", small.len()), &small, 1),
        (format!("send_{}B_x{BATCH}", small.len()), &batch, BATCH),
        (format!("send_64KiB_body_{}B", large.len()), &large, 1),
    ] {
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                // The copy into the read buffer is the socket's work, not the parser's.
                || BytesMut::from(&wire[..]),
                |buf| parse_all(buf, frames),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn encoder(c: &mut Criterion) {
    let small = typical_send();
    let large = large_send();
    let mut g = c.benchmark_group("encode");
    for (name, frame) in [("send_typical", &small), ("send_64KiB_body", &large)] {
        let len = frame.encode(Version::V1_2).len();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("{name}_{len}B"), |b| {
            b.iter(|| black_box(frame.encode(Version::V1_2)))
        });
    }
    // What the broker does once per published message: the MESSAGE part every subscriber
    // shares (destination, message-id, headers, body), from the SEND frame.
    for (name, frame) in [
        ("message_shared_typical", &small),
        ("message_shared_64KiB", &large),
    ] {
        let len = BrokerMessage::from_send(frame, "/topic/rooms.lobby")
            .shared_encoding(Version::V1_2)
            .len();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("{name}_{len}B"), |b| {
            b.iter(|| {
                let m = BrokerMessage::from_send(frame, "/topic/rooms.lobby");
                black_box(m.shared_encoding(Version::V1_2).len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parser, encoder);
criterion_main!(benches);
