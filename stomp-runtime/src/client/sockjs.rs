//! The client's SockJS transport: `xhr_streaming` to receive and `xhr_send` to send, for
//! networks where WebSocket does not get through. Plain `http://` only.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::ClientError;

/// Messages the receiving task may hold before it stops reading the response.
const RECEIVE_QUEUE: usize = 256;
/// Longest frame line accepted from the server (a batch of messages is one line).
const MAX_LINE: usize = 16 * 1024 * 1024;

fn io_error(e: impl std::fmt::Display) -> ClientError {
    ClientError::from(io::Error::other(e.to_string()))
}

/// A parsed `http://host:port/path` with a new session's path under it.
struct Endpoint {
    authority: String,
    host: String,
    session_path: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Self, ClientError> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            ClientError::InvalidRequest(format!("`{url}`: a SockJS URL is http://HOST:PORT/PATH"))
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(ClientError::InvalidRequest(format!("`{url}` has no host")));
        }
        let host = match authority.rsplit_once(':') {
            Some((h, _)) => h.trim_matches(['[', ']']),
            None => authority,
        };
        let server = random() % 1000;
        let session = format!("{:016x}{:016x}", random(), random());
        Ok(Self {
            authority: if authority.contains(':') {
                authority.to_owned()
            } else {
                format!("{authority}:80")
            },
            host: host.to_owned(),
            session_path: format!("{path}/{server:03}/{session}"),
        })
    }
}

fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.finish()
}

