//! Runs one connection: a read loop feeding the parser and the session, and a write loop
//! draining the outbound queue, sending heart-beats and closing the socket.
//!
//! Both loops run in one task (`join`), so the driver needs no spawning and works for
//! transports whose halves are not `Send` (actix-ws).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{Instrument, debug, error, warn};

use super::outbound::{Bounds, CloseReason, Out, Outbound, OutboundRx};
use super::{Flow, Session};
use crate::admission::Refusal;
use crate::config::Limits;
use crate::frame::{Frame, FrameError, Parsed, Parser, Version};
use crate::server::ServerInner;
use crate::transport::ConnectionInfo;

/// Longest wait for the farewell ERROR frame to be written to a connection being torn down.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(1);
/// The ERROR every session gets when the server shuts down.
const SHUTDOWN_MESSAGE: &str = "server shutting down";
const SHUTDOWN_DETAILS: &str = "The server is shutting down; reconnect later or to another node.";

/// Longest wait for queued frames to be flushed once the session has ended.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The receiving half of a transport.
pub(crate) trait FrameSource {
    /// Appends received bytes to `buf`; `Ok(false)` at end of stream.
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool>;

    /// After `read` failed: whether the peer broke the transport's own protocol (an
    /// oversized or malformed WebSocket frame), which the session answers with an ERROR,
    /// rather than the connection failing.
    fn fault(&mut self) -> Option<SourceFault> {
        None
    }

    /// Whether part of a transport-level frame has arrived and waits for the rest.
    fn in_progress(&self) -> bool {
        false
    }
}

/// A transport protocol violation, as the session reports it.
#[derive(Debug)]
pub(crate) struct SourceFault {
    /// The ERROR frame's `message` header.
    pub(crate) message: &'static str,
    /// The ERROR frame's body.
    pub(crate) details: String,
    /// The start of the offending STOMP frame, if the transport kept it: its `receipt` is
    /// answered when its head is complete.
    pub(crate) head: Option<Vec<u8>>,
    /// How the connection closes.
    pub(crate) close: CloseReason,
}

/// The sending half of a transport.
pub(crate) trait FrameSink {
    /// Writes one item (it may be buffered until [`FrameSink::flush`]).
    async fn write(&mut self, item: &Out) -> io::Result<()>;
    /// Pushes buffered bytes to the peer.
    async fn flush(&mut self) -> io::Result<()>;
    /// Sends a heart-beat (an end of line).
    async fn heartbeat(&mut self) -> io::Result<()>;
    /// Closes the connection; `error` tells whether it ends because of a fault.
    async fn close(&mut self, error: bool);

    /// Closes the connection for `reason` (transports with close codes tell them apart).
    async fn close_with(&mut self, reason: CloseReason) {
        self.close(reason != CloseReason::Normal).await
    }
}

/// Runs the connection until it closes, then releases the session.
pub(crate) async fn run<S: FrameSource, K: FrameSink>(
    server: Arc<ServerInner>,
    connection: ConnectionInfo,
    source: S,
    sink: K,
) {
    let address = connection.remote_addr.map(|a| a.ip());
    let _admitted = match server.admission.admit(address) {
        Ok(admitted) => admitted,
        Err(refusal) => return refuse(sink, refusal, connection.remote_addr).await,
    };
    let limits = &server.config.limits;
    let (outbound, rx) = Outbound::new(Bounds {
        high_water: limits.max_outbound_bytes,
        hard_max: limits.max_outbound_burst.max(limits.max_outbound_bytes),
        grace: limits.slow_consumer_grace,
        policy: server.config.slow_consumer,
        budget: server.budget.clone(),
    });
    let (transport, peer) = (connection.transport, connection.remote_addr);
    // Boxed: the session is the bulk of an idle connection's state, and the task's future
    // stays small.
    let session = Box::new(Session::new(server.clone(), outbound.clone(), connection));
    // Every event of this session carries its id, transport, peer and (once known) user.
    let span = tracing::info_span!(
        "session",
        id = session.id(),
        transport,
        peer = tracing::field::debug(peer),
        user = tracing::field::Empty,
    );
    run_session(server.clone(), session, outbound, rx, source, sink)
        .instrument(span)
        .await;
}

