//! Hostile input against a real server, while a well-behaved control session keeps
//! receiving.
//!
//! Every attack runs through [`Harness::attack`], which checks, besides the attack's own
//! expected ERROR and close:
//! - the control session: a publisher sends to it every 100 ms throughout; every message
//!   arrives, in order, each within [`CONTROL_LATENCY`] of being sent;
//! - the server's memory: the test process's resident set (server and clients share it)
//!   grows by less than the case's bound while the attack runs, sampled every 10 ms;
//! - release: the server's connection count returns to what it was before the attack.
//!
//! | case | attack | expected |
//! |---|---|---|
//! | ws_huge_header | WebSocket header announcing 2^62 bytes, then 64 MiB streamed | ERROR `frame too large`, close 1009, < 24 MiB |
//! | ws_oversized_send | one 1 MiB SEND in one WebSocket message, `receipt` | ERROR `frame too large` with `receipt-id`, close 1009 |
//! | ws_fragments | fragments summing past the limit | ERROR `frame too large`, close 1009 |
//! | ws_long_ping | ping of 126 bytes | ERROR `websocket protocol error`, close 1002 |
//! | ws_bad_utf8 | text message that is not UTF-8 | ERROR `websocket protocol error`, close 1007 |
//! | ws_unmasked | unmasked client frame | ERROR `websocket protocol error`, close 1002 |
//! | ws_bad_opcode | opcode 3 | ERROR `websocket protocol error`, close 1002 |
//! | ws_rsv_bits | reserved bits set | ERROR `websocket protocol error`, close 1002 |

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use stomp_runtime::StompServer;
use stomp_runtime::config::Limits;
use stomp_runtime::frame::{Command, Frame, Parsed, Parser};
use stomp_tests::raw_ws::{RawWs, WsSeen, opcode};
use stomp_tests::{RawPeer, TestServer, WAIT, start};

/// The longest a control message may take from SEND to MESSAGE during an attack: far above
/// a healthy server's milliseconds, far below a stalled one's minutes.
const CONTROL_LATENCY: Duration = Duration::from_secs(3);

/// How often the control publisher sends.
const CONTROL_EVERY: Duration = Duration::from_millis(100);

const MIB: usize = 1024 * 1024;

/// What the control subscriber saw.
#[derive(Default)]
struct ControlLog {
    /// Send time of each message, by sequence number.
    sent: Vec<Instant>,
    /// The next sequence number expected.
    next: usize,
    /// The slowest delivery since the last reset.
    worst: Duration,
    /// What went wrong (out of order, a stray frame), if anything.
    broken: Option<String>,
}

/// A server and its control session.
struct Harness {
    server: TestServer,
    log: Arc<Mutex<ControlLog>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The test process's resident set, in bytes (Linux `/proc/self/statm`).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm has a resident field");
    pages * 4096
}