async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, ClientError> {
    let stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io_error)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn post(ep: &Endpoint, what: &str, body: Bytes) -> hyper::Request<Full<Bytes>> {
    hyper::Request::post(format!("{}/{what}", ep.session_path))
        .header(hyper::header::HOST, ep.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(Full::new(body))
        .expect("a valid request")
}

/// The receiving half: messages decoded by the streaming task.
pub(crate) struct SockJsReader {
    messages: mpsc::Receiver<Bytes>,
    task: JoinHandle<()>,
}

impl Drop for SockJsReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SockJsReader {
    /// Appends the next message to `buf`; `Ok(false)` once the session ended. Cancel safe.
    pub(crate) async fn read(&mut self, buf: &mut BytesMut) -> Result<bool, ClientError> {
        match self.messages.recv().await {
            Some(m) => {
                buf.extend_from_slice(&m);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// The sending half: frames queued until the next flush, then one `xhr_send`.
pub(crate) struct SockJsWriter {
    endpoint: Endpoint,
    conn: Option<SendRequest<Full<Bytes>>>,
    pending: Vec<String>,
}

impl SockJsWriter {
    pub(crate) fn write(&mut self, bytes: Bytes) {
        self.pending
            .push(String::from_utf8_lossy(&bytes).into_owned());
    }

    pub(crate) async fn flush(&mut self) -> Result<(), ClientError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let body = Bytes::from(serde_json::to_vec(&self.pending).expect("strings serialize"));
        // The kept-alive connection may have been closed by the server meanwhile: one retry
        // on a fresh connection.
        for attempt in 0..2 {
            let usable = match self.conn.as_mut() {
                Some(c) => c.ready().await.is_ok(),
                None => false,
            };
            if !usable {
                self.conn = Some(connect(&self.endpoint.authority).await?);
            }
            let conn = self.conn.as_mut().expect("set above");
            match conn
                .send_request(post(&self.endpoint, "xhr_send", body.clone()))
                .await
            {
                Ok(res) => {
                    let status = res.status();
                    let _ = res.into_body().collect().await;
                    if status.as_u16() == 404 {
                        return Err(ClientError::Closed);
                    }
                    if !status.is_success() {
                        return Err(ClientError::Protocol(format!("xhr_send answered {status}")));
                    }
                    self.pending.clear();
                    return Ok(());
                }
                Err(e) if attempt == 0 => {
                    tracing::debug!(error = %e, "xhr_send failed; retrying on a new connection");
                    self.conn = None;
                }
                Err(e) => return Err(io_error(e)),
            }
        }
        unreachable!("the loop returns")
    }

    pub(crate) fn close(&mut self) {
        self.pending.clear();
        self.conn = None;
    }
}

/// What one `xhr_streaming` response ended with.
enum Ended {
    /// The byte limit: open another.
    Limit,
    /// A close frame, the reader gone, or a failure.
    Session,
}

/// Opens a SockJS session at `url` over xhr-streaming; also returns the default `host`
/// header (the URL's host).
pub(crate) async fn open(url: &str) -> Result<(SockJsReader, SockJsWriter, String), ClientError> {
    let endpoint = Endpoint::parse(url)?;
    let host = endpoint.host.clone();
    let (tx, messages) = mpsc::channel(RECEIVE_QUEUE);
    let (opened_tx, opened) = oneshot::channel();
    let receiving = Endpoint {
        authority: endpoint.authority.clone(),
        host: endpoint.host.clone(),
        session_path: endpoint.session_path.clone(),
    };
    let task = tokio::spawn(async move {
        let mut opened_tx = Some(opened_tx);
        loop {
            match stream_once(&receiving, &tx, &mut opened_tx).await {
                Ok(Ended::Limit) => continue,
                Ok(Ended::Session) => return,
                Err(e) => {
                    if let Some(o) = opened_tx.take() {
                        let _ = o.send(Err(e));
                    }
                    return;
                }
            }
        }
    });
    let reader = SockJsReader { messages, task };
    match tokio::time::timeout(Duration::from_secs(60), opened).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(e),
        Ok(Err(_)) | Err(_) => {
            return Err(ClientError::Protocol(
                "the SockJS session did not open".into(),
            ));
        }
    }
    let writer = SockJsWriter {
        endpoint,
        conn: None,
        pending: Vec::new(),
    };
    Ok((reader, writer, host))
}

async fn stream_once(
    ep: &Endpoint,
    tx: &mpsc::Sender<Bytes>,
    opened: &mut Option<oneshot::Sender<Result<(), ClientError>>>,
) -> Result<Ended, ClientError> {
    let mut conn = connect(&ep.authority).await?;
    let res = conn
        .send_request(post(ep, "xhr_streaming", Bytes::new()))
        .await
        .map_err(io_error)?;
    if !res.status().is_success() {
        return Err(ClientError::Protocol(format!(
            "xhr_streaming answered {}",
            res.status()
        )));
    }
    let mut body = res.into_body();
    let mut line = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(io_error)?.into_data() else {
            continue;
        };
        line.extend_from_slice(&data);
        while let Some(end) = line.iter().position(|&b| b == b'\n') {
            let frame = line.split_to(end + 1);
            let frame = &frame[..end];
            match frame.first() {
                Some(b'o') => {
                    if let Some(o) = opened.take() {
                        let _ = o.send(Ok(()));
                    }
                }
                Some(b'a') => {
                    let batch: Vec<String> = serde_json::from_slice(&frame[1..])
                        .map_err(|e| ClientError::Protocol(format!("bad SockJS frame: {e}")))?;
                    for m in batch {
                        if tx.send(Bytes::from(m)).await.is_err() {
                            return Ok(Ended::Session);
                        }
                    }
                }
                Some(b'c') => {
                    return match opened.take() {
                        Some(_) => Err(ClientError::Protocol(format!(
                            "the server closed the SockJS session: {}",
                            String::from_utf8_lossy(&frame[1..])
                        ))),
                        None => Ok(Ended::Session),
                    };
                }
                // Heart-beats, and the prelude of `h`s.
                _ => {}
            }
        }
        if line.len() > MAX_LINE {
            return Err(ClientError::Protocol("SockJS frame too long".into()));
        }
    }
    Ok(Ended::Limit)
}