async fn run_session<S: FrameSource, K: FrameSink>(
    server: Arc<ServerInner>,
    mut session: Box<Session>,
    outbound: Outbound,
    rx: OutboundRx,
    source: S,
    sink: K,
) {
    let heartbeat = session.shared().heartbeat.subscribe();
    // Counted until the session's cleanup is done, so a shutdown waits for it.
    let _registration = server.lifecycle.register(outbound.clone());
    debug!(session = session.id(), "connection opened");
    let reader = async {
        read_loop(&server, &mut session, source, &outbound).await;
        // The writer flushes what is queued (the ERROR, the last RECEIPT) and closes; a peer
        // that stopped reading does not keep the connection open for long.
        tokio::select! {
            _ = outbound.killed() => {}
            _ = tokio::time::sleep(CLOSE_TIMEOUT) => outbound.kill(),
        }
    };
    let writer = write_loop(rx, sink, &outbound, heartbeat);
    tokio::join!(reader, writer, outbound.watchdog());
    // Boxed, like the other paths an idle connection never takes, so that the task's
    // future is as small as its idle state.
    Box::pin(session.cleanup()).await;
}

/// Tells a connection the server will not serve why, and closes it.
async fn refuse<K: FrameSink>(mut sink: K, refusal: Refusal, peer: Option<SocketAddr>) {
    warn!(peer = ?peer, %refusal, "connection refused");
    let message = match refusal {
        Refusal::Rate { .. } => "too many connection attempts",
        Refusal::Total { .. } | Refusal::PerAddress { .. } => "too many connections",
    };
    let frame = Frame::error(message, refusal.to_string());
    let farewell = Box::pin(async {
        sink.write(&Out::Frame(frame.encode(Version::V1_2))).await?;
        sink.flush().await
    });
    let _ = timeout(FAREWELL_TIMEOUT, farewell).await;
    let _ = timeout(
        FAREWELL_TIMEOUT,
        Box::pin(sink.close_with(CloseReason::TryAgain)),
    )
    .await;
}

