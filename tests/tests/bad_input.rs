//! Bad input over raw TCP: every case ends in an ERROR frame (or a silent release) and a
//! closed connection, while a well-behaved session on the same server keeps working.
//!
//! The table [`CASES`], in order (limits: 1024-byte frames, 8 headers, 256-byte header
//! lines, 512-byte heads, 2 subscriptions, 2 wildcards per pattern, 2 open transactions
//! holding 2 frames and 1,000 bytes; heart-beats 100 ms; CONNECT within 300 ms):
//!
//! | #  | case                                  | ERROR `message` (body)                          |
//! |----|---------------------------------------|-------------------------------------------------|
//! |  1 | garbage bytes (binary, TLS-like)      | malformed frame (head is not valid UTF-8)       |
//! |  2 | HTTP request on the STOMP port        | malformed frame (unknown command `GET / ...`)   |
//! |  3 | stray carriage return                 | malformed frame (carriage return ...)           |
//! |  4 | unknown command                       | malformed frame (unknown command `FROB`)        |
//! |  5 | SEND before CONNECT                   | frame before CONNECT                            |
//! |  6 | SUBSCRIBE before CONNECT, receipt     | frame before CONNECT, `receipt-id`              |
//! |  7 | second CONNECT                        | already connected                               |
//! |  8 | truncated frame, then the peer leaves | none: the session is released silently          |
//! |  9 | undefined escape `\t` (1.2)           | malformed frame (undefined escape `\t`)         |
//! | 10 | `\r` escape in 1.1                    | malformed frame (undefined escape `\r`)         |
//! | 11 | oversized frame by content-length     | frame too large (... limit of 1024), `receipt-id` |
//! | 12 | oversized body, no content-length     | frame too large (exceeds the limit of 1024)     |
//! | 13 | header line too long                  | malformed frame (header line ... limit of 256)  |
//! | 14 | too many headers                      | malformed frame (... limit of 8)                |
//! | 15 | invalid content-length                | malformed frame (invalid content-length)        |
//! | 16 | content-length without the NUL        | malformed frame (not terminated by NUL)         |
//! | 17 | non-UTF-8 header                      | malformed frame (head is not valid UTF-8)       |
//! | 18 | header without colon                  | malformed frame (malformed header line)         |
//! | 19 | SEND without destination, receipt     | missing destination header, `receipt-id`        |
//! | 20 | SUBSCRIBE without id (1.2), receipt   | missing id header, `receipt-id`                 |
//! | 21 | duplicate subscription id, receipt    | duplicate subscription id, `receipt-id`         |
//! | 22 | invalid ack mode                      | invalid ack mode                                |
//! | 23 | ACK of an unknown id, receipt         | unknown message in ACK, `receipt-id`            |
//! | 24 | NACK on 1.0                           | NACK requires STOMP 1.1                         |
//! | 25 | BEGIN twice, same transaction         | duplicate transaction, `receipt-id`             |
//! | 26 | COMMIT of an unknown transaction      | unknown transaction, `receipt-id`               |
//! | 27 | ABORT of an unknown transaction       | unknown transaction                             |
//! | 28 | SEND in an unknown transaction        | unknown transaction                             |
//! | 29 | unsupported accept-version            | unsupported protocol version, `version:1.0,...` |
//! | 30 | invalid heart-beat header             | invalid heart-beat header                       |
//! | 31 | server-only command (MESSAGE)         | unexpected command MESSAGE                      |
//! | 32 | SEND to a destination nothing handles | no route for destination, `receipt-id`          |
//! | 33 | too many subscriptions, receipt       | too many subscriptions, `receipt-id`            |
//! | 34 | silent after CONNECT, heart-beats on  | heart-beat timeout                              |
//! | 35 | never sends CONNECT                   | CONNECT timeout                                 |
//! | 36 | transaction past the pending limit    | transaction too large, `receipt-id`             |
//! | 37 | NUL inside a header value             | malformed frame (header line holds a NUL byte)  |
//! | 38 | head past 512 bytes, short lines      | malformed frame (frame head ... limit of 512)   |
//! | 39 | pattern with 3 wildcards (limit 2)    | invalid destination pattern, `receipt-id`       |
//! | 40 | a third open transaction (limit 2)    | too many transactions, `receipt-id`             |
//! | 41 | transaction past 1,000 bytes          | transaction too large (at most 1000 bytes)      |
//! | 42 | prefetch-count not a number           | invalid prefetch-count header                   |
//!
//! Every case also checks that the server released the bad session (the broker saw it
//! close), that a subscriber on another connection receives a message published while the
//! bad peer runs and one published after it is gone, and that the case took less than
//! [`WAIT`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use stomp_runtime::StompServer;
use stomp_runtime::async_trait;
use stomp_runtime::broker::{Broker, BrokerError, BrokerMessage, SimpleBroker, Subscription};
use stomp_runtime::config::Limits;
use stomp_runtime::frame::Command;
use stomp_tests::{RawPeer, WAIT, start};
use tokio::sync::watch;

