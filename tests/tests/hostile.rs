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
//! | pattern_backtracking | a pattern of 8 `**` and a 1,500-segment destination | RECEIPT at once; a 9th wildcard gets ERROR `invalid destination pattern` |
//! | many_patterns | 10 sessions × 1,000 distinct patterns, 2,000 unrelated publishes | all answered; < 64 MiB; budget given back |
//! | never_acks_queue | client-ack consumer never ACKs a 1,000-message queue | gets 100 (its window; 5 with `prefetch-count:5`), the rest go to others |
//! | never_acks_topic | client-ack topic subscriber never ACKs | ERROR `too many unacknowledged messages` after 100 |
//! | many_queues | 64 KiB SENDs to ever new queues | ERROR `message not accepted` (too many queues) at the 21st |
//! | backlog_bytes | 64 KiB SENDs to one queue | ERROR `message not accepted` (backlogs full) at 4 MiB; < 32 MiB |
//! | begin_flood | BEGINs with 4 KiB names | ERROR `too many transactions` at the 17th |
//! | transaction_bytes | 60 KiB SENDs in one transaction | ERROR `transaction too large` at 4 MiB; < 32 MiB |
//! | subscriptions | 1,025 SUBSCRIBEs with 4 KiB ids | ERROR `too many subscriptions`; < 48 MiB |
//! | trickle | a frame written one byte per 50 ms | ERROR `frame timeout` after 1 s |
//! | half_frame | half a frame, then silence (heart-beats off) | ERROR `frame timeout` after 1 s |
//! | stopped_reader_tcp / _ws | a subscriber that never reads, flooded | cut off (slow consumer) within its 1 s grace; < 64 MiB |
//! | burst | nine 64 KiB SENDs in one write to 10 fast subscribers | all receive all; none cut off |
//! | headers_at_limits | 64 headers, a 64 KiB frame; then 65 headers | accepted; then ERROR `malformed frame` |
//! | v10_injection | an escaped LF in a forwarded header, to a 1.0 subscriber | no injected header, body intact |
//! | nul_header | NUL in a header value | ERROR `malformed frame` |
//! | connection_flood | 25 connections, limit 20 per address | the extra ones get ERROR `too many connections` |
//! | connect_rate | 60 connections in a burst, limit 40 per second | ERROR `too many connection attempts` |
//! | memory_budget | sessions each within their limits, together past an 8 MiB budget | ERROR `memory budget exhausted`; use stays near the budget |

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use stomp_runtime::StompServer;
use stomp_runtime::config::Limits;
use stomp_runtime::frame::{Command, Frame, Parsed, Parser};
use stomp_tests::raw_ws::{RawWs, WsSeen, opcode};
use stomp_tests::{RawPeer, Seen, TestServer, WAIT, start};

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

/// One harness at a time in this process: resident memory is the whole process's, so
/// attacks must not overlap.
static SERIAL: std::sync::LazyLock<Arc<tokio::sync::Mutex<()>>> =
    std::sync::LazyLock::new(Default::default);

/// A server and its control session.
struct Harness {
    server: TestServer,
    log: Arc<Mutex<ControlLog>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _serial: tokio::sync::OwnedMutexGuard<()>,
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
        let serial = SERIAL.clone().lock_owned().await;
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
            _serial: serial,
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
        let budget_before = self.server.stomp.usage().memory_used;
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
        // Given back: what clients hold of the memory budget is what it was, give or take
        // the control session's traffic.
        tokio::time::timeout(WAIT, async {
            while self.server.stomp.usage().memory_used > budget_before + 64 * 1024 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{name}: {} bytes of the memory budget still held, {budget_before} before",
                self.server.stomp.usage().memory_used
            )
        });
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
        eprintln!(
            "{name}: resident memory +{} KiB (bound {} KiB), slowest control message {worst:?}",
            grew / 1024,
            memory_bound / 1024
        );
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

/// A raw TCP peer that has sent CONNECT (1.2) and read CONNECTED.
async fn peer(server: &TestServer) -> RawPeer {
    let mut p = RawPeer::connect(server.tcp_addr).await;
    p.handshake().await;
    p
}

/// Sends `frame` (which asks for receipt `id`) and waits for that RECEIPT, collecting the
/// MESSAGEs that arrive before it.
async fn with_receipt(p: &mut RawPeer, frame: &str, id: &str) -> Vec<Frame> {
    p.send(frame).await;
    let mut messages = Vec::new();
    loop {
        let f = p.frame().await;
        match f.command {
            Command::Receipt if f.get("receipt-id") == Some(id) => return messages,
            Command::Message => messages.push(f),
            _ => panic!("waiting for RECEIPT {id}: {f:?}"),
        }
    }
}