async fn read_loop<S: FrameSource>(
    server: &ServerInner,
    session: &mut Session,
    mut source: S,
    outbound: &Outbound,
) {
    let killed = outbound.killed();
    tokio::pin!(killed);
    let draining = server.lifecycle.draining.clone();
    let shutdown = draining.cancelled();
    tokio::pin!(shutdown);
    let mut parser = Parser::new(&server.config.limits);
    // Grows with the traffic and is released whenever it empties: an idle session holds
    // no read buffer.
    let mut buf = BytesMut::new();
    let heartbeat = session.shared().heartbeat.subscribe();
    let connect_deadline = Instant::now() + server.config.connect_timeout;
    let grace = server.config.heartbeat.grace;
    let frame_timeout = server.config.limits.frame_timeout;
    // When the first byte of the frame still incomplete arrived.
    let mut frame_started: Option<Instant> = None;
    loop {
        // Silence allowed before the peer counts as dead.
        let silence = if !session.is_open() {
            Some(connect_deadline)
        } else {
            let (_, expect) = *heartbeat.borrow();
            (expect > 0).then(|| {
                Instant::now() + Duration::from_millis((expect as f64 * grace).ceil() as u64)
            })
        };
        // However lively, a peer gets `frame_timeout` to finish a frame it started.
        let frame_deadline = frame_started.map(|t| t + frame_timeout);
        let deadline = match (silence, frame_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if buf.is_empty() && buf.capacity() > 0 {
            buf = BytesMut::new();
        }
        let read = async {
            match deadline {
                Some(d) => timeout(d - Instant::now().min(d), source.read(&mut buf)).await,
                None => Ok(source.read(&mut buf).await),
            }
        };
        let outcome = tokio::select! {
            _ = &mut killed => return,
            _ = &mut shutdown => {
                session.protocol_error(SHUTDOWN_MESSAGE, SHUTDOWN_DETAILS);
                return;
            }
            r = read => r,
        };
        match outcome {
            Err(_elapsed) => {
                // Say how long the peer was given, so a client can tell a slow network from
                // a misconfigured heart-beat or a missing CONNECT.
                let (what, details) = if frame_deadline.is_some_and(|d| d <= Instant::now()) {
                    let ms = frame_timeout.as_millis();
                    let details = format!(
                        "A frame was still incomplete {ms} ms after its first byte arrived."
                    );
                    ("frame timeout", details)
                } else if session.is_open() {
                    let (_, expect) = *heartbeat.borrow();
                    let allowed = (expect as f64 * grace).ceil() as u64;
                    let details = format!(
                        "No frame or heart-beat arrived for {allowed} ms (negotiated interval \
                         {expect} ms, grace factor {grace})."
                    );
                    ("heart-beat timeout", details)
                } else {
                    let ms = server.config.connect_timeout.as_millis();
                    let details = format!(
                        "No CONNECT frame arrived within {ms} ms of the connection opening."
                    );
                    ("CONNECT timeout", details)
                };
                session.protocol_error(what, &details);
                return;
            }
            Ok(Err(e)) => {
                if let Some(fault) = source.fault() {
                    let receipt = fault
                        .head
                        .as_deref()
                        .and_then(|head| receipt_of(head, session.version()));
                    session.protocol_error_with(
                        fault.message,
                        &fault.details,
                        receipt.as_deref(),
                        fault.close,
                    );
                    return;
                }
                debug!(session = session.id(), error = %e, "read failed");
                outbound.kill();
                return;
            }
            Ok(Ok(false)) => {
                outbound.kill();
                return;
            }
            Ok(Ok(true)) => {}
        }
        loop {
            match parser.parse(&mut buf) {
                Ok(None) => break,
                Ok(Some(Parsed::HeartBeat)) => {}
                Ok(Some(Parsed::Frame(frame))) => {
                    frame_started = None;
                    // Boxed: handling a frame may run a handler with a large future, which
                    // an idle connection should not carry. A panic ends this session with an
                    // ERROR, and its cleanup still runs; other sessions never notice.
                    let handled = tokio::select! {
                        h = AssertUnwindSafe(Box::pin(session.handle(frame))).catch_unwind() => h,
                        // A handler still busy when the server stops is abandoned.
                        _ = &mut shutdown => {
                            session.protocol_error(SHUTDOWN_MESSAGE, SHUTDOWN_DETAILS);
                            return;
                        }
                    };
                    let flow = match handled {
                        Ok(flow) => flow,
                        Err(payload) => {
                            let detail = crate::advice::panic_text(payload.as_ref());
                            error!(session = session.id(), panic = %detail, "session panicked");
                            session.protocol_error(
                                "internal error",
                                "The server failed while handling this frame.",
                            );
                            return;
                        }
                    };
                    parser.set_version(session.version());
                    if flow == Flow::Close {
                        return;
                    }
                }
                Err(e) => {
                    let (message, close) = match e {
                        FrameError::FrameTooLarge { .. } => {
                            ("frame too large", CloseReason::TooBig)
                        }
                        _ => ("malformed frame", CloseReason::Normal),
                    };
                    let receipt = parser.receipt().map(str::to_owned);
                    session.protocol_error_with(message, &e.to_string(), receipt.as_deref(), close);
                    return;
                }
            }
        }
        if buf.is_empty() && !source.in_progress() {
            frame_started = None;
        } else if frame_started.is_none() {
            frame_started = Some(Instant::now());
        }
    }
}

/// The `receipt` of the STOMP frame starting `head` (after any heart-beats), if its head is
/// complete there.
fn receipt_of(head: &[u8], version: Version) -> Option<String> {
    let limits = Limits {
        max_frame_size: usize::MAX,
        ..Limits::default()
    };
    let mut parser = Parser::new(&limits);
    parser.set_version(version);
    let mut buf = BytesMut::from(head);
    loop {
        match parser.parse(&mut buf) {
            Ok(Some(Parsed::HeartBeat)) => continue,
            _ => return parser.receipt().map(str::to_owned),
        }
    }
}

async fn write_loop<K: FrameSink>(
    rx: OutboundRx,
    mut sink: K,
    outbound: &Outbound,
    heartbeat: tokio::sync::watch::Receiver<(u64, u64)>,
) {
    // Created once: re-creating wake-up futures on every pass costs more than the write.
    let killed = outbound.killed();
    tokio::pin!(killed);
    let beat = sleep_until(Instant::now());
    tokio::pin!(beat);
    let mut armed_for: Option<Instant> = None;
    let mut last_write = Instant::now();
    let mut batch: VecDeque<Out> = VecDeque::new();
    loop {
        // The interval is set at CONNECT, whose CONNECTED frame wakes this loop.
        let (every, _) = *heartbeat.borrow();
        let beat_at = (every > 0).then(|| last_write + Duration::from_millis(every));
        if let Some(at) = beat_at
            && armed_for != Some(at)
        {
            beat.as_mut().reset(at);
            armed_for = Some(at);
        }
        tokio::select! {
            biased;
            _ = &mut killed => break,
            _ = rx.recv_batch(&mut batch) => {}
            _ = &mut beat, if beat_at.is_some() => {
                // Every socket operation races the kill: a peer that stopped reading must
                // not hold the writer (and so the session) forever.
                let sent = tokio::select! {
                    biased;
                    _ = &mut killed => break,
                    r = sink.heartbeat() => r,
                };
                if sent.is_err() {
                    outbound.kill();
                    return;
                }
                last_write = Instant::now();
                continue;
            }
        }
        // Write everything queued, then flush once.
        while let Some(item) = batch.pop_front() {
            if matches!(item, Out::Close) {
                let reason = outbound.close_reason();
                let close = Box::pin(async {
                    let _ = sink.flush().await;
                    sink.close_with(reason).await;
                });
                tokio::select! {
                    biased;
                    _ = &mut killed => {}
                    _ = close => {}
                }
                outbound.kill();
                return;
            }
            let written = tokio::select! {
                biased;
                _ = &mut killed => None,
                r = sink.write(&item) => Some(r),
            };
            match written {
                None => break,
                Some(Err(_)) => {
                    outbound.kill();
                    return;
                }
                Some(Ok(())) => rx.written(&item),
            }
        }
        if outbound.is_killed() {
            break;
        }
        if batch.capacity() > 64 {
            // Release what a burst grew.
            batch = VecDeque::new();
        }
        let flushed = tokio::select! {
            biased;
            _ = &mut killed => break,
            r = sink.flush() => r,
        };
        if flushed.is_err() {
            outbound.kill();
            return;
        }
        last_write = Instant::now();
    }
    // Torn down without draining: a slow consumer hears why, best effort.
    if let Some((message, details)) = outbound.farewell() {
        let frame = Frame::error(message, details);
        let bytes: Bytes = frame.encode(crate::frame::Version::V1_2);
        let farewell = Box::pin(async {
            sink.write(&Out::Frame(bytes)).await?;
            sink.flush().await
        });
        let _ = timeout(FAREWELL_TIMEOUT, farewell).await;
        let _ = timeout(
            FAREWELL_TIMEOUT,
            Box::pin(sink.close_with(CloseReason::Policy)),
        )
        .await;
    }
    // Otherwise killed: the peer is gone, or does not read, or the deadline of a shutdown
    // passed. The socket is dropped without waiting on it.
}
