//! An async STOMP client over TCP and WebSocket.
//!
//! For tests, benchmarks, examples and devices. One background task per connection reads
//! and writes frames; the [`Client`] and the [`Subscription`]s and [`Transaction`]s it
//! hands out are cheap handles onto it. Calls that say they wait for a receipt return once
//! the server has processed the frame; the others return once it is queued for the socket.
//!
//! ```no_run
//! use stomp_runtime::broker::AckMode;
//! use stomp_runtime::client::{Client, ConnectOptions};
//!
//! # async fn run() -> Result<(), stomp_runtime::client::ClientError> {
//! let client = Client::connect_ws("ws://127.0.0.1:8080/ws", ConnectOptions::new()).await?;
//! let mut jobs = client.subscribe("/queue/jobs", AckMode::ClientIndividual).await?;
//! client.send("/queue/jobs", "resize 42.png").await?;
//! if let Some(job) = jobs.next().await {
//!     println!("{}", job.text().unwrap_or_default());
//!     client.ack(&job).await?;
//! }
//! client.disconnect().await?;
//! # Ok(())
//! # }
//! ```
//!
//! An ERROR frame from the server ends the connection; every pending call fails with
//! [`ClientError::Server`], subscriptions end, and [`Client::closed`] reports it.

mod connection;
mod error;
mod message;
mod options;
#[cfg(feature = "sockjs-client")]
mod sockjs;
mod subscription;
mod transaction;
mod transport;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::ToSocketAddrs;
use tokio::time::timeout;

pub use error::ClientError;
pub use message::Message;
pub use options::ConnectOptions;
pub use subscription::Subscription;
pub use transaction::Transaction;

use crate::broker::AckMode;
use crate::frame::{Command, Frame, Headers, Version};
use connection::Inner;

