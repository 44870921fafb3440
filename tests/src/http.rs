//! A plain HTTP/1.1 client for byte-level checks of HTTP endpoints (SockJS): one connection
//! per request, the response body read as it streams, and the connection cut on drop (a
//! client going away).

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::WAIT;

/// A response whose body is read on demand.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: hyper::HeaderMap,
    body: Incoming,
    buf: BytesMut,
    ended: bool,
    connection: JoinHandle<()>,
}

impl Drop for Response {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Response {
    /// The header `name` as text (`None` if absent).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Reads one more piece of the body into the buffer; `false` at its end.
    async fn fill(&mut self) -> bool {
        if self.ended {
            return false;
        }
        loop {
            let frame = timeout(WAIT, self.body.frame())
                .await
                .expect("the server sent more, or ended the body, in time");
            match frame {
                None => {
                    self.ended = true;
                    return false;
                }
                Some(Err(e)) => panic!("the response body broke: {e}"),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.buf.extend_from_slice(&data);
                        return true;
                    }
                }
            }
        }
    }

    /// Reads exactly `n` more bytes of the body.
    pub async fn take(&mut self, n: usize) -> String {
        while self.buf.len() < n {
            assert!(
                self.fill().await,
                "the body ended after {:?}, {n} bytes expected",
                String::from_utf8_lossy(&self.buf)
            );
        }
        String::from_utf8(self.buf.split_to(n).to_vec()).expect("UTF-8 body")
    }

    /// Reads the next `want.len()` bytes and checks they are `want`.
    pub async fn expect(&mut self, want: &str) {
        let got = self.take(want.len()).await;
        assert_eq!(got, want);
    }

    /// Reads up to and including the next `delimiter`.
    pub async fn until(&mut self, delimiter: &str) -> String {
        loop {
            if let Some(i) = find(&self.buf, delimiter.as_bytes()) {
                let n = i + delimiter.len();
                return String::from_utf8(self.buf.split_to(n).to_vec()).expect("UTF-8 body");
            }
            assert!(
                self.fill().await,
                "the body ended after {:?}, {delimiter:?} expected",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Checks that the body ends with nothing more.
    pub async fn expect_end(&mut self) {
        while self.fill().await {}
        assert!(
            self.buf.is_empty(),
            "unexpected: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// The whole (remaining) body.
    pub async fn text(mut self) -> String {
        while self.fill().await {}
        String::from_utf8(self.buf.split().to_vec()).expect("UTF-8 body")
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends one request on a new connection and returns once the response head arrived.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    let connection = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(body.into())).expect("valid request");
    let res = timeout(WAIT, sender.send_request(req))
        .await
        .expect("response head in time")
        .expect("response");
    let (parts, body) = res.into_parts();
    Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
        buf: BytesMut::new(),
        ended: false,
        connection,
    }
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], Bytes::new()).await
}

/// `POST path` with `body`.
pub async fn post(addr: SocketAddr, path: &str, body: impl Into<Bytes>) -> Response {
    request(addr, "POST", path, &[], body).await
}