impl Harness {
    async fn new(stomp: StompServer) -> Self {
        let server = start(stomp).await;
        let log = Arc::new(Mutex::new(ControlLog::default()));
        let mut sub = RawPeer::connect(server.tcp_addr).await;
        sub.handshake().await;
        sub.send("SUBSCRIBE\nid:c\ndestination:/topic/control\nreceipt:c0\n\n\0")
            .await;
        assert_eq!(sub.frame().await.get("receipt-id"), Some("c0"));
        let mut publ = RawPeer::connect(server.tcp_addr).await;
        publ.handshake().await;
        let reader_log = log.clone();
        let reader = tokio::spawn(async move {
            loop {
                let frame = sub.frame().await;
                let now = Instant::now();
                let mut log = reader_log.lock();
                let seq: Option<usize> = std::str::from_utf8(&frame.body)
                    .ok()
                    .and_then(|b| b.parse().ok());
                match seq {
                    Some(seq) if frame.command == Command::Message && seq == log.next => {
                        let took = now - log.sent[seq];
                        log.worst = log.worst.max(took);
                        log.next += 1;
                    }
                    _ => {
                        log.broken
                            .get_or_insert_with(|| format!("unexpected frame {frame:?}"));
                    }
                }
            }
        });
        let writer_log = log.clone();
        let writer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(CONTROL_EVERY);
            loop {
                tick.tick().await;
                let seq = {
                    let mut log = writer_log.lock();
                    log.sent.push(Instant::now());
                    log.sent.len() - 1
                };
                publ.send(format!("SEND\ndestination:/topic/control\n\n{seq}\0"))
                    .await;
            }
        });
        let harness = Self {
            server,
            log,
            tasks: vec![reader, writer],
        };
        harness.control_caught_up().await;
        harness
    }

    /// Waits until the control subscriber has every message sent so far (and one more).
    async fn control_caught_up(&self) {
        let target = self.log.lock().sent.len() + 1;
        tokio::time::timeout(WAIT, async {
            loop {
                {
                    let log = self.log.lock();
                    if let Some(broken) = &log.broken {
                        panic!("control session: {broken}");
                    }
                    if log.next >= target {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the control session keeps receiving");
    }

    /// Runs `attack`, checking the control session, memory and release around it.
    async fn attack<F: std::future::Future<Output = ()>>(
        &self,
        name: &str,
        memory_bound: usize,
        attack: F,
    ) {
        self.control_caught_up().await;
        let connections = self.server.stomp.usage().connections;
        self.log.lock().worst = Duration::ZERO;
        let baseline = rss();
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(baseline));
        let sampler_peak = peak.clone();
        let sampler = tokio::spawn(async move {
            loop {
                sampler_peak.fetch_max(rss(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        attack.await;
        // Released: the attacker's connection is gone from the server.
        tokio::time::timeout(WAIT, async {
            while self.server.stomp.usage().connections > connections {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: the server never released the attacker"));
        self.control_caught_up().await;
        sampler.abort();
        let grew = peak
            .load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(baseline);
        assert!(
            grew < memory_bound,
            "{name}: resident memory grew by {} KiB, bound {} KiB",
            grew / 1024,
            memory_bound / 1024
        );
        let worst = self.log.lock().worst;
        assert!(
            worst < CONTROL_LATENCY,
            "{name}: a control message took {worst:?}"
        );
    }
}

/// Small limits, so that each is reached with little traffic.
fn limits() -> Limits {
    Limits {
        max_frame_size: 64 * 1024,
        ..Limits::default()
    }
}

async fn harness(limits: Limits) -> Harness {
    let stomp = StompServer::builder()
        .limits(limits)
        .heartbeat(0, 0)
        .build()
        .expect("valid configuration");
    Harness::new(stomp).await
}

/// Parses the STOMP frames of WebSocket messages.
fn stomp_frames(messages: &[Vec<u8>]) -> Vec<Frame> {
    let mut parser = Parser::new(&Limits {
        max_frame_size: 16 * MIB,
        ..Limits::default()
    });
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for m in messages {
        buf.extend_from_slice(m);
        while let Some(item) = parser.parse(&mut buf).expect("the server's frames parse") {
            if let Parsed::Frame(f) = item {
                out.push(f);
            }
        }
    }
    out
}

/// A WebSocket peer that has sent CONNECT and read CONNECTED.
async fn ws_connected(server: &TestServer) -> RawWs {
    let mut ws = RawWs::connect(server.http_addr).await;
    ws.text("CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
        .await;
    let connected = match ws.next().await {
        WsSeen::Data(d) => d,
        other => panic!("no CONNECTED: {other:?}"),
    };
    assert_eq!(stomp_frames(&[connected])[0].command, Command::Connected);
    ws
}

/// Expects the ERROR frame (the last STOMP frame) and the close code.
async fn expect_ws_error(ws: &mut RawWs, message: &str, receipt: Option<&str>, code: u16) -> Frame {
    let (data, close) = ws.until_closed().await;
    let frames = stomp_frames(&data);
    let error = frames
        .last()
        .cloned()
        .expect("an ERROR frame before the close");
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(error.get("message"), Some(message), "{error:?}");
    assert_eq!(error.get("receipt-id"), receipt, "{error:?}");
    assert_eq!(close, Some(code), "close code after {error:?}");
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_protocol_errors_get_an_error_frame_and_a_close_code() {
    let h = harness(limits()).await;

    h.attack("ws_huge_header", 24 * MIB, async {
        let mut ws = ws_connected(&h.server).await;
        ws.frame(
            0x80 | opcode::TEXT,
            1 << 62,
            true,
            b"SEND\ndestination:/topic/x\n\n",
        )
        .await;
        // Keep streaming what the header announced; a server buffering it would grow
        // by all of it. The server stops reading, so the writes may stall: bounded.
        let chunk = vec![b'x'; MIB];
        let stream = async {
            for _ in 0..64 {
                ws.write(&chunk).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), stream).await;
        let error = expect_ws_error(&mut ws, "frame too large", None, 1009).await;
        let body = String::from_utf8_lossy(&error.body).into_owned();
        assert!(body.contains("exceeds the limit of 66560 bytes"), "{body}");
    })
    .await;

    h.attack("ws_oversized_send", 16 * MIB, async {
        let mut ws = ws_connected(&h.server).await;
        let mut frame = b"SEND\ndestination:/topic/x\nreceipt:big-1\n\n".to_vec();
        frame.resize(frame.len() + MIB, b'y');
        frame.push(0);
        ws.frame(0x80 | opcode::TEXT, frame.len() as u64, true, &frame)
            .await;
        expect_ws_error(&mut ws, "frame too large", Some("big-1"), 1009).await;
    })
    .await;

    h.attack("ws_fragments", 16 * MIB, async {
        let mut ws = ws_connected(&h.server).await;
        let part = vec![b'z'; 40 * 1024];
        ws.frame(opcode::TEXT, part.len() as u64, true, &part).await;
        ws.frame(opcode::CONTINUATION, part.len() as u64, true, &part)
            .await;
        expect_ws_error(&mut ws, "frame too large", None, 1009).await;
    })
    .await;

    for (name, first, declared, masked, payload, code) in [
        (
            "ws_long_ping",
            0x80 | opcode::PING,
            126,
            true,
            &[b'p'; 126][..],
            1002,
        ),
        (
            "ws_bad_utf8",
            0x80 | opcode::TEXT,
            2,
            true,
            &b"\xff\xfe"[..],
            1007,
        ),
        (
            "ws_unmasked",
            0x80 | opcode::TEXT,
            2,
            false,
            &b"\n\n"[..],
            1002,
        ),
        ("ws_bad_opcode", 0x80 | 0x3, 2, true, &b"ab"[..], 1002),
        (
            "ws_rsv_bits",
            0x80 | 0x40 | opcode::TEXT,
            1,
            true,
            &b"\n"[..],
            1002,
        ),
    ] {
        h.attack(name, 16 * MIB, async {
            let mut ws = ws_connected(&h.server).await;
            ws.frame(first, declared, masked, payload).await;
            expect_ws_error(&mut ws, "websocket protocol error", None, code).await;
        })
        .await;
    }
}
