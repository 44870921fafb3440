//! The live connection: the state the client's handles share, the CONNECT handshake, and
//! the background task that reads, dispatches and writes frames.
//!
//! One task per connection runs a read loop and a write loop side by side (`join`). The
//! read loop routes MESSAGE frames to subscriptions by their `subscription` header,
//! RECEIPT frames to the call waiting on their `receipt-id`, and an ERROR frame to every
//! waiter. Callers hand encoded frames to the write loop through a bounded channel, so a
//! fast publisher waits for the socket instead of queueing without limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::transport::{Reader, Writer};
use super::{ClientError, ConnectOptions, Message};
use crate::config::{Limits, negotiate_interval, parse_heartbeat};
use crate::frame::{Command, Frame, Headers, Parsed, Parser, Version};

/// Largest frame accepted from a server: 16 MiB, far above any server's own limit, so the
/// client never refuses what a server chose to send.
pub(crate) const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Frames a caller may queue ahead of the writer before `send` waits for the socket.
const OUTGOING_QUEUE: usize = 1024;
/// Frames written before one flush, at most.
const WRITE_BATCH: usize = 64;
/// Silence tolerated from a server, as a multiple of its heart-beat interval: twice, as
/// stomp.js allows.
const HEARTBEAT_GRACE: u32 = 2;
/// Longest wait for the socket to close once the connection is done.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Parser limits for frames from a server: generous, since the server is trusted to keep to
/// its own limits and the client must never refuse a legitimate frame.
fn client_limits() -> Limits {
    Limits {
        max_frame_size: MAX_FRAME,
        max_headers: 1024,
        max_header_line: 1024 * 1024,
        ..Limits::default()
    }
}

/// Where MESSAGE frames of one subscription go.
struct Route {
    destination: String,
    tx: mpsc::UnboundedSender<Message>,
}

/// What the read loop dispatches to, guarded by one lock.
struct Dispatch {
    open: bool,
    receipts: HashMap<String, oneshot::Sender<Result<(), ClientError>>>,
    routes: HashMap<String, Route>,
    /// The receipt of our DISCONNECT: when it arrives, the connection ends cleanly.
    disconnect_receipt: Option<String>,
}

/// A connection's state, shared by the client, its subscriptions and transactions, and the
/// background task.
pub(crate) struct Inner {
    tx: mpsc::Sender<Bytes>,
    dispatch: Mutex<Dispatch>,
    /// `None` while open; `Some(reason)` once closed, `reason` being `None` for a clean end.
    closed: watch::Sender<Option<Option<ClientError>>>,
    /// Cancelled once the connection is done: both loops stop and the socket closes.
    stop: CancellationToken,
    pub(crate) version: Version,
    pub(crate) connected: Headers,
    /// Negotiated (send, receive) heart-beat intervals; zero is off.
    pub(crate) intervals: (Duration, Duration),
    receipt_timeout: Duration,
    next_id: AtomicU64,
    pub(crate) heartbeats: AtomicU64,
}

impl Inner {
    fn new(
        version: Version,
        connected: Headers,
        intervals: (Duration, Duration),
        receipt_timeout: Duration,
    ) -> (Arc<Self>, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
        let inner = Arc::new(Self {
            tx,
            dispatch: Mutex::new(Dispatch {
                open: true,
                receipts: HashMap::new(),
                routes: HashMap::new(),
                disconnect_receipt: None,
            }),
            closed: watch::Sender::new(None),
            stop: CancellationToken::new(),
            version,
            connected,
            intervals,
            receipt_timeout,
            next_id: AtomicU64::new(1),
            heartbeats: AtomicU64::new(0),
        });
        (inner, rx)
    }

    /// A fresh id for a subscription, receipt or transaction of this connection.
    pub(crate) fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Why calls fail now that the connection is closed.
    pub(crate) fn close_error(&self) -> ClientError {
        self.closed
            .borrow()
            .clone()
            .flatten()
            .unwrap_or(ClientError::Closed)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }

    /// Waits for the connection to end; `None` if it ended cleanly.
    pub(crate) async fn closed(&self) -> Option<ClientError> {
        let mut rx = self.closed.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(state) => state.clone().flatten(),
            // The sender lives in `self`, so it cannot be gone while we borrow it.
            Err(_) => Some(ClientError::Closed),
        }
    }

    /// Ends the connection once: fails pending receipts with `reason` (or `Closed`), ends
    /// every subscription, and stops the background task.
    pub(crate) fn finish(&self, reason: Option<ClientError>) {
        let (receipts, routes) = {
            let mut d = self.dispatch.lock();
            if !d.open {
                return;
            }
            d.open = false;
            // Before anyone is woken, so a woken caller's next call sees the end.
            self.closed.send_replace(Some(reason.clone()));
            self.stop.cancel();
            (
                std::mem::take(&mut d.receipts),
                std::mem::take(&mut d.routes),
            )
        };
        match &reason {
            None => debug!("connection closed"),
            Some(e) => debug!(error = %e, "connection closed"),
        }
        let err = reason.unwrap_or(ClientError::Closed);
        for (_, waiter) in receipts {
            let _ = waiter.send(Err(err.clone()));
        }
        drop(routes);
    }

    /// Queues `frame` for the writer.
    pub(crate) async fn send_frame(&self, frame: Frame) -> Result<(), ClientError> {
        if self.is_closed() {
            return Err(self.close_error());
        }
        let bytes = frame.encode(self.version);
        self.tx.send(bytes).await.map_err(|_| self.close_error())
    }

    /// Queues `frame` without waiting, for `Drop` impls; spawns the send if the queue is full.
    pub(crate) fn send_in_background(&self, frame: Frame) {
        if self.stop.is_cancelled() {
            return;
        }
        let bytes = frame.encode(self.version);
        if let Err(mpsc::error::TrySendError::Full(bytes)) = self.tx.try_send(bytes)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let tx = self.tx.clone();
            runtime.spawn(async move {
                let _ = tx.send(bytes).await;
            });
        }
    }

    /// Sends `frame` with a `receipt` header (its own or a fresh one) and waits for the
    /// RECEIPT.
    pub(crate) async fn request(&self, mut frame: Frame) -> Result<(), ClientError> {
        let id = match frame.get("receipt") {
            Some(id) => id.to_owned(),
            None => {
                let id = self.next_id("rcpt");
                frame.headers.push("receipt", id.clone());
                id
            }
        };
        let rx = self.expect_receipt(&id, false)?;
        self.send_and_wait(&id, frame, rx).await
    }

    /// Sends DISCONNECT and waits for its RECEIPT; the connection then ends cleanly.
    pub(crate) async fn disconnect(&self) -> Result<(), ClientError> {
        let id = self.next_id("disconnect");
        let rx = match self.expect_receipt(&id, true) {
            Ok(rx) => rx,
            Err(_) => {
                return match self.closed.borrow().clone().flatten() {
                    None => Ok(()),
                    Some(e) => Err(e),
                };
            }
        };
        let frame = Frame::new(Command::Disconnect).header("receipt", id.as_str());
        let result = self.send_and_wait(&id, frame, rx).await;
        match result {
            // A server may hang up without the receipt; the connection is closed all the same.
            Ok(()) | Err(ClientError::Closed) => Ok(()),
            Err(e) => {
                self.finish(Some(e.clone()));
                Err(e)
            }
        }
    }

    fn expect_receipt(
        &self,
        id: &str,
        disconnect: bool,
    ) -> Result<oneshot::Receiver<Result<(), ClientError>>, ClientError> {
        let mut d = self.dispatch.lock();
        if !d.open {
            return Err(self.close_error());
        }
        let (tx, rx) = oneshot::channel();
        d.receipts.insert(id.to_owned(), tx);
        if disconnect {
            d.disconnect_receipt = Some(id.to_owned());
        }
        Ok(rx)
    }

    async fn send_and_wait(
        &self,
        id: &str,
        frame: Frame,
        rx: oneshot::Receiver<Result<(), ClientError>>,
    ) -> Result<(), ClientError> {
        if let Err(e) = self.send_frame(frame).await {
            self.dispatch.lock().receipts.remove(id);
            return Err(e);
        }
        match timeout(self.receipt_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_dropped)) => Err(self.close_error()),
            Err(_elapsed) => {
                self.dispatch.lock().receipts.remove(id);
                Err(ClientError::Timeout {
                    waiting_for: "RECEIPT",
                    after: self.receipt_timeout,
                })
            }
        }
    }

    /// Registers a subscription's route before its SUBSCRIBE leaves, so no MESSAGE can
    /// arrive unrouted.
    pub(crate) fn add_route(
        &self,
        id: &str,
        destination: &str,
    ) -> Result<mpsc::UnboundedReceiver<Message>, ClientError> {
        let mut d = self.dispatch.lock();
        if !d.open {
            return Err(self.close_error());
        }
        if d.routes.contains_key(id) {
            return Err(ClientError::InvalidRequest(format!(
                "subscription id `{id}` is already in use"
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        d.routes.insert(
            id.to_owned(),
            Route {
                destination: destination.to_owned(),
                tx,
            },
        );
        Ok(rx)
    }

    /// Stops routing MESSAGE frames to subscription `id`.
    pub(crate) fn remove_route(&self, id: &str) {
        self.dispatch.lock().routes.remove(id);
    }

    /// Handles one frame from the server; `false` once the connection is done.
    fn on_frame(&self, frame: Frame) -> bool {
        match frame.command {
            Command::Message => {
                self.route(frame);
                true
            }
            Command::Receipt => self.on_receipt(&frame),
            Command::Error => {
                self.finish(Some(server_error(frame)));
                false
            }
            other => {
                debug!(command = %other, "unexpected frame from the server ignored");
                true
            }
        }
    }

    fn route(&self, frame: Frame) {
        let d = self.dispatch.lock();
        let route = match frame.get("subscription") {
            Some(id) => d.routes.get(id),
            // STOMP 1.0 servers may omit `subscription`; fall back to the destination.
            None => frame
                .get("destination")
                .and_then(|dest| d.routes.values().find(|r| r.destination == dest)),
        };
        match route {
            Some(r) => {
                let _ = r.tx.send(Message::new(frame));
            }
            None => debug!(
                subscription = frame.get("subscription").unwrap_or_default(),
                "MESSAGE for no active subscription dropped"
            ),
        }
    }

    fn on_receipt(&self, frame: &Frame) -> bool {
        let Some(id) = frame.get("receipt-id") else {
            debug!("RECEIPT without receipt-id ignored");
            return true;
        };
        let (waiter, disconnected) = {
            let mut d = self.dispatch.lock();
            let waiter = d.receipts.remove(id);
            (waiter, d.disconnect_receipt.as_deref() == Some(id))
        };
        if disconnected {
            self.finish(None);
        }
        if let Some(w) = waiter {
            let _ = w.send(Ok(()));
        }
        !disconnected
    }
}

fn server_error(frame: Frame) -> ClientError {
    ClientError::Server {
        message: frame.get("message").unwrap_or_default().to_owned(),
        body: frame.body,
        headers: frame.headers,
    }
}

/// Negotiated (send, receive) heart-beat intervals in ms (STOMP 1.2 "Heart-beating"); 1.0
/// has none.
fn negotiate(client: (u64, u64), server: Option<&str>, version: Version) -> (u64, u64) {
    if version == Version::V1_0 {
        return (0, 0);
    }
    let (sx, sy) = server.and_then(parse_heartbeat).unwrap_or((0, 0));
    let (cx, cy) = client;
    (negotiate_interval(cx, sy), negotiate_interval(sx, cy))
}

/// Sends CONNECT over a fresh transport, waits for CONNECTED and starts the background
/// task.
pub(crate) async fn establish(
    mut reader: Reader,
    mut writer: Writer,
    default_host: &str,
    opts: &ConnectOptions,
) -> Result<Arc<Inner>, ClientError> {
    writer
        .write(opts.connect_frame(default_host).encode(Version::V1_0))
        .await?;
    writer.flush().await?;
    let mut parser = Parser::new(&client_limits());
    let mut buf = BytesMut::new();
    let connected = loop {
        match parser.parse(&mut buf)? {
            Some(Parsed::Frame(frame)) => break frame,
            Some(Parsed::HeartBeat) => continue,
            None => {
                if !reader.read(&mut buf).await? {
                    return Err(ClientError::Closed);
                }
            }
        }
    };
    match connected.command {
        Command::Connected => {}
        Command::Error => return Err(server_error(connected)),
        other => {
            return Err(ClientError::Protocol(format!(
                "expected CONNECTED, got {other}"
            )));
        }
    }
    let version = match connected.get("version") {
        None => Version::V1_0,
        Some(v) => Version::parse(v)
            .filter(|v| opts.versions().contains(v))
            .ok_or_else(|| {
                ClientError::Protocol(format!("server chose version `{v}`, which was not offered"))
            })?,
    };
    parser.set_version(version);
    let (send_ms, expect_ms) = negotiate(opts.heartbeat_ms(), connected.get("heart-beat"), version);
    let intervals = (
        Duration::from_millis(send_ms),
        Duration::from_millis(expect_ms),
    );
    let (inner, rx) = Inner::new(version, connected.headers, intervals, opts.receipt_wait());
    debug!(
        %version,
        session = inner.connected.get("session").unwrap_or_default(),
        send_ms,
        expect_ms,
        "connected"
    );
    let beat_every = (send_ms > 0 && opts.sends_heartbeats()).then_some(intervals.0);
    let silence = (expect_ms > 0).then(|| intervals.1 * HEARTBEAT_GRACE);
    let task = inner.clone();
    tokio::spawn(async move {
        tokio::join!(
            read_loop(&task, reader, parser, buf, silence),
            write_loop(&task, writer, rx, beat_every),
        );
    });
    Ok(inner)
}

async fn read_loop(
    inner: &Inner,
    mut reader: Reader,
    mut parser: Parser,
    mut buf: BytesMut,
    silence: Option<Duration>,
) {
    loop {
        loop {
            match parser.parse(&mut buf) {
                Ok(None) => break,
                Ok(Some(Parsed::HeartBeat)) => {
                    inner.heartbeats.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Some(Parsed::Frame(frame))) => {
                    if !inner.on_frame(frame) {
                        return;
                    }
                }
                Err(e) => {
                    inner.finish(Some(e.into()));
                    return;
                }
            }
        }
        let read = async {
            match silence {
                Some(limit) => timeout(limit, reader.read(&mut buf)).await.ok(),
                None => Some(reader.read(&mut buf).await),
            }
        };
        let outcome = tokio::select! {
            _ = inner.stop.cancelled() => return,
            outcome = read => outcome,
        };
        match outcome {
            None => {
                let silent_for = silence.unwrap_or_default();
                inner.finish(Some(ClientError::HeartbeatTimeout { silent_for }));
                return;
            }
            Some(Ok(true)) => {}
            Some(Ok(false)) => {
                inner.finish(Some(ClientError::Closed));
                return;
            }
            Some(Err(e)) => {
                inner.finish(Some(e));
                return;
            }
        }
    }
}

async fn write_loop(
    inner: &Inner,
    mut writer: Writer,
    mut rx: mpsc::Receiver<Bytes>,
    beat_every: Option<Duration>,
) {
    let mut last_write = Instant::now();
    loop {
        let beat_at = beat_every.map(|every| last_write + every);
        let first = tokio::select! {
            biased;
            _ = inner.stop.cancelled() => break,
            item = rx.recv() => match item {
                Some(bytes) => bytes,
                None => break,
            },
            _ = sleep_or_never(beat_at) => Bytes::from_static(b"\n"),
        };
        let batch = async {
            writer.write(first).await?;
            for _ in 1..WRITE_BATCH {
                match rx.try_recv() {
                    Ok(bytes) => writer.write(bytes).await?,
                    Err(_) => break,
                }
            }
            writer.flush().await
        };
        let written = tokio::select! {
            biased;
            _ = inner.stop.cancelled() => break,
            written = batch => written,
        };
        if let Err(e) = written {
            inner.finish(Some(e));
            break;
        }
        last_write = Instant::now();
    }
    let _ = timeout(CLOSE_TIMEOUT, writer.close()).await;
}

async fn sleep_or_never(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner() -> Arc<Inner> {
        let (inner, _rx) = Inner::new(
            Version::V1_2,
            Headers::new(),
            (Duration::ZERO, Duration::ZERO),
            Duration::from_secs(1),
        );
        inner
    }

    fn message(sub: Option<&str>, dest: &str, body: &'static str) -> Frame {
        let mut f = Frame::new(Command::Message).header("destination", dest);
        if let Some(s) = sub {
            f = f.header("subscription", s);
        }
        f.body(body)
    }

    #[test]
    fn heart_beats_negotiate_per_direction() {
        // Client sends every max(cx, sy), expects every max(sx, cy); zero on either side is off.
        assert_eq!(
            negotiate((100, 200), Some("300,50"), Version::V1_2),
            (100, 300)
        );
        assert_eq!(negotiate((0, 200), Some("300,50"), Version::V1_1), (0, 300));
        assert_eq!(negotiate((100, 200), Some("0,0"), Version::V1_2), (0, 0));
        assert_eq!(negotiate((100, 200), None, Version::V1_2), (0, 0));
        assert_eq!(negotiate((100, 200), Some("junk"), Version::V1_2), (0, 0));
        assert_eq!(negotiate((100, 200), Some("300,50"), Version::V1_0), (0, 0));
    }

    #[tokio::test]
    async fn messages_go_to_their_subscription() {
        let inner = inner();
        let mut a = inner.add_route("a", "/topic/x").unwrap();
        let mut b = inner.add_route("b", "/topic/y").unwrap();
        assert!(inner.on_frame(message(Some("a"), "/topic/x", "1")));
        assert!(inner.on_frame(message(Some("b"), "/topic/y", "2")));
        // No `subscription` header: routed by destination.
        assert!(inner.on_frame(message(None, "/topic/y", "3")));
        // Unknown subscription: dropped, not a failure.
        assert!(inner.on_frame(message(Some("zzz"), "/topic/x", "4")));
        assert_eq!(a.recv().await.unwrap().text(), Some("1"));
        assert_eq!(b.recv().await.unwrap().text(), Some("2"));
        assert_eq!(b.recv().await.unwrap().text(), Some("3"));
        assert!(a.try_recv().is_err());
    }

    #[test]
    fn duplicate_subscription_ids_are_refused() {
        let inner = inner();
        let _a = inner.add_route("a", "/topic/x").unwrap();
        assert!(matches!(
            inner.add_route("a", "/topic/y"),
            Err(ClientError::InvalidRequest(_))
        ));
    }

    #[tokio::test]
    async fn receipts_wake_their_waiter_only() {
        let inner = inner();
        let r1 = inner.expect_receipt("r1", false).unwrap();
        let mut r2 = inner.expect_receipt("r2", false).unwrap();
        assert!(inner.on_frame(Frame::new(Command::Receipt).header("receipt-id", "r1")));
        assert!(r1.await.unwrap().is_ok());
        assert!(r2.try_recv().is_err());
        // Unknown and missing receipt ids are ignored.
        assert!(inner.on_frame(Frame::new(Command::Receipt).header("receipt-id", "nope")));
        assert!(inner.on_frame(Frame::new(Command::Receipt)));
        assert!(!inner.is_closed());
    }

    #[tokio::test]
    async fn error_fails_every_waiter_and_ends_subscriptions() {
        let inner = inner();
        let r1 = inner.expect_receipt("r1", false).unwrap();
        let mut sub = inner.add_route("a", "/queue/x").unwrap();
        let error = Frame::error("denied", "not allowed").header("receipt-id", "r1");
        assert!(!inner.on_frame(error));
        let err = r1.await.unwrap().unwrap_err();
        assert_eq!(err.server_message(), Some("denied"));
        let ClientError::Server { body, headers, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(&body[..], b"not allowed");
        assert_eq!(headers.get("receipt-id"), Some("r1"));
        assert!(sub.recv().await.is_none());
        assert_eq!(
            inner.closed().await.unwrap().server_message(),
            Some("denied")
        );
        // Later calls fail with the same cause.
        assert_eq!(
            inner
                .expect_receipt("r2", false)
                .unwrap_err()
                .server_message(),
            Some("denied")
        );
        assert!(matches!(
            inner.send_frame(Frame::new(Command::Send)).await,
            Err(ClientError::Server { .. })
        ));
    }

    #[tokio::test]
    async fn disconnect_receipt_ends_the_connection_cleanly() {
        let inner = inner();
        let rx = inner.expect_receipt("bye", true).unwrap();
        let other = inner.expect_receipt("other", false).unwrap();
        assert!(!inner.on_frame(Frame::new(Command::Receipt).header("receipt-id", "bye")));
        assert!(rx.await.unwrap().is_ok());
        assert!(matches!(other.await.unwrap(), Err(ClientError::Closed)));
        assert!(inner.closed().await.is_none());
        // The first reason sticks.
        inner.finish(Some(ClientError::Closed));
        assert!(inner.closed().await.is_none());
    }
}
