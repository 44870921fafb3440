//! A minimal STOMP session over a socket bound to a chosen source address, for opening
//! more sessions than one source address has ephemeral ports.
//!
//! The library client connects by URL only (`Client::connect_ws` / `connect_tcp`), with no
//! entry point for a pre-bound stream, so the `connections` mode speaks the little it needs
//! (CONNECT, SUBSCRIBE with a receipt, reading MESSAGEs) itself, with the library's frame
//! parser and encoder. Buffers are kept small: this side holds tens of thousands of these.

use std::net::{IpAddr, SocketAddr};

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use stomp_runtime::config::Limits;
use stomp_runtime::frame::{Command, Frame, Parsed, Parser, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};

use crate::target::{Scheme, Target};

/// Bytes read from a raw TCP socket at a time; idle sessions need little.
const TCP_READ_CHUNK: usize = 4096;
/// Read buffer of each WebSocket: 4 KiB instead of tungstenite's eager 128 KiB, as its
/// documentation advises for many mostly idle connections.
const WS_READ_BUFFER: usize = 4096;

enum Conn {
    Ws(Box<WebSocketStream<TcpStream>>),
    Tcp(TcpStream),
}

/// One open STOMP session.
pub struct RawSession {
    conn: Conn,
    parser: Parser,
    buf: BytesMut,
}

impl RawSession {
    /// Binds a socket to `source` (any port), connects to `server`, upgrades to WebSocket
    /// if the target says so, and completes the CONNECT handshake.
    pub async fn open(target: &Target, server: SocketAddr, source: IpAddr) -> Result<Self, String> {
        let socket = match source {
            IpAddr::V4(_) => TcpSocket::new_v4(),
            IpAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|e| format!("socket: {e}"))?;
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("bind {source}: {e}"))?;
        let stream = socket
            .connect(server)
            .await
            .map_err(|e| format!("connect {server} from {source}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("nodelay: {e}"))?;
        let conn = match target.scheme {
            Scheme::SockJs => return Err("SockJS sessions go through the library client".into()),
            Scheme::Tcp => Conn::Tcp(stream),
            Scheme::Ws => {
                let url = format!("ws://{}{}", target.authority, target.path);
                let mut request = url
                    .as_str()
                    .into_client_request()
                    .map_err(|e| format!("`{url}`: {e}"))?;
                request.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    HeaderValue::from_static("v12.stomp, v11.stomp, v10.stomp"),
                );
                let config = WebSocketConfig::default()
                    .read_buffer_size(WS_READ_BUFFER)
                    .write_buffer_size(0);
                let (ws, _) =
                    tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                        .await
                        .map_err(|e| format!("websocket handshake: {e}"))?;
                Conn::Ws(Box::new(ws))
            }
        };
        let limits = Limits {
            max_frame_size: 16 * 1024 * 1024,
            max_headers: 1024,
            max_header_line: 1024 * 1024,
            ..Limits::default()
        };
        let mut session = Self {
            conn,
            parser: Parser::new(&limits),
            buf: BytesMut::new(),
        };
        let host = target.host_header();
        let mut connect = Frame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("host", host)
            .header("heart-beat", "0,0");
        if let Some(login) = &target.login {
            connect = connect.header("login", login.as_str());
        }
        if let Some(passcode) = &target.passcode {
            connect = connect.header("passcode", passcode.as_str());
        }
        session.send(&connect).await?;
        match session.next_frame().await? {
            Some(f) if f.command == Command::Connected => {}
            Some(f) => return Err(refusal("CONNECTED", &f)),
            None => return Err("closed before CONNECTED".into()),
        }
        session.parser.set_version(Version::V1_2);
        Ok(session)
    }

    /// Subscribes to `destination` as subscription `0` and waits for the receipt.
    pub async fn subscribe(&mut self, destination: &str) -> Result<(), String> {
        let frame = Frame::new(Command::Subscribe)
            .header("id", "0")
            .header("destination", destination)
            .header("ack", "auto")
            .header("receipt", "sub-0");
        self.send(&frame).await?;
        match self.next_frame().await? {
            Some(f) if f.command == Command::Receipt => Ok(()),
            Some(f) => Err(refusal("RECEIPT", &f)),
            None => Err("closed before RECEIPT".into()),
        }
    }

    /// Writes one frame.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), String> {
        let bytes = frame.encode(Version::V1_2);
        match &mut self.conn {
            Conn::Tcp(s) => s.write_all(&bytes).await.map_err(|e| format!("write: {e}")),
            Conn::Ws(ws) => {
                let text = Utf8Bytes::try_from(bytes).map_err(|e| format!("frame text: {e}"))?;
                ws.send(WsMessage::Text(text))
                    .await
                    .map_err(|e| format!("write: {e}"))
            }
        }
    }

    /// The next frame (heart-beats skipped); `None` once the server closes.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        loop {
            match self.parser.parse(&mut self.buf) {
                Ok(Some(Parsed::Frame(f))) => return Ok(Some(f)),
                Ok(Some(Parsed::HeartBeat)) => continue,
                Ok(None) => {}
                Err(e) => return Err(format!("malformed frame from the server: {e}")),
            }
            let more = match &mut self.conn {
                Conn::Tcp(s) => {
                    self.buf.reserve(TCP_READ_CHUNK);
                    s.read_buf(&mut self.buf)
                        .await
                        .map_err(|e| format!("read: {e}"))?
                        > 0
                }
                Conn::Ws(ws) => match ws.next().await {
                    None | Some(Ok(WsMessage::Close(_))) => false,
                    Some(Ok(WsMessage::Text(t))) => {
                        self.buf.extend_from_slice(t.as_bytes());
                        true
                    }
                    Some(Ok(WsMessage::Binary(b))) => {
                        self.buf.extend_from_slice(&b);
                        true
                    }
                    Some(Ok(_)) => true,
                    Some(Err(e)) => return Err(format!("read: {e}")),
                },
            };
            if !more {
                return Ok(None);
            }
        }
    }
}

fn refusal(expected: &str, got: &Frame) -> String {
    format!(
        "expected {expected}, got {} {}",
        got.command,
        got.get("message").unwrap_or_default()
    )
}