/// Small limits, so each one is reached with a few bytes.
fn limits() -> Limits {
    Limits {
        max_frame_size: 1024,
        max_headers: 8,
        max_header_line: 256,
        max_head_size: 512,
        max_subscriptions: 2,
        max_pattern_wildcards: 2,
        max_transactions: 2,
        max_pending_frames: 2,
        max_pending_bytes: 1000,
        ..Limits::default()
    }
}

/// One bad peer.
struct Case {
    name: &'static str,
    /// Written in order. The server answers every write but the last with exactly one frame
    /// (CONNECTED or RECEIPT), which the runner awaits before the next write.
    writes: &'static [&'static [u8]],
    expect: Expect,
}

/// How the server must end a bad session.
enum Expect {
    /// An ERROR frame, the last frame before the connection closes.
    Error {
        /// Contained in the `message` header.
        message: &'static str,
        /// Contained in the body.
        body: &'static str,
        /// The `receipt-id` header, present exactly when the faulty frame had `receipt`.
        receipt: Option<&'static str>,
        /// Another header the ERROR must carry.
        header: Option<(&'static str, &'static str)>,
    },
    /// The peer leaves after its writes; the server must release the session without
    /// delivering anything of the unfinished frame.
    Abandon,
}

const fn error(message: &'static str, body: &'static str) -> Expect {
    Expect::Error {
        message,
        body,
        receipt: None,
        header: None,
    }
}

const fn error_receipt(message: &'static str, body: &'static str, receipt: &'static str) -> Expect {
    Expect::Error {
        message,
        body,
        receipt: Some(receipt),
        header: None,
    }
}

/// `prefix`, then `fill` up to `N` bytes less `suffix`, then `suffix`.
const fn padded<const N: usize>(prefix: &[u8], fill: u8, suffix: &[u8]) -> [u8; N] {
    let mut out = [fill; N];
    let mut i = 0;
    while i < prefix.len() {
        out[i] = prefix[i];
        i += 1;
    }
    let mut j = 0;
    while j < suffix.len() {
        out[N - suffix.len() + j] = suffix[j];
        j += 1;
    }
    out
}

const CONNECT_12: &[u8] = b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0";
const CONNECT_11: &[u8] = b"CONNECT\naccept-version:1.1\nhost:localhost\n\n\0";
const CONNECT_10: &[u8] = b"CONNECT\nhost:localhost\n\n\0";

/// A header line of 299 bytes against a limit of 256.
const LONG_HEADER: [u8; 330] = padded(b"SEND\ndestination:/topic/bad\nx:", b'a', b"\n\n\0");
/// Seven headers of 73 bytes each: 546 bytes of head against a head limit of 512,
/// every line well under the 256-byte line limit.
const LONG_HEAD: &[u8] = b"SEND\ndestination:/topic/bad\nh0:0123456789012345678901234567890123456789012345678901234567890123456789\nh1:0123456789012345678901234567890123456789012345678901234567890123456789\nh2:0123456789012345678901234567890123456789012345678901234567890123456789\nh3:0123456789012345678901234567890123456789012345678901234567890123456789\nh4:0123456789012345678901234567890123456789012345678901234567890123456789\nh5:0123456789012345678901234567890123456789012345678901234567890123456789\nh6:0123456789012345678901234567890123456789012345678901234567890123456789\n\n\0";
/// A SEND in transaction `t` with 900 bytes of body: past 1,000 bytes held with its
/// headers and bookkeeping.
const BIG_IN_TX: [u8; 960] = padded(
    b"SEND\ndestination:/topic/bad\ntransaction:t\n\n",
    b'z',
    b"\0",
);
/// 1100 bytes of body and no NUL, against a frame limit of 1024.
const OVERSIZED_BODY: [u8; 1100] = padded(b"SEND\ndestination:/topic/bad\n\n", b'x', b"");

