//! The client's two transports, raw TCP and WebSocket, as a byte reader and a frame writer.

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::ClientError;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// Write buffer of a TCP connection; frames queued together leave in one flush.
const WRITE_BUFFER: usize = 16 * 1024;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The receiving half of a connection.
pub(crate) enum Reader {
    Tcp(OwnedReadHalf),
    Ws(SplitStream<Ws>),
    #[cfg(feature = "sockjs-client")]
    SockJs(super::sockjs::SockJsReader),
}

/// The sending half of a connection.
pub(crate) enum Writer {
    Tcp(BufWriter<OwnedWriteHalf>),
    Ws(SplitSink<Ws, WsMessage>),
    #[cfg(feature = "sockjs-client")]
    SockJs(super::sockjs::SockJsWriter),
}

/// Opens a raw STOMP connection; also returns the default `host` header (the peer's IP).
pub(crate) async fn tcp(addr: impl ToSocketAddrs) -> Result<(Reader, Writer, String), ClientError> {
    let stream = TcpStream::connect(addr).await?;
    // Frames are small and latency matters more than packet count.
    stream.set_nodelay(true)?;
    let host = stream.peer_addr()?.ip().to_string();
    let (r, w) = stream.into_split();
    Ok((
        Reader::Tcp(r),
        Writer::Tcp(BufWriter::with_capacity(WRITE_BUFFER, w)),
        host,
    ))
}

/// Opens a WebSocket offering `subprotocols` (a `Sec-WebSocket-Protocol` value); also
/// returns the default `host` header (the URL's host).
pub(crate) async fn ws(
    url: &str,
    subprotocols: &str,
    max_message: usize,
) -> Result<(Reader, Writer, String), ClientError> {
    let mut request = url.into_client_request()?;
    let offer = HeaderValue::from_str(subprotocols)
        .map_err(|e| ClientError::WebSocket(format!("invalid subprotocol list: {e}")))?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", offer);
    let host = request.uri().host().unwrap_or("localhost").to_owned();
    // tungstenite reserves 128 KiB per connection to read into by default; STOMP frames
    // are small, and a tool holding thousands of connections feels it.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let (stream, _response) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let (sink, source) = stream.split();
    Ok((Reader::Ws(source), Writer::Ws(sink), host))
}

impl Reader {
    /// Appends received bytes to `buf`; `Ok(false)` at end of stream. Cancel safe.
    pub(crate) async fn read(&mut self, buf: &mut BytesMut) -> Result<bool, ClientError> {
        match self {
            Reader::Tcp(r) => {
                buf.reserve(READ_CHUNK);
                Ok(r.read_buf(buf).await? > 0)
            }
            Reader::Ws(source) => match source.next().await {
                None | Some(Ok(WsMessage::Close(_))) => Ok(false),
                Some(Ok(WsMessage::Text(text))) => {
                    buf.extend_from_slice(text.as_bytes());
                    Ok(true)
                }
                Some(Ok(WsMessage::Binary(bytes))) => {
                    buf.extend_from_slice(&bytes);
                    Ok(true)
                }
                // Pings and pongs carry no STOMP data but show the server is alive.
                Some(Ok(_)) => Ok(true),
                Some(Err(e)) => match ClientError::from(e) {
                    ClientError::Closed => Ok(false),
                    other => Err(other),
                },
            },
            #[cfg(feature = "sockjs-client")]
            Reader::SockJs(r) => r.read(buf).await,
        }
    }
}

impl Writer {
    /// Queues one encoded frame (or heart-beat); it leaves at the next [`Writer::flush`].
    pub(crate) async fn write(&mut self, bytes: Bytes) -> Result<(), ClientError> {
        match self {
            Writer::Tcp(w) => Ok(w.write_all(&bytes).await?),
            Writer::Ws(sink) => Ok(sink.feed(ws_message(bytes)).await?),
            #[cfg(feature = "sockjs-client")]
            Writer::SockJs(w) => {
                w.write(bytes);
                Ok(())
            }
        }
    }

    /// Pushes queued bytes to the server.
    pub(crate) async fn flush(&mut self) -> Result<(), ClientError> {
        match self {
            Writer::Tcp(w) => Ok(w.flush().await?),
            Writer::Ws(sink) => Ok(sink.flush().await?),
            #[cfg(feature = "sockjs-client")]
            Writer::SockJs(w) => w.flush().await,
        }
    }

    /// Closes the connection (TCP FIN, WebSocket close frame), best effort.
    pub(crate) async fn close(&mut self) {
        match self {
            Writer::Tcp(w) => {
                let _ = w.shutdown().await;
            }
            Writer::Ws(sink) => {
                let _ = sink.close().await;
            }
            #[cfg(feature = "sockjs-client")]
            Writer::SockJs(w) => w.close(),
        }
    }
}

/// Opens a SockJS session over xhr-streaming; also returns the default `host` header.
#[cfg(feature = "sockjs-client")]
pub(crate) async fn sockjs(url: &str) -> Result<(Reader, Writer, String), ClientError> {
    let (r, w, host) = super::sockjs::open(url).await?;
    Ok((Reader::SockJs(r), Writer::SockJs(w), host))
}

/// Text when the frame is UTF-8 (what browsers' STOMP clients send), binary otherwise.
fn ws_message(bytes: Bytes) -> WsMessage {
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => WsMessage::Text(text),
        Err(_) => WsMessage::Binary(bytes),
    }
}