/// Reads until the connection closes; the last frame must be an ERROR with `message`.
async fn expect_error(p: &mut RawPeer, message: &str) -> Frame {
    let frames = p.until_closed().await;
    let error = frames
        .last()
        .cloned()
        .unwrap_or_else(|| panic!("closed without an ERROR (wanted `{message}`)"));
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(error.get("message"), Some(message), "{error:?}");
    error
}

/// Counts MESSAGEs on `p` until `n` arrived; panics on anything else.
async fn take_messages(p: &mut RawPeer, n: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    while out.len() < n {
        let f = p.frame().await;
        assert_eq!(f.command, Command::Message, "{f:?}");
        out.push(f);
    }
    out
}

fn body_text(f: &Frame) -> String {
    String::from_utf8_lossy(&f.body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_at_their_limits() {
    let h = harness(Limits::default()).await;
    let server = &h.server;

    h.attack("pattern_backtracking", 16 * MIB, async {
        let mut sub = peer(server).await;
        // Eight `**`, the limit: backtracking would try about 1,500^8 ways.
        let pattern = format!("/topic/atk{}/b", "/**/a".repeat(7));
        with_receipt(
            &mut sub,
            &format!("SUBSCRIBE\nid:p\ndestination:{pattern}/**\nreceipt:p\n\n\0"),
            "p",
        )
        .await;
        let mut publ = peer(server).await;
        let long = format!("/topic/atk{}", "/a".repeat(1500));
        with_receipt(
            &mut publ,
            &format!("SEND\ndestination:{long}\nreceipt:l\n\nmiss\0"),
            "l",
        )
        .await;
        with_receipt(
            &mut publ,
            &format!("SEND\ndestination:{long}/b\nreceipt:h\n\nhit\0"),
            "h",
        )
        .await;
        let got = take_messages(&mut sub, 1).await;
        assert_eq!(body_text(&got[0]), "hit");
        // One wildcard more than the limit is refused.
        sub.send(format!(
            "SUBSCRIBE\nid:q\ndestination:{pattern}/**/*\nreceipt:q\n\n\0"
        ))
        .await;
        let error = expect_error(&mut sub, "invalid destination pattern").await;
        assert_eq!(error.get("receipt-id"), Some("q"));
        assert!(
            body_text(&error).contains("exceed the limit of 8"),
            "{error:?}"
        );
    })
    .await;

    h.attack("many_patterns", 64 * MIB, async {
        let mut sessions = Vec::new();
        for s in 0..10 {
            let mut p = peer(server).await;
            let mut subscribes = String::new();
            for i in 0..1000 {
                subscribes.push_str(&format!(
                    "SUBSCRIBE\nid:{i}\ndestination:/topic/atk.{s}.{i}.*\n\n\0"
                ));
            }
            subscribes.push_str("SUBSCRIBE\nid:last\ndestination:/topic/atk.last\nreceipt:r\n\n\0");
            with_receipt(&mut p, &subscribes, "r").await;
            sessions.push(p);
        }
        let mut publ = peer(server).await;
        let mut sends = String::new();
        for i in 0..2000 {
            sends.push_str(&format!("SEND\ndestination:/topic/unrelated.{i}\n\nx\0"));
        }
        sends.push_str("SEND\ndestination:/topic/unrelated\nreceipt:done\n\nx\0");
        with_receipt(&mut publ, &sends, "done").await;
        // One of the patterns still works.
        with_receipt(
            &mut publ,
            "SEND\ndestination:/topic/atk.3.333.x\nreceipt:one\n\nfound\0",
            "one",
        )
        .await;
        let got = take_messages(&mut sessions[3], 1).await;
        assert_eq!(body_text(&got[0]), "found");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_messages_and_queue_backlogs_are_bounded() {
    let h = harness(Limits {
        max_unacked: 100,
        max_queues: 20,
        max_backlog_bytes: 4 * MIB,
        ..Limits::default()
    })
    .await;
    let server = &h.server;

    h.attack("never_acks_queue", 32 * MIB, async {
        let mut publ = peer(server).await;
        let body = "q".repeat(1024);
        let mut sends = String::new();
        for i in 0..1000 {
            sends.push_str(&format!(
                "SEND\ndestination:/queue/atk-acks\nseq:{i}\n\n{body}\0"
            ));
        }
        sends.push_str("SEND\ndestination:/topic/atk-none\nreceipt:filled\n\n\0");
        with_receipt(&mut publ, &sends, "filled").await;
        let mut greedy = peer(server).await;
        let early = with_receipt(
            &mut greedy,
            "SUBSCRIBE\nid:g\ndestination:/queue/atk-acks\nack:client\nreceipt:g\n\n\0",
            "g",
        )
        .await;
        let mut held = early.len();
        held += take_messages(&mut greedy, 100 - held).await.len();
        assert_eq!(held, 100, "the window");
        // Everything else goes to a consumer that acknowledges: the greedy one holds 100.
        let mut fair = peer(server).await;
        let early = with_receipt(
            &mut fair,
            "SUBSCRIBE\nid:f\ndestination:/queue/atk-acks\nreceipt:f\n\n\0",
            "f",
        )
        .await;
        let rest = early.len() + take_messages(&mut fair, 900 - early.len()).await.len();
        assert_eq!(rest, 900);
        // When the greedy consumer leaves, its 100 go to the other.
        drop(greedy);
        take_messages(&mut fair, 100).await;

        // A smaller window by RabbitMQ's header.
        let mut sends = String::new();
        for i in 0..50 {
            sends.push_str(&format!("SEND\ndestination:/queue/atk-pf\n\n{i}\0"));
        }
        sends.push_str("SEND\ndestination:/topic/atk-none\nreceipt:pf\n\n\0");
        with_receipt(&mut publ, &sends, "pf").await;
        let mut five = peer(server).await;
        let early = with_receipt(
            &mut five,
            "SUBSCRIBE\nid:p\ndestination:/queue/atk-pf\nack:client-individual\nprefetch-count:5\nreceipt:p\n\n\0",
            "p",
        )
        .await;
        let got = early.len() + take_messages(&mut five, 5 - early.len()).await.len();
        assert_eq!(got, 5);
        let early = with_receipt(
            &mut fair,
            "SUBSCRIBE\nid:pf\ndestination:/queue/atk-pf\nreceipt:pf2\n\n\0",
            "pf2",
        )
        .await;
        assert_eq!(early.len() + take_messages(&mut fair, 45 - early.len()).await.len(), 45);
        drop(five);
        take_messages(&mut fair, 5).await;
    })
    .await;

    h.attack("never_acks_topic", 16 * MIB, async {
        let mut sub = peer(server).await;
        with_receipt(
            &mut sub,
            "SUBSCRIBE\nid:t\ndestination:/topic/atk-unacked\nack:client\nreceipt:t\n\n\0",
            "t",
        )
        .await;
        let mut publ = peer(server).await;
        let mut sends = String::new();
        for i in 0..150 {
            sends.push_str(&format!("SEND\ndestination:/topic/atk-unacked\n\n{i}\0"));
        }
        sends.push_str("SEND\ndestination:/topic/atk-unacked\nreceipt:sent\n\nlast\0");
        publ.send(sends).await;
        let frames = sub.until_closed().await;
        let messages = frames
            .iter()
            .filter(|f| f.command == Command::Message)
            .count();
        assert_eq!(messages, 100, "the window, then the cut");
        let error = frames.last().expect("an ERROR");
        assert_eq!(
            error.get("message"),
            Some("too many unacknowledged messages")
        );
        assert_eq!(publ.frame().await.get("receipt-id"), Some("sent"));
    })
    .await;

    h.attack("many_queues", 32 * MIB, async {
        let mut publ = peer(server).await;
        let body = "m".repeat(64 * 1024 - 200);
        for i in 0..20 {
            with_receipt(
                &mut publ,
                &format!("SEND\ndestination:/queue/atk.q{i}\nreceipt:{i}\n\n{body}\0"),
                &i.to_string(),
            )
            .await;
        }
        publ.send(format!(
            "SEND\ndestination:/queue/atk.q20\nreceipt:over\n\n{body}\0"
        ))
        .await;
        let error = expect_error(&mut publ, "message not accepted").await;
        assert_eq!(error.get("receipt-id"), Some("over"));
        assert!(body_text(&error).contains("too many queues"), "{error:?}");
        // Drained by a pattern subscriber, the backlogs give their memory back.
        let mut drain = peer(server).await;
        let early = with_receipt(
            &mut drain,
            "SUBSCRIBE\nid:d\ndestination:/queue/atk.*\nreceipt:d\n\n\0",
            "d",
        )
        .await;
        take_messages(&mut drain, 20 - early.len()).await;
    })
    .await;

    h.attack("backlog_bytes", 32 * MIB, async {
        let mut publ = peer(server).await;
        let body = "b".repeat(64 * 1024 - 200);
        let mut accepted = 0;
        let error = loop {
            publ.send(format!(
                "SEND\ndestination:/queue/atk-bytes\nreceipt:{accepted}\n\n{body}\0"
            ))
            .await;
            let f = publ.frame().await;
            if f.command == Command::Error {
                break f;
            }
            accepted += 1;
            assert!(accepted <= 64, "4 MiB hold at most 64 such messages");
        };
        assert_eq!(
            error.get("message"),
            Some("message not accepted"),
            "{error:?}"
        );
        assert!(body_text(&error).contains("backlogs are full"), "{error:?}");
        assert!(accepted >= 60, "{accepted} accepted");
        let mut drain = peer(server).await;
        let early = with_receipt(
            &mut drain,
            "SUBSCRIBE\nid:d\ndestination:/queue/atk-bytes\nreceipt:d\n\n\0",
            "d",
        )
        .await;
        take_messages(&mut drain, accepted - early.len()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_and_subscriptions_are_bounded() {
    let h = harness(Limits::default()).await;
    let server = &h.server;

    h.attack("begin_flood", 16 * MIB, async {
        let mut p = peer(server).await;
        let name = "t".repeat(4000);
        for i in 0..16 {
            with_receipt(
                &mut p,
                &format!("BEGIN\ntransaction:{name}{i}\nreceipt:{i}\n\n\0"),
                &i.to_string(),
            )
            .await;
        }
        p.send(format!("BEGIN\ntransaction:{name}x\nreceipt:x\n\n\0"))
            .await;
        let error = expect_error(&mut p, "too many transactions").await;
        assert_eq!(error.get("receipt-id"), Some("x"));
    })
    .await;

    h.attack("transaction_bytes", 32 * MIB, async {
        let mut p = peer(server).await;
        with_receipt(&mut p, "BEGIN\ntransaction:t\nreceipt:b\n\n\0", "b").await;
        let body = "x".repeat(60 * 1024);
        let mut held = 0;
        let error = loop {
            p.send(format!(
                "SEND\ndestination:/topic/atk-tx\ntransaction:t\nreceipt:{held}\n\n{body}\0"
            ))
            .await;
            let f = p.frame().await;
            if f.command == Command::Error {
                break f;
            }
            held += 1;
            assert!(held <= 70, "4 MiB hold at most 69 such frames");
        };
        assert_eq!(error.get("message"), Some("transaction too large"));
        assert!(held >= 60, "{held} held");
    })
    .await;

    h.attack("subscriptions", 48 * MIB, async {
        let mut p = peer(server).await;
        let id = "s".repeat(4000);
        let mut subscribes = String::new();
        for i in 0..1024 {
            subscribes.push_str(&format!(
                "SUBSCRIBE\nid:{id}{i}\ndestination:/topic/atk-subs.{i}\n\n\0"
            ));
        }
        subscribes.push_str("UNSUBSCRIBE\nid:none\nreceipt:all\n\n\0");
        with_receipt(&mut p, &subscribes, "all").await;
        p.send(format!(
            "SUBSCRIBE\nid:{id}x\ndestination:/topic/atk-subs.x\nreceipt:x\n\n\0"
        ))
        .await;
        let error = expect_error(&mut p, "too many subscriptions").await;
        assert_eq!(error.get("receipt-id"), Some("x"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_peers_are_cut_off_and_bursts_are_not() {
    let h = harness(Limits {
        max_outbound_bytes: 256 * 1024,
        slow_consumer_grace: Duration::from_secs(1),
        frame_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let server = &h.server;

    h.attack("trickle", 16 * MIB, async {
        let mut p = peer(server).await;
        let frame = b"SEND\ndestination:/topic/atk-trickle\n\nsome body that never ends";
        let mut closed = false;
        for b in frame.iter().cycle().take(400) {
            p.send([*b]).await;
            if let Ok(seen) = tokio::time::timeout(Duration::from_millis(50), p.next()).await {
                let Seen::Frame(error) = seen else {
                    panic!("closed without an ERROR")
                };
                assert_eq!(error.get("message"), Some("frame timeout"), "{error:?}");
                closed = true;
                break;
            }
        }
        assert!(closed, "still open after 20 s of trickling");
    })
    .await;

    h.attack("half_frame", 16 * MIB, async {
        let mut p = peer(server).await;
        p.send("SEND\ndestination:/topic/atk-half\ncontent-length:100\n\nhalf")
            .await;
        let error = expect_error(&mut p, "frame timeout").await;
        assert!(body_text(&error).contains("1000 ms"), "{error:?}");
    })
    .await;

    h.attack("stopped_reader_tcp", 64 * MIB, async {
        let mut stalled = peer(server).await;
        with_receipt(
            &mut stalled,
            "SUBSCRIBE\nid:s\ndestination:/topic/atk-stalled\nreceipt:s\n\n\0",
            "s",
        )
        .await;
        flood_until_cut(server, "/topic/atk-stalled").await;
        drop(stalled);
    })
    .await;

    h.attack("stopped_reader_ws", 64 * MIB, async {
        let mut stalled = ws_connected(server).await;
        stalled
            .text("SUBSCRIBE\nid:s\ndestination:/topic/atk-stalled-ws\nreceipt:s\n\n\0")
            .await;
        assert!(matches!(stalled.next().await, WsSeen::Data(_)), "RECEIPT");
        flood_until_cut(server, "/topic/atk-stalled-ws").await;
        drop(stalled);
    })
    .await;

    h.attack("burst", 32 * MIB, async {
        let mut subs = Vec::new();
        for i in 0..10 {
            let mut p = peer(server).await;
            with_receipt(
                &mut p,
                &format!("SUBSCRIBE\nid:b\ndestination:/topic/atk-burst\nreceipt:b{i}\n\n\0"),
                &format!("b{i}"),
            )
            .await;
            subs.push(p);
        }
        let connections = server.stomp.usage().connections;
        let mut publ = peer(server).await;
        let body = "z".repeat(64 * 1024 - 100);
        let mut burst = String::new();
        for i in 0..9 {
            burst.push_str(&format!(
                "SEND\ndestination:/topic/atk-burst\n\n{i}{body}\0"
            ));
        }
        burst.push_str("SEND\ndestination:/topic/atk-burst\nreceipt:end\n\nend\0");
        publ.send(burst).await;
        assert_eq!(publ.frame().await.get("receipt-id"), Some("end"));
        let readers = subs.iter_mut().map(|p| async move {
            let got = take_messages(p, 10).await;
            assert_eq!(body_text(&got[9]), "end");
        });
        futures_util::future::join_all(readers).await;
        assert_eq!(
            server.stomp.usage().connections,
            connections + 1,
            "no subscriber was cut off"
        );
    })
    .await;
}

/// Publishes 32 KiB messages to `destination` until the server lets one connection go
/// (the subscriber that does not read).
async fn flood_until_cut(server: &TestServer, destination: &str) {
    let mut publ = peer(server).await;
    let before = server.stomp.usage().connections;
    let body = "f".repeat(32 * 1024);
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.stomp.usage().connections >= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled subscriber was never cut off"
        );
        let mut sends = String::new();
        for _ in 0..8 {
            sends.push_str(&format!("SEND\ndestination:{destination}\n\n{body}\0"));
        }
        sends.push_str(&format!(
            "SEND\ndestination:{destination}\nreceipt:r\n\nr\0"
        ));
        publ.send(sends).await;
        assert_eq!(publ.frame().await.get("receipt-id"), Some("r"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_at_their_limits_and_injection() {
    let h = harness(Limits::default()).await;
    let server = &h.server;

    h.attack("headers_at_limits", 16 * MIB, async {
        let mut p = peer(server).await;
        // 64 headers (destination, receipt and 62 more), 400 bytes each: 25 KiB of head.
        let mut frame = String::from("SEND\ndestination:/topic/atk-h\nreceipt:h\n");
        for i in 0..62 {
            frame.push_str(&format!("h{i:02}:{}\n", "v".repeat(396)));
        }
        frame.push_str("\nbody\0");
        with_receipt(&mut p, &frame, "h").await;
        // A frame of exactly 64 KiB, head and body.
        let head = "SEND\ndestination:/topic/atk-h\nreceipt:big\n\n";
        let body = "b".repeat(64 * 1024 - head.len());
        with_receipt(&mut p, &format!("{head}{body}\0"), "big").await;
        // One header more.
        let mut frame = String::from("SEND\ndestination:/topic/atk-h\n");
        for i in 0..64 {
            frame.push_str(&format!("h{i:02}:v\n"));
        }
        frame.push_str("\n\0");
        p.send(frame).await;
        let error = expect_error(&mut p, "malformed frame").await;
        assert!(
            body_text(&error).contains("exceed the limit of 64"),
            "{error:?}"
        );
    })
    .await;

    h.attack("v10_injection", 16 * MIB, async {
        let mut old = RawPeer::connect(server.tcp_addr).await;
        old.send("CONNECT\nhost:localhost\n\n\0").await;
        assert_eq!(old.frame().await.command, Command::Connected);
        with_receipt(
            &mut old,
            "SUBSCRIBE\ndestination:/topic/atk-inj\nreceipt:s\n\n\0",
            "s",
        )
        .await;
        let mut new = peer(server).await;
        with_receipt(
            &mut new,
            "SEND\ndestination:/topic/atk-inj\nx:a\\ncontent-length\\c0\\r\\nevil\\cyes\nreceipt:i\n\nintact\0",
            "i",
        )
        .await;
        let got = take_messages(&mut old, 1).await;
        let m = &got[0];
        assert_eq!(m.get("evil"), None, "{m:?}");
        assert_eq!(m.get("x"), Some("a content-length:0  evil:yes"), "{m:?}");
        assert_eq!(body_text(m), "intact");
    })
    .await;

    h.attack("nul_header", 16 * MIB, async {
        let mut p = peer(server).await;
        p.send("SEND\ndestination:/topic/atk-nul\nx:a\0b\n\n\0")
            .await;
        let error = expect_error(&mut p, "malformed frame").await;
        assert!(body_text(&error).contains("NUL"), "{error:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_floods_meet_the_limits() {
    let h = harness(Limits {
        max_connections_per_address: 20,
        max_connects_per_second: 40,
        ..Limits::default()
    })
    .await;
    let server = &h.server;

    h.attack("connection_flood", 16 * MIB, async {
        let room = 20 - server.stomp.usage().connections;
        let mut held = Vec::new();
        for _ in 0..room {
            held.push(peer(server).await);
        }
        let mut refused = 0;
        for _ in 0..5 {
            let mut extra = RawPeer::connect(server.tcp_addr).await;
            let error = expect_error(&mut extra, "too many connections").await;
            assert!(body_text(&error).contains("20 connections"), "{error:?}");
            refused += 1;
        }
        assert_eq!(refused, 5);
        drop(held);
    })
    .await;

    h.attack("connect_rate", 16 * MIB, async {
        // The window of the previous case may still count: wait it out by trying.
        let mut rated = false;
        for _ in 0..60 {
            let mut p = RawPeer::connect(server.tcp_addr).await;
            p.send("CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
                .await;
            let first = p.frame().await;
            if first.command == Command::Error {
                assert_eq!(
                    first.get("message"),
                    Some("too many connection attempts"),
                    "{first:?}"
                );
                rated = true;
                break;
            }
        }
        assert!(rated, "60 connections in a burst, none refused");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_budget_bounds_all_sessions_together() {
    const BUDGET: usize = 8 * MIB;
    let h = harness(Limits {
        memory_budget: BUDGET,
        ..Limits::default()
    })
    .await;
    let server = &h.server;

    h.attack("memory_budget", 32 * MIB, async {
        // Each session may hold 4 MiB in transactions; three together pass the budget.
        let body = "x".repeat(60 * 1024);
        let mut sessions = Vec::new();
        let mut refused = None;
        'sessions: for s in 0..3 {
            let mut p = peer(server).await;
            with_receipt(&mut p, "BEGIN\ntransaction:t\nreceipt:b\n\n\0", "b").await;
            for i in 0..64 {
                p.send(format!(
                    "SEND\ndestination:/topic/atk-budget\ntransaction:t\nreceipt:{i}\n\n{body}\0"
                ))
                .await;
                let f = p.frame().await;
                if f.command == Command::Error {
                    refused = Some((s, f));
                    break 'sessions;
                }
                assert!(server.stomp.usage().memory_used <= BUDGET + MIB);
            }
            sessions.push(p);
        }
        let (s, error) = refused.expect("three sessions at 3.75 MiB each pass 8 MiB");
        assert_eq!(s, 2, "the third session meets the budget");
        assert_eq!(
            error.get("message"),
            Some("memory budget exhausted"),
            "{error:?}"
        );
    })
    .await;
}