/// The bad peers, in the order of the module documentation's table.
static CASES: &[Case] = &[
    Case {
        name: "garbage bytes",
        writes: &[b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\n\n"],
        expect: error("malformed frame", "frame head is not valid UTF-8"),
    },
    Case {
        name: "HTTP request on the STOMP port",
        writes: &[b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"],
        expect: error("malformed frame", "unknown command `GET / HTTP/1.1`"),
    },
    Case {
        name: "stray carriage return",
        writes: &[b"\rCONNECT\n\n\0"],
        expect: error(
            "malformed frame",
            "carriage return not followed by line feed",
        ),
    },
    Case {
        name: "unknown command",
        writes: &[b"FROB\n\n\0"],
        expect: error("malformed frame", "unknown command `FROB`"),
    },
    Case {
        name: "SEND before CONNECT",
        writes: &[b"SEND\ndestination:/topic/good\n\nsneaky\0"],
        expect: error(
            "frame before CONNECT",
            "SEND was sent before the session was opened",
        ),
    },
    Case {
        name: "SUBSCRIBE before CONNECT",
        writes: &[b"SUBSCRIBE\nid:0\ndestination:/topic/good\nreceipt:s0\n\n\0"],
        expect: error_receipt(
            "frame before CONNECT",
            "SUBSCRIBE was sent before the session was opened",
            "s0",
        ),
    },
    Case {
        name: "second CONNECT",
        writes: &[CONNECT_12, CONNECT_12],
        expect: error("already connected", "already open"),
    },
    Case {
        name: "truncated frame, then the peer leaves",
        writes: &[
            CONNECT_12,
            b"SUBSCRIBE\nid:t\ndestination:/topic/good\nreceipt:t0\n\n\0",
            b"SEND\ndestination:/topic/good\ncontent-type:text/plain\n\nhal",
        ],
        expect: Expect::Abandon,
    },
    Case {
        name: "undefined escape \\t in 1.2",
        writes: &[CONNECT_12, b"SEND\ndestination:/topic/bad\nx:a\\tb\n\n\0"],
        expect: error(
            "malformed frame",
            "undefined escape sequence `\\t` in header",
        ),
    },
    Case {
        name: "\\r escape in 1.1",
        writes: &[CONNECT_11, b"SEND\ndestination:/topic/bad\nx:a\\rb\n\n\0"],
        expect: error(
            "malformed frame",
            "undefined escape sequence `\\r` in header",
        ),
    },
    Case {
        name: "oversized frame by content-length",
        writes: &[
            CONNECT_12,
            b"SEND\ndestination:/topic/bad\ncontent-length:5000\nreceipt:big\n\n",
        ],
        expect: error_receipt("frame too large", "exceeds the limit of 1024 bytes", "big"),
    },
    Case {
        name: "oversized body without content-length",
        writes: &[CONNECT_12, &OVERSIZED_BODY],
        expect: error("frame too large", "exceeds the limit of 1024 bytes"),
    },
    Case {
        name: "header line too long",
        writes: &[CONNECT_12, &LONG_HEADER],
        expect: error("malformed frame", "exceeds the limit of 256 bytes"),
    },
    Case {
        name: "too many headers",
        writes: &[
            CONNECT_12,
            b"SEND\ndestination:/topic/bad\nh1:1\nh2:2\nh3:3\nh4:4\nh5:5\nh6:6\nh7:7\nh8:8\n\n\0",
        ],
        expect: error("malformed frame", "exceed the limit of 8"),
    },
    Case {
        name: "invalid content-length",
        writes: &[
            CONNECT_12,
            b"SEND\ndestination:/topic/bad\ncontent-length:-3\n\nabc\0",
        ],
        expect: error("malformed frame", "invalid content-length `-3`"),
    },
    Case {
        name: "content-length without the NUL",
        writes: &[
            CONNECT_12,
            b"SEND\ndestination:/topic/bad\ncontent-length:2\n\nhello\0",
        ],
        expect: error("malformed frame", "not terminated by NUL"),
    },
    Case {
        name: "non-UTF-8 header",
        writes: &[
            CONNECT_12,
            b"SEND\ndestination:/topic/bad\nx:\xff\xfe\n\n\0",
        ],
        expect: error("malformed frame", "frame head is not valid UTF-8"),
    },
    Case {
        name: "header without colon",
        writes: &[CONNECT_12, b"SEND\ndestination:/topic/bad\nnocolon\n\n\0"],
        expect: error("malformed frame", "malformed header line `nocolon`"),
    },
    Case {
        name: "SEND without destination",
        writes: &[CONNECT_12, b"SEND\nreceipt:d1\n\nlost\0"],
        expect: error_receipt(
            "missing destination header",
            "must carry the `destination` header",
            "d1",
        ),
    },
    Case {
        name: "SUBSCRIBE without id in 1.2",
        writes: &[
            CONNECT_12,
            b"SUBSCRIBE\ndestination:/topic/bad\nreceipt:i1\n\n\0",
        ],
        expect: error_receipt("missing id header", "must carry the `id` header", "i1"),
    },
    Case {
        name: "duplicate subscription id",
        writes: &[
            CONNECT_12,
            b"SUBSCRIBE\nid:dup\ndestination:/topic/bad\nreceipt:u1\n\n\0",
            b"SUBSCRIBE\nid:dup\ndestination:/topic/other\nreceipt:u2\n\n\0",
        ],
        expect: error_receipt("duplicate subscription id", "`dup`", "u2"),
    },
    Case {
        name: "invalid ack mode",
        writes: &[
            CONNECT_12,
            b"SUBSCRIBE\nid:a\ndestination:/topic/bad\nack:sometimes\n\n\0",
        ],
        expect: error("invalid ack mode", "`sometimes`"),
    },
    Case {
        name: "ACK of an unknown id",
        writes: &[CONNECT_12, b"ACK\nid:424242\nreceipt:a1\n\n\0"],
        expect: error_receipt("unknown message in ACK", "`424242`", "a1"),
    },
    Case {
        name: "NACK on 1.0",
        writes: &[CONNECT_10, b"NACK\nmessage-id:m1\n\n\0"],
        expect: error("NACK requires STOMP 1.1", "negotiated STOMP 1.0"),
    },
    Case {
        name: "BEGIN twice, same transaction",
        writes: &[
            CONNECT_12,
            b"BEGIN\ntransaction:tx1\nreceipt:b1\n\n\0",
            b"BEGIN\ntransaction:tx1\nreceipt:b2\n\n\0",
        ],
        expect: error_receipt("duplicate transaction", "`tx1` is already open", "b2"),
    },
    Case {
        name: "COMMIT of an unknown transaction",
        writes: &[CONNECT_12, b"COMMIT\ntransaction:nope\nreceipt:c1\n\n\0"],
        expect: error_receipt(
            "unknown transaction",
            "COMMIT names transaction `nope`",
            "c1",
        ),
    },
    Case {
        name: "ABORT of an unknown transaction",
        writes: &[CONNECT_12, b"ABORT\ntransaction:nope\n\n\0"],
        expect: error("unknown transaction", "ABORT names transaction `nope`"),
    },
    Case {
        name: "SEND in an unknown transaction",
        writes: &[
            CONNECT_12,
            b"SEND\ndestination:/topic/good\ntransaction:nope\n\nnever\0",
        ],
        expect: error("unknown transaction", "SEND names transaction `nope`"),
    },
    Case {
        name: "unsupported accept-version",
        writes: &[b"CONNECT\naccept-version:2.0,3.1\nhost:localhost\n\n\0"],
        expect: Expect::Error {
            message: "unsupported protocol version",
            body: "Client accepts 2.0,3.1",
            receipt: None,
            header: Some(("version", "1.0,1.1,1.2")),
        },
    },
    Case {
        name: "invalid heart-beat header",
        writes: &[b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:soon\n\n\0"],
        expect: error("invalid heart-beat header", "`soon`"),
    },
    Case {
        name: "server-only command MESSAGE",
        writes: &[
            CONNECT_12,
            b"MESSAGE\ndestination:/topic/good\nmessage-id:1\nsubscription:g\n\nforged\0",
        ],
        expect: error("unexpected command MESSAGE", "server frame"),
    },
    Case {
        name: "SEND to a destination nothing handles",
        writes: &[
            CONNECT_12,
            b"SEND\ndestination:/nowhere/x\nreceipt:n1\n\nhi\0",
        ],
        expect: error_receipt("no route for destination", "`/nowhere/x`", "n1"),
    },
    Case {
        name: "too many subscriptions",
        writes: &[
            CONNECT_12,
            b"SUBSCRIBE\nid:1\ndestination:/topic/bad\nreceipt:m1\n\n\0",
            b"SUBSCRIBE\nid:2\ndestination:/topic/bad\nreceipt:m2\n\n\0",
            b"SUBSCRIBE\nid:3\ndestination:/topic/bad\nreceipt:m3\n\n\0",
        ],
        expect: error_receipt("too many subscriptions", "at most 2", "m3"),
    },
    Case {
        name: "silent after CONNECT with heart-beats",
        writes: &[b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:100,100\n\n\0"],
        expect: error("heart-beat timeout", "150 ms"),
    },
    Case {
        name: "never sends CONNECT",
        writes: &[],
        expect: error("CONNECT timeout", "300 ms"),
    },
    Case {
        name: "transaction past the pending limit",
        writes: &[
            CONNECT_12,
            b"BEGIN\ntransaction:t\nreceipt:p0\n\n\0",
            b"SEND\ndestination:/topic/bad\ntransaction:t\nreceipt:p1\n\none\0",
            b"SEND\ndestination:/topic/bad\ntransaction:t\nreceipt:p2\n\ntwo\0",
            b"SEND\ndestination:/topic/bad\ntransaction:t\nreceipt:p3\n\nthree\0",
        ],
        expect: error_receipt("transaction too large", "at most 2 frames", "p3"),
    },
    Case {
        name: "NUL inside a header value",
        writes: &[CONNECT_12, b"SEND\ndestination:/topic/bad\nx:a\0b\n\n\0"],
        expect: error("malformed frame", "header line holds a NUL byte"),
    },
    Case {
        name: "head past its limit with short lines",
        writes: &[CONNECT_12, LONG_HEAD],
        expect: error("malformed frame", "exceeds the limit of 512 bytes"),
    },
    Case {
        name: "pattern past the wildcard limit",
        writes: &[
            CONNECT_12,
            b"SUBSCRIBE\nid:w\ndestination:/topic/*/**/*\nreceipt:w1\n\n\0",
        ],
        expect: error_receipt(
            "invalid destination pattern",
            "3 wildcards exceed the limit of 2",
            "w1",
        ),
    },
    Case {
        name: "a transaction past the open-transaction limit",
        writes: &[
            CONNECT_12,
            b"BEGIN\ntransaction:a\nreceipt:b1\n\n\0",
            b"BEGIN\ntransaction:b\nreceipt:b2\n\n\0",
            b"BEGIN\ntransaction:c\nreceipt:b3\n\n\0",
        ],
        expect: error_receipt("too many transactions", "at most 2 transactions", "b3"),
    },
    Case {
        name: "a transaction past the byte limit",
        writes: &[
            CONNECT_12,
            b"BEGIN\ntransaction:t\nreceipt:q0\n\n\0",
            &BIG_IN_TX,
        ],
        expect: error("transaction too large", "at most 1000 bytes"),
    },
    Case {
        name: "prefetch-count that is not a number",
        writes: &[
            CONNECT_12,
            b"SUBSCRIBE\nid:p\ndestination:/queue/p\nack:client\nprefetch-count:lots\n\n\0",
        ],
        expect: error("invalid prefetch-count header", "`lots`"),
    },
];

/// The in-memory broker, counting the sessions the server has released.
struct Tracking {
    inner: SimpleBroker,
    released: watch::Sender<usize>,
}

#[async_trait]
impl Broker for Tracking {
    fn handles(&self, destination: &str) -> bool {
        self.inner.handles(destination)
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<(), BrokerError> {
        self.inner.subscribe(subscription).await
    }

    async fn unsubscribe(&self, session_id: &str, subscription_id: &str) {
        self.inner.unsubscribe(session_id, subscription_id).await
    }

    async fn publish(&self, message: Arc<BrokerMessage>) -> Result<(), BrokerError> {
        self.inner.publish(message).await
    }

    async fn ack(&self, session_id: &str, messages: Vec<Arc<BrokerMessage>>) {
        self.inner.ack(session_id, messages).await
    }

    async fn requeue(&self, session_id: &str, messages: Vec<Arc<BrokerMessage>>) {
        self.inner.requeue(session_id, messages).await
    }

    async fn session_closed(&self, session_id: &str) {
        self.inner.session_closed(session_id).await;
        self.released.send_modify(|n| *n += 1);
    }
}

/// A subscriber on `/topic/good` and a publisher, both well behaved.
struct GoodSessions {
    sub: RawPeer,
    publ: RawPeer,
}

impl GoodSessions {
    /// Publishes `body` and asserts the subscriber receives exactly it.
    async fn round_trip(&mut self, body: &str) {
        self.publ
            .send(format!(
                "SEND\ndestination:/topic/good\ncontent-type:text/plain\n\n{body}\0"
            ))
            .await;
        let m = self.sub.frame().await;
        assert_eq!(m.command, Command::Message, "{m:?}");
        assert_eq!(m.get("subscription"), Some("g"), "{m:?}");
        assert_eq!(
            std::str::from_utf8(&m.body).expect("UTF-8 body"),
            body,
            "the good subscriber got another message"
        );
    }
}

async fn run_case(case: &Case, good: &mut GoodSessions, addr: std::net::SocketAddr) {
    let mut bad = RawPeer::connect(addr).await;
    if let Some((last, earlier)) = case.writes.split_last() {
        for write in earlier {
            bad.send(write).await;
            let reply = bad.frame().await;
            assert!(
                matches!(reply.command, Command::Connected | Command::Receipt),
                "{}: unexpected answer before the faulty frame: {reply:?}",
                case.name
            );
        }
        bad.send(last).await;
    }
    good.round_trip(&format!("while: {}", case.name)).await;
    match &case.expect {
        Expect::Abandon => drop(bad),
        Expect::Error {
            message,
            body,
            receipt,
            header,
        } => {
            let mut frames = bad.until_closed().await;
            let Some(error) = frames.pop() else {
                panic!("{}: closed without an ERROR frame", case.name)
            };
            for f in &frames {
                assert!(
                    matches!(f.command, Command::Connected | Command::Receipt),
                    "{}: unexpected frame before the ERROR: {f:?}",
                    case.name
                );
            }
            let name = case.name;
            assert_eq!(error.command, Command::Error, "{name}: {error:?}");
            let got = error.get("message").unwrap_or_default();
            assert!(
                got.contains(message),
                "{name}: message `{got}`, wanted `{message}`"
            );
            let text = String::from_utf8_lossy(&error.body);
            assert!(
                text.contains(body),
                "{name}: body `{text}`, wanted `{body}`"
            );
            assert_eq!(error.get("receipt-id"), *receipt, "{name}: {error:?}");
            if let Some((header, value)) = header {
                assert_eq!(error.get(header), Some(*value), "{name}: {error:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_an_error_and_a_close_while_others_carry_on() {
    let (released, mut released_rx) = watch::channel(0);
    let broker = Tracking {
        inner: SimpleBroker::new(["/topic"], ["/queue"]),
        released,
    };
    let stomp = StompServer::builder()
        .broker(Arc::new(broker))
        .limits(limits())
        .heartbeat(100, 100)
        .connect_timeout(Duration::from_millis(300))
        .build()
        .expect("valid configuration");
    let server = start(stomp).await;

    // Each connects right before its CONNECT: the 300 ms CONNECT timeout applies to them too.
    let mut sub = RawPeer::connect(server.tcp_addr).await;
    sub.handshake().await;
    sub.send("SUBSCRIBE\nid:g\ndestination:/topic/good\nreceipt:g0\n\n\0")
        .await;
    assert_eq!(sub.frame().await.get("receipt-id"), Some("g0"));
    let mut publ = RawPeer::connect(server.tcp_addr).await;
    publ.handshake().await;
    let mut good = GoodSessions { sub, publ };
    good.round_trip("before any bad peer").await;

    assert!(CASES.len() >= 24);
    for (i, case) in CASES.iter().enumerate() {
        let started = Instant::now();
        run_case(case, &mut good, server.tcp_addr).await;
        tokio::time::timeout(WAIT, released_rx.wait_for(|n| *n > i))
            .await
            .unwrap_or_else(|_| panic!("{}: the session was never released", case.name))
            .expect("the broker lives as long as the server");
        good.round_trip(&format!("after: {}", case.name)).await;
        let took = started.elapsed();
        assert!(took < WAIT, "{} took {took:?}", case.name);
    }
}
