//! Raw STOMP over TCP.

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream, tcp::OwnedReadHalf, tcp::OwnedWriteHalf};
use tracing::{debug, warn};

use crate::server::StompServer;
use crate::session::driver::{self, FrameSink, FrameSource};
use crate::session::outbound::Out;
use crate::transport::ConnectionInfo;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

struct TcpSource(OwnedReadHalf);

impl FrameSource for TcpSource {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        // Wait for data before reserving room for it: an idle connection holds no buffer.
        loop {
            self.0.readable().await?;
            buf.reserve(READ_CHUNK);
            match self.0.try_read_buf(buf) {
                Ok(n) => return Ok(n > 0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

struct TcpSink(BufWriter<OwnedWriteHalf>);

impl FrameSink for TcpSink {
    async fn write(&mut self, item: &Out) -> io::Result<()> {
        match item {
            Out::Frame(b) => self.0.write_all(b).await,
            Out::Message { head, shared } => {
                self.0.write_all(head).await?;
                self.0.write_all(shared).await
            }
            Out::Close => Ok(()),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.0.flush().await
    }

    async fn heartbeat(&mut self) -> io::Result<()> {
        self.0.write_all(b"\n").await?;
        self.0.flush().await
    }

    async fn close(&mut self, _error: bool) {
        let _ = self.0.shutdown().await;
    }
}

impl StompServer {
    /// Serves raw STOMP on `listener` until the returned future is dropped or the server
    /// shuts down.
    ///
    /// Each connection runs on its own task (`tokio::spawn`).
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let server = stomp_runtime::StompServer::builder().build().unwrap();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:61613").await?;
    /// server.serve_tcp(listener).await
    /// # }
    /// ```
    pub async fn serve_tcp(&self, listener: TcpListener) -> io::Result<()> {
        let draining = self.inner.lifecycle.draining.clone();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                // Shutting down: no new connections; the listener closes when dropped.
                _ = draining.cancelled() => return Ok(()),
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            tokio::spawn(self.clone().handle_tcp(stream, peer));
        }
    }

    /// Runs one accepted TCP connection to its end.
    pub async fn handle_tcp(self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        debug!(%peer, "tcp connection");
        let (r, w) = stream.into_split();
        driver::run(
            self.inner.clone(),
            ConnectionInfo::new("tcp", Some(peer)),
            TcpSource(r),
            TcpSink(BufWriter::with_capacity(16 * 1024, w)),
        )
        .await;
    }
}
