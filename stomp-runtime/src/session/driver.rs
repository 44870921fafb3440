//! Runs one connection: a read loop feeding the parser and the session, and a write loop
//! draining the outbound queue, sending heart-beats and closing the socket.
//!
//! Both loops run in one task (`join`), so the driver needs no spawning and works for
//! transports whose halves are not `Send` (actix-ws).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::debug;

use super::outbound::{Out, Outbound, OutboundRx};
use super::{Flow, Session};
use crate::frame::{Command, Frame, Parsed, Parser};
use crate::server::ServerInner;

/// Longest wait for the farewell ERROR frame to be written to a connection being torn down.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for queued frames to be flushed once the session has ended.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The receiving half of a transport.
pub(crate) trait FrameSource {
    /// Appends received bytes to `buf`; `Ok(false)` at end of stream.
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool>;
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
}

/// Runs the connection until it closes, then releases the session.
pub(crate) async fn run<S: FrameSource, K: FrameSink>(
    server: Arc<ServerInner>,
    source: S,
    sink: K,
) {
    let limits = &server.config.limits;
    let (outbound, rx) = Outbound::new(limits.max_outbound_bytes, server.config.slow_consumer);
    let mut session = Session::new(server.clone(), outbound.clone());
    let heartbeat = session.shared().heartbeat.subscribe();
    debug!(session = session.id(), "connection opened");
    let kill = outbound.kill_token().clone();
    let reader = async {
        read_loop(&server, &mut session, source, &outbound).await;
        // The writer flushes what is queued (the ERROR, the last RECEIPT) and closes; a peer
        // that stopped reading does not keep the connection open for long.
        tokio::select! {
            _ = kill.cancelled() => {}
            _ = tokio::time::sleep(CLOSE_TIMEOUT) => kill.cancel(),
        }
    };
    let writer = write_loop(rx, sink, &outbound, heartbeat);
    tokio::join!(reader, writer);
    session.cleanup().await;
}

async fn read_loop<S: FrameSource>(
    server: &ServerInner,
    session: &mut Session,
    mut source: S,
    outbound: &Outbound,
) {
    let kill = outbound.kill_token().clone();
    let mut parser = Parser::new(&server.config.limits);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let heartbeat = session.shared().heartbeat.subscribe();
    let connect_deadline = Instant::now() + server.config.connect_timeout;
    let grace = server.config.heartbeat.grace;
    loop {
        // Silence allowed before the peer counts as dead.
        let deadline = if !session.is_open() {
            Some(connect_deadline)
        } else {
            let (_, expect) = *heartbeat.borrow();
            (expect > 0).then(|| {
                Instant::now() + Duration::from_millis((expect as f64 * grace).ceil() as u64)
            })
        };
        let read = async {
            match deadline {
                Some(d) => timeout(d - Instant::now().min(d), source.read(&mut buf)).await,
                None => Ok(source.read(&mut buf).await),
            }
        };
        let outcome = tokio::select! {
            _ = kill.cancelled() => return,
            r = read => r,
        };
        match outcome {
            Err(_elapsed) => {
                // Say how long the peer was given, so a client can tell a slow network from
                // a misconfigured heart-beat or a missing CONNECT.
                let (what, details) = if session.is_open() {
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
                debug!(session = session.id(), error = %e, "read failed");
                outbound.kill_token().cancel();
                return;
            }
            Ok(Ok(false)) => {
                outbound.kill_token().cancel();
                return;
            }
            Ok(Ok(true)) => {}
        }
        loop {
            match parser.parse(&mut buf) {
                Ok(None) => break,
                Ok(Some(Parsed::HeartBeat)) => {}
                Ok(Some(Parsed::Frame(frame))) => {
                    let flow = session.handle(frame).await;
                    parser.set_version(session.version());
                    if flow == Flow::Close {
                        return;
                    }
                }
                Err(e) => {
                    session.protocol_error("malformed frame", &e.to_string());
                    return;
                }
            }
        }
    }
}

async fn write_loop<K: FrameSink>(
    mut rx: OutboundRx,
    mut sink: K,
    outbound: &Outbound,
    mut heartbeat: tokio::sync::watch::Receiver<(u64, u64)>,
) {
    let kill = outbound.kill_token().clone();
    let mut last_write = Instant::now();
    loop {
        let (every, _) = *heartbeat.borrow();
        let beat_at = (every > 0).then(|| last_write + Duration::from_millis(every));
        let item = tokio::select! {
            biased;
            _ = kill.cancelled() => break,
            item = rx.recv() => item,
            _ = heartbeat.changed() => continue,
            _ = sleep_or_never(beat_at) => {
                // Every socket operation races `kill`: a peer that stopped reading must not
                // hold the writer (and so the session) forever.
                let beat = tokio::select! {
                    biased;
                    _ = kill.cancelled() => break,
                    r = sink.heartbeat() => r,
                };
                if beat.is_err() {
                    kill.cancel();
                    return;
                }
                last_write = Instant::now();
                continue;
            }
        };
        let Some(mut item) = item else { break };
        // Write everything already queued, then flush once.
        loop {
            if matches!(item, Out::Close) {
                tokio::select! {
                    biased;
                    _ = kill.cancelled() => {}
                    _ = async {
                        let _ = sink.flush().await;
                        sink.close(false).await;
                    } => {}
                }
                kill.cancel();
                return;
            }
            let written = tokio::select! {
                biased;
                _ = kill.cancelled() => None,
                r = sink.write(&item) => Some(r),
            };
            match written {
                None => break,
                Some(Err(_)) => {
                    kill.cancel();
                    return;
                }
                Some(Ok(())) => rx.written(&item),
            }
            match rx.try_recv() {
                Some(next) => item = next,
                None => break,
            }
        }
        if kill.is_cancelled() {
            break;
        }
        let flushed = tokio::select! {
            biased;
            _ = kill.cancelled() => break,
            r = sink.flush() => r,
        };
        if flushed.is_err() {
            kill.cancel();
            return;
        }
        last_write = Instant::now();
    }
    // Torn down without draining: a slow consumer hears why, best effort.
    if outbound.overflowed() {
        let frame = Frame::error(
            "slow consumer",
            "The session's outbound queue exceeded its limit; the connection is closed.",
        );
        let bytes: Bytes = frame.encode(crate::frame::Version::V1_2);
        let _ = timeout(FAREWELL_TIMEOUT, async {
            sink.write(&Out::Frame(bytes)).await?;
            sink.flush().await
        })
        .await;
        debug_assert_eq!(frame.command, Command::Error);
    }
    let _ = timeout(FAREWELL_TIMEOUT, sink.close(outbound.overflowed())).await;
}

async fn sleep_or_never(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