/// A connected STOMP client.
///
/// Methods take `&self`, so one client can serve several tasks (share it in an `Arc`).
/// Dropping the client closes the connection at once, without DISCONNECT; its
/// subscriptions then end. [`Client::disconnect`] closes it politely.
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Connects over raw TCP and waits for CONNECTED.
    ///
    /// Fails with [`ClientError::Server`] if the server answers CONNECT with ERROR (a
    /// refused login, say).
    pub async fn connect_tcp(
        addr: impl ToSocketAddrs,
        opts: ConnectOptions,
    ) -> Result<Client, ClientError> {
        within_connect_timeout(&opts, async {
            let (reader, writer, host) = transport::tcp(addr).await?;
            connection::establish(reader, writer, &host, &opts).await
        })
        .await
    }

    /// Connects over WebSocket (`ws://host:port/path`) and waits for CONNECTED.
    ///
    /// Offers the subprotocols of the accepted versions, highest first (`v12.stomp,
    /// v11.stomp, v10.stomp`). Fails with [`ClientError::Server`] if the server answers
    /// CONNECT with ERROR.
    pub async fn connect_ws(url: &str, opts: ConnectOptions) -> Result<Client, ClientError> {
        within_connect_timeout(&opts, async {
            let max_message = connection::MAX_FRAME + 1024;
            let (reader, writer, host) =
                transport::ws(url, &opts.subprotocols(), max_message).await?;
            connection::establish(reader, writer, &host, &opts).await
        })
        .await
    }

    /// Connects over SockJS (`http://host:port/path`, the endpoint's base URL) with the
    /// xhr-streaming transport, and waits for CONNECTED: for networks that let plain HTTP
    /// through but not WebSocket. Needs the `sockjs-client` feature.
    #[cfg(feature = "sockjs-client")]
    pub async fn connect_sockjs(url: &str, opts: ConnectOptions) -> Result<Client, ClientError> {
        within_connect_timeout(&opts, async {
            let (reader, writer, host) = transport::sockjs(url).await?;
            connection::establish(reader, writer, &host, &opts).await
        })
        .await
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> Version {
        self.inner.version
    }

    /// The session id the server gave (the CONNECTED `session` header).
    pub fn session(&self) -> Option<&str> {
        self.inner.connected.get("session")
    }

    /// The server's name and version (the CONNECTED `server` header).
    pub fn server(&self) -> Option<&str> {
        self.inner.connected.get("server")
    }

    /// Every header of the CONNECTED frame.
    pub fn connected_headers(&self) -> &Headers {
        &self.inner.connected
    }

    /// The negotiated heart-beat intervals: how often this client sends, how often it
    /// expects to hear from the server. Zero means off.
    pub fn heartbeat_intervals(&self) -> (Duration, Duration) {
        self.inner.intervals
    }

    /// How many heart-beats (bare end-of-lines) the server has sent so far.
    pub fn heartbeats_received(&self) -> u64 {
        self.inner.heartbeats.load(Ordering::Relaxed)
    }

    /// Subscribes to `destination` (a pattern such as `/topic/rooms.*` works too) and waits
    /// for the server's receipt, so the subscription is in place when this returns.
    pub async fn subscribe(
        &self,
        destination: &str,
        ack: AckMode,
    ) -> Result<Subscription, ClientError> {
        self.subscribe_with(destination, ack, Headers::new()).await
    }

    /// Like [`Client::subscribe`], with SUBSCRIBE headers of your own. An `id` header among
    /// them names the subscription; otherwise the client picks one.
    pub async fn subscribe_with(
        &self,
        destination: &str,
        ack: AckMode,
        headers: Headers,
    ) -> Result<Subscription, ClientError> {
        let id = match headers.get("id") {
            Some(id) => id.to_owned(),
            None => self.inner.next_id("sub"),
        };
        let rx = self.inner.add_route(&id, destination)?;
        let mut frame = Frame::new(Command::Subscribe)
            .header("id", id.as_str())
            .header("destination", destination)
            .header("ack", ack.as_str());
        for (k, v) in headers.iter().filter(|(k, _)| *k != "id") {
            frame = frame.header(k, v);
        }
        if let Err(e) = self.inner.request(frame).await {
            self.inner.remove_route(&id);
            return Err(e);
        }
        Ok(Subscription::new(
            self.inner.clone(),
            id,
            destination.to_owned(),
            rx,
        ))
    }

    /// Sends `body` to `destination`, without waiting for the server.
    pub async fn send(&self, destination: &str, body: impl Into<Bytes>) -> Result<(), ClientError> {
        self.send_with(destination, body, Headers::new()).await
    }

    /// Sends `body` to `destination` with headers of your own (`content-type`, or any
    /// header subscribers should see), without waiting for the server.
    pub async fn send_with(
        &self,
        destination: &str,
        body: impl Into<Bytes>,
        headers: Headers,
    ) -> Result<(), ClientError> {
        let frame = send_frame_for(destination, body.into(), headers);
        self.inner.send_frame(frame).await
    }

    /// Sends `body` to `destination` with headers of your own and waits for the receipt:
    /// once this returns, the server has handed the message to its subscribers' queues.
    pub async fn send_receipted(
        &self,
        destination: &str,
        body: impl Into<Bytes>,
        headers: Headers,
    ) -> Result<(), ClientError> {
        let frame = send_frame_for(destination, body.into(), headers);
        self.inner.request(frame).await
    }

    /// Acknowledges `message`, with the headers the negotiated version wants (1.2: `id`
    /// from the message's `ack` header; 1.1: `message-id` and `subscription`; 1.0:
    /// `message-id`). Under `client` ack mode this acknowledges every earlier message of
    /// the subscription too.
    pub async fn ack(&self, message: &Message) -> Result<(), ClientError> {
        let frame = message::ack_frame(Command::Ack, message, self.inner.version, None)?;
        self.inner.send_frame(frame).await
    }

    /// Rejects `message`, so the server redelivers it (a queue: to another subscriber).
    /// STOMP 1.1 and later; on 1.0 this fails with [`ClientError::InvalidRequest`].
    pub async fn nack(&self, message: &Message) -> Result<(), ClientError> {
        let frame = message::ack_frame(Command::Nack, message, self.inner.version, None)?;
        self.inner.send_frame(frame).await
    }

    /// Begins a transaction.
    pub async fn begin(&self) -> Result<Transaction, ClientError> {
        let id = self.inner.next_id("tx");
        self.inner
            .send_frame(Frame::new(Command::Begin).header("transaction", id.as_str()))
            .await?;
        Ok(Transaction::new(self.inner.clone(), id))
    }

    /// Sends any frame as it is, without waiting: the escape hatch for what the typed
    /// methods do not cover.
    pub async fn send_frame(&self, frame: Frame) -> Result<(), ClientError> {
        self.inner.send_frame(frame).await
    }

    /// Sends any frame with a `receipt` header (its own, or a fresh one) and waits for the
    /// RECEIPT, or fails with the server's ERROR.
    pub async fn request(&self, frame: Frame) -> Result<(), ClientError> {
        self.inner.request(frame).await
    }

    /// Sends DISCONNECT, waits for its receipt and closes the connection. Unacknowledged
    /// messages go back to the server. Succeeds at once if the connection already ended
    /// cleanly.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.inner.disconnect().await
    }

    /// Waits until the connection ends and tells why: `None` after [`Client::disconnect`],
    /// otherwise the cause (the server's ERROR, a silent server, a dropped socket).
    ///
    /// ```no_run
    /// # async fn run(client: stomp_runtime::client::Client) {
    /// let cause = client.closed().await;
    /// assert_eq!(cause.unwrap().server_message(), Some("heart-beat timeout"));
    /// # }
    /// ```
    pub async fn closed(&self) -> Option<ClientError> {
        self.inner.closed().await
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.inner.finish(Some(ClientError::Closed));
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("version", &self.inner.version)
            .field("session", &self.session())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A SEND frame: `destination`, then the caller's headers, then the body.
pub(crate) fn send_frame_for(destination: &str, body: Bytes, headers: Headers) -> Frame {
    let mut frame = Frame::new(Command::Send).header("destination", destination);
    for (k, v) in headers.iter() {
        frame = frame.header(k, v);
    }
    frame.body(body)
}

async fn within_connect_timeout(
    opts: &ConnectOptions,
    connect: impl Future<Output = Result<Arc<Inner>, ClientError>>,
) -> Result<Client, ClientError> {
    let wait = opts.connect_wait();
    match timeout(wait, connect).await {
        Ok(inner) => Ok(Client { inner: inner? }),
        Err(_elapsed) => Err(ClientError::Timeout {
            waiting_for: "CONNECTED",
            after: wait,
        }),
    }
}
